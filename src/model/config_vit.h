/* open_clip's ViT CLIP configs (model_configs/ViT-*.json whose text tower
 * uses the CLIP BPE tokenizer) as one table; model/config.c serves them
 * beside the ViTamin family. */
#ifndef VT_MODEL_CONFIG_VIT_H
#define VT_MODEL_CONFIG_VIT_H

#include "model/config.h"

int vit_config_count(void);
void vit_config_fill(int index, vt_model_config *out);
/* 1 and *out filled if `name` (case-insensitive) is a ViT config. */
int vit_config_lookup(const char *name, vt_model_config *out);
/* open_clip configs that need another tokenizer: NULL, or the tokenizer's
 * name (vitamin.c has only the CLIP BPE tokenizer). */
const char *vit_config_other_tokenizer(const char *name);
/* Names `c` after the open_clip ViT config with the same tower numbers (a
 * config read from JSON or a transformers config.json), else "ViT-custom". */
void vit_config_name(vt_model_config *c);
/* open_clip's force_image_size for a ViT: runs `c` at `image_size` (a
 * multiple of the patch size); *stored_grid gets the grid its positional
 * embedding was trained for, which the binder resamples from. */
vt_status vit_config_force_image_size(vt_model_config *c, int image_size, int *stored_grid, vt_error *err);
vt_status vit_config_validate(const vt_model_config *c, vt_error *err);
double vit_config_image_flops(const vt_model_config *c, int image_size);

#endif
