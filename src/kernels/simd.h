/* Auto-vectorised variants of simple loops. Functions marked VT_CLONES are
 * compiled twice by GCC (AVX-512 and baseline x86-64) and the loader picks the
 * one the CPU runs (ifunc). Only elementwise loops and lane-split reductions
 * get this; the hand-written kernels (GEMM, GELU) dispatch on vt_isa so that
 * VITAMIN_ISA can force each path in tests. Sanitizer builds (make asan / tsan)
 * keep only the baseline clone: an ifunc resolver runs while the dynamic loader
 * relocates, before the sanitizer runtime is up, and its instrumented code
 * crashes there. The hand-written AVX-512 kernels are the same in every build. */
#ifndef VT_KERNELS_SIMD_H
#define VT_KERNELS_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define VT_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define VT_CLONES
#endif

#endif
