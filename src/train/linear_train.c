/* Linear layer (and every 1×1 conv on NHWC maps) forward and backward for
 * training: GEMMs from train_gemm.c plus a deterministic bias-gradient sum. */
#include <string.h>

#include "kernels/simd.h"
#include "train/ops.h"
#include "kernels/gemm_train.h"
#include "kernels/kernels.h"

/* y[rows, out] = x[rows, in] · weight[out, in]ᵀ + bias[out] */
void linear_forward(float *y, const float *x, const float *weight, const float *bias, int rows, int in, int out) {
    tmat_nt_bias(rows, out, in, x, in, weight, in, bias, y, out);
}

/* Column sums in fixed blocks: 64 columns per task (parallel), rows summed in
 * blocks of 256 in float (vectorised, short chains), block sums accumulated in
 * double in row order. Nothing depends on the thread count. */
enum { DBIAS_COLS = 64, DBIAS_ROWS = TRAIN_COLSUM_ROWS };

VT_CLONES static void column_sums_block(float *dbias, const float *dy, int rows, int cols, int c0, int width) {
    double total[DBIAS_COLS] = {0};
    float part[DBIAS_COLS];
    for (int r0 = 0; r0 < rows; r0 += DBIAS_ROWS) {
        int r1 = r0 + DBIAS_ROWS < rows ? r0 + DBIAS_ROWS : rows;
        memset(part, 0, sizeof(part));
        for (int r = r0; r < r1; r++) {
            const float *row = dy + (size_t)r * cols + c0;
            for (int j = 0; j < width; j++) part[j] += row[j];
        }
        for (int j = 0; j < width; j++) total[j] += part[j];
    }
    for (int j = 0; j < width; j++) dbias[c0 + j] += (float)total[j];
}

/* dbias[cols] += Σ_r dy[r, cols] */
static void bias_gradient(float *dbias, const float *dy, int rows, int cols) {
    int blocks = (cols + DBIAS_COLS - 1) / DBIAS_COLS;
#pragma omp parallel for schedule(static) if (blocks > 1 && (size_t)rows * cols >= (1u << 16))
    for (int b = 0; b < blocks; b++) {
        int c0 = b * DBIAS_COLS, width = cols - c0 < DBIAS_COLS ? cols - c0 : DBIAS_COLS;
        column_sums_block(dbias, dy, rows, cols, c0, width);
    }
}

/* dy [rows, out], x [rows, in], weight [out, in]:
 * dx[rows, in] = dy · weight; dweight[out, in] += dyᵀ · x; dbias[out] += Σ_rows dy. */
void linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                     const float *weight, int rows, int in, int out) {
    if (dx) tmat_nn(rows, in, out, dy, out, weight, in, dx, in, 0);
    /* The weight gradient's pass over dy also yields the bias gradient when
     * the GEMM takes its large-C path (same bits as bias_gradient). */
    int bias_done = 0;
    if (dweight) bias_done = tmat_tn_colsum(out, in, rows, dy, out, x, in, dweight, in, 1, dbias);
    if (dbias && !bias_done) bias_gradient(dbias, dy, rows, out);
}
