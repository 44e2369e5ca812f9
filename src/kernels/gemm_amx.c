/* AMX-BF16 tile kernel for bf16 weights: 32×32 output blocks as four 16×16
 * fp32 accumulator tiles, fed by two 16×32 bf16 A tiles and two 16-pair B
 * tiles per 32-deep k step (TDPBF16PS). The bf16 panel layout of gemm.h is
 * already AMX's "VNNI" B layout: a B tile is 16 consecutive k-pairs of 16
 * columns, rows 128 bytes apart. */
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/gemm.h"
#include "kernels/gemm_store_avx512.h"

#define TARGET_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

int gemm_amx_available(void) {
    /* CPUID leaf 7: EDX bit 22 = AMX-BF16, bit 24 = AMX-TILE (read directly:
     * not every compiler's __builtin_cpu_supports knows the AMX names). */
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(edx & (1u << 22)) || !(edx & (1u << 24))) return 0;
    /* Linux hands out the 8 KiB tile state only on request (per process). */
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

typedef struct {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

/* Tiles 0-3: C (16 rows × 16 fp32); 4-5: A (16 rows × 32 bf16); 6-7: B (16 pairs × 16 cols). */
TARGET_AMX static void configure_tiles(void) {
    static _Thread_local int configured = 0; /* tile config is per-thread CPU state */
    if (configured) return;
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    configured = 1;
}

/* C[0..mr, 0..nr) (+)= A[32 rows of a, lda bf16 apart][0..2·pairs) · panel pairs [0, pairs).
 * `pairs` is a multiple of 16; a has 32 readable (zero-padded) rows. */
TARGET_AMX void gemm_micro_bf16_amx(int pairs, const uint16_t *a, int lda, const uint16_t *panel, float *c, int ldc,
                                    int mr, int nr, int accumulate) {
    configure_tiles();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int q = 0; q < pairs; q += 16) {
        _tile_loadd(4, a + 2 * q, lda * 2);
        _tile_loadd(5, a + (size_t)16 * lda + 2 * q, lda * 2);
        _tile_loadd(6, panel + (size_t)q * GEMM_NR * 2, GEMM_NR * 2 * 2);
        _tile_loadd(7, panel + (size_t)q * GEMM_NR * 2 + 32, GEMM_NR * 2 * 2);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float out[32][32] __attribute__((aligned(64)));
    _tile_stored(0, &out[0][0], 32 * 4);
    _tile_stored(1, &out[0][16], 32 * 4);
    _tile_stored(2, &out[16][0], 32 * 4);
    _tile_stored(3, &out[16][16], 32 * 4);
    for (int r = 0; r < mr; r++)
        gemm_store_row_avx512(c + (size_t)r * ldc, _mm512_load_ps(&out[r][0]), _mm512_load_ps(&out[r][16]), nr,
                              accumulate);
}
