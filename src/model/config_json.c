/* open_clip_config.json writer and reader (see config_json.h). */
#include "model/config_json.h"
#include "model/config_vit.h"
#include "model/hf_clip.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/file.h"
#include "core/notes.h"
#include "io/image/image.h"
#include "io/serial/json.h"
#include "io/serial/json_write.h"
#include "core/atomic_file.h"
#include "model/config_convnext.h"

enum { CONFIG_JSON_MAX_BYTES = 1 << 24 };

void config_timm_model_name(const vt_model_config *cfg, char *out, size_t out_size) {
    if (cfg->timm_name[0]) {
        snprintf(out, out_size, "%s", cfg->timm_name);
        return;
    }
    /* timm's convention: family, size, input resolution ("vitamin_small_224"). */
    char size[32];
    snprintf(size, sizeof size, "-%d", cfg->image_size);
    const char *name = cfg->name;
    if (!strncasecmp(name, "ViTamin-", 8)) name += 8;
    size_t n = strlen(name), m = strlen(size);
    int has_size = n > m && !strcmp(name + n - m, size);
    char lowered[128];
    size_t k = 0;
    for (; name[k] && k + 1 < sizeof lowered; k++) lowered[k] = name[k] == '-' ? '_' : (char)tolower((unsigned char)name[k]);
    lowered[k] = '\0';
    if (has_size) snprintf(out, out_size, "vitamin_%s", lowered);
    else snprintf(out, out_size, "vitamin_%s_%d", lowered, cfg->image_size);
}

/* ---------------------------------------------------------------- writing */

/* open_clip's CLIP config of a ViT (model_configs/ViT-*.json), which
 * config_from_vit_cfg reads back. */
static void write_vit_model_cfg(json_writer *w, const vt_model_config *c) {
    /* open_clip builds int(width * mlp_ratio): the written ratio must give
     * back mlp_hidden exactly (200 / 96 printed to 9 digits gives 199). */
    double ratio = (double)c->mlp_hidden / c->width;
    while ((int)(c->width * ratio) < c->mlp_hidden) ratio = nextafter(ratio, INFINITY);
    json_write_format(w, "{\n  \"model_cfg\": {\n    \"embed_dim\": %d,\n    \"quick_gelu\": %s,\n", c->embed_dim,
                      c->quick_gelu ? "true" : "false");
    json_write_format(w,
                      "    \"vision_cfg\": {\n      \"image_size\": %d,\n      \"layers\": %d,\n      \"width\": %d,\n"
                      "      \"head_width\": %d,\n      \"mlp_ratio\": %.17g,\n      \"patch_size\": %d,\n",
                      c->image_size, c->depth, c->width, c->width / c->heads, ratio,
                      c->patch_size);
    if (c->ls_init > 0) json_write_format(w, "      \"ls_init_value\": %.9g,\n", (double)c->ls_init);
    json_write_format(w,
                      "      \"no_ln_pre\": %s,\n      \"final_ln_after_pool\": %s,\n      \"pool_type\": \"%s\"\n"
                      "    },\n",
                      c->no_ln_pre ? "true" : "false", c->final_ln_after_pool ? "true" : "false",
                      c->pool_avg ? "avg" : "tok");
}

/* open_clip's CustomTextCLIP config over a timm ViTamin trunk (the timm_*
 * values are those of open_clip's own ViTamin-*.json files). */
static void write_vitamin_model_cfg(json_writer *w, const vt_model_config *c) {
    char timm_name[128];
    config_timm_model_name(c, timm_name, sizeof timm_name);
    json_write_format(w, "{\n  \"model_cfg\": {\n    \"embed_dim\": %d,\n    \"custom_text\": true,\n", c->embed_dim);
    json_write_raw(w, "    \"vision_cfg\": {\n      \"timm_model_name\": ");
    json_write_string(w, timm_name);
    json_write_format(w,
                      ",\n      \"timm_model_pretrained\": false,\n      \"timm_pool\": \"\",\n"
                      "      \"timm_proj\": \"linear\",\n      \"timm_drop\": 0.0,\n      \"timm_drop_path\": 0.1,\n"
                      "      \"image_size\": %d\n    },\n",
                      c->image_size);
}

/* open_clip's convnext_*.json vision_cfg: the timm trunk name carries the
 * numbers (config_convnext.c), the head type is timm_proj. */
static void write_convnext_model_cfg(json_writer *w, const vt_model_config *c) {
    json_write_format(w, "{\n  \"model_cfg\": {\n    \"embed_dim\": %d,\n", c->embed_dim);
    json_write_raw(w, "    \"vision_cfg\": {\n      \"timm_model_name\": ");
    json_write_string(w, c->timm_name);
    json_write_format(w,
                      ",\n      \"timm_model_pretrained\": false,\n      \"timm_pool\": \"\",\n"
                      "      \"timm_proj\": \"%s\",\n      \"timm_drop\": 0.0,\n      \"timm_drop_path\": 0.1,\n"
                      "      \"image_size\": %d\n    },\n",
                      c->head_mlp ? "mlp" : "linear", c->image_size);
}

/* Every number of the ViTamin tower, so a custom size reads back exactly. */
static void write_vitamin_cfg(json_writer *w, const vt_model_config *c) {
    json_write_raw(w, "  \"vitamin_cfg\": {\n    \"name\": ");
    json_write_string(w, c->name);
    json_write_raw(w, ",\n    \"timm_name\": ");
    json_write_string(w, c->timm_name);
    json_write_format(w,
                      ",\n    \"stem_width\": %d,\n    \"stage_widths\": [%d, %d],\n    \"stage_depths\": [%d, %d],\n"
                      "    \"width\": %d,\n    \"depth\": %d,\n    \"heads\": %d,\n    \"mlp_hidden\": %d,\n"
                      "    \"mlp\": \"%s\",\n    \"pos_embed\": %s\n  }\n}\n",
                      c->stem_width, c->stage_widths[0], c->stage_widths[1], c->stage_depths[0], c->stage_depths[1],
                      c->width, c->depth, c->heads, c->mlp_hidden, c->mlp_glu ? "swiglu" : "geglu",
                      c->has_pos_embed ? "true" : "false");
}

vt_status config_write_open_clip_json(const char *path, const vt_model_config *c, vt_error *err) {
    int vit = c->image_tower == VT_TOWER_VIT, convnext = c->image_tower == VT_TOWER_CONVNEXT;
    json_writer w = {0};
    if (vit)
        write_vit_model_cfg(&w, c);
    else if (convnext)
        write_convnext_model_cfg(&w, c);
    else
        write_vitamin_model_cfg(&w, c);
    json_write_format(&w,
                      "    \"text_cfg\": {\n      \"context_length\": %d,\n      \"vocab_size\": %d,\n"
                      "      \"width\": %d,\n      \"heads\": %d,\n      \"layers\": %d\n    }\n  },\n",
                      c->context_length, c->vocab_size, c->text_width, c->text_heads, c->text_layers);
    json_write_format(&w,
                      "  \"preprocess_cfg\": {\n    \"mean\": [%.9g, %.9g, %.9g],\n"
                      "    \"std\": [%.9g, %.9g, %.9g],\n    \"interpolation\": \"bicubic\",\n"
                      "    \"resize_mode\": \"shortest\",\n    \"size\": %d\n  },\n",
                      CLIP_PIXEL_MEAN[0], CLIP_PIXEL_MEAN[1], CLIP_PIXEL_MEAN[2], CLIP_PIXEL_STD[0], CLIP_PIXEL_STD[1],
                      CLIP_PIXEL_STD[2], c->image_size);
    if (vit || convnext) {
        json_write_raw(&w, "  \"name\": ");
        json_write_string(&w, c->name);
        json_write_raw(&w, "\n}\n");
    } else {
        write_vitamin_cfg(&w, c);
    }
    if (w.failed) {
        json_writer_free(&w);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory writing %s", path);
    }
    vt_status st = atomic_file_write_all(path, w.text, w.length, 1, err);
    json_writer_free(&w);
    return st;
}

/* ---------------------------------------------------------------- reading */

/* `key` of `obj` as an integer in [minimum, 1<<24]; `fallback` if absent (or
 * an error if fallback < 0, meaning required). */
static vt_status get_int(const char *path, const char *where, const json_value *obj, const char *key, int fallback,
                         int minimum, int *out, vt_error *err) {
    const json_value *v = json_get(obj, key);
    if (!v) {
        if (fallback >= 0) {
            *out = fallback;
            return VT_OK;
        }
        return vt_fail(err, VT_ERR_FORMAT, "%s: %s.%s is missing", path, where, key);
    }
    if (v->type != JSON_NUMBER || v->number != floor(v->number) || v->number < minimum || v->number > (1 << 24))
        return vt_fail(err, VT_ERR_FORMAT, "%s: %s.%s must be an integer in [%d, %d]", path, where, key, minimum,
                       1 << 24);
    *out = (int)v->number;
    return VT_OK;
}

vt_status config_json_get_int(const char *path, const char *where, const json_value *obj, const char *key,
                              int fallback, int minimum, int *out, vt_error *err) {
    return get_int(path, where, obj, key, fallback, minimum, out, err);
}

static vt_status get_int_pair(const char *path, const json_value *obj, const char *key, int *out, vt_error *err) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type != JSON_ARRAY || v->count != 2)
        return vt_fail(err, VT_ERR_FORMAT, "%s: vitamin_cfg.%s must be a list of 2 integers", path, key);
    for (int i = 0; i < 2; i++) {
        double x = v->items[i].number;
        if (v->items[i].type != JSON_NUMBER || x != floor(x) || x < 1 || x > (1 << 24))
            return vt_fail(err, VT_ERR_FORMAT, "%s: vitamin_cfg.%s[%d] must be a positive integer", path, key, i);
        out[i] = (int)x;
    }
    return VT_OK;
}

/* The image trunk from vitamin_cfg (every number given explicitly). */
static vt_status trunk_from_vitamin_cfg(const char *path, const json_value *v, vt_model_config *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    const char *name = json_get_string(v, "name", "ViTamin-custom");
    const char *timm_name = json_get_string(v, "timm_name", "");
    if (strlen(name) >= sizeof out->name || strlen(timm_name) >= sizeof out->timm_name)
        return vt_fail(err, VT_ERR_FORMAT, "%s: vitamin_cfg.name or .timm_name is longer than %zu bytes", path,
                       sizeof out->name - 1);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->timm_name, sizeof out->timm_name, "%s", timm_name);
    const json_value *pos = json_get(v, "pos_embed");
    if (!pos || pos->type != JSON_BOOL)
        return vt_fail(err, VT_ERR_FORMAT, "%s: vitamin_cfg.pos_embed must be true or false", path);
    out->has_pos_embed = pos->boolean;
    vt_status st = get_int(path, "vitamin_cfg", v, "stem_width", -1, 1, &out->stem_width, err);
    if (!st) st = get_int_pair(path, v, "stage_widths", out->stage_widths, err);
    if (!st) st = get_int_pair(path, v, "stage_depths", out->stage_depths, err);
    if (!st) st = get_int(path, "vitamin_cfg", v, "width", -1, 1, &out->width, err);
    if (!st) st = get_int(path, "vitamin_cfg", v, "depth", -1, 1, &out->depth, err);
    if (!st) st = get_int(path, "vitamin_cfg", v, "heads", -1, 1, &out->heads, err);
    if (!st) st = get_int(path, "vitamin_cfg", v, "mlp_hidden", -1, 1, &out->mlp_hidden, err);
    const char *mlp = json_get_string(v, "mlp", "geglu");
    if (!st && strcasecmp(mlp, "geglu") && strcasecmp(mlp, "swiglu"))
        st = vt_fail(err, VT_ERR_FORMAT, "%s: vitamin_cfg.mlp is '%s'; expected \"geglu\" or \"swiglu\"", path, mlp);
    out->mlp_glu = !strcasecmp(mlp, "swiglu");
    out->context_length = 77;
    out->vocab_size = 49408;
    return st;
}

/* vitamin_cfg and a timm name vitamin.c knows must describe the same trunk. */
static vt_status check_against_timm_name(const char *path, const char *trunk, const vt_model_config *c,
                                         vt_error *err) {
    vt_model_config known;
    if (!trunk || vt_config_lookup(trunk, &known, NULL)) return VT_OK; /* a name only vitamin_cfg defines */
    if (known.stem_width != c->stem_width || known.stage_widths[0] != c->stage_widths[0] ||
        known.stage_widths[1] != c->stage_widths[1] || known.width != c->width || known.depth != c->depth ||
        known.heads != c->heads || known.mlp_hidden != c->mlp_hidden || known.has_pos_embed != c->has_pos_embed)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: vitamin_cfg (width %d, depth %d) and vision_cfg.timm_model_name '%s' (width %d, depth %d) "
                       "describe different image towers; fix or remove one of them",
                       path, c->width, c->depth, trunk, known.width, known.depth);
    return VT_OK;
}

/* `key` of `obj` as a boolean (fallback if absent). */
static vt_status get_bool(const char *path, const char *where, const json_value *obj, const char *key, int fallback,
                          int *out, vt_error *err) {
    const json_value *v = json_get(obj, key);
    if (!v) {
        *out = fallback;
        return VT_OK;
    }
    if (v->type != JSON_BOOL) return vt_fail(err, VT_ERR_FORMAT, "%s: %s.%s must be true or false", path, where, key);
    *out = v->boolean;
    return VT_OK;
}

/* The vision_cfg keys of open_clip's VisionTransformer this engine runs with
 * their defaults (open_clip model.py CLIPVisionCfg); any other key that
 * changes the network is refused by name rather than ignored. */
static const char *const VIT_UNSUPPORTED[] = {"attentional_pool", "attn_pooler_queries", "block_type", "qk_norm",
                                              "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn",
                                              "scale_fc", "hf_model_name", "timm_model_name", "output_tokens"};

/* An open_clip VisionTransformer config (vision_cfg with layers / patch_size). */
static vt_status config_from_vit_cfg(const char *path, const json_value *cfg, const json_value *vision,
                                     vt_model_config *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof VIT_UNSUPPORTED / sizeof *VIT_UNSUPPORTED; i++) {
        const json_value *v = json_get(vision, VIT_UNSUPPORTED[i]);
        if (v && !(v->type == JSON_BOOL && !v->boolean) && v->type != JSON_NULL)
            return vt_fail(err, VT_ERR_UNSUPPORTED,
                           "%s: vision_cfg.%s is set; vitamin.c runs open_clip's VisionTransformer without it", path,
                           VIT_UNSUPPORTED[i]);
    }
    out->image_tower = VT_TOWER_VIT;
    out->has_pos_embed = 1;
    int head_width = 64;
    vt_status st = get_int(path, "vision_cfg", vision, "image_size", 224, 1, &out->image_size, err);
    if (!st) st = get_int(path, "vision_cfg", vision, "layers", 12, 1, &out->depth, err);
    if (!st) st = get_int(path, "vision_cfg", vision, "width", 768, 1, &out->width, err);
    if (!st) st = get_int(path, "vision_cfg", vision, "head_width", 64, 1, &head_width, err);
    if (!st) st = get_int(path, "vision_cfg", vision, "patch_size", 16, 1, &out->patch_size, err);
    if (!st) st = get_int(path, "model_cfg", cfg, "embed_dim", -1, 1, &out->embed_dim, err);
    if (!st) st = get_bool(path, "vision_cfg", vision, "no_ln_pre", 0, &out->no_ln_pre, err);
    if (!st) st = get_bool(path, "vision_cfg", vision, "final_ln_after_pool", 0, &out->final_ln_after_pool, err);
    if (!st) st = get_bool(path, "model_cfg", cfg, "quick_gelu", 0, &out->quick_gelu, err);
    if (st) return st;
    const char *pool = json_get_string(vision, "pool_type", "tok");
    if (strcmp(pool, "tok") && strcmp(pool, "avg"))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_cfg.pool_type '%s': vitamin.c pools with \"tok\" or \"avg\"",
                       path, pool);
    out->pool_avg = !strcmp(pool, "avg");
    const char *pos = json_get_string(vision, "pos_embed_type", "learnable");
    if (strcmp(pos, "learnable") && strcmp(pos, "sin_cos_2d")) /* either way a stored [grid²+1, W] tensor */
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_cfg.pos_embed_type '%s' is unknown", path, pos);
    double ratio = json_get_number(vision, "mlp_ratio", 4.0), ls = json_get_number(vision, "ls_init_value", 0.0);
    if (!(ratio > 0 && ratio < 1024) || !(ls >= 0 && ls < 1e6))
        return vt_fail(err, VT_ERR_FORMAT, "%s: vision_cfg.mlp_ratio %g or ls_init_value %g out of range", path, ratio, ls);
    out->mlp_hidden = (int)(out->width * ratio); /* open_clip: int(width * mlp_ratio) */
    out->ls_init = (float)ls;
    if (out->width % head_width)
        return vt_fail(err, VT_ERR_FORMAT, "%s: vision_cfg.width %d is not a multiple of head_width %d", path,
                       out->width, head_width);
    out->heads = out->width / head_width;
    out->context_length = 77;
    out->vocab_size = 49408;
    out->open_clip_preprocess_size = out->image_size;
    vit_config_name(out);
    return VT_OK;
}

/* text_cfg options of open_clip's TextTransformer that vitamin.c does not run. */
static vt_status check_text_cfg(const char *path, const json_value *text, vt_error *err) {
    const char *tokenizer = json_get_string(text, "hf_tokenizer_name", NULL);
    if (tokenizer || json_get(text, "hf_model_name"))
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: text_cfg uses the Hugging Face tokenizer/model '%s'; vitamin.c has only the CLIP BPE "
                       "tokenizer and open_clip's TextTransformer", path,
                       tokenizer ? tokenizer : json_get_string(text, "hf_model_name", "?"));
    const char *pool = json_get_string(text, "pool_type", "argmax");
    const json_value *no_mask = json_get(text, "no_causal_mask");
    double ratio = json_get_number(text, "mlp_ratio", 4.0);
    if (strcmp(pool, "argmax") || (no_mask && no_mask->type == JSON_BOOL && no_mask->boolean) || ratio != 4.0 ||
        json_get(text, "ls_init_value") || json_get(text, "embed_cls"))
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: text_cfg sets pool_type/no_causal_mask/mlp_ratio/ls_init_value/embed_cls; vitamin.c runs "
                       "the CLIP text tower (argmax pooling, causal mask, mlp_ratio 4)", path);
    return VT_OK;
}

/* A config that names no ViTamin tower: an error when it clearly describes
 * another model (so a ViT or ConvNeXt config never silently loses to shape
 * inference), a note otherwise (*found stays 0). */
static vt_status describe_other_config(const char *path, const json_value *root, const json_value *vision,
                                       vt_notes *notes, vt_error *err) {
    const char *model_type = json_get_string(root, "model_type", NULL);
    const json_value *arch = json_get(root, "architectures");
    const char *arch0 = arch && arch->type == JSON_ARRAY && arch->count && arch->items[0].type == JSON_STRING
                            ? arch->items[0].string
                            : NULL;
    if (model_type && strncasecmp(model_type, "vitamin", 7))
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: model_type '%s'%s%s%s is no model vitamin.c runs (ViTamin or ViT CLIP models: open_clip "
                       "configs, the ViTamin authors' config.json, or transformers' CLIPModel, model_type \"clip\"). "
                       "Remove or rename this config.json, or pass --model-name NAME if the weights beside it are "
                       "one of those",
                       path, model_type, arch0 ? " (architectures: " : "", arch0 ? arch0 : "", arch0 ? ")" : "");
    vt_note(notes, "%s describes no ViTamin tower (no vision_cfg.timm_model_name or vitamin_cfg); ignored", path);
    return VT_OK;
}

/* vision_cfg.timm_model_name -> the family member it names, together with the
 * image size, embed_dim and text tower beside it (a trunk name alone does not
 * tell ViTamin-L-384 from ViTamin-L2-384: the authors' L2 repos name
 * vitamin_large_384 too). *found = 0 with a note for a vitamin_* trunk of no
 * known family: the caller falls back to shape inference. */
static vt_status config_from_trunk(const char *path, const char *trunk, const json_value *cfg,
                                   const json_value *vision, const json_value *text, vt_model_config *out,
                                   int *found, vt_notes *notes, vt_error *err) {
    char family[16];
    int suffix = 0;
    int kind = vt_config_parse_trunk(trunk, family, sizeof family, &suffix);
    if (kind < 0)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: vision_cfg.timm_model_name '%s' is not a ViTamin trunk (vitamin_small, _base, _large, "
                       "_xlarge, optionally _SIZE); vitamin.c runs ViTamin CLIP models. Fix or remove the config, or "
                       "pass --model-name NAME if the weights are ViTamin's",
                       path, trunk);
    if (kind == 0) {
        vt_note(notes, "%s: vision_cfg.timm_model_name '%s' is a ViTamin trunk vitamin.c does not know; inferring the "
                "architecture from the tensor shapes", path, trunk);
        return VT_OK;
    }
    int image_field = 0, embed = 0, tw = 0, tl = 0;
    vt_status st = get_int(path, "vision_cfg", vision, "image_size", 0, 16, &image_field, err);
    if (!st) st = get_int(path, "model_cfg", cfg, "embed_dim", 0, 1, &embed, err);
    if (!st && text) st = get_int(path, "text_cfg", text, "width", 0, 0, &tw, err);
    if (!st && text) st = get_int(path, "text_cfg", text, "layers", 0, 0, &tl, err);
    if (st) return st;
    int size = suffix ? suffix : image_field;
    if (!size) size = !strcmp(family, "xlarge") ? 256 : 224;
    if (suffix && image_field && suffix != image_field)
        vt_note(notes, "%s: vision_cfg.image_size %d differs from trunk '%s', which is built for %d px; running at %d "
                "(timm builds the trunk at its own size; open_clip would preprocess to %d)",
                path, image_field, trunk, suffix, suffix, image_field);
    if (!vt_config_find_member(family, size, embed, tw, tl, out)) {
        st = vt_config_trunk(family, size, out, err);
        if (st) {
            vt_error_prefix(err, "%s: vision_cfg: ", path);
            return st;
        }
        if (embed) out->embed_dim = embed;
        out->hf_repo[0] = '\0'; /* not a released model */
        char base[sizeof out->name];
        snprintf(base, sizeof base, "%s", out->name);
        snprintf(out->name, sizeof out->name, "%.50s-custom", base);
        vt_note(notes, "%s: no released ViTamin model pairs trunk '%s' at %d px with embed_dim %d and a text tower "
                "%d wide, %d layers; building that pairing as '%s'",
                path, trunk, size, out->embed_dim, tw ? tw : out->text_width, tl ? tl : out->text_layers, out->name);
    }
    out->open_clip_preprocess_size = image_field ? image_field : out->image_size;
    *found = 1;
    return VT_OK;
}

/* vision_cfg of open_clip's TimmModel over a timm convnext_* trunk: the
 * trunk's numbers from its name, the image size, embed_dim and head (timm_proj
 * "linear" or "mlp"; timm_pool "" or "avg", which are the same here) beside
 * it. Named after the registered config with the same numbers. */
static vt_status config_from_convnext(const char *path, const char *trunk, const json_value *cfg,
                                      const json_value *vision, vt_model_config *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    if (!convnext_trunk_fill(trunk, out)) {
        char names[512];
        convnext_trunk_names(names, sizeof names);
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_cfg.timm_model_name '%s' is a ConvNeXt trunk vitamin.c does "
                       "not build (it has %s)", path, trunk, names);
    }
    /* open_clip's CLIPTextCfg defaults, for a text_cfg that leaves them out. */
    out->text_width = 512;
    out->text_heads = 8;
    out->text_layers = 12;
    out->context_length = 77;
    out->vocab_size = 49408;
    const char *pool = json_get_string(vision, "timm_pool", ""), *proj = json_get_string(vision, "timm_proj", "linear");
    if (*pool && strcmp(pool, "avg"))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_cfg.timm_pool '%s': vitamin.c runs ConvNeXt with its own "
                       "average pool (\"\" or \"avg\")", path, pool);
    if (strcmp(proj, "linear") && strcmp(proj, "mlp"))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: vision_cfg.timm_proj '%s': vitamin.c runs \"linear\" and \"mlp\" "
                       "heads", path, proj);
    out->head_mlp = !strcmp(proj, "mlp");
    vt_status st = get_int(path, "vision_cfg", vision, "image_size", 224, 32, &out->image_size, err);
    if (!st) st = get_int(path, "model_cfg", cfg, "embed_dim", -1, 1, &out->embed_dim, err);
    if (st) return st;
    out->open_clip_preprocess_size = out->image_size;
    snprintf(out->name, sizeof out->name, "%.50s-custom", trunk);
    return VT_OK;
}

/* The registered config that `c` equals (text tower too), else its name stays. */
static void name_convnext(vt_model_config *c) {
    for (int i = 0; i < convnext_config_count(); i++) {
        vt_model_config k;
        convnext_config_fill(i, &k);
        if (!strcmp(k.timm_name, c->timm_name) && k.image_size == c->image_size && k.embed_dim == c->embed_dim &&
            k.head_mlp == c->head_mlp && k.text_width == c->text_width && k.text_heads == c->text_heads &&
            k.text_layers == c->text_layers && k.context_length == c->context_length) {
            snprintf(c->name, sizeof c->name, "%s", k.name);
            return;
        }
    }
}

static vt_status config_from_json(const char *path, const json_value *root, vt_model_config *out, int *found,
                                  vt_notes *notes, vt_error *err) {
    if (root->type != JSON_OBJECT) return vt_fail(err, VT_ERR_FORMAT, "%s: not a JSON object", path);
    const json_value *cfg = json_get(root, "model_cfg");
    if (!cfg) cfg = root;
    const json_value *vision = json_get(cfg, "vision_cfg"), *text = json_get(cfg, "text_cfg");
    const json_value *vitamin = json_get(root, "vitamin_cfg");
    const json_value *trunk_value = json_get(vision, "timm_model_name");
    if (trunk_value && trunk_value->type != JSON_STRING)
        return vt_fail(err, VT_ERR_FORMAT, "%s: vision_cfg.timm_model_name must be a string", path);
    const char *trunk = trunk_value ? trunk_value->string : NULL;
    int is_vit = !vitamin && !trunk && vision && (json_get(vision, "patch_size") || json_get(vision, "layers"));
    if (!strcmp(json_get_string(root, "model_type", ""), "clip")) { /* transformers' CLIPModel */
        vt_status st = hf_clip_config(path, root, out, err);
        if (!st) *found = 1;
        if (!st && (st = vt_config_validate(out, err))) vt_error_prefix(err, "%s: ", path);
        return st;
    }
    if (!vitamin && !trunk && !is_vit) return describe_other_config(path, root, vision, notes, err);
    vt_status st = text ? check_text_cfg(path, text, err) : VT_OK;
    if (st) return st;
    int is_convnext = !vitamin && trunk && !strncmp(trunk, "convnext_", 9);
    if (is_vit) {
        st = config_from_vit_cfg(path, cfg, vision, out, err);
    } else if (is_convnext) {
        st = config_from_convnext(path, trunk, cfg, vision, out, err);
    } else if (vitamin) {
        if (!vision) return vt_fail(err, VT_ERR_FORMAT, "%s: has vitamin_cfg but no model_cfg.vision_cfg", path);
        st = trunk_from_vitamin_cfg(path, vitamin, out, err);
        if (!st) st = check_against_timm_name(path, trunk, out, err);
        if (!st) st = get_int(path, "vision_cfg", vision, "image_size", -1, 16, &out->image_size, err);
        if (!st) st = get_int(path, "model_cfg", cfg, "embed_dim", -1, 1, &out->embed_dim, err);
        if (!st) out->open_clip_preprocess_size = out->image_size;
        /* A released member written out by us is still that release. */
        vt_model_config known;
        if (!st && !vt_config_lookup(out->name, &known, NULL) && !strcmp(known.name, out->name) &&
            known.width == out->width && known.depth == out->depth && known.image_size == out->image_size &&
            known.embed_dim == out->embed_dim)
            memcpy(out->hf_repo, known.hf_repo, sizeof out->hf_repo);
    } else {
        int trunk_found = 0;
        st = config_from_trunk(path, trunk, cfg, vision, text, out, &trunk_found, notes, err);
        if (st || !trunk_found) return st;
    }
    if (!st && text) {
        st = get_int(path, "text_cfg", text, "width", out->text_width, 0, &out->text_width, err);
        if (!st) st = get_int(path, "text_cfg", text, "heads", out->text_heads, 0, &out->text_heads, err);
        if (!st) st = get_int(path, "text_cfg", text, "layers", out->text_layers, 0, &out->text_layers, err);
        if (!st) st = get_int(path, "text_cfg", text, "context_length", out->context_length, 1, &out->context_length, err);
        if (!st) st = get_int(path, "text_cfg", text, "vocab_size", out->vocab_size, 1, &out->vocab_size, err);
    }
    if (!st)
        st = get_int(path, "preprocess_cfg", json_get(root, "preprocess_cfg"), "size", out->open_clip_preprocess_size,
                     1, &out->open_clip_preprocess_size, err);
    if (st) return st;
    if (is_convnext) name_convnext(out);
    *found = 1;
    st = vt_config_validate(out, err);
    if (st) vt_error_prefix(err, "%s: ", path);
    return st;
}

vt_status config_parse_json(const char *path, const char *text, size_t size, vt_model_config *out, int *found,
                            vt_notes *notes, vt_error *err) {
    *found = 0;
    json_value *root = NULL;
    vt_status st = json_parse(text, size, &root, err);
    if (st) {
        vt_error_prefix(err, "%s: not valid JSON: ", path);
        return st;
    }
    st = config_from_json(path, root, out, found, notes, err);
    json_free(root);
    return st;
}

vt_status config_read_json(const char *path, vt_model_config *out, int *found, vt_notes *notes, vt_error *err) {
    *found = 0;
    char *text = NULL;
    size_t size = 0;
    vt_status st = vt_read_file(path, CONFIG_JSON_MAX_BYTES, 1, &text, &size, err);
    if (!st && text) st = config_parse_json(path, text, size, out, found, notes, err);
    free(text);
    return st;
}
