/* Binding checkpoint tensors to the model, strictly (as open_clip's
 * load_state_dict(strict=True) after its key normalisation: open_clip factory.py
 * load_checkpoint). */
#include "model/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/checkpoint_keys.h"
#include "model/pos_embed_resample.h"
#include "model/schema.h"
#include "kernels/conv.h"

/* ---------- binding ---------- */

typedef struct {
    struct vt_model *m;
    key_index ix;
    model_schema schema; /* what m->cfg must hold: names and shapes */
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

/* The schema's tensor (kind, i, j): its fp32 data after the name/shape check;
 * *entry (if given) is its schema row, for the shape. */
static const float *bind_kind_entry(binder *b, schema_kind kind, int i, int j, const schema_tensor **entry) {
    if (b->status) return NULL;
    int k = schema_find(&b->schema, kind, i, j);
    if (k < 0) {
        char name[160];
        schema_name(kind, i, j, name, sizeof name);
        b->status = vt_fail(b->err, VT_ERR_MODEL, "model %s has no tensor '%s' (a schema/binder mismatch)",
                            b->m->cfg.name, name);
        return NULL;
    }
    const schema_tensor *t = &b->schema.tensors[k];
    if (entry) *entry = t;
    return bind(b, t->name, t->ndim, t->shape);
}

static const float *bind_kind(binder *b, schema_kind kind, int i, int j) { return bind_kind_entry(b, kind, i, j, NULL); }

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

/* Linear or 1×1 conv: weight [out, in(, 1, 1)] packed, optional bias. */
static void bind_linear(binder *b, linear_layer *layer, schema_kind weight, schema_kind bias, int i, int j) {
    const schema_tensor *t;
    const float *w = bind_kind_entry(b, weight, i, j, &t);
    layer->bias = NULL;
    if (!w) return;
    pack_into(b, layer, w, (int)t->shape[0], (int)t->shape[1], 0);
    if (bias != T_KIND_COUNT) layer->bias = bind_kind(b, bias, i, j);
}

/* 3×3 dense conv [out, in, 3, 3], reordered to [out][kh][kw][in] and packed for im2col. */
static void bind_conv3x3(binder *b, linear_layer *layer, schema_kind weight, schema_kind bias) {
    const schema_tensor *t;
    const float *w = bind_kind_entry(b, weight, -1, -1, &t);
    if (!w) return;
    int out = (int)t->shape[0], in = (int)t->shape[1];
    float *ohwi = malloc((size_t)out * in * 9 * sizeof(float));
    if (!ohwi) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    conv3x3_weight_to_ohwi(ohwi, w, out, in);
    pack_into(b, layer, ohwi, out, 9 * in, 0);
    free(ohwi);
    layer->bias = bind_kind(b, bias, -1, -1);
}

static void bind_norm(binder *b, const float **weight, const float **bias, schema_kind w, schema_kind bk, int i,
                      int j) {
    *weight = bind_kind(b, w, i, j);
    *bias = bind_kind(b, bk, i, j);
}

static void bind_mbconv(binder *b, mbconv_block *blk, int s, int i) {
    int mid = 4 * blk->out_channels;
    bind_norm(b, &blk->pre_norm_weight, &blk->pre_norm_bias, T_MB_PRE_NORM_W, T_MB_PRE_NORM_B, s, i);
    bind_linear(b, &blk->conv1, T_MB_CONV1_W, T_MB_CONV1_B, s, i);
    const float *dw = bind_kind(b, T_MB_DW_W, s, i);
    if (dw) {
        blk->depthwise_weight = own(b, (size_t)9 * mid * sizeof(float));
        if (!blk->depthwise_weight) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
        for (int c = 0; c < mid; c++)
            for (int k = 0; k < 9; k++) blk->depthwise_weight[k * mid + c] = dw[c * 9 + k];
    }
    blk->depthwise_bias = bind_kind(b, T_MB_DW_B, s, i);
    bind_linear(b, &blk->conv3, T_MB_CONV3_W, T_MB_CONV3_B, s, i);
    if (blk->has_expand) bind_linear(b, &blk->expand, T_MB_EXPAND_W, T_MB_EXPAND_B, s, i);
}

static void bind_image_tower(binder *b) {
    struct vt_model *m = b->m;
    const vt_model_config *c = &m->cfg;
    bind_conv3x3(b, &m->stem_conv1, T_STEM_CONV1_W, T_STEM_CONV1_B);
    bind_norm(b, &m->stem_norm_weight, &m->stem_norm_bias, T_STEM_NORM1_W, T_STEM_NORM1_B, -1, -1);
    bind_conv3x3(b, &m->stem_conv2, T_STEM_CONV2_W, T_STEM_CONV2_B);

    image_topology topo;
    if (image_topology_build(c, &topo)) {
        b->status = vt_fail(b->err, VT_ERR_MODEL, "model %s has more than %d MBConv blocks", c->name, VT_MAX_MBCONV);
        return;
    }
    m->mbconv_count = topo.mbconv_count;
    for (int k = 0; k < topo.mbconv_count; k++) {
        const topo_mbconv *t = &topo.mbconv[k];
        mbconv_block *blk = &m->mbconv[k];
        blk->in_channels = t->cin;
        blk->out_channels = t->cout;
        blk->stride = t->stride;
        blk->has_expand = t->has_expand;
        bind_mbconv(b, blk, t->stage, t->index);
    }
    bind_norm(b, &m->pool_norm_weight, &m->pool_norm_bias, T_POOL_NORM_W, T_POOL_NORM_B, -1, -1);
    bind_conv3x3(b, &m->pool_proj, T_POOL_PROJ_W, T_POOL_PROJ_B);

    int d = c->width, h = c->mlp_hidden;
    m->pos_embed = c->has_pos_embed ? bind_kind(b, T_POS_EMBED, -1, -1) : NULL;
    m->vit = calloc((size_t)c->depth, sizeof *m->vit);
    if (!m->vit) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    for (int i = 0; i < c->depth && !b->status; i++) {
        vit_block *blk = &m->vit[i];
        bind_norm(b, &blk->norm1_weight, &blk->norm1_bias, T_BLK_NORM1_W, T_BLK_NORM1_B, i, -1);
        bind_linear(b, &blk->qkv, T_BLK_QKV_W, T_BLK_QKV_B, i, -1);
        bind_linear(b, &blk->proj, T_BLK_PROJ_W, T_BLK_PROJ_B, i, -1);
        bind_norm(b, &blk->norm2_weight, &blk->norm2_bias, T_BLK_NORM2_W, T_BLK_NORM2_B, i, -1);
        bind_norm(b, &blk->mlp_norm_weight, &blk->mlp_norm_bias, T_BLK_MLP_NORM_W, T_BLK_MLP_NORM_B, i, -1);
        /* w0 (gated) and w1 (linear) read the same input: one GEMM, its rows
         * interleaved so that the GEMM gates in its epilogue (gemm.h). */
        const float *w0 = bind_kind(b, T_BLK_W0_W, i, -1), *w1 = bind_kind(b, T_BLK_W1_W, i, -1);
        const float *b0 = bind_kind(b, T_BLK_W0_B, i, -1), *b1 = bind_kind(b, T_BLK_W1_B, i, -1);
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
        bind_linear(b, &blk->w2, T_BLK_W2_W, T_BLK_W2_B, i, -1);
    }
    bind_norm(b, &m->fc_norm_weight, &m->fc_norm_bias, T_FC_NORM_W, T_FC_NORM_B, -1, -1);
    /* open_clip's head has no bias; a timm image-only checkpoint's head.bias is honoured. */
    int head_bias = schema_find(&b->schema, T_HEAD_PROJ_B, -1, -1) >= 0;
    bind_linear(b, &m->head_proj, T_HEAD_PROJ_W, head_bias ? T_HEAD_PROJ_B : T_KIND_COUNT, -1, -1);
}

/* A p×p stride-p conv [out, in, p, p] as a GEMM over (ky, kx, c) patch
 * vectors of an NHWC map (kernels/conv.h patchify_nhwc). */
static void bind_patch_conv(binder *b, linear_layer *layer, schema_kind weight, schema_kind bias, int i) {
    const schema_tensor *t;
    const float *w = bind_kind_entry(b, weight, i, -1, &t);
    if (!w) return;
    int out = (int)t->shape[0], in = (int)t->shape[1], k = (int)t->shape[2];
    float *ohwi = malloc((size_t)out * in * k * k * sizeof(float));
    if (!ohwi) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    conv_weight_to_ohwi(ohwi, w, out, in, k);
    pack_into(b, layer, ohwi, out, k * k * in, 0);
    free(ohwi);
    layer->bias = bind_kind(b, bias, i, -1);
}

static void bind_convnext_block(binder *b, convnext_block *blk, int s, int i, int d) {
    const float *dw = bind_kind(b, T_CNX_DW_W, s, i);
    if (dw) {
        if (!(blk->dw_weight = own(b, (size_t)49 * d * sizeof(float)))) {
            b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory");
            return;
        }
        for (int ch = 0; ch < d; ch++)
            for (int k = 0; k < 49; k++) blk->dw_weight[k * d + ch] = dw[ch * 49 + k];
    }
    blk->dw_bias = bind_kind(b, T_CNX_DW_B, s, i);
    bind_norm(b, &blk->norm_weight, &blk->norm_bias, T_CNX_NORM_W, T_CNX_NORM_B, s, i);
    bind_linear(b, &blk->fc1, T_CNX_FC1_W, T_CNX_FC1_B, s, i);
    /* gamma folded into fc2: gamma·(W h + b) = (gamma∘W) h + gamma∘b */
    const float *gamma = bind_kind(b, T_CNX_GAMMA, s, i), *w2 = bind_kind(b, T_CNX_FC2_W, s, i);
    const float *b2 = bind_kind(b, T_CNX_FC2_B, s, i);
    if (b->status) return;
    float *scaled = malloc((size_t)d * 4 * d * sizeof(float)), *bias = own(b, (size_t)d * sizeof(float));
    if (!scaled || !bias) {
        free(scaled);
        b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory");
        return;
    }
    for (int o = 0; o < d; o++) {
        for (int k = 0; k < 4 * d; k++) scaled[(size_t)o * 4 * d + k] = gamma[o] * w2[(size_t)o * 4 * d + k];
        bias[o] = gamma[o] * b2[o];
    }
    pack_into(b, &blk->fc2, scaled, d, 4 * d, 0);
    blk->fc2.bias = bias;
    free(scaled);
}

/* timm ConvNeXt under open_clip's TimmModel (model/convnext_tower.c). */
static void bind_convnext_tower(binder *b) {
    struct vt_model *m = b->m;
    const vt_model_config *c = &m->cfg;
    const float *stem = bind_kind(b, T_CNX_STEM_W, -1, -1); /* [C0, 3, 4, 4] = the (c, ky, kx) patch GEMM */
    if (stem) pack_into(b, &m->cnx_stem, stem, c->cnx_dims[0], 48, 0);
    m->cnx_stem.bias = bind_kind(b, T_CNX_STEM_B, -1, -1);
    bind_norm(b, &m->cnx_stem_norm_weight, &m->cnx_stem_norm_bias, T_CNX_STEM_NORM_W, T_CNX_STEM_NORM_B, -1, -1);
    for (int s = 0; s < 4 && !b->status; s++) {
        convnext_stage *st = &m->cnx_stages[s];
        st->depth = c->cnx_depths[s];
        st->dim = c->cnx_dims[s];
        if (s > 0) {
            bind_norm(b, &st->ds_norm_weight, &st->ds_norm_bias, T_CNX_DS_NORM_W, T_CNX_DS_NORM_B, s, -1);
            bind_patch_conv(b, &st->ds_conv, T_CNX_DS_CONV_W, T_CNX_DS_CONV_B, s);
        }
        if (!(st->blocks = calloc((size_t)st->depth, sizeof *st->blocks))) {
            b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory");
            return;
        }
        for (int i = 0; i < st->depth && !b->status; i++) bind_convnext_block(b, &st->blocks[i], s, i, st->dim);
    }
    bind_norm(b, &m->cnx_head_norm_weight, &m->cnx_head_norm_bias, T_CNX_HEAD_NORM_W, T_CNX_HEAD_NORM_B, -1, -1);
    if (c->head_mlp) {
        bind_linear(b, &m->head_fc1, T_HEAD_MLP_FC1_W, T_HEAD_MLP_FC1_B, -1, -1);
        int bias = schema_find(&b->schema, T_HEAD_MLP_FC2_B, -1, -1) >= 0;
        bind_linear(b, &m->head_fc2, T_HEAD_MLP_FC2_W, bias ? T_HEAD_MLP_FC2_B : T_KIND_COUNT, -1, -1);
    } else {
        int bias = schema_find(&b->schema, T_HEAD_PROJ_B, -1, -1) >= 0;
        bind_linear(b, &m->head_proj, T_HEAD_PROJ_W, bias ? T_HEAD_PROJ_B : T_KIND_COUNT, -1, -1);
    }
}

/* open_clip ResidualAttentionBlock i of a tower (model/schema.h resblock_kinds). */
static void bind_resblock(binder *b, resblock *blk, const resblock_kinds *k, int i) {
    bind_norm(b, &blk->ln1_weight, &blk->ln1_bias, k->ln1_w, k->ln1_b, i, -1);
    bind_linear(b, &blk->in_proj, k->in_w, k->in_b, i, -1);
    bind_linear(b, &blk->out_proj, k->out_w, k->out_b, i, -1);
    bind_norm(b, &blk->ln2_weight, &blk->ln2_bias, k->ln2_w, k->ln2_b, i, -1);
    bind_linear(b, &blk->c_fc, k->fc_w, k->fc_b, i, -1);
    bind_linear(b, &blk->c_proj, k->cp_w, k->cp_b, i, -1);
    /* LayerScale exists exactly when the schema has it (ls_init_value). */
    int has_ls = k->ls1 != T_KIND_COUNT && schema_find(&b->schema, k->ls1, i, -1) >= 0;
    blk->ls1 = has_ls ? bind_kind(b, k->ls1, i, -1) : NULL;
    blk->ls2 = has_ls ? bind_kind(b, k->ls2, i, -1) : NULL;
}

/* The positional embedding of a ViT run at another size (--image-size): the
 * stored [g² + 1, W] grid resampled to the configured one, as open_clip's
 * resize_pos_embed does when it loads a checkpoint into such a model. */
static const float *bind_resampled_pos(binder *b) {
    const vt_model_config *c = &b->m->cfg;
    int from = b->m->vit_pos_stored_grid, to = vt_config_token_grid(c);
    char name[160];
    schema_name(T_VIT_POS, -1, -1, name, sizeof name);
    const float *stored = bind(b, name, 2, (const int64_t[]){(int64_t)from * from + 1, c->width});
    float *out = stored ? own(b, ((size_t)to * to + 1) * c->width * sizeof(float)) : NULL;
    if (stored && !out) b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory resampling '%s'", name);
    if (!out) return NULL;
    if (!b->status) b->status = pos_embed_resample(stored, from, to, c->width, out, b->err);
    return b->status ? NULL : out;
}

/* open_clip VisionTransformer: conv1 [W, 3, p, p] is already the [W, 3p²]
 * matrix of vit_tower.c's (channel, ky, kx) patch vectors. */
static void bind_vit_tower(binder *b) {
    struct vt_model *m = b->m;
    const vt_model_config *c = &m->cfg;
    const schema_tensor *t;
    const float *conv1 = bind_kind_entry(b, T_VIT_CONV1_W, -1, -1, &t);
    if (conv1) pack_into(b, &m->patch_embed, conv1, c->width, 3 * c->patch_size * c->patch_size, 0);
    m->patch_embed.bias = NULL;
    m->class_embedding = bind_kind(b, T_VIT_CLASS_EMB, -1, -1);
    m->vit_pos = m->vit_pos_stored_grid ? bind_resampled_pos(b) : bind_kind(b, T_VIT_POS, -1, -1);
    m->ln_pre_weight = m->ln_pre_bias = NULL;
    if (!c->no_ln_pre) bind_norm(b, &m->ln_pre_weight, &m->ln_pre_bias, T_VIT_LN_PRE_W, T_VIT_LN_PRE_B, -1, -1);
    m->vit_blocks = calloc((size_t)c->depth, sizeof *m->vit_blocks);
    if (!m->vit_blocks) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    for (int i = 0; i < c->depth && !b->status; i++) bind_resblock(b, &m->vit_blocks[i], &SCHEMA_VIT_BLOCK, i);
    bind_norm(b, &m->ln_post_weight, &m->ln_post_bias, T_VIT_LN_POST_W, T_VIT_LN_POST_B, -1, -1);
    /* proj is a bare [W, E] parameter used as x·P: pack it as [k, n]. */
    const float *proj = bind_kind(b, T_VIT_PROJ, -1, -1);
    pack_into(b, &m->vit_proj, proj, c->embed_dim, c->width, 1);
    m->vit_proj.bias = NULL;
}

static void bind_text_tower(binder *b) {
    struct vt_model *m = b->m;
    const vt_model_config *c = &m->cfg;
    int w = c->text_width;
    m->token_embedding = bind_kind(b, T_TXT_TOKEN, -1, -1);
    m->positional_embedding = bind_kind(b, T_TXT_POS, -1, -1);
    m->text = calloc((size_t)c->text_layers, sizeof *m->text);
    if (!m->text) { b->status = vt_fail(b->err, VT_ERR_NOMEM, "out of memory"); return; }
    for (int i = 0; i < c->text_layers && !b->status; i++) bind_resblock(b, &m->text[i], &SCHEMA_TEXT_BLOCK, i);
    bind_norm(b, &m->ln_final_weight, &m->ln_final_bias, T_TXT_LN_FINAL_W, T_TXT_LN_FINAL_B, -1, -1);
    /* text_projection is a bare [W, E] parameter used as x·P: pack it as [k, n]. */
    const float *proj = bind_kind(b, T_TXT_PROJ, -1, -1);
    pack_into(b, &m->text_projection, proj, c->embed_dim, w, 1);
    m->text_projection.bias = NULL;
}

vt_status weights_bind(struct vt_model *m, vt_error *err) {
    binder b = {.m = m, .err = err};
    vt_status st = key_index_build(m->checkpoint, &b.ix, err);
    if (st) { key_index_free(&b.ix); return st; }
    char token[64], head_bias[64], mlp_bias[64];
    schema_name(T_TXT_TOKEN, -1, -1, token, sizeof token);
    schema_name(T_HEAD_PROJ_B, -1, -1, head_bias, sizeof head_bias);
    schema_name(T_HEAD_MLP_FC2_B, -1, -1, mlp_bias, sizeof mlp_bias);
    int text_present = key_index_find(&b.ix, token, NULL) != NULL;
    m->has_text = m->cfg.text_width > 0 && text_present;
    /* the head's output bias (timm_proj_bias) is whatever the checkpoint holds */
    int has_head_bias = key_index_find(&b.ix, head_bias, NULL) || key_index_find(&b.ix, mlp_bias, NULL);
    st = schema_build(&m->cfg, m->has_text, has_head_bias, &b.schema, err);
    if (st) { key_index_free(&b.ix); return st; }
    if (m->cfg.image_tower == VT_TOWER_VIT)
        bind_vit_tower(&b);
    else if (m->cfg.image_tower == VT_TOWER_CONVNEXT)
        bind_convnext_tower(&b);
    else
        bind_image_tower(&b);
    if (m->has_text) bind_text_tower(&b);
    m->logit_scale = 0.0f;
    char logit_scale[32];
    schema_name(T_LOGIT_SCALE, -1, -1, logit_scale, sizeof logit_scale);
    if (!b.status && key_index_find(&b.ix, logit_scale, NULL)) {
        const float *ls = bind_kind(&b, T_LOGIT_SCALE, -1, -1);
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
                               "(wrong --model-name, or a checkpoint of another architecture?)",
                               b.ix.tensors[i]->name, got, m->cfg.name);
        }
    }
    key_index_free(&b.ix);
    schema_free(&b.schema);
    return b.status;
}
