#include "kernels/norm.h"

#include <math.h>


void layernorm_forward(float *y, const float *x, size_t rows, int dim, const float *weight,
                       const float *bias, float eps) {
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        /* Two passes in double: the statistics are then exact to fp32 rounding,
         * so we sit as close to PyTorch as any fp32 summation order can. */
        double sum = 0;
        for (int i = 0; i < dim; i++) sum += xr[i];
        double mean = sum / dim, var = 0;
        for (int i = 0; i < dim; i++) {
            double d = xr[i] - mean;
            var += d * d;
        }
        var /= dim;
        float rstd = (float)(1.0 / sqrt(var + eps)), meanf = (float)mean;
        for (int i = 0; i < dim; i++) {
            yr[i] = (xr[i] - meanf) * rstd * weight[i] + bias[i];
        }
    }
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
