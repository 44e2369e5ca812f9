/* Kernels against naive double-precision references: GEMM (every ISA path the
 * CPU has, odd sizes, every epilogue), attention (plain and causal), the NHWC
 * conv helpers and LayerNorm. Tolerance: 1e-5 relative to the magnitude of the
 * sum (fp32 accumulation of K <= 1000 unit-scale terms). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "core/float16.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "unit.h"

static unsigned long long rng_state = 12345;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)0x1000000 * 2.0f - 1.0f;
}
static float *rand_buf(size_t n) {
    float *p = aligned_alloc(64, ((n * 4) + 63) & ~(size_t)63);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static int cpu_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}

static void check_gemm(vt_isa isa, int m, int n, int k, int with_epilogue) {
    int lda = k + 3, ldc = n + 5;
    float *a = rand_buf((size_t)m * lda), *b = rand_buf((size_t)n * k), *bias = rand_buf(n);
    float *res = rand_buf((size_t)m * ldc), *c = rand_buf((size_t)m * ldc);
    float *packed = aligned_alloc(64, gemm_packed_floats(n, k) * 4 + 64);
    gemm_pack(b, n, k, k, 0, packed);
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, packed, NULL, 0};
    /* with_epilogue 1: alpha, bias, GELU and a residual (applied after the
     * tile); 2: bias and GELU only, 3: bias, GELU and a residual (both fused
     * into the AVX-512 kernel's store). */
    gemm_epilogue epi = {0.5f, bias, 1, res, ldc, 0, 0}, fused = {1.0f, bias, 1, NULL, 0, 0, 0},
                  fused_res = {1.0f, bias, 1, res, ldc, 0, 0};
    gemm_run(isa, m, a, lda, &pb, c, ldc,
             with_epilogue == 1 ? &epi : with_epilogue == 2 ? &fused : with_epilogue == 3 ? &fused_res : NULL);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int kk = 0; kk < k; kk++) {
                s += (double)a[i * lda + kk] * b[j * k + kk];
                mag += fabs((double)a[i * lda + kk] * b[j * k + kk]);
            }
            if (with_epilogue == 1) {
                s = s * 0.5 + bias[j];
                s = 0.5 * s * (1 + erf(s / sqrt(2.0))) + res[i * ldc + j];
            } else if (with_epilogue >= 2) {
                s = s + bias[j];
                s = 0.5 * s * (1 + erf(s / sqrt(2.0))) + (with_epilogue == 3 ? res[i * ldc + j] : 0);
            }
            double e = fabs(s - c[i * ldc + j]) / (1 + mag);
            if (e > worst) worst = e;
        }
    if (worst > 1e-5) fprintf(stderr, "gemm %s m=%d n=%d k=%d epi=%d: rel err %g\n", vt_isa_name(isa), m, n, k, with_epilogue, worst);
    CHECK(worst <= 1e-5);
    free(a); free(b); free(bias); free(res); free(c); free(packed);
}

static void test_gemm(void) {
    const int sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {8, 32, 256}, {9, 31, 257}, {65, 129, 300}, {100, 200, 600}, {3, 70, 0},
                              /* row tiles of unequal MR multiples: 196 = 56+48+48+44, 130 = 40+48+42 */
                              {196, 97, 40}, {130, 33, 20}};
    vt_isa isas[2] = {VT_ISA_SCALAR, VT_ISA_AVX512};
    for (int ii = 0; ii < (cpu_avx512() ? 2 : 1); ii++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (int epi = 0; epi < 4; epi++) check_gemm(isas[ii], sizes[s][0], sizes[s][1], sizes[s][2], epi);
}

/* GeGLU epilogue: out = gelu(w0·a + b0) ⊙ (w1·a + b1) from one GEMM over the
 * gemm_geglu_interleave layout, on every path (fp32 scalar / AVX-512 fused,
 * bf16 and AMX through the tile buffer). hidden not a multiple of 16 leaves a
 * part-filled last group; k > the GEMM's K block makes the fused kernel
 * read partial sums back. bf16 paths compare with bf16-rounded operands. */
static float bf16_round(float x) {
    uint32_t u = (uint32_t)vt_f32_to_bf16(x) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void check_gemm_geglu(vt_isa isa, vt_glu act, int m, int hidden, int k, int bf16, int amx) {
    int lda = k + 2, ldc = hidden + 3, rows = gemm_geglu_rows(hidden);
    float *a = rand_buf((size_t)m * lda), *w0 = rand_buf((size_t)hidden * k), *w1 = rand_buf((size_t)hidden * k);
    float *b0 = rand_buf(hidden), *b1 = rand_buf(hidden), *c = rand_buf((size_t)m * ldc), *before = malloc((size_t)m * ldc * 4);
    float *w = malloc((size_t)rows * k * 4), *bias = malloc((size_t)rows * 4);
    memcpy(before, c, (size_t)m * ldc * 4);
    gemm_geglu_interleave(w0, w1, b0, b1, hidden, k, w, bias);
    gemm_packed_b pb = {rows, k, rows / GEMM_NR, NULL, NULL, amx};
    void *packed;
    if (bf16) {
        size_t elems = gemm_packed_bf16_elems(rows, k);
        packed = aligned_alloc(64, ((elems + 64 * GEMM_NR) * 2 + 63) & ~(size_t)63);
        memset((uint16_t *)packed + elems, 0, 64 * GEMM_NR * 2);
        gemm_pack_bf16(w, rows, k, k, packed);
        pb.bf16 = packed;
    } else {
        packed = aligned_alloc(64, gemm_packed_floats(rows, k) * 4 + 64);
        gemm_pack(w, rows, k, k, 0, packed);
        pb.data = packed;
    }
    gemm_epilogue epi = {1.0f, bias, 0, NULL, 0, hidden, act};
    gemm_run(isa, m, a, lda, &pb, c, ldc, &epi);
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < hidden; j++) {
            double g = b0[j], l = b1[j], mag = 1;
            for (int kk = 0; kk < k; kk++) {
                double av = bf16 ? bf16_round(a[i * lda + kk]) : a[i * lda + kk];
                g += av * (bf16 ? bf16_round(w0[j * k + kk]) : w0[j * k + kk]);
                l += av * (bf16 ? bf16_round(w1[j * k + kk]) : w1[j * k + kk]);
                mag += fabs(av * w0[j * k + kk]) + fabs(av * w1[j * k + kk]);
            }
            double gate = act == VT_GLU_SILU ? g / (1 + exp(-g)) : 0.5 * g * (1 + erf(g / sqrt(2.0)));
            double ref = gate * l;
            worst = fmax(worst, fabs(ref - c[i * ldc + j]) / (mag * (1 + fabs(l))));
        }
        for (int j = hidden; j < ldc; j++) CHECK(c[i * ldc + j] == before[i * ldc + j]); /* nothing past hidden */
    }
    if (worst > 1e-5)
        fprintf(stderr, "gemm glu(%s) %s bf16=%d amx=%d m=%d hidden=%d k=%d: rel err %g\n",
                act == VT_GLU_SILU ? "silu" : "gelu", vt_isa_name(isa), bf16, amx, m, hidden, k, worst);
    CHECK(worst <= 1e-5);
    free(a); free(w0); free(w1); free(b0); free(b1); free(c); free(before); free(w); free(bias); free(packed);
}

static void test_gemm_geglu(void) {
    const int sizes[][3] = {{1, 16, 1}, {9, 37, 300}, {70, 96, 64}, {196, 200, 513}};
    for (int act = VT_GLU_GELU; act <= VT_GLU_SILU; act++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            check_gemm_geglu(VT_ISA_SCALAR, (vt_glu)act, sizes[s][0], sizes[s][1], sizes[s][2], 0, 0);
            if (!cpu_avx512()) continue;
            check_gemm_geglu(VT_ISA_AVX512, (vt_glu)act, sizes[s][0], sizes[s][1], sizes[s][2], 0, 0);
            if (!__builtin_cpu_supports("avx512bf16")) continue;
            check_gemm_geglu(VT_ISA_AVX512, (vt_glu)act, sizes[s][0], sizes[s][1], sizes[s][2], 1, 0);
            if (gemm_amx_available()) check_gemm_geglu(VT_ISA_AVX512, (vt_glu)act, sizes[s][0], sizes[s][1], sizes[s][2], 1, 1);
        }
}

/* x = x + W·h with the residual stored in C itself (the transformer's residual
 * stream): K > GEMM's K block, so a kernel that overwrote C on the first block
 * would lose the residual. */
static void test_residual_in_place(vt_isa isa) {
    int m = 13, n = 45, k = 600;
    float *a = rand_buf((size_t)m * k), *b = rand_buf((size_t)n * k), *bias = rand_buf(n), *c = rand_buf((size_t)m * n);
    float *before = malloc((size_t)m * n * 4);
    memcpy(before, c, (size_t)m * n * 4);
    float *packed = aligned_alloc(64, gemm_packed_floats(n, k) * 4 + 64);
    gemm_pack(b, n, k, k, 0, packed);
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, packed, NULL, 0};
    gemm_epilogue epi = {1.0f, bias, 0, c, n, 0, 0};
    gemm_run(isa, m, a, k, &pb, c, n, &epi);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = before[i * n + j] + bias[j];
            for (int kk = 0; kk < k; kk++) s += (double)a[i * k + kk] * b[j * k + kk];
            double e = fabs(s - c[i * n + j]);
            if (e > worst) worst = e;
        }
    CHECK(worst < 1e-3);
    free(a); free(b); free(bias); free(c); free(before); free(packed);
}

/* bf16 GEMM: exact against a double product of the bf16-rounded inputs
 * (fp32 accumulation, 1e-5 relative); and within bf16 rounding of fp32. */
static void test_gemm_bf16(int m, int n, int k, int with_residual, int amx) {
    int lda = k + 1, ldc = n + 3;
    float *a = rand_buf((size_t)m * lda), *b = rand_buf((size_t)n * k), *bias = rand_buf(n), *c = rand_buf((size_t)m * ldc);
    float *before = malloc((size_t)m * ldc * 4);
    memcpy(before, c, (size_t)m * ldc * 4);
    /* As the loader does: a spare zero panel row past the end for whole-tile reads. */
    size_t elems = gemm_packed_bf16_elems(n, k);
    uint16_t *packed = aligned_alloc(64, ((elems + 64 * GEMM_NR) * 2 + 63) & ~(size_t)63);
    memset(packed + elems, 0, 64 * GEMM_NR * 2);
    gemm_pack_bf16(b, n, k, k, packed);
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, NULL, packed, amx};
    gemm_epilogue epi = {1.0f, bias, 0, with_residual ? c : NULL, ldc, 0, 0};
    gemm_run(VT_ISA_AVX512, m, a, lda, &pb, c, ldc, &epi);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = bias[j] + (with_residual ? before[i * ldc + j] : 0), mag = fabs(s);
            for (int kk = 0; kk < k; kk++) {
                uint32_t ab = (uint32_t)vt_f32_to_bf16(a[i * lda + kk]) << 16, bb = (uint32_t)vt_f32_to_bf16(b[j * k + kk]) << 16;
                float af, bf;
                memcpy(&af, &ab, 4);
                memcpy(&bf, &bb, 4);
                s += (double)af * bf;
                mag += fabs((double)af * bf);
            }
            worst = fmax(worst, fabs(s - c[i * ldc + j]) / (1 + mag));
        }
    if (worst > 1e-5) fprintf(stderr, "gemm bf16%s m=%d n=%d k=%d: rel err %g\n", amx ? " amx" : "", m, n, k, worst);
    CHECK(worst <= 1e-5);
    free(a); free(b); free(bias); free(c); free(before); free(packed);
}

static void test_pack_transposed(void) {
    int n = 37, k = 19;
    float *b = rand_buf((size_t)n * k), *bt = malloc((size_t)n * k * 4);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) bt[j * n + i] = b[i * k + j];
    size_t sz = gemm_packed_floats(n, k);
    float *p1 = aligned_alloc(64, sz * 4), *p2 = aligned_alloc(64, sz * 4);
    gemm_pack(b, n, k, k, 0, p1);
    gemm_pack(bt, n, k, n, 1, p2);
    CHECK(memcmp(p1, p2, sz * 4) == 0);
    free(b); free(bt); free(p1); free(p2);
}

/* Against a double-precision softmax attention; with keep_probs also the
 * saved probabilities training's backward reads (0 where masked). */
static void test_attention(vt_isa isa, int causal, int keep_probs) {
    int batch = 2, t = 13, heads = 3, hd = 8, w = heads * hd;
    float *qkv = rand_buf((size_t)batch * t * 3 * w), *out = malloc((size_t)batch * t * w * 4);
    float *scratch = aligned_alloc(64, 64 * attention_scratch_floats(t, hd) * 4);
    float *probs = keep_probs ? malloc((size_t)batch * heads * t * t * 4) : NULL;
    attention_forward(isa, out, probs, qkv, batch, t, w, heads, causal, scratch);
    double worst = 0, worst_p = 0;
    for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < t; i++) {
                double s[64], mx = -1e30, sum = 0;
                int n = causal ? i + 1 : t;
                for (int j = 0; j < n; j++) {
                    s[j] = 0;
                    for (int d = 0; d < hd; d++)
                        s[j] += (double)qkv[(b * t + i) * 3 * w + h * hd + d] * qkv[(b * t + j) * 3 * w + w + h * hd + d];
                    s[j] /= sqrt((double)hd);
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                for (int j = 0; probs && j < t; j++) {
                    double e = fabs((j < n ? s[j] / sum : 0.0) - probs[((size_t)(b * heads + h) * t + i) * t + j]);
                    if (e > worst_p || (j >= n && e != 0)) worst_p = j >= n && e != 0 ? 1 : e;
                }
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += s[j] / sum * qkv[(b * t + j) * 3 * w + 2 * w + h * hd + d];
                    double e = fabs(o - out[(b * t + i) * w + h * hd + d]);
                    if (e > worst) worst = e;
                }
            }
    CHECK(worst < 1e-5);
    CHECK(worst_p < 1e-6);
    free(qkv); free(out); free(scratch); free(probs);
}

static void test_conv_helpers(void) {
    int b = 2, h = 6, w = 6, c = 5;
    float *x = rand_buf((size_t)b * h * w * c), *y = malloc((size_t)b * 3 * 3 * c * 4);
    avgpool3x3s2_forward(y, x, b, h, w, c);
    /* Top-left output averages the 4 valid pixels (count_include_pad=False). */
    double expect = (x[0] + x[c] + x[w * c] + x[w * c + c]) / 4.0;
    CHECK_NEAR(y[0], expect, 1e-6);
    /* Interior output (1,1) averages 9. */
    double s9 = 0;
    for (int dy = 1; dy <= 3; dy++)
        for (int dx = 1; dx <= 3; dx++) s9 += x[(dy * w + dx) * c];
    CHECK_NEAR(y[(1 * 3 + 1) * c], s9 / 9, 1e-6);

    float *wt = rand_buf(9 * c), *bias = rand_buf(c), *z = malloc((size_t)b * h * w * c * 4);
    depthwise3x3_gelu_rows(VT_ISA_SCALAR, z, NULL, x, 0, h, h, w, c, 1, 0, h, wt, bias);
    /* A band (output rows 1..2 at stride 2, given input rows 1..5 only) equals those rows of the full map. */
    float *full = malloc((size_t)3 * 3 * c * 4), *band = malloc((size_t)2 * 3 * c * 4);
    depthwise3x3_gelu_rows(VT_ISA_SCALAR, full, NULL, x, 0, h, h, w, c, 2, 0, 3, wt, bias);
    depthwise3x3_gelu_rows(VT_ISA_SCALAR, band, NULL, x + (size_t)1 * w * c, 1, 5, h, w, c, 2, 1, 3, wt, bias);
    CHECK(memcmp(band, full + (size_t)3 * c, (size_t)2 * 3 * c * 4) == 0);
    free(full); free(band);
    double acc = bias[2];
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            int iy = 2 + ky - 1, ix = 3 + kx - 1;
            acc += (double)x[(iy * w + ix) * c + 2] * wt[(ky * 3 + kx) * c + 2];
        }
    CHECK_NEAR(z[(2 * w + 3) * c + 2], 0.5 * acc * (1 + erf(acc / sqrt(2.0))), 1e-5);
    free(x); free(y); free(wt); free(bias); free(z);
}

/* The AVX-512 depthwise (taps fused with FMA, GELU in registers) against the
 * portable loop, both strides, a band whose input starts mid-map, channel
 * counts with a part-filled last vector: 1e-5 relative (FMA vs separate rounding). */
static void test_depthwise_avx512(void) {
    const int shapes[][4] = {{7, 9, 37, 1}, {8, 8, 64, 2}, {5, 11, 16, 1}, {9, 6, 3, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int h = shapes[s][0], w = shapes[s][1], c = shapes[s][2], stride = shapes[s][3];
        int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride), oy0 = 1, oy1 = ho;
        int x_row0 = oy0 * stride - 1;
        float *x = rand_buf((size_t)h * w * c), *wt = rand_buf(9 * c), *bias = rand_buf(c);
        float *ref = malloc((size_t)ho * wo * c * 4), *got = malloc((size_t)ho * wo * c * 4);
        depthwise3x3_gelu_rows(VT_ISA_SCALAR, ref, NULL, x + (size_t)x_row0 * w * c, x_row0, h - x_row0, h, w, c, stride,
                               oy0, oy1, wt, bias);
        depthwise3x3_gelu_rows(VT_ISA_AVX512, got, NULL, x + (size_t)x_row0 * w * c, x_row0, h - x_row0, h, w, c, stride,
                               oy0, oy1, wt, bias);
        double worst = 0;
        for (size_t i = 0; i < (size_t)(oy1 - oy0) * wo * c; i++) worst = fmax(worst, fabs(ref[i] - got[i]) / (1 + fabs(ref[i])));
        if (worst > 1e-5) fprintf(stderr, "depthwise avx512 %dx%dx%d s%d: %g\n", h, w, c, stride, worst);
        CHECK(worst <= 1e-5);
        /* Training's form: the pre-activation kept beside the activation (or
         * alone): the same activation, and GELU of the kept value, per path. */
        size_t n = (size_t)(oy1 - oy0) * wo * c;
        float *pre = malloc(n * 4), *act = malloc(n * 4), *pre_only = malloc(n * 4);
        const vt_isa isas[2] = {VT_ISA_SCALAR, VT_ISA_AVX512};
        for (int p = 0; p < 2; p++) {
            depthwise3x3_gelu_rows(isas[p], act, pre, x + (size_t)x_row0 * w * c, x_row0, h - x_row0, h, w, c,
                                   stride, oy0, oy1, wt, bias);
            depthwise3x3_gelu_rows(isas[p], NULL, pre_only, x + (size_t)x_row0 * w * c, x_row0, h - x_row0, h, w, c,
                                   stride, oy0, oy1, wt, bias);
            CHECK(memcmp(act, p ? got : ref, n * 4) == 0);
            CHECK(memcmp(pre, pre_only, n * 4) == 0);
            gelu_inplace(isas[p], pre, n);
            CHECK(memcmp(pre, act, n * 4) == 0);
        }
        free(pre); free(act); free(pre_only);
        free(x); free(wt); free(bias); free(ref); free(got);
    }
}

static void test_layernorm(void) {
    int rows = 3, dim = 37;
    float *x = rand_buf((size_t)rows * dim), *g = rand_buf(dim), *bb = rand_buf(dim), *y = malloc((size_t)rows * dim * 4);
    for (int i = 0; i < rows * dim; i++) x[i] = x[i] * 10 + 100; /* large mean: catches one-pass variance */
    layernorm_forward(y, x, rows, dim, g, bb, 1e-6f);
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < dim; i++) m += x[r * dim + i];
        m /= dim;
        for (int i = 0; i < dim; i++) v += (x[r * dim + i] - m) * (x[r * dim + i] - m);
        v /= dim;
        for (int i = 0; i < dim; i++) CHECK_NEAR(y[r * dim + i], (x[r * dim + i] - m) / sqrt(v + 1e-6) * g[i] + bb[i], 1e-4);
    }
    free(x); free(g); free(bb); free(y);
}

/* GELU on every path against double erf over [-12, 12]: |error| <= 1e-6 ·
 * max(1, |x|) (the AVX-512 GELU has |error| <= 2.5e-7·max(1, |x|)). */
static void test_gelu(vt_isa isa) {
    enum { N = 24001 };
    static float x[N], g[N], lin[N], out[N];
    for (int i = 0; i < N; i++) {
        x[i] = g[i] = -12.0f + 24.0f * i / (N - 1);
        lin[i] = 0.5f;
    }
    gelu_inplace(isa, g, N);
    glu_row(isa, VT_GLU_GELU, out, x, lin, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double ref = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)));
        double e = fabs(g[i] - ref) / fmax(1.0, fabs(x[i]));
        double e2 = fabs(out[i] - 0.5 * ref) / fmax(1.0, fabs(x[i]));
        worst = fmax(worst, fmax(e, e2));
    }
    if (worst > 1e-6) fprintf(stderr, "gelu %s: worst %g\n", vt_isa_name(isa), worst);
    CHECK(worst <= 1e-6);
    /* SwiGLU's gate, SiLU: relative to max(1, |x|) as well (exp and a division). */
    glu_row(isa, VT_GLU_SILU, out, x, lin, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        double ref = 0.5 * x[i] / (1 + exp(-(double)x[i]));
        worst = fmax(worst, fabs(out[i] - ref) / fmax(1.0, fabs(x[i])));
    }
    if (worst > 1e-6) fprintf(stderr, "silu %s: worst %g\n", vt_isa_name(isa), worst);
    CHECK(worst <= 1e-6);
}

int main(void) {
    test_gelu(VT_ISA_SCALAR);
    if (cpu_avx512()) test_gelu(VT_ISA_AVX512);
    test_gemm();
    test_gemm_geglu();
    test_pack_transposed();
    __builtin_cpu_init();
    if (cpu_avx512() && __builtin_cpu_supports("avx512bf16")) {
        int amx = gemm_amx_available();
        for (int use_amx = 0; use_amx <= amx; use_amx++) {
            test_gemm_bf16(1, 1, 1, 0, use_amx);
            test_gemm_bf16(9, 33, 7, 1, use_amx);
            test_gemm_bf16(70, 100, 513, 1, use_amx);
            test_gemm_bf16(130, 64, 600, 0, use_amx);
        }
        if (!amx) printf("kernels: AMX not available, its path not tested here\n");
    }
    test_residual_in_place(VT_ISA_SCALAR);
    if (cpu_avx512()) test_residual_in_place(VT_ISA_AVX512);
    for (int keep = 0; keep < 2; keep++) {
        test_attention(VT_ISA_SCALAR, 0, keep);
        test_attention(VT_ISA_SCALAR, 1, keep);
    }
    if (cpu_avx512()) {
        for (int keep = 0; keep < 2; keep++) {
            test_attention(VT_ISA_AVX512, 0, keep);
            test_attention(VT_ISA_AVX512, 1, keep);
        }
    }
    test_conv_helpers();
    if (cpu_avx512()) test_depthwise_avx512();
    test_layernorm();
    CHECK_NEAR(gelu_exact(1.0f), 0.8413447460685429, 1e-6);
    return unit_summary("kernels");
}
