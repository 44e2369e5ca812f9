/* ViTamin image tower for training: the same network as model/image_tower.c
 * (timm models/vitamin.py), written as plain layer calls on NHWC maps that keep every
 * activation the backward needs. The conv part keeps both sides of each GELU:
 * the backward needs the pre-activation for GELU's derivative and the
 * post-activation as the next layer's input for its weight gradient, and
 * recomputing the latter was a full pass over the biggest maps of the network
 * (read e, erf, write) for each of them — 15% of a step. The GELUs of the
 * depthwise conv run inside it, row by row (depthwise3x3_gelu_train_*).
 *
 * Saved per layer (B = micro-batch):
 *   stem:   x0 (NHWC input), a1 (conv1 out), LN stats, n1 (LN out, pre-GELU),
 *           gelu(n1), out (conv2)
 *   MBConv: in (previous out), LN out + stats, e (1×1 expand, pre-GELU), gelu(e),
 *           d (depthwise, pre-GELU), gelu(d), pooled (shortcut pool, when it
 *           has a 1×1), out
 *   tokens: LN out + stats of the 16× map, x (conv out + pos_embed)
 *   block:  LN1 out + stats, qkv, attention out + probs, x_mid, LN2 out + stats,
 *           mlp-LN out + stats, w0 out, w1 out, GeGLU out, x_out, drop-path scales
 *   head:   mean-pooled tokens, fc_norm out + stats
 *
 * With options.recompute (open_clip --grad-checkpointing) each MBConv keeps
 * only its input, shortcut pool and output, and each transformer block its
 * output (the next block's input) and drop-path scales; the rest lives in one
 * shared set of buffers per kind, which the backward refills by re-running
 * that block's forward (the same calls in the same order, so bit-identical)
 * right before back-propagating through it. There the MBConv's gelu(e) and
 * gelu(d) live in the temporaries t[4] and t[3] (the backward's gradient of e
 * overwrites gelu(e) in place), and the stem's gelu(n1) is recomputed.
 *
 * The backward stops below the lowest tensor that has a gradient (--lock-image
 * with unlocked groups trains only the top of the trunk). */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/conv.h"
#include "model/topology.h"
#include "train/arena.h"
#include "train/clip_train.h"
#include "train/elementwise.h"
#include "train/ops.h"
#include "train/rng.h"

static const float EPS = 1e-6f; /* every LayerNorm of the image tower */

/* What an MBConv's backward needs besides its input and output: per block,
 * or one shared set (sized for the largest block) with recompute. */
typedef struct {
    float *ln, *mean, *rstd, *e, *ge, *d, *gd; /* ge = gelu(e), gd = gelu(d) */
} mbconv_acts;

typedef struct {
    int cin, cout, mid, stride, h, w, ho, wo, has_expand, pool_shortcut;
    train_tensor pre_w, pre_b, c1_w, c1_b, dw_w, dw_b, c3_w, c3_b, ex_w, ex_b;
    const mbconv_acts *a;
    float *in, *pooled, *out;
} mbconv_train;

/* Likewise for a transformer block. */
typedef struct {
    float *ln1, *m1, *r1, *qkv, *att, *probs, *x_mid, *ln2, *m2, *r2, *u, *mm, *rm, *g, *l, *hid;
} block_acts;

typedef struct {
    train_tensor n1_w, n1_b, qkv_w, qkv_b, proj_w, proj_b, n2_w, n2_b, mn_w, mn_b, w0_w, w0_b, w1_w, w1_b,
        w2_w, w2_b;
    const block_acts *a;
    float *x_out;
    float *keep1, *keep2; /* [B] drop-path scale per sample: 0 or 1/(1-p) */
    float rate;
} block_train;

struct image_train_state {
    int batch, n;  /* capacity, samples of the last forward */
    int s, h1, grid, tokens;
    /* stem */
    train_tensor c1_w, c1_b, n1_w, n1_b, c2_w, c2_b;
    float *x0, *a1, *sm, *sr, *n1, *stem_out;
    float *stem_g; /* gelu(n1); NULL with recompute (then recomputed in the backward) */
    mbconv_train mb[VT_MAX_MBCONV];
    mbconv_acts mb_acts[VT_MAX_MBCONV];
    int mb_count;
    /* StridedConv + tokens */
    train_tensor pn_w, pn_b, pp_w, pp_b, pos;
    float *pool_ln, *pool_m, *pool_r, *x_tokens;
    block_train *blk;
    block_acts *blk_acts;
    /* head */
    train_tensor fc_w, fc_b, head_w;
    float *pooled, *fc_out, *fc_m, *fc_r;
    /* Temporaries: t[0], t[1] map-sized (gradients flowing between layers),
     * t[2..4] for the 4×-wide MBConv intermediates and the blocks' MLP. */
    float *t[5];
    /* recompute: which block's activations the shared buffers hold (-1: none). */
    int recompute, mb_resident, blk_resident;
    int lowest; /* lowest level with a gradient (level_* below) */
    train_arena arena;
};

void image_train_free(image_train_state *st) {
    if (!st) return;
    train_arena_free(&st->arena);
    free(st->blk);
    free(st->blk_acts);
    free(st);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Backward levels, bottom to top: the stem, each MBConv, the tokens
 * (StridedConv + pos_embed), each block, fc_norm; above them only the head. */
static int level_mb(int i) { return 1 + i; }
static int level_tokens(const image_train_state *st) { return 1 + st->mb_count; }
static int level_block(const image_train_state *st, int bi) { return 2 + st->mb_count + bi; }
static int level_fc(const image_train_state *st, int depth) { return 2 + st->mb_count + depth; }

static int any_grad(const train_tensor *const *t, int n) {
    for (int i = 0; i < n; i++)
        if (t[i]->grad) return 1;
    return 0;
}
#define ANY_GRAD(...) any_grad((const train_tensor *const[]){__VA_ARGS__}, \
                               (int)(sizeof((const train_tensor *const[]){__VA_ARGS__}) / sizeof(void *)))

static int lowest_level(const image_train_state *st, int depth) {
    if (ANY_GRAD(&st->c1_w, &st->c1_b, &st->n1_w, &st->n1_b, &st->c2_w, &st->c2_b)) return 0;
    for (int i = 0; i < st->mb_count; i++) {
        const mbconv_train *m = &st->mb[i];
        if (ANY_GRAD(&m->pre_w, &m->pre_b, &m->c1_w, &m->c1_b, &m->dw_w, &m->dw_b, &m->c3_w, &m->c3_b, &m->ex_w,
                     &m->ex_b))
            return level_mb(i);
    }
    if (ANY_GRAD(&st->pn_w, &st->pn_b, &st->pp_w, &st->pp_b, &st->pos)) return level_tokens(st);
    for (int bi = 0; bi < depth; bi++) {
        const block_train *b = &st->blk[bi];
        if (ANY_GRAD(&b->n1_w, &b->n1_b, &b->qkv_w, &b->qkv_b, &b->proj_w, &b->proj_b, &b->n2_w, &b->n2_b,
                     &b->mn_w, &b->mn_b, &b->w0_w, &b->w0_b, &b->w1_w, &b->w1_b, &b->w2_w, &b->w2_b))
            return level_block(st, bi);
    }
    if (ANY_GRAD(&st->fc_w, &st->fc_b)) return level_fc(st, depth);
    return level_fc(st, depth) + 1;
}

vt_status image_train_create(clip_trainer *tr, vt_error *err) {
    const vt_model_config *c = &tr->params->cfg;
    image_train_state *st = calloc(1, sizeof *st);
    if (!st) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    tr->image = st;
    st->recompute = tr->options.recompute;
    st->mb_resident = st->blk_resident = -1;
    st->blk = calloc((size_t)c->depth, sizeof *st->blk);
    st->blk_acts = calloc(st->recompute ? 1 : (size_t)c->depth, sizeof *st->blk_acts);
    if (!st->blk || !st->blk_acts) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    size_t B = (size_t)tr->options.batch;
    st->batch = (int)B;
    st->s = c->image_size;
    st->h1 = conv3x3_out(st->s, 2);
    int ok = 1;
#define A(n) (ok && (ok = (train_arena_floats(&st->arena, (n)) != NULL)) ? (float *)st->arena.blocks[st->arena.count - 1] : NULL)
    size_t s = (size_t)st->s, h1 = (size_t)st->h1, c0 = (size_t)c->stem_width;
    st->x0 = A(B * s * s * 3);
    st->a1 = A(B * h1 * h1 * c0);
    st->sm = A(B * h1 * h1);
    st->sr = A(B * h1 * h1);
    st->n1 = A(B * h1 * h1 * c0);
    if (!st->recompute) st->stem_g = A(B * h1 * h1 * c0);
    st->stem_out = A(B * h1 * h1 * c0);
    /* Temporary sizes (see the comment on t[] above); grown below. */
    size_t map = B * h1 * h1 * c0, wide_in = 0, wide_out = 0;
    size_t max_ln = 0, max_px = 0;
    int cin = c->stem_width, h = st->h1;
    float *prev = st->stem_out;
    image_topology topo;
    if (image_topology_build(c, &topo)) return vt_fail(err, VT_ERR_MODEL, "%s: too many MBConv blocks", c->name);
    st->mb_count = topo.mbconv_count;
    for (int i = 0; i < st->mb_count; i++) {
        mbconv_train *m = &st->mb[i];
        const topo_mbconv *t = &topo.mbconv[i];
        int stage = t->stage, idx = t->index;
        m->cin = t->cin;
        m->cout = t->cout;
        m->mid = t->mid;
        m->stride = t->stride;
        m->h = m->w = t->h_in;
        m->ho = m->wo = t->h_out;
        m->has_expand = t->has_expand;
        m->pool_shortcut = m->stride == 2;
        m->in = prev;
        size_t in_px = B * (size_t)h * h, out_px = B * (size_t)m->ho * m->wo;
        if (m->has_expand) m->pooled = A(out_px * m->cin);
        m->out = A(out_px * m->cout);
        if (!st->recompute) {
            mbconv_acts *a = &st->mb_acts[i];
            a->ln = A(in_px * m->cin);
            a->mean = A(in_px);
            a->rstd = A(in_px);
            a->e = A(in_px * m->mid);
            a->ge = A(in_px * m->mid);
            a->d = A(out_px * m->mid);
            a->gd = A(out_px * m->mid);
        }
        m->a = &st->mb_acts[st->recompute ? 0 : i];
        max_ln = max_sz(max_ln, in_px * m->cin);
        max_px = max_sz(max_px, in_px);
        map = max_sz(map, max_sz(in_px * m->cin, out_px * m->cout));
        wide_in = max_sz(wide_in, in_px * m->mid);
        wide_out = max_sz(wide_out, max_sz(out_px * m->mid, out_px * m->cin));
        m->pre_w = clip_trainer_tensor(tr, T_MB_PRE_NORM_W, stage, idx);
        m->pre_b = clip_trainer_tensor(tr, T_MB_PRE_NORM_B, stage, idx);
        m->c1_w = clip_trainer_tensor(tr, T_MB_CONV1_W, stage, idx);
        m->c1_b = clip_trainer_tensor(tr, T_MB_CONV1_B, stage, idx);
        m->dw_w = clip_trainer_tensor(tr, T_MB_DW_W, stage, idx);
        m->dw_b = clip_trainer_tensor(tr, T_MB_DW_B, stage, idx);
        m->c3_w = clip_trainer_tensor(tr, T_MB_CONV3_W, stage, idx);
        m->c3_b = clip_trainer_tensor(tr, T_MB_CONV3_B, stage, idx);
        if (m->has_expand) {
            m->ex_w = clip_trainer_tensor(tr, T_MB_EXPAND_W, stage, idx);
            m->ex_b = clip_trainer_tensor(tr, T_MB_EXPAND_B, stage, idx);
        }
        prev = m->out;
        cin = m->cout;
        h = m->ho;
    }
    if (st->recompute) {
        mbconv_acts *a = &st->mb_acts[0];
        a->ln = A(max_ln);
        a->mean = A(max_px);
        a->rstd = A(max_px);
        a->e = A(wide_in);
        a->d = A(wide_out);
    }
    st->grid = conv3x3_out(h, 2);
    st->tokens = st->grid * st->grid;
    size_t c2_px = B * (size_t)h * h, rows = B * (size_t)st->tokens, d = (size_t)c->width, hid = (size_t)c->mlp_hidden;
    st->pool_ln = A(c2_px * cin);
    st->pool_m = A(c2_px);
    st->pool_r = A(c2_px);
    st->x_tokens = A(rows * d);
    st->c1_w = clip_trainer_tensor(tr, T_STEM_CONV1_W, -1, -1);
    st->c1_b = clip_trainer_tensor(tr, T_STEM_CONV1_B, -1, -1);
    st->n1_w = clip_trainer_tensor(tr, T_STEM_NORM1_W, -1, -1);
    st->n1_b = clip_trainer_tensor(tr, T_STEM_NORM1_B, -1, -1);
    st->c2_w = clip_trainer_tensor(tr, T_STEM_CONV2_W, -1, -1);
    st->c2_b = clip_trainer_tensor(tr, T_STEM_CONV2_B, -1, -1);
    st->pn_w = clip_trainer_tensor(tr, T_POOL_NORM_W, -1, -1);
    st->pn_b = clip_trainer_tensor(tr, T_POOL_NORM_B, -1, -1);
    st->pp_w = clip_trainer_tensor(tr, T_POOL_PROJ_W, -1, -1);
    st->pp_b = clip_trainer_tensor(tr, T_POOL_PROJ_B, -1, -1);
    if (c->has_pos_embed) st->pos = clip_trainer_tensor(tr, T_POS_EMBED, -1, -1);
    size_t probs = B * (size_t)c->heads * st->tokens * st->tokens;
    for (int i = 0; i < (st->recompute ? 1 : c->depth); i++) {
        block_acts *a = &st->blk_acts[i];
        a->ln1 = A(rows * d);
        a->m1 = A(rows);
        a->r1 = A(rows);
        a->qkv = A(rows * 3 * d);
        a->att = A(rows * d);
        a->probs = A(probs);
        a->x_mid = A(rows * d);
        a->ln2 = A(rows * d);
        a->m2 = A(rows);
        a->r2 = A(rows);
        a->u = A(rows * d);
        a->mm = A(rows);
        a->rm = A(rows);
        a->g = A(rows * hid);
        a->l = A(rows * hid);
        a->hid = A(rows * hid);
    }
    for (int i = 0; i < c->depth; i++) {
        block_train *b = &st->blk[i];
        b->n1_w = clip_trainer_tensor(tr, T_BLK_NORM1_W, i, -1);
        b->n1_b = clip_trainer_tensor(tr, T_BLK_NORM1_B, i, -1);
        b->qkv_w = clip_trainer_tensor(tr, T_BLK_QKV_W, i, -1);
        b->qkv_b = clip_trainer_tensor(tr, T_BLK_QKV_B, i, -1);
        b->proj_w = clip_trainer_tensor(tr, T_BLK_PROJ_W, i, -1);
        b->proj_b = clip_trainer_tensor(tr, T_BLK_PROJ_B, i, -1);
        b->n2_w = clip_trainer_tensor(tr, T_BLK_NORM2_W, i, -1);
        b->n2_b = clip_trainer_tensor(tr, T_BLK_NORM2_B, i, -1);
        b->mn_w = clip_trainer_tensor(tr, T_BLK_MLP_NORM_W, i, -1);
        b->mn_b = clip_trainer_tensor(tr, T_BLK_MLP_NORM_B, i, -1);
        b->w0_w = clip_trainer_tensor(tr, T_BLK_W0_W, i, -1);
        b->w0_b = clip_trainer_tensor(tr, T_BLK_W0_B, i, -1);
        b->w1_w = clip_trainer_tensor(tr, T_BLK_W1_W, i, -1);
        b->w1_b = clip_trainer_tensor(tr, T_BLK_W1_B, i, -1);
        b->w2_w = clip_trainer_tensor(tr, T_BLK_W2_W, i, -1);
        b->w2_b = clip_trainer_tensor(tr, T_BLK_W2_B, i, -1);
        b->a = &st->blk_acts[st->recompute ? 0 : i];
        b->x_out = A(rows * d);
        b->keep1 = A(B);
        b->keep2 = A(B);
        b->rate = c->depth > 1 ? tr->options.drop_path * (float)i / (float)(c->depth - 1) : 0.0f;
    }
    st->fc_w = clip_trainer_tensor(tr, T_FC_NORM_W, -1, -1);
    st->fc_b = clip_trainer_tensor(tr, T_FC_NORM_B, -1, -1);
    st->head_w = clip_trainer_tensor(tr, T_HEAD_PROJ_W, -1, -1);
    st->pooled = A(B * d);
    st->fc_out = A(B * d);
    st->fc_m = A(B);
    st->fc_r = A(B);
    /* t[0], t[1]: gradients between layers (and the forward's stem GELU with
     * recompute, and the block branch); t[2]: MBConv d mid-out / dln, stem
     * gelu(n1) recomputed, block MLP; t[3]: d shortcut pool (and gelu(d) with
     * recompute); t[4]: MBConv d mid-in (and gelu(e) with recompute); each
     * also a block-backward temporary (rows·max(3D, H)) and head temporary (B·D). */
    size_t blk_tmp = max_sz(rows * max_sz(3 * d, hid), B * d);
    map = max_sz(map, max_sz(rows * d, B * d));
    size_t sizes[5] = {map, map, max_sz(wide_in, max_sz(blk_tmp, map)), max_sz(wide_out, blk_tmp),
                       max_sz(wide_in, max_sz(blk_tmp, map))};
    for (int i = 0; i < 5; i++) st->t[i] = A(sizes[i]);
#undef A
    if (st->recompute && ok) { /* sizes: t[4] >= wide_in, t[3] >= wide_out */
        st->mb_acts[0].ge = st->t[4];
        st->mb_acts[0].gd = st->t[3];
    }
    if (!ok) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the image tower's training activations "
                            "(batch %d); use a smaller --batch-size or --accum-freq", (int)B);
    st->lowest = lowest_level(st, c->depth);
    return VT_OK;
}

/* ---- Forward ---- */

/* Elementwise loops over whole maps run in parallel chunks (train/elementwise.h). */

/* out[r, j] = in[r, j] + bias[j] (in may be NULL: out[r, j] += bias[j]). */
static void add_bias_rows(float *out, const float *in, const float *bias, size_t rows, int cols) {
    size_t per = EW_CHUNK / (size_t)cols + 1;
#pragma omp parallel for schedule(static) if (ew_parallel(rows * cols))
    for (size_t r0 = 0; r0 < rows; r0 += per) {
        size_t r1 = r0 + per < rows ? r0 + per : rows;
        for (size_t r = r0; r < r1; r++) {
            float *o = out + r * cols;
            const float *x = in ? in + r * cols : o;
            for (int j = 0; j < cols; j++) o[j] = x[j] + bias[j];
        }
    }
}

/* dst[i] += src[i] */
static void add_into(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (ew_parallel(n))
    for (size_t s = 0; s < n; s += EW_CHUNK) {
        size_t e = s + EW_CHUNK < n ? s + EW_CHUNK : n;
        for (size_t i = s; i < e; i++) dst[i] += src[i];
    }
}

/* The MBConv's main branch up to the depthwise conv: LN → ln, 1×1 expand → e,
 * GELU → ge, depthwise → d and its GELU → gd. The backward's recompute calls
 * only this (the output and shortcut pool are kept per block). */
static void mbconv_branch_forward(const mbconv_train *m, int n) {
    const mbconv_acts *a = m->a;
    size_t in_px = (size_t)n * m->h * m->w;
    layernorm_train_forward(a->ln, a->mean, a->rstd, m->in, m->pre_w.value, m->pre_b.value, in_px, m->cin, EPS);
    linear_forward(a->e, a->ln, m->c1_w.value, m->c1_b.value, (int)in_px, m->cin, m->mid);
    gelu_train_forward(a->ge, a->e, in_px * m->mid);
    depthwise3x3_gelu_train_forward(a->d, a->gd, a->ge, m->dw_w.value, m->dw_b.value, n, m->h, m->w, m->mid,
                                    m->stride);
}

/* One MbConvLNBlock. */
static void mbconv_forward(const mbconv_train *m, int n) {
    size_t out_px = (size_t)n * m->ho * m->wo;
    /* Shortcut + the projection's bias into out; the projection adds onto it. */
    if (m->pool_shortcut) {
        if (m->has_expand) {
            avgpool3x3s2_forward(m->pooled, m->in, n, m->h, m->w, m->cin);
            linear_forward(m->out, m->pooled, m->ex_w.value, m->ex_b.value, (int)out_px, m->cin, m->cout);
        } else {
            avgpool3x3s2_forward(m->out, m->in, n, m->h, m->w, m->cin);
        }
        add_bias_rows(m->out, NULL, m->c3_b.value, out_px, m->cout);
    } else {
        add_bias_rows(m->out, m->in, m->c3_b.value, out_px, m->cout);
    }
    mbconv_branch_forward(m, n);
    /* out += gd · W3ᵀ (shortcut and bias are already in out). */
    tmat_nt((int)out_px, m->cout, m->mid, m->a->gd, m->mid, m->c3_w.value, m->mid, m->out, m->cout, 1);
}

/* out = in + keep · branch (in NULL: out = keep · branch), keep per sample:
 * the forward residual with drop-path, and (in NULL) its backward into the
 * branch. */
static void add_scaled_per_sample(float *out, const float *in, const float *branch, const float *keep, int n,
                                  size_t per_sample) {
    size_t total = (size_t)n * per_sample;
#pragma omp parallel for schedule(static) if (ew_parallel(total))
    for (size_t s = 0; s < total; s += EW_CHUNK) {
        size_t e = s + EW_CHUNK < total ? s + EW_CHUNK : total;
        for (size_t j = s; j < e;) { /* split at sample boundaries */
            size_t i = j / per_sample, stop = (i + 1) * per_sample < e ? (i + 1) * per_sample : e;
            float k = keep[i];
            if (in)
                for (; j < stop; j++) out[j] = in[j] + k * branch[j];
            else
                for (; j < stop; j++) out[j] = k * branch[j];
        }
    }
}

/* One transformer block from x [n·T, D]: its activations into b->a and, when
 * `out` is not NULL, the MLP projection + residual into out (the backward's
 * recompute passes NULL: it needs everything but that). `branch` is a
 * [n·T, D] temporary. The drop-path scales b->keep* are drawn beforehand. */
static void block_forward(const vt_model_config *c, const block_train *b, const float *x, float *out, int n, int T,
                          float *branch) {
    const block_acts *a = b->a;
    int d = c->width, hid = c->mlp_hidden;
    size_t rows = (size_t)n * T;
    layernorm_train_forward(a->ln1, a->m1, a->r1, x, b->n1_w.value, b->n1_b.value, rows, d, EPS);
    linear_forward(a->qkv, a->ln1, b->qkv_w.value, b->qkv_b.value, (int)rows, d, 3 * d);
    attention_train_forward(a->att, a->probs, a->qkv, n, T, d, c->heads, 0);
    linear_forward(branch, a->att, b->proj_w.value, b->proj_b.value, (int)rows, d, d);
    add_scaled_per_sample(a->x_mid, x, branch, b->keep1, n, (size_t)T * d);
    layernorm_train_forward(a->ln2, a->m2, a->r2, a->x_mid, b->n2_w.value, b->n2_b.value, rows, d, EPS);
    layernorm_train_forward(a->u, a->mm, a->rm, a->ln2, b->mn_w.value, b->mn_b.value, rows, d, EPS);
    linear_forward(a->g, a->u, b->w0_w.value, b->w0_b.value, (int)rows, d, hid);
    linear_forward(a->l, a->u, b->w1_w.value, b->w1_b.value, (int)rows, d, hid);
    glu_train_forward(c->mlp_glu, a->hid, a->g, a->l, rows, hid);
    if (!out) return;
    linear_forward(branch, a->hid, b->w2_w.value, b->w2_b.value, (int)rows, hid, d);
    add_scaled_per_sample(out, a->x_mid, branch, b->keep2, n, (size_t)T * d);
}

void image_train_forward(clip_trainer *tr, const float *pixels, int n, uint64_t drop_key, int64_t first_sample,
                         float *features) {
    const vt_model_config *c = &tr->params->cfg;
    image_train_state *st = tr->image;
    st->n = n;
    int s = st->s, h1 = st->h1, c0 = c->stem_width, d = c->width, T = st->tokens;
    /* NCHW → NHWC, one (image, row) per task. */
#pragma omp parallel for schedule(static) if (ew_parallel((size_t)n * s * s * 3))
    for (int iy = 0; iy < n * s; iy++) {
        int i = iy / s, y = iy % s;
        float *dst = st->x0 + (size_t)iy * s * 3;
        for (int ch = 0; ch < 3; ch++) {
            const float *src = pixels + (((size_t)i * 3 + ch) * s + y) * s;
            for (int x = 0; x < s; x++) dst[(size_t)x * 3 + ch] = src[x];
        }
    }
    size_t px1 = (size_t)n * h1 * h1;
    conv3x3_train_forward(st->a1, st->x0, st->c1_w.value, st->c1_b.value, n, s, s, 3, c0, 2);
    layernorm_train_forward(st->n1, st->sm, st->sr, st->a1, st->n1_w.value, st->n1_b.value, px1, c0, EPS);
    float *g = st->stem_g ? st->stem_g : st->t[0];
    gelu_train_forward(g, st->n1, px1 * c0);
    conv3x3_train_forward(st->stem_out, g, st->c2_w.value, st->c2_b.value, n, h1, h1, c0, c0, 1);
    for (int i = 0; i < st->mb_count; i++) mbconv_forward(&st->mb[i], n);
    /* With recompute the last MBConv's gelu(e), gelu(d) live in temporaries
     * that the blocks' backward overwrites: it is recomputed like the rest. */
    st->mb_resident = st->recompute ? -1 : st->mb_count - 1;
    const mbconv_train *last = &st->mb[st->mb_count - 1];
    size_t px2 = (size_t)n * last->ho * last->wo;
    layernorm_train_forward(st->pool_ln, st->pool_m, st->pool_r, last->out, st->pn_w.value, st->pn_b.value, px2,
                            last->cout, EPS);
    conv3x3_train_forward(st->x_tokens, st->pool_ln, st->pp_w.value, st->pp_b.value, n, last->ho, last->wo,
                          last->cout, d, 2);
    if (st->pos.value) /* pos_embed [T·D] added to each image's tokens */
        add_bias_rows(st->x_tokens, NULL, st->pos.value, (size_t)n, T * d);
    const float *x = st->x_tokens;
    for (int bi = 0; bi < c->depth; bi++) {
        block_train *b = &st->blk[bi];
        rng_drop_path_scales(b->keep1, n, b->rate, rng_key(drop_key, (uint64_t)bi, 1), first_sample, 0);
        rng_drop_path_scales(b->keep2, n, b->rate, rng_key(drop_key, (uint64_t)bi, 2), first_sample, 1);
        block_forward(c, b, x, b->x_out, n, T, st->t[0]);
        x = b->x_out;
    }
    st->blk_resident = c->depth - 1;
#pragma omp parallel for schedule(static) if (ew_parallel((size_t)n * T * d))
    for (int i = 0; i < n; i++) {
        float *p = st->pooled + (size_t)i * d;
        for (int j = 0; j < d; j++) p[j] = 0.0f;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < d; j++) p[j] += x[((size_t)i * T + t) * d + j];
        for (int j = 0; j < d; j++) p[j] /= (float)T;
    }
    layernorm_train_forward(st->fc_out, st->fc_m, st->fc_r, st->pooled, st->fc_w.value, st->fc_b.value, (size_t)n,
                            d, EPS);
    linear_forward(features, st->fc_out, st->head_w.value, NULL, n, d, c->embed_dim);
}

/* ---- Backward ---- */

/* dx_in (overwritten) from dout, through MBConv i. Uses t[2..4]. */
static void mbconv_backward(image_train_state *st, int i, int n, const float *dout, float *dx) {
    const mbconv_train *m = &st->mb[i];
    const mbconv_acts *a = m->a;
    size_t in_px = (size_t)n * m->h * m->w, out_px = (size_t)n * m->ho * m->wo;
    /* dmid_in may be a->ge itself (recompute): the depthwise backward allows it. */
    float *dmid_out = st->t[2], *dmid_in = st->t[4], *dln = st->t[2], *dshort = st->t[3];
    if (st->recompute && st->mb_resident != i) {
        mbconv_branch_forward(m, n);
        st->mb_resident = i;
    }
    /* conv3 (input gd), then the GELU of d. */
    linear_backward(dmid_out, m->c3_w.grad, m->c3_b.grad, dout, a->gd, m->c3_w.value, (int)out_px, m->mid,
                    m->cout);
    gelu_train_backward(dmid_out, dmid_out, a->d, out_px * m->mid);
    /* depthwise (input ge) and the GELU of e, fused. */
    depthwise3x3_gelu_train_backward(dmid_in, m->dw_w.grad, m->dw_b.grad, dmid_out, a->ge, a->e, m->dw_w.value, n,
                                     m->h, m->w, m->mid, m->stride);
    /* conv1 → dln (dmid_out is dead), then the pre-norm → dx plus the shortcut's
     * gradient, added in the LayerNorm backward's pass. */
    linear_backward(dln, m->c1_w.grad, m->c1_b.grad, dmid_in, a->ln, m->c1_w.value, (int)in_px, m->cin, m->mid);
    const float *dshortcut = dout;
    if (m->pool_shortcut) {
        const float *dpool = dout;
        if (m->has_expand) {
            linear_backward(dshort, m->ex_w.grad, m->ex_b.grad, dout, m->pooled, m->ex_w.value, (int)out_px,
                            m->cin, m->cout);
            dpool = dshort;
        }
        avgpool3x3s2_backward(dx, dpool, n, m->h, m->w, m->cin);
        dshortcut = dx;
    }
    layernorm_train_backward_add(dx, dshortcut, m->pre_w.grad, m->pre_b.grad, dln, m->in, a->mean, a->rstd,
                                 m->pre_w.value, in_px, m->cin);
}

/* dx holds d x_out of block bi on entry, d x_in on return. Uses t[1..4]. */
static void block_backward(const vt_model_config *c, image_train_state *st, int bi, float *dx) {
    const block_train *b = &st->blk[bi];
    const block_acts *a = b->a;
    int n = st->n, d = c->width, hid = c->mlp_hidden, T = st->tokens;
    size_t rows = (size_t)n * T;
    const float *x_in = bi ? st->blk[bi - 1].x_out : st->x_tokens;
    if (st->recompute && st->blk_resident != bi) {
        block_forward(c, b, x_in, NULL, n, T, st->t[1]);
        st->blk_resident = bi;
    }
    float *db = st->t[2], *dh = st->t[3], *dl = st->t[4];
    /* MLP branch. */
    add_scaled_per_sample(db, NULL, dx, b->keep2, n, (size_t)T * d);
    linear_backward(dh, b->w2_w.grad, b->w2_b.grad, db, a->hid, b->w2_w.value, (int)rows, hid, d);
    float *dg = db; /* db is free now; rows·H fits (t sized rows·max(3D, H)) */
    glu_train_backward(c->mlp_glu, dg, dl, dh, a->g, a->l, rows, hid);
    linear_backward(dh, b->w0_w.grad, b->w0_b.grad, dg, a->u, b->w0_w.value, (int)rows, d, hid);
    linear_backward(dg, b->w1_w.grad, b->w1_b.grad, dl, a->u, b->w1_w.value, (int)rows, d, hid);
    add_into(dh, dg, rows * d); /* du */
    layernorm_train_backward(dg, b->mn_w.grad, b->mn_b.grad, dh, a->ln2, a->mm, a->rm, b->mn_w.value, rows, d);
    /* dx = d x_mid = dx + LN2 backward */
    layernorm_train_backward_add(dx, dx, b->n2_w.grad, b->n2_b.grad, dg, a->x_mid, a->m2, a->r2, b->n2_w.value,
                                 rows, d);
    /* Attention branch. */
    add_scaled_per_sample(db, NULL, dx, b->keep1, n, (size_t)T * d);
    linear_backward(dh, b->proj_w.grad, b->proj_b.grad, db, a->att, b->proj_w.value, (int)rows, d, d);
    attention_train_backward(dl, dh, a->qkv, a->probs, n, T, d, c->heads, 0);
    linear_backward(db, b->qkv_w.grad, b->qkv_b.grad, dl, a->ln1, b->qkv_w.value, (int)rows, d, 3 * d);
    /* dx = d x_in = dx + LN1 backward */
    layernorm_train_backward_add(dx, dx, b->n1_w.grad, b->n1_b.grad, db, x_in, a->m1, a->r1, b->n1_w.value, rows,
                                 d);
}

void image_train_backward(clip_trainer *tr, const float *d_features) {
    const vt_model_config *c = &tr->params->cfg;
    image_train_state *st = tr->image;
    int n = st->n, d = c->width, T = st->tokens;
    float *dx = st->t[0], *dnext = st->t[1];
    /* Head: features = fc_out · Wᵀ. */
    float *dfc = st->t[2], *dpool = st->t[3];
    linear_backward(dfc, st->head_w.grad, NULL, d_features, st->fc_out, st->head_w.value, n, d, c->embed_dim);
    if (st->lowest > level_fc(st, c->depth)) return;
    layernorm_train_backward(dpool, st->fc_w.grad, st->fc_b.grad, dfc, st->pooled, st->fc_m, st->fc_r,
                             st->fc_w.value, (size_t)n, d);
#pragma omp parallel for schedule(static) if (ew_parallel((size_t)n * T * d))
    for (int r = 0; r < n * T; r++) {
        const float *g = dpool + (size_t)(r / T) * d;
        for (int j = 0; j < d; j++) dx[(size_t)r * d + j] = g[j] / (float)T;
    }
    /* Transformer blocks, last to first, down to the lowest one with a gradient. */
    for (int bi = c->depth - 1; bi >= 0 && level_block(st, bi) >= st->lowest; bi--) block_backward(c, st, bi, dx);
    if (st->lowest > level_tokens(st)) return;
    /* Tokens: pos_embed, StridedConv (LN → conv3×3/2). */
    if (st->pos.grad) { /* each element sums the images in order: any thread count, same bits */
        size_t per = (size_t)T * d;
#pragma omp parallel for schedule(static) if (ew_parallel((size_t)n * per))
        for (size_t s = 0; s < per; s += EW_CHUNK) {
            size_t e = s + EW_CHUNK < per ? s + EW_CHUNK : per;
            for (int i = 0; i < n; i++)
                for (size_t j = s; j < e; j++) st->pos.grad[j] += dx[(size_t)i * per + j];
        }
    }
    const mbconv_train *last = &st->mb[st->mb_count - 1];
    size_t px2 = (size_t)n * last->ho * last->wo;
    conv3x3_train_backward(dnext, st->pp_w.grad, st->pp_b.grad, dx, st->pool_ln, st->pp_w.value, n, last->ho,
                           last->wo, last->cout, d, 2);
    layernorm_train_backward(dx, st->pn_w.grad, st->pn_b.grad, dnext, last->out, st->pool_m, st->pool_r,
                             st->pn_w.value, px2, last->cout);
    for (int i = st->mb_count - 1; i >= 0 && level_mb(i) >= st->lowest; i--) {
        mbconv_backward(st, i, n, dx, dnext);
        float *tmp = dx; dx = dnext; dnext = tmp;
    }
    if (st->lowest > 0) return;
    /* Stem: conv2 ← gelu(n1) ← LN ← conv1. */
    int s = st->s, h1 = st->h1, c0 = c->stem_width;
    size_t px1 = (size_t)n * h1 * h1;
    float *g = st->stem_g;
    if (!g) { /* recompute */
        g = st->t[2];
        gelu_train_forward(g, st->n1, px1 * c0);
    }
    conv3x3_train_backward(dnext, st->c2_w.grad, st->c2_b.grad, dx, g, st->c2_w.value, n, h1, h1, c0, c0, 1);
    gelu_train_backward(dnext, dnext, st->n1, px1 * c0);
    layernorm_train_backward(dnext, st->n1_w.grad, st->n1_b.grad, dnext, st->a1, st->sm, st->sr, st->n1_w.value,
                             px1, c0);
    conv3x3_train_backward(NULL, st->c1_w.grad, st->c1_b.grad, dnext, st->x0, st->c1_w.value, n, s, s, 3, c0, 2);
}
