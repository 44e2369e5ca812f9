/* The training step (trainer.h), single process or data parallel.
 *
 * Data parallel, as open_clip + DDP compute it: each rank runs its B samples,
 * the features are all-gathered into the global [R·B, E] matrices, the loss
 * (all rows, or with local_loss this rank's rows against all columns) gives
 * feature gradients for every global row; with gather_with_grad those are
 * summed over ranks (the all-gather's backward is a reduce-scatter), otherwise
 * each rank keeps its own rows' part. Parameter gradients are then averaged
 * over ranks (DDP). With gather_with_grad the result is exactly the gradient of
 * the single-process loss on the global batch, for local_loss on or off. */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/dist_loss.h"
#include "train/ops.h"

static const float LOGIT_SCALE_MAX = 4.6051702f; /* ln 100: open_clip clamps after every step */

static void *alloc64(size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes ? bytes : 64);
    return p;
}

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
    t->world = 1;
    t->moment_end = params->total;
    size_t e = (size_t)params->cfg.embed_dim, fbytes = (size_t)batch * e * sizeof(float);
    t->exp_avg = alloc64(params->total * sizeof(float));
    t->exp_avg_sq = alloc64(params->total * sizeof(float));
    t->image_features = alloc64(fbytes);
    t->text_features = alloc64(fbytes);
    t->d_image = alloc64(fbytes);
    t->d_text = alloc64(fbytes);
    if (!t->exp_avg || !t->exp_avg_sq || !t->image_features || !t->text_features || !t->d_image || !t->d_text) {
        trainer_free(t);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for the optimizer state");
    }
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
    void *bufs[] = {t->exp_avg, t->exp_avg_sq, t->image_features, t->text_features, t->d_image, t->d_text,
                    t->shard, t->global_image, t->global_text, t->d_global_image, t->d_global_text};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(t);
}

vt_status trainer_set_distributed(trainer *t, const trainer_dist_options *o, vt_error *err) {
    t->dist = *o;
    t->rank = o->dist ? o->dist->rank : 0;
    t->world = o->dist ? o->dist->world : 1;
    size_t total = t->params->total, R = (size_t)t->world;
    t->shard = malloc(sizeof(size_t) * (R + 1));
    if (!t->shard) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    /* Shards of whole 16-float groups (every tensor starts on one). */
    size_t groups = total / 16;
    for (size_t r = 0; r <= R; r++) t->shard[r] = (groups * r / R) * 16;
    t->shard[R] = total;
    if (t->world > 1) {
        size_t g = R * (size_t)t->batch * (size_t)t->params->cfg.embed_dim * sizeof(float);
        t->global_image = alloc64(g);
        t->global_text = alloc64(g);
        t->d_global_image = alloc64(g);
        t->d_global_text = alloc64(g);
        if (!t->global_image || !t->global_text || !t->d_global_image || !t->d_global_text)
            return vt_fail(err, VT_ERR_NOMEM, "out of memory for the gathered features");
    }
    if (o->zero1) {
        t->moment_begin = t->shard[t->rank];
        t->moment_end = t->shard[t->rank + 1];
        free(t->exp_avg);
        free(t->exp_avg_sq);
        t->exp_avg = alloc64((t->moment_end - t->moment_begin) * sizeof(float));
        t->exp_avg_sq = alloc64((t->moment_end - t->moment_begin) * sizeof(float));
        if (!t->exp_avg || !t->exp_avg_sq) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the optimizer shard");
    }
    return VT_OK;
}

static size_t pixels_per_sample(const trainer *t) {
    size_t s = (size_t)t->params->cfg.image_size;
    return 3 * s * s;
}

/* Range of the flat buffer holding the image tower (contiguous in state-dict order). */
static void image_range(const train_params *p, size_t *begin, size_t *end) {
    *begin = *end = 0;
    int first = 1;
    for (int i = 0; i < p->count; i++)
        if (p->params[i].tower == TRAIN_TOWER_IMAGE) {
            if (first) *begin = p->params[i].offset;
            first = 0;
            *end = p->params[i].offset + ((p->params[i].count + 15) & ~(size_t)15);
        }
}

/* Loss over the global batch and d features for this rank's n rows. */
static double global_loss(trainer *t, int n, float scale, float *dscale) {
    dist_loss_options o = {t->dist.local_loss, t->dist.gather_with_grad};
    return dist_clip_loss(t->world > 1 ? t->dist.dist : NULL, &o, t->image_features, t->text_features, n,
                          t->params->cfg.embed_dim, scale, t->d_image, t->d_text, dscale, t->global_image,
                          t->global_text, t->d_global_image, t->d_global_text);
}

static void scale_span(float *x, size_t n, float f) {
    for (size_t i = 0; i < n; i++) x[i] *= f;
}

double trainer_gradients(trainer *t, const float *pixels, const int32_t *tokens, int n, uint64_t drop_key,
                         float *logits) {
    train_params *p = t->params;
    size_t e = (size_t)p->cfg.embed_dim, ctx = (size_t)p->cfg.context_length, px = pixels_per_sample(t);
    int mb = t->micro_batch;
    int64_t first = (int64_t)t->rank * n; /* this rank's first sample in the global batch */
    /* Clearing 100+ MB of gradients is worth both cores. */
    enum { CLEAR_CHUNK = 1 << 18 };
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < p->total; c0 += CLEAR_CHUNK)
        memset(p->grads + c0, 0, sizeof(float) * (p->total - c0 < CLEAR_CHUNK ? p->total - c0 : CLEAR_CHUNK));
    for (int s = 0; s < n; s += mb) {
        int k = n - s < mb ? n - s : mb;
        clip_train_forward(t->model, pixels + (size_t)s * px, tokens + (size_t)s * ctx, k, drop_key, first + s,
                           t->image_features + (size_t)s * e, t->text_features + (size_t)s * e);
    }
    int li = train_params_index(p, T_LOGIT_SCALE, -1, -1);
    float scale = p->values[p->params[li].offset], dscale = 0.0f;
    double loss;
    if (logits && t->world == 1)
        loss = clip_loss_forward_backward(t->image_features, t->text_features, n, (int)e, scale, t->d_image,
                                          t->d_text, &dscale, logits);
    else
        loss = global_loss(t, n, scale, &dscale);
    if (!t->model->frozen[li]) p->grads[p->params[li].offset] += dscale;

    size_t img_begin, img_end;
    image_range(p, &img_begin, &img_end);
    dist_pending image_bucket = {0};
    int overlap = t->world > 1 && !t->dist.zero1;
    if (n <= mb) {
        /* One micro-batch: the image tower's gradients are final before the
         * text backward starts, so their all-reduce runs meanwhile. */
        clip_train_image_backward(t->model, t->d_image);
        if (overlap) dist_allreduce_sum_start(t->dist.dist, p->grads + img_begin, img_end - img_begin, &image_bucket);
        text_train_backward(t->model, t->d_text);
    } else {
        /* Re-run each micro-batch with its activations kept, and back-propagate its slice. */
        for (int s = 0; s < n; s += mb) {
            int k = n - s < mb ? n - s : mb;
            clip_train_forward(t->model, pixels + (size_t)s * px, tokens + (size_t)s * ctx, k, drop_key, first + s,
                               t->image_features + (size_t)s * e, t->text_features + (size_t)s * e);
            clip_train_backward(t->model, t->d_image + (size_t)s * e, t->d_text + (size_t)s * e);
        }
        if (overlap) dist_allreduce_sum_start(t->dist.dist, p->grads + img_begin, img_end - img_begin, &image_bucket);
    }
    if (t->world > 1) {
        dist_ctx *d = t->dist.dist;
        float inv = 1.0f / (float)t->world;
        if (t->dist.zero1) {
            dist_reduce_scatterv_inplace(d, p->grads, t->shard);
            scale_span(p->grads + t->shard[t->rank], t->shard[t->rank + 1] - t->shard[t->rank], inv);
        } else {
            /* The rest: logit_scale before the image range, the text tower after it. */
            dist_allreduce_sum(d, p->grads, img_begin);
            dist_allreduce_sum(d, p->grads + img_end, p->total - img_end);
            dist_wait(d, &image_bucket);
            scale_span(p->grads, p->total, inv);
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
    /* Gradients valid in [begin, end): everything, or this rank's ZeRO-1 shard. */
    size_t begin = t->dist.zero1 ? t->shard[t->rank] : 0, end = t->dist.zero1 ? t->shard[t->rank + 1] : p->total;
    if (t->dist.zero1) {
        double ss = grad_sum_squares(p->grads + begin, end - begin);
        dist_allreduce_sum_double(t->dist.dist, &ss, 1);
        result->grad_norm = sqrt(ss);
        grad_clip_to_norm(p->grads + begin, end - begin, result->grad_norm, grad_clip_norm);
    } else {
        result->grad_norm = clip_grad_global_norm(p->grads, p->total, grad_clip_norm);
    }
    if (!isfinite(result->grad_norm))
        return vt_fail(err, VT_ERR_VALUE, "the gradient norm became %g at step %lld; the weights were not updated "
                       "(lower --lr or set --grad-clip-norm)", result->grad_norm, (long long)t->step + 1);
    t->step++;
    for (int i = 0; i < p->count; i++) {
        const train_param *q = &p->params[i];
        if (t->model->frozen[i]) continue;
        size_t a = q->offset > begin ? q->offset : begin, b = q->offset + q->count < end ? q->offset + q->count : end;
        if (a >= b) continue;
        adamw_update(p->values + a, p->grads + a, t->exp_avg + (a - t->moment_begin),
                     t->exp_avg_sq + (a - t->moment_begin), b - a, (float)lr, q->decay, t->step, adam);
    }
    if (t->dist.zero1) dist_allgatherv_inplace(t->dist.dist, p->values, t->shard);
    int li = train_params_index(p, T_LOGIT_SCALE, -1, -1);
    float *scale = p->values + p->params[li].offset;
    if (*scale < 0.0f) *scale = 0.0f;
    if (*scale > LOGIT_SCALE_MAX) *scale = LOGIT_SCALE_MAX;
    result->logit_scale = expf(*scale);
    return VT_OK;
}
