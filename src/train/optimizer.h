/* AdamW as torch.optim.AdamW computes it (open_clip's trainer: betas and eps
 * from the command line, decoupled weight decay lr·wd·p on the decay group),
 * warmup + cosine learning rate (open_clip_train/scheduler.py: cosine_lr), and
 * global-norm gradient clipping (torch.nn.utils.clip_grad_norm_). */
#ifndef VT_TRAIN_OPTIMIZER_H
#define VT_TRAIN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float beta1, beta2, eps;  /* open_clip defaults for ViT-style models: 0.9, 0.98, 1e-6 */
    float weight_decay;       /* open_clip --wd default 0.2 */
} adamw_hparams;

/* One AdamW step (torch semantics, step counted from 1 after increment) on n
 * values: p -= lr·wd·p (only if decay), m = β1 m + (1-β1) g, v = β2 v + (1-β2) g²,
 * p -= lr · (m / (1-β1^step)) / (sqrt(v / (1-β2^step)) + eps). `step` is the
 * step number AFTER incrementing (1 for the first step). */
void adamw_update(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, size_t n, float lr,
                  int decay, int64_t step, const adamw_hparams *h);

/* open_clip cosine_lr: step < warmup: base_lr·(step+1)/warmup; else
 * 0.5·(1 + cos(π·e/es))·base_lr with e = step - warmup, es = total - warmup.
 * (`step` counts from 0.) Also "const" (base_lr after warmup) and
 * "const-cooldown" are open_clip options; only cosine and const here. */
double lr_cosine(double base_lr, int64_t warmup, int64_t total_steps, int64_t step);
double lr_const(double base_lr, int64_t warmup, int64_t step);

/* Global L2 norm of the gradient (computed in double, fixed summation order)
 * and, if max_norm > 0 and the norm exceeds it, scales every gradient by
 * max_norm / (norm + 1e-6) as clip_grad_norm_ does. Returns the norm before clipping. */
double clip_grad_global_norm(float *grad, size_t n, double max_norm);

/* The two halves of clip_grad_global_norm, for gradients split across ranks
 * (ZeRO-1): Σ g² over n values (double, fixed order), and the clipping scale
 * applied for a given global norm. */
double grad_sum_squares(const float *grad, size_t n);
void grad_clip_to_norm(float *grad, size_t n, double norm, double max_norm);

#endif
