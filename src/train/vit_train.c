/* open_clip VisionTransformer for training (transformer.py): the same network
 * as model/vit_tower.c, as layer calls that keep what the backward needs.
 *
 *   tokens = [class_embedding; patches · conv1ᵀ] + positional_embedding
 *   tokens = patch_dropout(tokens)     (--force-patch-dropout: the class token and a
 *                                       random subset of the patch tokens, per image)
 *   x      = ln_pre(tokens)            (Identity with no_ln_pre)
 *   x      = resblocks(x)              (train/resblock_train.c, unmasked)
 *   pooled = ln_post(x)[:, 0]          pool "tok" (LN then pool = pool then LN)
 *          | mean(ln_post(x)[:, 1:])   pool "avg"
 *          | ln_post(pool(x))          final_ln_after_pool
 *   features = pooled · proj
 *
 * Saved: the patch matrix (conv1's weight gradient reads it), the embedded
 * tokens (the kept ones, and which they are), ln_pre out + stats, each block's output and activations
 * (resblock_train.h; one shared set with recompute), ln_post out + stats
 * (over every token for avg pooling without final_ln_after_pool, else over
 * the pooled rows). The pixels get no gradient. The backward stops below the
 * lowest tensor that has a gradient (--lock-image keeps the top groups). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/config.h"
#include "model/forward.h"
#include "train/clip_train.h"
#include "train/ops.h"
#include "train/resblock_train.h"
#include "train/rng.h"

static const float EPS = 1e-5f; /* open_clip LayerNorm: nn.LayerNorm's default */

struct vit_train_state {
    int n, grid, patches_per_image, t, patch_len; /* t: tokens per image (grid² + 1) */
    int kept;            /* patch tokens kept per image (patches_per_image without patch dropout) */
    int t_run;           /* tokens the blocks run on: kept + 1 */
    int32_t *keep;       /* [B, kept] patch dropout's picks (NULL: off) */
    float *tok_full;     /* [B·T, W] the embedded tokens before patch dropout (NULL: off) */
    int32_t *order;      /* [N] scratch for the picks */
    double *noise;       /* [N] */
    resblock_shape shape;
    int ln_first;        /* ln_post over every token before the mean (avg pool, not final_ln_after_pool) */
    train_tensor conv1, cls, pos, ln_pre_w, ln_pre_b, ln_post_w, ln_post_b, proj;
    resblock_train *blk;
    resblock_acts *acts;
    float **x_out;       /* [depth] each block's output */
    float *patches;      /* [B·N, 3p²] */
    float *x0;           /* [B·T, W] embedded tokens (ln_pre's input) */
    float *ln_pre, *ln_pre_m, *ln_pre_r; /* ln_pre out = block 0's input, and stats */
    float *pooled;       /* [B, W] the pooled rows ln_post normalises (not ln_first) */
    float *ln_post, *ln_post_m, *ln_post_r; /* [B·T or B, W] and stats */
    float *head;         /* [B, W] the rows multiplied by proj */
    float *tmp[4];
    int recompute, resident;
    int lowest;          /* 0 embeddings + ln_pre, 1 + l block l, 1 + L ln_post, 2 + L only proj */
    train_arena arena;
};

void vit_train_free(vit_train_state *st) {
    if (!st) return;
    train_arena_free(&st->arena);
    free(st->blk);
    free(st->acts);
    free(st->x_out);
    free(st);
}

static int lowest_level(const vit_train_state *st, int depth) {
    if (st->conv1.grad || st->cls.grad || st->pos.grad || st->ln_pre_w.grad || st->ln_pre_b.grad) return 0;
    for (int l = 0; l < depth; l++)
        if (resblock_train_has_grad(&st->blk[l])) return 1 + l;
    return st->ln_post_w.grad || st->ln_post_b.grad ? 1 + depth : 2 + depth;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

vt_status vit_train_create(clip_trainer *tr, vt_error *err) {
    const vt_model_config *c = &tr->params->cfg;
    vit_train_state *st = calloc(1, sizeof *st);
    if (!st) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    tr->vit = st;
    st->grid = vt_config_token_grid(c);
    st->patches_per_image = st->grid * st->grid;
    st->t = st->patches_per_image + 1;
    st->patch_len = 3 * c->patch_size * c->patch_size;
    st->shape = (resblock_shape){c->width, c->heads, c->mlp_hidden, vt_config_mlp_act(c), 0, c->ls_init > 0};
    st->ln_first = c->pool_avg && !c->final_ln_after_pool;
    float pdrop = tr->options.patch_dropout;
    if (!(pdrop >= 0.0f && pdrop < 1.0f))
        return vt_fail(err, VT_ERR_ARGUMENT, "patch dropout %g: must be in [0, 1) (open_clip PatchDropout)", pdrop);
    /* open_clip PatchDropout: max(1, int(num_tokens · keep_prob)), in float64 like Python. */
    int kept = (int)((double)st->patches_per_image * (1.0 - (double)pdrop));
    st->kept = pdrop > 0.0f ? (kept < 1 ? 1 : kept) : st->patches_per_image;
    st->t_run = st->kept + 1;
    st->recompute = tr->options.recompute;
    st->resident = -1;
    st->blk = calloc((size_t)c->depth, sizeof *st->blk);
    st->acts = calloc(st->recompute ? 1 : (size_t)c->depth, sizeof *st->acts);
    st->x_out = calloc((size_t)c->depth, sizeof *st->x_out);
    if (!st->blk || !st->acts || !st->x_out) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    st->conv1 = clip_trainer_tensor(tr, T_VIT_CONV1_W, -1, -1);
    st->cls = clip_trainer_tensor(tr, T_VIT_CLASS_EMB, -1, -1);
    st->pos = clip_trainer_tensor(tr, T_VIT_POS, -1, -1);
    if (!c->no_ln_pre) {
        st->ln_pre_w = clip_trainer_tensor(tr, T_VIT_LN_PRE_W, -1, -1);
        st->ln_pre_b = clip_trainer_tensor(tr, T_VIT_LN_PRE_B, -1, -1);
    }
    st->ln_post_w = clip_trainer_tensor(tr, T_VIT_LN_POST_W, -1, -1);
    st->ln_post_b = clip_trainer_tensor(tr, T_VIT_LN_POST_B, -1, -1);
    st->proj = clip_trainer_tensor(tr, T_VIT_PROJ, -1, -1);
    size_t B = (size_t)tr->options.batch, T = (size_t)st->t, w = (size_t)c->width, rows = B * T;
    size_t post_rows = st->ln_first ? rows : B;
    train_arena *ar = &st->arena;
    st->patches = train_arena_floats(ar, B * st->patches_per_image * (size_t)st->patch_len);
    st->x0 = train_arena_floats(ar, rows * w);
    int ok = st->patches && st->x0;
    if (pdrop > 0.0f) {
        st->keep = train_arena_bytes(ar, B * (size_t)st->kept * sizeof *st->keep);
        st->tok_full = train_arena_floats(ar, rows * w);
        st->order = train_arena_bytes(ar, (size_t)st->patches_per_image * sizeof *st->order);
        st->noise = train_arena_bytes(ar, (size_t)st->patches_per_image * sizeof *st->noise);
        ok = ok && st->keep && st->tok_full && st->order && st->noise;
    }
    if (!c->no_ln_pre) {
        st->ln_pre = train_arena_floats(ar, rows * w);
        st->ln_pre_m = train_arena_floats(ar, rows);
        st->ln_pre_r = train_arena_floats(ar, rows);
        ok = ok && st->ln_pre && st->ln_pre_m && st->ln_pre_r;
    }
    for (int i = 0; i < c->depth; i++) {
        resblock_train_bind(tr, &SCHEMA_VIT_BLOCK, i, &st->shape, &st->blk[i]);
        st->blk[i].a = &st->acts[st->recompute ? 0 : i];
        ok = ok && (st->x_out[i] = train_arena_floats(ar, rows * w));
    }
    for (int i = 0; i < (st->recompute ? 1 : c->depth); i++)
        ok = ok && resblock_acts_alloc(ar, &st->acts[i], &st->shape, B, T);
    st->pooled = train_arena_floats(ar, B * w);
    st->ln_post = train_arena_floats(ar, post_rows * w);
    st->ln_post_m = train_arena_floats(ar, post_rows);
    st->ln_post_r = train_arena_floats(ar, post_rows);
    st->head = train_arena_floats(ar, B * w);
    ok = ok && st->pooled && st->ln_post && st->ln_post_m && st->ln_post_r && st->head;
    size_t temp = max_sz(resblock_temp_floats(&st->shape, B, T), rows * w);
    for (int i = 0; i < 4; i++) ok = ok && (st->tmp[i] = train_arena_floats(ar, temp));
    if (!ok) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the ViT tower's training activations");
    st->lowest = lowest_level(st, c->depth);
    return VT_OK;
}

/* The input of block 0: ln_pre's output, or the embedded tokens. */
static const float *block_input(const vit_train_state *st, int l) {
    return l ? st->x_out[l - 1] : st->ln_pre ? st->ln_pre : st->x0;
}

/* The patches image `sample` keeps: the indices of the `kept` largest of N
 * normal draws, largest first (torch.randn(...).topk(kept) in open_clip's
 * PatchDropout; the draws are ours, keyed per step and sample). */
static void pick_patches(vit_train_state *st, uint64_t key, int32_t *keep) {
    int N = st->patches_per_image;
    for (int i = 0; i < N; i++) {
        st->noise[i] = rng_normal(key, (uint64_t)i);
        st->order[i] = i;
    }
    for (int j = 0; j < st->kept; j++) { /* partial selection sort: kept is at most N */
        int best = j;
        for (int i = j + 1; i < N; i++)
            if (st->noise[st->order[i]] > st->noise[st->order[best]]) best = i;
        int32_t t = st->order[j];
        st->order[j] = st->order[best];
        st->order[best] = t;
        keep[j] = st->order[j];
    }
}

void vit_train_forward(clip_trainer *tr, const float *pixels, int n, uint64_t drop_key, int64_t first_sample,
                       float *features) {
    const vt_model_config *c = &tr->params->cfg;
    vit_train_state *st = tr->vit;
    int w = c->width, T = st->t_run, N = st->patches_per_image, K = st->kept;
    size_t rows = (size_t)n * T;
    st->n = n;
    vit_gather_patches(st->patches, pixels, n, c->image_size, c->patch_size, st->grid);
    float *tok = st->tmp[0], *full = st->keep ? st->tok_full : st->x0;
    linear_forward(tok, st->patches, st->conv1.value, NULL, n * N, st->patch_len, w);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < n; b++) {
        float *img = full + (size_t)b * (N + 1) * w;
        for (int j = 0; j < w; j++) img[j] = st->cls.value[j] + st->pos.value[j];
        for (size_t k = 0; k < (size_t)N * w; k++) img[w + k] = tok[(size_t)b * N * w + k] + st->pos.value[w + k];
    }
    if (st->keep) /* the class token, then the picked patch tokens in pick order */
        for (int b = 0; b < n; b++) {
            int32_t *keep = st->keep + (size_t)b * K;
            pick_patches(st, rng_key(drop_key, RNG_DOMAIN_PATCH_DROPOUT, (uint64_t)(first_sample + b)), keep);
            const float *src = full + (size_t)b * (N + 1) * w;
            float *dst = st->x0 + (size_t)b * T * w;
            memcpy(dst, src, sizeof(float) * w);
            for (int j = 0; j < K; j++)
                memcpy(dst + (size_t)(1 + j) * w, src + (size_t)(1 + keep[j]) * w, sizeof(float) * w);
        }
    if (st->ln_pre)
        layernorm_train_forward(st->ln_pre, st->ln_pre_m, st->ln_pre_r, st->x0, st->ln_pre_w.value,
                                st->ln_pre_b.value, rows, w, EPS);
    for (int l = 0; l < c->depth; l++)
        resblock_train_forward(&st->shape, &st->blk[l], block_input(st, l), st->x_out[l], n, T, st->tmp[0], st->tmp[1]);
    st->resident = c->depth - 1;
    const float *x = st->x_out[c->depth - 1];
    if (st->ln_first) {
        layernorm_train_forward(st->ln_post, st->ln_post_m, st->ln_post_r, x, st->ln_post_w.value,
                                st->ln_post_b.value, rows, w, EPS);
        x = st->ln_post;
    }
    float *pool_out = st->ln_first ? st->head : st->pooled;
    vit_pool_tokens(pool_out, x, n, T, w, c->pool_avg);
    if (!st->ln_first) {
        layernorm_train_forward(st->ln_post, st->ln_post_m, st->ln_post_r, st->pooled, st->ln_post_w.value,
                                st->ln_post_b.value, (size_t)n, w, EPS);
        memcpy(st->head, st->ln_post, (size_t)n * w * sizeof(float));
    }
    tmat_nn(n, c->embed_dim, w, st->head, w, st->proj.value, c->embed_dim, features, c->embed_dim, 0);
}

/* d of the embedded tokens → class and positional embeddings (sums over the
 * batch in sample order) and conv1's weight. */
static void embeddings_backward(const vt_model_config *c, vit_train_state *st, const float *dx0, float *dtok,
                                float *dfull) {
    int n = st->n, T = st->t, N = st->patches_per_image, w = c->width, K = st->kept;
    if (st->keep) { /* back onto the whole grid: dropped tokens get no gradient */
        memset(dfull, 0, (size_t)n * T * w * sizeof(float));
        for (int b = 0; b < n; b++) {
            const float *src = dx0 + (size_t)b * (K + 1) * w;
            float *dst = dfull + (size_t)b * T * w;
            memcpy(dst, src, sizeof(float) * w);
            for (int j = 0; j < K; j++)
                memcpy(dst + (size_t)(1 + st->keep[(size_t)b * K + j]) * w, src + (size_t)(1 + j) * w,
                       sizeof(float) * w);
        }
        dx0 = dfull;
    }
    if (st->cls.grad)
        for (int b = 0; b < n; b++)
            for (int j = 0; j < w; j++) st->cls.grad[j] += dx0[(size_t)b * T * w + j];
    if (st->pos.grad) {
#pragma omp parallel for schedule(static)
        for (int k = 0; k < T; k++)
            for (int b = 0; b < n; b++)
                for (int j = 0; j < w; j++) st->pos.grad[(size_t)k * w + j] += dx0[((size_t)b * T + k) * w + j];
    }
    if (!st->conv1.grad) return;
    for (int b = 0; b < n; b++)
        memcpy(dtok + (size_t)b * N * w, dx0 + ((size_t)b * T + 1) * w, (size_t)N * w * sizeof(float));
    linear_backward(NULL, st->conv1.grad, NULL, dtok, st->patches, st->conv1.value, n * N, st->patch_len, w);
}

void vit_train_backward(clip_trainer *tr, const float *d_features) {
    const vt_model_config *c = &tr->params->cfg;
    vit_train_state *st = tr->vit;
    int n = st->n, T = st->t_run, N = st->kept, w = c->width, e = c->embed_dim, L = c->depth;
    size_t rows = (size_t)n * T;
    float *dx = st->tmp[0], *d1 = st->tmp[1], *d2 = st->tmp[2], *d3 = st->tmp[3];
    if (st->proj.grad) tmat_tn(w, e, n, st->head, w, d_features, e, st->proj.grad, e, 1);
    if (st->lowest > 1 + L) return; /* nothing below the projection has a gradient */
    tmat_nt(n, w, e, d_features, e, st->proj.value, e, d1, w, 0); /* d head [n, W] */
    /* Back through ln_post and the pool, to d of the last block's output in dx. */
    if (!st->ln_first)
        layernorm_train_backward(d1, st->ln_post_w.grad, st->ln_post_b.grad, d1, st->pooled, st->ln_post_m,
                                 st->ln_post_r, st->ln_post_w.value, (size_t)n, w);
    float *dpool_target = st->ln_first ? d2 : dx; /* d of what was pooled: LN out, or the tokens */
    memset(dpool_target, 0, rows * w * sizeof(float));
    for (int b = 0; b < n; b++) {
        const float *g = d1 + (size_t)b * w;
        float *img = dpool_target + (size_t)b * T * w;
        if (!c->pool_avg) {
            memcpy(img, g, sizeof(float) * w);
            continue;
        }
        for (int k = 1; k < T; k++)
            for (int j = 0; j < w; j++) img[(size_t)k * w + j] = g[j] / (float)N;
    }
    if (st->ln_first)
        layernorm_train_backward(dx, st->ln_post_w.grad, st->ln_post_b.grad, d2, st->x_out[L - 1], st->ln_post_m,
                                 st->ln_post_r, st->ln_post_w.value, rows, w);
    for (int l = L - 1; l >= 0 && 1 + l >= st->lowest; l--) {
        if (st->recompute && st->resident != l) {
            resblock_train_forward(&st->shape, &st->blk[l], block_input(st, l), NULL, n, T, d1, d2);
            st->resident = l;
        }
        resblock_train_backward(&st->shape, &st->blk[l], block_input(st, l), dx, n, T, d1, d2, d3);
    }
    if (st->lowest > 0) return;
    if (st->ln_pre)
        layernorm_train_backward(dx, st->ln_pre_w.grad, st->ln_pre_b.grad, dx, st->x0, st->ln_pre_m, st->ln_pre_r,
                                 st->ln_pre_w.value, rows, w);
    embeddings_backward(c, st, dx, d1, d2);
}

const int32_t *vit_train_kept_patches(const clip_trainer *tr, int *kept) {
    *kept = tr->vit ? tr->vit->kept : 0;
    return tr->vit ? tr->vit->keep : NULL;
}
