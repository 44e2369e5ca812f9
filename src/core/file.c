#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

vt_status vt_read_file(const char *path, size_t max_bytes, int missing_ok, char **text, size_t *size, vt_error *err) {
    *text = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing_ok && (errno == ENOENT || errno == ENOTDIR)) return VT_OK;
        return vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (n + 4096 > cap) {
            if (cap > max_bytes) {
                free(buf);
                fclose(f);
                return vt_fail(err, VT_ERR_FORMAT, "%s: larger than %zu bytes, not the file expected here", path,
                               max_bytes);
            }
            cap = cap ? 2 * cap : 8192;
            char *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                fclose(f);
                return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return vt_fail(err, VT_ERR_IO, "error reading %s", path);
    }
    if (n > max_bytes) {
        free(buf);
        return vt_fail(err, VT_ERR_FORMAT, "%s: larger than %zu bytes, not the file expected here", path, max_bytes);
    }
    buf[n] = '\0';
    *text = buf;
    *size = n;
    return VT_OK;
}

vt_status vt_make_dirs(const char *path, vt_error *err) {
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    memcpy(buf, path, n + 1);
    /* Each prefix ending at a '/', then the whole path. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && buf[i] != '/') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            vt_status st = vt_fail(err, VT_ERR_IO, "cannot create directory %s: %s", buf, strerror(e));
            free(buf);
            return st;
        }
        buf[i] = saved;
    }
    free(buf);
    struct stat s;
    if (stat(path, &s) != 0 || !S_ISDIR(s.st_mode))
        return vt_fail(err, VT_ERR_IO, "%s exists and is not a directory", path);
    return VT_OK;
}
