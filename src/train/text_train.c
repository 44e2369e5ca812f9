/* open_clip TextTransformer for training (open_clip transformer.py): token + positional
 * embedding, causal pre-LN blocks (train/resblock_train.c) with a GELU or
 * QuickGELU MLP, ln_final at the first EOT (argmax of ids), x·text_projection.
 *
 * Like the inference tower it runs only up to the last EOT position of the
 * micro-batch: with a causal mask, later positions influence neither the
 * pooled token nor any gradient, so this is exact for the forward and the
 * backward (their gradients are exactly zero in open_clip too).
 *
 * Saved per block: what resblock_train.h lists, and x_out. With options.recompute
 * (--grad-checkpointing) only x_out (the next block's input) is kept per
 * block; the rest lives in one shared set that the backward refills by
 * re-running the block's forward (same calls, same order: bit-identical).
 *
 * The backward stops below the lowest tensor that has a gradient
 * (--lock-text with unlocked layers trains only the top of the tower). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/config.h"
#include "train/clip_train.h"
#include "train/elementwise.h"
#include "train/ops.h"
#include "train/resblock_train.h"

static const float EPS = 1e-5f;

struct text_train_state {
    int batch, n, t_run;
    resblock_shape shape;
    train_tensor tok, pos, lnf_w, lnf_b, proj;
    int32_t *ids;     /* [B, ctx] copy of the last forward's tokens */
    int *eot;         /* [B] pooled position */
    float *x0;        /* [B, t_run, W] embeddings */
    resblock_train *blk;
    float **x_out;    /* [layers]: each block's output */
    resblock_acts *acts;
    float *pooled, *lnf_out, *lnf_m, *lnf_r;
    float *t[4];
    int recompute, resident; /* resident: block whose activations the shared set holds (-1: none) */
    int lowest;              /* lowest level with a gradient: 0 embeddings, 1+l block l, 1+L ln_final,
                                2+L only the projection */
    train_arena arena;
};

void text_train_free(text_train_state *st) {
    if (!st) return;
    train_arena_free(&st->arena);
    free(st->blk);
    free(st->x_out);
    free(st->acts);
    free(st);
}

static int lowest_level(const text_train_state *st, int layers) {
    if (st->tok.grad || st->pos.grad) return 0;
    for (int l = 0; l < layers; l++)
        if (resblock_train_has_grad(&st->blk[l])) return 1 + l;
    return st->lnf_w.grad || st->lnf_b.grad ? 1 + layers : 2 + layers;
}

vt_status text_train_create(clip_trainer *tr, vt_error *err) {
    const vt_model_config *c = &tr->params->cfg;
    text_train_state *st = calloc(1, sizeof *st);
    if (!st) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    tr->text = st;
    st->recompute = tr->options.recompute;
    st->resident = -1;
    st->shape = (resblock_shape){c->text_width, c->text_heads, 4 * c->text_width, vt_config_mlp_act(c), 1, 0};
    st->blk = calloc((size_t)c->text_layers, sizeof *st->blk);
    st->x_out = calloc((size_t)c->text_layers, sizeof *st->x_out);
    st->acts = calloc(st->recompute ? 1 : (size_t)c->text_layers, sizeof *st->acts);
    if (!st->blk || !st->x_out || !st->acts) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    size_t B = (size_t)tr->options.batch, ctx = (size_t)c->context_length, w = (size_t)c->text_width;
    size_t rows = B * ctx;
    st->batch = (int)B;
    train_arena *ar = &st->arena;
    st->ids = train_arena_bytes(ar, B * ctx * sizeof(int32_t));
    st->eot = train_arena_bytes(ar, B * sizeof(int));
    st->x0 = train_arena_floats(ar, rows * w);
    int ok = st->ids && st->eot && st->x0;
    st->tok = clip_trainer_tensor(tr, T_TXT_TOKEN, -1, -1);
    st->pos = clip_trainer_tensor(tr, T_TXT_POS, -1, -1);
    st->lnf_w = clip_trainer_tensor(tr, T_TXT_LN_FINAL_W, -1, -1);
    st->lnf_b = clip_trainer_tensor(tr, T_TXT_LN_FINAL_B, -1, -1);
    st->proj = clip_trainer_tensor(tr, T_TXT_PROJ, -1, -1);
    for (int i = 0; i < c->text_layers; i++) {
        resblock_train_bind(tr, &SCHEMA_TEXT_BLOCK, i, &st->shape, &st->blk[i]);
        st->blk[i].a = &st->acts[st->recompute ? 0 : i];
        ok = ok && (st->x_out[i] = train_arena_floats(ar, rows * w));
    }
    for (int i = 0; i < (st->recompute ? 1 : c->text_layers); i++)
        ok = ok && resblock_acts_alloc(ar, &st->acts[i], &st->shape, B, ctx);
    st->pooled = train_arena_floats(ar, B * w);
    st->lnf_out = train_arena_floats(ar, B * w);
    st->lnf_m = train_arena_floats(ar, B);
    st->lnf_r = train_arena_floats(ar, B);
    ok = ok && st->pooled && st->lnf_out && st->lnf_m && st->lnf_r;
    for (int i = 0; i < 4; i++) ok = ok && (st->t[i] = train_arena_floats(ar, resblock_temp_floats(&st->shape, B, ctx)));
    if (!ok) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the text tower's training activations");
    st->lowest = lowest_level(st, c->text_layers);
    return VT_OK;
}

void text_train_forward(clip_trainer *tr, const int32_t *tokens, int n, float *features) {
    const vt_model_config *c = &tr->params->cfg;
    text_train_state *st = tr->text;
    int ctx = c->context_length, w = c->text_width;
    st->n = n;
    memcpy(st->ids, tokens, (size_t)n * ctx * sizeof(int32_t));
    st->t_run = 1;
    for (int i = 0; i < n; i++) {
        const int32_t *ids = tokens + (size_t)i * ctx;
        int best = 0;
        for (int t = 1; t < ctx; t++)
            if (ids[t] > ids[best]) best = t;
        st->eot[i] = best;
        if (best + 1 > st->t_run) st->t_run = best + 1;
    }
    int T = st->t_run;
#pragma omp parallel for collapse(2) schedule(static) if (ew_parallel((size_t)n * T * w))
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            const float *e = st->tok.value + (size_t)tokens[(size_t)i * ctx + t] * w, *p = st->pos.value + (size_t)t * w;
            float *dst = st->x0 + ((size_t)i * T + t) * w;
            for (int j = 0; j < w; j++) dst[j] = e[j] + p[j];
        }
    const float *x = st->x0;
    for (int l = 0; l < c->text_layers; l++) {
        resblock_train_forward(&st->shape, &st->blk[l], x, st->x_out[l], n, T, st->t[0], st->t[1]);
        x = st->x_out[l];
    }
    st->resident = c->text_layers - 1;
    for (int i = 0; i < n; i++) memcpy(st->pooled + (size_t)i * w, x + ((size_t)i * T + st->eot[i]) * w, sizeof(float) * w);
    layernorm_train_forward(st->lnf_out, st->lnf_m, st->lnf_r, st->pooled, st->lnf_w.value, st->lnf_b.value,
                            (size_t)n, w, EPS);
    /* features = lnf_out · P, P [W, E] (a plain matrix, not a Linear). */
    tmat_nn(n, c->embed_dim, w, st->lnf_out, w, st->proj.value, c->embed_dim, features, c->embed_dim, 0);
}

void text_train_backward(clip_trainer *tr, const float *d_features) {
    const vt_model_config *c = &tr->params->cfg;
    text_train_state *st = tr->text;
    int n = st->n, T = st->t_run, w = c->text_width, e = c->embed_dim, ctx = c->context_length;
    size_t rows = (size_t)n * T;
    float *dx = st->t[0], *d1 = st->t[1], *d2 = st->t[2], *d3 = st->t[3];
    if (st->proj.grad) tmat_tn(w, e, n, st->lnf_out, w, d_features, e, st->proj.grad, e, 1);
    if (st->lowest > 1 + c->text_layers) return; /* nothing below the projection has a gradient */
    tmat_nt(n, w, e, d_features, e, st->proj.value, e, d1, w, 0);
    layernorm_train_backward(d2, st->lnf_w.grad, st->lnf_b.grad, d1, st->pooled, st->lnf_m, st->lnf_r,
                             st->lnf_w.value, (size_t)n, w);
    memset(dx, 0, rows * w * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(dx + ((size_t)i * T + st->eot[i]) * w, d2 + (size_t)i * w, sizeof(float) * w);
    for (int l = c->text_layers - 1; l >= 0 && 1 + l >= st->lowest; l--) {
        const float *x_in = l ? st->x_out[l - 1] : st->x0;
        if (st->recompute && st->resident != l) {
            resblock_train_forward(&st->shape, &st->blk[l], x_in, NULL, n, T, d1, d2); /* d1..d3 free; dx live */
            st->resident = l;
        }
        resblock_train_backward(&st->shape, &st->blk[l], x_in, dx, n, T, d1, d2, d3);
    }
    if (st->lowest > 0) return;
    /* Embeddings: serial over samples and positions, so the token-embedding
     * rows shared by several tokens sum in a fixed order. */
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            const float *g = dx + ((size_t)i * T + t) * w;
            if (st->pos.grad) ew_add_scaled(st->pos.grad + (size_t)t * w, st->pos.grad + (size_t)t * w, g, NULL, 1, w);
            if (st->tok.grad) {
                float *row = st->tok.grad + (size_t)st->ids[(size_t)i * ctx + t] * w;
                ew_add_scaled(row, row, g, NULL, 1, w);
            }
        }
}
