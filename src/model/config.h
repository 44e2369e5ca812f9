/* The ViTamin CLIP family as one table of numbers (src/model/config.c), plus the
 * rule that builds a custom size from width C and depth N_B. */
#ifndef VT_MODEL_CONFIG_H
#define VT_MODEL_CONFIG_H

#include <stdint.h>

#include "vitamin.h"

/* Which image tower: ViTamin's hybrid (timm models/vitamin.py), open_clip's
 * VisionTransformer (open_clip transformer.py; the "ViT-*" configs, the
 * paper's baseline) or timm's ConvNeXt under open_clip's TimmModel (the
 * "convnext_*" configs, another of the paper's benchmark towers). */
typedef enum { VT_TOWER_VITAMIN = 0, VT_TOWER_VIT = 1, VT_TOWER_CONVNEXT = 2 } vt_image_tower;

typedef struct {
    char name[64];        /* open_clip name, e.g. "ViTamin-S" */
    char timm_name[64];   /* timm trunk, e.g. "vitamin_small_224" ("" for custom) */
    char hf_repo[64];     /* released weights: "jienengchen/ViTamin-S" ("" for none) */
    /* Image tower (timm VisionTransformer with the MbConvStages hybrid embed). */
    int stem_width;       /* C0 */
    int stage_widths[2];  /* C1, C2 */
    int stage_depths[2];  /* 2, 4 for every released size */
    int width;            /* D: transformer width = StridedConv output channels */
    int depth;            /* N_B: transformer blocks */
    int heads;            /* attention heads (head dim = width / heads) */
    int mlp_hidden;       /* GeGLU hidden size = 2 * D */
    int mlp_glu;          /* the MLP's gate (kernels/activation.h vt_glu): 0 GeGLU, as every
                             release; 1 SwiGLU, for custom sizes ("...-SwiGLU") */
    int image_size;       /* square input size the tower (and its pos_embed) is built for */
    int has_pos_embed;    /* 0 for XL: timm builds it with pos_embed='none' */
    int embed_dim;        /* E: CLIP embedding size (visual.head.proj out) */
    /* ViT tower (image_tower == VT_TOWER_VIT; width, depth, heads, mlp_hidden,
     * image_size and embed_dim above are its own, the ViTamin fields 0). */
    int image_tower;      /* vt_image_tower */
    int patch_size;       /* conv1 kernel = stride; grid = image_size / patch_size */
    float ls_init;        /* LayerScale init value (ls_init_value); 0: no ls_1 / ls_2 */
    int pool_avg;         /* pool_type "avg" (mean of the patch tokens); 0: "tok" (class token) */
    int final_ln_after_pool; /* ln_post after pooling instead of on every token */
    int no_ln_pre;        /* ln_pre is Identity */
    /* Both towers' plain MLPs: exact GELU, or QuickGELU (quick_gelu: OpenAI's
     * weights and the "-quickgelu" configs). ViTamin's trunk ignores it. */
    int quick_gelu;
    /* ConvNeXt tower (image_tower == VT_TOWER_CONVNEXT: timm convnext.py; width
     * is cnx_dims[3], depth 0 — it has no transformer blocks). */
    int cnx_dims[4], cnx_depths[4];
    int cnx_conv_mlp;     /* timm conv_mlp: the block MLP as 1x1 convs (weights [out, in, 1, 1]) */
    float cnx_norm_eps;   /* every LayerNorm of the trunk: 1e-6, 1e-5 for convnext_xxlarge */
    int head_mlp;         /* timm_proj "mlp": head.mlp.fc1 (+bias), GELU, fc2; 0: "linear" head.proj */
    /* Text tower (open_clip TextTransformer). */
    int text_width, text_heads, text_layers, context_length, vocab_size;
    /* Preprocessing size actually used by open_clip for this config (differs
     * from image_size only for ViTamin-XL-384, whose open_clip json says 256). */
    int open_clip_preprocess_size;
} vt_model_config;

/* Patch tokens per side of the image tower: image_size / 16 for ViTamin (the
 * conv stages' stride), image_size / patch_size for a ViT (conv1's; a ViT adds
 * a class token to the grid² patches). */
int vt_config_token_grid(const vt_model_config *cfg);
/* Pixels per token side: 16 for ViTamin (its conv stages), a ViT's patch size,
 * 32 for ConvNeXt (its last stage). */
int vt_config_token_stride(const vt_model_config *cfg);

/* The activation of the config's plain MLPs (kernels/activation.h vt_act). */
int vt_config_mlp_act(const vt_model_config *cfg);

/* Number of registered configs and access by index (for `vitamin info`). */
int vt_config_count(void);
const vt_model_config *vt_config_at(int index);

/* Looks a model up by open_clip name (case-insensitive; "hf-hub:jienengchen/ViTamin-L-224px"
 * and timm names such as "vitamin_small_224" are accepted too) or by the custom
 * form "ViTamin-C<width>-N<depth>[-<image size>][-SwiGLU]". Unknown names fail with a
 * message listing the known ones. */
vt_status vt_config_lookup(const char *name, vt_model_config *out, vt_error *err);

/* Trunk names as timm ("vitamin_small_224", "vitamin_large2_384") and the
 * authors' released config.json files ("vitamin_small", "vitamin_large_384")
 * spell them. Returns 1 with the family ("small", "base", "large", "xlarge";
 * "large2" is the large trunk) and the size suffix (0 if none), 0 for a
 * vitamin_* name of no known family, -1 for a name that is not ViTamin's. */
int vt_config_parse_trunk(const char *trunk, char *family, size_t family_size, int *size);

/* The released member on trunk `family` at `image_size` with this embed dim
 * and text tower (0: any); 1 and *out filled if there is one. */
int vt_config_find_member(const char *family, int image_size, int embed_dim, int text_width, int text_layers,
                          vt_model_config *out);

/* The trunk of `family` at `image_size` (CLIP pairing of the family's first
 * member at that size, or the first member with image_size changed). */
vt_status vt_config_trunk(const char *family, int image_size, vt_model_config *out, vt_error *err);

/* The paper's scaling rule for custom sizes: C0 = C1 = C, C2 = 2C, D = 6C,
 * head dim 64, GeGLU hidden 2D, text tower of width D/.. (see config.c). */
vt_status vt_config_custom(int width_c, int depth, int image_size, vt_model_config *out,
                           vt_error *err);

/* Parameter counts exactly as open_clip's model.parameters() would give. */
int64_t vt_config_image_params(const vt_model_config *cfg);  /* trunk + head.proj */
int64_t vt_config_text_params(const vt_model_config *cfg);
/* Forward FLOPs (2 per multiply-add) of one image / one 77-token text. */
double vt_config_image_flops(const vt_model_config *cfg, int image_size);
double vt_config_text_flops(const vt_model_config *cfg);

/* Sanity checks a (possibly custom or inferred) config; explains the problem. */
vt_status vt_config_validate(const vt_model_config *cfg, vt_error *err);

#endif
