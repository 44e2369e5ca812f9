/* transformers CLIPModel → open_clip's names and config (see hf_clip.h;
 * transformers models/clip/modeling_clip.py, configuration_clip.py). */
#include "model/hf_clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/config_json.h"
#include "model/config_vit.h"

enum { NAME_MAX_BYTES = 512 };

/* Whole names outside the encoder layers: transformers → open_clip (plain CLIP). */
static const char *const FIXED_NAMES[][2] = {
    {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
    {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
    {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
    {"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"}, /* sic: transformers' spelling */
    {"vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"},
    {"vision_model.post_layernorm.weight", "visual.ln_post.weight"},
    {"vision_model.post_layernorm.bias", "visual.ln_post.bias"},
    {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
    {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
    {"text_model.final_layer_norm.weight", "ln_final.weight"},
    {"text_model.final_layer_norm.bias", "ln_final.bias"},
    {"logit_scale", "logit_scale"},
};

/* nn.Linear weights [E, W] that open_clip stores as a [W, E] matrix x·P. */
static const char *const PROJECTIONS[][2] = {
    {"visual_projection.weight", "visual.proj"},
    {"text_projection.weight", "text_projection"},
};

/* Inside encoder.layers.<i>.: transformers → open_clip ResidualAttentionBlock. */
static const char *const BLOCK_PARTS[][2] = {
    {"layer_norm1.", "ln_1."},     {"layer_norm2.", "ln_2."},
    {"mlp.fc1.", "mlp.c_fc."},     {"mlp.fc2.", "mlp.c_proj."},
    {"self_attn.out_proj.", "attn.out_proj."},
};

/* The two towers' encoder prefixes and where their blocks live in open_clip. */
static const char *const TOWERS[][2] = {
    {"vision_model.encoder.layers.", "visual.transformer.resblocks."},
    {"text_model.encoder.layers.", "transformer.resblocks."},
};

int hf_clip_is_layout(const ckpt_file *ckpt) {
    return ckpt_find(ckpt, "vision_model.embeddings.patch_embedding.weight") ||
           ckpt_find(ckpt, "text_model.embeddings.token_embedding.weight");
}

typedef struct {
    ckpt_file *file;
    ckpt_tensor *out;
    char **names;
    size_t count;
} translation;

static vt_status emit(translation *t, const ckpt_tensor *from, const char *name, vt_error *err) {
    ckpt_tensor *o = &t->out[t->count];
    *o = *from;
    if (!(t->names[t->count] = strdup(name))) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    o->name = t->names[t->count++];
    return VT_OK;
}

/* visual_projection.weight [E, W] → visual.proj [W, E], any element size. */
static vt_status emit_transposed(translation *t, const ckpt_tensor *from, const char *name, vt_error *err) {
    if (from->ndim != 2)
        return vt_fail(err, VT_ERR_SHAPE, "%s: '%s' should be a [embed_dim, width] matrix, has %d dims",
                       ckpt_label(t->file), from->name, from->ndim);
    size_t rows = (size_t)from->shape[0], cols = (size_t)from->shape[1], es = vt_dtype_size(from->dtype);
    unsigned char *buffer = malloc(rows * cols * es + 1);
    if (!buffer) return vt_fail(err, VT_ERR_NOMEM, "out of memory transposing '%s'", from->name);
    const unsigned char *src = from->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) memcpy(buffer + (c * rows + r) * es, src + (r * cols + c) * es, es);
    vt_status st = ckpt_adopt_buffer(t->file, buffer, err);
    if (st) return st;
    ckpt_tensor moved = *from;
    moved.shape[0] = (int64_t)cols;
    moved.shape[1] = (int64_t)rows;
    moved.data = buffer;
    return emit(t, &moved, name, err);
}

/* self_attn.{q,k,v}_proj.<kind> → attn.in_proj_<kind>: rows [q; k; v], as
 * nn.MultiheadAttention packs them. `q_name` is the q_proj tensor's name. */
static vt_status emit_fused_qkv(translation *t, const ckpt_tensor *q, const char *name, vt_error *err) {
    const ckpt_tensor *parts[3] = {q, NULL, NULL};
    static const char LETTERS[3] = {'q', 'k', 'v'};
    char other[NAME_MAX_BYTES];
    const char *at = strstr(q->name, "q_proj.");
    for (int i = 1; i < 3; i++) {
        snprintf(other, sizeof other, "%s", q->name);
        other[at - q->name] = LETTERS[i];
        parts[i] = ckpt_find(t->file, other);
        if (!parts[i])
            return vt_fail(err, VT_ERR_SHAPE, "%s: '%s' is there but '%s' is missing; a transformers CLIP attention "
                           "layer stores q_proj, k_proj and v_proj", ckpt_label(t->file), q->name, other);
        if (parts[i]->dtype != q->dtype || parts[i]->ndim != q->ndim || parts[i]->numel != q->numel ||
            memcmp(parts[i]->shape, q->shape, (size_t)q->ndim * sizeof *q->shape))
            return vt_fail(err, VT_ERR_SHAPE, "%s: '%s' and '%s' differ in shape or dtype; q_proj, k_proj and v_proj "
                           "of one layer must match", ckpt_label(t->file), q->name, other);
    }
    if (q->ndim < 1 || q->ndim > 2)
        return vt_fail(err, VT_ERR_SHAPE, "%s: '%s' should be a [width, width] weight or [width] bias",
                       ckpt_label(t->file), q->name);
    size_t bytes = (size_t)q->numel * vt_dtype_size(q->dtype);
    unsigned char *buffer = malloc(3 * bytes + 1);
    if (!buffer) return vt_fail(err, VT_ERR_NOMEM, "out of memory fusing '%s'", q->name);
    for (int i = 0; i < 3; i++) memcpy(buffer + (size_t)i * bytes, parts[i]->data, bytes);
    vt_status st = ckpt_adopt_buffer(t->file, buffer, err);
    if (st) return st;
    ckpt_tensor fused = *q;
    fused.shape[0] *= 3;
    fused.numel *= 3;
    fused.data = buffer;
    return emit(t, &fused, name, err);
}

/* One encoder-layer tensor (`rest` after "layers.<i>."); *handled = 0 if not a block part. */
static vt_status translate_block(translation *t, const ckpt_tensor *from, const char *to_prefix, int layer,
                                 const char *rest, vt_error *err) {
    char name[NAME_MAX_BYTES];
    for (size_t i = 0; i < sizeof BLOCK_PARTS / sizeof *BLOCK_PARTS; i++) {
        size_t n = strlen(BLOCK_PARTS[i][0]);
        if (!strncmp(rest, BLOCK_PARTS[i][0], n)) {
            snprintf(name, sizeof name, "%s%d.%s%s", to_prefix, layer, BLOCK_PARTS[i][1], rest + n);
            return emit(t, from, name, err);
        }
    }
    if (!strcmp(rest, "self_attn.k_proj.weight") || !strcmp(rest, "self_attn.v_proj.weight") ||
        !strcmp(rest, "self_attn.k_proj.bias") || !strcmp(rest, "self_attn.v_proj.bias")) {
        char q_name[NAME_MAX_BYTES];
        snprintf(q_name, sizeof q_name, "%s", from->name);
        q_name[strstr(q_name, "_proj.") - 1 - q_name] = 'q';
        if (!ckpt_find(t->file, q_name))
            return vt_fail(err, VT_ERR_SHAPE, "%s: '%s' is there but '%s' is missing; a transformers CLIP attention "
                           "layer stores q_proj, k_proj and v_proj", ckpt_label(t->file), from->name, q_name);
        return VT_OK; /* fused in with its q_proj */
    }
    if (!strcmp(rest, "self_attn.q_proj.weight") || !strcmp(rest, "self_attn.q_proj.bias")) {
        snprintf(name, sizeof name, "%s%d.attn.in_proj_%s", to_prefix, layer, strrchr(rest, '.') + 1);
        return emit_fused_qkv(t, from, name, err);
    }
    return emit(t, from, from->name, err); /* unknown: strict loading names it */
}

static vt_status translate_one(translation *t, const ckpt_tensor *from, vt_error *err) {
    const char *name = from->name;
    if (strlen(name) >= NAME_MAX_BYTES - 64)
        return vt_fail(err, VT_ERR_FORMAT, "%s: tensor name '%.64s...' is too long", ckpt_label(t->file), name);
    static const char POSITION_IDS[] = ".embeddings.position_ids"; /* a buffer (arange) older versions saved */
    size_t n = strlen(name), suffix = sizeof POSITION_IDS - 1;
    if (n >= suffix && !strcmp(name + n - suffix, POSITION_IDS)) return VT_OK;
    for (size_t i = 0; i < sizeof FIXED_NAMES / sizeof *FIXED_NAMES; i++)
        if (!strcmp(name, FIXED_NAMES[i][0])) return emit(t, from, FIXED_NAMES[i][1], err);
    for (size_t i = 0; i < sizeof PROJECTIONS / sizeof *PROJECTIONS; i++)
        if (!strcmp(name, PROJECTIONS[i][0])) return emit_transposed(t, from, PROJECTIONS[i][1], err);
    for (size_t i = 0; i < sizeof TOWERS / sizeof *TOWERS; i++) {
        size_t k = strlen(TOWERS[i][0]);
        if (strncmp(name, TOWERS[i][0], k)) continue;
        char *end;
        long layer = strtol(name + k, &end, 10);
        if (end == name + k || *end != '.' || layer < 0 || layer > 100000) break;
        return translate_block(t, from, TOWERS[i][1], (int)layer, end + 1, err);
    }
    return emit(t, from, name, err);
}

vt_status hf_clip_translate(ckpt_file *ckpt, vt_error *err) {
    size_t count = ckpt_count(ckpt);
    translation t = {.file = ckpt};
    t.out = calloc(count ? count : 1, sizeof *t.out);
    t.names = calloc(count ? count : 1, sizeof *t.names);
    vt_status st = t.out && t.names ? VT_OK : vt_fail(err, VT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count && !st; i++) st = translate_one(&t, ckpt_at(ckpt, i), err);
    if (!st) st = ckpt_replace_tensors(ckpt, t.out, t.count, err);
    for (size_t i = 0; i < t.count; i++) free(t.names[i]);
    free(t.names);
    free(t.out);
    if (st) vt_error_prefix(err, "transformers CLIPModel layout: ");
    return st;
}

/* ---------------------------------------------------------------- config.json */

/* A positive count (config_json.h's integer rule). */
static vt_status get_count(const char *path, const char *where, const json_value *obj, const char *key, int fallback,
                           int *out, vt_error *err) {
    return config_json_get_int(path, where, obj, key, fallback, 1, out, err);
}

/* hidden_act → quick_gelu (transformers ACT2FN: "gelu" is the exact erf GELU). */
static vt_status get_activation(const char *path, const char *where, const json_value *tower, int *quick,
                                vt_error *err) {
    const char *act = json_get_string(tower, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu") && strcmp(act, "gelu"))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: %s.hidden_act is '%s'; vitamin.c runs CLIP's \"gelu\" or "
                       "\"quick_gelu\"", path, where, act);
    *quick = !strcmp(act, "quick_gelu");
    double eps = json_get_number(tower, "layer_norm_eps", 1e-5);
    if (fabs(eps - 1e-5) > 1e-12)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: %s.layer_norm_eps is %g; open_clip's towers use 1e-5", path,
                       where, eps);
    return VT_OK;
}

vt_status hf_clip_config(const char *path, const json_value *root, vt_model_config *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    const char *type = json_get_string(root, "model_type", "");
    if (strcmp(type, "clip"))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: model_type '%s' is not transformers' CLIPModel (\"clip\")", path,
                       type);
    const json_value *vision = json_get(root, "vision_config"), *text = json_get(root, "text_config");
    if (!vision || vision->type != JSON_OBJECT || !text || text->type != JSON_OBJECT)
        return vt_fail(err, VT_ERR_FORMAT, "%s: a CLIPModel config.json needs vision_config and text_config objects",
                       path);
    out->image_tower = VT_TOWER_VIT;
    out->has_pos_embed = 1;
    int vision_heads = 12, text_mlp = 2048, vision_quick = 1, text_quick = 1, channels = 3;
    /* transformers' CLIPVisionConfig / CLIPTextConfig defaults (ViT-B/32). */
    vt_status st = get_count(path, "vision_config", vision, "hidden_size", 768, &out->width, err);
    if (!st) st = get_count(path, "vision_config", vision, "intermediate_size", 3072, &out->mlp_hidden, err);
    if (!st) st = get_count(path, "vision_config", vision, "num_hidden_layers", 12, &out->depth, err);
    if (!st) st = get_count(path, "vision_config", vision, "num_attention_heads", 12, &vision_heads, err);
    if (!st) st = get_count(path, "vision_config", vision, "image_size", 224, &out->image_size, err);
    if (!st) st = get_count(path, "vision_config", vision, "patch_size", 32, &out->patch_size, err);
    if (!st) st = get_count(path, "vision_config", vision, "num_channels", 3, &channels, err);
    if (!st) st = get_activation(path, "vision_config", vision, &vision_quick, err);
    if (!st) st = get_count(path, "text_config", text, "hidden_size", 512, &out->text_width, err);
    if (!st) st = get_count(path, "text_config", text, "intermediate_size", 2048, &text_mlp, err);
    if (!st) st = get_count(path, "text_config", text, "num_hidden_layers", 12, &out->text_layers, err);
    if (!st) st = get_count(path, "text_config", text, "num_attention_heads", 8, &out->text_heads, err);
    if (!st) st = get_count(path, "text_config", text, "max_position_embeddings", 77, &out->context_length, err);
    if (!st) st = get_count(path, "text_config", text, "vocab_size", 49408, &out->vocab_size, err);
    if (!st) st = get_activation(path, "text_config", text, &text_quick, err);
    if (!st) st = get_count(path, "config", root, "projection_dim", 512, &out->embed_dim, err);
    if (st) return st;
    out->heads = vision_heads;
    out->quick_gelu = vision_quick;
    if (channels != 3)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_config.num_channels is %d; CLIP takes RGB (3)", path,
                       channels);
    if (vision_quick != text_quick)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_config.hidden_act and text_config.hidden_act differ; "
                       "open_clip's quick_gelu is one setting for both towers", path);
    if (text_mlp != 4 * out->text_width)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: text_config.intermediate_size %d is not 4 x hidden_size %d; "
                       "vitamin.c runs CLIP's text tower (mlp_ratio 4)", path, text_mlp, out->text_width);
    /* modeling_clip.py pools at argmax(ids) when eos_token_id == 2 (the legacy
     * configs), else at the first eos_token_id: with the CLIP BPE vocabulary,
     * whose end-of-text is its largest id, both are open_clip's argmax. */
    double eos = json_get_number(text, "eos_token_id", 2);
    if (eos != 2 && eos != out->vocab_size - 1)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: text_config.eos_token_id is %g; vitamin.c pools the CLIP BPE "
                       "tokenizer's end-of-text token (2, legacy argmax, or %d)", path, eos, out->vocab_size - 1);
    out->open_clip_preprocess_size = out->image_size;
    vit_config_name(out);
    return VT_OK;
}
