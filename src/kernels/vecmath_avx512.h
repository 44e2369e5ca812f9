/* 16-lane exp, erf and exact-erf GELU for AVX-512 code: static inline so
 * that the GELU can run inside other kernels (the GEMM's fused epilogue) as
 * well as over buffers (activation_avx512.c). Method: see activation.h.
 * Include only from files that compile these with AVX-512 targets. */
#ifndef VT_KERNELS_VECMATH_AVX512_H
#define VT_KERNELS_VECMATH_AVX512_H

#include <immintrin.h>

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

/* erf(x) = sign(x)·(1 − t·P(t)·exp(−x²)), t = 1/(1 + 0.3275911|x|) (A&S 7.1.26). */
VECMATH_AVX512 static inline __m512 erf_ps(__m512 x) {
    const __m512 sign_mask = _mm512_set1_ps(-0.0f);
    __m512 sign = _mm512_and_ps(x, sign_mask);
    __m512 ax = _mm512_andnot_ps(sign_mask, x);
    /* t = 1/d by rcp14 + one Newton step (~23 bits): a division costs 3x more here. */
    __m512 d = _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f));
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    __m512 e = exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), ax), ax));
    __m512 y = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.0f));
    return _mm512_or_ps(y, sign);
}

VECMATH_AVX512 static inline __m512 gelu_ps(__m512 x) {
    __m512 e = erf_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752440f)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

#endif
