/* Checkpoint → model parameters: key-layout normalisation (module., state_dict,
 * plain-CLIP text keys, timm image-only keys: model/checkpoint_keys.h), shape
 * checks that name the tensor, dtype conversion and GEMM packing. Which model
 * a checkpoint holds is model/config_resolve.h's job. */
#ifndef VT_MODEL_WEIGHTS_H
#define VT_MODEL_WEIGHTS_H

#include "model/checkpoint_keys.h"
#include "model/model.h"

/* Binds and packs every parameter of `m->cfg` from `m->checkpoint`. Missing,
 * extra, mis-shaped and non-finite tensors are errors. */
vt_status weights_bind(struct vt_model *m, vt_error *err);

#endif
