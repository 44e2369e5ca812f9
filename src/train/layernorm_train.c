/* LayerNorm over the last dim for training: forward saving mean/rstd, and the
 * backward with deterministic weight/bias gradients (see train/ops.h). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/simd.h"
#include "kernels/norm.h"
#include "train/ops.h"
#include "core/scratch.h"

/* Rows per block of the parameter-gradient reduction. Fixed (not derived from
 * the thread count) so that the summation order never depends on it. */
enum { LN_ROWS_PER_BLOCK = 64 };

static int run_parallel(size_t work) { return work >= 32768 && !omp_in_parallel(); }

void layernorm_train_forward(float *y, float *mean, float *rstd, const float *x, const float *weight,
                             const float *bias, size_t rows, int dim, float eps) {
    /* The inference kernel, keeping the statistics: training and inference
     * normalise identically. */
    layernorm_forward_stats(y, mean, rstd, x, rows, dim, weight, bias, eps);
}

/* Sums over one row of g = dy·weight and g·x̂ (x̂ = (x − mean)·rstd), in double. */
VT_CLONES static void row_sums(const float *dy, const float *x, const float *weight, int dim, float mean,
                               float rstd, double *sum_g, double *sum_g_xhat) {
    double a[8] = {0}, b[8] = {0};
    int i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int l = 0; l < 8; l++) {
            float g = dy[i + l] * weight[i + l];
            float xhat = (x[i + l] - mean) * rstd;
            a[l] += g;
            b[l] += (double)g * xhat;
        }
    double sa = 0, sb = 0;
    for (; i < dim; i++) {
        float g = dy[i] * weight[i];
        float xhat = (x[i] - mean) * rstd;
        sa += g;
        sb += (double)g * xhat;
    }
    for (int l = 0; l < 8; l++) {
        sa += a[l];
        sb += b[l];
    }
    *sum_g = sa;
    *sum_g_xhat = sb;
}

/* dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)) (+ add), elementwise; dx may alias
 * dy or add (`omp simd`: element-for-element aliasing carries no dependence,
 * but would send the compiler's own overlap check to its scalar loop). */
VT_CLONES static void row_input_grad(float *dx, const float *dy, const float *add, const float *x,
                                     const float *weight, int dim, float mean, float rstd, float mean_g,
                                     float mean_g_xhat) {
    if (add) {
#pragma omp simd
        for (int i = 0; i < dim; i++) {
            float xhat = (x[i] - mean) * rstd;
            dx[i] = rstd * (dy[i] * weight[i] - mean_g - xhat * mean_g_xhat) + add[i];
        }
    } else {
#pragma omp simd
        for (int i = 0; i < dim; i++) {
            float xhat = (x[i] - mean) * rstd;
            dx[i] = rstd * (dy[i] * weight[i] - mean_g - xhat * mean_g_xhat);
        }
    }
}

/* part_w[dim] += dy·x̂, part_b[dim] += dy over one row (double accumulators). */
VT_CLONES static void row_param_grads(double *part_w, double *part_b, const float *dy, const float *x, int dim,
                                      float mean, float rstd) {
    for (int i = 0; i < dim; i++) {
        float xhat = (x[i] - mean) * rstd;
        if (part_w) part_w[i] += (double)dy[i] * xhat;
        if (part_b) part_b[i] += dy[i];
    }
}

/* Rows [r0, r1): parameter-gradient partials first (they read dy, which dx may
 * overwrite), then dx row by row. */
static void backward_block(float *dx, const float *add, double *part_w, double *part_b, const float *dy,
                           const float *x, const float *mean, const float *rstd, const float *weight, size_t r0,
                           size_t r1, int dim) {
    for (size_t r = r0; r < r1; r++) {
        const float *dyr = dy + r * dim, *xr = x + r * dim;
        if (part_w || part_b) row_param_grads(part_w, part_b, dyr, xr, dim, mean[r], rstd[r]);
        if (dx) {
            double sum_g, sum_g_xhat;
            row_sums(dyr, xr, weight, dim, mean[r], rstd[r], &sum_g, &sum_g_xhat);
            row_input_grad(dx + r * dim, dyr, add ? add + r * dim : NULL, xr, weight, dim, mean[r], rstd[r],
                           (float)(sum_g / dim), (float)(sum_g_xhat / dim));
        }
    }
}

/* Per-call scratch, grow-only (core/scratch.h): the block partials are
 * 6 MB for the first MBConv at batch 32. */
static _Thread_local vt_scratch ln_partials, ln_totals;

void layernorm_train_backward_add(float *dx, const float *add, float *dweight, float *dbias, const float *dy,
                                  const float *x, const float *mean, const float *rstd, const float *weight,
                                  size_t rows, int dim) {
    size_t blocks = (rows + LN_ROWS_PER_BLOCK - 1) / LN_ROWS_PER_BLOCK;
    int want_params = (dweight || dbias) && rows > 0;
    /* One double partial per block and parameter element; block order fixes the sum order. */
    double *partials = want_params ? vt_scratch_get(&ln_partials, blocks * 2 * (size_t)dim * sizeof(double)) : NULL;
#pragma omp parallel for schedule(static) if (run_parallel(rows * (size_t)dim))
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t r0 = blk * LN_ROWS_PER_BLOCK, r1 = r0 + LN_ROWS_PER_BLOCK < rows ? r0 + LN_ROWS_PER_BLOCK : rows;
        double *part_w = dweight ? partials + blk * 2 * dim : NULL;
        double *part_b = dbias ? partials + blk * 2 * dim + dim : NULL;
        /* The scratch is reused: each block clears its own partials. */
        if (part_w) memset(part_w, 0, sizeof(double) * dim);
        if (part_b) memset(part_b, 0, sizeof(double) * dim);
        backward_block(dx, add, part_w, part_b, dy, x, mean, rstd, weight, r0, r1, dim);
    }
    if (!want_params) return;
    /* Blocks in order, each added to all elements: the same per-element order
     * as an element-outer loop, but reading the partials sequentially. */
    double *total = vt_scratch_get(&ln_totals, 2 * (size_t)dim * sizeof(double));
    memset(total, 0, 2 * (size_t)dim * sizeof(double));
    for (size_t blk = 0; blk < blocks; blk++) {
        const double *p = partials + blk * 2 * dim;
        if (dweight)
            for (int i = 0; i < dim; i++) total[i] += p[i];
        if (dbias)
            for (int i = 0; i < dim; i++) total[dim + i] += p[dim + i];
    }
    for (int i = 0; i < dim; i++) {
        if (dweight) dweight[i] += (float)total[i];
        if (dbias) dbias[i] += (float)total[dim + i];
    }
}

void layernorm_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                              const float *mean, const float *rstd, const float *weight, size_t rows, int dim) {
    layernorm_train_backward_add(dx, NULL, dweight, dbias, dy, x, mean, rstd, weight, rows, dim);
}
