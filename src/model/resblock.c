/* open_clip ResidualAttentionBlock forward (transformer.py), shared by the
 * text tower and the ViT image tower:
 *   x += ls_1 ⊙ out_proj(attn(ln_1 x)),  x += ls_2 ⊙ c_proj(act(c_fc(ln_2 x))),
 * with LayerNorm eps 1e-5 (nn.LayerNorm's default, as open_clip builds it). */
#include <stddef.h>

#include "kernels/attention.h"
#include "kernels/norm.h"
#include "model/forward.h"

static const float RESBLOCK_LN_EPS = 1e-5f;

/* x[r] += gamma ⊙ y[r] over `rows` rows of `w`. */
static void add_scaled(float *x, const float *y, const float *gamma, size_t rows, int w) {
#pragma omp parallel for schedule(static) if (rows * (size_t)w >= 65536)
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < w; j++) x[r * w + j] += gamma[j] * y[r * w + j];
}

/* x += gamma ⊙ (in · projᵀ + bias), or x += in · projᵀ + bias without
 * LayerScale, where the residual rides in the GEMM's epilogue; tmp holds
 * rows·w floats for the LayerScale case. */
static void project_onto(const struct vt_model *m, const linear_layer *proj, const float *in, int k, float *x, int w,
                         const float *gamma, float *tmp, size_t rows) {
    gemm_epilogue epi = {1.0f, proj->bias, 0, gamma ? NULL : x, w, 0, 0};
    gemm_run(m->isa, (int)rows, in, k, &proj->weight, gamma ? tmp : x, w, &epi);
    if (gamma) add_scaled(x, tmp, gamma, rows, w);
}

void resblock_forward(const struct vt_model *m, const resblock *blk, float *x, int batch, int t, int w, int heads,
                      int causal, int act, int hidden, float *t1, float *big, float *attn_scratch) {
    size_t rows = (size_t)batch * t;
    layernorm_forward(t1, x, rows, w, blk->ln1_weight, blk->ln1_bias, RESBLOCK_LN_EPS);
    gemm_epilogue in_proj = {1.0f, blk->in_proj.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, t1, w, &blk->in_proj.weight, big, 3 * w, &in_proj);
    attention_forward(m->isa, t1, NULL, big, batch, t, w, heads, causal, attn_scratch);
    project_onto(m, &blk->out_proj, t1, w, x, w, blk->ls1, big, rows); /* qkv in `big` is spent */
    layernorm_forward(t1, x, rows, w, blk->ln2_weight, blk->ln2_bias, RESBLOCK_LN_EPS);
    gemm_epilogue fc = {1.0f, blk->c_fc.bias, act, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, t1, w, &blk->c_fc.weight, big, hidden, &fc);
    project_onto(m, &blk->c_proj, big, hidden, x, w, blk->ls2, t1, rows);
}
