#include "kernels/norm.h"
#include "kernels/kernels.h"

#include <immintrin.h>
#include <math.h>

#include "kernels/cpu.h"


/* LayerNorm statistics in fp32: mean first, then the mean squared deviation
 * from it (two passes over a row that is in L1), each summed in 16 lanes so
 * that no lane holds more than dim/16 terms: rounding at the level of
 * PyTorch's own fp32 reductions (its CPU LayerNorm also sums in fp32). An
 * earlier double-precision version cost ~4x more per element, 4% of a
 * forward pass. This plain-C row is the path for CPUs without AVX-512. */
enum { LN_LANES = 16 };

static float lanes_sum(const float *lane, float tail) {
    for (int l = 0; l < LN_LANES; l++) tail += lane[l];
    return tail;
}

static void layernorm_row_portable(float *y, float *mean_out, float *rstd_out, const float *x, int n,
                                   const float *weight, const float *bias, float eps) {
    float lane[LN_LANES] = {0}, tail = 0;
    int i = 0;
    for (; i + LN_LANES <= n; i += LN_LANES)
        for (int l = 0; l < LN_LANES; l++) lane[l] += x[i + l];
    for (int t = i; t < n; t++) tail += x[t];
    float mean = lanes_sum(lane, tail) / (float)n;
    for (int l = 0; l < LN_LANES; l++) lane[l] = 0;
    tail = 0;
    for (i = 0; i + LN_LANES <= n; i += LN_LANES)
        for (int l = 0; l < LN_LANES; l++) lane[l] += (x[i + l] - mean) * (x[i + l] - mean);
    for (int t = i; t < n; t++) tail += (x[t] - mean) * (x[t] - mean);
    float rstd = 1.0f / sqrtf(lanes_sum(lane, tail) / (float)n + eps);
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
    for (i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
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

/* The row kernel follows the process's kernel table (kernels/kernels.h), so
 * that VITAMIN_ISA=scalar also runs the portable row. */
static vt_isa norm_isa(void) { return vt_kernels_process()->isa; }

void layernorm_forward_stats(float *y, float *mean_out, float *rstd_out, const float *x, size_t rows, int dim,
                             const float *weight, const float *bias, float eps) {
    int avx512 = norm_isa() == VT_ISA_AVX512;
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *mean_r = mean_out ? mean_out + r : NULL, *rstd_r = rstd_out ? rstd_out + r : NULL;
        if (avx512)
            layernorm_row_avx512(y + r * dim, mean_r, rstd_r, xr, dim, weight, bias, eps);
        else
            layernorm_row_portable(y + r * dim, mean_r, rstd_r, xr, dim, weight, bias, eps);
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
