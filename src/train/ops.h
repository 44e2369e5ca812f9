/* Forward and backward of every operation the two towers are built from, for
 * training (llm.c style: one readable forward and one backward per layer,
 * tested against PyTorch autograd in tests/reference/test_train_ops.py).
 *
 * Conventions
 *  - Activations are NHWC ([B, H, W, C], channels contiguous) or token-major
 *    ([rows, dim]); weights keep PyTorch's layouts (Linear [out, in], Conv2d
 *    [out, in, 3, 3], depthwise [C, 1, 3, 3]) so the flat parameter buffer is
 *    the open_clip state dict.
 *  - Every backward ACCUMULATES (+=) into parameter gradients (dweight, dbias),
 *    because a parameter may be used by several samples/chunks, and OVERWRITES
 *    (=) the input gradient dx unless the comment says otherwise.
 *  - dbias / dweight may be NULL when the layer has no such parameter, or when
 *    the parameter is frozen (--lock-image / --lock-text): then that gradient
 *    is not computed at all. dx may be NULL when the input needs no gradient
 *    (the first layer).
 *  - Functions parallelise with OpenMP internally when called outside a
 *    parallel region. Results are deterministic for any thread count: no
 *    reduction order depends on the number of threads (parameter-gradient sums
 *    are split over fixed-size row blocks whose partial sums are added in block
 *    order).
 *  - Scratch: functions needing temporary memory allocate it themselves, in
 *    thread-local grow-only buffers (core/scratch.h), so steady-state steps
 *    allocate nothing; callers do not pass scratch. */
#ifndef VT_TRAIN_OPS_H
#define VT_TRAIN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/gemm_train.h"

/* ---- GEMM in the three orientations training needs: tmat_nt, tmat_nn,
 * tmat_tn (kernels/gemm_train.h) ---- */

/* ---- Linear (also every 1×1 conv on NHWC maps: rows = pixels) ---- */
/* y[rows, out] = x[rows, in] · weightᵀ + bias (bias may be NULL). */
void linear_forward(float *y, const float *x, const float *weight, const float *bias, int rows, int in, int out);
/* dx = dy · weight (if dx), dweight += dyᵀ · x (if dweight), dbias += Σ_rows dy (if dbias). */
void linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                     const float *weight, int rows, int in, int out);

/* ---- Dense 3×3 conv, padding 1, stride 1 or 2, bias (stem convs, StridedConv) ----
 * x [B, H, W, Cin] NHWC, weight PyTorch [Cout, Cin, 3, 3], y [B, Ho, Wo, Cout],
 * Ho = (H + 2 - 3) / stride + 1. */
void conv3x3_train_forward(float *y, const float *x, const float *weight, const float *bias, int batch, int h,
                           int w, int cin, int cout, int stride);
void conv3x3_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                            const float *weight, int batch, int h, int w, int cin, int cout, int stride);

/* ---- Depthwise 3×3 conv, padding 1, stride 1 or 2, bias (MBConv conv2_kxk) ----
 * weight PyTorch [C, 1, 3, 3]. No activation here (GELU is separate in training). */
void depthwise3x3_train_forward(float *y, const float *x, const float *weight, const float *bias, int batch,
                                int h, int w, int c, int stride);
void depthwise3x3_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                                 const float *weight, int batch, int h, int w, int c, int stride);
/* The MBConv pair depthwise ∘ GELU, with the activation applied to each row
 * while it is in cache instead of in a pass of its own over the map.
 * Forward: y = depthwise(x) (the pre-activation, kept for the backward) and
 * y_gelu = gelu(y). Backward of depthwise(gelu(pre)), x = gelu(pre): dx is
 * the gradient w.r.t. pre, (depthwise input gradient) ⊙ gelu'(pre); dx may
 * alias x (the parameter gradients, which read x, come first). */
void depthwise3x3_gelu_train_forward(float *y, float *y_gelu, const float *x, const float *weight,
                                     const float *bias, int batch, int h, int w, int c, int stride);
void depthwise3x3_gelu_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                                      const float *pre, const float *weight, int batch, int h, int w, int c,
                                      int stride);

/* ---- Depthwise k×k conv, stride 1, padding k/2, bias (ConvNeXt conv_dw, k = 7) ----
 * weight PyTorch [C, 1, k, k]; x, y [B, H, W, C]. */
void depthwise_kxk_train_forward(float *y, const float *x, const float *weight, const float *bias, int batch, int h,
                                 int w, int c, int k);
void depthwise_kxk_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                                  const float *weight, int batch, int h, int w, int c, int k);

/* ---- p×p conv, stride p, bias (ConvNeXt downsample, p = 2) ----
 * x [B, H, W, Cin], weight PyTorch [Cout, Cin, p, p], y [B, H/p, W/p, Cout].
 * The forward saves the patch rows it multiplied ([B·(H/p)·(W/p), p·p·Cin],
 * patches) for the weight gradient; the backward takes them, and dpatches,
 * a temporary of that size (only with dx). */
void patch_conv_train_forward(float *y, float *patches, const float *x, const float *weight, const float *bias,
                              int batch, int h, int w, int cin, int cout, int p);
void patch_conv_train_backward(float *dx, float *dpatches, float *dweight, float *dbias, const float *dy,
                               const float *patches, const float *weight, int batch, int h, int w, int cin, int cout,
                               int p);

/* ---- AvgPool2d(3, stride 2, padding 1, count_include_pad=False) on NHWC ----
 * (forward: kernels/conv.h avgpool3x3s2_forward). dx [B, H, W, C] is overwritten. */
void avgpool3x3s2_backward(float *dx, const float *dy, int batch, int h, int w, int c);

/* ---- LayerNorm over the last dim (also LayerNorm2d on NHWC) ----
 * Saves mean[rows] and rstd[rows] = 1/sqrt(var + eps) (biased variance) for the
 * backward. y may alias x in the forward. */
void layernorm_train_forward(float *y, float *mean, float *rstd, const float *x, const float *weight,
                             const float *bias, size_t rows, int dim, float eps);
/* dx may alias dy. */
void layernorm_train_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                              const float *mean, const float *rstd, const float *weight, size_t rows, int dim);
/* The same with a residual gradient added to dx in the same pass: dx = LN
 * backward + add[rows, dim] (add may be NULL, or alias dx to accumulate). */
void layernorm_train_backward_add(float *dx, const float *add, float *dweight, float *dbias, const float *dy,
                                  const float *x, const float *mean, const float *rstd, const float *weight,
                                  size_t rows, int dim);

/* ---- Exact-erf GELU and QuickGELU (`act` a kernels/activation.h vt_act) ----
 * Forward: act_train_forward (y may alias x), kernels/activation.h act_rows in parallel chunks.
 * Backward from the pre-activation x, dx may alias dy:
 *   GELU       dx = dy · (Φ(x) + x·φ(x));
 *   QuickGELU  dx = dy · (s + 1.702·x·s·(1 − s)), s = σ(1.702·x). */
void act_train_forward(int act, float *y, const float *x, size_t n);
void act_train_backward(int act, float *dx, const float *dy, const float *x, size_t n);
/* GELU's (every ViTamin activation). */
void gelu_train_forward(float *y, const float *x, size_t n);
void gelu_train_backward(float *dx, const float *dy, const float *x, size_t n);
/* The same on the calling thread only (no OpenMP region), for kernels that
 * apply GELU to a row they have just computed, while it is in cache. */
void gelu_train_backward_serial(float *dx, const float *dy, const float *x, size_t n);

/* ---- Gated linear unit over the [w0 | w1] pair ----
 * gate [rows, hidden] (w0 output), lin [rows, hidden] (w1 output):
 * y = act(gate) ⊙ lin with act GELU (GeGLU) or SiLU (SwiGLU), `act` a
 * kernels/activation.h vt_glu; backward writes dgate and dlin. */
void glu_train_forward(int act, float *y, const float *gate, const float *lin, size_t rows, int hidden);
void glu_train_backward(int act, float *dgate, float *dlin, const float *dy, const float *gate, const float *lin,
                        size_t rows, int hidden);

/* ---- Multi-head attention over a packed qkv [B, T, 3D] (layout as in
 * kernels/attention.h: q | k | v, head h at columns h*hd .. h*hd+hd-1) ----
 * out [B, T, D]; probs [B, heads, T, T] saves the softmax for the backward.
 * scale = hd^-0.5; causal: position i attends to j <= i (open_clip text). */
void attention_train_forward(float *out, float *probs, const float *qkv, int batch, int t, int width, int heads,
                             int causal);
/* dqkv [B, T, 3D] overwritten from dout [B, T, D]. */
void attention_train_backward(float *dqkv, const float *dout, const float *qkv, const float *probs, int batch,
                              int t, int width, int heads, int causal);

/* ---- open_clip ClipLoss (single process) ----
 * image [n, e], text [n, e]: the towers' projected, NOT yet normalised outputs.
 * Normalises both (F.normalize, eps 1e-12), logits = exp(logit_scale) · Î T̂ᵀ,
 * loss = (CE(logits, arange) + CE(logitsᵀ, arange)) / 2, mean reduction.
 * Returns the loss; writes dimage, dtext [n, e] and *dlogit_scale (d loss /
 * d logit_scale, the stored log value). logits_out [n, n] may be NULL. */
double clip_loss_forward_backward(const float *image, const float *text, int n, int e, float logit_scale,
                                  float *dimage, float *dtext, float *dlogit_scale, float *logits_out);
/* open_clip's local_loss (data parallel): only rows [row0, row0 + rows) of
 * the gathered features are queries, image→all texts and text→all images,
 * labels row0 + i; mean over those rows. Gradients reach every row. */
double clip_loss_rows_forward_backward(const float *image, const float *text, int n, int e, int row0, int rows,
                                       float logit_scale, float *dimage, float *dtext, float *dlogit_scale,
                                       float *logits_out);
/* The general form: with queries_only, image rows receive only the gradient of
 * their own image→text terms and text rows only that of their text→image
 * terms (open_clip local_loss without gather_with_grad). */
double clip_loss_general(const float *image, const float *text, int n, int e, int row0, int rows, int queries_only,
                         float logit_scale, float *dimage, float *dtext, float *dlogit_scale, float *logits_out);

#endif
