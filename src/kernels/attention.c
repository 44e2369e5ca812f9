#include "kernels/attention.h"

#include <math.h>
#include <omp.h>

#include "kernels/activation.h"
#include "kernels/gemm.h"

static size_t round_up_16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Per thread: scores [t, t], 1/row sums [t], packed K and V panels. */
size_t attention_scratch_floats(int t, int hd) {
    return round_up_16((size_t)t * t) + round_up_16((size_t)t) +
           2 * round_up_16(gemm_packed_floats(t > hd ? t : hd, t > hd ? t : hd));
}

/* One (image, head): out_h = softmax(scale · q kᵀ) v, with the softmax's
 * scale folded into its exponent. Without `probs` its normalisation is
 * applied to the t×hd output rows rather than the t×t probabilities; with
 * `probs` (training keeps them for the backward) the scores are computed
 * there and normalised in place before P·v. */
static void attention_head(vt_isa isa, float *out, int ldo, const float *q, const float *k, const float *v, int ldqkv,
                           int t, int hd, float scale, int causal, float *probs, float *scratch) {
    float *scores = probs ? probs : scratch, *inv_sum = scratch + round_up_16((size_t)t * t);
    float *packed_k = inv_sum + round_up_16((size_t)t);
    float *packed_v = packed_k + round_up_16(gemm_packed_floats(t > hd ? t : hd, t > hd ? t : hd));
    /* scores = q · kᵀ: K rows are the "B" operand in [n=t, k=hd] form. */
    gemm_pack(k, t, hd, ldqkv, 0, packed_k);
    gemm_packed_b kb = {t, hd, (t + GEMM_NR - 1) / GEMM_NR, packed_k, NULL, 0};
    gemm_run(isa, t, q, ldqkv, &kb, scores, t, NULL);
    for (int i = 0; i < t; i++) {
        float *row = scores + (size_t)i * t;
        int n = causal ? i + 1 : t; /* causal: row i attends to 0..i */
        inv_sum[i] = 1.0f / softmax_exp_row(isa, row, (size_t)n, scale);
        for (int j = n; j < t; j++) row[j] = 0.0f;
        if (probs) {
            for (int j = 0; j < n; j++) row[j] *= inv_sum[i];
            inv_sum[i] = 1.0f;
        }
    }
    /* out_h = P · v (V given as [k=t, n=hd]), then each row / its sum. */
    gemm_pack(v, hd, t, ldqkv, 1, packed_v);
    gemm_packed_b vb = {hd, t, (hd + GEMM_NR - 1) / GEMM_NR, packed_v, NULL, 0};
    gemm_run(isa, t, scores, t, &vb, out, ldo, NULL);
    if (probs) return;
    for (int i = 0; i < t; i++) {
        float *row = out + (size_t)i * ldo;
        for (int j = 0; j < hd; j++) row[j] *= inv_sum[i];
    }
}

void attention_forward(vt_isa isa, float *out, float *probs, const float *qkv, int batch, int t, int width,
                       int heads, int causal, float *scratch) {
    int hd = width / heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per_thread = attention_scratch_floats(t, hd);
#pragma omp parallel for schedule(dynamic, 1)
    for (int pair = 0; pair < batch * heads; pair++) {
        int b = pair / heads, h = pair % heads;
        const float *base = qkv + (size_t)b * t * 3 * width;
        attention_head(isa, out + (size_t)b * t * width + h * hd, width, base + h * hd, base + width + h * hd,
                       base + 2 * width + h * hd, 3 * width, t, hd, scale, causal,
                       probs ? probs + (size_t)pair * t * t : NULL, scratch + (size_t)omp_get_thread_num() * per_thread);
    }
}
