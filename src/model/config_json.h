/* open_clip_config.json, both ways. The file is what open_clip's
 * create_model("local-dir:DIR") reads ({"model_cfg": {embed_dim, custom_text,
 * vision_cfg: timm_*, image_size, text_cfg}, "preprocess_cfg"}), plus a
 * top-level "vitamin_cfg" block with every image-tower number, which open_clip
 * ignores: sizes that timm has no model name for (ViTamin-Tiny, custom
 * ViTamin-C<w>-N<d>) are rebuilt from it exactly. */
#ifndef VT_MODEL_CONFIG_JSON_H
#define VT_MODEL_CONFIG_JSON_H

#include <stddef.h>

#include "core/notes.h"
#include "io/serial/json.h"
#include "model/config.h"

/* Writes the json for `cfg` at `path`, atomically (temp file, fsync, rename). */
vt_status config_write_open_clip_json(const char *path, const vt_model_config *cfg, vt_error *err);

/* Reads an open_clip_config.json, or the config.json of the authors' Hugging
 * Face repos (architectures ["ViTaminCLIP"], {embed_dim, vision_cfg,
 * text_cfg} at the top level, trunk names such as "vitamin_small" or
 * "vitamin_large_384" for an L2 model). The trunk family, image size,
 * embed_dim and text tower together pick the family member. *found = 0 with
 * VT_OK when the file does not exist, or names a vitamin_* trunk of no known
 * family or no model at all (with a note saying so): the caller infers from
 * shapes. A config for another kind of model (a ViT, a transformers CLIP) is
 * an error. The config is validated otherwise. `notes` may be NULL. */
/* `key` of `obj` as an integer in [minimum, 1<<24]; `fallback` if absent (an
 * error naming path, where and key if fallback < 0: required). Shared by the
 * readers of other config formats (model/hf_clip.c). */
vt_status config_json_get_int(const char *path, const char *where, const json_value *obj, const char *key,
                              int fallback, int minimum, int *out, vt_error *err);

vt_status config_read_json(const char *path, vt_model_config *out, int *found, vt_notes *notes, vt_error *err);
/* The same over text in memory (`path` names it in messages). */
vt_status config_parse_json(const char *path, const char *text, size_t size, vt_model_config *out, int *found,
                            vt_notes *notes, vt_error *err);

/* The vision_cfg.timm_model_name written for `cfg`: its timm trunk, or for a
 * size timm does not register, a name in timm's style ("vitamin_tiny_32",
 * "vitamin_c96_n8_224"): open_clip can build those once a timm model of that
 * name is registered from vitamin_cfg (tests/reference/tiny_models.py
 * registers "vitamin_tiny_32"). */
void config_timm_model_name(const vt_model_config *cfg, char *out, size_t out_size);

#endif
