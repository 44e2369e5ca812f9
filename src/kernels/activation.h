/* Activations. Every GELU in ViTamin (stem, MBConv, GeGLU, text MLP) is the
 * exact erf form, never the tanh approximation (spec §9). */
#ifndef VT_KERNELS_ACTIVATION_H
#define VT_KERNELS_ACTIVATION_H

#include <math.h>
#include <stddef.h>

static inline float gelu_exact(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

/* x[i] = gelu(x[i]) for n elements. */
void gelu_forward(float *x, size_t n);

/* GeGLU gate: out[r, j] = gelu(in[r, j]) * in[r, hidden + j] for the fused
 * [w0 | w1] projection output `in` of shape [rows, 2*hidden]. */
void geglu_forward(float *out, const float *in, size_t rows, int hidden);

#endif
