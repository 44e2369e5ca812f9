/* open_clip TextTransformer for training (open_clip transformer.py): token + positional
 * embedding, causal pre-LN blocks with a GELU MLP, ln_final at the first EOT
 * (argmax of ids), x·text_projection.
 *
 * Like the inference tower it runs only up to the last EOT position of the
 * micro-batch: with a causal mask, later positions influence neither the
 * pooled token nor any gradient, so this is exact for the forward and the
 * backward (their gradients are exactly zero in open_clip too).
 *
 * Saved per block: LN1 out + stats, qkv, attention out + probs, x_mid,
 * LN2 out + stats, c_fc out (pre-GELU), x_out. With options.recompute
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
#include "train/clip_train.h"
#include "train/ops.h"

static const float EPS = 1e-5f;

/* What a block's backward needs besides its input: per block, or shared. */
typedef struct {
    float *ln1, *m1, *r1, *qkv, *att, *probs, *x_mid, *ln2, *m2, *r2, *f;
} text_block_acts;

typedef struct {
    train_tensor ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
    const text_block_acts *a;
    float *x_out;
} text_block_train;

struct text_train_state {
    int batch, n, t_run;
    train_tensor tok, pos, lnf_w, lnf_b, proj;
    int32_t *ids;     /* [B, ctx] copy of the last forward's tokens */
    int *eot;         /* [B] pooled position */
    float *x0;        /* [B, t_run, W] embeddings */
    text_block_train *blk;
    text_block_acts *acts;
    float *pooled, *lnf_out, *lnf_m, *lnf_r;
    float *t[4];
    int recompute, resident; /* resident: block whose activations the shared set holds (-1: none) */
    int lowest;              /* lowest level with a gradient: 0 embeddings, 1+l block l, 1+L ln_final,
                                2+L only the projection */
    void **allocs;
    int alloc_count, alloc_cap;
};

static void *alloc_bytes(text_train_state *st, size_t bytes) {
    if (st->alloc_count == st->alloc_cap) {
        int cap = st->alloc_cap ? 2 * st->alloc_cap : 128;
        void **grown = realloc(st->allocs, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        st->allocs = grown;
        st->alloc_cap = cap;
    }
    void *p = aligned_alloc(64, ((bytes ? bytes : 1) + 63) & ~(size_t)63);
    if (p) st->allocs[st->alloc_count++] = p;
    return p;
}

void text_train_free(text_train_state *st) {
    if (!st) return;
    for (int i = 0; i < st->alloc_count; i++) free(st->allocs[i]);
    free(st->allocs);
    free(st->blk);
    free(st->acts);
    free(st);
}

static int lowest_level(const text_train_state *st, int layers) {
    if (st->tok.grad || st->pos.grad) return 0;
    for (int l = 0; l < layers; l++) {
        const text_block_train *b = &st->blk[l];
        if (b->ln1_w.grad || b->ln1_b.grad || b->in_w.grad || b->in_b.grad || b->out_w.grad || b->out_b.grad ||
            b->ln2_w.grad || b->ln2_b.grad || b->fc_w.grad || b->fc_b.grad || b->proj_w.grad || b->proj_b.grad)
            return 1 + l;
    }
    return st->lnf_w.grad || st->lnf_b.grad ? 1 + layers : 2 + layers;
}

vt_status text_train_create(clip_trainer *tr, vt_error *err) {
    const vt_model_config *c = &tr->params->cfg;
    text_train_state *st = calloc(1, sizeof *st);
    if (!st) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    tr->text = st;
    st->recompute = tr->options.recompute;
    st->resident = -1;
    st->blk = calloc((size_t)c->text_layers, sizeof *st->blk);
    st->acts = calloc(st->recompute ? 1 : (size_t)c->text_layers, sizeof *st->acts);
    if (!st->blk || !st->acts) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    size_t B = (size_t)tr->options.batch, ctx = (size_t)c->context_length, w = (size_t)c->text_width;
    size_t rows = B * ctx;
    st->batch = (int)B;
    int ok = 1;
#define A(n) (ok && (ok = (alloc_bytes(st, (n) * sizeof(float)) != NULL)) ? (float *)st->allocs[st->alloc_count - 1] : NULL)
    st->ids = ok ? alloc_bytes(st, B * ctx * sizeof(int32_t)) : NULL;
    st->eot = ok ? alloc_bytes(st, B * sizeof(int)) : NULL;
    ok = st->ids && st->eot;
    st->x0 = A(rows * w);
    st->tok = clip_trainer_tensor(tr, T_TXT_TOKEN, -1, -1);
    st->pos = clip_trainer_tensor(tr, T_TXT_POS, -1, -1);
    st->lnf_w = clip_trainer_tensor(tr, T_TXT_LN_FINAL_W, -1, -1);
    st->lnf_b = clip_trainer_tensor(tr, T_TXT_LN_FINAL_B, -1, -1);
    st->proj = clip_trainer_tensor(tr, T_TXT_PROJ, -1, -1);
    for (int i = 0; i < c->text_layers; i++) {
        text_block_train *b = &st->blk[i];
        b->ln1_w = clip_trainer_tensor(tr, T_TXT_LN1_W, i, -1);
        b->ln1_b = clip_trainer_tensor(tr, T_TXT_LN1_B, i, -1);
        b->in_w = clip_trainer_tensor(tr, T_TXT_IN_PROJ_W, i, -1);
        b->in_b = clip_trainer_tensor(tr, T_TXT_IN_PROJ_B, i, -1);
        b->out_w = clip_trainer_tensor(tr, T_TXT_OUT_PROJ_W, i, -1);
        b->out_b = clip_trainer_tensor(tr, T_TXT_OUT_PROJ_B, i, -1);
        b->ln2_w = clip_trainer_tensor(tr, T_TXT_LN2_W, i, -1);
        b->ln2_b = clip_trainer_tensor(tr, T_TXT_LN2_B, i, -1);
        b->fc_w = clip_trainer_tensor(tr, T_TXT_FC_W, i, -1);
        b->fc_b = clip_trainer_tensor(tr, T_TXT_FC_B, i, -1);
        b->proj_w = clip_trainer_tensor(tr, T_TXT_CPROJ_W, i, -1);
        b->proj_b = clip_trainer_tensor(tr, T_TXT_CPROJ_B, i, -1);
        b->a = &st->acts[st->recompute ? 0 : i];
        b->x_out = A(rows * w);
    }
    for (int i = 0; i < (st->recompute ? 1 : c->text_layers); i++) {
        text_block_acts *a = &st->acts[i];
        a->ln1 = A(rows * w);
        a->m1 = A(rows);
        a->r1 = A(rows);
        a->qkv = A(rows * 3 * w);
        a->att = A(rows * w);
        a->probs = A(B * (size_t)c->text_heads * ctx * ctx);
        a->x_mid = A(rows * w);
        a->ln2 = A(rows * w);
        a->m2 = A(rows);
        a->r2 = A(rows);
        a->f = A(rows * 4 * w);
    }
    st->pooled = A(B * w);
    st->lnf_out = A(B * w);
    st->lnf_m = A(B);
    st->lnf_r = A(B);
    for (int i = 0; i < 4; i++) st->t[i] = A(rows * 4 * w);
#undef A
    if (!ok) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the text tower's training activations");
    st->lowest = lowest_level(st, c->text_layers);
    return VT_OK;
}

/* Elementwise loops in parallel chunks above a size where the fork pays
 * (fixed chunks, each element alone: same bits for any thread count). */
enum { EW_CHUNK = 1 << 14 };

static int ew_parallel(size_t n) { return n >= 2 * EW_CHUNK && !omp_in_parallel(); }

/* out[i] = a[i] + b[i] (out may alias a) */
static void add_arrays(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) if (ew_parallel(n))
    for (size_t s = 0; s < n; s += EW_CHUNK) {
        size_t e = s + EW_CHUNK < n ? s + EW_CHUNK : n;
        for (size_t i = s; i < e; i++) out[i] = a[i] + b[i];
    }
}

/* One block from x [n·T, W]: activations into b->a and, when `out` is not
 * NULL, GELU → c_proj → residual into out (the backward's recompute passes
 * NULL). branch [n·T, W] and gelu [n·T, 4W] are temporaries. */
static void block_forward(const vt_model_config *c, const text_block_train *b, const float *x, float *out, int n,
                          int T, float *branch, float *gelu) {
    const text_block_acts *a = b->a;
    int w = c->text_width;
    size_t rows = (size_t)n * T;
    layernorm_train_forward(a->ln1, a->m1, a->r1, x, b->ln1_w.value, b->ln1_b.value, rows, w, EPS);
    linear_forward(a->qkv, a->ln1, b->in_w.value, b->in_b.value, (int)rows, w, 3 * w);
    attention_train_forward(a->att, a->probs, a->qkv, n, T, w, c->text_heads, 1);
    linear_forward(branch, a->att, b->out_w.value, b->out_b.value, (int)rows, w, w);
    add_arrays(a->x_mid, x, branch, rows * w);
    layernorm_train_forward(a->ln2, a->m2, a->r2, a->x_mid, b->ln2_w.value, b->ln2_b.value, rows, w, EPS);
    linear_forward(a->f, a->ln2, b->fc_w.value, b->fc_b.value, (int)rows, w, 4 * w);
    if (!out) return;
    gelu_train_forward(gelu, a->f, rows * 4 * w);
    linear_forward(branch, gelu, b->proj_w.value, b->proj_b.value, (int)rows, 4 * w, w);
    add_arrays(out, a->x_mid, branch, rows * w);
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
        block_forward(c, &st->blk[l], x, st->blk[l].x_out, n, T, st->t[0], st->t[1]);
        x = st->blk[l].x_out;
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
        const text_block_train *b = &st->blk[l];
        const text_block_acts *a = b->a;
        const float *x_in = l ? st->blk[l - 1].x_out : st->x0;
        if (st->recompute && st->resident != l) {
            block_forward(c, b, x_in, NULL, n, T, d1, NULL); /* d1..d3 are free here; dx is live */
            st->resident = l;
        }
        /* MLP: x_out = x_mid + c_proj(gelu(c_fc(LN2 x_mid))). */
        gelu_train_forward(d3, a->f, rows * 4 * w);
        linear_backward(d1, b->proj_w.grad, b->proj_b.grad, dx, d3, b->proj_w.value, (int)rows, 4 * w, w);
        gelu_train_backward(d1, d1, a->f, rows * 4 * w);
        linear_backward(d2, b->fc_w.grad, b->fc_b.grad, d1, a->ln2, b->fc_w.value, (int)rows, w, 4 * w);
        /* dx += LN2 backward, in the LayerNorm's own pass */
        layernorm_train_backward_add(dx, dx, b->ln2_w.grad, b->ln2_b.grad, d2, a->x_mid, a->m2, a->r2,
                                     b->ln2_w.value, rows, w);
        /* Attention: x_mid = x_in + out_proj(attn(in_proj(LN1 x_in))). */
        linear_backward(d1, b->out_w.grad, b->out_b.grad, dx, a->att, b->out_w.value, (int)rows, w, w);
        attention_train_backward(d2, d1, a->qkv, a->probs, n, T, w, c->text_heads, 1);
        linear_backward(d1, b->in_w.grad, b->in_b.grad, d2, a->ln1, b->in_w.value, (int)rows, w, 3 * w);
        layernorm_train_backward_add(dx, dx, b->ln1_w.grad, b->ln1_b.grad, d1, x_in, a->m1, a->r1,
                                     b->ln1_w.value, rows, w);
    }
    if (st->lowest > 0) return;
    /* Embeddings: serial over samples and positions, so the token-embedding
     * rows shared by several tokens sum in a fixed order. */
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            const float *g = dx + ((size_t)i * T + t) * w;
            if (st->pos.grad) add_arrays(st->pos.grad + (size_t)t * w, st->pos.grad + (size_t)t * w, g, (size_t)w);
            if (st->tok.grad) {
                float *row = st->tok.grad + (size_t)st->ids[(size_t)i * ctx + t] * w;
                add_arrays(row, row, g, (size_t)w);
            }
        }
}
