/* train_ops_dense OP DIR ARGS...   runs one dense training op of train/ops.h
 * on float32 .npy inputs from DIR and writes its outputs there as 1-D .npy
 * (Python reshapes). Driven by tests/reference/test_train_ops_dense.py.
 *
 *   gemm DIR nt|nn|tn M N K LDA LDB LDC ACC   a, b, c (initial C) → c_out
 *   linear DIR ROWS IN OUT BIAS NEED_DX NEED_DW
 *        x, w, [b], dy, dw0, [db0] → y, [dx], [dw], [db]  (dw/db start from dw0/db0)
 *   conv DIR BATCH H W CIN COUT STRIDE BIAS NEED_DX NEED_DW
 *        x, w, [b], dy, dw0, [db0] → y, [dx], [dw], [db]
 *   attn DIR BATCH T WIDTH HEADS CAUSAL       qkv, dout → out, probs, dqkv
 *
 *   train_ops_dense bench [gemm|linear|attn|conv]   prints timings at
 *   ViTamin-S training shapes (batch 32). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/serial/npy.h"
#include "kernels/gemm.h"
#include "train/ops.h"

static const char *dir;

static float *load(const char *name, size_t expect) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    float *data = NULL;
    int64_t rows, cols;
    vt_error err = {0};
    if (npy_read_f32(path, &data, &rows, &cols, &err) != VT_OK) {
        fprintf(stderr, "train_ops_dense: %s\n", err.message);
        exit(1);
    }
    if ((size_t)(rows * cols) != expect) {
        fprintf(stderr, "train_ops_dense: %s holds %lld floats, expected %zu\n", path, (long long)(rows * cols),
                expect);
        exit(1);
    }
    return data;
}

static void save(const char *name, const float *data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    vt_error err = {0};
    if (npy_write_f32(path, 1, (int64_t)n, data, &err) != VT_OK) {
        fprintf(stderr, "train_ops_dense: %s\n", err.message);
        exit(1);
    }
}

static float *alloc_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = 1e30f; /* poison: every output element must be written */
    return p;
}

static int run_gemm(char **a) {
    const char *orient = a[0];
    int m = atoi(a[1]), n = atoi(a[2]), k = atoi(a[3]), lda = atoi(a[4]), ldb = atoi(a[5]), ldc = atoi(a[6]),
        acc = atoi(a[7]);
    int a_rows = !strcmp(orient, "tn") ? k : m, b_rows = !strcmp(orient, "nt") ? n : k;
    float *A = load("a", (size_t)a_rows * lda), *B = load("b", (size_t)b_rows * ldb), *C = load("c", (size_t)m * ldc);
    if (!strcmp(orient, "nt")) tmat_nt(m, n, k, A, lda, B, ldb, C, ldc, acc);
    else if (!strcmp(orient, "nn")) tmat_nn(m, n, k, A, lda, B, ldb, C, ldc, acc);
    else if (!strcmp(orient, "tn")) tmat_tn(m, n, k, A, lda, B, ldb, C, ldc, acc);
    else return 2;
    save("c_out", C, (size_t)m * ldc);
    return 0;
}

static int run_linear(char **a) {
    int rows = atoi(a[0]), in = atoi(a[1]), out = atoi(a[2]), bias = atoi(a[3]), need_dx = atoi(a[4]),
        need_dw = atoi(a[5]);
    float *x = load("x", (size_t)rows * in), *w = load("w", (size_t)out * in), *dy = load("dy", (size_t)rows * out);
    float *b = bias ? load("b", out) : NULL, *dw = need_dw ? load("dw0", (size_t)out * in) : NULL;
    float *db = bias ? load("db0", out) : NULL;
    float *y = alloc_floats((size_t)rows * out), *dx = need_dx ? alloc_floats((size_t)rows * in) : NULL;
    linear_forward(y, x, w, b, rows, in, out);
    linear_backward(dx, dw, db, dy, x, w, rows, in, out);
    save("y", y, (size_t)rows * out);
    if (dx) save("dx", dx, (size_t)rows * in);
    if (dw) save("dw", dw, (size_t)out * in);
    if (db) save("db", db, out);
    return 0;
}

static int run_conv(char **a) {
    int batch = atoi(a[0]), h = atoi(a[1]), w = atoi(a[2]), cin = atoi(a[3]), cout = atoi(a[4]),
        stride = atoi(a[5]), bias = atoi(a[6]), need_dx = atoi(a[7]), need_dw = atoi(a[8]);
    int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    size_t nx = (size_t)batch * h * w * cin, ny = (size_t)batch * ho * wo * cout, nw = (size_t)cout * cin * 9;
    float *x = load("x", nx), *wt = load("w", nw), *dy = load("dy", ny);
    float *b = bias ? load("b", cout) : NULL, *dw = need_dw ? load("dw0", nw) : NULL;
    float *db = bias ? load("db0", cout) : NULL;
    float *y = alloc_floats(ny), *dx = need_dx ? alloc_floats(nx) : NULL;
    conv3x3_train_forward(y, x, wt, b, batch, h, w, cin, cout, stride);
    conv3x3_train_backward(dx, dw, db, dy, x, wt, batch, h, w, cin, cout, stride);
    save("y", y, ny);
    if (dx) save("dx", dx, nx);
    if (dw) save("dw", dw, nw);
    if (db) save("db", db, cout);
    return 0;
}

static int run_attn(char **a) {
    int batch = atoi(a[0]), t = atoi(a[1]), width = atoi(a[2]), heads = atoi(a[3]), causal = atoi(a[4]);
    size_t nqkv = (size_t)batch * t * 3 * width, nout = (size_t)batch * t * width, np = (size_t)batch * heads * t * t;
    float *qkv = load("qkv", nqkv), *dout = load("dout", nout);
    float *out = alloc_floats(nout), *probs = alloc_floats(np), *dqkv = alloc_floats(nqkv);
    attention_train_forward(out, probs, qkv, batch, t, width, heads, causal);
    attention_train_backward(dqkv, dout, qkv, probs, batch, t, width, heads, causal);
    save("out", out, nout);
    save("probs", probs, np);
    save("dqkv", dqkv, nqkv);
    return 0;
}

/* ---- bench ---- */

static float *random_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) exit(1);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Fastest of `reps` runs after a warm-up (scratch grows, pages fault in): the
 * minimum is the least disturbed by other processes on a shared machine. */
#define TIME_MS(reps, stmt)                                  \
    ({                                                       \
        stmt;                                                \
        double best_ = 1e30;                                 \
        for (int r_ = 0; r_ < (reps); r_++) {                \
            double t0_ = omp_get_wtime();                    \
            stmt;                                            \
            double t_ = omp_get_wtime() - t0_;               \
            best_ = t_ < best_ ? t_ : best_;                 \
        }                                                    \
        best_ * 1e3;                                         \
    })

static void bench_gemms(int m, int n, int k) {
    size_t big = (size_t)(m > n ? m : n) * (k > n ? k : n) + (size_t)m * k + (size_t)k * n;
    float *a = random_floats(big), *b = random_floats(big), *c = random_floats((size_t)m * n);
    double gflop = 2.0 * m * n * k * 1e-9;
    vt_isa isa;
    vt_error err = {0};
    vt_isa_select(&isa, &err);
    float *packed = aligned_alloc(64, gemm_packed_floats(n, k) * sizeof(float));
    gemm_pack(b, n, k, k, 0, packed);
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, packed, NULL, 0};
    double fwd = TIME_MS(5, gemm_run(isa, m, a, k, &pb, c, n, NULL));
    double nt = TIME_MS(5, tmat_nt(m, n, k, a, k, b, k, c, n, 0));
    double nn = TIME_MS(5, tmat_nn(m, n, k, a, k, b, n, c, n, 0));
    double tn = TIME_MS(5, tmat_tn(m, n, k, a, m, b, n, c, n, 1));
    printf("gemm m=%d n=%d k=%d (%.2f GFLOP): gemm_run prepacked %.2f ms %.0f GFLOP/s | nt %.2f ms %.0f | nn %.2f ms "
           "%.0f | tn %.2f ms %.0f\n",
           m, n, k, gflop, fwd, gflop / fwd * 1e3, nt, gflop / nt * 1e3, nn, gflop / nn * 1e3, tn,
           gflop / tn * 1e3);
    free(a), free(b), free(c), free(packed);
}

static void bench_linear(const char *name, int rows, int in, int out) {
    float *x = random_floats((size_t)rows * in), *w = random_floats((size_t)out * in), *bias = random_floats(out);
    float *y = random_floats((size_t)rows * out), *dx = random_floats((size_t)rows * in);
    float *dw = random_floats((size_t)out * in), *db = random_floats(out);
    double f = TIME_MS(3, linear_forward(y, x, w, bias, rows, in, out));
    double bw = TIME_MS(3, linear_backward(dx, dw, db, y, x, w, rows, in, out));
    printf("linear %-10s rows=%d %d->%d: forward %.2f ms, backward %.2f ms\n", name, rows, in, out, f, bw);
    free(x), free(w), free(bias), free(y), free(dx), free(dw), free(db);
}

static void bench_conv(const char *name, int batch, int h, int w, int cin, int cout, int stride) {
    int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    size_t nx = (size_t)batch * h * w * cin, ny = (size_t)batch * ho * wo * cout;
    float *x = random_floats(nx), *wt = random_floats((size_t)cout * cin * 9), *b = random_floats(cout);
    float *y = random_floats(ny), *dx = random_floats(nx), *dw = random_floats((size_t)cout * cin * 9),
          *db = random_floats(cout);
    double f = TIME_MS(1, conv3x3_train_forward(y, x, wt, b, batch, h, w, cin, cout, stride));
    double bw = TIME_MS(1, conv3x3_train_backward(dx, dw, db, y, x, wt, batch, h, w, cin, cout, stride));
    printf("conv3x3 %-8s %dx%dx%dx%d->%d s%d: forward %.1f ms, backward %.1f ms\n", name, batch, h, w, cin, cout,
           stride, f, bw);
    free(x), free(wt), free(b), free(y), free(dx), free(dw), free(db);
}

static void bench_attn(const char *name, int batch, int t, int width, int heads, int causal) {
    size_t nqkv = (size_t)batch * t * 3 * width, nout = (size_t)batch * t * width;
    float *qkv = random_floats(nqkv), *dout = random_floats(nout), *out = random_floats(nout),
          *probs = random_floats((size_t)batch * heads * t * t), *dqkv = random_floats(nqkv);
    double f = TIME_MS(3, attention_train_forward(out, probs, qkv, batch, t, width, heads, causal));
    double bw = TIME_MS(3, attention_train_backward(dqkv, dout, qkv, probs, batch, t, width, heads, causal));
    printf("attention %-6s B=%d T=%d D=%d heads=%d%s: forward %.2f ms, backward %.2f ms\n", name, batch, t, width,
           heads, causal ? " causal" : "", f, bw);
    free(qkv), free(dout), free(out), free(probs), free(dqkv);
}

/* `only` (NULL = all) picks one group: gemm, linear, attn or conv. */
static int run_bench(const char *only) {
    printf("threads: %d\n", omp_get_max_threads());
    if (!only || !strcmp(only, "gemm")) {
        bench_gemms(32 * 196, 1152, 384);
        bench_gemms(32 * 196, 384, 1152);
        bench_gemms(1152, 384, 32 * 196); /* tn here is the qkv weight gradient */
    }
    if (!only || !strcmp(only, "linear")) {
        bench_linear("qkv", 32 * 196, 384, 1152);
        bench_linear("mlp w2", 32 * 196, 768, 384);
        bench_linear("expand s1", 32 * 56 * 56, 64, 256);
    }
    if (!only || !strcmp(only, "attn")) {
        bench_attn("image", 32, 196, 384, 6, 0);
        bench_attn("text", 32, 77, 384, 6, 1);
    }
    if (!only || !strcmp(only, "conv")) {
        bench_conv("stem1", 32, 224, 224, 3, 64, 2);
        bench_conv("stem2", 32, 112, 112, 64, 64, 1);
        bench_conv("strided", 32, 28, 28, 128, 384, 2);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "bench")) return run_bench(argc > 2 ? argv[2] : NULL);
    if (argc < 3) goto usage;
    dir = argv[2];
    if (!strcmp(argv[1], "gemm") && argc == 11) return run_gemm(argv + 3);
    if (!strcmp(argv[1], "linear") && argc == 9) return run_linear(argv + 3);
    if (!strcmp(argv[1], "conv") && argc == 12) return run_conv(argv + 3);
    if (!strcmp(argv[1], "attn") && argc == 8) return run_attn(argv + 3);
usage:
    fprintf(stderr, "usage: train_ops_dense gemm|linear|conv|attn DIR ARGS... | bench (see the file's head)\n");
    return 2;
}
