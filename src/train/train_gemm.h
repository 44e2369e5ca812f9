/* Internals of train_gemm.c shared by the other training ops (linear, conv,
 * attention); the public GEMMs are tmat_nt / tmat_nn / tmat_tn in ops.h. */
#ifndef VT_TRAIN_TRAIN_GEMM_H
#define VT_TRAIN_TRAIN_GEMM_H

#include "kernels/cpu.h"

/* The ISA the training kernels run (VITAMIN_ISA honoured), chosen once. */
vt_isa train_isa(void);

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
