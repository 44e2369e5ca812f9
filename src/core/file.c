#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
