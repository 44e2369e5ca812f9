/* GEMM driver: packing, cache blocking, threading and the fused epilogue. The
 * per-ISA micro-kernels live in gemm_micro_*.c. */
#include "kernels/gemm.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/float16.h"
#include "kernels/activation.h"
#include "kernels/simd.h"
#include "kernels/transpose.h"

/* Blocking: a KC×NR panel slice (32 KiB) stays in L1 while MC rows of A
 * (64 KiB at KC=256) stay in L2; NC columns per tile keep enough tiles for 2+
 * threads on small layers. */
enum { GEMM_KC = 256, GEMM_MC = 64, GEMM_NC = 4 * GEMM_NR };

size_t gemm_packed_floats(int n, int k) {
    size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR;
    return panels * (size_t)k * GEMM_NR;
}

void gemm_pack_nk(const float *b, int n, int k, int ldb, int p0, int p1, float *dst) {
    for (int p = p0; p < p1; p++) {
        float *out = dst + (size_t)p * k * GEMM_NR;
        int j0 = p * GEMM_NR, width = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
        transpose_serial(out, GEMM_NR, b + (size_t)j0 * ldb, (size_t)ldb, width, k);
        if (width < GEMM_NR)
            for (int kk = 0; kk < k; kk++) memset(out + (size_t)kk * GEMM_NR + width, 0, sizeof(float) * (GEMM_NR - width));
    }
}

void gemm_pack(const float *b, int n, int k, int ldb, int b_is_kn, float *dst) {
    int panels = (n + GEMM_NR - 1) / GEMM_NR;
    if (!b_is_kn) {
        gemm_pack_nk(b, n, k, ldb, 0, panels, dst);
        return;
    }
    for (int p = 0; p < panels; p++) {
        float *out = dst + (size_t)p * k * GEMM_NR;
        int j0 = p * GEMM_NR, width = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
        for (int kk = 0; kk < k; kk++) {
            float *row = out + (size_t)kk * GEMM_NR;
            const float *src = b + (size_t)kk * ldb + j0;
            for (int j = 0; j < width; j++) row[j] = src[j];
            for (int j = width; j < GEMM_NR; j++) row[j] = 0.0f;
        }
    }
}

VT_CLONES static void apply_epilogue(vt_isa isa, int m0, int m1, int n0, int n1, float *c, int ldc, const gemm_epilogue *e) {
    for (int i = m0; i < m1; i++) {
        float *row = c + (size_t)i * ldc;
        if (e->alpha != 1.0f)
            for (int j = n0; j < n1; j++) row[j] *= e->alpha;
        if (e->bias)
            for (int j = n0; j < n1; j++) row[j] += e->bias[j];
        if (e->act) act_rows(isa, (vt_act)e->act, row + n0, row + n0, (size_t)(n1 - n0));
        if (e->residual) {
            const float *res = e->residual + (size_t)i * e->ldr;
            for (int j = n0; j < n1; j++) row[j] += res[j];
        }
    }
}

size_t gemm_packed_bf16_elems(int n, int k) {
    size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR, pairs = ((size_t)k + 1) / 2;
    return panels * pairs * GEMM_NR * 2;
}

void gemm_pack_bf16(const float *b, int n, int k, int ldb, uint16_t *dst) {
    int panels = (n + GEMM_NR - 1) / GEMM_NR, pairs = (k + 1) / 2;
    for (int p = 0; p < panels; p++)
        for (int q = 0; q < pairs; q++) {
            uint16_t *out = dst + ((size_t)p * pairs + q) * GEMM_NR * 2;
            for (int j = 0; j < GEMM_NR; j++)
                for (int t = 0; t < 2; t++) {
                    int row = p * GEMM_NR + j, col = 2 * q + t;
                    out[2 * j + t] = row < n && col < k ? vt_f32_to_bf16(b[(size_t)row * ldb + col]) : 0;
                }
        }
}

/* bf16 version of gemm_tile (C at the tile's origin): A rows are rounded to
 * bf16 once per K block and shared by every panel of the tile. */
static void gemm_tile_bf16(int m0, int m1, int p0, int p1, const float *a, int lda, const gemm_packed_b *b,
                           float *c, int ldc, int onto_c) {
    int k = b->k, pairs = (k + 1) / 2;
    /* AMX reads whole 32-row × 32-k tiles: round rows and k up, zero filled. */
    uint16_t converted[(GEMM_MC + 32) * GEMM_KC] __attribute__((aligned(64)));
    for (int k0 = 0; k0 < k; k0 += GEMM_KC) {
        int kc = k - k0 < GEMM_KC ? k - k0 : GEMM_KC, kc_even = (kc + 1) & ~1;
        if (b->amx) {
            int kc_tiles = (kc + 31) & ~31, rows = ((m1 - m0) + 31) & ~31;
            memset(converted, 0, (size_t)rows * kc_tiles * sizeof(uint16_t));
            convert_rows_bf16_avx512(converted, kc_tiles, a + (size_t)m0 * lda + k0, lda, m1 - m0, kc);
            for (int p = p0; p < p1; p++) {
                const uint16_t *panel = b->bf16 + ((size_t)p * pairs + k0 / 2) * GEMM_NR * 2;
                int j0 = p * GEMM_NR, nr = b->n - j0 < GEMM_NR ? b->n - j0 : GEMM_NR;
                for (int i = m0; i < m1; i += 32)
                    gemm_micro_bf16_amx(kc_tiles / 2, converted + (size_t)(i - m0) * kc_tiles, kc_tiles, panel,
                                        c + (size_t)(i - m0) * ldc + (p - p0) * GEMM_NR, ldc, m1 - i < 32 ? m1 - i : 32, nr,
                                        onto_c || k0 > 0);
            }
            continue;
        }
        convert_rows_bf16_avx512(converted, kc_even, a + (size_t)m0 * lda + k0, lda, m1 - m0, kc);
        for (int p = p0; p < p1; p++) {
            const uint16_t *panel = b->bf16 + ((size_t)p * pairs + k0 / 2) * GEMM_NR * 2;
            int j0 = p * GEMM_NR, nr = b->n - j0 < GEMM_NR ? b->n - j0 : GEMM_NR;
            for (int i = m0; i < m1; i += GEMM_MR) {
                int mr = m1 - i < GEMM_MR ? m1 - i : GEMM_MR;
                gemm_micro_bf16_avx512(kc_even / 2, converted + (size_t)(i - m0) * kc_even, kc_even, panel,
                                       c + (size_t)(i - m0) * ldc + (p - p0) * GEMM_NR, ldc, mr, nr, onto_c || k0 > 0);
            }
        }
    }
}

/* What every tile of one gemm_run shares. */
typedef struct {
    vt_isa isa;
    const float *a;
    int lda, m;
    const gemm_packed_b *b;
    int onto_c;             /* add the product to what C holds */
    int fuse;               /* AVX-512 fp32: `fused` has work for the kernel's last K block */
    gemm_micro_fused fused; /* bias and residual at column 0 / row 0; geglu_cols = all output columns */
} gemm_job;

/* One MC×NC output tile, all of K: sums into `c` (the tile's origin, ldc
 * apart). With job->onto_c they are added to what C already holds (a residual
 * that aliases C). With `geglu_out` (the AVX-512 fp32 GeGLU path) `c` holds
 * only the partial sums of earlier K blocks and the last block writes the
 * gated result there instead. Rows [m1, m) of A exist (the next tiles'), so
 * they may be prefetched. */
static void gemm_tile(const gemm_job *job, int m0, int m1, int p0, int p1, float *c, int ldc, float *geglu_out,
                      int ld_out) {
    const gemm_packed_b *b = job->b;
    int k = b->k, lda = job->lda;
    if (b->bf16 && k > 0) {
        gemm_tile_bf16(m0, m1, p0, p1, job->a, lda, b, c, ldc, job->onto_c);
        return;
    }
    for (int k0 = 0; k0 < k; k0 += GEMM_KC) {
        int kc = k - k0 < GEMM_KC ? k - k0 : GEMM_KC, fuse = job->fuse && k0 + kc == k;
        for (int p = p0; p < p1; p++) {
            const float *panel = b->data + ((size_t)p * k + k0) * GEMM_NR;
            int j0 = p * GEMM_NR, nr = b->n - j0 < GEMM_NR ? b->n - j0 : GEMM_NR;
            gemm_micro_fused fused = job->fused;
            if (fused.bias) fused.bias += j0;
            if (geglu_out) {
                fused.geglu_out = geglu_out + (p - p0) * (GEMM_NR / 2);
                fused.ld_out = ld_out;
                fused.geglu_cols -= p * (GEMM_NR / 2);
            }
            for (int i = m0; i < m1; i += GEMM_MR) {
                int mr = m1 - i < GEMM_MR ? m1 - i : GEMM_MR;
                const float *ap = job->a + (size_t)i * lda + k0;
                float *cp = c + (size_t)(i - m0) * ldc + (p - p0) * GEMM_NR;
                /* The first panel is the tile's first pass over this block of A,
                 * which then comes from memory: prefetch the next 8 rows'
                 * (the next tile's first rows after the last group). */
                const float *pf = p == p0 && i + GEMM_MR < job->m ? ap + (size_t)GEMM_MR * lda : NULL;
                if (job->isa == VT_ISA_AVX512) {
                    if (job->fused.residual) fused.residual = job->fused.residual + (size_t)i * fused.ldr + j0;
                    gemm_micro_avx512(kc, ap, lda, panel, cp, ldc, mr, nr, job->onto_c || k0 > 0, pf,
                                      fuse ? &fused : NULL);
                    if (fused.geglu_out) fused.geglu_out += (size_t)GEMM_MR * ld_out;
                } else {
                    gemm_micro_scalar(kc, ap, lda, panel, cp, ldc, mr, nr, job->onto_c || k0 > 0);
                }
            }
        }
    }
    if (k == 0 && !job->onto_c) /* degenerate: the product is all zeros */
        for (int i = m0; i < m1; i++)
            for (int p = p0; p < p1; p++) {
                int j0 = p * GEMM_NR, nr = b->n - j0 < GEMM_NR ? b->n - j0 : GEMM_NR;
                memset(c + (size_t)(i - m0) * ldc + (p - p0) * GEMM_NR, 0, sizeof(float) * nr);
            }
}

/* GeGLU from a tile's interleaved sums `in` (ld GEMM_NC) into C's columns
 * [p0·16, p1·16) ∩ [0, cols): the path for kernels without the fused store. */
static void geglu_tile(vt_isa isa, vt_glu act, int rows, int p0, int p1, const float *in, const float *bias, float *c,
                       int ldc, int cols) {
    float gate[GEMM_NR / 2], lin[GEMM_NR / 2];
    for (int r = 0; r < rows; r++)
        for (int p = p0; p < p1; p++) {
            const float *sums = in + (size_t)r * GEMM_NC + (p - p0) * GEMM_NR, *bp = bias ? bias + p * GEMM_NR : NULL;
            int j0 = p * (GEMM_NR / 2), width = cols - j0 < GEMM_NR / 2 ? cols - j0 : GEMM_NR / 2;
            for (int j = 0; j < width; j++) {
                gate[j] = sums[j] + (bp ? bp[j] : 0.0f);
                lin[j] = sums[GEMM_NR / 2 + j] + (bp ? bp[GEMM_NR / 2 + j] : 0.0f);
            }
            glu_row(isa, act, c + (size_t)r * ldc + j0, gate, lin, (size_t)width);
        }
}

int gemm_geglu_rows(int hidden) { return (hidden + GEMM_NR / 2 - 1) / (GEMM_NR / 2) * GEMM_NR; }

void gemm_geglu_interleave(const float *w0, const float *w1, const float *b0, const float *b1, int hidden, int k,
                           float *w_out, float *b_out) {
    int half = GEMM_NR / 2, rows = gemm_geglu_rows(hidden);
    for (int r = 0; r < rows; r++) {
        int group = r / GEMM_NR, lane = r % GEMM_NR, src = group * half + lane % half;
        int is_lin = lane >= half, valid = src < hidden;
        const float *from = is_lin ? w1 : w0;
        if (valid)
            memcpy(w_out + (size_t)r * k, from + (size_t)src * k, sizeof(float) * k);
        else
            memset(w_out + (size_t)r * k, 0, sizeof(float) * k);
        if (b_out) b_out[r] = valid ? (is_lin ? b1 : b0)[src] : 0.0f;
    }
}

void gemm_run(vt_isa isa, int m, const float *a, int lda, const gemm_packed_b *b, float *c, int ldc,
              const gemm_epilogue *epi) {
    /* Row tiles of at most MC rows, cut at multiples of MR and as equal as
     * possible: 196 rows (one image's tokens) as 56+48+48+44 rather than
     * 64+64+64+4, whose 4-row tile left one of two threads with half the
     * work of the other in every N=384 layer at batch 1. */
    int row_groups = (m + GEMM_MR - 1) / GEMM_MR;
    int mtiles = (row_groups + GEMM_MC / GEMM_MR - 1) / (GEMM_MC / GEMM_MR);
    int panels_per_tile = GEMM_NC / GEMM_NR;
    int ntiles = (b->panels + panels_per_tile - 1) / panels_per_tile;
    int tiles = mtiles * ntiles;
    /* A residual stored in C itself (x = x + W·h) is accumulated onto by the
     * micro-kernel, since the first K block would otherwise overwrite it. That
     * needs the product unscaled and un-activated. */
    gemm_epilogue local = epi ? *epi : (gemm_epilogue){1.0f, NULL, 0, NULL, 0, 0, 0};
    gemm_job job = {isa, a, lda, m, b, local.residual == c && local.ldr == ldc, 0, {0}};
    if (job.onto_c) {
        if (local.alpha != 1.0f || local.act || local.geglu_cols) __builtin_trap(); /* no caller does this; see gemm.h */
        local.residual = NULL;
    }
    if (local.geglu_cols && (local.alpha != 1.0f || local.act || local.residual)) __builtin_trap(); /* see gemm.h */
    /* The AVX-512 fp32 kernel applies bias, the activation (or GeGLU) and a residual
     * to its registers on the last K block (same order, same result), saving
     * a pass over C. Other paths gate GeGLU (with its bias) per tile. */
    int fuse = isa == VT_ISA_AVX512 && !b->bf16 && b->k > 0 && local.alpha == 1.0f;
    const float *geglu_bias = local.geglu_cols ? local.bias : NULL;
    if (fuse) {
        job.fused = (gemm_micro_fused){local.bias, local.act, local.residual, local.ldr, NULL, 0, local.geglu_cols,
                                       local.glu_act};
        job.fuse = local.bias || local.act || local.residual || local.geglu_cols;
        local.act = 0;
        local.residual = NULL;
    }
    if (fuse || local.geglu_cols) local.bias = NULL;
    int need_epilogue = local.alpha != 1.0f || local.bias || local.act || local.residual;
    /* Tile order. Row-major (all column tiles of a row block, then the next)
     * keeps the A block in L2 but streams all of B once per row block; when B
     * is larger than L2 that is the larger traffic, so go column-major: each
     * thread's B slice stays in L2 while A streams past it. */
    size_t b_bytes = (size_t)b->panels * b->k * GEMM_NR * (b->bf16 ? 2 : 4);
    int b_major = b_bytes > (1u << 20) && ntiles > 1;
#pragma omp parallel for schedule(static) if (tiles > 1 && !omp_in_parallel())
    for (int t = 0; t < tiles; t++) {
        int mt = b_major ? t % mtiles : t / ntiles, nt = b_major ? t / mtiles : t % ntiles;
        int m0 = (int)((long)row_groups * mt / mtiles) * GEMM_MR;
        int m1 = (int)((long)row_groups * (mt + 1) / mtiles) * GEMM_MR;
        if (m1 > m) m1 = m;
        int p0 = nt * panels_per_tile, p1 = p0 + panels_per_tile < b->panels ? p0 + panels_per_tile : b->panels;
        if (local.geglu_cols) {
            /* The 2·hidden-wide sums live only in this tile buffer. */
            float sums[GEMM_MC * GEMM_NC] __attribute__((aligned(64)));
            float *rows = c + (size_t)m0 * ldc;
            gemm_tile(&job, m0, m1, p0, p1, sums, GEMM_NC, fuse ? rows + p0 * (GEMM_NR / 2) : NULL, ldc);
            if (!fuse)
                geglu_tile(isa, (vt_glu)local.glu_act, m1 - m0, p0, p1, sums, geglu_bias, rows, ldc, local.geglu_cols);
            continue;
        }
        gemm_tile(&job, m0, m1, p0, p1, c + (size_t)m0 * ldc + p0 * GEMM_NR, ldc, NULL, 0);
        if (need_epilogue) {
            int n0 = p0 * GEMM_NR, n1 = p1 * GEMM_NR < b->n ? p1 * GEMM_NR : b->n;
            apply_epilogue(isa, m0, m1, n0, n1, c, ldc, &local);
        }
    }
}
