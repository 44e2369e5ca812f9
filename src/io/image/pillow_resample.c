/* Pillow-exact resizing; see pillow_resample.h for the scope.
 *
 * The arithmetic below mirrors Pillow's C code step by step (function names in
 * the comments refer to src/libImaging/Resample.c and Geometry.c). Changing the
 * order of any floating-point operation here changes output bytes. */
#include "io/image/pillow_resample.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Resample.c: 8-bit images use 22-bit fixed-point weights (32 - 8 - 2 bits),
 * accumulators start at one half for rounding. */
#define PRECISION_BITS (32 - 8 - 2)
#define BICUBIC_SUPPORT 2.0

size_t resample_sample_size(resample_sample_type type) {
    switch (type) {
    case RESAMPLE_U8: return 1;
    case RESAMPLE_U16: return 2;
    case RESAMPLE_I32: return 4;
    }
    return 1;
}

double pillow_bicubic_filter(double x) {
    /* Keys' cubic convolution with a = -0.5, written exactly as Resample.c's
     * bicubic_filter so the doubles round the same way. */
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* ------------------------------------------------------------------------- */
/* Filter coefficients for one axis                                          */
/* ------------------------------------------------------------------------- */

/* The taps of output pixels [first, first + count) of an in_size -> out_size
 * resize along one axis. */
typedef struct {
    int ksize;        /* taps reserved per output pixel */
    int count;        /* output pixels described */
    int *bounds;      /* [count][2]: first input index, number of taps */
    double *weights;  /* [count][ksize], normalised to sum 1 */
    int32_t *fixed;   /* [count][ksize], weights in 22-bit fixed point */
} axis_coefficients;

static void axis_coefficients_free(axis_coefficients *c) {
    free(c->bounds);
    free(c->weights);
    free(c->fixed);
    memset(c, 0, sizeof *c);
}

/* Resample.c: precompute_coeffs, restricted to a window of output pixels. */
static vt_status axis_coefficients_compute(int in_size, int out_size, int first, int count,
                                           axis_coefficients *c, vt_error *err) {
    memset(c, 0, sizeof *c);
    /* Pillow passes the source box as floats, so the scale is computed from
     * (float)in_size; identical for every size below 2^24. */
    double scale = (double)(float)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale;
    double ceil_support = ceil(support);
    if (ceil_support > (double)(INT_MAX / 4)) {
        return vt_fail(err, VT_ERR_UNSUPPORTED, "resize %d -> %d: filter too wide", in_size,
                       out_size);
    }
    int ksize = (int)ceil_support * 2 + 1;
    size_t taps = (size_t)count * (size_t)ksize;
    if (taps / (size_t)ksize != (size_t)count || taps > SIZE_MAX / sizeof(double)) {
        return vt_fail(err, VT_ERR_NOMEM, "resize %d -> %d: coefficient table too large",
                       in_size, out_size);
    }
    c->ksize = ksize;
    c->count = count;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)count);
    c->weights = calloc(taps, sizeof(double));
    if (!c->bounds || !c->weights) {
        axis_coefficients_free(c);
        return vt_fail(err, VT_ERR_NOMEM, "resize %d -> %d: out of memory for coefficients",
                       in_size, out_size);
    }
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        /* "Round the value": (int) truncates towards zero, then clamp. */
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = c->weights + (size_t)i * ksize;
        for (int x = 0; x < xmax; x++) {
            double w = pillow_bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++) {
            if (ww != 0.0) k[x] /= ww;
        }
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    return VT_OK;
}

/* Resample.c: normalize_coeffs_8bpc, rounding half away from zero. */
static vt_status axis_coefficients_make_fixed(axis_coefficients *c, vt_error *err) {
    size_t taps = (size_t)c->count * (size_t)c->ksize;
    c->fixed = malloc(taps * sizeof(int32_t));
    if (!c->fixed) return vt_fail(err, VT_ERR_NOMEM, "resize: out of memory for coefficients");
    for (size_t i = 0; i < taps; i++) {
        double w = c->weights[i];
        c->fixed[i] = w < 0 ? (int32_t)(-0.5 + w * (1 << PRECISION_BITS))
                            : (int32_t)(0.5 + w * (1 << PRECISION_BITS));
    }
    return VT_OK;
}

/* ------------------------------------------------------------------------- */
/* Sample conversions, one per Pillow code path                               */
/* ------------------------------------------------------------------------- */

/* Resample.c: clip8 — the fixed-point sum back to a byte, saturating. */
static inline uint8_t clip8(int32_t sum) {
    int32_t v = sum >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Resample.c: ROUND_UP — half away from zero on the double sum. */
static inline double round_half_away(double sum) {
    return sum >= 0.0 ? sum + 0.5F : sum - 0.5F;
}

static inline double load_wide(const void *pixels, resample_sample_type type, size_t index) {
    if (type == RESAMPLE_U16) return ((const uint16_t *)pixels)[index];
    return ((const int32_t *)pixels)[index];
}

/* Stores a double sum in I;16 (ImagingResample*_16bpc rounds, then saturates to
 * 0..65535: checked against Pillow 13 on overshooting steps) or I (32bpc path:
 * (int) of the rounded sum; Pillow leaves out-of-range values undefined, we
 * saturate). */
static inline void store_wide(void *pixels, resample_sample_type type, size_t index,
                              double sum) {
    double r = round_half_away(sum);
    if (type == RESAMPLE_U16) {
        int32_t v = r <= 0.0 ? 0 : r >= 65535.0 ? 65535 : (int32_t)r;
        ((uint16_t *)pixels)[index] = (uint16_t)v;
    } else {
        int32_t v = r <= (double)INT32_MIN ? INT32_MIN
                    : r >= (double)INT32_MAX ? INT32_MAX
                                              : (int32_t)r;
        ((int32_t *)pixels)[index] = v;
    }
}

/* ------------------------------------------------------------------------- */
/* The two passes                                                             */
/* ------------------------------------------------------------------------- */

/* The passes read from a packed buffer `src` of `src_width` pixels per row
 * (`channels` samples each): either the input image or the intermediate result
 * of the other pass. */

/* Horizontal pass (ImagingResampleHorizontal_*) over `rows` rows of `src`
 * starting at `first_row`; src column 0 is input column `first_column` (the
 * coefficients' bounds are in input columns). Writes rows x c->count pixels. */
static void horizontal_pass(const void *src, resample_sample_type type, int src_width,
                            int channels, int first_row, int rows, int first_column,
                            const axis_coefficients *c, void *dst) {
    const int ch = channels;
    for (int y = 0; y < rows; y++) {
        size_t src_row = (size_t)(first_row + y) * (size_t)src_width * ch;
        size_t dst_row = (size_t)y * (size_t)c->count * ch;
        for (int xx = 0; xx < c->count; xx++) {
            int xmin = c->bounds[2 * xx] - first_column, taps = c->bounds[2 * xx + 1];
            size_t k0 = (size_t)xx * c->ksize;
            for (int b = 0; b < ch; b++) {
                size_t in0 = src_row + (size_t)xmin * ch + b;
                size_t out = dst_row + (size_t)xx * ch + b;
                if (type == RESAMPLE_U8) {
                    const uint8_t *s = (const uint8_t *)src + in0;
                    const int32_t *k = c->fixed + k0;
                    int32_t ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < taps; x++) ss += s[(size_t)x * ch] * k[x];
                    ((uint8_t *)dst)[out] = clip8(ss);
                } else {
                    const double *k = c->weights + k0;
                    double ss = 0.0;
                    for (int x = 0; x < taps; x++)
                        ss += load_wide(src, type, in0 + (size_t)x * ch) * k[x];
                    store_wide(dst, type, out, ss);
                }
            }
        }
    }
}

/* Vertical pass (ImagingResampleVertical_*) over columns [left, left + width)
 * of `src`; src row 0 is input row `first_row` (the coefficients' bounds are in
 * input rows). Writes c->count rows of `width` pixels. */
static void vertical_pass(const void *src, resample_sample_type type, int src_width,
                          int channels, int left, int width, int first_row,
                          const axis_coefficients *c, void *dst) {
    const size_t src_row = (size_t)src_width * channels;
    const size_t dst_row = (size_t)width * channels;
    for (int yy = 0; yy < c->count; yy++) {
        int ymin = c->bounds[2 * yy] - first_row, taps = c->bounds[2 * yy + 1];
        size_t k0 = (size_t)yy * c->ksize;
        for (size_t i = 0; i < dst_row; i++) {
            size_t in0 = (size_t)ymin * src_row + (size_t)left * channels + i;
            size_t out = (size_t)yy * dst_row + i;
            if (type == RESAMPLE_U8) {
                const uint8_t *s = (const uint8_t *)src + in0;
                const int32_t *k = c->fixed + k0;
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int y = 0; y < taps; y++) ss += s[(size_t)y * src_row] * k[y];
                ((uint8_t *)dst)[out] = clip8(ss);
            } else {
                const double *k = c->weights + k0;
                double ss = 0.0;
                for (int y = 0; y < taps; y++)
                    ss += load_wide(src, type, in0 + (size_t)y * src_row) * k[y];
                store_wide(dst, type, out, ss);
            }
        }
    }
}

/* Copies columns [left, left + width) of input rows [first_row, first_row + rows)
 * into a packed buffer: the "no resize at all" case. */
static void copy_columns(const resample_image *in, int first_row, int rows, int left, int width,
                         void *dst) {
    size_t px = resample_sample_size(in->type) * in->channels;
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = (const uint8_t *)in->pixels +
                           ((size_t)(first_row + y) * in->width + left) * px;
        memcpy((uint8_t *)dst + (size_t)y * width * px, s, (size_t)width * px);
    }
}

/* ------------------------------------------------------------------------- */
/* Entry points                                                               */
/* ------------------------------------------------------------------------- */

static vt_status check_arguments(const resample_image *in, int out_width, int out_height,
                                 resample_window w, const resample_image *out, vt_error *err) {
    if (!in || !out || !in->pixels || !out->pixels)
        return vt_fail(err, VT_ERR_ARGUMENT, "resize: NULL image");
    if (in->width < 1 || in->height < 1 || in->channels < 1 || in->channels > 4)
        return vt_fail(err, VT_ERR_ARGUMENT, "resize: bad input image %dx%d with %d channels",
                       in->width, in->height, in->channels);
    if (out_width < 1 || out_height < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "resize: bad output size %dx%d", out_width,
                       out_height);
    if (w.width < 1 || w.height < 1 || w.left < 0 || w.top < 0 ||
        w.left > out_width - w.width || w.top > out_height - w.height)
        return vt_fail(err, VT_ERR_ARGUMENT,
                       "resize: window %dx%d at (%d,%d) is not inside the %dx%d output",
                       w.width, w.height, w.left, w.top, out_width, out_height);
    return VT_OK;
}

static void set_output_shape(const resample_image *in, resample_window w, resample_image *out) {
    out->width = w.width;
    out->height = w.height;
    out->channels = in->channels;
    out->type = in->type;
}

int pillow_resize_vertical_first(int in_width, int in_height, int out_width, int out_height) {
    /* 64-bit: the doubled width difference must not overflow. */
    return out_height < in_height &&
           (long long)in_height - out_height > 2 * ((long long)in_width - out_width);
}

static vt_status coefficients_for(const resample_image *in, int in_size, int out_size, int first,
                                  int count, axis_coefficients *c, vt_error *err) {
    vt_status st = axis_coefficients_compute(in_size, out_size, first, count, c, err);
    if (st == VT_OK && in->type == RESAMPLE_U8) st = axis_coefficients_make_fixed(c, err);
    return st;
}

/* Resample.c: ImagingResampleInner — two separable passes, each rounding to the
 * sample type, so their order matters: vertical first when
 * pillow_resize_vertical_first() says so, horizontal first otherwise. The first
 * pass only covers the input rows (or columns) the second pass reads; an axis
 * whose size does not change is not filtered at all. */
vt_status pillow_resize_bicubic(const resample_image *in, int out_width, int out_height,
                                resample_window window, resample_image *out, vt_error *err) {
    vt_status st = check_arguments(in, out_width, out_height, window, out, err);
    if (st != VT_OK) return st;
    set_output_shape(in, window, out);
    const int need_horizontal = out_width != in->width;
    const int need_vertical = out_height != in->height;
    const size_t px = resample_sample_size(in->type) * in->channels;

    if (!need_horizontal && !need_vertical) {
        copy_columns(in, window.top, window.height, window.left, window.width, out->pixels);
        return VT_OK;
    }

    axis_coefficients horizontal = {0}, vertical = {0};
    void *temp = NULL;
    if (need_vertical) {
        st = coefficients_for(in, in->height, out_height, window.top, window.height, &vertical,
                              err);
        if (st != VT_OK) goto done;
    }
    if (need_horizontal) {
        st = coefficients_for(in, in->width, out_width, window.left, window.width, &horizontal,
                              err);
        if (st != VT_OK) goto done;
    }

    if (!need_horizontal) { /* vertical only, on the window's columns */
        vertical_pass(in->pixels, in->type, in->width, in->channels, window.left, window.width, 0,
                      &vertical, out->pixels);
    } else if (!need_vertical) { /* horizontal only, on the window's rows */
        horizontal_pass(in->pixels, in->type, in->width, in->channels, window.top, window.height,
                        0, &horizontal, out->pixels);
    } else if (pillow_resize_vertical_first(in->width, in->height, out_width, out_height)) {
        /* Vertical pass over the input columns the horizontal pass reads. */
        int last = window.width - 1;
        int first_column = horizontal.bounds[0];
        int columns = horizontal.bounds[2 * last] + horizontal.bounds[2 * last + 1] - first_column;
        temp = malloc((size_t)window.height * columns * px);
        if (!temp) {
            st = vt_fail(err, VT_ERR_NOMEM, "resize: out of memory for a %dx%d intermediate",
                         columns, window.height);
            goto done;
        }
        vertical_pass(in->pixels, in->type, in->width, in->channels, first_column, columns, 0,
                      &vertical, temp);
        horizontal_pass(temp, in->type, columns, in->channels, 0, window.height, first_column,
                        &horizontal, out->pixels);
    } else {
        /* Horizontal pass over the input rows the vertical pass reads. */
        int last = window.height - 1;
        int first_row = vertical.bounds[0];
        int rows = vertical.bounds[2 * last] + vertical.bounds[2 * last + 1] - first_row;
        temp = malloc((size_t)rows * window.width * px);
        if (!temp) {
            st = vt_fail(err, VT_ERR_NOMEM, "resize: out of memory for a %dx%d intermediate",
                         window.width, rows);
            goto done;
        }
        horizontal_pass(in->pixels, in->type, in->width, in->channels, first_row, rows, 0,
                        &horizontal, temp);
        vertical_pass(temp, in->type, window.width, in->channels, 0, window.width, first_row,
                      &vertical, out->pixels);
    }

done:
    free(temp);
    axis_coefficients_free(&horizontal);
    axis_coefficients_free(&vertical);
    return st;
}

/* Geometry.c: ImagingScaleAffine's source index for each output index. Pillow
 * *accumulates* the position (xo += a[0]) instead of computing (i + 0.5) * scale,
 * and the accumulated double picks a different source pixel in a few percent of
 * sizes, so we accumulate too. -1 marks an index outside the source (left 0). */
static int *nearest_source_indices(int in_size, int out_size, int first, int count) {
    int *index = malloc(sizeof(int) * (size_t)count);
    if (!index) return NULL;
    double step = (double)(float)in_size / out_size; /* a[0] = (box[2]-box[0]) / xsize */
    double position = 0.0 + step * 0.5;               /* xo = a[2] + a[0] * 0.5 */
    for (int x = 0; x < first + count; x++) {
        if (x >= first) {
            /* COORD(v): -1 for negative, else truncation */
            int source = position < 0.0 ? -1 : (int)position;
            index[x - first] = (source >= 0 && source < in_size) ? source : -1;
        }
        position += step;
    }
    return index;
}

vt_status pillow_resize_nearest(const resample_image *in, int out_width, int out_height,
                                resample_window window, resample_image *out, vt_error *err) {
    vt_status st = check_arguments(in, out_width, out_height, window, out, err);
    if (st != VT_OK) return st;
    set_output_shape(in, window, out);
    int *columns = nearest_source_indices(in->width, out_width, window.left, window.width);
    int *rows = nearest_source_indices(in->height, out_height, window.top, window.height);
    if (!columns || !rows) {
        free(columns);
        free(rows);
        return vt_fail(err, VT_ERR_NOMEM, "resize: out of memory for index tables");
    }
    size_t px = resample_sample_size(in->type) * in->channels;
    const uint8_t *src = in->pixels;
    uint8_t *dst = out->pixels;
    for (int y = 0; y < window.height; y++) {
        for (int x = 0; x < window.width; x++) {
            uint8_t *o = dst + ((size_t)y * window.width + x) * px;
            /* resize uses fill=1: pixels that map outside the source are zero */
            if (rows[y] < 0 || columns[x] < 0)
                memset(o, 0, px);
            else
                memcpy(o, src + ((size_t)rows[y] * in->width + columns[x]) * px, px);
        }
    }
    free(columns);
    free(rows);
    return VT_OK;
}
