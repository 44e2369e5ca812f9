#include "kernels/attention.h"

#include <math.h>
#include <omp.h>

#include "kernels/activation.h"
#include "kernels/gemm.h"

static size_t round_up_16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t attention_scratch_floats(int t, int hd) {
    return round_up_16((size_t)t * t) + 2 * round_up_16(gemm_packed_floats(t > hd ? t : hd, t > hd ? t : hd));
}

/* Row-wise softmax in place; with `causal`, row i keeps columns 0..i only. */
static void softmax_rows(vt_isa isa, float *s, int t, int causal) {
    for (int i = 0; i < t; i++) {
        float *row = s + (size_t)i * t;
        int n = causal ? i + 1 : t;
        softmax_row(isa, row, (size_t)n);
        for (int j = n; j < t; j++) row[j] = 0.0f;
    }
}

void attention_forward(vt_isa isa, float *out, const float *qkv, int batch, int t, int width, int heads,
                       int causal, float *scratch) {
    int hd = width / heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per_thread = attention_scratch_floats(t, hd);
    int pairs = batch * heads;
#pragma omp parallel for schedule(dynamic, 1)
    for (int pair = 0; pair < pairs; pair++) {
        int b = pair / heads, h = pair % heads;
        float *scores = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *packed_k = scores + round_up_16((size_t)t * t);
        float *packed_v = packed_k + round_up_16(gemm_packed_floats(t > hd ? t : hd, t > hd ? t : hd));
        const float *base = qkv + (size_t)b * t * 3 * width;
        const float *q = base + h * hd, *k = base + width + h * hd, *v = base + 2 * width + h * hd;
        /* scores = q · kᵀ · scale: K rows are the "B" operand in [n=t, k=hd] form. */
        gemm_pack(k, t, hd, 3 * width, 0, packed_k);
        gemm_packed_b kb = {t, hd, (t + GEMM_NR - 1) / GEMM_NR, packed_k, NULL, 0};
        gemm_epilogue scaled = {scale, NULL, 0, NULL, 0};
        gemm_run(isa, t, q, 3 * width, &kb, scores, t, &scaled);
        softmax_rows(isa, scores, t, causal);
        /* out_h = P · v: V is given as [k=t, n=hd]. */
        gemm_pack(v, hd, t, 3 * width, 1, packed_v);
        gemm_packed_b vb = {hd, t, (hd + GEMM_NR - 1) / GEMM_NR, packed_v, NULL, 0};
        gemm_run(isa, t, scores, t, &vb, out + (size_t)b * t * width + h * hd, width, NULL);
    }
}
