/* open_clip's ConvNeXt configs (config_convnext.h); the trunk numbers are
 * timm convnext.py's convnext_tiny ... convnext_xxlarge. */
#include "model/config_convnext.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* timm convnext.py's trunks: widths, blocks, eps, and conv_mlp (the small
 * timm members run the MLP as 1x1 convs: the same numbers, weights stored
 * [out, in, 1, 1]). */
typedef struct {
    const char *timm;
    int dims[4], depths[4];
    float eps;
    int conv_mlp;
} convnext_trunk;

static const convnext_trunk TRUNKS[] = {
    {"convnext_atto",    {40, 80, 160, 320},     {2, 2, 6, 2},  1e-6f, 1},
    {"convnext_femto",   {48, 96, 192, 384},     {2, 2, 6, 2},  1e-6f, 1},
    {"convnext_pico",    {64, 128, 256, 512},    {2, 2, 6, 2},  1e-6f, 1},
    {"convnext_nano",    {80, 160, 320, 640},    {2, 2, 8, 2},  1e-6f, 1},
    {"convnext_tiny",    {96, 192, 384, 768},    {3, 3, 9, 3},  1e-6f, 0},
    {"convnext_small",   {96, 192, 384, 768},    {3, 3, 27, 3}, 1e-6f, 0},
    {"convnext_base",    {128, 256, 512, 1024},  {3, 3, 27, 3}, 1e-6f, 0},
    {"convnext_large",   {192, 384, 768, 1536},  {3, 3, 27, 3}, 1e-6f, 0},
    {"convnext_xlarge",  {256, 512, 1024, 2048}, {3, 3, 27, 3}, 1e-6f, 0},
    {"convnext_xxlarge", {384, 768, 1536, 3072}, {3, 4, 30, 3}, 1e-5f, 0},
};
enum { TRUNK_COUNT = (int)(sizeof TRUNKS / sizeof TRUNKS[0]) };

typedef struct {
    const char *name, *timm;
    int img, e, head_mlp, tw, th, tl;
} convnext_row;

static const convnext_row CONVNEXT[] = {
    /* open_clip's model_configs/convnext_*.json
     * name                  timm trunk          img  E     mlp TW    TH  TL */
    {"convnext_tiny",        "convnext_tiny",    224, 1024, 0, 512,  8,  12},
    {"convnext_small",       "convnext_small",   224, 512,  0, 512,  8,  12},
    {"convnext_base",        "convnext_base",    224, 512,  0, 512,  8,  12},
    {"convnext_base_w",      "convnext_base",    256, 640,  0, 640,  10, 12},
    {"convnext_base_w_320",  "convnext_base",    320, 640,  0, 640,  10, 12},
    {"convnext_large",       "convnext_large",   224, 768,  0, 768,  12, 12},
    {"convnext_large_d",     "convnext_large",   256, 768,  1, 768,  12, 16},
    {"convnext_large_d_320", "convnext_large",   320, 768,  1, 768,  12, 16},
    {"convnext_xlarge",      "convnext_xlarge",  256, 1024, 0, 1024, 16, 20},
    {"convnext_xxlarge",     "convnext_xxlarge", 256, 1024, 0, 1024, 16, 24},
    {"convnext_xxlarge_320", "convnext_xxlarge", 320, 1024, 0, 1024, 16, 24},
    /* The ViTamin paper's benchmark members (MODEL_HUB.md): each trunk with the
     * text tower of its size (S 12 x 384, B 12 x 512, L 12 x 768) at 224 px.
     * embed_dim is the one that gives the published image-tower counts
     * (28.61 / 88.09 / 350.25 M: the upstream configs' 1024 / 512 / 1024). */
    {"ConvNeXt-T",           "convnext_tiny",    224, 1024, 0, 384,  6,  12},
    {"ConvNeXt-B",           "convnext_base",    224, 512,  0, 512,  8,  12},
    {"ConvNeXt-XL",          "convnext_xlarge",  224, 1024, 0, 768,  12, 12},
    /* Not released: the demo-sized member (vitamin rebench, tests): timm's
     * smallest trunk at 32 px with ViTamin-Tiny's text tower. */
    {"ConvNeXt-Atto",        "convnext_atto",    32,  96,   0, 96,   2,  2},
};
enum { CONVNEXT_COUNT = (int)(sizeof CONVNEXT / sizeof CONVNEXT[0]) };

int convnext_config_count(void) { return CONVNEXT_COUNT; }

int convnext_trunk_fill(const char *timm, vt_model_config *c) {
    for (int i = 0; i < TRUNK_COUNT; i++) {
        const convnext_trunk *t = &TRUNKS[i];
        if (strcmp(t->timm, timm)) continue;
        snprintf(c->timm_name, sizeof c->timm_name, "%s", t->timm);
        c->image_tower = VT_TOWER_CONVNEXT;
        memcpy(c->cnx_dims, t->dims, sizeof c->cnx_dims);
        memcpy(c->cnx_depths, t->depths, sizeof c->cnx_depths);
        c->cnx_norm_eps = t->eps;
        c->cnx_conv_mlp = t->conv_mlp;
        c->width = t->dims[3];
        return 1;
    }
    return 0;
}

void convnext_trunk_names(char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < TRUNK_COUNT && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "", TRUNKS[i].timm);
}

int convnext_trunk_by_shapes(const int dims[4], const int depths[4], int conv_mlp, vt_model_config *c) {
    for (int i = 0; i < TRUNK_COUNT; i++)
        if (!memcmp(TRUNKS[i].dims, dims, sizeof TRUNKS[i].dims) &&
            !memcmp(TRUNKS[i].depths, depths, sizeof TRUNKS[i].depths) && TRUNKS[i].conv_mlp == conv_mlp)
            return convnext_trunk_fill(TRUNKS[i].timm, c);
    return 0;
}

void convnext_config_fill(int index, vt_model_config *c) {
    const convnext_row *r = &CONVNEXT[index];
    memset(c, 0, sizeof *c);
    convnext_trunk_fill(r->timm, c);
    snprintf(c->name, sizeof c->name, "%s", r->name);
    c->head_mlp = r->head_mlp;
    c->embed_dim = r->e;
    c->image_size = c->open_clip_preprocess_size = r->img;
    c->text_width = r->tw;
    c->text_heads = r->th;
    c->text_layers = r->tl;
    c->context_length = 77;
    c->vocab_size = 49408;
}

int convnext_config_lookup(const char *name, vt_model_config *out) {
    for (int i = 0; i < CONVNEXT_COUNT; i++)
        if (!strcasecmp(name, CONVNEXT[i].name)) {
            convnext_config_fill(i, out);
            return 1;
        }
    return 0;
}

int convnext_stage_side(int image_size, int stage) {
    int side = image_size / 4;
    for (int s = 1; s <= stage; s++) side /= 2;
    return side;
}

vt_status convnext_config_validate(const vt_model_config *c, vt_error *err) {
    for (int s = 0; s < 4; s++)
        if (c->cnx_dims[s] <= 0 || c->cnx_depths[s] <= 0 || c->cnx_depths[s] > 256)
            return vt_fail(err, VT_ERR_MODEL, "model '%s': stage %d has width %d and %d blocks", c->name, s,
                           c->cnx_dims[s], c->cnx_depths[s]);
    if (c->embed_dim <= 0 || c->width != c->cnx_dims[3])
        return vt_fail(err, VT_ERR_MODEL, "model '%s': bad embed dim or width", c->name);
    if (c->image_size < 32 || c->image_size > 8192 || c->image_size % 32)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': image size %d is not a multiple of 32 in 32..8192 (the "
                       "trunk downsamples 32x)", c->name, c->image_size);
    if (!(c->cnx_norm_eps > 0)) return vt_fail(err, VT_ERR_MODEL, "model '%s': LayerNorm eps must be > 0", c->name);
    return VT_OK;
}

double convnext_config_image_flops(const vt_model_config *c, int image_size) {
    double f = 0;
    for (int s = 0; s < 4; s++) {
        double side = convnext_stage_side(image_size, s), hw = side * side, d = c->cnx_dims[s];
        f += s == 0 ? 2 * hw * 48 * d : 2 * hw * 4 * c->cnx_dims[s - 1] * d; /* stem / downsample conv */
        f += c->cnx_depths[s] * (2 * hw * 49 * d + 2 * 2 * hw * d * 4 * d);  /* dw 7x7, fc1, fc2 */
    }
    double w = c->width, e = c->embed_dim;
    return f + (c->head_mlp ? 2 * w * 2 * e + 2 * 2 * e * e : 2 * w * e);
}
