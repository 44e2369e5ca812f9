#ifndef VT_KERNELS_TRANSPOSE_H
#define VT_KERNELS_TRANSPOSE_H

#include <stddef.h>

/* Serial transpose of src [rows, cols] (row stride lds) into dst [cols, rows]
 * (row stride ldd), on the calling thread; AVX2 blocks where the CPU has them. */
void transpose_serial(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols);

#endif
