/* See elementwise.h. */
#include "train/elementwise.h"

void ew_add_scaled(float *out, const float *a, const float *b, const float *gamma, size_t rows, int w) {
    size_t n = rows * (size_t)w;
#pragma omp parallel for schedule(static) if (ew_parallel(n))
    for (size_t s = 0; s < n; s += EW_CHUNK) {
        size_t e = s + EW_CHUNK < n ? s + EW_CHUNK : n;
        if (gamma)
            for (size_t i = s; i < e; i++) out[i] = a[i] + b[i] * gamma[i % (size_t)w];
        else
            for (size_t i = s; i < e; i++) out[i] = a[i] + b[i];
    }
}
