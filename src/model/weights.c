/* Binding checkpoint tensors to the model, strictly (as open_clip's
 * load_state_dict(strict=True) after its key normalisation, spec §5.3). */
#include "model/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/checkpoint_keys.h"
#include "kernels/conv.h"

/* ---------- binding ---------- */

typedef struct {
    struct vt_model *m;
    key_index ix;
    vt_error *err;
    vt_status status; /* first failure; later binds become no-ops */
} binder;

static void *own(binder *b, size_t bytes) {
    struct vt_model *m = b->m;
    if (m->owned_count == m->owned_capacity) {
        size_t cap = m->owned_capacity ? 2 * m->owned_capacity : 256;
        void **grown = realloc(m->owned, cap * sizeof *grown);
        if (!grown) return NULL;
        m->owned = grown;
        m->owned_capacity = cap;
    }
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (p) m->owned[m->owned_count++] = p;
    return p;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++) n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* Returns an fp32 view (in place for fp32 tensors, converted otherwise) of the
 * tensor `name`, after checking its shape. NULL (and b->status set) on error. */
static const float *bind(binder *b, const char *name, int ndim, const int64_t *shape) {
    if (b->status) return NULL;
    size_t pos;
    const ckpt_tensor *t = key_index_find(&b->ix, name, &pos);
    char want[128], got[128];
    format_shape(want, sizeof want, ndim, shape);
    if (!t) {
        b->status = vt_fail(b->err, VT_ERR_SHAPE, "tensor '%s' %s is missing from the checkpoint (model %s)", name, want,
                            b->m->cfg.name);
        return NULL;
    }
    b->ix.used[pos] = 1;
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    /* logit_scale is stored as [] by open_clip and as [1] by some trainers. */
    if (!ok && ndim == 0 && t->ndim == 1 && t->shape[0] == 1) ok = 1;
    if (!ok) {
        format_shape(got, sizeof got, t->ndim, t->shape);
        b->status = vt_fail(b->err, VT_ERR_SHAPE, "tensor '%s' has shape %s, expected %s for model %s", name, got, want,
                            b->m->cfg.name);
        return NULL;
    }
    const float *data;
    if (t->dtype == VT_DTYPE_F32) {
        data = t->data;
    } else if (t->dtype == VT_DTYPE_F16 || t->dtype == VT_DTYPE_BF16 || t->dtype == VT_DTYPE_F64) {
        float *conv = own(b, (size_t)t->numel * sizeof(float));
        if (!conv) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory converting '%s'", name); return NULL; }
        for (int64_t i = 0; i < t->numel; i++) conv[i] = ckpt_element_f32(t, i);
        data = conv;
    } else {
        b->status = vt_fail(b->err, VT_ERR_DTYPE, "tensor '%s' has dtype %s; weights must be float32, float16, bfloat16 or float64",
                            name, vt_dtype_name(t->dtype));
        return NULL;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        if (!isfinite(data[i])) {
            b->status = vt_fail(b->err, VT_ERR_VALUE, "tensor '%s' holds a non-finite value (%g) at flat index %lld; the checkpoint is corrupt",
                                name, (double)data[i], (long long)i);
            return NULL;
        }
    }
    /* The check paged the whole tensor in; let it page back in only where used
     * (a 49408-row token embedding is mostly never read). */
    ckpt_release_range(b->m->checkpoint, t->data, (size_t)t->numel * vt_dtype_size(t->dtype));
    return data;
}

/* prefix + suffix into buf; an over-long key becomes "" and then fails the
 * lookup with a message naming the (truncated) key, never a silent mismatch. */
static const char *join_key(char *buf, size_t size, const char *prefix, const char *suffix) {
    int n = snprintf(buf, size, "%s%s", prefix, suffix);
    if (n < 0 || (size_t)n >= size) buf[0] = '\0';
    return buf;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static void pack_into(binder *b, linear_layer *layer, const float *w, int out, int in, int w_is_kn) {
    if (b->status || !w) return;
    if (b->m->bf16 && !w_is_kn) {
        /* One spare panel row of zeros past the end: kernels may read a whole tile. */
        uint16_t *packed = own(b, (gemm_packed_bf16_elems(out, in) + 64 * GEMM_NR) * sizeof(uint16_t));
        if (!packed) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory packing weights"); return; }
        memset(packed + gemm_packed_bf16_elems(out, in), 0, 64 * GEMM_NR * sizeof(uint16_t));
        gemm_pack_bf16(w, out, in, in, packed);
        ckpt_release_range(b->m->checkpoint, w, (size_t)out * in * sizeof(float));
        layer->weight = (gemm_packed_b){out, in, (out + GEMM_NR - 1) / GEMM_NR, NULL, packed, b->m->amx};
        return;
    }
    float *dst = own(b, gemm_packed_floats(out, in) * sizeof(float));
    if (!dst) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory packing weights"); return; }
    gemm_pack(w, out, in, w_is_kn ? out : in, w_is_kn, dst);
    ckpt_release_range(b->m->checkpoint, w, (size_t)out * in * sizeof(float)); /* packed copy replaces it */
    layer->weight = (gemm_packed_b){out, in, (out + GEMM_NR - 1) / GEMM_NR, dst, NULL, 0};
}

/* Linear (or 1×1 conv when `conv1x1`) "<prefix>.weight" [out, in] + optional bias. */
static void bind_linear(binder *b, linear_layer *layer, const char *prefix, int out, int in, int has_bias, int conv1x1) {
    char name[640];
    join_key(name, sizeof name, prefix, ".weight");
    const float *w = conv1x1 ? bind(b, name, 4, SHAPE(out, in, 1, 1)) : bind(b, name, 2, SHAPE(out, in));
    pack_into(b, layer, w, out, in, 0);
    layer->bias = NULL;
    if (has_bias) {
        join_key(name, sizeof name, prefix, ".bias");
        layer->bias = bind(b, name, 1, SHAPE(out));
    }
}

/* 3×3 dense conv "<prefix>.weight" [out, in, 3, 3], packed for im2col. */
static void bind_conv3x3(binder *b, linear_layer *layer, const char *prefix, int out, int in) {
    char name[640];
    join_key(name, sizeof name, prefix, ".weight");
    const float *w = bind(b, name, 4, SHAPE(out, in, 3, 3));
    if (!w) return;
    float *ohwi = malloc((size_t)out * in * 9 * sizeof(float));
    if (!ohwi) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    conv3x3_weight_to_ohwi(ohwi, w, out, in);
    pack_into(b, layer, ohwi, out, 9 * in, 0);
    free(ohwi);
    join_key(name, sizeof name, prefix, ".bias");
    layer->bias = bind(b, name, 1, SHAPE(out));
}

static void bind_norm(binder *b, const float **weight, const float **bias, const char *prefix, int dim) {
    char name[640];
    join_key(name, sizeof name, prefix, ".weight");
    *weight = bind(b, name, 1, SHAPE(dim));
    join_key(name, sizeof name, prefix, ".bias");
    *bias = bind(b, name, 1, SHAPE(dim));
}

static void bind_mbconv(binder *b, mbconv_block *blk, const char *prefix) {
    char name[640];
    int mid = 4 * blk->out_channels;
    join_key(name, sizeof name, prefix, ".pre_norm");
    bind_norm(b, &blk->pre_norm_weight, &blk->pre_norm_bias, name, blk->in_channels);
    join_key(name, sizeof name, prefix, ".conv1_1x1");
    bind_linear(b, &blk->conv1, name, mid, blk->in_channels, 1, 1);
    join_key(name, sizeof name, prefix, ".conv2_kxk.weight");
    const float *dw = bind(b, name, 4, SHAPE(mid, 1, 3, 3));
    if (dw) {
        blk->depthwise_weight = own(b, (size_t)9 * mid * sizeof(float));
        if (!blk->depthwise_weight) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
        for (int c = 0; c < mid; c++)
            for (int k = 0; k < 9; k++) blk->depthwise_weight[k * mid + c] = dw[c * 9 + k];
    }
    join_key(name, sizeof name, prefix, ".conv2_kxk.bias");
    blk->depthwise_bias = bind(b, name, 1, SHAPE(mid));
    join_key(name, sizeof name, prefix, ".conv3_1x1");
    bind_linear(b, &blk->conv3, name, blk->out_channels, mid, 1, 1);
    if (blk->has_expand) {
        join_key(name, sizeof name, prefix, ".shortcut.expand");
        bind_linear(b, &blk->expand, name, blk->out_channels, blk->in_channels, 1, 1);
    }
}

static void bind_image_tower(binder *b) {
    struct vt_model *m = b->m;
    const vt_model_config *c = &m->cfg;
    const char *bb = "visual.trunk.patch_embed.backbone";
    char name[640];
    join_key(name, sizeof name, bb, ".stem.conv1");
    bind_conv3x3(b, &m->stem_conv1, name, c->stem_width, 3);
    join_key(name, sizeof name, bb, ".stem.norm1");
    bind_norm(b, &m->stem_norm_weight, &m->stem_norm_bias, name, c->stem_width);
    join_key(name, sizeof name, bb, ".stem.conv2");
    bind_conv3x3(b, &m->stem_conv2, name, c->stem_width, c->stem_width);

    int in = c->stem_width;
    m->mbconv_count = 0;
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < c->stage_depths[s] && m->mbconv_count < VT_MAX_MBCONV; i++) {
            mbconv_block *blk = &m->mbconv[m->mbconv_count++];
            blk->in_channels = in;
            blk->out_channels = c->stage_widths[s];
            blk->stride = i == 0 ? 2 : 1;
            blk->has_expand = i == 0 && in != c->stage_widths[s];
            snprintf(name, sizeof name, "%s.stages.%d.%d", bb, s, i);
            bind_mbconv(b, blk, name);
            in = c->stage_widths[s];
        }
    }
    join_key(name, sizeof name, bb, ".pool.norm");
    bind_norm(b, &m->pool_norm_weight, &m->pool_norm_bias, name, c->stage_widths[1]);
    join_key(name, sizeof name, bb, ".pool.proj");
    bind_conv3x3(b, &m->pool_proj, name, c->width, c->stage_widths[1]);

    int grid = c->image_size / 16, d = c->width, h = c->mlp_hidden;
    m->pos_embed = c->has_pos_embed ? bind(b, "visual.trunk.pos_embed", 3, SHAPE(1, grid * grid, d)) : NULL;
    m->vit = calloc((size_t)c->depth, sizeof *m->vit);
    if (!m->vit) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    for (int i = 0; i < c->depth && !b->status; i++) {
        vit_block *blk = &m->vit[i];
        char p[128];
        snprintf(p, sizeof p, "visual.trunk.blocks.%d", i);
        join_key(name, sizeof name, p, ".norm1");
        bind_norm(b, &blk->norm1_weight, &blk->norm1_bias, name, d);
        join_key(name, sizeof name, p, ".attn.qkv");
        bind_linear(b, &blk->qkv, name, 3 * d, d, 1, 0);
        join_key(name, sizeof name, p, ".attn.proj");
        bind_linear(b, &blk->proj, name, d, d, 1, 0);
        join_key(name, sizeof name, p, ".norm2");
        bind_norm(b, &blk->norm2_weight, &blk->norm2_bias, name, d);
        join_key(name, sizeof name, p, ".mlp.norm");
        bind_norm(b, &blk->mlp_norm_weight, &blk->mlp_norm_bias, name, d);
        /* w0 (gated) and w1 (linear) read the same input: one GEMM, its rows
         * interleaved so that the GEMM gates in its epilogue (gemm.h). */
        join_key(name, sizeof name, p, ".mlp.w0.weight");
        const float *w0 = bind(b, name, 2, SHAPE(h, d));
        join_key(name, sizeof name, p, ".mlp.w1.weight");
        const float *w1 = bind(b, name, 2, SHAPE(h, d));
        join_key(name, sizeof name, p, ".mlp.w0.bias");
        const float *b0 = bind(b, name, 1, SHAPE(h));
        join_key(name, sizeof name, p, ".mlp.w1.bias");
        const float *b1 = bind(b, name, 1, SHAPE(h));
        if (!b->status) {
            int rows = gemm_geglu_rows(h);
            float *w01 = malloc((size_t)rows * d * sizeof(float));
            float *b01 = own(b, (size_t)rows * sizeof(float));
            if (!w01 || !b01) { free(w01); b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
            gemm_geglu_interleave(w0, w1, b0, b1, h, d, w01, b01);
            pack_into(b, &blk->w0_w1, w01, rows, d, 0);
            blk->w0_w1.bias = b01;
            free(w01);
        }
        join_key(name, sizeof name, p, ".mlp.w2");
        bind_linear(b, &blk->w2, name, d, h, 1, 0);
    }
    bind_norm(b, &m->fc_norm_weight, &m->fc_norm_bias, "visual.trunk.fc_norm", d);
    /* open_clip's head has no bias; a timm image-only checkpoint's head.bias is honoured. */
    size_t pos;
    int head_bias = key_index_find(&b->ix, "visual.head.proj.bias", &pos) != NULL;
    bind_linear(b, &m->head_proj, "visual.head.proj", c->embed_dim, d, head_bias, 0);
}

static void bind_text_tower(binder *b) {
    struct vt_model *m = b->m;
    const vt_model_config *c = &m->cfg;
    int w = c->text_width;
    char name[640];
    m->token_embedding = bind(b, "text.token_embedding.weight", 2, SHAPE(c->vocab_size, w));
    m->positional_embedding = bind(b, "text.positional_embedding", 2, SHAPE(c->context_length, w));
    m->text = calloc((size_t)c->text_layers, sizeof *m->text);
    if (!m->text) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    for (int i = 0; i < c->text_layers && !b->status; i++) {
        text_block *blk = &m->text[i];
        char p[128];
        snprintf(p, sizeof p, "text.transformer.resblocks.%d", i);
        join_key(name, sizeof name, p, ".ln_1");
        bind_norm(b, &blk->ln1_weight, &blk->ln1_bias, name, w);
        join_key(name, sizeof name, p, ".attn.in_proj_weight");
        const float *in_w = bind(b, name, 2, SHAPE(3 * w, w));
        pack_into(b, &blk->in_proj, in_w, 3 * w, w, 0);
        join_key(name, sizeof name, p, ".attn.in_proj_bias");
        blk->in_proj.bias = bind(b, name, 1, SHAPE(3 * w));
        join_key(name, sizeof name, p, ".attn.out_proj");
        bind_linear(b, &blk->out_proj, name, w, w, 1, 0);
        join_key(name, sizeof name, p, ".ln_2");
        bind_norm(b, &blk->ln2_weight, &blk->ln2_bias, name, w);
        join_key(name, sizeof name, p, ".mlp.c_fc");
        bind_linear(b, &blk->c_fc, name, 4 * w, w, 1, 0);
        join_key(name, sizeof name, p, ".mlp.c_proj");
        bind_linear(b, &blk->c_proj, name, w, 4 * w, 1, 0);
    }
    bind_norm(b, &m->ln_final_weight, &m->ln_final_bias, "text.ln_final", w);
    /* text_projection is a bare [W, E] parameter used as x·P: pack it as [k, n]. */
    const float *proj = bind(b, "text.text_projection", 2, SHAPE(w, c->embed_dim));
    pack_into(b, &m->text_projection, proj, c->embed_dim, w, 1);
    m->text_projection.bias = NULL;
}

vt_status weights_bind(struct vt_model *m, vt_error *err) {
    binder b = {.m = m, .err = err};
    vt_status st = key_index_build(m->checkpoint, &b.ix, err);
    if (st) { key_index_free(&b.ix); return st; }
    bind_image_tower(&b);
    int text_present = key_index_find(&b.ix, "text.token_embedding.weight", NULL) != NULL;
    m->has_text = m->cfg.text_width > 0 && text_present;
    if (m->has_text) bind_text_tower(&b);
    m->logit_scale = 0.0f;
    if (!b.status && key_index_find(&b.ix, "logit_scale", NULL)) {
        const float *ls = bind(&b, "logit_scale", 0, NULL);
        if (ls) m->logit_scale = ls[0];
    } else if (!b.status && m->has_text) {
        b.status = vt_fail(err, VT_ERR_SHAPE, "tensor 'logit_scale' [] is missing from the checkpoint (model %s)", m->cfg.name);
    }
    /* Strict: every tensor must have been used (open_clip loads with strict=True). */
    for (size_t i = 0; i < b.ix.count && !b.status; i++) {
        if (!b.ix.used[i]) {
            char got[128];
            format_shape(got, sizeof got, b.ix.tensors[i]->ndim, b.ix.tensors[i]->shape);
            b.status = vt_fail(err, VT_ERR_SHAPE,
                               "unexpected tensor '%s' %s in the checkpoint: model %s has no such parameter "
                               "(wrong --model-name, or not a ViTamin checkpoint?)",
                               b.ix.tensors[i]->name, got, m->cfg.name);
        }
    }
    key_index_free(&b.ix);
    return b.status;
}
