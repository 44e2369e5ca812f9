#include "kernels/activation.h"

void gelu_forward(float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = gelu_exact(x[i]);
}

void geglu_forward(float *out, const float *in, size_t rows, int hidden) {
#pragma omp parallel for schedule(static) if (rows * hidden > 65536)
    for (size_t r = 0; r < rows; r++) {
        const float *gate = in + r * 2 * hidden, *lin = gate + hidden;
        float *o = out + r * hidden;
        for (int j = 0; j < hidden; j++) o[j] = gelu_exact(gate[j]) * lin[j];
    }
}
