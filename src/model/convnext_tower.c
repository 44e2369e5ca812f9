/* timm ConvNeXt (convnext.py) under open_clip's TimmModel, forward on NHWC
 * activations: stem (4×4/4 conv as a GEMM over patch vectors, LayerNorm2d),
 * four stages (from the second: LayerNorm2d + 2×2/2 conv as a GEMM), blocks
 * (dw 7×7 → LN → fc1 + GELU → fc2·gamma + x, gamma folded into fc2 at load,
 * the residual in fc2's epilogue), then the head: global average pool,
 * head.norm, open_clip's linear proj or mlp. Every LayerNorm uses the
 * config's eps (1e-6; 1e-5 for convnext_xxlarge). */
#include <stdio.h>
#include <string.h>

#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/norm.h"
#include "model/config_convnext.h"
#include "model/forward.h"

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Buffers: x (the stage map), t (LN / dw output and the downsample's
 * patches), big (fc1's 4C output and the stem's patches), pooled. */
typedef struct {
    size_t x, t, big, pooled;
} convnext_plan;

static convnext_plan plan_convnext(const struct vt_model *m, int batch) {
    const vt_model_config *c = &m->cfg;
    convnext_plan p = {0, 0, 0, 0};
    int s0 = convnext_stage_side(c->image_size, 0);
    p.big = (size_t)batch * s0 * s0 * 48;
    for (int s = 0; s < 4; s++) {
        size_t hw = (size_t)convnext_stage_side(c->image_size, s) * convnext_stage_side(c->image_size, s);
        size_t map = (size_t)batch * hw * c->cnx_dims[s];
        if (map > p.x) p.x = map;
        if (4 * map > p.big) p.big = 4 * map;
        if (s > 0) {
            size_t prev = (size_t)batch * convnext_stage_side(c->image_size, s - 1) *
                          convnext_stage_side(c->image_size, s - 1) * c->cnx_dims[s - 1];
            if (prev > p.t) p.t = prev;
        }
    }
    if (p.x > p.t) p.t = p.x;
    p.pooled = (size_t)batch * (c->width + 2 * c->embed_dim);
    p.x = align16(p.x);
    p.t = align16(p.t);
    p.big = align16(p.big);
    p.pooled = align16(p.pooled);
    return p;
}

size_t convnext_tower_scratch_floats(const struct vt_model *m, int batch) {
    convnext_plan p = plan_convnext(m, batch);
    return p.x + p.t + p.big + p.pooled;
}

static void trace4(const vt_trace *t, const char *name, const float *x, int b, int h, int w, int c) {
    if (t && t->fn) t->fn(t->user, name, x, 4, (const int64_t[]){b, h, w, c});
}

static void convnext_block_forward(const struct vt_model *m, const convnext_block *blk, float *x, int batch, int side,
                                   int d, float *t, float *big) {
    size_t rows = (size_t)batch * side * side;
    depthwise_kxk_forward(t, x, batch, side, side, d, 7, blk->dw_weight, blk->dw_bias);
    layernorm_forward(t, t, rows, d, blk->norm_weight, blk->norm_bias, m->cfg.cnx_norm_eps);
    gemm_epilogue fc1 = {1.0f, blk->fc1.bias, VT_ACT_GELU, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, t, d, &blk->fc1.weight, big, 4 * d, &fc1);
    gemm_epilogue fc2 = {1.0f, blk->fc2.bias, 0, x, d, 0, 0};
    gemm_run(m->isa, (int)rows, big, 4 * d, &blk->fc2.weight, x, d, &fc2);
}

void convnext_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                            const vt_trace *trace) {
    const vt_model_config *c = &m->cfg;
    convnext_plan p = plan_convnext(m, batch);
    float *x = scratch, *t = x + p.x, *big = t + p.t, *pooled = big + p.big;
    float eps = c->cnx_norm_eps;
    int side = convnext_stage_side(c->image_size, 0), d = c->cnx_dims[0];
    /* stem: conv 4×4/4 over (channel, ky, kx) patch vectors, as the weight is stored */
    vit_gather_patches(big, pixels, batch, c->image_size, 4, side);
    gemm_epilogue stem = {1.0f, m->cnx_stem.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, batch * side * side, big, 48, &m->cnx_stem.weight, x, d, &stem);
    layernorm_forward(x, x, (size_t)batch * side * side, d, m->cnx_stem_norm_weight, m->cnx_stem_norm_bias, eps);
    trace4(trace, "stem", x, batch, side, side, d);
    for (int s = 0; s < 4; s++) {
        const convnext_stage *st = &m->cnx_stages[s];
        if (s > 0) { /* LayerNorm2d, then conv 2×2/2 over (ky, kx, c) patch vectors */
            size_t rows = (size_t)batch * side * side;
            layernorm_forward(t, x, rows, d, st->ds_norm_weight, st->ds_norm_bias, eps);
            patchify_nhwc(big, t, batch, side, side, d, 2);
            int prev = d;
            side = convnext_stage_side(c->image_size, s);
            d = c->cnx_dims[s];
            gemm_epilogue ds = {1.0f, st->ds_conv.bias, 0, NULL, 0, 0, 0};
            gemm_run(m->isa, batch * side * side, big, 4 * prev, &st->ds_conv.weight, x, d, &ds);
        }
        for (int i = 0; i < st->depth; i++) convnext_block_forward(m, &st->blocks[i], x, batch, side, d, t, big);
        char name[16];
        snprintf(name, sizeof name, "stage%d", s);
        trace4(trace, name, x, batch, side, side, d);
    }
    /* head: average pool, head.norm, open_clip's projection */
    size_t hw = (size_t)side * side;
    for (int b = 0; b < batch; b++) {
        float *dst = pooled + (size_t)b * d;
        const float *img = x + (size_t)b * hw * d;
        for (int j = 0; j < d; j++) dst[j] = 0.0f;
        for (size_t k = 0; k < hw; k++)
            for (int j = 0; j < d; j++) dst[j] += img[k * d + j];
        for (int j = 0; j < d; j++) dst[j] /= (float)hw;
    }
    layernorm_forward(pooled, pooled, (size_t)batch, d, m->cnx_head_norm_weight, m->cnx_head_norm_bias, eps);
    if (trace && trace->fn) trace->fn(trace->user, "pooled", pooled, 2, (const int64_t[]){batch, d});
    convnext_head(m, pooled, (size_t)batch, out, pooled + (size_t)batch * d);
}

void convnext_head(const struct vt_model *m, const float *normed, size_t rows, float *out, float *hidden) {
    const vt_model_config *c = &m->cfg;
    if (c->head_mlp) {
        gemm_epilogue fc1 = {1.0f, m->head_fc1.bias, VT_ACT_GELU, NULL, 0, 0, 0};
        gemm_run(m->isa, (int)rows, normed, c->width, &m->head_fc1.weight, hidden, 2 * c->embed_dim, &fc1);
        gemm_epilogue fc2 = {1.0f, m->head_fc2.bias, 0, NULL, 0, 0, 0};
        gemm_run(m->isa, (int)rows, hidden, 2 * c->embed_dim, &m->head_fc2.weight, out, c->embed_dim, &fc2);
        return;
    }
    gemm_epilogue proj = {1.0f, m->head_proj.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, normed, c->width, &m->head_proj.weight, out, c->embed_dim, &proj);
}
