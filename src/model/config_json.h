/* open_clip_config.json, both ways. The file is what open_clip's
 * create_model("local-dir:DIR") reads ({"model_cfg": {embed_dim, custom_text,
 * vision_cfg: timm_*, image_size, text_cfg}, "preprocess_cfg"}), plus a
 * top-level "vitamin_cfg" block with every image-tower number, which open_clip
 * ignores: sizes that timm has no model name for (ViTamin-Tiny, custom
 * ViTamin-C<w>-N<d>) are rebuilt from it exactly. */
#ifndef VT_MODEL_CONFIG_JSON_H
#define VT_MODEL_CONFIG_JSON_H

#include <stddef.h>

#include "model/config.h"

/* Writes the json for `cfg` at `path`, atomically (temp file, fsync, rename). */
vt_status config_write_open_clip_json(const char *path, const vt_model_config *cfg, vt_error *err);

/* Reads an open_clip_config.json, or a Hugging Face config.json ({embed_dim,
 * vision_cfg, text_cfg} at the top level). *found = 0 with VT_OK when the file
 * does not exist or describes no ViTamin tower (neither vitamin_cfg nor
 * vision_cfg.timm_model_name); the config is validated otherwise. */
vt_status config_read_json(const char *path, vt_model_config *out, int *found, vt_error *err);

/* The vision_cfg.timm_model_name written for `cfg`: its timm trunk, or for a
 * size timm does not register, a name in timm's style ("vitamin_tiny_32",
 * "vitamin_c96_n8_224"): open_clip can build those once a timm model of that
 * name is registered from vitamin_cfg (tests/reference/tiny_models.py
 * registers "vitamin_tiny_32"). */
void config_timm_model_name(const vt_model_config *cfg, char *out, size_t out_size);

#endif
