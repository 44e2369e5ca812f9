/* AVX-512 activations, GLU gates and softmax rows over buffers (the method: activation.h). */
#include <immintrin.h>

#include "kernels/activation.h"
#include "kernels/vecmath_avx512.h"

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

/* y = act(x) (vecmath_avx512.h act_ps), 16 lanes at a time; the act is
 * tested once per call, not per vector. */
TARGET_AVX512 static inline void act_rows_fixed(int act, float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, act_ps(act, _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, act_ps(act, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

TARGET_AVX512 void act_rows_avx512(vt_act act, float *y, const float *x, size_t n) {
    if (act == VT_ACT_GELU)
        act_rows_fixed(VT_ACT_GELU, y, x, n);
    else if (act == VT_ACT_QUICKGELU)
        act_rows_fixed(VT_ACT_QUICKGELU, y, x, n);
    else if (y != x)
        act_rows_fixed(VT_ACT_NONE, y, x, n);
}

TARGET_AVX512 void glu_row_avx512(vt_glu act, float *out, const float *gate, const float *lin, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(glu_gate_ps(act, _mm512_loadu_ps(gate + i)), _mm512_loadu_ps(lin + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 g = glu_gate_ps(act, _mm512_maskz_loadu_ps(m, gate + i));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, lin + i)));
    }
}

TARGET_AVX512 float softmax_exp_row_avx512(float *row, size_t n, float scale) {
    /* Two running maxima halve the max pass's dependency chain. */
    __m512 mx0 = _mm512_set1_ps(-INFINITY), mx1 = mx0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(row + i));
        mx1 = _mm512_max_ps(mx1, _mm512_loadu_ps(row + i + 16));
    }
    for (; i + 16 <= n; i += 16) mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(row + i));
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    if (i < n) mx1 = _mm512_mask_max_ps(mx1, tail, mx1, _mm512_maskz_loadu_ps(tail, row + i));
    __m512 vscale = _mm512_set1_ps(scale);
    __m512 shift = _mm512_set1_ps(-scale * _mm512_reduce_max_ps(_mm512_max_ps(mx0, mx1)));
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= n; i += 32) {
        __m512 e0 = exp_ps(_mm512_fmadd_ps(_mm512_loadu_ps(row + i), vscale, shift));
        __m512 e1 = exp_ps(_mm512_fmadd_ps(_mm512_loadu_ps(row + i + 16), vscale, shift));
        _mm512_storeu_ps(row + i, e0);
        _mm512_storeu_ps(row + i + 16, e1);
        sum0 = _mm512_add_ps(sum0, e0);
        sum1 = _mm512_add_ps(sum1, e1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp_ps(_mm512_fmadd_ps(_mm512_loadu_ps(row + i), vscale, shift));
        _mm512_storeu_ps(row + i, e);
        sum0 = _mm512_add_ps(sum0, e);
    }
    if (i < n) {
        __m512 e = exp_ps(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, row + i), vscale, shift));
        _mm512_mask_storeu_ps(row + i, tail, e);
        sum1 = _mm512_add_ps(sum1, _mm512_maskz_mov_ps(tail, e));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}
