/* timm ConvNeXt under open_clip's TimmModel, for training: the network of
 * model/convnext_tower.c as layer calls on NHWC maps that keep what the
 * backward needs (timm convnext.py ConvNeXtBlock, conv_mlp or not: the same
 * numbers).
 *
 *   stem    x = LN(conv4x4/4(pixels))
 *   stage s (s > 0: x = conv2x2/2(LN(x)), the downsample)
 *   block   x = x + drop_path(gamma ⊙ fc2(gelu(fc1(LN(dw7x7(x))))))
 *   head    features = proj(LN(mean over pixels(x)))   (or the mlp head:
 *           fc2(gelu(fc1(·))))
 *
 * Drop path: timm's rates linspace(0, r, total blocks) over every block of
 * every stage, drawn per (step, block, sample) like ViTamin's.
 *
 * Saved: the stem's patch rows, its conv output + LN stats; per downsample its
 * LN out + stats and patch rows; per block its output (the next block's
 * input), and (one shared set with recompute) dw out, LN out + stats, fc1 out
 * (pre-GELU) and fc2 out (before gamma); gelu(fc1) is recomputed in the
 * backward (fc2's weight gradient reads it), which costs one GELU pass and
 * saves the largest activation. Head: pooled rows, LN out + stats, the mlp
 * head's fc1 out. The backward stops below the lowest unit (stem, a
 * downsample, a block) that has a gradient. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/config.h"
#include "model/config_convnext.h"
#include "model/forward.h"
#include "train/arena.h"
#include "train/clip_train.h"
#include "train/elementwise.h"
#include "train/ops.h"
#include "train/rng.h"

enum { KERNEL = 7, GAMMA_ROWS_PER_BLOCK = 64 };

typedef struct {
    float *dw, *ln, *mean, *rstd, *h, *m; /* [rows, d], [rows, d], [rows] x2, [rows, 4d], [rows, d] */
} cnx_acts;

typedef struct {
    train_tensor gamma, dw_w, dw_b, n_w, n_b, fc1_w, fc1_b, fc2_w, fc2_b;
    int stage, unit;
    float rate;
    float *keep;  /* [B] drop-path scale per sample */
    float *out;   /* [rows, d] the block's output */
    cnx_acts *a;
} cnx_block;

struct convnext_train_state {
    int n, nblocks;
    int side[4], dim[4], first[4]; /* map side, width, first block index per stage */
    int ds_unit[4], head_unit, lowest;
    float eps;
    train_tensor stem_w, stem_b, stem_nw, stem_nb;
    train_tensor ds_nw[4], ds_nb[4], ds_w[4], ds_b[4];
    train_tensor head_nw, head_nb, proj_w, proj_b, hfc1_w, hfc1_b, hfc2_w, hfc2_b;
    cnx_block *blk;
    cnx_acts *acts;
    float *patches0, *stem_out, *stem_m, *stem_r; /* stem: [rows0, 48], conv out [rows0, d0], stats */
    float *stage_in[4];                            /* stem LN out (stage 0), downsample out */
    float *ds_ln[4], *ds_m[4], *ds_r[4], *ds_patches[4];
    float *pooled, *head_ln, *head_m, *head_r, *head_h; /* [B, W], [B, W], [B] x2, [B, 2E] */
    float *big[2], *small[4];
    float *gamma_part;                             /* gamma-gradient partials */
    int recompute, resident;
    train_arena arena;
};

void convnext_train_free(convnext_train_state *st) {
    if (!st) return;
    train_arena_free(&st->arena);
    free(st->blk);
    free(st->acts);
    free(st);
}

static size_t rows_of(const convnext_train_state *st, int s, int n) {
    return (size_t)n * st->side[s] * st->side[s];
}

static int block_has_grad(const cnx_block *b) {
    return b->gamma.grad || b->dw_w.grad || b->dw_b.grad || b->n_w.grad || b->n_b.grad || b->fc1_w.grad ||
           b->fc1_b.grad || b->fc2_w.grad || b->fc2_b.grad;
}

/* The lowest unit with a gradient: units are numbered in network order (stem
 * 0, then each stage's downsample and blocks, head.norm), head_unit + 1 when
 * only open_clip's head trains. */
static int lowest_unit(const convnext_train_state *st) {
    if (st->stem_w.grad || st->stem_b.grad || st->stem_nw.grad || st->stem_nb.grad) return 0;
    for (int s = 0; s < 4; s++) {
        if (s > 0 && (st->ds_nw[s].grad || st->ds_nb[s].grad || st->ds_w[s].grad || st->ds_b[s].grad))
            return st->ds_unit[s];
        int end = s < 3 ? st->first[s + 1] : st->nblocks;
        for (int i = st->first[s]; i < end; i++)
            if (block_has_grad(&st->blk[i])) return st->blk[i].unit;
    }
    return st->head_nw.grad || st->head_nb.grad ? st->head_unit : st->head_unit + 1;
}

static int acts_alloc(train_arena *ar, cnx_acts *a, size_t rows, int d) {
    a->dw = train_arena_floats(ar, rows * d);
    a->ln = train_arena_floats(ar, rows * d);
    a->mean = train_arena_floats(ar, rows);
    a->rstd = train_arena_floats(ar, rows);
    a->h = train_arena_floats(ar, rows * 4 * (size_t)d);
    a->m = train_arena_floats(ar, rows * d);
    return a->dw && a->ln && a->mean && a->rstd && a->h && a->m;
}

static void bind_block(clip_trainer *tr, cnx_block *b, int s, int i) {
    b->gamma = clip_trainer_tensor(tr, T_CNX_GAMMA, s, i);
    b->dw_w = clip_trainer_tensor(tr, T_CNX_DW_W, s, i);
    b->dw_b = clip_trainer_tensor(tr, T_CNX_DW_B, s, i);
    b->n_w = clip_trainer_tensor(tr, T_CNX_NORM_W, s, i);
    b->n_b = clip_trainer_tensor(tr, T_CNX_NORM_B, s, i);
    b->fc1_w = clip_trainer_tensor(tr, T_CNX_FC1_W, s, i);
    b->fc1_b = clip_trainer_tensor(tr, T_CNX_FC1_B, s, i);
    b->fc2_w = clip_trainer_tensor(tr, T_CNX_FC2_W, s, i);
    b->fc2_b = clip_trainer_tensor(tr, T_CNX_FC2_B, s, i);
}

vt_status convnext_train_create(clip_trainer *tr, vt_error *err) {
    const vt_model_config *c = &tr->params->cfg;
    convnext_train_state *st = calloc(1, sizeof *st);
    if (!st) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    tr->convnext = st;
    size_t B = (size_t)tr->options.batch;
    st->eps = c->cnx_norm_eps;
    st->recompute = tr->options.recompute;
    st->resident = -1;
    for (int s = 0; s < 4; s++) {
        st->side[s] = convnext_stage_side(c->image_size, s);
        st->dim[s] = c->cnx_dims[s];
        st->first[s] = st->nblocks;
        st->nblocks += c->cnx_depths[s];
    }
    st->blk = calloc((size_t)st->nblocks, sizeof *st->blk);
    st->acts = calloc(st->recompute ? 1 : (size_t)st->nblocks, sizeof *st->acts);
    if (!st->blk || !st->acts) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    st->stem_w = clip_trainer_tensor(tr, T_CNX_STEM_W, -1, -1);
    st->stem_b = clip_trainer_tensor(tr, T_CNX_STEM_B, -1, -1);
    st->stem_nw = clip_trainer_tensor(tr, T_CNX_STEM_NORM_W, -1, -1);
    st->stem_nb = clip_trainer_tensor(tr, T_CNX_STEM_NORM_B, -1, -1);
    train_arena *ar = &st->arena;
    size_t rows0 = rows_of(st, 0, (int)B), max_map = 0, max_ds_patch = 0;
    st->patches0 = train_arena_floats(ar, rows0 * 48);
    st->stem_out = train_arena_floats(ar, rows0 * st->dim[0]);
    st->stem_m = train_arena_floats(ar, rows0);
    st->stem_r = train_arena_floats(ar, rows0);
    int ok = st->patches0 && st->stem_out && st->stem_m && st->stem_r;
    int unit = 1, global = 0;
    for (int s = 0; s < 4; s++) {
        size_t rows = rows_of(st, s, (int)B), map = rows * st->dim[s];
        if (map > max_map) max_map = map;
        ok = ok && (st->stage_in[s] = train_arena_floats(ar, map));
        if (s > 0) {
            size_t prev_rows = rows_of(st, s - 1, (int)B), prev = prev_rows * st->dim[s - 1];
            st->ds_nw[s] = clip_trainer_tensor(tr, T_CNX_DS_NORM_W, s, -1);
            st->ds_nb[s] = clip_trainer_tensor(tr, T_CNX_DS_NORM_B, s, -1);
            st->ds_w[s] = clip_trainer_tensor(tr, T_CNX_DS_CONV_W, s, -1);
            st->ds_b[s] = clip_trainer_tensor(tr, T_CNX_DS_CONV_B, s, -1);
            st->ds_ln[s] = train_arena_floats(ar, prev);
            st->ds_m[s] = train_arena_floats(ar, prev_rows);
            st->ds_r[s] = train_arena_floats(ar, prev_rows);
            st->ds_patches[s] = train_arena_floats(ar, rows * 4 * (size_t)st->dim[s - 1]);
            if (rows * 4 * (size_t)st->dim[s - 1] > max_ds_patch) max_ds_patch = rows * 4 * (size_t)st->dim[s - 1];
            ok = ok && st->ds_ln[s] && st->ds_m[s] && st->ds_r[s] && st->ds_patches[s];
            st->ds_unit[s] = unit++;
        }
        for (int i = 0; i < c->cnx_depths[s]; i++, global++) {
            cnx_block *b = &st->blk[global];
            bind_block(tr, b, s, i);
            b->stage = s;
            b->unit = unit++;
            /* timm: torch.linspace(0, drop_path_rate, sum(depths)) */
            b->rate = st->nblocks > 1 ? tr->options.drop_path * (float)global / (float)(st->nblocks - 1) : 0.0f;
            b->keep = train_arena_floats(ar, B);
            b->out = train_arena_floats(ar, map);
            b->a = &st->acts[st->recompute ? 0 : global];
            ok = ok && b->keep && b->out;
            if (!st->recompute) ok = ok && acts_alloc(ar, b->a, rows, st->dim[s]);
        }
    }
    st->head_unit = unit;
    if (st->recompute) { /* one set, as large as the largest stage needs */
        size_t rows_max = 0;
        int d_max = 0;
        for (int s = 0; s < 4; s++) {
            size_t r = rows_of(st, s, (int)B);
            if (r > rows_max) rows_max = r;
            if (st->dim[s] > d_max) d_max = st->dim[s];
        }
        cnx_acts *a = &st->acts[0];
        a->dw = train_arena_floats(ar, max_map);
        a->ln = train_arena_floats(ar, max_map);
        a->mean = train_arena_floats(ar, rows_max);
        a->rstd = train_arena_floats(ar, rows_max);
        a->h = train_arena_floats(ar, 4 * max_map);
        a->m = train_arena_floats(ar, max_map);
        ok = ok && a->dw && a->ln && a->mean && a->rstd && a->h && a->m;
    }
    int w = c->width, e = c->embed_dim;
    st->head_nw = clip_trainer_tensor(tr, T_CNX_HEAD_NORM_W, -1, -1);
    st->head_nb = clip_trainer_tensor(tr, T_CNX_HEAD_NORM_B, -1, -1);
    if (c->head_mlp) {
        st->hfc1_w = clip_trainer_tensor(tr, T_HEAD_MLP_FC1_W, -1, -1);
        st->hfc1_b = clip_trainer_tensor(tr, T_HEAD_MLP_FC1_B, -1, -1);
        st->hfc2_w = clip_trainer_tensor(tr, T_HEAD_MLP_FC2_W, -1, -1);
        if (train_params_index(tr->params, T_HEAD_MLP_FC2_B, -1, -1) >= 0)
            st->hfc2_b = clip_trainer_tensor(tr, T_HEAD_MLP_FC2_B, -1, -1);
    } else {
        st->proj_w = clip_trainer_tensor(tr, T_HEAD_PROJ_W, -1, -1);
        if (train_params_index(tr->params, T_HEAD_PROJ_B, -1, -1) >= 0)
            st->proj_b = clip_trainer_tensor(tr, T_HEAD_PROJ_B, -1, -1);
    }
    st->pooled = train_arena_floats(ar, B * w);
    st->head_ln = train_arena_floats(ar, B * w);
    st->head_m = train_arena_floats(ar, B);
    st->head_r = train_arena_floats(ar, B);
    st->head_h = train_arena_floats(ar, B * 2 * (size_t)e);
    ok = ok && st->pooled && st->head_ln && st->head_m && st->head_r && st->head_h;
    size_t small = max_map > max_ds_patch ? max_map : max_ds_patch;
    if (B * 2 * (size_t)e > small) small = B * 2 * (size_t)e;
    for (int i = 0; i < 2; i++) ok = ok && (st->big[i] = train_arena_floats(ar, 4 * max_map));
    for (int i = 0; i < 4; i++) ok = ok && (st->small[i] = train_arena_floats(ar, small));
    size_t gamma_blocks = (rows0 + GAMMA_ROWS_PER_BLOCK - 1) / GAMMA_ROWS_PER_BLOCK;
    int d_max = st->dim[3] > st->dim[0] ? st->dim[3] : st->dim[0];
    ok = ok && (st->gamma_part = train_arena_floats(ar, gamma_blocks * (size_t)d_max));
    if (!ok) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the ConvNeXt tower's training activations "
                            "(a smaller --batch-size, or --grad-checkpointing, needs less)");
    st->lowest = lowest_unit(st);
    return VT_OK;
}

/* The input of global block i: the stage input for a stage's first block,
 * else the previous block's output. */
static const float *block_input(const convnext_train_state *st, int i) {
    const cnx_block *b = &st->blk[i];
    return i == st->first[b->stage] ? st->stage_in[b->stage] : st->blk[i - 1].out;
}

/* out = x + keep[sample] · gamma ⊙ m over [n, per_sample / d, d]. */
static void residual_forward(float *out, const float *x, const float *m, const float *gamma, const float *keep, int n,
                             size_t pixels, int d) {
#pragma omp parallel for schedule(static) if (ew_parallel((size_t)n * pixels * d))
    for (size_t r = 0; r < (size_t)n * pixels; r++) {
        float k = keep[r / pixels];
        const float *mr = m + r * d, *xr = x + r * d;
        float *o = out + r * d;
        for (int j = 0; j < d; j++) o[j] = xr[j] + k * (gamma[j] * mr[j]);
    }
}

/* The block from x: its activations into b->a and, when out is not NULL,
 * its output. g: a [rows, 4d] temporary for gelu(fc1). */
static void block_forward(const convnext_train_state *st, const cnx_block *b, const float *x, float *out, int n,
                          float *g) {
    const cnx_acts *a = b->a;
    int s = b->stage, side = st->side[s], d = st->dim[s];
    size_t rows = rows_of(st, s, n);
    depthwise_kxk_train_forward(a->dw, x, b->dw_w.value, b->dw_b.value, n, side, side, d, KERNEL);
    layernorm_train_forward(a->ln, a->mean, a->rstd, a->dw, b->n_w.value, b->n_b.value, rows, d, st->eps);
    linear_forward(a->h, a->ln, b->fc1_w.value, b->fc1_b.value, (int)rows, d, 4 * d);
    gelu_train_forward(g, a->h, rows * 4 * (size_t)d);
    linear_forward(a->m, g, b->fc2_w.value, b->fc2_b.value, (int)rows, 4 * d, d);
    if (out) residual_forward(out, x, a->m, b->gamma.value, b->keep, n, (size_t)side * side, d);
}

/* dgamma += Σ_rows keep · dy ⊙ m (fixed row blocks, summed in block order), and
 * dm = keep · gamma ⊙ dy. */
static void residual_backward(convnext_train_state *st, const cnx_block *b, float *dm, const float *dy, int n,
                              size_t pixels, int d) {
    size_t rows = (size_t)n * pixels, blocks = (rows + GAMMA_ROWS_PER_BLOCK - 1) / GAMMA_ROWS_PER_BLOCK;
    const float *m = b->a->m, *gamma = b->gamma.value, *keep = b->keep;
    float *part = st->gamma_part;
    int need_gamma = b->gamma.grad != NULL;
#pragma omp parallel for schedule(static) if (ew_parallel(rows * d))
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t r0 = blk * GAMMA_ROWS_PER_BLOCK, r1 = r0 + GAMMA_ROWS_PER_BLOCK < rows ? r0 + GAMMA_ROWS_PER_BLOCK : rows;
        float *p = part + blk * d;
        if (need_gamma) memset(p, 0, sizeof(float) * d);
        for (size_t r = r0; r < r1; r++) {
            float k = keep[r / pixels];
            const float *g = dy + r * d, *mr = m + r * d;
            float *o = dm + r * d;
            for (int j = 0; j < d; j++) {
                float kg = k * g[j];
                if (need_gamma) p[j] += kg * mr[j];
                o[j] = kg * gamma[j];
            }
        }
    }
    if (!need_gamma) return;
    for (int j = 0; j < d; j++) {
        double t = 0;
        for (size_t blk = 0; blk < blocks; blk++) t += part[blk * d + j];
        b->gamma.grad[j] += (float)t;
    }
}

/* dx: the gradient at the block's output on entry, at its input x on return
 * (when need_dx; parameter gradients +=). */
static void block_backward(convnext_train_state *st, const cnx_block *b, const float *x, float *dx, int n,
                           int need_dx) {
    const cnx_acts *a = b->a;
    int s = b->stage, side = st->side[s], d = st->dim[s];
    size_t rows = rows_of(st, s, n), pixels = (size_t)side * side;
    float *dm = st->small[2], *dconv = st->small[3], *g = st->big[0], *dh = st->big[1];
    residual_backward(st, b, dm, dx, n, pixels, d);
    gelu_train_forward(g, a->h, rows * 4 * (size_t)d);
    linear_backward(dh, b->fc2_w.grad, b->fc2_b.grad, dm, g, b->fc2_w.value, (int)rows, 4 * d, d);
    gelu_train_backward(dh, dh, a->h, rows * 4 * (size_t)d);
    linear_backward(dm, b->fc1_w.grad, b->fc1_b.grad, dh, a->ln, b->fc1_w.value, (int)rows, d, 4 * d);
    layernorm_train_backward(dm, b->n_w.grad, b->n_b.grad, dm, a->dw, a->mean, a->rstd, b->n_w.value, rows, d);
    depthwise_kxk_train_backward(need_dx ? dconv : NULL, b->dw_w.grad, b->dw_b.grad, dm, x, b->dw_w.value, n, side,
                                 side, d, KERNEL);
    if (!need_dx) return;
#pragma omp parallel for schedule(static) if (ew_parallel(rows * d))
    for (size_t k = 0; k < rows * d; k++) dx[k] += dconv[k];
}

void convnext_train_forward(clip_trainer *tr, const float *pixels, int n, uint64_t drop_key, int64_t first_sample,
                            float *features) {
    const vt_model_config *c = &tr->params->cfg;
    convnext_train_state *st = tr->convnext;
    st->n = n;
    int d0 = st->dim[0];
    size_t rows0 = rows_of(st, 0, n);
    vit_gather_patches(st->patches0, pixels, n, c->image_size, 4, st->side[0]);
    linear_forward(st->stem_out, st->patches0, st->stem_w.value, st->stem_b.value, (int)rows0, 48, d0);
    layernorm_train_forward(st->stage_in[0], st->stem_m, st->stem_r, st->stem_out, st->stem_nw.value,
                            st->stem_nb.value, rows0, d0, st->eps);
    for (int s = 0; s < 4; s++) {
        if (s > 0) {
            const float *prev = st->blk[st->first[s] - 1].out;
            int side = st->side[s - 1], pd = st->dim[s - 1];
            layernorm_train_forward(st->ds_ln[s], st->ds_m[s], st->ds_r[s], prev, st->ds_nw[s].value,
                                    st->ds_nb[s].value, rows_of(st, s - 1, n), pd, st->eps);
            patch_conv_train_forward(st->stage_in[s], st->ds_patches[s], st->ds_ln[s], st->ds_w[s].value,
                                     st->ds_b[s].value, n, side, side, pd, st->dim[s], 2);
        }
        int end = s < 3 ? st->first[s + 1] : st->nblocks;
        for (int i = st->first[s]; i < end; i++) {
            cnx_block *b = &st->blk[i];
            rng_drop_path_scales(b->keep, n, b->rate, rng_key(drop_key, (uint64_t)i, 1), first_sample, 0);
            block_forward(st, b, block_input(st, i), b->out, n, st->big[0]);
        }
    }
    st->resident = st->nblocks - 1;
    /* head: average pool (in pixel order, as the inference tower), head.norm, open_clip's projection */
    int w = c->width, e = c->embed_dim;
    size_t hw = (size_t)st->side[3] * st->side[3];
    const float *x = st->blk[st->nblocks - 1].out;
    for (int b = 0; b < n; b++) {
        float *dst = st->pooled + (size_t)b * w;
        const float *img = x + (size_t)b * hw * w;
        for (int j = 0; j < w; j++) dst[j] = 0.0f;
        for (size_t k = 0; k < hw; k++)
            for (int j = 0; j < w; j++) dst[j] += img[k * w + j];
        for (int j = 0; j < w; j++) dst[j] /= (float)hw;
    }
    layernorm_train_forward(st->head_ln, st->head_m, st->head_r, st->pooled, st->head_nw.value, st->head_nb.value,
                            (size_t)n, w, st->eps);
    if (c->head_mlp) {
        float *g = st->small[0];
        linear_forward(st->head_h, st->head_ln, st->hfc1_w.value, st->hfc1_b.value, n, w, 2 * e);
        gelu_train_forward(g, st->head_h, (size_t)n * 2 * e);
        linear_forward(features, g, st->hfc2_w.value, st->hfc2_b.value, n, 2 * e, e);
    } else {
        linear_forward(features, st->head_ln, st->proj_w.value, st->proj_b.value, n, w, e);
    }
}

void convnext_train_backward(clip_trainer *tr, const float *d_features) {
    const vt_model_config *c = &tr->params->cfg;
    convnext_train_state *st = tr->convnext;
    int n = st->n, w = c->width, e = c->embed_dim;
    float *dhead = st->small[0], *dx = st->small[1];
    int below_head = st->lowest <= st->head_unit;
    if (c->head_mlp) {
        float *g = st->small[2], *dh = st->small[3];
        gelu_train_forward(g, st->head_h, (size_t)n * 2 * e);
        linear_backward(dh, st->hfc2_w.grad, st->hfc2_b.grad, d_features, g, st->hfc2_w.value, n, 2 * e, e);
        gelu_train_backward(dh, dh, st->head_h, (size_t)n * 2 * e);
        linear_backward(below_head ? dhead : NULL, st->hfc1_w.grad, st->hfc1_b.grad, dh, st->head_ln,
                        st->hfc1_w.value, n, w, 2 * e);
    } else {
        linear_backward(below_head ? dhead : NULL, st->proj_w.grad, st->proj_b.grad, d_features, st->head_ln,
                        st->proj_w.value, n, w, e);
    }
    if (!below_head) return;
    layernorm_train_backward(dhead, st->head_nw.grad, st->head_nb.grad, dhead, st->pooled, st->head_m, st->head_r,
                             st->head_nw.value, (size_t)n, w);
    if (st->lowest == st->head_unit) return;
    size_t hw = (size_t)st->side[3] * st->side[3];
    for (int b = 0; b < n; b++)
        for (size_t k = 0; k < hw; k++)
            for (int j = 0; j < w; j++) dx[((size_t)b * hw + k) * w + j] = dhead[(size_t)b * w + j] / (float)hw;
    for (int s = 3; s >= 0; s--) {
        int end = s < 3 ? st->first[s + 1] : st->nblocks;
        for (int i = end - 1; i >= st->first[s]; i--) {
            cnx_block *b = &st->blk[i];
            if (b->unit < st->lowest) return;
            if (st->recompute && st->resident != i) {
                block_forward(st, b, block_input(st, i), NULL, n, st->big[0]);
                st->resident = i;
            }
            block_backward(st, b, block_input(st, i), dx, n, b->unit > st->lowest);
        }
        if (s == 0) break;
        if (st->ds_unit[s] < st->lowest) return;
        /* downsample: dx (stage s input) → d of the previous stage's output */
        int side = st->side[s - 1], pd = st->dim[s - 1];
        size_t prev_rows = rows_of(st, s - 1, n);
        int need_dx = st->ds_unit[s] > st->lowest;
        float *dprev = st->small[2], *dpatch = st->small[3];
        patch_conv_train_backward(dprev, dpatch, st->ds_w[s].grad, st->ds_b[s].grad, dx, st->ds_patches[s],
                                  st->ds_w[s].value, n, side, side, pd, st->dim[s], 2);
        if (!need_dx && !st->ds_nw[s].grad && !st->ds_nb[s].grad) return;
        layernorm_train_backward(dx, st->ds_nw[s].grad, st->ds_nb[s].grad, dprev, st->blk[st->first[s] - 1].out,
                                 st->ds_m[s], st->ds_r[s], st->ds_nw[s].value, prev_rows, pd);
        if (!need_dx) return;
    }
    /* stem: LN, then the conv's parameters (the pixels take no gradient) */
    size_t rows0 = rows_of(st, 0, n);
    layernorm_train_backward(dx, st->stem_nw.grad, st->stem_nb.grad, dx, st->stem_out, st->stem_m, st->stem_r,
                             st->stem_nw.value, rows0, st->dim[0]);
    linear_backward(NULL, st->stem_w.grad, st->stem_b.grad, dx, st->patches0, st->stem_w.value, (int)rows0, 48,
                    st->dim[0]);
}
