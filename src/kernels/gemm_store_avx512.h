/* Shared by the AVX-512 micro-kernels (fp32, bf16, AMX): writes one 32-column
 * row of accumulators to C, masked to nr columns, adding what C holds when
 * `accumulate` is set. Include only from files compiled with AVX-512 targets. */
#ifndef VT_KERNELS_GEMM_STORE_AVX512_H
#define VT_KERNELS_GEMM_STORE_AVX512_H

#include <immintrin.h>

/* Lane masks of the row's first nr (<= 32) columns: low and high vector. */
static inline __mmask16 gemm_row_mask_lo(int nr) { return nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1); }
static inline __mmask16 gemm_row_mask_hi(int nr) {
    return nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
}

__attribute__((target("avx512f"))) static inline void gemm_store_row_avx512(float *crow, __m512 lo, __m512 hi,
                                                                             int nr, int accumulate) {
    __mmask16 mlo = gemm_row_mask_lo(nr), mhi = gemm_row_mask_hi(nr);
    if (accumulate) {
        lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(mlo, crow));
        hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mhi, crow + 16));
    }
    _mm512_mask_storeu_ps(crow, mlo, lo);
    _mm512_mask_storeu_ps(crow + 16, mhi, hi);
}

#endif
