#ifndef VT_KERNELS_TRANSPOSE_H
#define VT_KERNELS_TRANSPOSE_H

#include <stddef.h>

#include "kernels/cpu.h"

/* Serial transpose of src [rows, cols] (row stride lds) into dst [cols, rows]
 * (row stride ldd), on the calling thread. The AVX2 blocks run only with
 * isa == VT_ISA_AVX512 (every AVX-512 CPU has AVX2); otherwise scalar. */
void transpose_serial(vt_isa isa, float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols);

#endif
