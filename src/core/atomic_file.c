/* Atomic file output (see atomic_file.h). */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

/* Reports a failed step (before `path` is freed) and removes the temporary file. */
static vt_status io_failure(atomic_file *file, const char *what, const char *path, int error_number,
                            vt_error *err) {
    vt_status status = vt_fail(err, VT_ERR_IO, "%s %s: %s%s", what, path, strerror(error_number),
                               error_number == ENOSPC || error_number == EDQUOT
                                   ? " (disk full? free some space and retry; nothing was written)"
                                   : "");
    atomic_file_discard(file);
    return status;
}

vt_status atomic_file_open(atomic_file *file, const char *path, vt_error *err) {
    file->fd = -1;
    file->skip_sync = 0;
    file->path = NULL;
    file->temp_path = NULL;
    if (!path || !*path) return vt_fail(err, VT_ERR_ARGUMENT, "output path is empty");
    size_t length = strlen(path) + 32;
    file->path = strdup(path);
    file->temp_path = malloc(length);
    if (!file->path || !file->temp_path) {
        atomic_file_discard(file);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory opening %s", path);
    }
    snprintf(file->temp_path, length, "%s.tmp.%ld", path, (long)getpid());
    /* No O_EXCL: a leftover temp file with our pid can only come from a dead
     * process (pids of live processes are unique), so it is safe to reuse. */
    file->fd = open(file->temp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (file->fd < 0) {
        int error_number = errno;
        free(file->temp_path);
        file->temp_path = NULL; /* nothing was created: do not unlink someone else's file */
        return io_failure(file, "cannot create a temporary file next to", path, error_number, err);
    }
    return VT_OK;
}

vt_status atomic_file_write(atomic_file *file, const void *data, size_t size, vt_error *err) {
    if (file->fd < 0) return vt_fail(err, VT_ERR_IO, "write to a closed file");
    const char *bytes = data;
    while (size > 0) {
        ssize_t written = write(file->fd, bytes, size > ((size_t)1 << 30) ? (size_t)1 << 30 : size);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return io_failure(file, "cannot write", file->path, written < 0 ? errno : ENOSPC, err);
        bytes += written;
        size -= (size_t)written;
    }
    return VT_OK;
}

/* Makes the rename durable; file systems that cannot sync a directory say EINVAL. */
static int sync_parent_directory(const char *path) {
    char *copy = strdup(path);
    if (!copy) return ENOMEM;
    char *slash = strrchr(copy, '/');
    const char *directory = ".";
    if (slash == copy) {
        directory = "/";
    } else if (slash) {
        *slash = '\0';
        directory = copy;
    }
    int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int error_number = 0;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) error_number = errno;
    if (fd >= 0) close(fd);
    free(copy);
    return error_number;
}

vt_status atomic_file_commit(atomic_file *file, vt_error *err) {
    if (file->fd < 0) return vt_fail(err, VT_ERR_IO, "commit of a closed file");
    if (!file->skip_sync && fsync(file->fd) != 0) return io_failure(file, "cannot flush", file->path, errno, err);
    int fd = file->fd;
    file->fd = -1;
    if (close(fd) != 0) return io_failure(file, "cannot close", file->path, errno, err);
    if (rename(file->temp_path, file->path) != 0) return io_failure(file, "cannot rename onto", file->path, errno, err);
    free(file->temp_path);
    file->temp_path = NULL; /* renamed: nothing left to remove */
    int error_number = file->skip_sync ? 0 : sync_parent_directory(file->path);
    vt_status status = error_number ? vt_fail(err, VT_ERR_IO, "wrote %s but cannot sync its directory: %s",
                                              file->path, strerror(error_number))
                                    : VT_OK;
    atomic_file_discard(file);
    return status;
}

void atomic_file_discard(atomic_file *file) {
    if (file->fd >= 0) close(file->fd);
    file->fd = -1;
    if (file->temp_path) unlink(file->temp_path);
    free(file->temp_path);
    free(file->path);
    file->temp_path = NULL;
    file->path = NULL;
}


vt_status atomic_file_write_all(const char *path, const void *data, size_t size, int durable, vt_error *err) {
    struct stat st;
    if (!stat(path, &st) && S_ISREG(st.st_mode) && (size_t)st.st_size == size) {
        FILE *f = fopen(path, "rb");
        char *old = f ? malloc(size ? size : 1) : NULL;
        int same = old && fread(old, 1, size, f) == size && !memcmp(old, data, size);
        free(old);
        if (f) fclose(f);
        if (same) return VT_OK;
    }
    atomic_file file;
    vt_status status = atomic_file_open(&file, path, err);
    file.skip_sync = !durable;
    if (!status) status = atomic_file_write(&file, data, size, err);
    if (!status) status = atomic_file_commit(&file, err);
    atomic_file_discard(&file);
    return status;
}
