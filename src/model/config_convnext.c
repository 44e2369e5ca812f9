/* open_clip's ConvNeXt configs (config_convnext.h); the trunk numbers are
 * timm convnext.py's convnext_tiny ... convnext_xxlarge. */
#include "model/config_convnext.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

typedef struct {
    const char *name, *timm;
    int dims[4], depths[4];
    float eps;
    int img, e, head_mlp, tw, th, tl;
} convnext_row;

#define TINY {96, 192, 384, 768}, {3, 3, 9, 3}
#define SMALL {96, 192, 384, 768}, {3, 3, 27, 3}
#define BASE {128, 256, 512, 1024}, {3, 3, 27, 3}
#define LARGE {192, 384, 768, 1536}, {3, 3, 27, 3}
#define XLARGE {256, 512, 1024, 2048}, {3, 3, 27, 3}
#define XXLARGE {384, 768, 1536, 3072}, {3, 4, 30, 3}

/*  name                  timm trunk         dims, depths  eps    img  E     mlp TW    TH  TL */
static const convnext_row CONVNEXT[] = {
    {"convnext_tiny",       "convnext_tiny",    TINY,    1e-6f, 224, 1024, 0, 512,  8,  12},
    {"convnext_small",      "convnext_small",   SMALL,   1e-6f, 224, 512,  0, 512,  8,  12},
    {"convnext_base",       "convnext_base",    BASE,    1e-6f, 224, 512,  0, 512,  8,  12},
    {"convnext_base_w",     "convnext_base",    BASE,    1e-6f, 256, 640,  0, 640,  10, 12},
    {"convnext_base_w_320", "convnext_base",    BASE,    1e-6f, 320, 640,  0, 640,  10, 12},
    {"convnext_large",      "convnext_large",   LARGE,   1e-6f, 224, 768,  0, 768,  12, 12},
    {"convnext_large_d",    "convnext_large",   LARGE,   1e-6f, 256, 768,  1, 768,  12, 16},
    {"convnext_large_d_320", "convnext_large",  LARGE,   1e-6f, 320, 768,  1, 768,  12, 16},
    {"convnext_xlarge",     "convnext_xlarge",  XLARGE,  1e-6f, 256, 1024, 0, 1024, 16, 20},
    {"convnext_xxlarge",    "convnext_xxlarge", XXLARGE, 1e-5f, 256, 1024, 0, 1024, 16, 24},
    {"convnext_xxlarge_320", "convnext_xxlarge", XXLARGE, 1e-5f, 320, 1024, 0, 1024, 16, 24},
};
enum { CONVNEXT_COUNT = (int)(sizeof CONVNEXT / sizeof CONVNEXT[0]) };

int convnext_config_count(void) { return CONVNEXT_COUNT; }

void convnext_config_fill(int index, vt_model_config *c) {
    const convnext_row *r = &CONVNEXT[index];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", r->name);
    snprintf(c->timm_name, sizeof c->timm_name, "%s", r->timm);
    c->image_tower = VT_TOWER_CONVNEXT;
    memcpy(c->cnx_dims, r->dims, sizeof c->cnx_dims);
    memcpy(c->cnx_depths, r->depths, sizeof c->cnx_depths);
    c->cnx_norm_eps = r->eps;
    c->head_mlp = r->head_mlp;
    c->width = r->dims[3];
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
