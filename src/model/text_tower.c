/* open_clip TextTransformer forward (open_clip transformer.py TextTransformer): token + positional embedding,
 * causal pre-LN blocks (model/resblock.c: eps 1e-5, GELU or QuickGELU MLP), ln_final, pooling at the first
 * EOT (argmax of ids), projection x·P.
 *
 * Because attention is causal and only the EOT position is pooled, positions
 * after the last EOT of the batch cannot influence the output: we run the
 * sequence only up to that position (exact, not an approximation). */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/norm.h"
#include "model/forward.h"

static const float TEXT_LN_EPS = 1e-5f;

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t text_tower_scratch_floats(const struct vt_model *m, int batch) {
    const vt_model_config *c = &m->cfg;
    size_t rows = (size_t)batch * c->context_length, w = (size_t)c->text_width;
    size_t attn = (size_t)omp_get_max_threads() * attention_scratch_floats(c->context_length, c->text_width / c->text_heads);
    return align16(rows * w) * 2 + align16(rows * 4 * w) + align16(attn) + align16((size_t)batch * w);
}

/* Index of the pooled token: argmax of the ids (the first EOT, id 49407). */
static int pooled_position(const int32_t *ids, int context) {
    int best = 0;
    for (int t = 1; t < context; t++)
        if (ids[t] > ids[best]) best = t;
    return best;
}

void text_tower_forward(const struct vt_model *m, const int32_t *ids, int batch, float *out, float *scratch,
                        const vt_trace *trace) {
    const vt_model_config *c = &m->cfg;
    int ctx = c->context_length, w = c->text_width;
    int t_run = 1;
    for (int i = 0; i < batch; i++) {
        int p = pooled_position(ids + (size_t)i * ctx, ctx) + 1;
        if (p > t_run) t_run = p;
    }
    float *x = scratch, *t1 = x + align16((size_t)batch * ctx * w), *big = t1 + align16((size_t)batch * ctx * w);
    float *attn = big + align16((size_t)batch * ctx * 4 * w);
    float *pooled = attn + align16((size_t)omp_get_max_threads() * attention_scratch_floats(ctx, w / c->text_heads));

    for (int i = 0; i < batch; i++)
        for (int t = 0; t < t_run; t++) {
            int32_t id = ids[(size_t)i * ctx + t];
            const float *emb = m->token_embedding + (size_t)id * w, *pos = m->positional_embedding + (size_t)t * w;
            float *dst = x + ((size_t)i * t_run + t) * w;
            for (int j = 0; j < w; j++) dst[j] = emb[j] + pos[j];
        }

    int act = vt_config_mlp_act(c);
    for (int l = 0; l < c->text_layers; l++) {
        resblock_forward(m, &m->text[l], x, batch, t_run, w, c->text_heads, 1, act, 4 * w, t1, big, attn);
        if (trace && trace->fn) {
            char name[32];
            snprintf(name, sizeof name, "text_block%d", l);
            trace->fn(trace->user, name, x, 3, (const int64_t[]){batch, t_run, w});
        }
    }
    /* ln_final is per token, so normalising only the pooled rows is identical. */
    for (int i = 0; i < batch; i++) {
        int p = pooled_position(ids + (size_t)i * ctx, ctx);
        memcpy(pooled + (size_t)i * w, x + ((size_t)i * t_run + p) * w, sizeof(float) * w);
    }
    layernorm_forward(pooled, pooled, (size_t)batch, w, m->ln_final_weight, m->ln_final_bias, TEXT_LN_EPS);
    if (trace && trace->fn) trace->fn(trace->user, "text_pooled", pooled, 2, (const int64_t[]){batch, w});
    gemm_run(m->isa, batch, pooled, w, &m->text_projection.weight, out, c->embed_dim, NULL);
}
