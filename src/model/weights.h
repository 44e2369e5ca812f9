/* Checkpoint → model parameters: key-layout normalisation (module., state_dict,
 * plain-CLIP text keys, timm image-only keys), config resolution, shape checks
 * that name the tensor, dtype conversion and GEMM packing. */
#ifndef VT_MODEL_WEIGHTS_H
#define VT_MODEL_WEIGHTS_H

#include "model/model.h"

/* Resolves which model a checkpoint holds: `model_name` if given, else
 * open_clip_config.json / config.json beside the file, else from tensor shapes. */
vt_status weights_resolve_config(const char *checkpoint_path, const ckpt_file *ckpt, const char *model_name,
                                 vt_model_config *out, vt_error *err);

/* Binds and packs every parameter of `m->cfg` from `m->checkpoint`. Missing,
 * extra, mis-shaped and non-finite tensors are errors. */
vt_status weights_bind(struct vt_model *m, vt_error *err);

/* The open_clip name a raw checkpoint key stands for (strips "module.", adds
 * "text." to plain-CLIP keys, maps timm image-only keys). Writes into `out`. */
void weights_normalize_key(const char *key, int plain_clip_layout, int timm_image_only, char *out,
                           size_t out_size);

#endif
