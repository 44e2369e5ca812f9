#include "kernels/norm.h"

#include <immintrin.h>
#include <math.h>

#include "kernels/simd.h"

/* LayerNorm statistics in fp32, 16 lanes (one AVX-512 vector under the
 * x86-64-v4 clone) plus a scalar tail: mean first, then the mean squared
 * deviation from it (two passes over a row that is in L1). The lanes hold at
 * most dim/16 terms each, so the rounding stays at the level of PyTorch's
 * own fp32 reductions (its CPU LayerNorm also sums in fp32). The earlier
 * double-precision version cost ~4x more per element, 4% of a forward pass.
 * These plain-C loops are the path for CPUs without AVX-512. */
enum { LN_LANES = 16 };

VT_CLONES static float row_mean(const float *x, int n) {
    float lane[LN_LANES] = {0};
    int i = 0;
    for (; i + LN_LANES <= n; i += LN_LANES)
        for (int l = 0; l < LN_LANES; l++) lane[l] += x[i + l];
    float s = 0;
    for (; i < n; i++) s += x[i];
    for (int l = 0; l < LN_LANES; l++) s += lane[l];
    return s / (float)n;
}

VT_CLONES static float row_variance(const float *x, int n, float mean) {
    float lane[LN_LANES] = {0};
    int i = 0;
    for (; i + LN_LANES <= n; i += LN_LANES)
        for (int l = 0; l < LN_LANES; l++) {
            float d = x[i + l] - mean;
            lane[l] += d * d;
        }
    float s = 0;
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    for (int l = 0; l < LN_LANES; l++) s += lane[l];
    return s / (float)n;
}

VT_CLONES static void normalize_affine(float *y, const float *x, int n, float mean, float rstd, const float *weight,
                                       const float *bias) {
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
}

/* One row with AVX-512: the same arithmetic in one function (tree reductions,
 * no per-call dispatch), which matters for the conv stages' 64-channel rows. */
__attribute__((target("avx512f,fma"))) static void layernorm_row_avx512(float *y, float *mean_out, float *rstd_out,
                                                                      const float *x, int n, const float *weight,
                                                                      const float *bias, float eps) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + i));
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    if (i < n) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail, x + i));
    float mean = _mm512_reduce_add_ps(acc) / (float)n;
    __m512 vmean = _mm512_set1_ps(mean);
    acc = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vmean);
        acc = _mm512_fmadd_ps(d, d, acc);
    }
    if (i < n) {
        __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + i), vmean);
        acc = _mm512_fmadd_ps(d, d, acc);
    }
    float rstd = 1.0f / sqrtf(_mm512_reduce_add_ps(acc) / (float)n + eps);
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
    __m512 vrstd = _mm512_set1_ps(rstd);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmean), vrstd);
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(t, _mm512_loadu_ps(weight + i), _mm512_loadu_ps(bias + i)));
    }
    if (i < n) {
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), vmean), vrstd);
        _mm512_mask_storeu_ps(y + i, tail,
                              _mm512_fmadd_ps(t, _mm512_maskz_loadu_ps(tail, weight + i),
                                              _mm512_maskz_loadu_ps(tail, bias + i)));
    }
}

static int cpu_avx512f(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") != 0;
    }
    return known;
}

void layernorm_forward_stats(float *y, float *mean_out, float *rstd_out, const float *x, size_t rows, int dim,
                             const float *weight, const float *bias, float eps) {
    int avx512 = cpu_avx512f();
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        if (avx512) {
            layernorm_row_avx512(y + r * dim, mean_out ? mean_out + r : NULL, rstd_out ? rstd_out + r : NULL, xr, dim,
                                 weight, bias, eps);
            continue;
        }
        float mean = row_mean(xr, dim), rstd = 1.0f / sqrtf(row_variance(xr, dim, mean) + eps);
        if (mean_out) mean_out[r] = mean;
        if (rstd_out) rstd_out[r] = rstd;
        normalize_affine(y + r * dim, xr, dim, mean, rstd, weight, bias);
    }
}

void layernorm_forward(float *y, const float *x, size_t rows, int dim, const float *weight,
                       const float *bias, float eps) {
    layernorm_forward_stats(y, NULL, NULL, x, rows, dim, weight, bias, eps);
}

void l2_normalize_rows(float *y, const float *x, size_t rows, int dim) {
    for (size_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * inv;
    }
}
