/* AVX-512 micro-kernel: 8 rows × 32 columns = 16 zmm accumulators, one A
 * broadcast and two panel loads per k. Compiled for AVX-512 via the target
 * attribute so the rest of the library stays runnable on any x86-64. */
#include <immintrin.h>

#include "kernels/gemm.h"
#include "kernels/gemm_store_avx512.h"

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

/* The kernel, with an optional software prefetch of the next micro-tile's A
 * rows (pf: its first row, lda apart; NULL for none): one cache line of each
 * of its 8 rows every 16 k, so they are in cache when that call starts. On
 * the machines measured the hardware prefetcher did not cover the 8 strided
 * row streams, and a tile's first pass over A from memory ran ~30% below
 * the in-cache rate. */
TARGET_AVX512 static inline void micro_avx512(int kc, const float *a, int lda, const float *panel, float *c,
                                              int ldc, int mr, int nr, int accumulate, const float *pf) {
    __m512 c0l = _mm512_setzero_ps(), c0h = _mm512_setzero_ps(), c1l = _mm512_setzero_ps(),
           c1h = _mm512_setzero_ps(), c2l = _mm512_setzero_ps(), c2h = _mm512_setzero_ps(),
           c3l = _mm512_setzero_ps(), c3h = _mm512_setzero_ps(), c4l = _mm512_setzero_ps(),
           c4h = _mm512_setzero_ps(), c5l = _mm512_setzero_ps(), c5h = _mm512_setzero_ps(),
           c6l = _mm512_setzero_ps(), c6h = _mm512_setzero_ps(), c7l = _mm512_setzero_ps(),
           c7h = _mm512_setzero_ps();
    if (mr == GEMM_MR) {
        const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * (size_t)lda, *a3 = a + 3 * (size_t)lda,
                    *a4 = a + 4 * (size_t)lda, *a5 = a + 5 * (size_t)lda, *a6 = a + 6 * (size_t)lda,
                    *a7 = a + 7 * (size_t)lda;
        for (int k = 0; k < kc; k++) {
            if (pf && (k & 15) == 0) {
                const float *row = pf + k;
                for (int r = 0; r < GEMM_MR; r++, row += lda) _mm_prefetch((const char *)row, _MM_HINT_T0);
            }
            __m512 bl = _mm512_load_ps(panel + (size_t)k * GEMM_NR);
            __m512 bh = _mm512_load_ps(panel + (size_t)k * GEMM_NR + 16);
            __m512 av;
#define STEP(r)                                   \
    av = _mm512_set1_ps(a##r[k]);                 \
    c##r##l = _mm512_fmadd_ps(av, bl, c##r##l);   \
    c##r##h = _mm512_fmadd_ps(av, bh, c##r##h);
            STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
#undef STEP
        }
    } else {
        /* Row tail: same arithmetic, rows beyond mr read row 0 and are dropped. */
        const float *ar[GEMM_MR];
        for (int r = 0; r < GEMM_MR; r++) ar[r] = a + (size_t)(r < mr ? r : 0) * lda;
        for (int k = 0; k < kc; k++) {
            __m512 bl = _mm512_load_ps(panel + (size_t)k * GEMM_NR);
            __m512 bh = _mm512_load_ps(panel + (size_t)k * GEMM_NR + 16);
            __m512 av;
#define STEP(r)                                   \
    av = _mm512_set1_ps(ar[r][k]);                \
    c##r##l = _mm512_fmadd_ps(av, bl, c##r##l);   \
    c##r##h = _mm512_fmadd_ps(av, bh, c##r##h);
            STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
#undef STEP
        }
    }
    __m512 lo[GEMM_MR] = {c0l, c1l, c2l, c3l, c4l, c5l, c6l, c7l};
    __m512 hi[GEMM_MR] = {c0h, c1h, c2h, c3h, c4h, c5h, c6h, c7h};
    for (int r = 0; r < mr; r++) gemm_store_row_avx512(c + (size_t)r * ldc, lo[r], hi[r], nr, accumulate);
}

TARGET_AVX512 void gemm_micro_avx512(int kc, const float *a, int lda, const float *panel, float *c, int ldc,
                                     int mr, int nr, int accumulate) {
    micro_avx512(kc, a, lda, panel, c, ldc, mr, nr, accumulate, NULL);
}

TARGET_AVX512 void gemm_micro_avx512_pf(int kc, const float *a, int lda, const float *panel, float *c, int ldc,
                                        int mr, int nr, int accumulate, const float *pf) {
    micro_avx512(kc, a, lda, panel, c, ldc, mr, nr, accumulate, pf);
}
