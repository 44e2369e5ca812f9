/* Micro-kernels for tmat_tn (C = Aᵀ·B): the same 8×32 outer-product tile as
 * kernels/gemm_micro_*.c, but A arrives packed k-major, 8 rows of C at a time
 * (ap[k*8 + r] = A[k0 + k][i0 + r]): a plain copy of 8 adjacent floats of each
 * source row, where the kernels/ micro-kernels would need A transposed. */
#include <immintrin.h>

#include "kernels/gemm.h"
#include "kernels/gemm_store_avx512.h"
#include "kernels/gemm_train.h"

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))) void
gemm_micro_kmajor_avx512(int kc, const float *ap, const float *panel, float *c, int ldc, int mr, int nr,
                         int accumulate) {
    __m512 c0l = _mm512_setzero_ps(), c0h = _mm512_setzero_ps(), c1l = _mm512_setzero_ps(),
           c1h = _mm512_setzero_ps(), c2l = _mm512_setzero_ps(), c2h = _mm512_setzero_ps(),
           c3l = _mm512_setzero_ps(), c3h = _mm512_setzero_ps(), c4l = _mm512_setzero_ps(),
           c4h = _mm512_setzero_ps(), c5l = _mm512_setzero_ps(), c5h = _mm512_setzero_ps(),
           c6l = _mm512_setzero_ps(), c6h = _mm512_setzero_ps(), c7l = _mm512_setzero_ps(),
           c7h = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const float *a = ap + (size_t)k * GEMM_MR;
        __m512 bl = _mm512_load_ps(panel + (size_t)k * GEMM_NR);
        __m512 bh = _mm512_load_ps(panel + (size_t)k * GEMM_NR + 16);
        __m512 av;
#define STEP(r)                                 \
    av = _mm512_set1_ps(a[r]);                  \
    c##r##l = _mm512_fmadd_ps(av, bl, c##r##l); \
    c##r##h = _mm512_fmadd_ps(av, bh, c##r##h);
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
#undef STEP
    }
    __m512 lo[GEMM_MR] = {c0l, c1l, c2l, c3l, c4l, c5l, c6l, c7l};
    __m512 hi[GEMM_MR] = {c0h, c1h, c2h, c3h, c4h, c5h, c6h, c7h};
    for (int r = 0; r < mr; r++) gemm_store_row_avx512(c + (size_t)r * ldc, lo[r], hi[r], nr, accumulate);
}

void gemm_micro_kmajor_scalar(int kc, const float *ap, const float *panel, float *c, int ldc, int mr, int nr,
                              int accumulate) {
    float acc[GEMM_MR][GEMM_NR] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < GEMM_MR; r++) {
            float a = ap[(size_t)k * GEMM_MR + r];
            for (int j = 0; j < GEMM_NR; j++) acc[r][j] += a * panel[(size_t)k * GEMM_NR + j];
        }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[(size_t)r * ldc + j] = accumulate ? c[(size_t)r * ldc + j] + acc[r][j] : acc[r][j];
}
