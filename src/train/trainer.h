/* One optimisation step of CLIP training, as open_clip_train/train.py does it:
 * lr from the schedule, forward both towers, ClipLoss, backward, optional
 * global-norm clipping, AdamW on the trainable tensors (weight decay on
 * open_clip's decay group only), then logit_scale clamped to [0, ln 100].
 *
 * With micro_batch < batch (open_clip --accum-freq) the features of the whole
 * batch are computed first, the loss and its feature gradients over the whole
 * batch, then each micro-batch runs forward again and back-propagates its
 * slice: the gradient equals the full-batch gradient while only one
 * micro-batch's activations are held. */
#ifndef VT_TRAIN_TRAINER_H
#define VT_TRAIN_TRAINER_H

#include <stdint.h>

#include "train/clip_train.h"
#include "train/optimizer.h"
#include "train/params.h"

typedef struct {
    train_params *params;
    clip_trainer *model;
    float *exp_avg, *exp_avg_sq;   /* AdamW moments, flat like params->values */
    int64_t step;                  /* optimizer steps completed */
    int batch, micro_batch;
    float *image_features, *text_features, *d_image, *d_text; /* [batch, E] */
} trainer;

typedef struct {
    double loss;
    double grad_norm;     /* before clipping */
    double lr;
    float logit_scale;    /* exp(stored value) after the step, as open_clip logs it */
} step_result;

vt_status trainer_create(train_params *params, int batch, int micro_batch, const clip_train_options *options,
                         trainer **out, vt_error *err);
void trainer_free(trainer *t);

/* Forward + loss + backward only (gradients in params->grads, zeroed first).
 * Returns the loss; logits [n, n] may be NULL. */
double trainer_gradients(trainer *t, const float *pixels, const int32_t *tokens, int n, uint64_t drop_key,
                         float *logits);

/* A whole step at learning rate `lr`. Fails (VT_ERR_VALUE) without touching
 * the weights if the loss or the gradient is not finite. */
vt_status trainer_step(trainer *t, const float *pixels, const int32_t *tokens, int n, double lr,
                       const adamw_hparams *adam, double grad_clip_norm, uint64_t drop_key, step_result *result,
                       vt_error *err);

#endif
