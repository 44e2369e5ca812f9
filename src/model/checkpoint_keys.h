/* A checkpoint's tensors under open_clip's names, whatever layout they were
 * saved in (schema_normalize_key: "module." stripped, plain-CLIP text keys
 * under "text.", timm image-only keys under "visual."). Buffers that are no
 * parameter (schema_is_buffer) start out marked used. Binding, config
 * resolution and training load all look tensors up through this one index. */
#ifndef VT_MODEL_CHECKPOINT_KEYS_H
#define VT_MODEL_CHECKPOINT_KEYS_H

#include <stddef.h>

#include "io/checkpoint/checkpoint.h"

typedef struct {
    size_t count;
    char **names;                /* normalised names, parallel to tensors */
    const ckpt_tensor **tensors;
    unsigned char *used;         /* set by the binder: strict loading checks every one was used */
} key_index;

/* ckpt_open, then a foreign layout translated to open_clip's names
 * (transformers CLIPModel, model/hf_clip.h). Every loader of model weights
 * opens through this. */
vt_status model_checkpoint_open(const char *path, ckpt_file **out, vt_error *err);

vt_status key_index_build(const ckpt_file *ckpt, key_index *ix, vt_error *err);
void key_index_free(key_index *ix);
/* The tensor stored under normalised `name` (and its position), or NULL. */
const ckpt_tensor *key_index_find(const key_index *ix, const char *name, size_t *pos);

#endif
