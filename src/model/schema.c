/* The CLIP schemas (see schema.h). Order and shapes follow open_clip's
 * state_dicts: CustomTextCLIP over a timm "vitamin_*" trunk (timm
 * models/vitamin.py), CLIP over a VisionTransformer (open_clip model.py,
 * transformer.py). */
#include "model/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/topology.h"

typedef struct {
    const char *pattern;
    schema_tower tower;
    schema_role role;
} kind_info;

static const kind_info KINDS[T_KIND_COUNT] = {
#define SCHEMA_INFO(kind, name, tower, role) [T_##kind] = {name, SCHEMA_##tower, ROLE_##role},
    SCHEMA_KINDS(SCHEMA_INFO)
#undef SCHEMA_INFO
};

void schema_name(schema_kind kind, int i, int j, char *out, size_t size) {
    if ((unsigned)kind >= T_KIND_COUNT) {
        snprintf(out, size, "?");
        return;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out, size, KINDS[kind].pattern, i, j);
#pragma GCC diagnostic pop
}

/* open_clip_train/main.py: exclude = ndim < 2 or "bn"/"ln"/"bias"/"logit_scale"
 * in the name; everything else is decayed — including the token and positional
 * embeddings, pos_embed and text_projection (ndim >= 2). */
static int open_clip_decays(const char *name, int ndim) {
    return !(ndim < 2 || strstr(name, "bn") || strstr(name, "ln") || strstr(name, "bias") ||
             strstr(name, "logit_scale"));
}

typedef struct {
    model_schema *s;
    int capacity;
    int failed;
} builder;

static void add(builder *b, schema_kind kind, int i, int j, int lock_group, int ndim, const int64_t *shape) {
    if (b->failed) return;
    model_schema *s = b->s;
    if (s->count == b->capacity) {
        int cap = b->capacity ? 2 * b->capacity : 256;
        schema_tensor *grown = realloc(s->tensors, (size_t)cap * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return;
        }
        s->tensors = grown;
        b->capacity = cap;
    }
    schema_tensor *t = &s->tensors[s->count++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->index[0] = i;
    t->index[1] = j;
    schema_name(kind, i, j, t->name, sizeof t->name);
    t->ndim = ndim;
    t->count = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->count *= (size_t)shape[d];
    }
    t->tower = KINDS[kind].tower;
    t->role = KINDS[kind].role;
    t->decay = open_clip_decays(t->name, ndim);
    t->lock_group = lock_group;
    s->params[t->tower] += (int64_t)t->count;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
/* ADD(kind, i, j, lock group, (shape...)) */
#define ADD(kind, i, j, group, shape) add(&b, T_##kind, i, j, group, NDIM shape, S shape)

/* Lock groups as open_clip counts them (train/lock.c has the derivation):
 * image trunk: 0 = pos_embed + the hybrid patch_embed, 1 + i = block i,
 * depth + 1 = fc_norm; the head is never locked. Text: 0 = token and
 * positional embeddings, 1 + i = resblock i (the last shares its group with
 * ln_final), layers + 1 = text_projection. */
const resblock_kinds SCHEMA_VIT_BLOCK = {T_VIT_LN1_W, T_VIT_LN1_B, T_VIT_IN_PROJ_W, T_VIT_IN_PROJ_B,
                                         T_VIT_OUT_PROJ_W, T_VIT_OUT_PROJ_B, T_VIT_LS1, T_VIT_LN2_W,
                                         T_VIT_LN2_B, T_VIT_FC_W, T_VIT_FC_B, T_VIT_CPROJ_W, T_VIT_CPROJ_B,
                                         T_VIT_LS2};
const resblock_kinds SCHEMA_TEXT_BLOCK = {T_TXT_LN1_W, T_TXT_LN1_B, T_TXT_IN_PROJ_W, T_TXT_IN_PROJ_B,
                                          T_TXT_OUT_PROJ_W, T_TXT_OUT_PROJ_B, T_KIND_COUNT, T_TXT_LN2_W,
                                          T_TXT_LN2_B, T_TXT_FC_W, T_TXT_FC_B, T_TXT_CPROJ_W, T_TXT_CPROJ_B,
                                          T_KIND_COUNT};

/* Resblock i (lock group g) of width w and MLP width `hidden`. */
static void add_resblock(builder *b, const resblock_kinds *k, int i, int g, int w, int hidden, int layer_scale) {
    add(b, k->ln1_w, i, -1, g, 1, S(w));
    add(b, k->ln1_b, i, -1, g, 1, S(w));
    add(b, k->in_w, i, -1, g, 2, S(3 * w, w));
    add(b, k->in_b, i, -1, g, 1, S(3 * w));
    add(b, k->out_w, i, -1, g, 2, S(w, w));
    add(b, k->out_b, i, -1, g, 1, S(w));
    if (layer_scale) add(b, k->ls1, i, -1, g, 1, S(w));
    add(b, k->ln2_w, i, -1, g, 1, S(w));
    add(b, k->ln2_b, i, -1, g, 1, S(w));
    add(b, k->fc_w, i, -1, g, 2, S(hidden, w));
    add(b, k->fc_b, i, -1, g, 1, S(hidden));
    add(b, k->cp_w, i, -1, g, 2, S(w, hidden));
    add(b, k->cp_b, i, -1, g, 1, S(w));
    if (layer_scale) add(b, k->ls2, i, -1, g, 1, S(w));
}

static vt_status add_vitamin_tower(builder *bp, const vt_model_config *c, int head_bias, vt_error *err);
static void add_text_tower(builder *bp, const vt_model_config *c, int with_text);

/* open_clip VisionTransformer (transformer.py), in its state_dict order:
 * its own parameters, then conv1, ln_pre, the resblocks, ln_post. Lock
 * groups as its lock(): 0 = conv1, class and positional embeddings, ln_pre;
 * 1 + i = resblock i, the last sharing its group with ln_post; layers + 1 =
 * proj. */
static void add_vit_tower(builder *bp, const vt_model_config *c) {
    builder b = *bp;
    int grid = vt_config_token_grid(c), d = c->width, h = c->mlp_hidden, p = c->patch_size, L = c->depth;
    ADD(VIT_CLASS_EMB, -1, -1, 0, (d));
    ADD(VIT_POS, -1, -1, 0, (grid * grid + 1, d));
    ADD(VIT_PROJ, -1, -1, L + 1, (d, c->embed_dim));
    ADD(VIT_CONV1_W, -1, -1, 0, (d, 3, p, p));
    if (!c->no_ln_pre) {
        ADD(VIT_LN_PRE_W, -1, -1, 0, (d));
        ADD(VIT_LN_PRE_B, -1, -1, 0, (d));
    }
    for (int i = 0; i < L; i++) add_resblock(&b, &SCHEMA_VIT_BLOCK, i, 1 + i, d, h, c->ls_init > 0);
    ADD(VIT_LN_POST_W, -1, -1, L, (d));
    ADD(VIT_LN_POST_B, -1, -1, L, (d));
    *bp = b;
}

/* timm convnext.py under open_clip's TimmModel, in state_dict order: stem,
 * stages (downsample, then blocks: gamma registers first), head.norm, then
 * open_clip's head (linear proj, or the mlp of timm_proj "mlp"; biases as
 * timm_proj_bias, which the checkpoint tells). The MLP weights are
 * [out, in, 1, 1] for a conv_mlp trunk.
 *
 * Lock groups as TimmModel.lock numbers them: timm's group_parameters with
 * ConvNeXt.group_matcher() (fine, convnext.py 495-510) gives stem (0,),
 * stages.S.downsample (1, S, 0), stages.S.blocks.I (1, S, I), and the
 * unmatched head.norm inf; sorted and renumbered, group 0 is the stem, each
 * block has a group of its own in order (a stage's downsample shares its
 * first block's key, hence its group), and head.norm is the last. */
static void add_convnext_tower(builder *bp, const vt_model_config *c, int head_bias) {
    builder b = *bp;
    int d0 = c->cnx_dims[0], e = c->embed_dim, w = c->width, group = 1;
    ADD(CNX_STEM_W, -1, -1, 0, (d0, 3, 4, 4));
    ADD(CNX_STEM_B, -1, -1, 0, (d0));
    ADD(CNX_STEM_NORM_W, -1, -1, 0, (d0));
    ADD(CNX_STEM_NORM_B, -1, -1, 0, (d0));
    for (int s = 0; s < 4; s++) {
        int d = c->cnx_dims[s];
        if (s > 0) {
            int prev = c->cnx_dims[s - 1];
            ADD(CNX_DS_NORM_W, s, -1, group, (prev));
            ADD(CNX_DS_NORM_B, s, -1, group, (prev));
            ADD(CNX_DS_CONV_W, s, -1, group, (d, prev, 2, 2));
            ADD(CNX_DS_CONV_B, s, -1, group, (d));
        }
        for (int i = 0; i < c->cnx_depths[s]; i++, group++) {
            ADD(CNX_GAMMA, s, i, group, (d));
            ADD(CNX_DW_W, s, i, group, (d, 1, 7, 7));
            ADD(CNX_DW_B, s, i, group, (d));
            ADD(CNX_NORM_W, s, i, group, (d));
            ADD(CNX_NORM_B, s, i, group, (d));
            if (c->cnx_conv_mlp) ADD(CNX_FC1_W, s, i, group, (4 * d, d, 1, 1));
            else ADD(CNX_FC1_W, s, i, group, (4 * d, d));
            ADD(CNX_FC1_B, s, i, group, (4 * d));
            if (c->cnx_conv_mlp) ADD(CNX_FC2_W, s, i, group, (d, 4 * d, 1, 1));
            else ADD(CNX_FC2_W, s, i, group, (d, 4 * d));
            ADD(CNX_FC2_B, s, i, group, (d));
        }
    }
    ADD(CNX_HEAD_NORM_W, -1, -1, group, (w));
    ADD(CNX_HEAD_NORM_B, -1, -1, group, (w));
    if (c->head_mlp) {
        ADD(HEAD_MLP_FC1_W, -1, -1, -1, (2 * e, w));
        ADD(HEAD_MLP_FC1_B, -1, -1, -1, (2 * e));
        ADD(HEAD_MLP_FC2_W, -1, -1, -1, (e, 2 * e));
        if (head_bias) ADD(HEAD_MLP_FC2_B, -1, -1, -1, (e));
    } else {
        ADD(HEAD_PROJ_W, -1, -1, -1, (e, w));
        if (head_bias) ADD(HEAD_PROJ_B, -1, -1, -1, (e));
    }
    b.s->image_lock_groups = group + 1;
    *bp = b;
}

vt_status schema_build(const vt_model_config *c, int with_text, int head_bias, model_schema *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    builder b = {out, 0, 0};
    add(&b, T_LOGIT_SCALE, -1, -1, -1, 0, NULL);
    if (c->image_tower == VT_TOWER_VIT) {
        add_vit_tower(&b, c);
        out->image_lock_groups = c->depth + 2;
    } else if (c->image_tower == VT_TOWER_CONVNEXT) {
        add_convnext_tower(&b, c, head_bias);
    } else {
        vt_status st = add_vitamin_tower(&b, c, head_bias, err);
        if (st) {
            schema_free(out);
            return st;
        }
    }
    out->mlp_glu = c->mlp_glu;
    add_text_tower(&b, c, with_text);
    if (b.failed) {
        schema_free(out);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for the tensor table of %s", c->name);
    }
    return VT_OK;
}

/* The ViTamin trunk (timm models/vitamin.py) and its head, in open_clip's
 * CustomTextCLIP state_dict order. */
static vt_status add_vitamin_tower(builder *bp, const vt_model_config *c, int head_bias, vt_error *err) {
    builder b = *bp;
    model_schema *out = b.s;
    int n = vt_config_token_grid(c) * vt_config_token_grid(c), d = c->width, h = c->mlp_hidden, c0 = c->stem_width;
    if (c->has_pos_embed) ADD(POS_EMBED, -1, -1, 0, (1, n, d));
    ADD(STEM_CONV1_W, -1, -1, 0, (c0, 3, 3, 3));
    ADD(STEM_CONV1_B, -1, -1, 0, (c0));
    ADD(STEM_NORM1_W, -1, -1, 0, (c0));
    ADD(STEM_NORM1_B, -1, -1, 0, (c0));
    ADD(STEM_CONV2_W, -1, -1, 0, (c0, c0, 3, 3));
    ADD(STEM_CONV2_B, -1, -1, 0, (c0));
    image_topology topo;
    if (image_topology_build(c, &topo))
        return vt_fail(err, VT_ERR_MODEL, "%s: more than %d MBConv blocks", c->name, VT_MAX_MBCONV);
    for (int k = 0; k < topo.mbconv_count; k++) {
        const topo_mbconv *t = &topo.mbconv[k];
        int s = t->stage, i = t->index, cin = t->cin, cout = t->cout, mid = t->mid;
        if (t->has_expand) { /* the stride-2 block's shortcut: pool, then a 1x1 conv */
            ADD(MB_EXPAND_W, s, i, 0, (cout, cin, 1, 1));
            ADD(MB_EXPAND_B, s, i, 0, (cout));
        }
        ADD(MB_PRE_NORM_W, s, i, 0, (cin));
        ADD(MB_PRE_NORM_B, s, i, 0, (cin));
        ADD(MB_CONV1_W, s, i, 0, (mid, cin, 1, 1));
        ADD(MB_CONV1_B, s, i, 0, (mid));
        ADD(MB_DW_W, s, i, 0, (mid, 1, 3, 3));
        ADD(MB_DW_B, s, i, 0, (mid));
        ADD(MB_CONV3_W, s, i, 0, (cout, mid, 1, 1));
        ADD(MB_CONV3_B, s, i, 0, (cout));
    }
    int cin = topo.pool_channels;
    /* state_dict order puts pool.proj before pool.norm (registration order),
     * although the norm runs first. */
    ADD(POOL_PROJ_W, -1, -1, 0, (d, cin, 3, 3));
    ADD(POOL_PROJ_B, -1, -1, 0, (d));
    ADD(POOL_NORM_W, -1, -1, 0, (cin));
    ADD(POOL_NORM_B, -1, -1, 0, (cin));
    for (int i = 0; i < c->depth; i++) {
        int g = 1 + i;
        ADD(BLK_NORM1_W, i, -1, g, (d));
        ADD(BLK_NORM1_B, i, -1, g, (d));
        ADD(BLK_QKV_W, i, -1, g, (3 * d, d));
        ADD(BLK_QKV_B, i, -1, g, (3 * d));
        ADD(BLK_PROJ_W, i, -1, g, (d, d));
        ADD(BLK_PROJ_B, i, -1, g, (d));
        ADD(BLK_NORM2_W, i, -1, g, (d));
        ADD(BLK_NORM2_B, i, -1, g, (d));
        ADD(BLK_MLP_NORM_W, i, -1, g, (d));
        ADD(BLK_MLP_NORM_B, i, -1, g, (d));
        ADD(BLK_W0_W, i, -1, g, (h, d));
        ADD(BLK_W0_B, i, -1, g, (h));
        ADD(BLK_W1_W, i, -1, g, (h, d));
        ADD(BLK_W1_B, i, -1, g, (h));
        ADD(BLK_W2_W, i, -1, g, (d, h));
        ADD(BLK_W2_B, i, -1, g, (d));
    }
    ADD(FC_NORM_W, -1, -1, c->depth + 1, (d));
    ADD(FC_NORM_B, -1, -1, c->depth + 1, (d));
    ADD(HEAD_PROJ_W, -1, -1, -1, (c->embed_dim, d));
    if (head_bias) ADD(HEAD_PROJ_B, -1, -1, -1, (c->embed_dim));
    out->image_lock_groups = c->depth + 2;
    *bp = b;
    return VT_OK;
}

/* open_clip TextTransformer (every config here), in state_dict order. */
static void add_text_tower(builder *bp, const vt_model_config *c, int with_text) {
    builder b = *bp;
    model_schema *out = b.s;
    int w = c->text_width, layers = c->text_layers;
    if (with_text && w > 0) {
        ADD(TXT_POS, -1, -1, 0, (c->context_length, w));
        ADD(TXT_PROJ, -1, -1, layers + 1, (w, c->embed_dim));
        ADD(TXT_TOKEN, -1, -1, 0, (c->vocab_size, w));
        for (int i = 0; i < layers; i++) add_resblock(&b, &SCHEMA_TEXT_BLOCK, i, 1 + i, w, 4 * w, 0);
        ADD(TXT_LN_FINAL_W, -1, -1, layers, (w));
        ADD(TXT_LN_FINAL_B, -1, -1, layers, (w));
        out->text_lock_groups = layers + 2;
    }
    *bp = b;
}

void schema_free(model_schema *s) {
    free(s->tensors);
    memset(s, 0, sizeof *s);
}

int schema_find(const model_schema *s, schema_kind kind, int i, int j) {
    for (int k = 0; k < s->count; k++) {
        const schema_tensor *t = &s->tensors[k];
        if (t->kind == kind && t->index[0] == i && t->index[1] == j) return k;
    }
    return -1;
}

int schema_is_buffer(const char *name) { return !strcmp(name, "text.attn_mask"); }

/* ------------------------------------------------------------ layouts */

/* The text keys of an OpenAI-style CLIP state dict, which has no "text." prefix. */
static const char *const PLAIN_CLIP_TEXT_KEYS[] = {"token_embedding.", "positional_embedding", "transformer.",
                                                   "ln_final.", "text_projection", "attn_mask"};

void schema_detect_layout(const char *key, int *plain_clip_layout, int *timm_image_only) {
    while (!strncmp(key, "module.", 7)) key += 7;
    if (!strcmp(key, "positional_embedding")) *plain_clip_layout = 1;
    if (!strcmp(key, "patch_embed.backbone.stem.conv1.weight")) *timm_image_only = 1;
}

void schema_normalize_key(const char *key, int plain_clip_layout, int timm_image_only, char *out, size_t out_size) {
    while (!strncmp(key, "module.", 7)) key += 7; /* DDP wrapper */
    if (timm_image_only) {
        /* timm's classifier head is the CLIP projection (timm vision_transformer.py checkpoint_filter_fn). */
        if (!strcmp(key, "head.weight")) { schema_name(T_HEAD_PROJ_W, -1, -1, out, out_size); return; }
        if (!strcmp(key, "head.bias")) { schema_name(T_HEAD_PROJ_B, -1, -1, out, out_size); return; }
        snprintf(out, out_size, "visual.trunk.%s", key);
        return;
    }
    if (plain_clip_layout) {
        for (size_t i = 0; i < sizeof PLAIN_CLIP_TEXT_KEYS / sizeof *PLAIN_CLIP_TEXT_KEYS; i++) {
            if (!strncmp(key, PLAIN_CLIP_TEXT_KEYS[i], strlen(PLAIN_CLIP_TEXT_KEYS[i]))) {
                snprintf(out, out_size, "text.%s", key);
                return;
            }
        }
    }
    snprintf(out, out_size, "%s", key);
}

void schema_saved_name(const vt_model_config *cfg, const char *name, char *out, size_t out_size) {
    if (cfg->image_tower != VT_TOWER_VITAMIN && !strncmp(name, "text.", 5)) name += 5;
    snprintf(out, out_size, "%s", name);
}
