/* The ViT CLIP configs of open_clip 3.x (open_clip model_configs/ViT-*.json),
 * those whose text tower takes the CLIP BPE tokenizer; tests/reference/
 * test_vit_configs.py checks every row against open_clip's json. The image
 * tower is open_clip transformer.py VisionTransformer: heads = width /
 * head_width, MLP hidden = int(width · mlp_ratio). */
#include "model/config_vit.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

typedef struct {
    const char *name;
    int e, img, layers, width, head_width, hidden, patch;
    float ls;
    int quick, tw, th, tl;
} vit_row;

/*  name                      E    img  L   W     hw   hidden patch ls  quick TW   TH  TL */
static const vit_row VIT[] = {
    {"ViT-S-32",               384, 224, 12, 384,  64, 1536,  32, 0,    0, 384,  6,  12},
    {"ViT-S-32-alt",           256, 224, 12, 384,  64, 1536,  32, 0,    0, 256,  4,  10},
    {"ViT-S-16",               384, 224, 12, 384,  64, 1536,  16, 0,    0, 384,  6,  12},
    {"ViT-S-16-alt",           256, 224, 12, 384,  64, 1536,  16, 0,    0, 256,  4,  10},
    {"ViT-M-32",               512, 224, 12, 512,  64, 2048,  32, 0,    0, 512,  8,  12},
    {"ViT-M-32-alt",           384, 224, 12, 512,  64, 2048,  32, 0,    0, 384,  6,  12},
    {"ViT-M-16",               512, 224, 12, 512,  64, 2048,  16, 0,    0, 512,  8,  12},
    {"ViT-M-16-alt",           384, 224, 12, 512,  64, 2048,  16, 1e-4f, 0, 384, 6,  12},
    {"ViT-B-32",               512, 224, 12, 768,  64, 3072,  32, 0,    0, 512,  8,  12},
    {"ViT-B-32-quickgelu",     512, 224, 12, 768,  64, 3072,  32, 0,    1, 512,  8,  12},
    {"ViT-B-32-256",           512, 256, 12, 768,  64, 3072,  32, 0,    0, 512,  8,  12},
    {"ViT-B-32-plus-256",      640, 256, 12, 896,  64, 3584,  32, 0,    0, 640,  10, 12},
    {"ViT-B-16",               512, 224, 12, 768,  64, 3072,  16, 0,    0, 512,  8,  12},
    {"ViT-B-16-quickgelu",     512, 224, 12, 768,  64, 3072,  16, 0,    1, 512,  8,  12},
    {"ViT-B-16-plus",          640, 224, 12, 896,  64, 3584,  16, 0,    0, 640,  10, 12},
    {"ViT-B-16-plus-240",      640, 240, 12, 896,  64, 3584,  16, 0,    0, 640,  10, 12},
    {"ViT-L-14",               768, 224, 24, 1024, 64, 4096,  14, 0,    0, 768,  12, 12},
    {"ViT-L-14-quickgelu",     768, 224, 24, 1024, 64, 4096,  14, 0,    1, 768,  12, 12},
    {"ViT-L-14-280",           768, 280, 24, 1024, 64, 4096,  14, 0,    0, 768,  12, 12},
    {"ViT-L-14-336",           768, 336, 24, 1024, 64, 4096,  14, 0,    0, 768,  12, 12},
    {"ViT-L-14-336-quickgelu", 768, 336, 24, 1024, 64, 4096,  14, 0,    1, 768,  12, 12},
    {"ViT-L-16",               768, 224, 24, 1024, 64, 4096,  16, 0,    0, 768,  12, 12},
    {"ViT-L-16-320",           768, 320, 24, 1024, 64, 4096,  16, 0,    0, 768,  12, 12},
    {"ViT-H-14",               1024, 224, 32, 1280, 80, 5120, 14, 0,    0, 1024, 16, 24},
    {"ViT-H-14-quickgelu",     1024, 224, 32, 1280, 80, 5120, 14, 0,    1, 1024, 16, 24},
    {"ViT-H-14-378",           1024, 378, 32, 1280, 80, 5120, 14, 0,    0, 1024, 16, 24},
    {"ViT-H-14-378-quickgelu", 1024, 378, 32, 1280, 80, 5120, 14, 0,    1, 1024, 16, 24},
    {"ViT-H-16",               1024, 224, 32, 1280, 80, 5120, 16, 0,    0, 1024, 16, 24},
    {"ViT-g-14",               1024, 224, 40, 1408, 88, 6144, 14, 0,    0, 1024, 16, 24},
    {"ViT-bigG-14",            1280, 224, 48, 1664, 104, 8192, 14, 0,   0, 1280, 20, 32},
    {"ViT-bigG-14-quickgelu",  1280, 224, 48, 1664, 104, 8192, 14, 0,   1, 1280, 20, 32},
    {"ViT-e-14",               1280, 224, 56, 1792, 112, 15360, 14, 0,  0, 1280, 20, 36},
};
enum { VIT_COUNT = (int)(sizeof VIT / sizeof VIT[0]) };

/* open_clip ViT configs whose text side needs a Hugging Face tokenizer. */
static const struct {
    const char *prefix, *tokenizer;
} OTHER_TOKENIZER[] = {
    {"ViT-H-14-CLIPA", "bert-base-uncased"},   {"ViT-L-14-CLIPA", "bert-base-uncased"},
    {"ViT-bigG-14-CLIPA", "bert-base-uncased"}, {"ViT-H-14-worldwide", "facebook/xlm-v-base"},
    {"ViT-bigG-14-worldwide", "facebook/xlm-v-base"}, {"ViT-L-14-worldwide", "google/mt5-base"},
};

int vit_config_count(void) { return VIT_COUNT; }

void vit_config_fill(int index, vt_model_config *c) {
    const vit_row *r = &VIT[index];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", r->name);
    c->image_tower = VT_TOWER_VIT;
    c->embed_dim = r->e;
    c->image_size = c->open_clip_preprocess_size = r->img;
    c->depth = r->layers;
    c->width = r->width;
    c->heads = r->width / r->head_width;
    c->mlp_hidden = r->hidden;
    c->patch_size = r->patch;
    c->ls_init = r->ls;
    c->quick_gelu = r->quick;
    c->has_pos_embed = 1;
    c->text_width = r->tw;
    c->text_heads = r->th;
    c->text_layers = r->tl;
    c->context_length = 77;
    c->vocab_size = 49408;
}

int vit_config_lookup(const char *name, vt_model_config *out) {
    for (int i = 0; i < VIT_COUNT; i++)
        if (!strcasecmp(name, VIT[i].name)) {
            vit_config_fill(i, out);
            return 1;
        }
    return 0;
}

const char *vit_config_other_tokenizer(const char *name) {
    for (size_t i = 0; i < sizeof OTHER_TOKENIZER / sizeof *OTHER_TOKENIZER; i++)
        if (!strncasecmp(name, OTHER_TOKENIZER[i].prefix, strlen(OTHER_TOKENIZER[i].prefix)))
            return OTHER_TOKENIZER[i].tokenizer;
    return NULL;
}

vt_status vit_config_validate(const vt_model_config *c, vt_error *err) {
    if (c->width <= 0 || c->depth <= 0 || c->heads <= 0 || c->mlp_hidden <= 0 || c->embed_dim <= 0)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': all widths and depths must be positive", c->name);
    if (c->width % c->heads)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': width %d not divisible by %d heads", c->name, c->width, c->heads);
    if (c->patch_size < 1 || c->patch_size > 1024 || c->image_size < c->patch_size || c->image_size > 8192)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': patch size %d and image size %d: need 1 <= patch <= image <= 8192",
                       c->name, c->patch_size, c->image_size);
    if (c->ls_init < 0) return vt_fail(err, VT_ERR_MODEL, "model '%s': negative ls_init_value", c->name);
    return VT_OK;
}

double vit_config_image_flops(const vt_model_config *c, int image_size) {
    double grid = image_size / c->patch_size, n = grid * grid, t = n + 1, w = c->width, h = c->mlp_hidden;
    double f = 2 * n * 3 * c->patch_size * c->patch_size * w; /* conv1 */
    f += c->depth * (2 * t * w * 4 * w + 2 * 2 * t * t * w + 2 * 2 * t * w * h);
    return f + 2 * w * c->embed_dim;
}

void vit_config_name(vt_model_config *out) {
    snprintf(out->name, sizeof out->name, "ViT-custom");
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *k = vt_config_at(i);
        if (k->image_tower == VT_TOWER_VIT && k->image_size == out->image_size && k->depth == out->depth &&
            k->width == out->width && k->heads == out->heads && k->mlp_hidden == out->mlp_hidden &&
            k->patch_size == out->patch_size && k->embed_dim == out->embed_dim && k->ls_init == out->ls_init &&
            k->quick_gelu == out->quick_gelu && !out->pool_avg && !out->no_ln_pre && !out->final_ln_after_pool) {
            snprintf(out->name, sizeof out->name, "%s", k->name);
            return;
        }
    }
}

vt_status vit_config_force_image_size(vt_model_config *c, int image_size, int *stored_grid, vt_error *err) {
    if (c->image_tower == VT_TOWER_CONVNEXT)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "--image-size %d: %s is a ConvNeXt model, whose sizes are separate configs (convnext_base_w, "
                       "convnext_base_w_320 ...); pick one by --model-name. Resampling the positional embedding is for "
                       "ViT models", image_size, c->name);
    if (c->image_tower != VT_TOWER_VIT)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "--image-size %d: %s is a ViTamin model, whose sizes are separate models (ViTamin-L-256, -336, "
                       "-384 ...); pick one of those by name. Resampling the positional embedding is for ViT models",
                       image_size, c->name);
    if (image_size % c->patch_size || image_size < c->patch_size)
        return vt_fail(err, VT_ERR_ARGUMENT, "--image-size %d is not a multiple of %s's patch size %d", image_size,
                       c->name, c->patch_size);
    *stored_grid = vt_config_token_grid(c);
    c->image_size = c->open_clip_preprocess_size = image_size;
    return VT_OK;
}
