/* ViTamin image tower forward (timm models/vitamin.py: a VisionTransformer over MbConvStages),
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

/* The conv stages run in bands of output rows, one (image, band) per thread:
 * LN → 1×1 expand + GELU → depthwise + GELU → 1×1 project for a band keeps the
 * 4×-wide intermediate (the largest tensor of the network) in the core's L2
 * instead of streaming it through memory three times. An MBConv band is
 * processed in chunks of rows that slide down it, each keeping the expanded
 * halo rows of the previous chunk, so only the bands' own edges are expanded
 * twice (when the images share out evenly over the threads, a band is a whole
 * image: never). Dense 3×3 convs im2col one band at a time. BAND_FLOATS sizes
 * the per-thread buffers. */
enum { BAND_FLOATS = 1 << 18 }; /* 1 MiB */

/* Scratch layout: three full activation buffers (conv maps or token tensors),
 * per-thread band buffers for the conv stages, attention scratch. */
typedef struct {
    size_t activation;  /* floats per activation buffer */
    size_t band;        /* floats per thread for band work */
    size_t attention;   /* floats, all threads */
    int threads;
} image_plan;

/* Output rows per band for a layer whose band needs `floats_per_out_row`. */
static int band_rows(size_t floats_per_out_row, int out_rows) {
    size_t r = BAND_FLOATS / (floats_per_out_row ? floats_per_out_row : 1);
    if (r < 1) r = 1;
    return r > (size_t)out_rows ? out_rows : (int)r;
}

/* Input rows a band of `rows` output rows reads (3×3 kernel, padding 1). */
static int band_input_rows(int rows, int stride) { return (rows - 1) * stride + 3; }

/* Chunk buffer floats of one MBConv block: LN'd input, expanded input, depthwise output. */
static size_t mbconv_chunk_floats(const mbconv_block *blk, int w, int rows) {
    int wo = conv3x3_out(w, blk->stride), mid = 4 * blk->out_channels, in_rows = band_input_rows(rows, blk->stride);
    return align16((size_t)in_rows * w * blk->in_channels) + align16((size_t)in_rows * w * mid) +
           align16((size_t)rows * wo * mid);
}

/* Output rows per MBConv chunk: as many as fit BAND_FLOATS (at least 2, so a
 * chunk's GEMMs keep some rows even on wide models). */
static int mbconv_rows_per_chunk(const mbconv_block *blk, int h, int w) {
    int ho = conv3x3_out(h, blk->stride), wo = conv3x3_out(w, blk->stride), mid = 4 * blk->out_channels;
    size_t per_row = (size_t)blk->stride * w * (blk->in_channels + mid) + (size_t)wo * mid;
    int rows = band_rows(per_row, ho);
    if (rows < 2) rows = 2;
    return rows > ho ? ho : rows;
}

/* Output rows per band after balancing: bands of equal height (ceil) and,
 * when there are few (image, band) jobs, a count the threads share evenly. At
 * batch 1 a 28-row stage-2 map cut as 8+8+8+4, or the token conv's single
 * 14-row band, left a thread idle for a quarter or half of the layer. Never
 * more rows than `rows`, so the planned band buffers still fit; results do not
 * depend on the banding (each output row is computed the same way). */
static int balanced_band_rows(int out_rows, int rows, int batch) {
    int threads = omp_get_max_threads(), bands = (out_rows + rows - 1) / rows;
    if (batch * bands < 4 * threads)
        while ((batch * bands) % threads && bands < out_rows) bands++;
    return (out_rows + bands - 1) / bands;
}

static size_t conv3x3_band_floats(int w, int cin, int stride, int rows) {
    return align16((size_t)rows * conv3x3_out(w, stride) * 9 * cin);
}

static int conv3x3_rows_per_band(int h, int w, int cin, int stride) {
    return band_rows((size_t)conv3x3_out(w, stride) * 9 * cin, conv3x3_out(h, stride));
}

static image_plan plan_image(const struct vt_model *m, int batch) {
    const vt_model_config *c = &m->cfg;
    size_t s = (size_t)c->image_size, h1 = s / 2, n = (s / 16) * (s / 16), d = (size_t)c->width;
    image_plan p;
    size_t conv = max_sz(h1 * h1 * (size_t)c->stem_width, s * s * 3);
    conv = max_sz(conv, (h1 / 2) * (h1 / 2) * (size_t)c->stage_widths[1] * 4);
    size_t tokens = n * max_sz(3 * d, (size_t)c->mlp_hidden); /* qkv; GeGLU output (gated in the GEMM) */
    p.activation = align16((size_t)batch * max_sz(conv, tokens));
    /* Largest band over every banded layer. */
    int h = (int)h1;
    size_t band = conv3x3_band_floats((int)s, 3, 2, conv3x3_rows_per_band((int)s, (int)s, 3, 2));
    band = max_sz(band, conv3x3_band_floats(h, c->stem_width, 1, conv3x3_rows_per_band(h, h, c->stem_width, 1)));
    for (int i = 0; i < m->mbconv_count; i++) {
        const mbconv_block *blk = &m->mbconv[i];
        band = max_sz(band, mbconv_chunk_floats(blk, h, mbconv_rows_per_chunk(blk, h, h)));
        h = conv3x3_out(h, blk->stride);
    }
    band = max_sz(band, conv3x3_band_floats(h, c->stage_widths[1], 2, conv3x3_rows_per_band(h, h, c->stage_widths[1], 2)));
    p.threads = omp_get_max_threads();
    p.band = band;
    p.attention = align16((size_t)p.threads * attention_scratch_floats((int)n, c->width / c->heads));
    return p;
}

size_t image_tower_scratch_floats(const struct vt_model *m, int batch) {
    if (m->cfg.image_tower == VT_TOWER_VIT) return vit_tower_scratch_floats(m, batch);
    if (m->cfg.image_tower == VT_TOWER_CONVNEXT) return convnext_tower_scratch_floats(m, batch);
    image_plan p = plan_image(m, batch);
    return 3 * p.activation + (size_t)p.threads * p.band + p.attention;
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

/* Dense 3×3 conv (padding 1): per (image, row band), im2col of the band + GEMM. */
static void conv3x3_forward(const struct vt_model *m, const linear_layer *conv, float *y, const float *x,
                            int batch, int h, int w, int cin, int stride, float *band_scratch, size_t band_floats) {
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride), cout = conv->weight.n;
    int rows = balanced_band_rows(ho, conv3x3_rows_per_band(h, w, cin, stride), batch), bands = (ho + rows - 1) / rows;
    gemm_epilogue epi = {1.0f, conv->bias, 0, NULL, 0, 0, 0};
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < batch * bands; job++) {
        int b = job / bands, oy0 = (job % bands) * rows, oy1 = oy0 + rows < ho ? oy0 + rows : ho;
        float *cols = band_scratch + (size_t)omp_get_thread_num() * band_floats;
        im2col_3x3_rows(cols, x + (size_t)b * h * w * cin, h, w, cin, stride, oy0, oy1);
        gemm_run(m->isa, (oy1 - oy0) * wo, cols, 9 * cin, &conv->weight, y + ((size_t)b * ho + oy0) * wo * cout, cout,
                 &epi);
    }
}

/* One band of output rows [oy0, oy1) of one image of an MbConvLNBlock, in
 * chunks of `chunk` output rows. The expanded rows a chunk shares with the
 * next (2 at stride 1, 1 at stride 2) move to the front of the buffer instead
 * of being recomputed. The shortcut is the input itself (stride 1) or what
 * `out` already holds (the pooled shortcut of a stride-2 block). */
static void mbconv_band(const struct vt_model *m, const mbconv_block *blk, float *out, const float *x, int h, int w,
                        int oy0, int oy1, int chunk, float *scratch) {
    int s = blk->stride, wo = conv3x3_out(w, s), cin = blk->in_channels, cout = blk->out_channels, mid = 4 * cout;
    size_t in_row = (size_t)w * cin, mid_row = (size_t)w * mid;
    float *normed = scratch, *expanded = normed + align16((size_t)band_input_rows(chunk, s) * in_row);
    float *depthwise = expanded + align16((size_t)band_input_rows(chunk, s) * mid_row);
    gemm_epilogue expand = {1.0f, blk->conv1.bias, 1, NULL, 0, 0, 0};
    int have0 = 0, have1 = 0; /* input rows whose expansion `expanded` holds */
    for (int c0 = oy0; c0 < oy1; c0 += chunk) {
        int c1 = c0 + chunk < oy1 ? c0 + chunk : oy1;
        int iy0 = c0 * s - 1 < 0 ? 0 : c0 * s - 1, iy1 = (c1 - 1) * s + 2 > h ? h : (c1 - 1) * s + 2;
        int kept = have1 > iy0 ? have1 - iy0 : 0; /* chunks move down: have0 <= iy0 */
        if (kept) memmove(expanded, expanded + (size_t)(iy0 - have0) * mid_row, kept * mid_row * sizeof(float));
        int new0 = iy0 + kept;
        size_t new_pixels = (size_t)(iy1 - new0) * w;
        layernorm_forward(normed, x + (size_t)new0 * in_row, new_pixels, cin, blk->pre_norm_weight,
                          blk->pre_norm_bias, IMAGE_LN_EPS);
        gemm_run(m->isa, (int)new_pixels, normed, cin, &blk->conv1.weight, expanded + kept * mid_row, mid, &expand);
        have0 = iy0;
        have1 = iy1;
        depthwise3x3_gelu_rows(m->isa, depthwise, NULL, expanded, iy0, iy1 - iy0, h, w, mid, s, c0, c1,
                               blk->depthwise_weight, blk->depthwise_bias);
        float *dst = out + (size_t)c0 * wo * cout;
        const float *shortcut = s == 1 ? x + (size_t)c0 * w * cin : dst;
        gemm_epilogue project = {1.0f, blk->conv3.bias, 0, shortcut, cout, 0, 0};
        gemm_run(m->isa, (c1 - c0) * wo, depthwise, mid, &blk->conv3.weight, dst, cout, &project);
    }
}

/* MbConvLNBlock (timm models/vitamin.py): shortcut from the raw input; pre-norm, 1×1 expand
 * + GELU, depthwise 3×3 (stride) + GELU, 1×1 project, + shortcut. */
static void mbconv_forward(const struct vt_model *m, const mbconv_block *blk, float *out, const float *x,
                           int batch, int h, int w, float *pooled, float *band_scratch, size_t band_floats) {
    int ho = conv3x3_out(h, blk->stride), wo = conv3x3_out(w, blk->stride);
    int cin = blk->in_channels, cout = blk->out_channels;
    size_t out_pixels = (size_t)batch * ho * wo;
    /* The projection's epilogue adds the shortcut: the input rows themselves
     * at stride 1 (same shape), else the pooled input, put in `out` first. */
    if (blk->stride == 2) {
        if (blk->has_expand) {
            avgpool3x3s2_forward(pooled, x, batch, h, w, cin);
            gemm_epilogue epi = {1.0f, blk->expand.bias, 0, NULL, 0, 0, 0};
            gemm_run(m->isa, (int)out_pixels, pooled, cin, &blk->expand.weight, out, cout, &epi);
        } else {
            avgpool3x3s2_forward(out, x, batch, h, w, cin);
        }
    }
    /* Bands: whole images when there are enough to share out, else as many
     * equal bands per image as balance the threads. */
    int chunk = mbconv_rows_per_chunk(blk, h, w);
    int rows = balanced_band_rows(ho, ho, batch), bands = (ho + rows - 1) / rows;
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < batch * bands; job++) {
        int b = job / bands, oy0 = (job % bands) * rows, oy1 = oy0 + rows < ho ? oy0 + rows : ho;
        mbconv_band(m, blk, out + (size_t)b * ho * wo * cout, x + (size_t)b * h * w * cin, h, w, oy0, oy1, chunk,
                    band_scratch + (size_t)omp_get_thread_num() * band_floats);
    }
}

/* timm Block with GeGLU (timm models/vitamin.py GeGluMlp in vision_transformer.py Block): x += attn(LN1 x); x += w2(gelu(w0 u) ⊙ w1 u), u = LNmlp(LN2 x). */
static void vit_block_forward(const struct vt_model *m, const vit_block *blk, float *x, int batch, int n,
                              float *t1, float *t2, float *t3, float *attn_scratch) {
    const vt_model_config *c = &m->cfg;
    int d = c->width, hidden = c->mlp_hidden;
    size_t rows = (size_t)batch * n;
    layernorm_forward(t1, x, rows, d, blk->norm1_weight, blk->norm1_bias, IMAGE_LN_EPS);
    gemm_epilogue bias_only = {1.0f, blk->qkv.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, t1, d, &blk->qkv.weight, t2, 3 * d, &bias_only);
    attention_forward(m->isa, t1, NULL, t2, batch, n, d, c->heads, 0, attn_scratch);
    gemm_epilogue residual = {1.0f, blk->proj.bias, 0, x, d, 0, 0};
    gemm_run(m->isa, (int)rows, t1, d, &blk->proj.weight, x, d, &residual);

    layernorm_forward(t1, x, rows, d, blk->norm2_weight, blk->norm2_bias, IMAGE_LN_EPS);
    layernorm_forward(t1, t1, rows, d, blk->mlp_norm_weight, blk->mlp_norm_bias, IMAGE_LN_EPS);
    gemm_epilogue w01 = {1.0f, blk->w0_w1.bias, 0, NULL, 0, hidden, m->cfg.mlp_glu};
    gemm_run(m->isa, (int)rows, t1, d, &blk->w0_w1.weight, t3, hidden, &w01);
    gemm_epilogue residual2 = {1.0f, blk->w2.bias, 0, x, d, 0, 0};
    gemm_run(m->isa, (int)rows, t3, hidden, &blk->w2.weight, x, d, &residual2);
}

void image_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                         const vt_trace *trace) {
    if (m->cfg.image_tower == VT_TOWER_VIT) {
        vit_tower_forward(m, pixels, batch, out, scratch, trace);
        return;
    }
    if (m->cfg.image_tower == VT_TOWER_CONVNEXT) {
        convnext_tower_forward(m, pixels, batch, out, scratch, trace);
        return;
    }
    const vt_model_config *c = &m->cfg;
    image_plan p = plan_image(m, batch);
    float *a = scratch, *b = a + p.activation, *t = b + p.activation;
    float *bands = t + p.activation, *attn = bands + (size_t)p.threads * p.band;
    int s = c->image_size, h = s / 2, w = s / 2;

    /* NCHW input → NHWC. */
    for (int i = 0; i < batch; i++)
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
                for (int ch = 0; ch < 3; ch++)
                    a[(((size_t)i * s + y) * s + x) * 3 + ch] = pixels[(((size_t)i * 3 + ch) * s + y) * s + x];

    /* Stem: conv 3×3/2 → LayerNorm2d + GELU → conv 3×3. */
    conv3x3_forward(m, &m->stem_conv1, b, a, batch, s, s, 3, 2, bands, p.band);
    layernorm_forward(b, b, (size_t)batch * h * w, c->stem_width, m->stem_norm_weight, m->stem_norm_bias,
                      IMAGE_LN_EPS);
    gelu_parallel(m->isa, b, (size_t)batch * h * w * c->stem_width);
    conv3x3_forward(m, &m->stem_conv2, a, b, batch, h, w, c->stem_width, 1, bands, p.band);
    trace4(trace, "stem", a, batch, h, w, c->stem_width);

    /* MBConv stages (ping-pong between a and b). */
    float *cur = a, *next = b;
    for (int i = 0; i < m->mbconv_count; i++) {
        const mbconv_block *blk = &m->mbconv[i];
        mbconv_forward(m, blk, next, cur, batch, h, w, t, bands, p.band);
        h = conv3x3_out(h, blk->stride);
        w = conv3x3_out(w, blk->stride);
        float *tmp = cur; cur = next; next = tmp;
        int last_of_stage = (i + 1 == c->stage_depths[0]) || (i + 1 == c->stage_depths[0] + c->stage_depths[1]);
        if (last_of_stage) trace4(trace, i + 1 == c->stage_depths[0] ? "stage1" : "stage2", cur, batch, h, w, blk->out_channels);
    }

    /* StridedConv: LayerNorm2d then 3×3/2 conv → tokens [B, N, D] (NHWC is token-major already). */
    layernorm_forward(t, cur, (size_t)batch * h * w, c->stage_widths[1], m->pool_norm_weight, m->pool_norm_bias,
                      IMAGE_LN_EPS);
    conv3x3_forward(m, &m->pool_proj, next, t, batch, h, w, c->stage_widths[1], 2, bands, p.band);
    float *x = next;
    int grid = conv3x3_out(h, 2), n = grid * grid, d = c->width;
    if (m->pos_embed)
        for (int i = 0; i < batch; i++)
            for (size_t j = 0; j < (size_t)n * d; j++) x[(size_t)i * n * d + j] += m->pos_embed[j];
    if (trace && trace->fn) trace->fn(trace->user, "tokens", x, 3, (const int64_t[]){batch, n, d});

    /* Token phase: x lives in `next`; `cur` holds qkv / the [w0|w1] output and
     * `t` holds the LN output (rows·D) followed by the GeGLU gate (rows·2D):
     * plan_image sizes every activation buffer for rows·4D. */
    float *t1 = t, *t2 = cur;
    for (int i = 0; i < c->depth; i++) {
        vit_block_forward(m, &m->vit[i], x, batch, n, t1, t2, t1 + (size_t)batch * n * d, attn);
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
        for (int token = 0; token < n; token++)
            for (int j = 0; j < d; j++) pooled[j] += x[((size_t)i * n + token) * d + j];
        for (int j = 0; j < d; j++) pooled[j] /= (float)n;
    }
    layernorm_forward(t1, t1, (size_t)batch, d, m->fc_norm_weight, m->fc_norm_bias, IMAGE_LN_EPS);
    if (trace && trace->fn) trace->fn(trace->user, "pooled", t1, 2, (const int64_t[]){batch, d});
    gemm_epilogue head = {1.0f, m->head_proj.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, batch, t1, d, &m->head_proj.weight, out, c->embed_dim, &head);
}

void image_tower_head_tokens(const struct vt_model *m, float *tokens, size_t rows, float *out) {
    const vt_model_config *c = &m->cfg;
    if (c->image_tower == VT_TOWER_VIT) {
        vit_tower_final_norm(m, tokens, rows);
        gemm_run(m->isa, (int)rows, tokens, c->width, &m->vit_proj.weight, out, c->embed_dim, NULL);
        return;
    }
    layernorm_forward(tokens, tokens, rows, c->width, m->fc_norm_weight, m->fc_norm_bias, IMAGE_LN_EPS);
    gemm_epilogue head = {1.0f, m->head_proj.bias, 0, NULL, 0, 0, 0};
    gemm_run(m->isa, (int)rows, tokens, c->width, &m->head_proj.weight, out, c->embed_dim, &head);
}
