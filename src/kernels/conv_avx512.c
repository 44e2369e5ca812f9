/* AVX-512 depthwise 3×3 + bias + GELU (the MBConv conv2_kxk + act): per output
 * row and 16-channel block, the 9 tap weights and the bias stay in registers
 * while the row's pixels stream past, and each pixel's sum is GELU'd in
 * registers before its one store (training also stores the pre-activation
 * its backward needs). The portable loop in conv.c instead adds
 * tap by tap into the output and runs GELU as a separate pass per pixel. */
#include <immintrin.h>

#include "kernels/conv.h"
#include "kernels/vecmath_avx512.h"

VECMATH_AVX512 void depthwise3x3_gelu_rows_avx512(float *y, float *pre, const float *x, int x_row0, int h, int w, int c,
                                                  int stride, int oy0, int oy1, const float *weight,
                                                  const float *bias) {
    int wo = conv3x3_out(w, stride);
    for (int oy = oy0; oy < oy1; oy++) {
        const float *rows[3];
        for (int ky = 0; ky < 3; ky++) {
            int iy = oy * stride + ky - 1;
            rows[ky] = iy < 0 || iy >= h ? NULL : x + (size_t)(iy - x_row0) * w * c;
        }
        size_t row_at = (size_t)(oy - oy0) * wo * c;
        for (int ch = 0; ch < c; ch += 16) {
            __mmask16 m = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1);
            __m512 wk[9];
            for (int t = 0; t < 9; t++) wk[t] = _mm512_maskz_loadu_ps(m, weight + (size_t)t * c + ch);
            __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + ch) : _mm512_setzero_ps();
            for (int ox = 0; ox < wo; ox++) {
                int ix0 = ox * stride - 1;
                __m512 acc = b;
                for (int ky = 0; ky < 3; ky++) {
                    if (!rows[ky]) continue;
                    for (int kx = 0; kx < 3; kx++) {
                        int ix = ix0 + kx;
                        if (ix < 0 || ix >= w) continue;
                        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, rows[ky] + (size_t)ix * c + ch), wk[ky * 3 + kx],
                                              acc);
                    }
                }
                size_t at = row_at + (size_t)ox * c + ch;
                if (pre) _mm512_mask_storeu_ps(pre + at, m, acc);
                if (y) _mm512_mask_storeu_ps(y + at, m, gelu_ps(acc));
            }
        }
    }
}
