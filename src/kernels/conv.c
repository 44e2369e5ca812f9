#include "kernels/conv.h"

#include <string.h>

#include "kernels/activation.h"
#include "kernels/simd.h"

VT_CLONES void im2col_3x3_rows(float *cols, const float *x, int h, int w, int c, int stride, int oy0, int oy1) {
    int wo = conv3x3_out(w, stride);
    for (int oy = oy0; oy < oy1; oy++) {
        for (int ox = 0; ox < wo; ox++) {
            float *dst = cols + ((size_t)(oy - oy0) * wo + ox) * 9 * c;
            for (int ky = 0; ky < 3; ky++) {
                int iy = oy * stride + ky - 1;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = ox * stride + kx - 1;
                    float *d = dst + (ky * 3 + kx) * c;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                        memset(d, 0, sizeof(float) * c);
                    else
                        memcpy(d, x + ((size_t)iy * w + ix) * c, sizeof(float) * c);
                }
            }
        }
    }
}

VT_CLONES void depthwise3x3_gelu_rows(vt_isa isa, float *y, float *pre, const float *x, int x_row0, int x_rows, int h,
                                      int w, int c, int stride, int oy0, int oy1, const float *weight,
                                      const float *bias) {
    if (isa == VT_ISA_AVX512) {
        depthwise3x3_gelu_rows_avx512(y, pre, x, x_row0, h, w, c, stride, oy0, oy1, weight, bias);
        return;
    }
    int wo = conv3x3_out(w, stride);
    for (int oy = oy0; oy < oy1; oy++) {
        for (int ox = 0; ox < wo; ox++) {
            size_t at = ((size_t)(oy - oy0) * wo + ox) * c;
            float *restrict out = pre ? pre + at : y + at;
            for (int ch = 0; ch < c; ch++) out[ch] = bias ? bias[ch] : 0.0f;
            for (int ky = 0; ky < 3; ky++) {
                int iy = oy * stride + ky - 1;
                if (iy < 0 || iy >= h) continue;
                const float *row = x + (size_t)(iy - x_row0) * w * c;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = ox * stride + kx - 1;
                    if (ix < 0 || ix >= w) continue;
                    const float *restrict in = row + (size_t)ix * c, *restrict wk = weight + (ky * 3 + kx) * c;
                    for (int ch = 0; ch < c; ch++) out[ch] += in[ch] * wk[ch];
                }
            }
            if (!y) continue;
            if (pre) memcpy(y + at, out, sizeof(float) * c);
            gelu_inplace(isa, y + at, (size_t)c);
        }
    }
    (void)x_rows;
}

VT_CLONES void avgpool3x3s2_forward(float *y, const float *x, int batch, int h, int w, int c) {
    int ho = conv3x3_out(h, 2), wo = conv3x3_out(w, 2);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < batch; b++) {
        for (int oy = 0; oy < ho; oy++) {
            for (int ox = 0; ox < wo; ox++) {
                float *out = y + (((size_t)b * ho + oy) * wo + ox) * c;
                memset(out, 0, sizeof(float) * c);
                int count = 0;
                for (int iy = 2 * oy - 1; iy <= 2 * oy + 1; iy++) {
                    if (iy < 0 || iy >= h) continue;
                    for (int ix = 2 * ox - 1; ix <= 2 * ox + 1; ix++) {
                        if (ix < 0 || ix >= w) continue;
                        const float *in = x + (((size_t)b * h + iy) * w + ix) * c;
                        for (int ch = 0; ch < c; ch++) out[ch] += in[ch];
                        count++;
                    }
                }
                /* count_include_pad=False: divide by the valid taps only. */
                for (int ch = 0; ch < c; ch++) out[ch] /= (float)count;
            }
        }
    }
}

VT_CLONES void depthwise_kxk_forward(float *y, const float *x, int batch, int h, int w, int c, int k,
                                     const float *weight, const float *bias) {
    int pad = k / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < batch; b++) {
        for (int oy = 0; oy < h; oy++) {
            const float *img = x + (size_t)b * h * w * c;
            float *row = y + (((size_t)b * h + oy) * w) * c;
            for (int ox = 0; ox < w; ox++) {
                float *restrict out = row + (size_t)ox * c;
                for (int ch = 0; ch < c; ch++) out[ch] = bias ? bias[ch] : 0.0f;
                for (int ky = 0; ky < k; ky++) {
                    int iy = oy + ky - pad;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int ix = ox + kx - pad;
                        if (ix < 0 || ix >= w) continue;
                        const float *restrict in = img + ((size_t)iy * w + ix) * c;
                        const float *restrict wk = weight + (size_t)(ky * k + kx) * c;
                        for (int ch = 0; ch < c; ch++) out[ch] += in[ch] * wk[ch];
                    }
                }
            }
        }
    }
}

void patchify_nhwc(float *patches, const float *x, int batch, int h, int w, int c, int p) {
    int ho = h / p, wo = w / p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < batch; b++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                float *dst = patches + (((size_t)b * ho + oy) * wo + ox) * p * p * c;
                for (int ky = 0; ky < p; ky++)
                    memcpy(dst + (size_t)ky * p * c, x + (((size_t)b * h + oy * p + ky) * w + (size_t)ox * p) * c,
                           (size_t)p * c * sizeof(float));
            }
}

void conv_weight_to_ohwi(float *dst, const float *src, int out, int in, int k) {
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++)
            for (int t = 0; t < k * k; t++)
                dst[((size_t)o * k * k + t) * in + i] = src[((size_t)o * in + i) * k * k + t];
}

void conv3x3_weight_to_ohwi(float *dst, const float *src, int out, int in) { conv_weight_to_ohwi(dst, src, out, in, 3); }
