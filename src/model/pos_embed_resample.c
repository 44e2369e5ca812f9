/* Antialiased bicubic resampling of the positional-embedding grid (see
 * pos_embed_resample.h). torch's upsample_bicubic2d_aa computes the same
 * window and weights as Pillow's precompute_coeffs, so the filter is
 * Pillow's (io/image/pillow_resample.h); torch does it in float, this in
 * double: the two differ by float rounding only. */
#include "model/pos_embed_resample.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/image/pillow_resample.h"

/* out[o] = Σ_k w(o, k) · in[k·stride] along one axis of `n_in` → `n_out`
 * samples, for `lanes` interleaved lanes (the embedding width). */
static void resample_axis(const double *in, int n_in, int n_out, size_t stride, size_t lanes, size_t outer,
                          size_t outer_in, size_t outer_out, double *out) {
    double scale = (double)n_in / n_out;
    double filterscale = scale < 1.0 ? 1.0 : scale, support = 2.0 * filterscale; /* bicubic: 4 taps */
    for (int o = 0; o < n_out; o++) {
        double center = (o + 0.5) * scale, weights[64], total = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        for (int k = lo; k < hi; k++) total += weights[k - lo] = pillow_bicubic_filter((k - center + 0.5) / filterscale);
        for (size_t r = 0; r < outer; r++)
            for (size_t l = 0; l < lanes; l++) {
                double sum = 0.0;
                for (int k = lo; k < hi; k++) sum += weights[k - lo] * in[r * outer_in + (size_t)k * stride + l];
                out[r * outer_out + (size_t)o * stride + l] = total != 0.0 ? sum / total : 0.0;
            }
    }
}

vt_status pos_embed_resample(const float *in, int from, int to, int width, float *out, vt_error *err) {
    /* A shrink by s takes 4s + 1 taps; the weights buffer holds 64. */
    if (from > 15 * to)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "resampling the positional grid from %dx%d down to %dx%d (over 15x) "
                       "is not supported", from, from, to, to);
    size_t w = (size_t)width;
    double *grid = malloc((size_t)from * from * w * sizeof *grid);
    double *rows = malloc((size_t)from * to * w * sizeof *rows);
    double *done = malloc((size_t)to * to * w * sizeof *done);
    if (!grid || !rows || !done) {
        free(grid), free(rows), free(done);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory resampling the positional embedding");
    }
    for (size_t i = 0; i < (size_t)from * from * w; i++) grid[i] = in[w + i];
    /* Width first: [from, from, W] → [from, to, W], then height → [to, to, W]. */
    resample_axis(grid, from, to, w, w, (size_t)from, (size_t)from * w, (size_t)to * w, rows);
    resample_axis(rows, from, to, (size_t)to * w, (size_t)to * w, 1, 0, 0, done);
    memcpy(out, in, w * sizeof *out); /* the class token's row */
    for (size_t i = 0; i < (size_t)to * to * w; i++) out[w + i] = (float)done[i];
    free(grid);
    free(rows);
    free(done);
    return VT_OK;
}
