/* .npy float32 reader/writer (see npy.h).
 *
 * The .npy v1.0 layout: "\x93NUMPY", version 1 0, a 2-byte little-endian header
 * length, then an ASCII Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ending in '\n' so that the data starts at a multiple of
 * 64 bytes (what numpy itself writes). Versions 2.0/3.0 only widen the header
 * length to 4 bytes, so the reader accepts them too. */
#include "io/serial/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_SIZE 6
#define NPY_ALIGNMENT 64
#define NPY_MAX_HEADER (1u << 20)

/* ---------------------------------------------------------------- writing */

/* The v1.0 preamble + header for a [rows, cols] '<f4' array; returns its length. */
static size_t format_npy_header(char *out, size_t capacity, int64_t rows, int64_t cols) {
    char dict[128];
    int dict_length = snprintf(dict, sizeof dict,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64
                               "), }",
                               rows, cols);
    size_t unpadded = NPY_MAGIC_SIZE + 2 + 2 + (size_t)dict_length + 1; /* + '\n' */
    size_t total = (unpadded + NPY_ALIGNMENT - 1) / NPY_ALIGNMENT * NPY_ALIGNMENT;
    if (total > capacity) return 0;
    size_t header_length = total - NPY_MAGIC_SIZE - 4;
    memcpy(out, NPY_MAGIC, NPY_MAGIC_SIZE);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(header_length & 0xFF);
    out[9] = (char)(header_length >> 8);
    memcpy(out + 10, dict, (size_t)dict_length);
    memset(out + 10 + dict_length, ' ', total - 10 - (size_t)dict_length - 1);
    out[total - 1] = '\n';
    return total;
}

vt_status npy_write_f32(const char *path, int64_t rows, int64_t cols, const float *data, vt_error *err) {
    if (rows < 0 || cols < 0 || (rows && cols && !data))
        return vt_fail(err, VT_ERR_ARGUMENT, "npy_write_f32 %s: invalid shape (%" PRId64 ", %" PRId64 ") or NULL data",
                       path ? path : "(null)", rows, cols);
    int64_t count;
    if (__builtin_mul_overflow(rows, cols, &count) || count > (int64_t)(SIZE_MAX / sizeof(float)))
        return vt_fail(err, VT_ERR_ARGUMENT, "npy_write_f32 %s: shape (%" PRId64 ", %" PRId64 ") too large",
                       path, rows, cols);
    char header[256];
    size_t header_size = format_npy_header(header, sizeof header, rows, cols);
    atomic_file file;
    vt_status status = atomic_file_open(&file, path, err);
    if (status == VT_OK) status = atomic_file_write(&file, header, header_size, err);
    /* x86-64 and AArch64 Linux are little-endian, so the floats go out as they are. */
    if (status == VT_OK) status = atomic_file_write(&file, data, (size_t)count * sizeof(float), err);
    if (status == VT_OK) status = atomic_file_commit(&file, err);
    return status;
}

/* ---------------------------------------------------------------- reading */

/* Finds `'key':` in the header dict and returns the text after it (spaces skipped). */
static const char *find_header_field(const char *header, const char *key) {
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *at = strstr(header, quoted);
    if (!at) return NULL;
    at += strlen(quoted);
    while (*at == ' ') at++;
    if (*at != ':') return NULL;
    at++;
    while (*at == ' ') at++;
    return at;
}

/* Parses "(a, b)" / "(n,)" / "()" into dims; returns the count or -1. */
static int parse_shape_tuple(const char *text, int64_t dims[2]) {
    if (*text++ != '(') return -1;
    int count = 0;
    for (;;) {
        while (*text == ' ') text++;
        if (*text == ')') return count;
        if (count == 2 || *text < '0' || *text > '9') return -1;
        char *end;
        errno = 0;
        long long value = strtoll(text, &end, 10);
        if (errno || end == text) return -1;
        dims[count++] = value;
        text = end;
        while (*text == ' ') text++;
        if (*text == ',') text++;
        else if (*text != ')') return -1;
    }
}

typedef struct {
    int fortran_order;
    int ndim;
    int64_t dims[2];
} npy_layout;

static vt_status parse_npy_header(const char *path, const char *header, npy_layout *layout, vt_error *err) {
    const char *descr = find_header_field(header, "descr");
    const char *order = find_header_field(header, "fortran_order");
    const char *shape = find_header_field(header, "shape");
    if (!descr || !order || !shape)
        return vt_fail(err, VT_ERR_FORMAT, "%s: .npy header lacks descr, fortran_order or shape", path);
    if (strncmp(descr, "'<f4'", 5) != 0) {
        size_t length = strcspn(descr, ",}");
        return vt_fail(err, VT_ERR_DTYPE, "%s: .npy dtype is %.*s; only little-endian float32 ('<f4') is supported",
                       path, (int)(length > 40 ? 40 : length), descr);
    }
    if (strncmp(order, "True", 4) == 0)
        layout->fortran_order = 1;
    else if (strncmp(order, "False", 5) == 0)
        layout->fortran_order = 0;
    else
        return vt_fail(err, VT_ERR_FORMAT, "%s: .npy fortran_order is neither True nor False", path);
    layout->ndim = parse_shape_tuple(shape, layout->dims);
    if (layout->ndim < 1)
        return vt_fail(err, VT_ERR_SHAPE, "%s: .npy shape must have 1 or 2 dimensions", path);
    return VT_OK;
}

/* Reads a whole (small) file into a malloc'd buffer. */
static vt_status read_whole_file(const char *path, char **bytes, size_t *size, vt_error *err) {
    FILE *stream = fopen(path, "rb");
    if (!stream) return vt_fail(err, VT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fileno(stream), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(stream);
        return vt_fail(err, VT_ERR_IO, "%s is not a regular file", path);
    }
    *size = (size_t)info.st_size;
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes) {
        fclose(stream);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, *size);
    }
    size_t got = fread(*bytes, 1, *size, stream);
    fclose(stream);
    if (got != *size) {
        free(*bytes);
        return vt_fail(err, VT_ERR_IO, "cannot read %s: short read", path);
    }
    return VT_OK;
}

/* Finds the header dict after the magic and version (1.0: 2-byte length, 2.0/3.0: 4-byte). */
static vt_status locate_npy_header(const char *path, const uint8_t *bytes, size_t size, size_t *start,
                                   size_t *length, vt_error *err) {
    *start = 0;
    if (size >= 10 && memcmp(bytes, NPY_MAGIC, NPY_MAGIC_SIZE) == 0) {
        if (bytes[6] == 1) {
            *start = 10;
            *length = bytes[8] | (size_t)bytes[9] << 8;
        } else if ((bytes[6] == 2 || bytes[6] == 3) && size >= 12) {
            *start = 12;
            *length = bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
        }
    }
    if (!*start || *length > NPY_MAX_HEADER || *length > size - *start)
        return vt_fail(err, VT_ERR_FORMAT, "%s: not a .npy file (bad magic, version or header length)", path);
    return VT_OK;
}

/* Copies the array data into a malloc'd C-order buffer. */
static vt_status copy_npy_data(const char *path, const npy_layout *layout, const char *source,
                               size_t available, float **data, int64_t *rows, int64_t *cols, vt_error *err) {
    int64_t r = layout->ndim == 2 ? layout->dims[0] : 1, c = layout->ndim == 2 ? layout->dims[1] : layout->dims[0];
    uint64_t count, expected;
    if (__builtin_mul_overflow((uint64_t)r, (uint64_t)c, &count) ||
        __builtin_mul_overflow(count, (uint64_t)sizeof(float), &expected) || expected != available)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: shape (%" PRId64 ", %" PRId64 ") does not match the %zu data bytes in the file "
                       "(truncated?)",
                       path, r, c, available);
    float *values = malloc(expected ? (size_t)expected : 1);
    if (!values) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
    if (layout->fortran_order && layout->ndim == 2) {
        for (int64_t i = 0; i < r; i++) /* column-major: element (i, j) sits at j * r + i */
            for (int64_t j = 0; j < c; j++) memcpy(&values[i * c + j], source + (j * r + i) * 4, 4);
    } else {
        memcpy(values, source, (size_t)expected);
    }
    *data = values;
    *rows = r;
    *cols = c;
    return VT_OK;
}

vt_status npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols, vt_error *err) {
    *data = NULL;
    char *bytes = NULL;
    size_t size = 0, header_start = 0, header_length = 0;
    vt_status status = read_whole_file(path, &bytes, &size, err);
    if (status != VT_OK) return status;
    npy_layout layout = {0};
    status = locate_npy_header(path, (const uint8_t *)bytes, size, &header_start, &header_length, err);
    if (status == VT_OK) {
        char *header = strndup(bytes + header_start, header_length);
        status = header ? parse_npy_header(path, header, &layout, err)
                        : vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
        free(header);
    }
    size_t data_start = header_start + header_length;
    if (status == VT_OK)
        status = copy_npy_data(path, &layout, bytes + data_start, size - data_start, data, rows, cols, err);
    free(bytes);
    return status;
}
