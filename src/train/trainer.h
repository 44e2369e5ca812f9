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
#include "train/dist.h"
#include "train/optimizer.h"
#include "train/params.h"

/* Data parallel (issue 5), with open_clip's ClipLoss options. */
typedef struct {
    dist_ctx *dist;         /* NULL: one process */
    int local_loss;         /* --local-loss: each rank's rows against all columns */
    int gather_with_grad;   /* --gather-with-grad: gradients flow back through the all-gather */
    int zero1;              /* --zero1: each rank keeps and updates 1/N of the AdamW state */
} trainer_dist_options;

typedef struct {
    train_params *params;
    clip_trainer *model;
    /* AdamW moments for the flat range [moment_begin, moment_end) of the
     * parameter buffer (everything, or this rank's shard with ZeRO-1);
     * exp_avg[i - moment_begin] belongs to parameter value i. */
    float *exp_avg, *exp_avg_sq;
    size_t moment_begin, moment_end;
    int64_t step;                  /* optimizer steps completed */
    int batch, micro_batch;        /* per process */
    float *image_features, *text_features, *d_image, *d_text; /* [batch, E] */
    trainer_dist_options dist;
    int rank, world;
    size_t *shard;                 /* [world + 1] ZeRO-1 shard offsets into the flat buffer */
    float *global_image, *global_text, *d_global_image, *d_global_text; /* [world·batch, E] */
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

/* Makes the trainer data parallel (call right after trainer_create, before
 * loading moments). With ZeRO-1 the moments shrink to this rank's shard. */
vt_status trainer_set_distributed(trainer *t, const trainer_dist_options *options, vt_error *err);

/* Forward + loss + backward only (gradients in params->grads, zeroed first),
 * then, with several ranks, the gradients averaged over ranks (all-reduce, or
 * with ZeRO-1 reduce-scatter: only this rank's shard is valid). n is this
 * process's part of the global batch. Returns the loss over the global batch;
 * logits [n, n] may be NULL (single process only). */
double trainer_gradients(trainer *t, const float *pixels, const int32_t *tokens, int n, uint64_t drop_key,
                         float *logits);

/* A whole step at learning rate `lr`. Fails (VT_ERR_VALUE) without touching
 * the weights if the loss or the gradient is not finite. */
vt_status trainer_step(trainer *t, const float *pixels, const int32_t *tokens, int n, double lr,
                       const adamw_hparams *adam, double grad_clip_norm, uint64_t drop_key, step_result *result,
                       vt_error *err);

#endif
