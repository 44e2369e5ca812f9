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
#include <stdint.h>

#include "kernels/cpu.h"

#define GEMM_NR 32 /* columns per packed panel: two AVX-512 vectors */
#define GEMM_MR 8  /* rows per micro-kernel call */

typedef struct {
    int n, k;
    int panels;      /* ceil(n / GEMM_NR) */
    float *data;     /* panels * k * GEMM_NR floats, 64-byte aligned (fp32 weights) */
    uint16_t *bf16;  /* or bf16 panels (gemm_pack_bf16); data is then NULL */
    int amx;         /* bf16 only: multiply with AMX tiles instead of VDPBF16PS */
} gemm_packed_b;

/* Floats needed to pack an [n, k] operand. */
size_t gemm_packed_floats(int n, int k);

/* Packs B into `dst` (gemm_packed_floats(n, k) floats). If `b_is_kn` is 0, B is
 * [n, k] with row stride ldb (a Linear weight, or K in Q·Kᵀ); if 1, B is given
 * as [k, n] with row stride ldb (V in P·V). */
void gemm_pack(const float *b, int n, int k, int ldb, int b_is_kn, float *dst);

/* gemm_pack's b_is_kn = 0 layout for panels [p0, p1) only (8×8 register
 * transposes): training packs one panel per thread with it. */
void gemm_pack_nk(const float *b, int n, int k, int ldb, int p0, int p1, float *dst);

typedef struct {
    float alpha;            /* scales A·Bᵀ (before bias); 1 for plain linear layers */
    const float *bias;      /* [n] or NULL */
    int act;                /* kernels/activation.h vt_act after the bias (0: none) */
    const float *residual;  /* [m, ldr] added last, or NULL. May alias C (same ldc)
                               only with alpha 1 and no activation. */
    int ldr;
    int geglu_cols;         /* > 0: a gated linear unit. B is [w0; w1] laid out by
                               gemm_geglu_interleave and C receives geglu_cols columns,
                               act(w0·a + b0) ⊙ (w1·a + b1). Not with alpha != 1, `act` or a
                               residual. */
    int glu_act;            /* that act: VT_GLU_GELU (0, GeGLU) or VT_GLU_SILU (SwiGLU) */
} gemm_epilogue;

/* GeGLU layout: w0 (gate) and w1 (linear), each [hidden, k] with biases
 * [hidden], become one B of gemm_geglu_rows(hidden) rows in groups of 32: rows
 * 32g..32g+15 are w0 rows 16g..16g+15 and rows 32g+16..32g+31 the same rows
 * of w1 (zero past hidden). Each packed panel then holds a gate vector and
 * its linear partner, so the AVX-512 kernel gates in registers and C never
 * sees the 2·hidden-wide product. */
int gemm_geglu_rows(int hidden);
void gemm_geglu_interleave(const float *w0, const float *w1, const float *b0, const float *b1, int hidden, int k,
                           float *w_out, float *b_out);

/* bf16 weights (opt-in, CPUs with AVX512-BF16): panel p holds, for each pair
 * of k (k = 2q, 2q+1), the 32 columns' two values side by side:
 * bf16[p][q][j][t] = B[p*NR + j][2q + t], rounded to nearest even, zero padded
 * (odd k gets a zero last pair half). A is rounded to bf16 per tile; products
 * accumulate in fp32. */
size_t gemm_packed_bf16_elems(int n, int k);
void gemm_pack_bf16(const float *b, int n, int k, int ldb, uint16_t *dst);
/* Micro-kernel: C[mr, nr] (+)= A·panel over `pairs` k-pairs; a: bf16 rows, lda elements apart. */
void gemm_micro_bf16_avx512(int pairs, const uint16_t *a, int lda, const uint16_t *panel, float *c, int ldc,
                            int mr, int nr, int accumulate);
/* AMX: 1 if the CPU has AMX-BF16 and the kernel granted this process the tile
 * state; then gemm_micro_bf16_amx multiplies 32-row strips, 32 k at a time. */
int gemm_amx_available(void);
void gemm_micro_bf16_amx(int pairs, const uint16_t *a, int lda, const uint16_t *panel, float *c, int ldc, int mr,
                         int nr, int accumulate);
/* dst[r][0..kc_even) = bf16(a[r][0..kc)), zero padded to kc_even, for rows [0, rows). */
void convert_rows_bf16_avx512(uint16_t *dst, int kc_even, const float *a, int lda, int rows, int kc);

/* Runs the product on the calling threads: OpenMP-parallel over output tiles
 * when called outside a parallel region, serial inside one. `epi` may be NULL. */
void gemm_run(vt_isa isa, int m, const float *a, int lda, const gemm_packed_b *b, float *c, int ldc,
              const gemm_epilogue *epi);

/* Micro-kernels: C[mr, nr] (+)= A[mr, kc] · panel[kc, NR] with mr <= MR, nr <= NR. */
void gemm_micro_scalar(int kc, const float *a, int lda, const float *panel, float *c, int ldc,
                       int mr, int nr, int accumulate);
/* What the AVX-512 kernel does to its registers after the last K block:
 * + bias[0..nr) (NULL: none), then the activation, then + residual rows (ldr apart; NULL:
 * none); or, with geglu_out, + bias and geglu_out[r][j] = gelu(sum[r][j]) ·
 * sum[r][16 + j] for j < geglu_cols (a gemm_geglu_interleave panel), C (the
 * partial sums of earlier K blocks) then being only read. */
typedef struct {
    const float *bias;
    int act; /* vt_act */
    const float *residual;
    int ldr;
    float *geglu_out;
    int ld_out, geglu_cols;
    int glu_act; /* kernels/activation.h vt_glu */
} gemm_micro_fused;
/* AVX-512, also prefetching the 8 rows × kc of A at `pf` (lda apart) for the
 * next call while this one runs (pf NULL: none); `fused` NULL: plain store. */
void gemm_micro_avx512(int kc, const float *a, int lda, const float *panel, float *c, int ldc, int mr, int nr,
                       int accumulate, const float *pf, const gemm_micro_fused *fused);

#endif
