/* open_clip VisionTransformer forward (transformer.py): conv1 patch
 * embedding (a GEMM over patch vectors), class token, positional embedding,
 * ln_pre, ResidualAttentionBlocks (model/resblock.c, the text tower's
 * blocks, unmasked), pooling (class token or mean of patch tokens), ln_post
 * (before or after pooling), proj. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/norm.h"
#include "model/forward.h"

static const float VIT_LN_EPS = 1e-5f; /* open_clip LayerNorm = nn.LayerNorm's default */

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

typedef struct {
    int grid, n, t, w, patch_len;
    size_t tokens, wide, patches, attention, pooled;
} vit_plan;

static vit_plan plan_vit(const struct vt_model *m, int batch) {
    const vt_model_config *c = &m->cfg;
    vit_plan p;
    p.grid = vt_config_token_grid(c);
    p.n = p.grid * p.grid;
    p.t = p.n + 1;
    p.w = c->width;
    p.patch_len = 3 * c->patch_size * c->patch_size;
    size_t rows = (size_t)batch * p.t;
    p.tokens = align16(rows * p.w);
    p.wide = align16(rows * (size_t)(3 * p.w > c->mlp_hidden ? 3 * p.w : c->mlp_hidden));
    p.patches = align16((size_t)batch * p.n * p.patch_len);
    p.attention = align16((size_t)omp_get_max_threads() * attention_scratch_floats(p.t, p.w / c->heads));
    p.pooled = align16((size_t)batch * p.w);
    return p;
}

size_t vit_tower_scratch_floats(const struct vt_model *m, int batch) {
    vit_plan p = plan_vit(m, batch);
    return 2 * p.tokens + p.wide + p.patches + p.attention + p.pooled;
}

void vit_gather_patches(float *patches, const float *pixels, int batch, int s, int p, int grid) {
    int len = 3 * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < batch; b++)
        for (int gy = 0; gy < grid; gy++)
            for (int gx = 0; gx < grid; gx++) {
                float *dst = patches + ((size_t)b * grid * grid + (size_t)gy * grid + gx) * len;
                for (int ch = 0; ch < 3; ch++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(dst + (ch * p + ky) * p,
                               pixels + (((size_t)b * 3 + ch) * s + (size_t)gy * p + ky) * s + (size_t)gx * p,
                               sizeof(float) * p);
            }
}

static void trace3(const vt_trace *tr, const char *name, const float *x, int b, int t, int w) {
    if (tr && tr->fn) tr->fn(tr->user, name, x, 3, (const int64_t[]){b, t, w});
}

void vit_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                       const vt_trace *trace) {
    const vt_model_config *c = &m->cfg;
    vit_plan p = plan_vit(m, batch);
    float *x = scratch, *t1 = x + p.tokens, *big = t1 + p.tokens, *patches = big + p.wide;
    float *attn = patches + p.patches, *pooled = attn + p.attention;
    int w = p.w, t = p.t;

    /* conv1 → patch tokens at rows 1.. of each image; the class token at row 0. */
    vit_gather_patches(patches, pixels, batch, c->image_size, c->patch_size, p.grid);
    for (int b = 0; b < batch; b++)
        gemm_run(m->isa, p.n, patches + (size_t)b * p.n * p.patch_len, p.patch_len, &m->patch_embed.weight,
                 x + ((size_t)b * t + 1) * w, w, NULL);
    for (int b = 0; b < batch; b++) {
        float *img = x + (size_t)b * t * w;
        memcpy(img, m->class_embedding, sizeof(float) * w);
        for (size_t j = 0; j < (size_t)t * w; j++) img[j] += m->vit_pos[j];
    }
    if (m->ln_pre_weight)
        layernorm_forward(x, x, (size_t)batch * t, w, m->ln_pre_weight, m->ln_pre_bias, VIT_LN_EPS);
    trace3(trace, "tokens", x, batch, t, w);

    int act = vt_config_mlp_act(c);
    for (int i = 0; i < c->depth; i++) {
        resblock_forward(m, &m->vit_blocks[i], x, batch, t, w, c->heads, 0, act, c->mlp_hidden, t1, big, attn);
        if (trace && trace->fn) {
            char name[32];
            snprintf(name, sizeof name, "block%d", i);
            trace3(trace, name, x, batch, t, w);
        }
    }

    /* Pool: the class token, or the mean of the patch tokens. ln_post is per
     * token, so without final_ln_after_pool normalising only the class token
     * is identical to normalising every token first; the mean is not. */
    int ln_first = !c->final_ln_after_pool;
    if (ln_first && c->pool_avg)
        layernorm_forward(x, x, (size_t)batch * t, w, m->ln_post_weight, m->ln_post_bias, VIT_LN_EPS);
    vit_pool_tokens(pooled, x, batch, t, w, c->pool_avg);
    if (!(ln_first && c->pool_avg))
        layernorm_forward(pooled, pooled, (size_t)batch, w, m->ln_post_weight, m->ln_post_bias, VIT_LN_EPS);
    if (trace && trace->fn) trace->fn(trace->user, "pooled", pooled, 2, (const int64_t[]){batch, w});
    gemm_run(m->isa, batch, pooled, w, &m->vit_proj.weight, out, c->embed_dim, NULL);
}

void vit_pool_tokens(float *pooled, const float *x, int batch, int t, int w, int pool_avg) {
    for (int b = 0; b < batch; b++) {
        float *dst = pooled + (size_t)b * w;
        const float *img = x + (size_t)b * t * w;
        if (!pool_avg) {
            memcpy(dst, img, sizeof(float) * w);
            continue;
        }
        for (int j = 0; j < w; j++) dst[j] = 0.0f;
        for (int k = 1; k < t; k++)
            for (int j = 0; j < w; j++) dst[j] += img[(size_t)k * w + j];
        for (int j = 0; j < w; j++) dst[j] /= (float)(t - 1);
    }
}

void vit_tower_final_norm(const vt_model *m, float *tokens, size_t rows) {
    layernorm_forward(tokens, tokens, rows, m->cfg.width, m->ln_post_weight, m->ln_post_bias, VIT_LN_EPS);
}
