/* Multi-head attention forward (saving the softmax) and backward for training,
 * on the packed qkv layout of kernels/attention.h. One (batch, head) pair is
 * one task; its small GEMMs run serially on that thread (train_gemm.c falls
 * back to serial inside a parallel region), so each pair's arithmetic is the
 * same for any thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/activation.h"
#include "kernels/simd.h"
#include "train/ops.h"
#include "kernels/gemm_train.h"
#include "kernels/kernels.h"

/* Per-thread [T, T] buffer for dP in the backward. */
static _Thread_local float *attn_buf;
static _Thread_local size_t attn_buf_cap;

static float *attn_scratch(size_t floats) {
    if (attn_buf_cap < floats) {
        free(attn_buf);
        attn_buf = aligned_alloc(64, (floats * sizeof(float) + 63) & ~(size_t)63);
        if (!attn_buf) {
            fprintf(stderr, "vitamin: out of memory for %zu floats of attention scratch\n", floats);
            abort();
        }
        attn_buf_cap = floats;
    }
    return attn_buf;
}

/* probs [t, t]: row i = softmax(scale · s[i, 0..n)), n = i+1 if causal else t;
 * masked entries are exactly 0 (they then contribute nothing downstream). */
static void scaled_softmax_rows(vt_isa isa, float *probs, int t, float scale, int causal) {
    for (int i = 0; i < t; i++) {
        float *row = probs + (size_t)i * t;
        int n = causal ? i + 1 : t;
        for (int j = 0; j < n; j++) row[j] *= scale;
        softmax_row(isa, row, (size_t)n);
        for (int j = n; j < t; j++) row[j] = 0.0f;
    }
}

void attention_train_forward(float *out, float *probs, const float *qkv, int batch, int t, int width, int heads,
                             int causal) {
    int hd = width / heads, ld = 3 * width;
    float scale = 1.0f / sqrtf((float)hd);
    vt_isa isa = vt_kernels_process()->isa;
#pragma omp parallel for schedule(dynamic, 1)
    for (int pair = 0; pair < batch * heads; pair++) {
        int b = pair / heads, h = pair % heads;
        const float *base = qkv + (size_t)b * t * ld;
        const float *q = base + h * hd, *k = base + width + h * hd, *v = base + 2 * width + h * hd;
        float *p = probs + (size_t)pair * t * t;
        tmat_nt(t, t, hd, q, ld, k, ld, p, t, 0); /* S = Q Kᵀ */
        scaled_softmax_rows(isa, p, t, scale, causal);
        tmat_nn(t, hd, t, p, t, v, ld, out + (size_t)b * t * width + h * hd, width, 0); /* O = P V */
    }
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
