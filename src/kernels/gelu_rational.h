/* The one GELU of vitamin.c: exact-erf GELU, x·Φ(x), with erf(x/√2) as the
 * degree 6/4 rational function that scripts/fit_gelu_rational.py fits,
 * ½·erf(x/√2) = xc·P(s)/Q(s), xc = clamp(x, ±GELU_LIMIT), s = xc² (beyond the
 * clamp erf rounds to ±1 in fp32). |GELU error| <= 2.5e-7·max(1, |x|) against
 * double erf. The coefficients live here only: the AVX-512 kernel
 * (vecmath_avx512.h, also inside the GEMM epilogue), the portable inference
 * path and training's forward and backward (train/activation_train.c) all
 * evaluate this one function. The scalar form here divides exactly where the
 * AVX-512 one refines a reciprocal estimate (~1 ulp apart). */
#ifndef VT_KERNELS_GELU_RATIONAL_H
#define VT_KERNELS_GELU_RATIONAL_H

#define GELU_LIMIT 5.54371716f
#define GELU_P6 1.100497559e-10f
#define GELU_P5 -2.203402395e-08f
#define GELU_P4 3.292209493e-06f
#define GELU_P3 1.755827242e-04f
#define GELU_P2 4.542947328e-03f
#define GELU_P1 3.643660000e-02f
#define GELU_P0 3.989421426e-01f
#define GELU_Q4 6.400901220e-05f
#define GELU_Q3 1.861176234e-03f
#define GELU_Q2 2.939137782e-02f
#define GELU_Q1 2.579973944e-01f
#define GELU_Q0 1.0f

/* ½·erf(x/√2) = Φ(x) − ½. Branch-free selects, so loops over it vectorise. */
static inline float gelu_half_erf(float x) {
    float xc = x < -GELU_LIMIT ? -GELU_LIMIT : x;
    xc = xc > GELU_LIMIT ? GELU_LIMIT : xc;
    float s = xc * xc;
    float p = ((((((GELU_P6 * s + GELU_P5) * s + GELU_P4) * s + GELU_P3) * s + GELU_P2) * s + GELU_P1) * s + GELU_P0);
    float q = ((((GELU_Q4 * s + GELU_Q3) * s + GELU_Q2) * s + GELU_Q1) * s + GELU_Q0);
    return xc * p / q;
}

/* Φ(x), the standard normal CDF. */
static inline float gelu_cdf(float x) { return 0.5f + gelu_half_erf(x); }

/* gelu(x) = x·Φ(x). */
static inline float gelu_rational(float x) { return x * gelu_cdf(x); }

#endif
