/* IDX files (the MNIST / Fashion-MNIST format, yann.lecun.com/exdb/mnist):
 * a 4-byte magic 00 00 TYPE NDIM, NDIM big-endian uint32 dimensions, then
 * the values in C order. Only unsigned-byte data (TYPE 0x08) is accepted,
 * the type every MNIST-style image and label file uses. Files may be
 * gzip-compressed (as distributed) or plain. */
#ifndef VT_IO_IDX_H
#define VT_IO_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

#define IDX_MAX_DIMS 4
/* Refuse files that decompress beyond this (a gzip bomb, or not an IDX file). */
#define IDX_MAX_BYTES (1ull << 32)

typedef struct {
    int ndim;
    uint32_t dims[IDX_MAX_DIMS];
    size_t count;     /* product of dims */
    uint8_t *data;    /* count bytes, malloc'd */
} idx_array;

/* Parses an IDX image in memory; `label` names it in messages. Fails if the
 * magic, type or dimensions are wrong or the data is shorter or longer than
 * the dimensions say. */
vt_status idx_parse(const uint8_t *bytes, size_t size, const char *label, idx_array *out, vt_error *err);

/* Reads `path` (gzip or plain) and parses it. */
vt_status idx_read_file(const char *path, idx_array *out, vt_error *err);

void idx_free(idx_array *array);

#endif
