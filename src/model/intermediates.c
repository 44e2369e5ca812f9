/* Intermediate outputs and dense embeddings of the image tower
 * (include/vitamin.h): one forward pass with a trace observer that copies
 * the asked-for layers out, so they are exactly what the encoder computes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/norm.h"
#include "model/forward.h"

/* A layer id with a negative block index made absolute; -1 if invalid. */
static int resolve_layer(const vt_model *m, int layer) {
    int depth = m->cfg.depth;
    if (layer >= VT_LAYER_STEM && layer <= VT_LAYER_STAGE2) return m->cfg.image_tower == VT_TOWER_VIT ? -1 : layer;
    if (layer < 0) layer += depth;
    return layer >= 0 && layer < depth ? layer : -1;
}

vt_status vt_image_layer_shape(const vt_model *m, int layer, int n, int *ndim, int64_t shape[4], vt_error *err) {
    if (!m || !ndim || !shape || n < 0) return vt_fail(err, VT_ERR_ARGUMENT, "vt_image_layer_shape: bad arguments");
    if (m->cfg.image_tower == VT_TOWER_CONVNEXT)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: intermediate outputs and dense features are not available for "
                       "ConvNeXt towers yet (only the embeddings are)", m->cfg.name);
    int l = resolve_layer(m, layer);
    if (l < 0) {
        if (layer >= VT_LAYER_STEM && layer <= VT_LAYER_STAGE2)
            return vt_fail(err, VT_ERR_ARGUMENT, "%s is a ViT: it has no conv stem or MBConv stages (layer %d)",
                           m->cfg.name, layer);
        return vt_fail(err, VT_ERR_ARGUMENT, "layer %d: %s has %d transformer blocks (0..%d, or -1..-%d from the end)",
                       layer, m->cfg.name, m->cfg.depth, m->cfg.depth - 1, m->cfg.depth);
    }
    const vt_model_config *c = &m->cfg;
    shape[0] = n;
    if (l >= VT_LAYER_STEM) {
        /* each of stem, stage 1 and stage 2 opens with a 3x3 stride-2 conv,
         * padding 1: ceil(side / 2) */
        int k = l - VT_LAYER_STEM, side = c->image_size;
        for (int h = 0; h <= k; h++) side = (side + 1) / 2;
        *ndim = 4;
        shape[1] = k == 0 ? c->stem_width : c->stage_widths[k - 1];
        shape[2] = shape[3] = side;
        return VT_OK;
    }
    int grid = vt_config_token_grid(c);
    *ndim = 3;
    shape[1] = (int64_t)grid * grid + (c->image_tower == VT_TOWER_VIT);
    shape[2] = c->width;
    shape[3] = 0;
    return VT_OK;
}

typedef struct {
    int count;
    const int *layers;     /* resolved */
    float *const *out;
    size_t *written;       /* floats written per request */
} capture;

static const char *layer_name(int layer, char *buf, size_t size) {
    if (layer == VT_LAYER_STEM) return "stem";
    if (layer == VT_LAYER_STAGE1) return "stage1";
    if (layer == VT_LAYER_STAGE2) return "stage2";
    snprintf(buf, size, "block%d", layer);
    return buf;
}

static void capture_layers(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    capture *cap = user;
    for (int k = 0; k < cap->count; k++) {
        char buf[32];
        if (strcmp(name, layer_name(cap->layers[k], buf, sizeof buf))) continue;
        float *dst = cap->out[k] + cap->written[k];
        if (ndim == 4) { /* NHWC -> NCHW */
            size_t b = (size_t)shape[0], h = (size_t)shape[1], w = (size_t)shape[2], c = (size_t)shape[3];
            for (size_t i = 0; i < b; i++)
                for (size_t y = 0; y < h; y++)
                    for (size_t x = 0; x < w; x++)
                        for (size_t ch = 0; ch < c; ch++)
                            dst[((i * c + ch) * h + y) * w + x] = data[((i * h + y) * w + x) * c + ch];
            cap->written[k] += b * h * w * c;
        } else {
            size_t floats = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];
            memcpy(dst, data, floats * sizeof(float));
            cap->written[k] += floats;
        }
    }
}

vt_status vt_image_intermediates(const vt_model *m, const float *pixels, int n, const int *layers,
                                 const int *norm, int count, float *const *out, vt_error *err) {
    if (!m || n < 0 || count < 0 || (n && !pixels) || (count && (!layers || !out)))
        return vt_fail(err, VT_ERR_ARGUMENT, "vt_image_intermediates: bad arguments");
    int *resolved = malloc((count ? count : 1) * sizeof *resolved);
    size_t *written = calloc(count ? count : 1, sizeof *written);
    float *features = malloc(((size_t)n + 1) * m->cfg.embed_dim * sizeof(float));
    vt_status st = resolved && written && features ? VT_OK : vt_fail(err, VT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < count && !st; k++) {
        int ndim;
        int64_t shape[4];
        if ((st = vt_image_layer_shape(m, layers[k], n, &ndim, shape, err))) break;
        if (!out[k]) st = vt_fail(err, VT_ERR_ARGUMENT, "vt_image_intermediates: out[%d] is NULL", k);
        resolved[k] = resolve_layer(m, layers[k]);
    }
    if (!st && n) {
        capture cap = {count, resolved, out, written};
        st = vt_encode_pixels_trace(m, pixels, n, features, capture_layers, &cap, err);
    }
    if (!st && norm && m->cfg.image_tower == VT_TOWER_VIT)
        for (int k = 0; k < count; k++)
            if (norm[k] && resolved[k] < VT_LAYER_STEM)
                vit_tower_final_norm(m, out[k], written[k] / (size_t)m->cfg.width);
    free(resolved);
    free(written);
    free(features);
    return st;
}

/* The last block's patch tokens [n, grid², width] (a ViT's class token
 * dropped), through the tower's final per-token norm when `normed`. */
static vt_status last_patch_tokens(const vt_model *m, const float *pixels, int n, int normed, float *out,
                                   vt_error *err) {
    int ndim, last = -1;
    int64_t shape[4];
    vt_status st = vt_image_layer_shape(m, last, n, &ndim, shape, err); /* a tower without them says so */
    if (st || !n) return st;
    int grid = vt_config_token_grid(&m->cfg);
    size_t tokens = (size_t)shape[1], width = (size_t)shape[2], patches = (size_t)grid * grid;
    size_t prefix = tokens - patches; /* tokens before the grid: a ViT's class token */
    if (!prefix) return vt_image_intermediates(m, pixels, n, &last, &normed, 1, &out, err);
    float *all = malloc((size_t)n * tokens * width * sizeof(float));
    if (!all) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    st = vt_image_intermediates(m, pixels, n, &last, &normed, 1, &all, err);
    for (int i = 0; i < n && !st; i++)
        memcpy(out + (size_t)i * patches * width, all + ((size_t)i * tokens + prefix) * width,
               patches * width * sizeof(float));
    free(all);
    return st;
}

vt_status vt_patch_features(const vt_model *m, const float *pixels, int n, float *out, vt_error *err) {
    if (!m || n < 0 || (n && (!pixels || !out))) return vt_fail(err, VT_ERR_ARGUMENT, "vt_patch_features: bad arguments");
    return last_patch_tokens(m, pixels, n, 0, out, err);
}

vt_status vt_patch_features_normed(const vt_model *m, const float *pixels, int n, float *out, vt_error *err) {
    if (!m || n < 0 || (n && (!pixels || !out))) return vt_fail(err, VT_ERR_ARGUMENT, "vt_patch_features: bad arguments");
    return last_patch_tokens(m, pixels, n, 1, out, err);
}

vt_status vt_dense_embeddings(const vt_model *m, const float *pixels, int n, int normalize, float *out,
                              vt_error *err) {
    if (!m || n < 0 || (n && (!pixels || !out))) return vt_fail(err, VT_ERR_ARGUMENT, "vt_dense_embeddings: bad arguments");
    const vt_model_config *c = &m->cfg;
    size_t patches = (size_t)vt_config_token_grid(c) * vt_config_token_grid(c);
    /* DENSE_CHUNK images at a time bounds the extra memory */
    enum { DENSE_CHUNK = 8 };
    float *x = malloc(DENSE_CHUNK * patches * c->width * sizeof(float));
    if (!x) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status st = VT_OK;
    size_t image_floats = (size_t)3 * c->image_size * c->image_size;
    for (int i = 0; i < n && !st; i += DENSE_CHUNK) {
        int b = n - i < DENSE_CHUNK ? n - i : DENSE_CHUNK;
        if ((st = last_patch_tokens(m, pixels + i * image_floats, b, 0, x, err))) break;
        float *o = out + (size_t)i * patches * c->embed_dim;
        image_tower_head_tokens(m, x, (size_t)b * patches, o);
        if (normalize) l2_normalize_rows(o, o, (size_t)b * patches, c->embed_dim);
    }
    free(x);
    return st;
}

vt_status vt_dense_embeddings_sliding(const vt_model *m, const float *image, int height, int width, int stride,
                                      int normalize, float *out, vt_error *err) {
    if (!m || !image || !out) return vt_fail(err, VT_ERR_ARGUMENT, "vt_dense_embeddings_sliding: NULL argument");
    int ndim;
    int64_t shape[4];
    vt_status refused = vt_image_layer_shape(m, -1, 1, &ndim, shape, err);
    if (refused) return refused;
    const vt_model_config *c = &m->cfg;
    int s = c->image_size, p = vt_config_token_stride(c), grid = vt_config_token_grid(c), e = c->embed_dim;
    if (height < s || width < s || height % p || width % p)
        return vt_fail(err, VT_ERR_ARGUMENT, "sliding window: a %dx%d image; %s needs height and width >= %d and "
                       "multiples of %d", height, width, c->name, s, p);
    if (stride < p || stride % p || stride > s)
        return vt_fail(err, VT_ERR_ARGUMENT, "sliding window: stride %d must be a multiple of %d in %d..%d", stride, p,
                       p, s);
    if (grid * p != s)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "sliding window: %s's image size %d is not a multiple of its token "
                       "stride %d", c->name, s, p);
    int gh = height / p, gw = width / p;
    int rows = (height - s + stride - 1) / stride + 1, cols = (width - s + stride - 1) / stride + 1;
    float *window = malloc((size_t)3 * s * s * sizeof(float));
    float *dense = malloc((size_t)grid * grid * e * sizeof(float));
    int *hits = calloc((size_t)gh * gw, sizeof *hits);
    if (!window || !dense || !hits) {
        free(window);
        free(dense);
        free(hits);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    memset(out, 0, (size_t)gh * gw * e * sizeof(float));
    vt_status st = VT_OK;
    for (int r = 0; r < rows && !st; r++)
        for (int q = 0; q < cols && !st; q++) {
            int y0 = r * stride, x0 = q * stride;
            if (y0 + s > height) y0 = height - s;
            if (x0 + s > width) x0 = width - s;
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < s; y++)
                    memcpy(window + ((size_t)ch * s + y) * s, image + ((size_t)ch * height + y0 + y) * width + x0,
                           (size_t)s * sizeof(float));
            if ((st = vt_dense_embeddings(m, window, 1, 0, dense, err))) break;
            for (int gy = 0; gy < grid; gy++)
                for (int gx = 0; gx < grid; gx++) {
                    size_t cell = (size_t)(y0 / p + gy) * gw + (x0 / p + gx);
                    float *o = out + cell * e;
                    const float *d = dense + ((size_t)gy * grid + gx) * e;
                    for (int j = 0; j < e; j++) o[j] += d[j];
                    hits[cell]++;
                }
        }
    if (!st)
        for (size_t cell = 0; cell < (size_t)gh * gw; cell++) {
            float *o = out + cell * e;
            for (int j = 0; j < e; j++) o[j] /= (float)hits[cell];
            if (normalize) l2_normalize_rows(o, o, 1, e);
        }
    free(window);
    free(dense);
    free(hits);
    return st;
}
