/* One ResidualAttentionBlock's training forward and backward (see
 * resblock_train.h). */
#include "train/resblock_train.h"

#include <string.h>

#include "train/elementwise.h"
#include "train/ops.h"

static const float EPS = 1e-5f; /* open_clip LayerNorm: nn.LayerNorm's default */

void resblock_train_bind(const clip_trainer *tr, const resblock_kinds *k, int i, const resblock_shape *s,
                         resblock_train *b) {
    memset(b, 0, sizeof *b);
    b->ln1_w = clip_trainer_tensor(tr, k->ln1_w, i, -1);
    b->ln1_b = clip_trainer_tensor(tr, k->ln1_b, i, -1);
    b->in_w = clip_trainer_tensor(tr, k->in_w, i, -1);
    b->in_b = clip_trainer_tensor(tr, k->in_b, i, -1);
    b->out_w = clip_trainer_tensor(tr, k->out_w, i, -1);
    b->out_b = clip_trainer_tensor(tr, k->out_b, i, -1);
    b->ln2_w = clip_trainer_tensor(tr, k->ln2_w, i, -1);
    b->ln2_b = clip_trainer_tensor(tr, k->ln2_b, i, -1);
    b->fc_w = clip_trainer_tensor(tr, k->fc_w, i, -1);
    b->fc_b = clip_trainer_tensor(tr, k->fc_b, i, -1);
    b->proj_w = clip_trainer_tensor(tr, k->cp_w, i, -1);
    b->proj_b = clip_trainer_tensor(tr, k->cp_b, i, -1);
    if (s->layer_scale) {
        b->ls1 = clip_trainer_tensor(tr, k->ls1, i, -1);
        b->ls2 = clip_trainer_tensor(tr, k->ls2, i, -1);
    }
}

int resblock_train_has_grad(const resblock_train *b) {
    return b->ln1_w.grad || b->ln1_b.grad || b->in_w.grad || b->in_b.grad || b->out_w.grad || b->out_b.grad ||
           b->ls1.grad || b->ln2_w.grad || b->ln2_b.grad || b->fc_w.grad || b->fc_b.grad || b->proj_w.grad ||
           b->proj_b.grad || b->ls2.grad;
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

size_t resblock_temp_floats(const resblock_shape *s, size_t batch, size_t t) {
    return batch * t * max3(3 * (size_t)s->width, (size_t)s->hidden, (size_t)s->width);
}

int resblock_acts_alloc(train_arena *arena, resblock_acts *a, const resblock_shape *s, size_t batch, size_t t) {
    size_t rows = batch * t, w = (size_t)s->width;
    memset(a, 0, sizeof *a);
    a->ln1 = train_arena_floats(arena, rows * w);
    a->m1 = train_arena_floats(arena, rows);
    a->r1 = train_arena_floats(arena, rows);
    a->qkv = train_arena_floats(arena, rows * 3 * w);
    a->att = train_arena_floats(arena, rows * w);
    a->probs = train_arena_floats(arena, batch * (size_t)s->heads * t * t);
    a->x_mid = train_arena_floats(arena, rows * w);
    a->ln2 = train_arena_floats(arena, rows * w);
    a->m2 = train_arena_floats(arena, rows);
    a->r2 = train_arena_floats(arena, rows);
    a->f = train_arena_floats(arena, rows * (size_t)s->hidden);
    int ok = a->ln1 && a->m1 && a->r1 && a->qkv && a->att && a->probs && a->x_mid && a->ln2 && a->m2 && a->r2 && a->f;
    if (s->layer_scale) {
        a->ao = train_arena_floats(arena, rows * w);
        a->mo = train_arena_floats(arena, rows * w);
        ok = ok && a->ao && a->mo;
    }
    return ok;
}

/* LayerScale's backward: dbranch = dy ⊙ gamma, dgamma += Σ_rows branch ⊙ dy
 * (columns in parallel, each summed over the rows in order). */
static void layer_scale_backward(float *dbranch, float *dgamma, const float *dy, const float *branch,
                                 const float *gamma, size_t rows, int w) {
    size_t n = rows * (size_t)w;
#pragma omp parallel for schedule(static) if (ew_parallel(n))
    for (size_t s = 0; s < n; s += EW_CHUNK) {
        size_t e = s + EW_CHUNK < n ? s + EW_CHUNK : n;
        for (size_t i = s; i < e; i++) dbranch[i] = dy[i] * gamma[i % (size_t)w];
    }
    if (!dgamma) return;
#pragma omp parallel for schedule(static) if (ew_parallel(n))
    for (int j = 0; j < w; j++) {
        float sum = 0.0f;
        for (size_t r = 0; r < rows; r++) sum += branch[r * (size_t)w + j] * dy[r * (size_t)w + j];
        dgamma[j] += sum;
    }
}

void resblock_train_forward(const resblock_shape *s, const resblock_train *b, const float *x, float *out, int n,
                            int T, float *branch, float *act) {
    const resblock_acts *a = b->a;
    int w = s->width, h = s->hidden, ls = s->layer_scale;
    size_t rows = (size_t)n * T;
    layernorm_train_forward(a->ln1, a->m1, a->r1, x, b->ln1_w.value, b->ln1_b.value, rows, w, EPS);
    linear_forward(a->qkv, a->ln1, b->in_w.value, b->in_b.value, (int)rows, w, 3 * w);
    attention_train_forward(a->att, a->probs, a->qkv, n, T, w, s->heads, s->causal);
    float *ao = ls ? a->ao : branch;
    linear_forward(ao, a->att, b->out_w.value, b->out_b.value, (int)rows, w, w);
    ew_add_scaled(a->x_mid, x, ao, ls ? b->ls1.value : NULL, rows, w);
    layernorm_train_forward(a->ln2, a->m2, a->r2, a->x_mid, b->ln2_w.value, b->ln2_b.value, rows, w, EPS);
    linear_forward(a->f, a->ln2, b->fc_w.value, b->fc_b.value, (int)rows, w, h);
    /* The recompute (out NULL) stops here unless LayerScale needs mo. */
    if (!out && !ls) return;
    act_train_forward(s->act, act, a->f, rows * (size_t)h);
    float *mo = ls ? a->mo : branch;
    linear_forward(mo, act, b->proj_w.value, b->proj_b.value, (int)rows, h, w);
    if (out) ew_add_scaled(out, a->x_mid, mo, ls ? b->ls2.value : NULL, rows, w);
}

void resblock_train_backward(const resblock_shape *s, const resblock_train *b, const float *x, float *dx, int n,
                             int T, float *d1, float *d2, float *d3) {
    const resblock_acts *a = b->a;
    int w = s->width, h = s->hidden, ls = s->layer_scale;
    size_t rows = (size_t)n * T;
    /* MLP: out = x_mid + ls_2 · c_proj(act(c_fc(LN2 x_mid))). */
    const float *dbranch = dx;
    if (ls) {
        layer_scale_backward(d2, b->ls2.grad, dx, a->mo, b->ls2.value, rows, w);
        dbranch = d2;
    }
    act_train_forward(s->act, d3, a->f, rows * (size_t)h);
    linear_backward(d1, b->proj_w.grad, b->proj_b.grad, dbranch, d3, b->proj_w.value, (int)rows, h, w);
    act_train_backward(s->act, d1, d1, a->f, rows * (size_t)h);
    linear_backward(d2, b->fc_w.grad, b->fc_b.grad, d1, a->ln2, b->fc_w.value, (int)rows, w, h);
    /* dx += LN2 backward, in the LayerNorm's own pass */
    layernorm_train_backward_add(dx, dx, b->ln2_w.grad, b->ln2_b.grad, d2, a->x_mid, a->m2, a->r2, b->ln2_w.value,
                                 rows, w);
    /* Attention: x_mid = x + ls_1 · out_proj(attn(in_proj(LN1 x))). */
    dbranch = dx;
    if (ls) {
        layer_scale_backward(d3, b->ls1.grad, dx, a->ao, b->ls1.value, rows, w);
        dbranch = d3;
    }
    linear_backward(d1, b->out_w.grad, b->out_b.grad, dbranch, a->att, b->out_w.value, (int)rows, w, w);
    attention_train_backward(d2, d1, a->qkv, a->probs, n, T, w, s->heads, s->causal);
    linear_backward(d1, b->in_w.grad, b->in_b.grad, d2, a->ln1, b->in_w.value, (int)rows, w, 3 * w);
    layernorm_train_backward_add(dx, dx, b->ln1_w.grad, b->ln1_b.grad, d1, x, a->m1, a->r1, b->ln1_w.value, rows, w);
}
