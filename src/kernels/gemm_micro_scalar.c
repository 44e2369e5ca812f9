/* Portable micro-kernel: the reference every SIMD path is tested against. */
#include "kernels/gemm.h"

void gemm_micro_scalar(int kc, const float *a, int lda, const float *panel, float *c, int ldc,
                       int mr, int nr, int accumulate) {
    float acc[GEMM_MR][GEMM_NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *brow = panel + (size_t)k * GEMM_NR;
        for (int i = 0; i < mr; i++) {
            float av = a[(size_t)i * lda + k];
            for (int j = 0; j < GEMM_NR; j++) acc[i][j] += av * brow[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *crow = c + (size_t)i * ldc;
        for (int j = 0; j < nr; j++) crow[j] = accumulate ? crow[j] + acc[i][j] : acc[i][j];
    }
}
