/* NumPy .npy files (format version 1.0) for float32 matrices, the form in which
 * the CLI writes embeddings and the tests exchange arrays with Python; plus the
 * atomic file writer that the .npy and safetensors writers share. */
#ifndef VT_IO_NPY_H
#define VT_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

/* Writes a C-order float32 matrix [rows, cols] as '<f4' .npy, atomically. */
vt_status npy_write_f32(const char *path, int64_t rows, int64_t cols, const float *data,
                        vt_error *err);

/* Reads a little-endian float32 .npy of 1 or 2 dimensions (versions 1.0-3.0; a
 * Fortran-order array is transposed into C order). A 1-D array of n values is
 * returned as rows = 1, cols = n. *data is malloc'd; the caller frees it. Any
 * other dtype fails with a message naming it. */
vt_status npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols, vt_error *err);

/* Atomic file output: bytes go to "<path>.tmp.<pid>", which is fsync'ed, renamed
 * over `path`, and the directory fsync'ed, so a reader sees either the old file
 * or the complete new one, never a torn one. Any failing call removes the
 * temporary file and reports why (a full disk is named as such); later calls on
 * the same atomic_file then fail too, so callers may simply return the status.
 * Not for two threads of one process writing the same path at once. */
typedef struct {
    int fd;            /* -1 once closed */
    char *path;
    char *temp_path;
} atomic_file;

vt_status atomic_file_open(atomic_file *file, const char *path, vt_error *err);
vt_status atomic_file_write(atomic_file *file, const void *data, size_t size, vt_error *err);
vt_status atomic_file_commit(atomic_file *file, vt_error *err);
/* Abandons the file (removes the temporary). Safe to call after any outcome. */
void atomic_file_discard(atomic_file *file);

#endif
