/* Which model a checkpoint holds, and whether the files beside it agree.
 *
 * Precedence (README "Which architecture"):
 *  1. `model_name` (--model-name): the family table; nothing beside the file is read;
 *  2. open_clip_config.json beside the checkpoint, else config.json (open_clip's
 *     format or the authors' ViTaminCLIP one, model/config_json.h), checked
 *     against the tensors: a field that contradicts a tensor is an error naming both;
 *  3. `fallback_name`: the model a hub name stood for, when the cache holds
 *     only the weights (open_clip downloads pytorch_model.bin alone);
 *  4. the tensor shapes, with a note saying so.
 * A preprocessor_config.json beside the checkpoint is read and compared with
 * the model's transform; a disagreement becomes a note. */
#ifndef VT_MODEL_CONFIG_RESOLVE_H
#define VT_MODEL_CONFIG_RESOLVE_H

#include "core/notes.h"
#include "io/checkpoint/checkpoint.h"
#include "model/config.h"

vt_status config_resolve(const char *checkpoint_path, const ckpt_file *ckpt, const char *model_name,
                         const char *fallback_name, vt_model_config *out, vt_notes *notes, vt_error *err);

/* Compares a Hugging Face preprocessor_config.json (CLIPImageProcessor:
 * size, crop_size, image_mean, image_std, resample, do_*) with the transform
 * vitamin.c applies for `cfg`; each disagreement is a note. Not JSON, or
 * fields of the wrong type: an error. */
vt_status config_check_preprocessor(const char *path, const char *text, size_t size, const vt_model_config *cfg,
                                    vt_notes *notes, vt_error *err);

#endif
