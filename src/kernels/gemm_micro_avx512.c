/* AVX-512 micro-kernel: 8 rows × 32 columns = 16 zmm accumulators, one A
 * broadcast and two panel loads per k. Compiled for AVX-512 via the target
 * attribute so the rest of the library stays runnable on any x86-64. */
#include <immintrin.h>

#include "kernels/gemm.h"
#include "kernels/gemm_store_avx512.h"
#include "kernels/vecmath_avx512.h"

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

/* The kernel, with an optional software prefetch of the next micro-tile's A
 * rows (pf: its first row, lda apart; NULL for none): one cache line of each
 * of its 8 rows every 16 k, so they are in cache when that call starts. On
 * the machines measured the hardware prefetcher did not cover the 8 strided
 * row streams, and a tile's first pass over A from memory ran ~30% below
 * the in-cache rate. */
TARGET_AVX512 void gemm_micro_avx512(int kc, const float *a, int lda, const float *panel, float *c, int ldc, int mr,
                                     int nr, int accumulate, const float *pf, const gemm_micro_fused *fused) {
    __m512 c0l = _mm512_setzero_ps(), c0h = _mm512_setzero_ps(), c1l = _mm512_setzero_ps(),
           c1h = _mm512_setzero_ps(), c2l = _mm512_setzero_ps(), c2h = _mm512_setzero_ps(),
           c3l = _mm512_setzero_ps(), c3h = _mm512_setzero_ps(), c4l = _mm512_setzero_ps(),
           c4h = _mm512_setzero_ps(), c5l = _mm512_setzero_ps(), c5h = _mm512_setzero_ps(),
           c6l = _mm512_setzero_ps(), c6h = _mm512_setzero_ps(), c7l = _mm512_setzero_ps(),
           c7h = _mm512_setzero_ps();
    /* Row tail (mr < 8): the missing rows re-read the last real row and their
     * sums are dropped at the store, so every call runs the same loop. */
    const float *a0 = a, *a1 = a + (size_t)(mr > 1) * lda, *a2 = a + (size_t)(mr > 2 ? 2 : mr - 1) * lda,
                *a3 = a + (size_t)(mr > 3 ? 3 : mr - 1) * lda, *a4 = a + (size_t)(mr > 4 ? 4 : mr - 1) * lda,
                *a5 = a + (size_t)(mr > 5 ? 5 : mr - 1) * lda, *a6 = a + (size_t)(mr > 6 ? 6 : mr - 1) * lda,
                *a7 = a + (size_t)(mr > 7 ? 7 : mr - 1) * lda;
    __m512 bl, bh, av;
#define STEP(r)                                 \
    av = _mm512_set1_ps(a##r[k]);               \
    c##r##l = _mm512_fmadd_ps(av, bl, c##r##l); \
    c##r##h = _mm512_fmadd_ps(av, bh, c##r##h);
#define K_STEP                                             \
    bl = _mm512_load_ps(panel + (size_t)k * GEMM_NR);      \
    bh = _mm512_load_ps(panel + (size_t)k * GEMM_NR + 16); \
    STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) k++;
    /* 16 k per iteration: the prefetch and the loop overhead once per 16
     * steps. Stepping one k at a time cost ~8% of the whole network. */
    int k = 0;
    while (k + 16 <= kc) {
        if (pf) {
            const float *row = pf + k;
            for (int r = 0; r < GEMM_MR; r++, row += lda) _mm_prefetch((const char *)row, _MM_HINT_T0);
        }
        K_STEP K_STEP K_STEP K_STEP K_STEP K_STEP K_STEP K_STEP
        K_STEP K_STEP K_STEP K_STEP K_STEP K_STEP K_STEP K_STEP
    }
    if (pf && k < kc) {
        const float *row = pf + k;
        for (int r = 0; r < GEMM_MR; r++, row += lda) _mm_prefetch((const char *)row, _MM_HINT_T0);
    }
    while (k < kc) {
        K_STEP
    }
#undef K_STEP
#undef STEP
    __m512 lo[GEMM_MR] = {c0l, c1l, c2l, c3l, c4l, c5l, c6l, c7l};
    __m512 hi[GEMM_MR] = {c0h, c1h, c2h, c3h, c4h, c5h, c6h, c7h};
    if (!fused) {
        for (int r = 0; r < mr; r++) gemm_store_row_avx512(c + (size_t)r * ldc, lo[r], hi[r], nr, accumulate);
        return;
    }
    /* Fused epilogue, in gemm.c's order: (C +) sum, + bias, activation or GeGLU, + residual. */
    const float *bias = fused->bias;
    __mmask16 mlo = gemm_row_mask_lo(nr), mhi = gemm_row_mask_hi(nr);
    __m512 blo = bias ? _mm512_maskz_loadu_ps(mlo, bias) : _mm512_setzero_ps();
    __m512 bhi = bias ? _mm512_maskz_loadu_ps(mhi, bias + 16) : _mm512_setzero_ps();
    __mmask16 mout = fused->geglu_out ? gemm_row_mask_lo(fused->geglu_cols) : 0;
    for (int r = 0; r < mr; r++) {
        float *crow = c + (size_t)r * ldc;
        __m512 l = lo[r], h = hi[r];
        if (accumulate) {
            l = _mm512_add_ps(l, _mm512_maskz_loadu_ps(mlo, crow));
            h = _mm512_add_ps(h, _mm512_maskz_loadu_ps(mhi, crow + 16));
        }
        l = _mm512_add_ps(l, blo);
        h = _mm512_add_ps(h, bhi);
        if (fused->geglu_out) {
            _mm512_mask_storeu_ps(fused->geglu_out + (size_t)r * fused->ld_out, mout,
                                  _mm512_mul_ps(glu_gate_ps(fused->glu_act, l), h));
            continue;
        }
        if (fused->act) {
            l = act_ps(fused->act, l);
            h = act_ps(fused->act, h);
        }
        if (fused->residual) {
            const float *res = fused->residual + (size_t)r * fused->ldr;
            l = _mm512_add_ps(l, _mm512_maskz_loadu_ps(mlo, res));
            h = _mm512_add_ps(h, _mm512_maskz_loadu_ps(mhi, res + 16));
        }
        _mm512_mask_storeu_ps(crow, mlo, l);
        _mm512_mask_storeu_ps(crow + 16, mhi, h);
    }
}
