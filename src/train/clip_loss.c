/* open_clip ClipLoss (single process) with its gradient, including the
 * F.normalize of both towers' outputs and d/d logit_scale through exp().
 *
 * With Î, T̂ the normalised rows, L = Î·T̂ᵀ (cosines), s = exp(logit_scale) and
 * logits Z = s·L:
 *   loss = 1/(2n) · Σ_i [lse_j Z_ij − Z_ii] + 1/(2n) · Σ_j [lse_i Z_ij − Z_jj]
 *   dZ_ij = (softmax_row(Z)_ij + softmax_col(Z)_ij − 2·δ_ij) / (2n)
 *   dÎ = s·dZ·T̂,  dT̂ = s·dZᵀ·Î,  d logit_scale = s · Σ_ij dZ_ij·L_ij
 *   x̂ = x / max(‖x‖, 1e-12):  dx = (dx̂ − x̂·(x̂·dx̂)) / ‖x‖   (dx̂ / 1e-12 when clamped).
 * Everything runs in double: the matrices are n×n and n×e with n the batch, so
 * the cost is small next to the towers, and the log-sum-exp needs the range.
 * Rows are split over threads; every sum has a fixed order, so the result does
 * not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/simd.h"
#include "train/ops.h"
#include "core/scratch.h"

static const double NORMALIZE_EPS = 1e-12; /* F.normalize's default */

static int run_parallel(size_t work) { return work >= 65536 && !omp_in_parallel(); }

static _Thread_local vt_scratch loss_scratch;

VT_CLONES static double dot_double(const double *a, const double *b, int n) {
    double lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += a[i + l] * b[i + l];
    double s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < 8; l++) s += lane[l];
    return s;
}

/* acc[e] += alpha · x[e] */
VT_CLONES static void axpy_double(double *restrict acc, double alpha, const double *restrict x, int n) {
    for (int i = 0; i < n; i++) acc[i] += alpha * x[i];
}

/* unit [n, e] = x / max(‖x‖, eps) row by row; norm[n] keeps ‖x‖. */
static void normalize_rows(double *unit, double *norm, const float *x, int n, int e) {
    for (int i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * e;
        double ss = 0;
        for (int k = 0; k < e; k++) ss += (double)xr[k] * xr[k];
        norm[i] = sqrt(ss);
        double inv = 1.0 / (norm[i] > NORMALIZE_EPS ? norm[i] : NORMALIZE_EPS);
        for (int k = 0; k < e; k++) unit[(size_t)i * e + k] = xr[k] * inv;
    }
}

/* dx [e] from the gradient w.r.t. the normalised row (F.normalize backward). */
static void normalize_backward_row(float *dx, const double *dunit, const double *unit, double norm, int e) {
    if (norm >= NORMALIZE_EPS) {
        double proj = dot_double(unit, dunit, e);
        for (int k = 0; k < e; k++) dx[k] = (float)((dunit[k] - unit[k] * proj) / norm);
    } else {
        /* The norm was clamped to eps: a constant, so no gradient flows through it. */
        for (int k = 0; k < e; k++) dx[k] = (float)(dunit[k] / NORMALIZE_EPS);
    }
}

/* log Σ_k exp(v[k·stride]) over n values, max-shifted. */
static double log_sum_exp(const double *v, int n, size_t stride) {
    double mx = v[0];
    for (int k = 1; k < n; k++) mx = v[(size_t)k * stride] > mx ? v[(size_t)k * stride] : mx;
    double s = 0;
    for (int k = 0; k < n; k++) s += exp(v[(size_t)k * stride] - mx);
    return mx + log(s);
}

double clip_loss_forward_backward(const float *image, const float *text, int n, int e, float logit_scale,
                                  float *dimage, float *dtext, float *dlogit_scale, float *logits_out) {
    return clip_loss_rows_forward_backward(image, text, n, e, 0, n, logit_scale, dimage, dtext, dlogit_scale,
                                           logits_out);
}

/* With only the rows R = [row0, row0 + rows) as queries (open_clip's
 * local_loss on a rank holding those samples):
 *   loss = 1/(2|R|) · [Σ_{i∈R} (lse_j Z_ij − Z_ii) + Σ_{j∈R} (lse_i Z_ij − Z_jj)]
 *   dZ_ij = ([i∈R]·(softmax_row(Z)_ij − δ_ij) + [j∈R]·(softmax_col(Z)_ij − δ_ij)) / (2|R|)
 * and every row of both feature sets may receive gradient (through the columns). */
double clip_loss_rows_forward_backward(const float *image, const float *text, int n, int e, int row0, int rows,
                                       float logit_scale, float *dimage, float *dtext, float *dlogit_scale,
                                       float *logits_out) {
    return clip_loss_general(image, text, n, e, row0, rows, 0, logit_scale, dimage, dtext, dlogit_scale, logits_out);
}

/* queries_only: the image rows get only the gradient of their own (image→text)
 * cross-entropy terms and the text rows only that of theirs — open_clip's
 * local_loss without gather_with_grad, where the gathered "all" features are
 * constants and only the local query rows carry gradient. */
double clip_loss_general(const float *image, const float *text, int n, int e, int row0, int rows, int queries_only,
                         float logit_scale, float *dimage, float *dtext, float *dlogit_scale, float *logits_out) {
    size_t ne = (size_t)n * e, nn = (size_t)n * n;
    /* One grow-only block for all temporaries (n·n doubles each for the
     * logits: 130 MB at a global batch of 4096, faulted in afresh every step
     * if taken from malloc). */
    double *block = vt_scratch_get(&loss_scratch, sizeof(double) * (3 * ne + 3 * nn + 5 * (size_t)n));
    double *img = block, *txt = img + ne, *dunit = txt + ne, *cosine = dunit + ne, *logits = cosine + nn;
    double *dz_col_block = logits + nn, *img_norm = dz_col_block + nn, *txt_norm = img_norm + n;
    double *lse_row = txt_norm + n, *lse_col = lse_row + n, *scale_grad_row = lse_col + n;
    int parallel = run_parallel(nn * e);
    double s = exp((double)logit_scale);

    normalize_rows(img, img_norm, image, n, e);
    normalize_rows(txt, txt_norm, text, n, e);
#pragma omp parallel for schedule(static) if (parallel)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            cosine[(size_t)i * n + j] = dot_double(img + (size_t)i * e, txt + (size_t)j * e, e);
            logits[(size_t)i * n + j] = s * cosine[(size_t)i * n + j];
        }
    if (logits_out)
        for (size_t k = 0; k < nn; k++) logits_out[k] = (float)logits[k];

    double loss = 0;
    for (int i = row0; i < row0 + rows; i++) {
        lse_row[i] = log_sum_exp(logits + (size_t)i * n, n, 1);    /* image i against every text */
        lse_col[i] = log_sum_exp(logits + i, n, (size_t)n);        /* text i against every image */
        loss += lse_row[i] + lse_col[i] - 2.0 * logits[(size_t)i * n + i];
    }
    loss /= 2.0 * rows;

    /* dZ overwrites `logits` (and with queries_only its row and column parts
     * go to `cosine` and `dz_col`); the row partials of Σ dZ·L are summed in
     * row order below. */
    double *dz_col = queries_only ? dz_col_block : NULL;
#pragma omp parallel for schedule(static) if (parallel)
    for (int i = 0; i < n; i++) {
        double acc = 0;
        for (int j = 0; j < n; j++) {
            double z = logits[(size_t)i * n + j];
            int in_i = i >= row0 && i < row0 + rows, in_j = j >= row0 && j < row0 + rows;
            double row_part = (in_i ? exp(z - lse_row[i]) - (i == j) : 0.0) / (2.0 * rows);
            double col_part = (in_j ? exp(z - lse_col[j]) - (i == j) : 0.0) / (2.0 * rows);
            double dz = row_part + col_part;
            logits[(size_t)i * n + j] = dz;
            acc += dz * cosine[(size_t)i * n + j];
            if (queries_only) {
                cosine[(size_t)i * n + j] = row_part;
                dz_col[(size_t)i * n + j] = col_part;
            }
        }
        scale_grad_row[i] = acc;
    }
    double ds = 0;
    for (int i = 0; i < n; i++) ds += scale_grad_row[i];
    if (dlogit_scale) *dlogit_scale = (float)(ds * s);
    const double *dz = logits;
    const double *dz_image = queries_only ? cosine : dz, *dz_text = queries_only ? dz_col : dz;

    if (dimage) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int i = 0; i < n; i++) {
            double *d = dunit + (size_t)i * e;
            for (int k = 0; k < e; k++) d[k] = 0;
            for (int j = 0; j < n; j++) axpy_double(d, s * dz_image[(size_t)i * n + j], txt + (size_t)j * e, e);
            normalize_backward_row(dimage + (size_t)i * e, d, img + (size_t)i * e, img_norm[i], e);
        }
    }
    if (dtext) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int j = 0; j < n; j++) {
            double *d = dunit + (size_t)j * e;
            for (int k = 0; k < e; k++) d[k] = 0;
            for (int i = 0; i < n; i++) axpy_double(d, s * dz_text[(size_t)i * n + j], img + (size_t)i * e, e);
            normalize_backward_row(dtext + (size_t)j * e, d, txt + (size_t)j * e, txt_norm[j], e);
        }
    }
    return loss;
}
