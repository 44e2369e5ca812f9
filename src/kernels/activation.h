/* Activations. Every GELU in ViTamin (stem, MBConv, GeGLU, text MLP) is the
 * exact erf form, never the tanh approximation (timm vitamin.py builds nn.GELU with approximate="none").
 *
 * Every path evaluates erf(x/√2) as the rational function fitted by
 * scripts/fit_gelu_rational.py (kernels/gelu_rational.h; GELU |error| <=
 * 2.5e-7·max(1, |x|), as with PyTorch's own vectorised erf): the AVX-512
 * kernel in vecmath_avx512.h, the portable loops here, and training. */
#ifndef VT_KERNELS_ACTIVATION_H
#define VT_KERNELS_ACTIVATION_H

#include <math.h>
#include <stddef.h>

#include "kernels/cpu.h"
#include "kernels/gelu_rational.h"

/* The one GELU (kernels/gelu_rational.h), for the portable paths. */
static inline float gelu_exact(float x) { return gelu_rational(x); }

/* The gate of a gated-linear-unit MLP, out = act(gate) ⊙ lin: GeGLU (every
 * ViTamin; timm vitamin.py GeGluMlp) or SwiGLU (SiLU, x·σ(x), as LLaMA-style
 * MLPs use; a custom-size model can choose it). Choosing one is this one
 * argument, from the config to the GEMM epilogue and the training op. */
typedef enum { VT_GLU_GELU = 0, VT_GLU_SILU = 1 } vt_glu;

static inline float silu_exact(float x) { return x / (1.0f + expf(-x)); }
static inline float glu_gate(vt_glu act, float g) { return act == VT_GLU_SILU ? silu_exact(g) : gelu_exact(g); }

/* The activation of a plain (ungated) MLP or conv, one argument from the
 * config to the GEMM epilogue and the training op: exact GELU (ViTamin, most
 * open_clip models) or QuickGELU, x·σ(1.702x) (open_clip QuickGELU in
 * transformer.py: OpenAI's CLIP weights and the "-quickgelu" configs). */
typedef enum { VT_ACT_NONE = 0, VT_ACT_GELU = 1, VT_ACT_QUICKGELU = 2 } vt_act;

static inline float quick_gelu_exact(float x) { return x / (1.0f + expf(-1.702f * x)); }
static inline float act_exact(vt_act act, float x) {
    return act == VT_ACT_QUICKGELU ? quick_gelu_exact(x) : act == VT_ACT_GELU ? gelu_exact(x) : x;
}

/* y[i] = act(x[i]) for n elements, on the calling thread; y may alias x.
 * Inference (GEMM epilogues, the stem) and training's forward both run it. */
void act_rows(vt_isa isa, vt_act act, float *y, const float *x, size_t n);
void act_rows_avx512(vt_act act, float *y, const float *x, size_t n);
/* x[i] = gelu(x[i]). */
static inline void gelu_inplace(vt_isa isa, float *x, size_t n) { act_rows(isa, VT_ACT_GELU, x, x, n); }

/* out[j] = act(gate[j]) * lin[j], on the calling thread. */
void glu_row(vt_isa isa, vt_glu act, float *out, const float *gate, const float *lin, size_t n);
void glu_row_avx512(vt_glu act, float *out, const float *gate, const float *lin, size_t n);

/* row[0..n) = softmax(row[0..n)), n >= 1, on the calling thread. */
void softmax_row(vt_isa isa, float *row, size_t n);
/* The unnormalised half of softmax(scale · row), scale > 0: row[j] =
 * exp(scale·row[j] − scale·max(row)), returning their sum. Attention divides
 * its n×d output by the sum instead of its n×n probabilities. */
float softmax_exp_row(vt_isa isa, float *row, size_t n, float scale);
float softmax_exp_row_avx512(float *row, size_t n, float scale);


#endif
