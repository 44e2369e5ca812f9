/* Dense 3×3 convolution (padding 1, stride 1|2, bias) forward and backward for
 * training, on NHWC maps: im2col + GEMM as in inference. The batch is walked
 * in bands of output rows (an image's rows, or several whole images) so the
 * im2col buffer stays bounded and cache-resident: the stem's second conv at
 * batch 32 × 112² would otherwise need a 0.9 GB column matrix. Band sizes
 * depend only on the shape, so every sum runs in the same order for any
 * thread count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/simd.h"
#include "train/ops.h"
#include "kernels/gemm_train.h"
#include "core/scratch.h"
#include "kernels/kernels.h"

/* Floats of one band's column matrix (4 MiB, about two cores' L2): the GEMM
 * then reads columns that im2col has just written from cache (16 MiB bands
 * ran ~20% slower for the stem), and a band still has enough output tiles to
 * keep the threads busy (16 rows × 112 pixels for the stem). */
enum { CONV_BAND_FLOATS = 1 << 20 };

/* ---- Thread-local growable scratch: 0 = reordered weight / its gradient,
 * 1 = column matrix, 2 = column-matrix gradient ---- */
static _Thread_local vt_scratch conv_buf[3];

static float *conv_scratch_get(int slot, size_t floats) {
    return vt_scratch_get(&conv_buf[slot], floats * sizeof(float));
}

/* Output rows (over the whole batch, image-major) per band: at least one. */
static int band_rows(int wo, int cin, int total_rows) {
    size_t per_row = (size_t)wo * 9 * cin;
    size_t rows = CONV_BAND_FLOATS / (per_row ? per_row : 1);
    if (rows < 1) rows = 1;
    return rows > (size_t)total_rows ? total_rows : (int)rows;
}

/* cols [g1-g0, wo, 9*cin] for global output rows [g0, g1) (row g = image g/ho,
 * row g%ho), one task per output row. */
static void im2col_band(float *cols, const float *x, int g0, int g1, int h, int w, int cin, int stride) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    size_t row_floats = (size_t)wo * 9 * cin;
#pragma omp parallel for schedule(static) if ((size_t)(g1 - g0) * row_floats >= (1u << 16))
    for (int g = g0; g < g1; g++) {
        int b = g / ho, oy = g % ho;
        im2col_3x3_rows(cols + (size_t)(g - g0) * row_floats, x + (size_t)b * h * w * cin, h, w, cin, stride, oy,
                        oy + 1);
    }
}

void conv3x3_train_forward(float *y, const float *x, const float *weight, const float *bias, int batch, int h,
                           int w, int cin, int cout, int stride) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride), total = batch * ho, kdim = 9 * cin;
    if (total <= 0 || cout <= 0) return;
    float *w_ohwi = conv_scratch_get(0, (size_t)cout * kdim);
    conv3x3_weight_to_ohwi(w_ohwi, weight, cout, cin);
    int rows = band_rows(wo, cin, total);
    float *cols = conv_scratch_get(1, (size_t)rows * wo * kdim);
    for (int g0 = 0; g0 < total; g0 += rows) {
        int g1 = g0 + rows < total ? g0 + rows : total;
        im2col_band(cols, x, g0, g1, h, w, cin, stride);
        /* y[pixels, cout] = cols · w_ohwiᵀ + bias */
        tmat_nt_bias((g1 - g0) * wo, cout, kdim, cols, kdim, w_ohwi, kdim, bias, y + (size_t)g0 * wo * cout, cout);
    }
}

/* Adds to input row `row` [w, cin] every tap of dcols that lands on it from
 * output row `src_row` [wo, 9*cin] through kernel row ky. */
VT_CLONES static void col2im_taps(float *row, const float *src_row, int ky, int w, int wo, int cin, int stride) {
    size_t kdim = (size_t)9 * cin;
    for (int ox = 0; ox < wo; ox++)
        for (int kx = 0; kx < 3; kx++) {
            int ix = ox * stride + kx - 1;
            if (ix < 0 || ix >= w) continue;
            const float *src = src_row + ox * kdim + (size_t)(ky * 3 + kx) * cin;
            float *dst = row + (size_t)ix * cin;
            for (int c = 0; c < cin; c++) dst[c] += src[c];
        }
}

/* col2im for one band: scatters dcols [g1-g0, wo, 9*cin] back onto dx, one
 * task per input row (so no two tasks write the same pixel). An input row is
 * zeroed by the first band that reaches it (the one holding its lowest
 * contributing output row), so dx needs no separate clearing pass. For each
 * pixel the terms are added in (band, ky, ox, kx) order: fixed. */
static void col2im_band(float *dx, const float *dcols, int g0, int g1, int h, int w, int cin, int stride) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride), kdim = 9 * cin;
    int b0 = g0 / ho, b1 = (g1 - 1) / ho; /* images the band touches */
    /* Input rows reached: from the band's first output row's top tap (in image
     * b0) to its last output row's bottom tap (in image b1). */
    int lo0 = (g0 % ho) * stride - 1, hi1 = ((g1 - 1) % ho) * stride + 1;
    int first_iy = lo0 < 0 ? 0 : lo0, last_iy = hi1 >= h ? h - 1 : hi1;
    int tasks = (b1 - b0 + 1) * h; /* (image, input row) slots; unreached ones are skipped */
#pragma omp parallel for schedule(static) if ((size_t)(g1 - g0) * wo * kdim >= (1u << 16))
    for (int t = 0; t < tasks; t++) {
        int b = b0 + t / h, iy = t % h;
        if ((b == b0 && iy < first_iy) || (b == b1 && iy > last_iy)) continue;
        /* output rows of this image inside the band */
        int oy_lo = b == b0 ? g0 % ho : 0, oy_hi = b == b1 ? (g1 - 1) % ho : ho - 1;
        /* lowest output row that reads this input row: oy*stride >= iy - 1 */
        int oy_min = iy - 1 <= 0 ? 0 : (iy - 1 + stride - 1) / stride;
        float *row = dx + ((size_t)b * h + iy) * w * cin;
        if (oy_min >= oy_lo && oy_min <= oy_hi) memset(row, 0, sizeof(float) * w * cin);
        for (int ky = 0; ky < 3; ky++) {
            int num = iy + 1 - ky; /* = oy * stride */
            if (num < 0 || num % stride) continue;
            int oy = num / stride;
            if (oy < oy_lo || oy > oy_hi) continue;
            col2im_taps(row, dcols + ((size_t)b * ho + oy - g0) * wo * kdim, ky, w, wo, cin, stride);
        }
    }
}

void conv3x3_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                            const float *weight, int batch, int h, int w, int cin, int cout, int stride) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride), total = batch * ho, kdim = 9 * cin;
    if (total <= 0 || cout <= 0) return;
    /* dbias: column sums of dy, the Linear bias gradient with no dx / dweight. */
    if (dbias) linear_backward(NULL, NULL, dbias, dy, NULL, NULL, total * wo, 0, cout);
    if (!dx && !dweight) return;
    int rows = band_rows(wo, cin, total);
    /* slot 0 holds the reordered weight (for dx) followed by the reordered
     * weight gradient (for dweight) */
    float *w_ohwi = conv_scratch_get(0, 2 * (size_t)cout * kdim);
    float *dw_ohwi = w_ohwi + (size_t)cout * kdim;
    if (dx) conv3x3_weight_to_ohwi(w_ohwi, weight, cout, cin);
    float *cols = dweight ? conv_scratch_get(1, (size_t)rows * wo * kdim) : NULL;
    float *dcols = dx ? conv_scratch_get(2, (size_t)rows * wo * kdim) : NULL;
    for (int g0 = 0; g0 < total; g0 += rows) {
        int g1 = g0 + rows < total ? g0 + rows : total, pixels = (g1 - g0) * wo;
        const float *dy_band = dy + (size_t)g0 * wo * cout;
        if (dweight) {
            /* dw_ohwi[cout, 9cin] (+)= dy_bandᵀ · cols */
            im2col_band(cols, x, g0, g1, h, w, cin, stride);
            tmat_tn(cout, kdim, pixels, dy_band, cout, cols, kdim, dw_ohwi, kdim, g0 > 0);
        }
        if (dx) {
            /* dcols[pixels, 9cin] = dy_band · w_ohwi, then scatter onto dx */
            tmat_nn(pixels, kdim, cout, dy_band, cout, w_ohwi, kdim, dcols, kdim, 0);
            col2im_band(dx, dcols, g0, g1, h, w, cin, stride);
        }
    }
    if (dweight) /* back to PyTorch's [cout, cin, 3, 3], accumulating */
        for (int o = 0; o < cout; o++)
            for (int i = 0; i < cin; i++)
                for (int k = 0; k < 9; k++) dweight[((size_t)o * cin + i) * 9 + k] += dw_ohwi[((size_t)o * 9 + k) * cin + i];
}
