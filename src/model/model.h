/* The loaded model: configuration, parameters bound to checkpoint tensors, and
 * GEMM-packed weights. Read-only after loading (apart from the locked scratch
 * pool), so any number of threads may run forward passes on it at once. */
#ifndef VT_MODEL_MODEL_H
#define VT_MODEL_MODEL_H

#include "core/notes.h"
#include "io/checkpoint/checkpoint.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "model/config.h"
#include "model/topology.h"
#include "model/scratch_pool.h"

/* A Linear / 1×1 conv / im2col'd 3×3 conv: packed weight [out, in] and bias. */
typedef struct {
    gemm_packed_b weight;
    const float *bias; /* [out] or NULL */
} linear_layer;

typedef struct {
    int in_channels, out_channels, stride;
    const float *pre_norm_weight, *pre_norm_bias;
    linear_layer conv1;            /* 1×1 in → 4·out, then GELU */
    float *depthwise_weight;       /* [3][3][4·out] */
    const float *depthwise_bias;
    linear_layer conv3;            /* 1×1 4·out → out */
    int has_expand;                /* shortcut 1×1 conv after the pool (stride-2 block, in ≠ out) */
    linear_layer expand;
} mbconv_block;

typedef struct {
    const float *norm1_weight, *norm1_bias, *norm2_weight, *norm2_bias;
    const float *mlp_norm_weight, *mlp_norm_bias;
    linear_layer qkv, proj;
    linear_layer w0_w1; /* GeGLU w0 and w1 as one projection, rows interleaved by gemm_geglu_interleave */
    linear_layer w2;
} vit_block;

/* open_clip ResidualAttentionBlock (transformer.py): the text tower's blocks
 * and the ViT tower's. */
typedef struct {
    const float *ln1_weight, *ln1_bias, *ln2_weight, *ln2_bias;
    linear_layer in_proj, out_proj, c_fc, c_proj;
    const float *ls1, *ls2; /* LayerScale gammas [W], or NULL (no ls_init_value) */
} resblock;

/* timm ConvNeXtBlock: dw 7×7 → LN → fc1 + GELU → fc2 → ·gamma → + x. gamma is
 * folded into fc2's rows and bias at load (gamma·(W h + b) = (gamma∘W) h + gamma∘b),
 * so the residual add fuses into fc2's epilogue. */
typedef struct {
    float *dw_weight;              /* [7][7][C] tap-major */
    const float *dw_bias;
    const float *norm_weight, *norm_bias;
    linear_layer fc1, fc2;         /* fc2 carries gamma */
} convnext_block;

typedef struct {
    const float *ds_norm_weight, *ds_norm_bias; /* stages 1-3: LN before the 2×2 conv */
    linear_layer ds_conv;          /* [C, 4·C_prev] over (ky, kx, c) patch vectors */
    convnext_block *blocks;
    int depth, dim;
} convnext_stage;

struct vt_model {
    vt_model_config cfg;
    vt_notes notes; /* what loading decided that the user should hear (vt_model_info.notes) */
    vt_isa isa;
    int bf16; /* GEMM weights packed as bf16 (vt_load_options.bf16) */
    int amx;  /* ...and multiplied with AMX tiles (CPU has AMX-BF16, VITAMIN_ISA allows it) */
    ckpt_file *checkpoint; /* kept open: fp32 tensors are used in place (mmap) */

    /* Image tower. */
    linear_layer stem_conv1, stem_conv2;
    const float *stem_norm_weight, *stem_norm_bias;
    mbconv_block mbconv[VT_MAX_MBCONV];
    int mbconv_count;
    const float *pool_norm_weight, *pool_norm_bias;
    linear_layer pool_proj;
    const float *pos_embed; /* [N, D] or NULL (XL) */
    vit_block *vit;
    const float *fc_norm_weight, *fc_norm_bias;
    linear_layer head_proj;

    /* ViT image tower (cfg.image_tower == VT_TOWER_VIT; open_clip VisionTransformer). */
    linear_layer patch_embed;           /* conv1 [W, 3·p·p] over (channel, ky, kx) patch vectors, no bias */
    const float *class_embedding;       /* [W] */
    const float *vit_pos;               /* [grid² + 1, W] */
    int vit_pos_stored_grid;            /* the checkpoint's grid when --image-size resamples it, else 0 */
    const float *ln_pre_weight, *ln_pre_bias; /* NULL with no_ln_pre */
    resblock *vit_blocks;
    const float *ln_post_weight, *ln_post_bias;
    linear_layer vit_proj;              /* proj [W, E] used as x·P */

    /* ConvNeXt image tower (cfg.image_tower == VT_TOWER_CONVNEXT). */
    linear_layer cnx_stem;              /* 4×4/4 conv [C0, 48] over (ky, kx, c) patch vectors */
    const float *cnx_stem_norm_weight, *cnx_stem_norm_bias;
    convnext_stage cnx_stages[4];
    const float *cnx_head_norm_weight, *cnx_head_norm_bias;
    linear_layer head_fc1, head_fc2;    /* timm_proj "mlp"; "linear" uses head_proj */

    /* Text tower (absent for image-only timm checkpoints). */
    int has_text;
    const float *token_embedding;      /* [vocab, W] */
    const float *positional_embedding; /* [context, W] */
    resblock *text;
    const float *ln_final_weight, *ln_final_bias;
    linear_layer text_projection;      /* [W, E] used as x·P */
    float logit_scale;                 /* stored (log) value */

    /* Reused forward-pass scratch (the only mutable state; has its own lock). */
    scratch_pool scratch;

    /* Every buffer the model owns (converted or packed weights). */
    void **owned;
    size_t owned_count, owned_capacity;
};

/* Builds a model over an already open checkpoint (taking ownership of it) with
 * a known config: the trainer evaluates its in-memory weights this way. */
vt_status model_load_from_checkpoint(ckpt_file *checkpoint, const vt_model_config *cfg, struct vt_model **out,
                                     vt_error *err);

#endif
