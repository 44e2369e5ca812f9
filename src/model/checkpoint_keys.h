/* A checkpoint's tensors under open_clip's names, whatever layout they were
 * saved in: "module." (DDP) stripped, plain-CLIP text keys ("transformer.",
 * "token_embedding.", as the authors' S, B and L2 repos and OpenAI-style
 * checkpoints hold them) moved under "text.", timm image-only keys under
 * "visual.trunk." / "visual.head.proj". Binding, config resolution and
 * training load all look tensors up through this one index. */
#ifndef VT_MODEL_CHECKPOINT_KEYS_H
#define VT_MODEL_CHECKPOINT_KEYS_H

#include <stddef.h>

#include "io/checkpoint.h"

typedef struct {
    size_t count;
    char **names;                /* normalised names, parallel to tensors */
    const ckpt_tensor **tensors;
    unsigned char *used;         /* set by the binder: strict loading checks every one was used */
} key_index;

/* The open_clip name a raw checkpoint key stands for. Writes into `out`. */
void weights_normalize_key(const char *key, int plain_clip_layout, int timm_image_only, char *out,
                           size_t out_size);

vt_status key_index_build(const ckpt_file *ckpt, key_index *ix, vt_error *err);
void key_index_free(key_index *ix);
/* The tensor stored under normalised `name` (and its position), or NULL. */
const ckpt_tensor *key_index_find(const key_index *ix, const char *name, size_t *pos);

#endif
