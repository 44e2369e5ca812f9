/* open_clip's ConvNeXt CLIP configs (model_configs/convnext_*.json: timm's
 * convnext.py trunk under open_clip's TimmModel, pool "" = the trunk's own
 * avg pool + head.norm, then timm_proj "linear" or "mlp") as one table;
 * model/config.c serves them beside the ViTamin and ViT rows. */
#ifndef VT_MODEL_CONFIG_CONVNEXT_H
#define VT_MODEL_CONFIG_CONVNEXT_H

#include <stddef.h>

#include "model/config.h"

int convnext_config_count(void);
void convnext_config_fill(int index, vt_model_config *out);
/* 1 and *out filled if `name` (case-insensitive) is a ConvNeXt config. */
int convnext_config_lookup(const char *name, vt_model_config *out);
/* The timm trunk `timm` (convnext_atto ... convnext_xxlarge): fills the
 * trunk's fields of *out and returns 1, or 0 if vitamin.c has no such trunk. */
int convnext_trunk_fill(const char *timm, vt_model_config *out);
/* The same for the trunk with these stage widths, block counts and MLP form. */
int convnext_trunk_by_shapes(const int dims[4], const int depths[4], int conv_mlp, vt_model_config *out);
/* "convnext_atto, convnext_femto, ..." for messages. */
void convnext_trunk_names(char *out, size_t size);
vt_status convnext_config_validate(const vt_model_config *c, vt_error *err);
double convnext_config_image_flops(const vt_model_config *c, int image_size);
/* The timm trunk's stage map side at `stage` (0..3) for image size s: the
 * 4x4 stem, then a 2x2 stride-2 downsample per later stage (floor). */
int convnext_stage_side(int image_size, int stage);

#endif
