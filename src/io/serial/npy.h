/* NumPy .npy files (format version 1.0) for float32 matrices, the form in which
 * the CLI writes embeddings and the tests exchange arrays with Python. */
#ifndef VT_IO_NPY_H
#define VT_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/atomic_file.h"
#include "vitamin.h"

/* Writes a C-order float32 matrix [rows, cols] as '<f4' .npy, atomically. */
vt_status npy_write_f32(const char *path, int64_t rows, int64_t cols, const float *data,
                        vt_error *err);

/* Reads a little-endian float32 .npy of 1 or 2 dimensions (versions 1.0-3.0; a
 * Fortran-order array is transposed into C order). A 1-D array of n values is
 * returned as rows = 1, cols = n. *data is malloc'd; the caller frees it. Any
 * other dtype fails with a message naming it. */
vt_status npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols, vt_error *err);

#endif
