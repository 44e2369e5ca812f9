/* open_clip's ClipLoss over a data-parallel global batch (loss.py: ClipLoss
 * with gather_features), for the features of this rank's n samples. */
#ifndef VT_TRAIN_DIST_LOSS_H
#define VT_TRAIN_DIST_LOSS_H

#include "train/dist.h"

typedef struct {
    int local_loss;        /* this rank's rows against all columns, labels offset by rank·n */
    int gather_with_grad;  /* feature gradients flow back through the all-gather (summed over ranks) */
} dist_loss_options;

/* image, text [n, e]: this rank's unnormalised features. Writes d_image,
 * d_text [n, e] and *d_logit_scale for this rank (before DDP's averaging over
 * ranks), and returns the mean of the ranks' losses (the global-batch loss when
 * local_loss or gather_with_grad makes them equal). Scratch: four [world·n, e]
 * buffers (global_image, global_text, d_global_image, d_global_text). */
double dist_clip_loss(dist_ctx *d, const dist_loss_options *o, const float *image, const float *text, int n, int e,
                      float logit_scale, float *d_image, float *d_text, float *d_logit_scale, float *global_image,
                      float *global_text, float *d_global_image, float *d_global_text);

#endif
