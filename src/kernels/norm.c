#include "kernels/norm.h"

#include <math.h>

#include "kernels/simd.h"

/* Sum of x[0..n) in double, in 8 lanes so the compiler can vectorise it. */
VT_CLONES static double sum_double(const float *x, int n) {
    double lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += x[i + l];
    double s = 0;
    for (; i < n; i++) s += x[i];
    for (int l = 0; l < 8; l++) s += lane[l];
    return s;
}

/* Σ (x − mean)² in double, 8 lanes. */
VT_CLONES static double sum_squared_deviation(const float *x, int n, double mean) {
    double lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            double d = x[i + l] - mean;
            lane[l] += d * d;
        }
    double s = 0;
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    for (int l = 0; l < 8; l++) s += lane[l];
    return s;
}

VT_CLONES static void normalize_affine(float *y, const float *x, int n, float mean, float rstd, const float *weight,
                                       const float *bias) {
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
}

void layernorm_forward_stats(float *y, float *mean_out, float *rstd_out, const float *x, size_t rows, int dim,
                             const float *weight, const float *bias, float eps) {
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        /* Two passes in double: the statistics are exact to fp32 rounding, so
         * we sit as close to PyTorch as any fp32 summation order can. */
        double mean = sum_double(xr, dim) / dim;
        double var = sum_squared_deviation(xr, dim, mean) / dim;
        float m = (float)mean, rstd = (float)(1.0 / sqrt(var + eps));
        if (mean_out) mean_out[r] = m;
        if (rstd_out) rstd_out[r] = rstd;
        normalize_affine(y + r * dim, xr, dim, m, rstd, weight, bias);
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
