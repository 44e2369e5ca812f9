/* Multi-head attention for training, on the packed qkv layout of
 * kernels/attention.h: the forward is the inference kernel saving the
 * softmax; the backward here. One (batch, head) pair is one task; its small
 * GEMMs run serially on that thread (gemm_train.c falls back to serial inside
 * a parallel region), so each pair's arithmetic is the same for any thread
 * count. */
#include <math.h>
#include <omp.h>

#include "kernels/attention.h"
#include "kernels/gemm_train.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "train/ops.h"
#include "core/scratch.h"

/* Per-thread [T, T] buffer for dP in the backward; the forward's kernel scratch. */
static _Thread_local vt_scratch attn_buf, attn_kernel_scratch;

static float *attn_scratch(size_t floats) { return vt_scratch_get(&attn_buf, floats * sizeof(float)); }

/* The inference kernel (kernels/attention.c), keeping the probabilities:
 * training and inference attend identically. */
void attention_train_forward(float *out, float *probs, const float *qkv, int batch, int t, int width, int heads,
                             int causal) {
    size_t floats = (size_t)omp_get_max_threads() * attention_scratch_floats(t, width / heads);
    float *scratch = vt_scratch_get(&attn_kernel_scratch, floats * sizeof(float));
    attention_forward(vt_kernels_process()->isa, out, probs, qkv, batch, t, width, heads, causal, scratch);
}

/* dp [t, t] → dS · scale in place: dS = P ⊙ (dP − rowsum(dP ⊙ P)). The row
 * sum runs in 16 fixed lanes (vectorisable without reassociation, and the
 * same order on every ISA path), added up in lane order. */
enum { DOT_LANES = 16 };

VT_CLONES static void softmax_backward_rows(float *dp, const float *p, int t, float scale) {
    for (int i = 0; i < t; i++) {
        float *drow = dp + (size_t)i * t;
        const float *prow = p + (size_t)i * t;
        float lane[DOT_LANES] = {0};
        int j = 0;
        for (; j + DOT_LANES <= t; j += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++) lane[l] += drow[j + l] * prow[j + l];
        for (; j < t; j++) lane[j % DOT_LANES] += drow[j] * prow[j];
        float dot = 0.0f;
        for (int l = 0; l < DOT_LANES; l++) dot += lane[l];
        for (j = 0; j < t; j++) drow[j] = scale * prow[j] * (drow[j] - dot);
    }
}

void attention_train_backward(float *dqkv, const float *dout, const float *qkv, const float *probs, int batch,
                              int t, int width, int heads, int causal) {
    int hd = width / heads, ld = 3 * width;
    float scale = 1.0f / sqrtf((float)hd);
    (void)causal; /* the saved probabilities are already 0 where masked */
#pragma omp parallel for schedule(dynamic, 1)
    for (int pair = 0; pair < batch * heads; pair++) {
        int b = pair / heads, h = pair % heads;
        const float *base = qkv + (size_t)b * t * ld;
        const float *q = base + h * hd, *k = base + width + h * hd, *v = base + 2 * width + h * hd;
        float *dbase = dqkv + (size_t)b * t * ld;
        float *dq = dbase + h * hd, *dk = dbase + width + h * hd, *dv = dbase + 2 * width + h * hd;
        const float *p = probs + (size_t)pair * t * t;
        const float *dout_h = dout + (size_t)b * t * width + h * hd;
        float *ds = attn_scratch((size_t)t * t);
        tmat_tn(t, hd, t, p, t, dout_h, width, dv, ld, 0); /* dV = Pᵀ dO */
        tmat_nt(t, t, hd, dout_h, width, v, ld, ds, t, 0); /* dP = dO Vᵀ */
        softmax_backward_rows(ds, p, t, scale);         /* dS·scale */
        tmat_nn(t, hd, t, ds, t, k, ld, dq, ld, 0);     /* dQ = scale·dS K */
        tmat_tn(t, hd, t, ds, t, q, ld, dk, ld, 0);     /* dK = scale·dSᵀ Q */
    }
}
