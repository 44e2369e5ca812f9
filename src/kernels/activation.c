#include "kernels/activation.h"

#include "kernels/simd.h"

void act_rows(vt_isa isa, vt_act act, float *y, const float *x, size_t n) {
    if (isa == VT_ISA_AVX512) {
        act_rows_avx512(act, y, x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = act_exact(act, x[i]);
}

void glu_row(vt_isa isa, vt_glu act, float *out, const float *gate, const float *lin, size_t n) {
    if (isa == VT_ISA_AVX512) {
        glu_row_avx512(act, out, gate, lin, n);
        return;
    }
    for (size_t j = 0; j < n; j++) out[j] = glu_gate(act, gate[j]) * lin[j];
}

/* The unnormalised exponentials, then one scaling pass. */
VT_CLONES void softmax_row(vt_isa isa, float *row, size_t n) {
    float inv = 1.0f / softmax_exp_row(isa, row, n, 1.0f);
    for (size_t j = 0; j < n; j++) row[j] *= inv;
}

float softmax_exp_row(vt_isa isa, float *row, size_t n, float scale) {
    if (isa == VT_ISA_AVX512) return softmax_exp_row_avx512(row, n, scale);
    float mx = row[0];
    for (size_t j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    float sum = 0;
    for (size_t j = 0; j < n; j++) {
        row[j] = expf(scale * row[j] - scale * mx);
        sum += row[j];
    }
    return sum;
}
