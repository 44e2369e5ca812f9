/* Exact-erf GELU and the GeGLU gate for training. The forwards are the
 * inference kernels (kernels/activation.c: act_rows, glu_row); the backwards
 * are here.
 *
 * Φ(x) is the one GELU's rational erf (kernels/gelu_rational.h), the same
 * function inference evaluates, so a trained model's activations are the ones
 * inference computes; the backward's density φ(x) = exp(−x²/2)/√(2π) takes a
 * Cephes-style exp. Both are branch-free scalar code that GCC vectorises
 * (VT_CLONES): libm's erff/expf would not vectorise and cost most of the time
 * on the big MBConv maps (25 M values per call for ViTamin-S stage 1 at
 * batch 32). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "kernels/activation.h"
#include "kernels/gelu_rational.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "train/ops.h"

/* The span loops carry `omp simd`: outputs may alias inputs element for element
 * (y over x, dx over dy), which no loop-carried dependence can come from, but
 * which would make the compiler's own overlap check fall back to scalar code. */

/* Elements per parallel chunk: big enough to amortise the fork. */
enum { GELU_CHUNK = 1 << 14 };

static int run_parallel(size_t n) { return n >= 2 * GELU_CHUNK && !omp_in_parallel(); }

/* exp(x) for −85 <= x <= 0 (Cephes expf: x = n·ln2 + r, |r| <= ln2/2, exp(r)
 * by a degree-6 polynomial, times 2^n built in the exponent field). */
static inline float exp_nonpositive(float x) {
    /* n = round(x / ln2): truncating the non-positive x/ln2 − ½. */
    int32_t ni = (int32_t)(x * 1.44269504088896341f - 0.5f);
    float n = (float)ni;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + (r + 1.0f);
    int32_t bits = (ni + 127) << 23; /* n in [−123, 0] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* cdf = Φ(x) by the one GELU's rational erf, pdf = φ(x) = exp(−x²/2)/√(2π). */
static inline void normal_cdf_pdf(float x, float *cdf, float *pdf) {
    /* exp(−x²/2) of |x| clamped to 13 (exp(−84.5) ≈ 2e-37), then set to 0
     * beyond. The clamp works on the bit pattern, since non-negative floats
     * order like their bits as integers: an integer min that the vectoriser
     * keeps branch-free, where a float compare lets the compiler split the
     * loop into a constant-folded path and a path it cannot vectorise. */
    const uint32_t clamp_bits = 0x41500000u; /* 13.0f */
    float ax = fabsf(x);
    uint32_t ax_bits;
    memcpy(&ax_bits, &ax, sizeof ax_bits);
    uint32_t clamped_bits = ax_bits < clamp_bits ? ax_bits : clamp_bits;
    float clamped;
    memcpy(&clamped, &clamped_bits, sizeof clamped);
    float e = exp_nonpositive(-0.5f * clamped * clamped);
    /* 0 beyond the clamp, by masking the bits (a select here would again let
     * the compiler move the exp into a branch). */
    uint32_t e_bits, keep = 0u - (uint32_t)(ax_bits < clamp_bits);
    memcpy(&e_bits, &e, sizeof e_bits);
    e_bits &= keep;
    memcpy(&e, &e_bits, sizeof e);
    *cdf = gelu_cdf(x);
    *pdf = 0.39894228040143267794f * e;
}

/* Software prefetch for the streaming loops below. Each element costs ~40
 * vector operations, so the out-of-order window holds only a few cache lines
 * of each stream in flight, and on the machines measured the hardware
 * prefetcher did not make up for it: a span streaming from memory ran at
 * 2.5 ns/element against 0.65 in cache. The spans therefore walk blocks of
 * PF_BLOCK elements and prefetch every stream PF_AHEAD elements ahead. */
enum { PF_BLOCK = 64, PF_AHEAD = 1024 };

#define PREFETCH_BLOCK(p, i, rw)                                           \
    do {                                                                   \
        for (int l_ = 0; l_ < PF_BLOCK; l_ += 16)                          \
            __builtin_prefetch((p) + (i) + PF_AHEAD + l_, (rw), 3);        \
    } while (0)

static size_t block_end(size_t b, size_t n) { return n - b < PF_BLOCK ? n : b + PF_BLOCK; }

/* d gelu / dx = Φ(x) + x·φ(x). */
VT_CLONES static void gelu_backward_span(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t b = 0; b < n; b += PF_BLOCK) {
        PREFETCH_BLOCK(x, b, 0);
        PREFETCH_BLOCK(dy, b, 0);
        if (dx != dy) PREFETCH_BLOCK(dx, b, 1);
        size_t e = block_end(b, n);
#pragma omp simd
        for (size_t i = b; i < e; i++) {
            float cdf, pdf;
            normal_cdf_pdf(x[i], &cdf, &pdf);
            dx[i] = dy[i] * (cdf + x[i] * pdf);
        }
    }
}

/* σ(x) = 1 / (1 + exp(−x)) from exp of a non-positive argument only (no
 * overflow): for x >= 0, 1/(1 + e), for x < 0, e/(1 + e), e = exp(−|x|).
 * Branch-free selects, as above. */
static inline float sigmoid(float x) {
    float ax = fabsf(x);
    float e = exp_nonpositive(-(ax < 85.0f ? ax : 85.0f));
    float inv = 1.0f / (1.0f + e);
    return x >= 0.0f ? inv : e * inv;
}

/* QuickGELU x·σ(1.702x) (open_clip transformer.py QuickGELU). */
VT_CLONES static void quick_gelu_backward_span(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t b = 0; b < n; b += PF_BLOCK) {
        PREFETCH_BLOCK(x, b, 0);
        PREFETCH_BLOCK(dy, b, 0);
        size_t e = block_end(b, n);
#pragma omp simd
        for (size_t i = b; i < e; i++) {
            float s = sigmoid(1.702f * x[i]);
            dx[i] = dy[i] * (s + 1.702f * x[i] * s * (1.0f - s));
        }
    }
}

/* dgate = dy·l·act'(g), dlin = dy·act(g); gelu' = Φ + g·φ, silu' = σ·(1 + g·(1 − σ)). */
VT_CLONES static void glu_backward_span(int act, float *dgate, float *dlin, const float *dy, const float *gate,
                                        const float *lin, size_t n) {
    for (size_t b = 0; b < n; b += PF_BLOCK) {
        PREFETCH_BLOCK(gate, b, 0);
        PREFETCH_BLOCK(lin, b, 0);
        PREFETCH_BLOCK(dy, b, 0);
        PREFETCH_BLOCK(dgate, b, 1);
        PREFETCH_BLOCK(dlin, b, 1);
        size_t e = block_end(b, n);
        if (act == VT_GLU_SILU) {
#pragma omp simd
            for (size_t i = b; i < e; i++) {
                float g = gate[i], sg = sigmoid(g), d = dy[i];
                dgate[i] = d * lin[i] * (sg * (1.0f + g * (1.0f - sg)));
                dlin[i] = d * (g * sg);
            }
        } else {
#pragma omp simd
            for (size_t i = b; i < e; i++) {
                float cdf, pdf;
                normal_cdf_pdf(gate[i], &cdf, &pdf);
                float g = gate[i], d = dy[i];
                dgate[i] = d * lin[i] * (cdf + g * pdf);
                dlin[i] = d * (g * cdf);
            }
        }
    }
}

static size_t chunk_len(size_t start, size_t n) { return n - start < GELU_CHUNK ? n - start : GELU_CHUNK; }

/* The inference kernel (kernels/activation.c act_rows), in parallel chunks:
 * training and inference activate identically. */
void act_train_forward(int act, float *y, const float *x, size_t n) {
    vt_isa isa = vt_kernels_process()->isa;
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t s = 0; s < n; s += GELU_CHUNK) act_rows(isa, (vt_act)act, y + s, x + s, chunk_len(s, n));
}

void act_train_backward(int act, float *dx, const float *dy, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t s = 0; s < n; s += GELU_CHUNK) {
        if (act == VT_ACT_QUICKGELU) quick_gelu_backward_span(dx + s, dy + s, x + s, chunk_len(s, n));
        else gelu_backward_span(dx + s, dy + s, x + s, chunk_len(s, n));
    }
}

void gelu_train_forward(float *y, const float *x, size_t n) { act_train_forward(VT_ACT_GELU, y, x, n); }

void gelu_train_backward(float *dx, const float *dy, const float *x, size_t n) {
    act_train_backward(VT_ACT_GELU, dx, dy, x, n);
}


void gelu_train_backward_serial(float *dx, const float *dy, const float *x, size_t n) {
    gelu_backward_span(dx, dy, x, n);
}

/* gate, lin, y: [rows, hidden], contiguous, so the pair is one flat loop over
 * the inference kernel (kernels/activation.c glu_row). */
void glu_train_forward(int act, float *y, const float *gate, const float *lin, size_t rows, int hidden) {
    size_t n = rows * (size_t)hidden;
    vt_isa isa = vt_kernels_process()->isa;
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t s = 0; s < n; s += GELU_CHUNK) glu_row(isa, (vt_glu)act, y + s, gate + s, lin + s, chunk_len(s, n));
}

void glu_train_backward(int act, float *dgate, float *dlin, const float *dy, const float *gate, const float *lin,
                        size_t rows, int hidden) {
    size_t n = rows * (size_t)hidden;
#pragma omp parallel for schedule(static) if (run_parallel(n))
    for (size_t s = 0; s < n; s += GELU_CHUNK)
        glu_backward_span(act, dgate + s, dlin + s, dy + s, gate + s, lin + s, chunk_len(s, n));
}
