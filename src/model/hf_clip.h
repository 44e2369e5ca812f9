/* Hugging Face transformers' CLIPModel (modeling_clip.py), as
 * `openai/clip-vit-base-patch32` and `CLIPModel.save_pretrained` lay it out:
 * model.safetensors (or pytorch_model.bin) with vision_model.*, text_model.*,
 * visual_projection, text_projection, logit_scale, and a config.json with
 * model_type "clip". The same network as open_clip's ViT CLIP; only the
 * names, the split q/k/v projections and the Linear-stored projections differ.
 *
 * The translation happens once, on the open checkpoint, so every reader
 * after it (binder, config check, convert, training's --pretrained) sees
 * open_clip's plain-CLIP names and nothing else knows this layout exists. */
#ifndef VT_MODEL_HF_CLIP_H
#define VT_MODEL_HF_CLIP_H

#include "io/checkpoint/checkpoint.h"
#include "io/serial/json.h"
#include "model/config.h"

/* 1 if the checkpoint holds transformers CLIPModel tensors. */
int hf_clip_is_layout(const ckpt_file *ckpt);

/* Renames every tensor to open_clip's names: q/k/v concatenated into
 * attn.in_proj_weight/bias, visual_projection and text_projection transposed
 * into visual.proj / text_projection (new buffers the file owns), the
 * position_ids buffers dropped. A tensor this layout does not name keeps its
 * name, so strict loading reports it. */
vt_status hf_clip_translate(ckpt_file *ckpt, vt_error *err);

/* A config.json of model_type "clip" (CLIPConfig) as a ViT config; options
 * open_clip's towers do not have (another activation, layer-norm epsilon,
 * MLP ratio of the text tower, EOS id) are refused by name. */
vt_status hf_clip_config(const char *path, const json_value *root, vt_model_config *out, vt_error *err);

#endif
