/* Spatial kernels of the conv stages, all on NHWC activations ([B, H, W, C],
 * channels contiguous). 1×1 convolutions are plain GEMMs over pixels and live in
 * gemm.c; 3×3 dense convolutions are im2col + GEMM with weights reordered at
 * load time to [out][kh][kw][in]. */
#ifndef VT_KERNELS_CONV_H
#define VT_KERNELS_CONV_H

#include <stddef.h>

#include "kernels/cpu.h"

/* Output size of a 3×3 conv / pool with padding 1. */
static inline int conv3x3_out(int size, int stride) { return (size + 2 - 3) / stride + 1; }

/* im2col of output rows [oy0, oy1) of one image: x [H, W, C] → cols
 * [(oy1-oy0)*Wo, 9*C], column order (kh, kw, c), zero padding 1. Serial: the
 * callers parallelise over (image, row band). */
void im2col_3x3_rows(float *cols, const float *x, int h, int w, int c, int stride, int oy0, int oy1);

/* Depthwise 3×3, padding 1, bias, then exact GELU (MBConv conv2_kxk + act), for
 * output rows [oy0, oy1) of one image. `x` holds input rows [x_row0, x_row0 +
 * x_rows) of an [H, W, C] map (rows outside [0, H) are the zero padding);
 * weight [3][3][C] (reordered from PyTorch [C,1,3,3]); bias [C] or NULL.
 * Writes y = gelu(conv) [(oy1-oy0), Wo, C] unless y is NULL, and the
 * pre-activation conv to `pre` unless that is NULL (training keeps it for
 * GELU's derivative; inference passes NULL). Serial. */
void depthwise3x3_gelu_rows(vt_isa isa, float *y, float *pre, const float *x, int x_row0, int x_rows, int h, int w,
                            int c, int stride, int oy0, int oy1, const float *weight, const float *bias);
void depthwise3x3_gelu_rows_avx512(float *y, float *pre, const float *x, int x_row0, int h, int w, int c, int stride,
                                   int oy0, int oy1, const float *weight, const float *bias);

/* Depthwise k×k, stride 1, padding k/2 (odd k), plus bias: ConvNeXt's 7×7
 * conv_dw. x, y: [batch, H, W, C] (not aliased); weight [k][k][C]
 * (reordered from PyTorch [C, 1, k, k]); bias [C] or NULL. Parallel over
 * (image, row); the channel loops vectorise (VT_CLONES). */
void depthwise_kxk_forward(float *y, const float *x, int batch, int h, int w, int c, int k, const float *weight,
                           const float *bias);

/* Non-overlapping p×p patches of an NHWC map as rows: x [batch, H, W, C] →
 * patches [batch, H/p, W/p, p·p·C] in (ky, kx, c) order, so that a p×p
 * stride-p conv is one GEMM with its weight reordered to [out][ky][kx][in]
 * (ConvNeXt's downsample). Rows and columns past (H/p)·p are dropped. */
void patchify_nhwc(float *patches, const float *x, int batch, int h, int w, int c, int p);

/* AvgPool2d(3, stride 2, padding 1, count_include_pad=False) on NHWC. */
void avgpool3x3s2_forward(float *y, const float *x, int batch, int h, int w, int c);

/* Reorders a PyTorch conv weight [out, in, k, k] to [out][k][k][in]. */
void conv_weight_to_ohwi(float *dst, const float *src, int out, int in, int k);
/* Reorders a PyTorch conv weight [out, in, 3, 3] to [out][3][3][in]. */
void conv3x3_weight_to_ohwi(float *dst, const float *src, int out, int in);

#endif
