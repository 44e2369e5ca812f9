/* One schema per architecture: every tensor of a ViTamin, ViT or ConvNeXt CLIP state dict, in
 * open_clip's state_dict order, with its name, shape, tower, role, optimizer
 * group and lock group. The binder (model/weights.c), the training parameter
 * table, its initialisation and its locks (train/params.c, train/lock.c), the
 * training towers' tensor lookups, config cross-checks and parameter counts
 * all read it, so each checkpoint name is spelled here and nowhere else.
 *
 * A tensor is named by its kind (SCHEMA_KINDS below: one name pattern each)
 * and up to two indices (MBConv stage and block, transformer block, text
 * layer), never by a formatted string at the call site: a misspelled tensor
 * does not compile. */
#ifndef VT_MODEL_SCHEMA_H
#define VT_MODEL_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

typedef enum { SCHEMA_IMAGE = 0, SCHEMA_TEXT = 1, SCHEMA_SHARED = 2 } schema_tower;
typedef enum {
    ROLE_WEIGHT,
    ROLE_BIAS,
    ROLE_NORM_WEIGHT,
    ROLE_NORM_BIAS,
    ROLE_EMBEDDING,
    ROLE_SCALE,       /* logit_scale */
    ROLE_LAYER_SCALE  /* LayerScale gamma (open_clip transformer.py LayerScale), initialised to ls_init_value */
} schema_role;

#define SCHEMA_BACKBONE "visual.trunk.patch_embed.backbone"
/* X(kind, name pattern, tower, role); %d are the indices, in order. */
#define SCHEMA_KINDS(X)                                                                          \
    X(LOGIT_SCALE, "logit_scale", SHARED, SCALE)                                                 \
    X(POS_EMBED, "visual.trunk.pos_embed", IMAGE, EMBEDDING)                                     \
    X(STEM_CONV1_W, SCHEMA_BACKBONE ".stem.conv1.weight", IMAGE, WEIGHT)                         \
    X(STEM_CONV1_B, SCHEMA_BACKBONE ".stem.conv1.bias", IMAGE, BIAS)                             \
    X(STEM_NORM1_W, SCHEMA_BACKBONE ".stem.norm1.weight", IMAGE, NORM_WEIGHT)                    \
    X(STEM_NORM1_B, SCHEMA_BACKBONE ".stem.norm1.bias", IMAGE, NORM_BIAS)                        \
    X(STEM_CONV2_W, SCHEMA_BACKBONE ".stem.conv2.weight", IMAGE, WEIGHT)                         \
    X(STEM_CONV2_B, SCHEMA_BACKBONE ".stem.conv2.bias", IMAGE, BIAS)                             \
    X(MB_EXPAND_W, SCHEMA_BACKBONE ".stages.%d.%d.shortcut.expand.weight", IMAGE, WEIGHT)        \
    X(MB_EXPAND_B, SCHEMA_BACKBONE ".stages.%d.%d.shortcut.expand.bias", IMAGE, BIAS)            \
    X(MB_PRE_NORM_W, SCHEMA_BACKBONE ".stages.%d.%d.pre_norm.weight", IMAGE, NORM_WEIGHT)        \
    X(MB_PRE_NORM_B, SCHEMA_BACKBONE ".stages.%d.%d.pre_norm.bias", IMAGE, NORM_BIAS)            \
    X(MB_CONV1_W, SCHEMA_BACKBONE ".stages.%d.%d.conv1_1x1.weight", IMAGE, WEIGHT)               \
    X(MB_CONV1_B, SCHEMA_BACKBONE ".stages.%d.%d.conv1_1x1.bias", IMAGE, BIAS)                   \
    X(MB_DW_W, SCHEMA_BACKBONE ".stages.%d.%d.conv2_kxk.weight", IMAGE, WEIGHT)                  \
    X(MB_DW_B, SCHEMA_BACKBONE ".stages.%d.%d.conv2_kxk.bias", IMAGE, BIAS)                      \
    X(MB_CONV3_W, SCHEMA_BACKBONE ".stages.%d.%d.conv3_1x1.weight", IMAGE, WEIGHT)               \
    X(MB_CONV3_B, SCHEMA_BACKBONE ".stages.%d.%d.conv3_1x1.bias", IMAGE, BIAS)                   \
    X(POOL_PROJ_W, SCHEMA_BACKBONE ".pool.proj.weight", IMAGE, WEIGHT)                           \
    X(POOL_PROJ_B, SCHEMA_BACKBONE ".pool.proj.bias", IMAGE, BIAS)                               \
    X(POOL_NORM_W, SCHEMA_BACKBONE ".pool.norm.weight", IMAGE, NORM_WEIGHT)                      \
    X(POOL_NORM_B, SCHEMA_BACKBONE ".pool.norm.bias", IMAGE, NORM_BIAS)                          \
    X(BLK_NORM1_W, "visual.trunk.blocks.%d.norm1.weight", IMAGE, NORM_WEIGHT)                    \
    X(BLK_NORM1_B, "visual.trunk.blocks.%d.norm1.bias", IMAGE, NORM_BIAS)                        \
    X(BLK_QKV_W, "visual.trunk.blocks.%d.attn.qkv.weight", IMAGE, WEIGHT)                        \
    X(BLK_QKV_B, "visual.trunk.blocks.%d.attn.qkv.bias", IMAGE, BIAS)                            \
    X(BLK_PROJ_W, "visual.trunk.blocks.%d.attn.proj.weight", IMAGE, WEIGHT)                      \
    X(BLK_PROJ_B, "visual.trunk.blocks.%d.attn.proj.bias", IMAGE, BIAS)                          \
    X(BLK_NORM2_W, "visual.trunk.blocks.%d.norm2.weight", IMAGE, NORM_WEIGHT)                    \
    X(BLK_NORM2_B, "visual.trunk.blocks.%d.norm2.bias", IMAGE, NORM_BIAS)                        \
    X(BLK_MLP_NORM_W, "visual.trunk.blocks.%d.mlp.norm.weight", IMAGE, NORM_WEIGHT)              \
    X(BLK_MLP_NORM_B, "visual.trunk.blocks.%d.mlp.norm.bias", IMAGE, NORM_BIAS)                  \
    X(BLK_W0_W, "visual.trunk.blocks.%d.mlp.w0.weight", IMAGE, WEIGHT)                           \
    X(BLK_W0_B, "visual.trunk.blocks.%d.mlp.w0.bias", IMAGE, BIAS)                               \
    X(BLK_W1_W, "visual.trunk.blocks.%d.mlp.w1.weight", IMAGE, WEIGHT)                           \
    X(BLK_W1_B, "visual.trunk.blocks.%d.mlp.w1.bias", IMAGE, BIAS)                               \
    X(BLK_W2_W, "visual.trunk.blocks.%d.mlp.w2.weight", IMAGE, WEIGHT)                           \
    X(BLK_W2_B, "visual.trunk.blocks.%d.mlp.w2.bias", IMAGE, BIAS)                               \
    X(FC_NORM_W, "visual.trunk.fc_norm.weight", IMAGE, NORM_WEIGHT)                              \
    X(FC_NORM_B, "visual.trunk.fc_norm.bias", IMAGE, NORM_BIAS)                                  \
    X(HEAD_PROJ_W, "visual.head.proj.weight", IMAGE, WEIGHT)                                     \
    X(HEAD_PROJ_B, "visual.head.proj.bias", IMAGE, BIAS)                                         \
    X(HEAD_MLP_FC1_W, "visual.head.mlp.fc1.weight", IMAGE, WEIGHT)                               \
    X(HEAD_MLP_FC1_B, "visual.head.mlp.fc1.bias", IMAGE, BIAS)                                   \
    X(HEAD_MLP_FC2_W, "visual.head.mlp.fc2.weight", IMAGE, WEIGHT)                               \
    X(HEAD_MLP_FC2_B, "visual.head.mlp.fc2.bias", IMAGE, BIAS)                                   \
    X(CNX_STEM_W, "visual.trunk.stem.0.weight", IMAGE, WEIGHT)                                   \
    X(CNX_STEM_B, "visual.trunk.stem.0.bias", IMAGE, BIAS)                                       \
    X(CNX_STEM_NORM_W, "visual.trunk.stem.1.weight", IMAGE, NORM_WEIGHT)                         \
    X(CNX_STEM_NORM_B, "visual.trunk.stem.1.bias", IMAGE, NORM_BIAS)                             \
    X(CNX_DS_NORM_W, "visual.trunk.stages.%d.downsample.0.weight", IMAGE, NORM_WEIGHT)           \
    X(CNX_DS_NORM_B, "visual.trunk.stages.%d.downsample.0.bias", IMAGE, NORM_BIAS)               \
    X(CNX_DS_CONV_W, "visual.trunk.stages.%d.downsample.1.weight", IMAGE, WEIGHT)                \
    X(CNX_DS_CONV_B, "visual.trunk.stages.%d.downsample.1.bias", IMAGE, BIAS)                    \
    X(CNX_GAMMA, "visual.trunk.stages.%d.blocks.%d.gamma", IMAGE, LAYER_SCALE)                   \
    X(CNX_DW_W, "visual.trunk.stages.%d.blocks.%d.conv_dw.weight", IMAGE, WEIGHT)                \
    X(CNX_DW_B, "visual.trunk.stages.%d.blocks.%d.conv_dw.bias", IMAGE, BIAS)                    \
    X(CNX_NORM_W, "visual.trunk.stages.%d.blocks.%d.norm.weight", IMAGE, NORM_WEIGHT)            \
    X(CNX_NORM_B, "visual.trunk.stages.%d.blocks.%d.norm.bias", IMAGE, NORM_BIAS)                \
    X(CNX_FC1_W, "visual.trunk.stages.%d.blocks.%d.mlp.fc1.weight", IMAGE, WEIGHT)               \
    X(CNX_FC1_B, "visual.trunk.stages.%d.blocks.%d.mlp.fc1.bias", IMAGE, BIAS)                   \
    X(CNX_FC2_W, "visual.trunk.stages.%d.blocks.%d.mlp.fc2.weight", IMAGE, WEIGHT)               \
    X(CNX_FC2_B, "visual.trunk.stages.%d.blocks.%d.mlp.fc2.bias", IMAGE, BIAS)                   \
    X(CNX_HEAD_NORM_W, "visual.trunk.head.norm.weight", IMAGE, NORM_WEIGHT)                      \
    X(CNX_HEAD_NORM_B, "visual.trunk.head.norm.bias", IMAGE, NORM_BIAS)                          \
    X(VIT_CLASS_EMB, "visual.class_embedding", IMAGE, EMBEDDING)                                 \
    X(VIT_POS, "visual.positional_embedding", IMAGE, EMBEDDING)                                  \
    X(VIT_PROJ, "visual.proj", IMAGE, WEIGHT)                                                    \
    X(VIT_CONV1_W, "visual.conv1.weight", IMAGE, WEIGHT)                                         \
    X(VIT_LN_PRE_W, "visual.ln_pre.weight", IMAGE, NORM_WEIGHT)                                  \
    X(VIT_LN_PRE_B, "visual.ln_pre.bias", IMAGE, NORM_BIAS)                                      \
    X(VIT_LN1_W, "visual.transformer.resblocks.%d.ln_1.weight", IMAGE, NORM_WEIGHT)              \
    X(VIT_LN1_B, "visual.transformer.resblocks.%d.ln_1.bias", IMAGE, NORM_BIAS)                  \
    X(VIT_IN_PROJ_W, "visual.transformer.resblocks.%d.attn.in_proj_weight", IMAGE, WEIGHT)       \
    X(VIT_IN_PROJ_B, "visual.transformer.resblocks.%d.attn.in_proj_bias", IMAGE, BIAS)           \
    X(VIT_OUT_PROJ_W, "visual.transformer.resblocks.%d.attn.out_proj.weight", IMAGE, WEIGHT)     \
    X(VIT_OUT_PROJ_B, "visual.transformer.resblocks.%d.attn.out_proj.bias", IMAGE, BIAS)         \
    X(VIT_LS1, "visual.transformer.resblocks.%d.ls_1.gamma", IMAGE, LAYER_SCALE)                 \
    X(VIT_LN2_W, "visual.transformer.resblocks.%d.ln_2.weight", IMAGE, NORM_WEIGHT)              \
    X(VIT_LN2_B, "visual.transformer.resblocks.%d.ln_2.bias", IMAGE, NORM_BIAS)                  \
    X(VIT_FC_W, "visual.transformer.resblocks.%d.mlp.c_fc.weight", IMAGE, WEIGHT)                \
    X(VIT_FC_B, "visual.transformer.resblocks.%d.mlp.c_fc.bias", IMAGE, BIAS)                    \
    X(VIT_CPROJ_W, "visual.transformer.resblocks.%d.mlp.c_proj.weight", IMAGE, WEIGHT)           \
    X(VIT_CPROJ_B, "visual.transformer.resblocks.%d.mlp.c_proj.bias", IMAGE, BIAS)               \
    X(VIT_LS2, "visual.transformer.resblocks.%d.ls_2.gamma", IMAGE, LAYER_SCALE)                 \
    X(VIT_LN_POST_W, "visual.ln_post.weight", IMAGE, NORM_WEIGHT)                                \
    X(VIT_LN_POST_B, "visual.ln_post.bias", IMAGE, NORM_BIAS)                                    \
    X(TXT_POS, "text.positional_embedding", TEXT, EMBEDDING)                                     \
    X(TXT_PROJ, "text.text_projection", TEXT, WEIGHT)                                            \
    X(TXT_TOKEN, "text.token_embedding.weight", TEXT, EMBEDDING)                                 \
    X(TXT_LN1_W, "text.transformer.resblocks.%d.ln_1.weight", TEXT, NORM_WEIGHT)                 \
    X(TXT_LN1_B, "text.transformer.resblocks.%d.ln_1.bias", TEXT, NORM_BIAS)                     \
    X(TXT_IN_PROJ_W, "text.transformer.resblocks.%d.attn.in_proj_weight", TEXT, WEIGHT)          \
    X(TXT_IN_PROJ_B, "text.transformer.resblocks.%d.attn.in_proj_bias", TEXT, BIAS)              \
    X(TXT_OUT_PROJ_W, "text.transformer.resblocks.%d.attn.out_proj.weight", TEXT, WEIGHT)        \
    X(TXT_OUT_PROJ_B, "text.transformer.resblocks.%d.attn.out_proj.bias", TEXT, BIAS)            \
    X(TXT_LN2_W, "text.transformer.resblocks.%d.ln_2.weight", TEXT, NORM_WEIGHT)                 \
    X(TXT_LN2_B, "text.transformer.resblocks.%d.ln_2.bias", TEXT, NORM_BIAS)                     \
    X(TXT_FC_W, "text.transformer.resblocks.%d.mlp.c_fc.weight", TEXT, WEIGHT)                   \
    X(TXT_FC_B, "text.transformer.resblocks.%d.mlp.c_fc.bias", TEXT, BIAS)                       \
    X(TXT_CPROJ_W, "text.transformer.resblocks.%d.mlp.c_proj.weight", TEXT, WEIGHT)              \
    X(TXT_CPROJ_B, "text.transformer.resblocks.%d.mlp.c_proj.bias", TEXT, BIAS)                  \
    X(TXT_LN_FINAL_W, "text.ln_final.weight", TEXT, NORM_WEIGHT)                                 \
    X(TXT_LN_FINAL_B, "text.ln_final.bias", TEXT, NORM_BIAS)

typedef enum {
#define SCHEMA_ENUM(kind, name, tower, role) T_##kind,
    SCHEMA_KINDS(SCHEMA_ENUM)
#undef SCHEMA_ENUM
        T_KIND_COUNT
} schema_kind;

typedef struct {
    char name[96];       /* the state-dict key */
    schema_kind kind;
    int index[2];        /* MBConv (stage, block), transformer block or text layer in [0]; -1 unused */
    int ndim;
    int64_t shape[4];    /* PyTorch's shape */
    size_t count;        /* elements */
    schema_tower tower;
    schema_role role;
    int decay;           /* AdamW weight decay applies (open_clip_train's rule, see schema.c) */
    int lock_group;      /* the group open_clip's lock_image / lock_text counts it in; -1: never locked */
} schema_tensor;

typedef struct {
    schema_tensor *tensors; /* in open_clip state_dict order */
    int count;
    int image_lock_groups;  /* timm's layer groups of the trunk: stem, blocks, fc_norm */
    int text_lock_groups;   /* lock_text_tower's groups */
    int64_t params[3];      /* elements per tower (SCHEMA_IMAGE, _TEXT, _SHARED) */
    int mlp_glu;            /* the blocks' MLP gate over the same w0 / w1 / w2 tensors
                               (kernels/activation.h vt_glu: GeGLU, or SwiGLU for custom sizes) */
} model_schema;

/* The kinds of one open_clip ResidualAttentionBlock (transformer.py), in its
 * state_dict order: ln_1, attn.in_proj, attn.out_proj, ls_1, ln_2, mlp.c_fc,
 * mlp.c_proj, ls_2 (ls_* = T_KIND_COUNT where the tower has no LayerScale).
 * The ViT image tower and the text tower are both made of it. */
typedef struct {
    schema_kind ln1_w, ln1_b, in_w, in_b, out_w, out_b, ls1, ln2_w, ln2_b, fc_w, fc_b, cp_w, cp_b, ls2;
} resblock_kinds;
extern const resblock_kinds SCHEMA_VIT_BLOCK, SCHEMA_TEXT_BLOCK;

/* The tensors of `cfg` (text tower when `with_text` and cfg has one;
 * visual.head.proj.bias only when `head_bias`, as timm image-only heads have). */
vt_status schema_build(const vt_model_config *cfg, int with_text, int head_bias, model_schema *out, vt_error *err);
void schema_free(model_schema *s);

/* Position of (kind, i, j) in the schema, or -1 (j = -1 for one index, both -1 for none). */
int schema_find(const model_schema *s, schema_kind kind, int i, int j);
/* The name of (kind, i, j), e.g. T_BLK_NORM1_W, 3 -> "visual.trunk.blocks.3.norm1.weight". */
void schema_name(schema_kind kind, int i, int j, char *out, size_t size);

/* Buffers open_clip saves beside the parameters that no model here reads
 * ("text.attn_mask" in older open_clip checkpoints): every loader skips them. */
int schema_is_buffer(const char *name);

/* Checkpoint layouts -> open_clip names: "module." (DDP) stripped, plain-CLIP
 * text keys (the authors' S, B and L2 repos, OpenAI-style) moved under
 * "text.", timm image-only keys under "visual.trunk." / "visual.head.proj". */
void schema_normalize_key(const char *key, int plain_clip_layout, int timm_image_only, char *out, size_t out_size);
/* The key a tensor of `cfg` is saved under, from its open_clip name (the
 * schema's): open_clip builds every ViT and ConvNeXt as CLIP, whose text tower sits at the
 * top level ("transformer.resblocks.0...", "token_embedding.weight"), and
 * ViTamin as CustomTextCLIP, under "text.". */
void schema_saved_name(const vt_model_config *cfg, const char *name, char *out, size_t out_size);
/* Which layout a raw key reveals (either flag may be set by one key). */
void schema_detect_layout(const char *key, int *plain_clip_layout, int *timm_image_only);

#endif
