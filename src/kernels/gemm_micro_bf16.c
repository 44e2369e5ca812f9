/* AVX512-BF16 micro-kernel (VDPBF16PS): 8 rows × 32 columns, each step
 * multiplies a pair of k values of A (one 32-bit broadcast) with the matching
 * pair-interleaved panel row and adds both products into fp32 accumulators. */
#include <immintrin.h>
#include <string.h>

#include "core/float16.h"
#include "kernels/gemm.h"
#include "kernels/gemm_store_avx512.h"

#define TARGET_BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma")))

TARGET_BF16 void gemm_micro_bf16_avx512(int pairs, const uint16_t *a, int lda, const uint16_t *panel, float *c,
                                        int ldc, int mr, int nr, int accumulate) {
    const uint16_t *rows[GEMM_MR];
    for (int r = 0; r < GEMM_MR; r++) rows[r] = a + (size_t)(r < mr ? r : 0) * lda;
    __m512 lo[GEMM_MR], hi[GEMM_MR];
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++) lo[r] = hi[r] = _mm512_setzero_ps();
    for (int q = 0; q < pairs; q++) {
        __m512bh bl = (__m512bh)_mm512_load_si512(panel + (size_t)q * GEMM_NR * 2);
        __m512bh bh = (__m512bh)_mm512_load_si512(panel + (size_t)q * GEMM_NR * 2 + 32);
#pragma GCC unroll 16
        for (int r = 0; r < GEMM_MR; r++) {
            int32_t pair;
            memcpy(&pair, rows[r] + 2 * q, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
            lo[r] = _mm512_dpbf16_ps(lo[r], av, bl);
            hi[r] = _mm512_dpbf16_ps(hi[r], av, bh);
        }
    }
    for (int r = 0; r < mr; r++) gemm_store_row_avx512(c + (size_t)r * ldc, lo[r], hi[r], nr, accumulate);
}

TARGET_BF16 void convert_rows_bf16_avx512(uint16_t *dst, int kc_even, const float *a, int lda, int rows, int kc) {
    for (int r = 0; r < rows; r++) {
        const float *src = a + (size_t)r * lda;
        uint16_t *out = dst + (size_t)r * kc_even;
        int k = 0;
        for (; k + 32 <= kc; k += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
            _mm512_storeu_si512(out + k, (__m512i)v);
        }
        for (; k < kc; k++) out[k] = vt_f32_to_bf16(src[k]);
        if (kc & 1) out[kc] = 0;
    }
}
