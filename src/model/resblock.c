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

void resblock_forward(const struct vt_model *m, const resblock *blk, float *x, int batch, int t, int w, int heads,
                      int causal, int act, int hidden, float *t1, float *big, float *attn_scratch) {
    size_t rows = (size_t)batch * t;
    layernorm_forward(t1, x, rows, w, blk->ln1_weight, blk->ln1_bias, RESBLOCK_LN_EPS);
    gemm_epilogue in_proj = {1.0f, blk->in_proj.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, t1, w, &blk->in_proj.weight, big, 3 * w, &in_proj);
    attention_forward(m->isa, t1, NULL, big, batch, t, w, heads, causal, attn_scratch);
    /* The residual rides in the GEMM's epilogue, unless LayerScale must
     * scale the branch first. */
    if (blk->ls1) {
        gemm_epilogue out_proj = {1.0f, blk->out_proj.bias, 0, NULL, 0, 0, 0};
        gemm_run(m->isa, (int)rows, t1, w, &blk->out_proj.weight, big, w, &out_proj);
        add_scaled(x, big, blk->ls1, rows, w);
    } else {
        gemm_epilogue out_proj = {1.0f, blk->out_proj.bias, 0, x, w, 0, 0};
        gemm_run(m->isa, (int)rows, t1, w, &blk->out_proj.weight, x, w, &out_proj);
    }
    layernorm_forward(t1, x, rows, w, blk->ln2_weight, blk->ln2_bias, RESBLOCK_LN_EPS);
    gemm_epilogue fc = {1.0f, blk->c_fc.bias, act, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, t1, w, &blk->c_fc.weight, big, hidden, &fc);
    if (blk->ls2) {
        gemm_epilogue proj = {1.0f, blk->c_proj.bias, 0, NULL, 0, 0, 0};
        gemm_run(m->isa, (int)rows, big, hidden, &blk->c_proj.weight, t1, w, &proj);
        add_scaled(x, t1, blk->ls2, rows, w);
    } else {
        gemm_epilogue proj = {1.0f, blk->c_proj.bias, 0, x, w, 0, 0};
        gemm_run(m->isa, (int)rows, big, hidden, &blk->c_proj.weight, x, w, &proj);
    }
}
