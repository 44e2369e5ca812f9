/* IDX reader (see idx.h). */
#include "io/dataset/idx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/grow.h"

vt_status idx_parse(const uint8_t *bytes, size_t size, const char *label, idx_array *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    if (size < 4 || bytes[0] != 0 || bytes[1] != 0)
        return vt_fail(err, VT_ERR_FORMAT, "%s is not an IDX file (it must start with bytes 00 00)", label);
    if (bytes[2] != 0x08)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: IDX element type 0x%02X, only unsigned bytes (0x08) are supported",
                       label, bytes[2]);
    int ndim = bytes[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return vt_fail(err, VT_ERR_FORMAT, "%s: %d dimensions, expected 1..%d", label, ndim, IDX_MAX_DIMS);
    size_t header = 4 + 4 * (size_t)ndim;
    if (size < header) return vt_fail(err, VT_ERR_FORMAT, "%s: truncated IDX header", label);
    unsigned __int128 count = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *p = bytes + 4 + 4 * d;
        out->dims[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        count *= out->dims[d];
    }
    if (count != (unsigned __int128)(size - header))
        return vt_fail(err, VT_ERR_FORMAT, "%s: the header promises %llu values but the file holds %zu; is it truncated?",
                       label, (unsigned long long)count, size - header);
    out->ndim = ndim;
    out->count = (size_t)count;
    out->data = malloc(out->count ? out->count : 1);
    if (!out->data) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", label);
    memcpy(out->data, bytes + header, out->count);
    return VT_OK;
}

vt_status idx_read_file(const char *path, idx_array *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb"); /* reads plain files unchanged */
    if (!f) return vt_fail(err, VT_ERR_IO, "cannot open %s: %s", path, strerror(errno ? errno : ENOENT));
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    vt_status st = VT_OK;
    for (;;) {
        if (size >= IDX_MAX_BYTES) {
            st = vt_fail(err, VT_ERR_FORMAT, "%s decompresses to more than %llu bytes; not an IDX file", path,
                         (unsigned long long)IDX_MAX_BYTES);
            break;
        }
        if (!vt_grow_array((void **)&data, &capacity, size + (1 << 16), 1)) {
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
            break;
        }
        int got = gzread(f, data + size, (unsigned)(capacity - size > (1u << 30) ? (1u << 30) : capacity - size));
        if (got < 0) {
            int code;
            const char *why = gzerror(f, &code);
            st = vt_fail(err, VT_ERR_FORMAT, "%s: %s (corrupt gzip?)", path, why);
            break;
        }
        if (got == 0) break;
        size += (size_t)got;
    }
    gzclose(f);
    if (st == VT_OK) st = idx_parse(data, size, path, out, err);
    free(data);
    return st;
}

void idx_free(idx_array *array) {
    if (!array) return;
    free(array->data);
    memset(array, 0, sizeof *array);
}
