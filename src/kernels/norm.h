/* LayerNorm over the last (contiguous) dimension: y = (x − mean) / sqrt(var + eps)
 * · weight + bias, biased variance. In NHWC activations this is timm's
 * LayerNorm2d (normalise the channels of each pixel). */
#ifndef VT_KERNELS_NORM_H
#define VT_KERNELS_NORM_H

#include <stddef.h>

/* x: [rows, dim] (may alias y); weight, bias: [dim]. */
void layernorm_forward(float *y, const float *x, size_t rows, int dim, const float *weight,
                       const float *bias, float eps);
/* The same, also writing each row's mean and 1/sqrt(var + eps) (either may be
 * NULL) for the training backward. */
void layernorm_forward_stats(float *y, float *mean, float *rstd, const float *x, size_t rows, int dim,
                             const float *weight, const float *bias, float eps);

/* y[r] = x[r] / max(||x[r]||, 1e-12), like F.normalize. */
void l2_normalize_rows(float *y, const float *x, size_t rows, int dim);

#endif
