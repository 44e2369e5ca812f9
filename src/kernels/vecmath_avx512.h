/* 16-lane exp and exact-erf GELU for AVX-512 code: static inline so
 * that the GELU can run inside other kernels (the GEMM's fused epilogue) as
 * well as over buffers (activation_avx512.c). Method: see activation.h.
 * Include only from files that compile these with AVX-512 targets. */
#ifndef VT_KERNELS_VECMATH_AVX512_H
#define VT_KERNELS_VECMATH_AVX512_H

#include <immintrin.h>

#include "kernels/gelu_rational.h"

#define VECMATH_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

/* exp(x), Cephes expf: x = n·ln2 + r, exp(r) by a degree-6 polynomial, scaled by 2^n. */
VECMATH_AVX512 static inline __m512 exp_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* Exact-erf GELU, x·Φ(x) = ½x + ½x·erf(x/√2), with erf(u) = u·P(u²)/Q(u²), a
 * degree 6/4 rational fit on |u| <= 3.92 (beyond it erf(u) rounds to ±1 in
 * fp32, so u is clamped there). scripts/fit_gelu_rational.py fits the
 * coefficients (kernels/gelu_rational.h) and folds ½ and 1/√2 into them: ½x·erf(x/√2) = x·xc·P(s)/Q(s),
 * xc = clamp(x, ±3.92√2), s = xc². |error| <= 2.5e-7·max(1, |x|) against
 * double erf (tests/unit/test_kernels.c checks 1e-6), the same accuracy as the
 * Abramowitz–Stegun 7.1.26 + exp form this replaced, in 20 instead of 34
 * instructions: 1.75x faster, which matters because it runs inside the
 * GEMM epilogue of every MBConv expansion (K = 64..128, where GELU cost 35%
 * of the GEMM). 1/Q by rcp14 + one Newton step (~23 bits). */
VECMATH_AVX512 static inline __m512 gelu_ps(__m512 x) {
    const __m512 limit = _mm512_set1_ps(GELU_LIMIT);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), limit)), limit);
    __m512 s = _mm512_mul_ps(xc, xc);
    __m512 p = _mm512_set1_ps(GELU_P6);
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(GELU_P5));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(GELU_P4));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(GELU_P3));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(GELU_P2));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(GELU_P1));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(GELU_P0));
    __m512 q = _mm512_set1_ps(GELU_Q4);
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(GELU_Q3));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(GELU_Q2));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(GELU_Q1));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(GELU_Q0));
    __m512 r = _mm512_rcp14_ps(q);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f)));
    __m512 half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(x, xc), p), r, half_x);
}

/* SiLU, x·σ(x) = x / (1 + exp(−x)), for SwiGLU gates. */
VECMATH_AVX512 static inline __m512 silu_ps(__m512 x) {
    __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* QuickGELU, x·σ(1.702x) = x / (1 + exp(−1.702x)). */
VECMATH_AVX512 static inline __m512 quick_gelu_ps(__m512 x) {
    __m512 e = exp_ps(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* act(x) of kernels/activation.h vt_act (1 GELU, 2 QuickGELU, else identity). */
VECMATH_AVX512 static inline __m512 act_ps(int act, __m512 x) {
    return act == 2 ? quick_gelu_ps(x) : act == 1 ? gelu_ps(x) : x;
}

/* act(g) of a gated linear unit (kernels/activation.h vt_glu; 0 = GELU). */
VECMATH_AVX512 static inline __m512 glu_gate_ps(int silu, __m512 g) { return silu ? silu_ps(g) : gelu_ps(g); }

#endif
