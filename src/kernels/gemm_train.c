/* Training GEMMs (gemm_train.h). tmat_nt / tmat_nn run on the inference
 * kernel kernels/gemm.c; weights change every step, so B is packed into its
 * 32-column panels on every call. tmat_tn has its own tile driver below (Aᵀ is
 * read by packing A k-major for gemm_micro_kmajor.c). Packing is a plain copy
 * and every output element is summed over k by one tile in a fixed order, so
 * results do not depend on the thread count. */
#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"
#include "kernels/gemm_train.h"
#include "core/scratch.h"
#include "kernels/kernels.h"

/* The process's kernel table (kernels/kernels.h): VITAMIN_ISA may force the scalar path. */
static vt_isa train_isa(void) { return vt_kernels_process()->isa; }

/* ---- Thread-local growable scratch: slot 0 packed B, slot 1 packed A block
 * (tmat_tn), slot 2 split-k partial products (tmat_tn) ----
 * Each OpenMP thread that calls a tmat_* (e.g. per (batch, head) in attention)
 * has its own buffers; they only grow, so steady-state training allocates
 * nothing. */

static _Thread_local vt_scratch gemm_scratch[3];

static float *scratch_get(int slot, size_t floats) { return vt_scratch_get(&gemm_scratch[slot], floats * sizeof(float)); }

/* Parallel copies only pay off above ~64K floats; inside a parallel region
 * they run on the calling thread. */
static int copy_in_parallel(size_t floats) { return floats >= (1u << 16) && !omp_in_parallel(); }

/* B [n, k] (stride ldb) → panels, in parallel over panels (kernels/gemm.c). */
static void pack_b_nk(float *dst, const float *b, int n, int k, int ldb) {
    int panels = (n + GEMM_NR - 1) / GEMM_NR;
#pragma omp parallel for schedule(static) if (copy_in_parallel((size_t)n * k))
    for (int p = 0; p < panels; p++) gemm_pack_nk(b, n, k, ldb, p, p + 1, dst);
}

/* ---- Packing B into gemm_packed_b panels (layout: kernels/gemm.h) ---- */

enum { PACK_B_PREFETCH = 4 };

/* B [k, n] (stride ldb) → panels: each panel row is a 32-float slice of a B
 * row. Walks B row by row (sequential reads the hardware prefetcher follows),
 * scattering each row over the panels; tasks are blocks of 64 rows. */
static void pack_b_kn(float *dst, const float *b, int n, int k, int ldb) {
    int panels = (n + GEMM_NR - 1) / GEMM_NR, blocks = (k + 63) / 64;
#pragma omp parallel for schedule(static) if (copy_in_parallel((size_t)n * k))
    for (int blk = 0; blk < blocks; blk++) {
        int k1 = blk * 64 + 64 < k ? blk * 64 + 64 : k;
        for (int kk = blk * 64; kk < k1; kk++) {
            const float *src = b + (size_t)kk * ldb;
            /* B rows from memory (tmat_tn streams activations through here):
             * prefetch a few rows ahead, as in pack_a_kmajor below. */
            if (kk + PACK_B_PREFETCH < k)
                for (int j = 0; j < n; j += 16) __builtin_prefetch(src + (size_t)PACK_B_PREFETCH * ldb + j);
            for (int p = 0; p < panels; p++) {
                float *row = dst + ((size_t)p * k + kk) * GEMM_NR;
                int j0 = p * GEMM_NR, width = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
                memcpy(row, src + j0, sizeof(float) * width);
                if (width < GEMM_NR) memset(row + width, 0, sizeof(float) * (GEMM_NR - width));
            }
        }
    }
}

/* C (+)= A · packed B, with A [m, k] row-major (stride lda). */
static void run_packed(vt_isa isa, int m, int n, int k, const float *a, int lda, float *packed, float *c,
                       int ldc, int accumulate) {
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, packed, NULL, 0};
    /* A residual equal to C makes gemm_run add the product onto C in the
     * micro-kernel's store (kernels/gemm.c). */
    gemm_epilogue acc = {1.0f, NULL, 0, c, ldc, 0, 0};
    gemm_run(isa, m, a, lda, &pb, c, ldc, accumulate ? &acc : NULL);
}

void tmat_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
             int accumulate) {
    if (m <= 0 || n <= 0) return;
    vt_isa isa = train_isa();
    float *packed = scratch_get(0, gemm_packed_floats(n, k));
    pack_b_nk(packed, b, n, k, ldb);
    run_packed(isa, m, n, k, a, lda, packed, c, ldc, accumulate);
}

void tmat_nt_bias(int m, int n, int k, const float *a, int lda, const float *b, int ldb, const float *bias,
                  float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    vt_isa isa = train_isa();
    float *packed = scratch_get(0, gemm_packed_floats(n, k));
    pack_b_nk(packed, b, n, k, ldb);
    gemm_packed_b pb = {n, k, (n + GEMM_NR - 1) / GEMM_NR, packed, NULL, 0};
    gemm_epilogue epi = {1.0f, bias, 0, NULL, 0, 0, 0};
    gemm_run(isa, m, a, lda, &pb, c, ldc, &epi);
}

void tmat_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
             int accumulate) {
    if (m <= 0 || n <= 0) return;
    vt_isa isa = train_isa();
    float *packed = scratch_get(0, gemm_packed_floats(n, k));
    pack_b_kn(packed, b, n, k, ldb);
    run_packed(isa, m, n, k, a, lda, packed, c, ldc, accumulate);
}

/* ---- tmat_tn: C[m, n] (+)= A[k, m]ᵀ · B[k, n] ----
 * Own tile driver (BLIS-style): B is packed per k-chunk as for tmat_nn, and
 * each tile packs its block of A k-major in groups of 8 columns — 32-byte
 * copies, no transpose — for gemm_micro_kmajor_*. Tiles are MC rows × up to
 * NC columns of C, so one packed A block serves 16 panels.
 *
 * k is the long axis here (pixels or tokens of a whole batch, up to ~400K). A
 * C of TN_SPLIT_BELOW_TILES tiles or more is split between the threads, each
 * walking all of k over its own tiles (tn_large). A smaller C (conv weight
 * gradients, [64, 27] for the stem; the MBConv's [64, 256]) would leave
 * threads idle, so there k is cut into chunks of TN_K_CHUNK that run in
 * parallel into their own partial products, which are then added to C in chunk
 * order (split-k); a single chunk runs parallel over C's (narrowed) tiles. The
 * threshold is low (4 tiles: enough for the 2-core machines this was tuned on,
 * where tn_large beat split-k on every ViTamin-S shape it covers; on many
 * cores a C of few tiles leaves some idle). Which runs depends only on the
 * shape, never on the thread count. */
enum { TN_MC = 64, TN_NC = 16 * GEMM_NR, TN_KC = TRAIN_COLSUM_ROWS };
enum { TN_K_CHUNK = 4096, TN_SPLIT_BELOW_TILES = 4, TN_WAVE = 16 };

/* apack[g][k][r] = A[k0 + k][i0 + 8g + r] for the tile's rows [i0, i1), zero
 * past i1 (the micro-kernel then computes rows it does not store). Walks A row
 * by row (one 256-byte run per k) with a software prefetch PF rows ahead: the
 * rows are lda apart, usually in different pages, where the hardware
 * prefetcher does not follow. */
enum { PACK_A_PREFETCH = 8 };

/* One k row of the block: 8 floats per group, as 256-bit moves. */
__attribute__((target("avx2"))) static void pack_a_row_avx2(float *dst, size_t group_stride, const float *src,
                                                            int full_groups) {
    for (int g = 0; g < full_groups; g++)
        _mm256_store_ps(dst + (size_t)g * group_stride, _mm256_loadu_ps(src + g * GEMM_MR));
}

static void pack_a_kmajor(vt_isa isa, float *apack, const float *a, int lda, int k0, int kc, int i0, int i1) {
    int width = i1 - i0, full = width / GEMM_MR, groups = (width + GEMM_MR - 1) / GEMM_MR;
    size_t group_stride = (size_t)kc * GEMM_MR;
    for (int k = 0; k < kc; k++) {
        const float *src = a + (size_t)(k0 + k) * lda + i0;
        if (k + PACK_A_PREFETCH < kc)
            for (int j = 0; j < width; j += 16) __builtin_prefetch(src + (size_t)PACK_A_PREFETCH * lda + j);
        float *dst = apack + (size_t)k * GEMM_MR;
        int g = 0;
        if (isa == VT_ISA_AVX512) {
            pack_a_row_avx2(dst, group_stride, src, full);
            g = full;
        }
        for (; g < groups; g++) {
            int c0 = g * GEMM_MR;
            for (int r = 0; r < GEMM_MR; r++) dst[g * group_stride + r] = c0 + r < width ? src[c0 + r] : 0.0f;
        }
    }
}

/* C rows [i0, i1) × panels [p0, p1) += (or =) the packed A block (k-major
 * groups of 8 rows, kc deep) times the panels' kc rows; panel p starts at
 * panel0 + (p - p0) * panel_stride. */
static void kmajor_block(vt_isa isa, int kc, const float *apack, int i0, int i1, const float *panel0,
                         size_t panel_stride, int p0, int p1, int n, float *c, int ldc, int accumulate) {
    for (int p = p0; p < p1; p++) {
        const float *panel = panel0 + (size_t)(p - p0) * panel_stride;
        int j0 = p * GEMM_NR, nr = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
        for (int i = i0; i < i1; i += GEMM_MR) {
            int mr = i1 - i < GEMM_MR ? i1 - i : GEMM_MR;
            const float *ap = apack + (size_t)(i - i0) * kc;
            float *cp = c + (size_t)i * ldc + j0;
            if (isa == VT_ISA_AVX512)
                gemm_micro_kmajor_avx512(kc, ap, panel, cp, ldc, mr, nr, accumulate);
            else
                gemm_micro_kmajor_scalar(kc, ap, panel, cp, ldc, mr, nr, accumulate);
        }
    }
}

/* One tile: C rows [i0, i1), panels [p0, p1), all of k; packed B [n, k]. */
static void tn_tile(vt_isa isa, int i0, int i1, int p0, int p1, int n, int k, const float *a, int lda,
                    const float *packed, float *c, int ldc, int accumulate) {
    float *apack = scratch_get(1, (size_t)TN_MC * TN_KC);
    for (int k0 = 0; k0 < k; k0 += TN_KC) {
        int kc = k - k0 < TN_KC ? k - k0 : TN_KC;
        pack_a_kmajor(isa, apack, a, lda, k0, kc, i0, i1);
        kmajor_block(isa, kc, apack, i0, i1, packed + ((size_t)p0 * k + k0) * GEMM_NR, (size_t)k * GEMM_NR, p0, p1,
                     n, c, ldc, accumulate || k0 > 0);
    }
    if (k == 0 && !accumulate) /* empty sum */
        for (int i = i0; i < i1; i++) {
            int j0 = p0 * GEMM_NR, j1 = p1 * GEMM_NR < n ? p1 * GEMM_NR : n;
            memset(c + (size_t)i * ldc + j0, 0, sizeof(float) * (j1 - j0));
        }
}

/* totals[0..width) += float column sums of a packed A block (k-major groups of
 * GEMM_MR columns, kc rows), each summed over k in order. */
static void colsum_block(double *totals, const float *apack, int kc, int width) {
    for (int g = 0; g * GEMM_MR < width; g++) {
        float part[GEMM_MR] = {0};
        const float *ap = apack + (size_t)g * kc * GEMM_MR;
        for (int kk = 0; kk < kc; kk++)
            for (int r = 0; r < GEMM_MR; r++) part[r] += ap[(size_t)kk * GEMM_MR + r];
        for (int r = 0; r < GEMM_MR && g * GEMM_MR + r < width; r++) totals[g * GEMM_MR + r] += part[r];
    }
}

/* A large C (>= TN_SPLIT_BELOW_TILES tiles: the transformer's weight
 * gradients, [1152, 384] for qkv): one parallel region; each thread owns a
 * fixed run of C's tiles and walks all of k in TN_KC blocks, packing the B
 * block its tiles need into its own scratch and each A block k-major, and
 * adding every block's product onto its tiles. Its part of C stays in its L2
 * for the whole k walk, and A and B stream past once (per thread, for B).
 * Walking k in 4096-row chunks with all tiles in parallel per chunk instead
 * re-read the packed B chunk (6 MB for qkv) from memory once per row block of
 * C, 18 times per chunk, and ran at ~20% below the in-cache rate. Each
 * element still sums its k blocks in order, so the result is the same for
 * any thread count. */
/* With colsum (a Linear's bias gradient, Σ_k A[k, i]): also summed here, from
 * the packed A blocks, by the thread holding column tile 0 of each row block:
 * float sums over each TN_KC = TRAIN_COLSUM_ROWS block in row order, added in
 * double in block order, then to colsum — the bits of linear_train.c's
 * bias_gradient, without its separate pass over A. */
static void tn_large(vt_isa isa, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                     int ldc, int accumulate, float *colsum) {
    int panels = (n + GEMM_NR - 1) / GEMM_NR, mtiles = (m + TN_MC - 1) / TN_MC;
    int per_tile = TN_NC / GEMM_NR, ntiles = (panels + per_tile - 1) / per_tile;
    long tiles = (long)mtiles * ntiles;
#pragma omp parallel if (!omp_in_parallel())
    {
        int threads = omp_get_num_threads(), me = omp_get_thread_num();
        long t0 = tiles * me / threads, t1 = tiles * (me + 1) / threads;
        /* Panels this thread's tiles cover: all of them once it spans two row blocks. */
        int pmin = 0, pmax = panels;
        if (t0 < t1 && t0 / ntiles == (t1 - 1) / ntiles) {
            pmin = (int)(t0 % ntiles) * per_tile;
            pmax = (int)((t1 - 1) % ntiles) * per_tile + per_tile;
            pmax = pmax < panels ? pmax : panels;
        }
        int width = n - pmin * GEMM_NR < (pmax - pmin) * GEMM_NR ? n - pmin * GEMM_NR : (pmax - pmin) * GEMM_NR;
        float *bpack = t0 < t1 ? scratch_get(0, (size_t)(pmax - pmin) * TN_KC * GEMM_NR) : NULL;
        float *apack = t0 < t1 ? scratch_get(1, (size_t)TN_MC * TN_KC) : NULL;
        /* Row blocks whose column sums this thread owns: those whose tile 0 it holds. */
        int own0 = (int)((t0 + ntiles - 1) / ntiles), own1 = (int)((t1 + ntiles - 1) / ntiles);
        double *totals = NULL;
        if (colsum && own0 < own1) {
            totals = (double *)scratch_get(2, 2 * (size_t)(own1 - own0) * TN_MC);
            memset(totals, 0, sizeof(double) * (size_t)(own1 - own0) * TN_MC);
        }
        for (int k0 = 0; k0 < k && t0 < t1; k0 += TN_KC) {
            int kc = k - k0 < TN_KC ? k - k0 : TN_KC;
            pack_b_kn(bpack, b + (size_t)k0 * ldb + (size_t)pmin * GEMM_NR, width, kc, ldb);
            int packed_mt = -1;
            for (long t = t0; t < t1; t++) {
                int mt = (int)(t / ntiles), nt = (int)(t % ntiles);
                int i0 = mt * TN_MC, i1 = i0 + TN_MC < m ? i0 + TN_MC : m;
                if (mt != packed_mt) {
                    pack_a_kmajor(isa, apack, a, lda, k0, kc, i0, i1);
                    packed_mt = mt;
                    if (totals && mt >= own0 && mt < own1)
                        colsum_block(totals + (size_t)(mt - own0) * TN_MC, apack, kc, i1 - i0);
                }
                int p0 = nt * per_tile, p1 = p0 + per_tile < panels ? p0 + per_tile : panels;
                kmajor_block(isa, kc, apack, i0, i1, bpack + (size_t)(p0 - pmin) * kc * GEMM_NR,
                             (size_t)kc * GEMM_NR, p0, p1, n, c, ldc, accumulate || k0 > 0);
            }
        }
        if (totals) /* each row block's sums belong to one thread: no two write the same element */
            for (int mt = own0; mt < own1; mt++)
                for (int i = mt * TN_MC; i < m && i < mt * TN_MC + TN_MC; i++)
                    colsum[i] += (float)totals[(size_t)(mt - own0) * TN_MC + (i - mt * TN_MC)];
    }
    if (k == 0 && !accumulate) /* empty sum */
        for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * n);
}

/* Output tiles at full width: decides split-k, from the shape alone. */
static long tn_tiles(int m, int n) { return (long)((m + TN_MC - 1) / TN_MC) * ((n + TN_NC - 1) / TN_NC); }

/* One k-chunk: pack B [kc, n], then all tiles (in parallel outside a parallel
 * region). Tiles are narrowed below TN_NC when C has few rows (a conv weight
 * gradient [64, 576] would otherwise be one 16-panel tile and one 2-panel
 * tile); how C is tiled does not change any sum. */
static void tn_chunk(vt_isa isa, int m, int n, int kc, const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc, int accumulate) {
    float *packed = scratch_get(0, gemm_packed_floats(n, kc));
    pack_b_kn(packed, b, n, kc, ldb);
    int panels = (n + GEMM_NR - 1) / GEMM_NR, mtiles = (m + TN_MC - 1) / TN_MC;
    int want = omp_in_parallel() ? 1 : 4 * omp_get_max_threads(); /* tiles for load balance */
    int per_tile = (panels * mtiles + want - 1) / want;
    per_tile = per_tile < 1 ? 1 : per_tile > TN_NC / GEMM_NR ? TN_NC / GEMM_NR : per_tile;
    int ntiles = (panels + per_tile - 1) / per_tile;
    long tiles = (long)mtiles * ntiles;
#pragma omp parallel for schedule(static) if (tiles > 1 && !omp_in_parallel())
    for (long t = 0; t < tiles; t++) {
        int mt = (int)(t / ntiles), nt = (int)(t % ntiles);
        int i0 = mt * TN_MC, i1 = i0 + TN_MC < m ? i0 + TN_MC : m;
        int p0 = nt * per_tile, p1 = p0 + per_tile < panels ? p0 + per_tile : panels;
        tn_tile(isa, i0, i1, p0, p1, n, kc, a, lda, packed, c, ldc, accumulate);
    }
}

int tmat_tn_colsum(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                   int accumulate, float *colsum) {
    if (m <= 0 || n <= 0 || tn_tiles(m, n) < TN_SPLIT_BELOW_TILES) {
        tmat_tn(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
        return 0;
    }
    tn_large(train_isa(), m, n, k, a, lda, b, ldb, c, ldc, accumulate, colsum);
    return 1;
}

void tmat_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
             int accumulate) {
    if (m <= 0 || n <= 0) return;
    vt_isa isa = train_isa();
    int chunks = k <= TN_K_CHUNK ? 1 : (k + TN_K_CHUNK - 1) / TN_K_CHUNK;
    if (tn_tiles(m, n) >= TN_SPLIT_BELOW_TILES) {
        tn_large(isa, m, n, k, a, lda, b, ldb, c, ldc, accumulate, NULL);
        return;
    }
    if (chunks == 1) {
        for (int ch = 0; ch < chunks; ch++) {
            int k0 = ch * TN_K_CHUNK, kc = k - k0 < TN_K_CHUNK ? k - k0 : TN_K_CHUNK;
            tn_chunk(isa, m, n, kc, a + (size_t)k0 * lda, lda, b + (size_t)k0 * ldb, ldb, c, ldc,
                     accumulate || ch > 0);
        }
        return;
    }
    /* Split-k in waves of TN_WAVE chunks; the partials live in the calling
     * thread's slot-2 scratch, each chunk's packed copies in its thread's
     * slots 0/1. */
    size_t mn = (size_t)m * n;
    float *partials = scratch_get(2, TN_WAVE * mn);
    if (!accumulate)
        for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * n);
    for (int w0 = 0; w0 < chunks; w0 += TN_WAVE) {
        int wn = chunks - w0 < TN_WAVE ? chunks - w0 : TN_WAVE;
#pragma omp parallel for schedule(dynamic, 1) if (!omp_in_parallel())
        for (int j = 0; j < wn; j++) {
            int k0 = (w0 + j) * TN_K_CHUNK, kc = k - k0 < TN_K_CHUNK ? k - k0 : TN_K_CHUNK;
            tn_chunk(isa, m, n, kc, a + (size_t)k0 * lda, lda, b + (size_t)k0 * ldb, ldb, partials + j * mn, n, 0);
        }
        /* C += partial_0 + partial_1 + ..., one add at a time, in chunk order. */
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && mn * wn >= (1u << 16))
        for (int i = 0; i < m; i++) {
            float *crow = c + (size_t)i * ldc;
            for (int j = 0; j < wn; j++) {
                const float *prow = partials + j * mn + (size_t)i * n;
                for (int col = 0; col < n; col++) crow[col] += prow[col];
            }
        }
    }
}
