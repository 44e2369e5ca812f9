/* dst[c, r] = src[r, c]: 8×8 AVX2 register transposes with a scalar edge.
 * Used to pack the "B" operand of a GEMM given as rows of [n, k] (weights at
 * load and in training, K in attention) into its k-major panels. A transpose
 * is a copy, with one result whatever the path, so the AVX2 blocks run
 * wherever CPUID reports AVX2 (VITAMIN_ISA does not apply). */
#include "kernels/transpose.h"

#include <immintrin.h>

__attribute__((target("avx2,fma"))) static void transpose8x8_avx2(float *dst, size_t ldd, const float *src,
                                                                     size_t lds) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
           r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds),
           r5 = _mm256_loadu_ps(src + 5 * lds), r6 = _mm256_loadu_ps(src + 6 * lds),
           r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

static int cpu_has_avx2(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") != 0;
    }
    return known;
}

void transpose_serial(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols) {
    int avx2 = cpu_has_avx2(), r8 = avx2 ? rows & ~7 : 0, c8 = avx2 ? cols & ~7 : 0;
    /* 8 source rows at a time, walking along the columns, so the 8 source
     * streams and 8 destination column strips stay in L1. */
    for (int r = 0; r < r8; r += 8)
        for (int c = 0; c < c8; c += 8)
            transpose8x8_avx2(dst + (size_t)c * ldd + r, ldd, src + (size_t)r * lds + c, lds);
    for (int r = 0; r < rows; r++) {
        int c_start = r < r8 ? c8 : 0;
        for (int c = c_start; c < cols; c++) dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
    }
}
