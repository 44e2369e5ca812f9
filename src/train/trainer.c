/* The training step (trainer.h). */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/ops.h"

static const float LOGIT_SCALE_MAX = 4.6051702f; /* ln 100: open_clip clamps after every step */

vt_status trainer_create(train_params *params, int batch, int micro_batch, const clip_train_options *options,
                         trainer **out, vt_error *err) {
    *out = NULL;
    if (batch < 1 || micro_batch < 1 || micro_batch > batch)
        return vt_fail(err, VT_ERR_ARGUMENT, "batch %d / micro-batch %d: need 1 <= micro-batch <= batch", batch,
                       micro_batch);
    trainer *t = calloc(1, sizeof *t);
    if (!t) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    t->params = params;
    t->batch = batch;
    t->micro_batch = micro_batch;
    size_t e = (size_t)params->cfg.embed_dim, bytes = (params->total * sizeof(float) + 63) & ~(size_t)63;
    size_t fbytes = ((size_t)batch * e * sizeof(float) + 63) & ~(size_t)63;
    t->exp_avg = aligned_alloc(64, bytes);
    t->exp_avg_sq = aligned_alloc(64, bytes);
    t->image_features = aligned_alloc(64, fbytes);
    t->text_features = aligned_alloc(64, fbytes);
    t->d_image = aligned_alloc(64, fbytes);
    t->d_text = aligned_alloc(64, fbytes);
    if (!t->exp_avg || !t->exp_avg_sq || !t->image_features || !t->text_features || !t->d_image || !t->d_text) {
        trainer_free(t);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for the optimizer state");
    }
    memset(t->exp_avg, 0, bytes);
    memset(t->exp_avg_sq, 0, bytes);
    clip_train_options mo = *options;
    mo.batch = micro_batch;
    vt_status st = clip_trainer_create(params, &mo, &t->model, err);
    if (st) {
        trainer_free(t);
        return st;
    }
    *out = t;
    return VT_OK;
}

void trainer_free(trainer *t) {
    if (!t) return;
    clip_trainer_free(t->model);
    free(t->exp_avg);
    free(t->exp_avg_sq);
    free(t->image_features);
    free(t->text_features);
    free(t->d_image);
    free(t->d_text);
    free(t);
}

static size_t pixels_per_sample(const trainer *t) {
    size_t s = (size_t)t->params->cfg.image_size;
    return 3 * s * s;
}

double trainer_gradients(trainer *t, const float *pixels, const int32_t *tokens, int n, uint64_t drop_key,
                         float *logits) {
    train_params *p = t->params;
    size_t e = (size_t)p->cfg.embed_dim, ctx = (size_t)p->cfg.context_length, px = pixels_per_sample(t);
    int mb = t->micro_batch;
    memset(p->grads, 0, p->total * sizeof(float));
    int whole = n <= mb;
    for (int s = 0; s < n; s += mb) {
        int k = n - s < mb ? n - s : mb;
        clip_train_forward(t->model, pixels + (size_t)s * px, tokens + (size_t)s * ctx, k, drop_key, s,
                           t->image_features + (size_t)s * e, t->text_features + (size_t)s * e);
    }
    int li = train_params_find(p, "logit_scale");
    float *scale = p->values + p->params[li].offset, dscale = 0.0f;
    double loss = clip_loss_forward_backward(t->image_features, t->text_features, n, (int)e, *scale, t->d_image,
                                             t->d_text, &dscale, logits);
    if (!t->model->frozen[li]) p->grads[p->params[li].offset] += dscale;
    if (whole) {
        clip_train_backward(t->model, t->d_image, t->d_text);
    } else {
        /* Re-run each micro-batch with its activations kept, and back-propagate its slice. */
        float *scratch_i = t->image_features, *scratch_t = t->text_features;
        for (int s = 0; s < n; s += mb) {
            int k = n - s < mb ? n - s : mb;
            clip_train_forward(t->model, pixels + (size_t)s * px, tokens + (size_t)s * ctx, k, drop_key, s,
                               scratch_i + (size_t)s * e, scratch_t + (size_t)s * e);
            clip_train_backward(t->model, t->d_image + (size_t)s * e, t->d_text + (size_t)s * e);
        }
    }
    return loss;
}

vt_status trainer_step(trainer *t, const float *pixels, const int32_t *tokens, int n, double lr,
                       const adamw_hparams *adam, double grad_clip_norm, uint64_t drop_key, step_result *result,
                       vt_error *err) {
    train_params *p = t->params;
    double loss = trainer_gradients(t, pixels, tokens, n, drop_key, NULL);
    result->loss = loss;
    result->lr = lr;
    if (!isfinite(loss))
        return vt_fail(err, VT_ERR_VALUE, "the loss became %g at step %lld; the weights were not updated (lower "
                       "--lr, raise --warmup, or set --grad-clip-norm)", loss, (long long)t->step + 1);
    result->grad_norm = clip_grad_global_norm(p->grads, p->total, grad_clip_norm);
    if (!isfinite(result->grad_norm))
        return vt_fail(err, VT_ERR_VALUE, "the gradient norm became %g at step %lld; the weights were not updated "
                       "(lower --lr or set --grad-clip-norm)", result->grad_norm, (long long)t->step + 1);
    t->step++;
    for (int i = 0; i < p->count; i++) {
        const train_param *q = &p->params[i];
        if (t->model->frozen[i]) continue;
        adamw_update(p->values + q->offset, p->grads + q->offset, t->exp_avg + q->offset, t->exp_avg_sq + q->offset,
                     q->count, (float)lr, q->decay, t->step, adam);
    }
    int li = train_params_find(p, "logit_scale");
    float *scale = p->values + p->params[li].offset;
    if (*scale < 0.0f) *scale = 0.0f;
    if (*scale > LOGIT_SCALE_MAX) *scale = LOGIT_SCALE_MAX;
    result->logit_scale = expf(*scale);
    return VT_OK;
}
