/* Machine ceilings for the benchmark table: the fp32 FMA peak (and bf16
 * VDPBF16PS peak where the CPU has AVX512-BF16), measured with enough
 * independent accumulators to hide latency, and vitamin.c's GEMM on a square
 * and on ViTamin-shaped problems. Prints one JSON object.
 *   gemm_bench [--threads N] [--size 2048] */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/gemm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bf16,avx512vl,fma")))

/* 24 independent accumulator chains per thread: FMA latency 4 × 2 ports. */
TARGET_AVX512 static double fma_peak_gflops(long iters) {
    double flops = 0;
    double t0 = now();
#pragma omp parallel reduction(+ : flops)
    {
        __m512 a[24], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
        for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i);
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
            for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
        }
        float sink = 0;
        for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(a[i]);
        if (sink == 1234.5f) printf(" ");
        flops += (double)iters * 24 * 16 * 2;
    }
    return flops / (now() - t0) / 1e9;
}

/* VDPBF16PS: 32 bf16 products summed pairwise into 16 fp32 lanes = 64 flops. */
TARGET_AVX512 static double bf16_peak_gflops(long iters) {
    double flops = 0;
    double t0 = now();
#pragma omp parallel reduction(+ : flops)
    {
        __m512 acc[24];
        __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80);
        for (int i = 0; i < 24; i++) acc[i] = _mm512_setzero_ps();
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
            for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
        }
        float sink = 0;
        for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(acc[i]);
        if (sink == 1234.5f) printf(" ");
        flops += (double)iters * 24 * 64;
    }
    return flops / (now() - t0) / 1e9;
}

static double gemm_gflops(vt_isa isa, int m, int n, int k, double seconds) {
    float *a = aligned_alloc(64, (size_t)m * k * 4), *b = aligned_alloc(64, (size_t)n * k * 4);
    float *c = aligned_alloc(64, (size_t)m * n * 4), *p = aligned_alloc(64, gemm_packed_floats(n, k) * 4 + 64);
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = (float)(i % 5) * 0.1f;
    gemm_pack(b, n, k, k, 0, p);
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, p, NULL, 0};
    gemm_run(isa, m, a, k, &pb, c, n, NULL);
    int iters = 0;
    double t0 = now();
    while (now() - t0 < seconds || iters < 2) {
        gemm_run(isa, m, a, k, &pb, c, n, NULL);
        iters++;
    }
    double gf = 2.0 * m * n * k * iters / (now() - t0) / 1e9;
    free(a); free(b); free(c); free(p);
    return gf;
}

int main(int argc, char **argv) {
    int size = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) omp_set_num_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
    }
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f");
    int bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    vt_isa isa = avx512 ? VT_ISA_AVX512 : VT_ISA_SCALAR;
    printf("{\"threads\": %d, \"isa\": \"%s\"", omp_get_max_threads(), vt_isa_name(isa));
    /* Peaks: the best of 10 short runs. One run (~0.1 s) is easily slowed by
     * another tenant of a shared machine, and a low peak would flatter every
     * engine's "% of peak" in the table. */
    double fma = 0, dp = 0;
    for (int rep = 0; rep < 10; rep++) {
        if (avx512) {
            double g = fma_peak_gflops(20000000);
            fma = g > fma ? g : fma;
        }
        if (bf16) {
            double g = bf16_peak_gflops(20000000);
            dp = g > dp ? g : dp;
        }
    }
    if (avx512) printf(", \"fma_peak_fp32_gflops\": %.1f", fma);
    if (bf16) printf(", \"dpbf16_peak_gflops\": %.1f", dp);
    printf(", \"gemm_square\": {\"size\": %d, \"gflops\": %.1f}", size, gemm_gflops(isa, size, size, size, 2.0));
    /* ViTamin-S transformer shapes at batch 8 (M = 8·196): qkv, GeGLU in, GeGLU out. */
    printf(", \"gemm_vitamin_s\": {\"qkv\": %.1f, \"w0w1\": %.1f, \"w2\": %.1f}", gemm_gflops(isa, 1568, 1152, 384, 1.0),
           gemm_gflops(isa, 1568, 1536, 384, 1.0), gemm_gflops(isa, 1568, 384, 768, 1.0));
    printf("}\n");
    return 0;
}
