/* AdamW, the open_clip learning-rate schedules and global-norm gradient
 * clipping (see train/optimizer.h).
 *
 * adamw_update repeats torch.optim.AdamW's single-tensor CPU path operation by
 * operation, each rounded to fp32 as torch rounds it (scalars computed in
 * double from the hyperparameters' decimal values, as Python does, then
 * converted to fp32 when applied):
 *   param.mul_(1 − lr·wd)                        p = p · c
 *   exp_avg.lerp_(grad, 1 − β1)                  m = fma(w, g − m, m)   (torch's vector lerp is an FMA)
 *   exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2)   v = fma((1 − β2)·g, g, v·β2)
 *   denom = exp_avg_sq.sqrt() / sqrt(bc2) + eps
 *   param.addcdiv_(exp_avg, denom, −lr/bc1)      p = p + (−step_size · m) / denom
 * Measured against torch 2.13 on random data this reproduces every value
 * except torch's vector sqrt, which is off by one ulp on ~1% of inputs. */
#include "train/optimizer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/simd.h"

/* Elements per block of the gradient-norm sum: fixed, so the order of the
 * double partial sums never depends on the thread count. */
enum { NORM_BLOCK = 1 << 15 };

static int run_parallel(size_t n) { return n >= 2 * NORM_BLOCK && !omp_in_parallel(); }

/* One span of adamw_update. fmaf is one instruction in the AVX-512 clone (the
 * baseline clone calls libm's exact fmaf: slower, same values). The loop only
 * vectorises when sqrtf needs no errno handling (-fno-math-errno); otherwise it
 * runs scalar, which costs a fraction of a second per step even for the
 * largest towers, small next to the backward pass.
 * torch's lerp(start, end, w) is fma(w, end − start, start) for |w| < 0.5 and
 * fma(w − 1, end − start, end) otherwise: lerp_from_end picks the second. */
VT_CLONES static void adamw_span(
    float *param, const float *grad, float *exp_avg, float *exp_avg_sq, size_t n, float decay_factor,
    float lerp_coeff, int lerp_from_end, float beta2, float one_minus_beta2, float bias_correction2_sqrt,
    float eps, float neg_step_size) {
    for (size_t i = 0; i < n; i++) {
        float g = grad[i], m = exp_avg[i];
        float p = param[i] * decay_factor;
        m = fmaf(lerp_coeff, g - m, lerp_from_end ? g : m);
        float v = fmaf(one_minus_beta2 * g, g, exp_avg_sq[i] * beta2);
        float denom = sqrtf(v) / bias_correction2_sqrt + eps;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = p + (neg_step_size * m) / denom;
    }
}

/* The decimal a float hyperparameter was written as: the shortest decimal that
 * rounds to it (what a user types, 0.9 or 0.98, has <= 7 digits and comes
 * back exactly). torch keeps betas and weight decay as Python doubles, so
 * 1 − β computed from the float 0.98f instead of 0.98 would differ from torch
 * by ~1e-6 relative, and exp_avg_sq with it. */
static double typed_decimal(float value) {
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)value);
        if (strtof(text, NULL) == value) return strtod(text, NULL);
    }
    return value;
}

void adamw_update(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, size_t n, float lr,
                  int decay, int64_t step, const adamw_hparams *h) {
    double lr_d = lr, beta1 = typed_decimal(h->beta1), beta2 = typed_decimal(h->beta2);
    /* torch skips the multiply when the group's weight decay is 0; a factor
     * of exactly 1 changes no value either. */
    float decay_factor =
        decay && h->weight_decay != 0.0f ? (float)(1.0 - lr_d * typed_decimal(h->weight_decay)) : 1.0f;
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    float neg_step_size = (float)-(lr_d / bias_correction1);
    float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    float lerp_weight = (float)(1.0 - beta1), one_minus_beta2 = (float)(1.0 - beta2);
    int lerp_from_end = !(fabsf(lerp_weight) < 0.5f);
    float lerp_coeff = lerp_from_end ? lerp_weight - 1.0f : lerp_weight;
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t s = 0; s < n; s += NORM_BLOCK) {
        size_t len = n - s < NORM_BLOCK ? n - s : NORM_BLOCK;
        adamw_span(param + s, grad + s, exp_avg + s, exp_avg_sq + s, len, decay_factor, lerp_coeff,
                   lerp_from_end, h->beta2, one_minus_beta2, bias_correction2_sqrt, h->eps, neg_step_size);
    }
}

/* open_clip_train/scheduler.py: _warmup_lr. */
static double warmup_lr(double base_lr, int64_t warmup, int64_t step) {
    return base_lr * (double)(step + 1) / (double)warmup;
}

double lr_cosine(double base_lr, int64_t warmup, int64_t total_steps, int64_t step) {
    if (step < warmup) return warmup_lr(base_lr, warmup, step);
    double e = (double)(step - warmup), es = (double)(total_steps - warmup);
    /* Python divides by zero here when total == warmup; such a run never reaches
     * this branch, so any finite value will do. */
    if (es <= 0) return base_lr;
    return 0.5 * (1.0 + cos(M_PI * e / es)) * base_lr;
}

double lr_const(double base_lr, int64_t warmup, int64_t step) {
    return step < warmup ? warmup_lr(base_lr, warmup, step) : base_lr;
}

/* Σ x² over n values in double, 8 lanes. */
VT_CLONES static double sum_squares_double(const float *x, size_t n) {
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += (double)x[i + l] * x[i + l];
    double s = 0;
    for (; i < n; i++) s += (double)x[i] * x[i];
    for (int l = 0; l < 8; l++) s += lane[l];
    return s;
}

VT_CLONES static void scale_span(float *x, size_t n, float factor) {
    for (size_t i = 0; i < n; i++) x[i] *= factor;
}

double grad_sum_squares(const float *grad, size_t n) {
    size_t blocks = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    double *partial = malloc(sizeof(double) * (blocks ? blocks : 1));
    if (!partial) abort(); /* out of memory: nothing sensible to return */
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t b = 0; b < blocks; b++) {
        size_t s = b * NORM_BLOCK, len = n - s < NORM_BLOCK ? n - s : NORM_BLOCK;
        partial[b] = sum_squares_double(grad + s, len);
    }
    /* Block order, whatever the thread count. */
    double total = 0;
    for (size_t b = 0; b < blocks; b++) total += partial[b];
    free(partial);
    return total;
}

void grad_clip_to_norm(float *grad, size_t n, double norm, double max_norm) {
    if (max_norm <= 0) return;
    /* clip_grad_norm_ multiplies by min(max_norm / (norm + 1e-6), 1),
     * computed on fp32 tensors as reciprocal(norm + 1e-6) · max_norm
     * (Python's float / Tensor); repeating those roundings gives torch's
     * coefficient bit for bit whenever the two norms round alike. A
     * non-finite norm leaves the gradient alone: the caller checks it. */
    float coef = (1.0f / ((float)norm + 1e-6f)) * (float)max_norm;
    if (!isfinite(norm) || coef >= 1.0f) return;
    size_t blocks = (n + NORM_BLOCK - 1) / NORM_BLOCK;
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t b = 0; b < blocks; b++) {
        size_t s = b * NORM_BLOCK, len = n - s < NORM_BLOCK ? n - s : NORM_BLOCK;
        scale_span(grad + s, len, coef);
    }
}

double clip_grad_global_norm(float *grad, size_t n, double max_norm) {
    double norm = sqrt(grad_sum_squares(grad, n));
    grad_clip_to_norm(grad, n, norm, max_norm);
    return norm;
}
