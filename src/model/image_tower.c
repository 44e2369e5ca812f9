/* ViTamin image tower forward (timm VisionTransformer + MbConvStages, spec §1),
 * on NHWC activations so that every 1×1 conv is a GEMM over pixels and every
 * LayerNorm2d normalises a contiguous channel vector. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/norm.h"
#include "model/forward.h"

static const float IMAGE_LN_EPS = 1e-6f; /* every LayerNorm of the image tower */

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Scratch layout: four activation buffers big enough for any conv-stage or
 * token tensor, one im2col buffer for a single image, attention scratch. */
typedef struct {
    size_t activation;  /* floats per activation buffer */
    size_t im2col;      /* floats, one image */
    size_t attention;   /* floats, all threads */
} image_plan;

static image_plan plan_image(const struct vt_model *m, int batch) {
    const vt_model_config *c = &m->cfg;
    size_t s = (size_t)c->image_size, h1 = s / 2, n = (s / 16) * (s / 16), d = (size_t)c->width;
    image_plan p;
    size_t conv = max_sz(h1 * h1 * (size_t)c->stem_width, h1 * h1 * 4 * (size_t)c->stage_widths[0]);
    conv = max_sz(conv, (h1 / 2) * (h1 / 2) * 4 * (size_t)c->stage_widths[1]);
    conv = max_sz(conv, s * s * 3);
    size_t tokens = n * max_sz(3 * d, 2 * (size_t)c->mlp_hidden);
    p.activation = align16((size_t)batch * max_sz(conv, tokens));
    p.im2col = align16(max_sz(h1 * h1 * 27, max_sz(h1 * h1 * 9 * (size_t)c->stem_width,
                                                    (s / 16) * (s / 16) * 9 * (size_t)c->stage_widths[1])));
    p.attention = align16((size_t)omp_get_max_threads() * attention_scratch_floats((int)n, c->width / c->heads));
    return p;
}

size_t image_tower_scratch_floats(const struct vt_model *m, int batch) {
    image_plan p = plan_image(m, batch);
    return 4 * p.activation + p.im2col + p.attention;
}

/* GELU over a large buffer, split across threads in 64 KiB pieces. */
static void gelu_parallel(vt_isa isa, float *x, size_t n) {
    const size_t piece = 16384;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += piece) gelu_inplace(isa, x + i, n - i < piece ? n - i : piece);
}

static void trace4(const vt_trace *t, const char *name, const float *x, int b, int h, int w, int c) {
    if (t && t->fn) t->fn(t->user, name, x, 4, (const int64_t[]){b, h, w, c});
}

/* Dense 3×3 conv (padding 1) through im2col + GEMM, image by image. */
static void conv3x3_forward(const struct vt_model *m, const linear_layer *conv, float *y, const float *x,
                            int batch, int h, int w, int cin, int stride, float *cols) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    gemm_epilogue epi = {1.0f, conv->bias, 0, NULL, 0};
    for (int b = 0; b < batch; b++) {
        im2col_3x3(cols, x + (size_t)b * h * w * cin, h, w, cin, stride);
        gemm_run(m->isa, ho * wo, cols, 9 * cin, &conv->weight, y + (size_t)b * ho * wo * conv->weight.n,
                 conv->weight.n, &epi);
    }
}

/* MbConvLNBlock (spec §1.3): shortcut from the raw input; pre-norm, 1×1 expand
 * + GELU, depthwise 3×3 (stride) + GELU, 1×1 project, + shortcut. */
static void mbconv_forward(const struct vt_model *m, const mbconv_block *blk, float *out, const float *x,
                           int batch, int h, int w, float *t1, float *t2) {
    int ho = conv3x3_out(h, blk->stride), wo = conv3x3_out(w, blk->stride);
    int cin = blk->in_channels, cout = blk->out_channels, mid = 4 * cout;
    size_t in_pixels = (size_t)batch * h * w, out_pixels = (size_t)batch * ho * wo;
    /* Shortcut into `out` (the projection's residual, added in its epilogue). */
    if (blk->stride == 2) {
        if (blk->has_expand) {
            avgpool3x3s2_forward(t1, x, batch, h, w, cin);
            gemm_epilogue epi = {1.0f, blk->expand.bias, 0, NULL, 0};
            gemm_run(m->isa, (int)out_pixels, t1, cin, &blk->expand.weight, out, cout, &epi);
        } else {
            avgpool3x3s2_forward(out, x, batch, h, w, cin);
        }
    } else {
        memcpy(out, x, out_pixels * cout * sizeof(float));
    }
    layernorm_forward(t1, x, in_pixels, cin, blk->pre_norm_weight, blk->pre_norm_bias, IMAGE_LN_EPS);
    gemm_epilogue expand = {1.0f, blk->conv1.bias, 1, NULL, 0};
    gemm_run(m->isa, (int)in_pixels, t1, cin, &blk->conv1.weight, t2, mid, &expand);
    depthwise3x3_gelu_forward(m->isa, t1, t2, batch, h, w, mid, blk->stride, blk->depthwise_weight, blk->depthwise_bias);
    gemm_epilogue project = {1.0f, blk->conv3.bias, 0, out, cout};
    gemm_run(m->isa, (int)out_pixels, t1, mid, &blk->conv3.weight, out, cout, &project);
}

/* timm Block with GeGLU (spec §1.6): x += attn(LN1 x); x += w2(gelu(w0 u) ⊙ w1 u), u = LNmlp(LN2 x). */
static void vit_block_forward(const struct vt_model *m, const vit_block *blk, float *x, int batch, int n,
                              float *t1, float *t2, float *t3, float *attn_scratch) {
    const vt_model_config *c = &m->cfg;
    int d = c->width, hidden = c->mlp_hidden;
    size_t rows = (size_t)batch * n;
    layernorm_forward(t1, x, rows, d, blk->norm1_weight, blk->norm1_bias, IMAGE_LN_EPS);
    gemm_epilogue bias_only = {1.0f, blk->qkv.bias, 0, NULL, 0};
    gemm_run(m->isa, (int)rows, t1, d, &blk->qkv.weight, t2, 3 * d, &bias_only);
    attention_forward(m->isa, t1, t2, batch, n, d, c->heads, 0, attn_scratch);
    gemm_epilogue residual = {1.0f, blk->proj.bias, 0, x, d};
    gemm_run(m->isa, (int)rows, t1, d, &blk->proj.weight, x, d, &residual);

    layernorm_forward(t1, x, rows, d, blk->norm2_weight, blk->norm2_bias, IMAGE_LN_EPS);
    layernorm_forward(t1, t1, rows, d, blk->mlp_norm_weight, blk->mlp_norm_bias, IMAGE_LN_EPS);
    gemm_epilogue w01 = {1.0f, blk->w0_w1.bias, 0, NULL, 0};
    gemm_run(m->isa, (int)rows, t1, d, &blk->w0_w1.weight, t2, 2 * hidden, &w01);
    geglu_forward(m->isa, t3, t2, rows, hidden);
    gemm_epilogue residual2 = {1.0f, blk->w2.bias, 0, x, d};
    gemm_run(m->isa, (int)rows, t3, hidden, &blk->w2.weight, x, d, &residual2);
}

void image_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                         const vt_trace *trace) {
    const vt_model_config *c = &m->cfg;
    image_plan p = plan_image(m, batch);
    float *a = scratch, *b = a + p.activation, *t1 = b + p.activation, *t2 = t1 + p.activation;
    float *cols = t2 + p.activation, *attn = cols + p.im2col;
    int s = c->image_size, h = s / 2, w = s / 2;

    /* NCHW input → NHWC. */
    for (int i = 0; i < batch; i++)
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
                for (int ch = 0; ch < 3; ch++)
                    a[(((size_t)i * s + y) * s + x) * 3 + ch] = pixels[(((size_t)i * 3 + ch) * s + y) * s + x];

    /* Stem: conv 3×3/2 → LayerNorm2d + GELU → conv 3×3. */
    conv3x3_forward(m, &m->stem_conv1, b, a, batch, s, s, 3, 2, cols);
    layernorm_forward(b, b, (size_t)batch * h * w, c->stem_width, m->stem_norm_weight, m->stem_norm_bias,
                      IMAGE_LN_EPS);
    gelu_parallel(m->isa, b, (size_t)batch * h * w * c->stem_width);
    conv3x3_forward(m, &m->stem_conv2, a, b, batch, h, w, c->stem_width, 1, cols);
    trace4(trace, "stem", a, batch, h, w, c->stem_width);

    /* MBConv stages (ping-pong between a and b). */
    float *cur = a, *next = b;
    for (int i = 0; i < m->mbconv_count; i++) {
        const mbconv_block *blk = &m->mbconv[i];
        mbconv_forward(m, blk, next, cur, batch, h, w, t1, t2);
        h = conv3x3_out(h, blk->stride);
        w = conv3x3_out(w, blk->stride);
        float *tmp = cur; cur = next; next = tmp;
        int last_of_stage = (i + 1 == c->stage_depths[0]) || (i + 1 == c->stage_depths[0] + c->stage_depths[1]);
        if (last_of_stage) trace4(trace, i + 1 == c->stage_depths[0] ? "stage1" : "stage2", cur, batch, h, w, blk->out_channels);
    }

    /* StridedConv: LayerNorm2d then 3×3/2 conv → tokens [B, N, D] (NHWC is token-major already). */
    layernorm_forward(t1, cur, (size_t)batch * h * w, c->stage_widths[1], m->pool_norm_weight, m->pool_norm_bias,
                      IMAGE_LN_EPS);
    conv3x3_forward(m, &m->pool_proj, next, t1, batch, h, w, c->stage_widths[1], 2, cols);
    float *x = next;
    int grid = conv3x3_out(h, 2), n = grid * grid, d = c->width;
    if (m->pos_embed)
        for (int i = 0; i < batch; i++)
            for (size_t j = 0; j < (size_t)n * d; j++) x[(size_t)i * n * d + j] += m->pos_embed[j];
    if (trace && trace->fn) trace->fn(trace->user, "tokens", x, 3, (const int64_t[]){batch, n, d});

    for (int i = 0; i < c->depth; i++) {
        vit_block_forward(m, &m->vit[i], x, batch, n, t1, t2, cur, attn);
        if (trace && trace->fn) {
            char name[32];
            snprintf(name, sizeof name, "block%d", i);
            trace->fn(trace->user, name, x, 3, (const int64_t[]){batch, n, d});
        }
    }

    /* Average pool over tokens, fc_norm, projection head. */
    for (int i = 0; i < batch; i++) {
        float *pooled = t1 + (size_t)i * d;
        for (int j = 0; j < d; j++) pooled[j] = 0.0f;
        for (int t = 0; t < n; t++)
            for (int j = 0; j < d; j++) pooled[j] += x[((size_t)i * n + t) * d + j];
        for (int j = 0; j < d; j++) pooled[j] /= (float)n;
    }
    layernorm_forward(t1, t1, (size_t)batch, d, m->fc_norm_weight, m->fc_norm_bias, IMAGE_LN_EPS);
    if (trace && trace->fn) trace->fn(trace->user, "pooled", t1, 2, (const int64_t[]){batch, d});
    gemm_epilogue head = {1.0f, m->head_proj.bias, 0, NULL, 0};
    gemm_run(m->isa, batch, t1, d, &m->head_proj.weight, out, c->embed_dim, &head);
}
