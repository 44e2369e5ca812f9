/* Directory operations for training checkpoints (see checkpoint_dir.h). */
#include "train/checkpoint_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

enum { REMOVE_MAX_DEPTH = 8 };

void checkpoint_dir_name(int64_t step, char *out, size_t out_size) {
    snprintf(out, out_size, "step_%08" PRId64, step);
}

int checkpoint_dir_parse_step(const char *name, int64_t *step) {
    if (strncmp(name, "step_", 5) != 0) return 0;
    const char *digits = name + 5;
    size_t n = strlen(digits);
    if (n == 0 || n > 18 || strspn(digits, "0123456789") != n) return 0;
    *step = strtoll(digits, NULL, 10);
    return 1;
}

vt_status checkpoint_dir_sync(const char *path, vt_error *err) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return vt_fail(err, VT_ERR_IO, "cannot open directory %s: %s", path, strerror(errno));
    int rc = fsync(fd), e = errno;
    close(fd);
    /* Some filesystems cannot fsync a directory (EINVAL); their renames are
     * then as durable as they get. */
    if (rc != 0 && e != EINVAL) return vt_fail(err, VT_ERR_IO, "cannot fsync directory %s: %s", path, strerror(e));
    return VT_OK;
}

static int remove_tree_at(int parent, const char *name, int depth) {
    struct stat s;
    if (fstatat(parent, name, &s, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : errno;
    if (!S_ISDIR(s.st_mode)) return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? 0 : errno;
    if (depth >= REMOVE_MAX_DEPTH) return ELOOP;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return e;
    }
    int result = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        int e = remove_tree_at(dirfd(d), entry->d_name, depth + 1);
        if (e && !result) result = e;
    }
    closedir(d);
    if (!result && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT) result = errno;
    return result;
}

int checkpoint_dir_remove_tree(const char *path) { return remove_tree_at(AT_FDCWD, path, 0); }

/* The pid of "<name>.tmp.<pid>", or 0. */
static long temp_owner(const char *name) {
    const char *mark = strstr(name, ".tmp.");
    if (!mark) return 0;
    const char *digits = mark + 5;
    while (strstr(digits, ".tmp.")) digits = strstr(digits, ".tmp.") + 5;
    size_t n = strlen(digits);
    if (n == 0 || n > 9 || strspn(digits, "0123456789") != n) return 0;
    return strtol(digits, NULL, 10);
}

void checkpoint_dir_remove_stale_temps(const char *save_dir) {
    DIR *d = opendir(save_dir);
    if (!d) return;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        long pid = temp_owner(entry->d_name);
        if (pid <= 0) continue;
        /* Our own pid: a save of this process that failed earlier. Another
         * live pid may be a second trainer saving right now: not ours to touch. */
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH)) continue;
        remove_tree_at(dirfd(d), entry->d_name, 0);
    }
    closedir(d);
}

static int compare_steps(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int checkpoint_dir_list_steps(const char *save_dir, int64_t **steps, size_t *count) {
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(save_dir);
    if (!d) return errno;
    size_t cap = 0;
    struct dirent *entry;
    int result = 0;
    while ((entry = readdir(d)) != NULL) {
        int64_t step;
        if (!checkpoint_dir_parse_step(entry->d_name, &step)) continue;
        struct stat s;
        if (fstatat(dirfd(d), entry->d_name, &s, 0) != 0 || !S_ISDIR(s.st_mode)) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = realloc(*steps, cap * sizeof *grown);
            if (!grown) {
                result = ENOMEM;
                break;
            }
            *steps = grown;
        }
        (*steps)[(*count)++] = step;
    }
    closedir(d);
    if (result) {
        free(*steps);
        *steps = NULL;
        *count = 0;
        return result;
    }
    if (*count) qsort(*steps, *count, sizeof **steps, compare_steps);
    return 0;
}

int checkpoint_dir_has(const char *dir, const char *name) {
    char path[4096];
    if (name) snprintf(path, sizeof path, "%s/%s", dir, name);
    else snprintf(path, sizeof path, "%s", dir);
    struct stat s;
    if (stat(path, &s) != 0) return 0;
    return name ? S_ISREG(s.st_mode) : S_ISDIR(s.st_mode);
}
