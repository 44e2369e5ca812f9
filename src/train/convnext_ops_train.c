/* The two ConvNeXt layers the other towers do not have, forward and backward
 * (train/ops.h): the k×k depthwise conv (stride 1, padding k/2, the blocks'
 * 7×7 conv_dw) and the p×p stride-p "patch" conv (the 2×2 downsample) on
 * NHWC maps. Same determinism rules as depthwise_train.c: input gradients are
 * gathers (one thread writes each dx row), the depthwise weight and bias
 * gradients are summed over fixed blocks of output rows added in block order. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/scratch.h"
#include "kernels/conv.h"
#include "kernels/simd.h"
#include "train/ops.h"

enum { KXK_ROWS_PER_BLOCK = 4 };

static int run_parallel(size_t work) { return work >= 32768 && !omp_in_parallel(); }

static _Thread_local vt_scratch kxk_taps, kxk_partials, kxk_totals, patch_ohwi, patch_dw;

/* PyTorch [C, 1, k, k] → [k·k][C]: a tap's weights contiguous over channels. */
static float *weight_to_taps(const float *weight, int c, int k) {
    int kk = k * k;
    float *taps = vt_scratch_get(&kxk_taps, sizeof(float) * (size_t)kk * c);
    for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < kk; t++) taps[(size_t)t * c + ch] = weight[(size_t)ch * kk + t];
    return taps;
}

VT_CLONES static void mul_add(float *restrict acc, const float *restrict a, const float *restrict b, int c) {
    for (int ch = 0; ch < c; ch++) acc[ch] += a[ch] * b[ch];
}

VT_CLONES static void add_into(float *restrict acc, const float *restrict a, int c) {
    for (int ch = 0; ch < c; ch++) acc[ch] += a[ch];
}

void depthwise_kxk_train_forward(float *y, const float *x, const float *weight, const float *bias, int batch, int h,
                                 int w, int c, int k) {
    /* The inference kernel on reordered taps: training and inference convolve identically. */
    depthwise_kxk_forward(y, x, batch, h, w, c, k, weight_to_taps(weight, c, k), bias);
}

/* Partials of output rows [r0, r1) (flattened b·H + oy): part_w [k·k][C] += dy · x at each tap, part_b += dy. */
static void kxk_param_block(float *part_w, float *part_b, const float *dy, const float *x, int h, int w, int c,
                            int k, size_t r0, size_t r1) {
    int pad = k / 2;
    for (size_t r = r0; r < r1; r++) {
        int b = (int)(r / h), oy = (int)(r % h);
        const float *img = x + (size_t)b * h * w * c;
        for (int ox = 0; ox < w; ox++) {
            const float *g = dy + (r * w + ox) * c;
            if (part_b) add_into(part_b, g, c);
            if (!part_w) continue;
            for (int ky = 0; ky < k; ky++) {
                int iy = oy + ky - pad;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < k; kx++) {
                    int ix = ox + kx - pad;
                    if (ix >= 0 && ix < w) mul_add(part_w + (size_t)(ky * k + kx) * c, g, img + ((size_t)iy * w + ix) * c, c);
                }
            }
        }
    }
}

/* dx row iy of image b: Σ over the taps that read it of dy · w (stride 1:
 * input (iy, ix) is read by output (iy − ky + pad, ix − kx + pad)). */
static void kxk_input_row(float *dx_row, const float *dy_img, const float *taps, int h, int w, int c, int k, int iy) {
    int pad = k / 2;
    for (int ix = 0; ix < w; ix++) {
        float *acc = dx_row + (size_t)ix * c;
        memset(acc, 0, sizeof(float) * c);
        for (int ky = 0; ky < k; ky++) {
            int oy = iy - ky + pad;
            if (oy < 0 || oy >= h) continue;
            for (int kx = 0; kx < k; kx++) {
                int ox = ix - kx + pad;
                if (ox >= 0 && ox < w)
                    mul_add(acc, dy_img + ((size_t)oy * w + ox) * c, taps + (size_t)(ky * k + kx) * c, c);
            }
        }
    }
}

void depthwise_kxk_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                                  const float *weight, int batch, int h, int w, int c, int k) {
    int kk = k * k;
    if (dweight || dbias) {
        size_t rows = (size_t)batch * h, blocks = (rows + KXK_ROWS_PER_BLOCK - 1) / KXK_ROWS_PER_BLOCK;
        size_t per = (size_t)(kk + 1) * c; /* [k·k][C] weight partials, then [C] bias partials */
        float *partials = vt_scratch_get(&kxk_partials, sizeof(float) * per * blocks);
#pragma omp parallel for schedule(static) if (run_parallel(rows * w * c))
        for (size_t blk = 0; blk < blocks; blk++) {
            float *part = partials + blk * per;
            memset(part, 0, sizeof(float) * per);
            size_t r0 = blk * KXK_ROWS_PER_BLOCK, r1 = r0 + KXK_ROWS_PER_BLOCK < rows ? r0 + KXK_ROWS_PER_BLOCK : rows;
            kxk_param_block(dweight ? part : NULL, dbias ? part + (size_t)kk * c : NULL, dy, x, h, w, c, k, r0, r1);
        }
        double *total = vt_scratch_get(&kxk_totals, sizeof(double) * per);
        memset(total, 0, sizeof(double) * per);
        for (size_t blk = 0; blk < blocks; blk++)
            for (size_t j = 0; j < per; j++) total[j] += partials[blk * per + j];
        for (int ch = 0; ch < c; ch++) {
            if (dweight)
                for (int t = 0; t < kk; t++) dweight[(size_t)ch * kk + t] += (float)total[(size_t)t * c + ch];
            if (dbias) dbias[ch] += (float)total[(size_t)kk * c + ch];
        }
    }
    if (!dx) return;
    const float *taps = weight_to_taps(weight, c, k);
    size_t rows = (size_t)batch * h, row_len = (size_t)w * c;
#pragma omp parallel for schedule(static) if (run_parallel(rows * row_len))
    for (size_t r = 0; r < rows; r++)
        kxk_input_row(dx + r * row_len, dy + (r / h) * h * row_len, taps, h, w, c, k, (int)(r % h));
}

/* The inverse of patchify_nhwc: patch rows [batch, H/p, W/p, p·p·C] in
 * (ky, kx, c) order back onto x [batch, H, W, C]; pixels past (H/p)·p, which
 * the conv never read, get 0. */
static void unpatchify_nhwc(float *x, const float *patches, int batch, int h, int w, int c, int p) {
    int ho = h / p, wo = w / p;
    size_t rows = (size_t)batch * h;
#pragma omp parallel for schedule(static) if (run_parallel(rows * w * c))
    for (size_t r = 0; r < rows; r++) {
        int b = (int)(r / h), iy = (int)(r % h), oy = iy / p, ky = iy % p;
        float *row = x + r * w * c;
        if (oy >= ho) {
            memset(row, 0, sizeof(float) * w * c);
            continue;
        }
        for (int ix = 0; ix < w; ix++) {
            int ox = ix / p, kx = ix % p;
            if (ox >= wo) {
                memset(row + (size_t)ix * c, 0, sizeof(float) * c);
                continue;
            }
            const float *src = patches + (((size_t)b * ho + oy) * wo + ox) * (size_t)p * p * c + (size_t)(ky * p + kx) * c;
            memcpy(row + (size_t)ix * c, src, sizeof(float) * c);
        }
    }
}

void patch_conv_train_forward(float *y, float *patches, const float *x, const float *weight, const float *bias,
                              int batch, int h, int w, int cin, int cout, int p) {
    float *ohwi = vt_scratch_get(&patch_ohwi, sizeof(float) * (size_t)cout * cin * p * p);
    conv_weight_to_ohwi(ohwi, weight, cout, cin, p);
    patchify_nhwc(patches, x, batch, h, w, cin, p);
    linear_forward(y, patches, ohwi, bias, batch * (h / p) * (w / p), p * p * cin, cout);
}

void patch_conv_train_backward(float *dx, float *dpatches, float *dweight, float *dbias, const float *dy,
                               const float *patches, const float *weight, int batch, int h, int w, int cin, int cout,
                               int p) {
    int rows = batch * (h / p) * (w / p), len = p * p * cin;
    float *ohwi = vt_scratch_get(&patch_ohwi, sizeof(float) * (size_t)cout * len);
    conv_weight_to_ohwi(ohwi, weight, cout, cin, p);
    float *dw = NULL;
    if (dweight) {
        dw = vt_scratch_get(&patch_dw, sizeof(float) * (size_t)cout * len);
        memset(dw, 0, sizeof(float) * (size_t)cout * len);
    }
    linear_backward(dx ? dpatches : NULL, dw, dbias, dy, patches, ohwi, rows, len, cout);
    if (dw) /* [out][ky][kx][in] → PyTorch [out][in][ky][kx], accumulated */
        for (int o = 0; o < cout; o++)
            for (int ci = 0; ci < cin; ci++)
                for (int t = 0; t < p * p; t++)
                    dweight[((size_t)o * cin + ci) * p * p + t] += dw[(size_t)o * len + (size_t)t * cin + ci];
    if (dx) unpatchify_nhwc(dx, dpatches, batch, h, w, cin, p);
}
