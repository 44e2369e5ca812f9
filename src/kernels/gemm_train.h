/* The GEMMs training needs, in three orientations (row-major fp32), on the
 * packed-panel kernels of kernels/gemm.h; the ISA is the process's kernel
 * table (kernels/kernels.h). tmat_nt / tmat_nn run the inference kernel with
 * B packed on every call (weights change every step); tmat_tn has its own tile
 * driver (gemm_train.c), reading Aᵀ by packing A k-major for
 * gemm_micro_kmajor.c. Every output element is summed over k by one tile in a
 * fixed order, so results do not depend on the thread count. */
#ifndef VT_KERNELS_GEMM_TRAIN_H
#define VT_KERNELS_GEMM_TRAIN_H

/* C[m, n] (+)= A[m, k] · B[n, k]ᵀ       (forward of a Linear: X · Wᵀ) */
void tmat_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
             int accumulate);
/* C[m, n] (+)= A[m, k] · B[k, n]        (input gradient of a Linear: dY · W) */
void tmat_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
             int accumulate);
/* C[m, n] (+)= A[k, m]ᵀ · B[k, n]       (weight gradient of a Linear: dYᵀ · X) */
void tmat_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
             int accumulate);

/* C[m, n] = A[m, k] · B[n, k]ᵀ + bias[n]: tmat_nt with the bias added in the
 * GEMM's epilogue while the tile is in cache (bias may be NULL). */
void tmat_nt_bias(int m, int n, int k, const float *a, int lda, const float *b, int ldb, const float *bias,
                  float *c, int ldc);

/* Rows per block of the deterministic column sums (bias gradients): float
 * sums within a block, double across blocks in order. tmat_tn's k block is
 * the same, so it can produce the same bits from its packed A. */
enum { TRAIN_COLSUM_ROWS = 256 };

/* tmat_tn that also adds Σ_k A[k, i] to colsum[i] (i < m) when it can do so
 * in its own pass over A (C of many tiles: the path is picked from the shape
 * alone); returns 1 then, 0 if the caller must sum the columns itself. */
int tmat_tn_colsum(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                   int accumulate, float *colsum);

/* tmat_tn micro-kernels (gemm_micro_kmajor.c): C[mr, nr] (+)= Σ_k ap[k][0..8)ᵀ ⊗
 * panel[k][0..32), mr <= 8, nr <= 32; ap holds A packed k-major, 8 rows of C
 * per k (unused rows zero), panel is a kernels/gemm.h B panel slice. */
void gemm_micro_kmajor_avx512(int kc, const float *ap, const float *panel, float *c, int ldc, int mr, int nr,
                              int accumulate);
void gemm_micro_kmajor_scalar(int kc, const float *ap, const float *panel, float *c, int ldc, int mr, int nr,
                              int accumulate);

#endif
