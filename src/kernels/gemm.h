/* C[m, n] = alpha * A[m, k] · B[n, k]ᵀ (+ bias, GELU, + residual)
 *
 * B is PyTorch's Linear weight layout [out, in]. It is packed once (at model
 * load for weights, per call for attention operands) into panels of GEMM_NR
 * columns: panel p holds B rows p*NR .. p*NR+NR-1 interleaved by k, i.e.
 * packed[p][k][j] = B[p*NR + j][k], zero padded. The micro-kernel then streams
 * one panel and broadcasts A elements (outer-product form). */
#ifndef VT_KERNELS_GEMM_H
#define VT_KERNELS_GEMM_H

#include <stddef.h>

#include "kernels/cpu.h"

#define GEMM_NR 32 /* columns per packed panel: two AVX-512 vectors */
#define GEMM_MR 8  /* rows per micro-kernel call */

typedef struct {
    int n, k;
    int panels;   /* ceil(n / GEMM_NR) */
    float *data;  /* panels * k * GEMM_NR floats, 64-byte aligned */
} gemm_packed_b;

/* Floats needed to pack an [n, k] operand. */
size_t gemm_packed_floats(int n, int k);

/* Packs B into `dst` (gemm_packed_floats(n, k) floats). If `b_is_kn` is 0, B is
 * [n, k] with row stride ldb (a Linear weight, or K in Q·Kᵀ); if 1, B is given
 * as [k, n] with row stride ldb (V in P·V). */
void gemm_pack(const float *b, int n, int k, int ldb, int b_is_kn, float *dst);

typedef struct {
    float alpha;            /* scales A·Bᵀ (before bias); 1 for plain linear layers */
    const float *bias;      /* [n] or NULL */
    int gelu;               /* exact-erf GELU after the bias */
    const float *residual;  /* [m, ldr] added last, or NULL. May alias C (same ldc)
                               only with alpha 1 and no GELU. */
    int ldr;
} gemm_epilogue;

/* Runs the product on the calling threads: OpenMP-parallel over output tiles
 * when called outside a parallel region, serial inside one. `epi` may be NULL. */
void gemm_run(vt_isa isa, int m, const float *a, int lda, const gemm_packed_b *b, float *c, int ldc,
              const gemm_epilogue *epi);

/* Micro-kernels: C[mr, nr] (+)= A[mr, kc] · panel[kc, NR] with mr <= MR, nr <= NR. */
void gemm_micro_scalar(int kc, const float *a, int lda, const float *panel, float *c, int ldc,
                       int mr, int nr, int accumulate);
void gemm_micro_avx512(int kc, const float *a, int lda, const float *panel, float *c, int ldc,
                       int mr, int nr, int accumulate);

#endif
