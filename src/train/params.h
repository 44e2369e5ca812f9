/* The trainable parameters of a ViTamin CLIP model as one flat fp32 buffer,
 * plus a table that names every tensor exactly as open_clip's state_dict does
 * ("visual.trunk.blocks.0.attn.qkv.weight", "text.token_embedding.weight",
 * "logit_scale", ...) with its PyTorch shape and offset. Gradients and the
 * AdamW moments use the same layout, so saving, loading, all-reducing and
 * optimising are loops over one table. */
#ifndef VT_TRAIN_PARAMS_H
#define VT_TRAIN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "model/schema.h"
#include "vitamin.h"

enum { TRAIN_TOWER_IMAGE = SCHEMA_IMAGE, TRAIN_TOWER_TEXT = SCHEMA_TEXT, TRAIN_TOWER_SHARED = SCHEMA_SHARED };

typedef struct {
    char name[96];      /* open_clip state-dict key */
    int ndim;
    int64_t shape[4];
    size_t offset;      /* floats from the start of the flat buffers */
    size_t count;       /* elements */
    int decay;          /* AdamW weight decay applies (open_clip: ndim >= 2 and not
                           an embedding, gain, bias or logit_scale) */
    int tower;          /* TRAIN_TOWER_* (for --lock-image / --lock-text) */
} train_param;

typedef struct {
    vt_model_config cfg;
    model_schema schema; /* what each entry is (kind, role, lock group); parallel to params */
    train_param *params; /* in open_clip state_dict order */
    int count;
    size_t total;        /* floats in each flat buffer */
    float *values;       /* [total], 64-byte aligned */
    float *grads;        /* [total], 64-byte aligned */
} train_params;

/* Builds the table for `cfg` and allocates values (zero) and grads (zero). */
vt_status train_params_create(const vt_model_config *cfg, train_params *out, vt_error *err);
void train_params_free(train_params *p);

/* Index of a tensor by name, or -1. */
int train_params_find(const train_params *p, const char *name);
/* Pointers into the flat buffers by name (NULL if absent). */
float *train_param_values(const train_params *p, const char *name);
float *train_param_grads(const train_params *p, const char *name);

/* Index of the schema tensor (kind, i, j) (model/schema.h), or -1. */
static inline int train_params_index(const train_params *p, schema_kind kind, int i, int j) {
    return schema_find(&p->schema, kind, i, j);
}

/* open_clip's initialisation for a fresh model (open_clip transformer.py
 * TextTransformer.init_parameters; timm vision_transformer.py init_weights_vit_timm and
 * vitamin.py _init_conv for the trunk), from a
 * counter-based RNG keyed by `seed` (same values for any thread count). */
void train_params_init(train_params *p, uint64_t seed);

/* Loads every tensor from a checkpoint vitamin.c can read (open_clip .bin /
 * .safetensors, state_dict or module. prefixes) by name and shape; missing,
 * extra or mis-shaped tensors are an error naming the tensor. */
vt_status train_params_load_checkpoint(train_params *p, const char *path, vt_error *err);

/* An inference model (vitamin.h) over the current values, for evaluation
 * during training. It reads the values in place: free it before the next
 * optimizer step changes them. */
struct vt_model;
vt_status train_params_build_model(const train_params *p, struct vt_model **out, vt_error *err);

#endif
