/* Depthwise 3×3 conv (padding 1, stride 1|2, bias) forward and backward, and
 * the backward of the AvgPool2d(3, 2, 1, count_include_pad=False) shortcut, on
 * NHWC maps. Every inner loop runs over the contiguous channels (vectorised by
 * VT_CLONES); the outer loops are split over rows with OpenMP.
 *
 * Both input gradients are written as gathers (each dx row is produced by one
 * thread from the dy rows that touch it), so no two threads write the same
 * value and no atomics or scatter buffers are needed. The depthwise weight and
 * bias gradients are sums over every output pixel: they are taken over fixed
 * blocks of output rows, and the blocks' partial sums added in block order, so
 * the result is the same for any thread count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "train/ops.h"
#include "core/scratch.h"

/* Output rows (over the flattened [batch · Ho] row index) per weight-gradient block. */
enum { DW_ROWS_PER_BLOCK = 4 };

static int run_parallel(size_t work) { return work >= 32768 && !omp_in_parallel(); }

/* Grow-only scratch (core/scratch.h): reordered taps, parameter-gradient partials and totals. */
static _Thread_local vt_scratch dw_taps, dw_partials, dw_totals;

/* PyTorch [C, 1, 3, 3] → [9][C], so a tap's weights are contiguous over channels. */
static float *weight_to_taps(const float *weight, int c) {
    float *taps = vt_scratch_get(&dw_taps, sizeof(float) * 9 * (size_t)c);
    for (int ch = 0; ch < c; ch++)
        for (int k = 0; k < 9; k++) taps[(size_t)k * c + ch] = weight[(size_t)ch * 9 + k];
    return taps;
}

/* acc[c] += a[c] · b[c] */
VT_CLONES static void mul_add(float *restrict acc, const float *restrict a, const float *restrict b, int c) {
    for (int ch = 0; ch < c; ch++) acc[ch] += a[ch] * b[ch];
}

VT_CLONES static void add_into(float *restrict acc, const float *restrict a, int c) {
    for (int ch = 0; ch < c; ch++) acc[ch] += a[ch];
}

/* The inference kernel (kernels/conv.c), keeping the pre-activation: training
 * and inference convolve identically. y = depthwise(x), y_gelu = gelu(y)
 * unless NULL. */
void depthwise3x3_gelu_train_forward(float *y, float *y_gelu, const float *x, const float *weight,
                                     const float *bias, int batch, int h, int w, int c, int stride) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    const float *taps = weight_to_taps(weight, c);
    vt_isa isa = vt_kernels_process()->isa;
    size_t rows = (size_t)batch * ho, row_len = (size_t)wo * c;
#pragma omp parallel for schedule(static) if (run_parallel(rows * row_len))
    for (size_t r = 0; r < rows; r++) {
        int b = (int)(r / ho), oy = (int)(r % ho);
        depthwise3x3_gelu_rows(isa, y_gelu ? y_gelu + r * row_len : NULL, y + r * row_len,
                               x + (size_t)b * h * w * c, 0, h, h, w, c, stride, oy, oy + 1, taps, bias);
    }
}

void depthwise3x3_train_forward(float *y, const float *x, const float *weight, const float *bias, int batch,
                                int h, int w, int c, int stride) {
    depthwise3x3_gelu_train_forward(y, NULL, x, weight, bias, batch, h, w, c, stride);
}

/* Output index o that input index i sees through tap k (i = o·stride + k − 1),
 * or −1 if there is none inside [0, out). */
static int output_of_tap(int i, int k, int stride, int out) {
    int t = i + 1 - k;
    if (t < 0 || t % stride) return -1;
    t /= stride;
    return t < out ? t : -1;
}

/* dx row iy of image b: dx_row [W, C] = Σ over the (oy, ox, tap) that read it
 * of dy · w. Pixel by pixel, all nine taps at once, so the pixel's C sums stay
 * in L1 (a whole row of a 56×256 map does not). */
static void input_grad_row(float *dx_row, const float *dy_img, const float *taps, int h, int w, int c, int stride,
                           int iy) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    int oy_of_ky[3];
    for (int ky = 0; ky < 3; ky++) oy_of_ky[ky] = output_of_tap(iy, ky, stride, ho);
    for (int ix = 0; ix < w; ix++) {
        float *acc = dx_row + (size_t)ix * c;
        memset(acc, 0, sizeof(float) * c);
        for (int ky = 0; ky < 3; ky++) {
            if (oy_of_ky[ky] < 0) continue;
            const float *dy_row = dy_img + (size_t)oy_of_ky[ky] * wo * c;
            for (int kx = 0; kx < 3; kx++) {
                int ox = output_of_tap(ix, kx, stride, wo);
                if (ox >= 0) mul_add(acc, dy_row + (size_t)ox * c, taps + (size_t)(ky * 3 + kx) * c, c);
            }
        }
    }
}

/* Weight/bias partials of output rows [r0, r1) (flattened b·Ho + oy):
 * part_w [9][C] += dy · x at each tap, part_b [C] += dy. */
static void param_grad_block(float *part_w, float *part_b, const float *dy, const float *x, int h, int w, int c,
                             int stride, size_t r0, size_t r1) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    for (size_t r = r0; r < r1; r++) {
        int b = (int)(r / ho), oy = (int)(r % ho);
        const float *x_img = x + (size_t)b * h * w * c;
        for (int ox = 0; ox < wo; ox++) {
            const float *g = dy + (r * wo + ox) * c;
            if (part_b) add_into(part_b, g, c);
            if (!part_w) continue;
            for (int ky = 0; ky < 3; ky++) {
                int iy = oy * stride + ky - 1;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = ox * stride + kx - 1;
                    if (ix < 0 || ix >= w) continue;
                    mul_add(part_w + (size_t)(ky * 3 + kx) * c, g, x_img + ((size_t)iy * w + ix) * c, c);
                }
            }
        }
    }
}

/* dweight [C,1,3,3] += Σ blocks (in block order) of part_w [9][C]; dbias [C]
 * likewise. Summed block by block into double totals: the same per-element
 * order as an element-outer loop, but reading the partials sequentially. */
static void reduce_param_partials(float *dweight, float *dbias, const float *partials, size_t blocks, int c) {
    size_t stride = 10 * (size_t)c;
    double *total = vt_scratch_get(&dw_totals, sizeof(double) * stride);
    memset(total, 0, sizeof(double) * stride);
    for (size_t blk = 0; blk < blocks; blk++) {
        const float *p = partials + blk * stride;
        for (size_t j = 0; j < stride; j++) total[j] += p[j];
    }
    for (int ch = 0; ch < c; ch++) {
        if (dweight)
            for (int k = 0; k < 9; k++) dweight[(size_t)ch * 9 + k] += (float)total[(size_t)k * c + ch];
        if (dbias) dbias[ch] += (float)total[9 * (size_t)c + ch];
    }
}

void depthwise3x3_gelu_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                                      const float *pre, const float *weight, int batch, int h, int w, int c,
                                      int stride) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    /* Parameter gradients first: they read x, which dx may overwrite. */
    if (dweight || dbias) {
        size_t rows = (size_t)batch * ho, blocks = (rows + DW_ROWS_PER_BLOCK - 1) / DW_ROWS_PER_BLOCK;
        /* Per block: [9][C] weight partials then [C] bias partials. */
        float *partials = vt_scratch_get(&dw_partials, sizeof(float) * 10 * (size_t)c * blocks);
#pragma omp parallel for schedule(static) if (run_parallel(rows * wo * c))
        for (size_t blk = 0; blk < blocks; blk++) {
            float *part = partials + blk * 10 * (size_t)c;
            memset(part, 0, sizeof(float) * 10 * (size_t)c);
            size_t r0 = blk * DW_ROWS_PER_BLOCK, r1 = r0 + DW_ROWS_PER_BLOCK < rows ? r0 + DW_ROWS_PER_BLOCK : rows;
            param_grad_block(dweight ? part : NULL, dbias ? part + 9 * (size_t)c : NULL, dy, x, h, w, c, stride,
                             r0, r1);
        }
        reduce_param_partials(dweight, dbias, partials, blocks, c);
    }
    if (!dx) return;
    const float *taps = weight_to_taps(weight, c);
    size_t rows = (size_t)batch * h, row_len = (size_t)w * c;
#pragma omp parallel for schedule(static) if (run_parallel(rows * row_len))
    for (size_t r = 0; r < rows; r++) {
        int b = (int)(r / h), iy = (int)(r % h);
        input_grad_row(dx + r * row_len, dy + (size_t)b * ho * wo * c, taps, h, w, c, stride, iy);
        /* Through the GELU that produced x, while the row is in cache. */
        if (pre) gelu_train_backward_serial(dx + r * row_len, dx + r * row_len, pre + r * row_len, row_len);
    }
}

void depthwise3x3_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                                 const float *weight, int batch, int h, int w, int c, int stride) {
    depthwise3x3_gelu_train_backward(dx, dweight, dbias, dy, x, NULL, weight, batch, h, w, c, stride);
}

/* Number of valid taps of pooling window o along an axis of `size` (window 2o−1 .. 2o+1). */
static int pool_taps(int o, int size) {
    int lo = 2 * o - 1 < 0 ? 0 : 2 * o - 1, hi = 2 * o + 1 > size - 1 ? size - 1 : 2 * o + 1;
    return hi - lo + 1;
}

/* acc[c] += g[c] / count (division, as PyTorch's backward divides by the count). */
VT_CLONES static void add_divided(float *restrict acc, const float *restrict g, float count, int c) {
    for (int ch = 0; ch < c; ch++) acc[ch] += g[ch] / count;
}

void avgpool3x3s2_backward(float *dx, const float *dy, int batch, int h, int w, int c) {
    int ho = conv3x3_out(h, 2), wo = conv3x3_out(w, 2);
    size_t rows = (size_t)batch * h;
#pragma omp parallel for schedule(static) if (run_parallel(rows * w * c))
    for (size_t r = 0; r < rows; r++) {
        int b = (int)(r / h), iy = (int)(r % h);
        float *dx_row = dx + r * w * c;
        memset(dx_row, 0, sizeof(float) * w * c);
        for (int ky = 0; ky < 3; ky++) {
            int oy = output_of_tap(iy, ky, 2, ho);
            if (oy < 0) continue;
            const float *dy_row = dy + ((size_t)b * ho + oy) * wo * c;
            for (int ix = 0; ix < w; ix++)
                for (int kx = 0; kx < 3; kx++) {
                    int ox = output_of_tap(ix, kx, 2, wo);
                    if (ox >= 0)
                        add_divided(dx_row + (size_t)ix * c, dy_row + (size_t)ox * c,
                                    (float)(pool_taps(oy, h) * pool_taps(ox, w)), c);
                }
        }
    }
}
