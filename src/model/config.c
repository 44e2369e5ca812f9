/* The family table. Numbers from timm/models/vitamin.py (image trunks) and
 * open_clip's model_configs/ViTamin-*.json (pairing, text towers, embed dims);
 * One row per open_clip model. */
#include "model/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "kernels/activation.h"
#include "model/config_convnext.h"
#include "model/config_vit.h"
#include "model/schema.h"
#include "model/topology.h"

typedef struct {
    const char *name, *timm_name, *hf_repo;
    int c0, c1, c2, d, nb, heads, img, pos, e, tw, th, tl, preprocess;
} family_row;

/*   name              timm trunk            HF repo             C0  C1  C2   D   NB  H  img pos  E    TW  TH TL  prep */
static const family_row FAMILY[] = {
    {"ViTamin-S",      "vitamin_small_224",  "ViTamin-S",        64, 64, 128, 384, 14, 6, 224, 1, 384, 384, 6, 12, 224},
    {"ViTamin-S-LTT",  "vitamin_small_224",  "ViTamin-S-LTT",    64, 64, 128, 384, 14, 6, 224, 1, 768, 768, 12, 12, 224},
    {"ViTamin-B",      "vitamin_base_224",   "ViTamin-B",        128, 128, 256, 768, 14, 12, 224, 1, 512, 512, 8, 12, 224},
    {"ViTamin-B-LTT",  "vitamin_base_224",   "ViTamin-B-LTT",    128, 128, 256, 768, 14, 12, 224, 1, 768, 768, 12, 12, 224},
    {"ViTamin-L",      "vitamin_large_224",  "ViTamin-L-224px",  160, 160, 320, 1024, 31, 16, 224, 1, 768, 768, 12, 12, 224},
    {"ViTamin-L-256",  "vitamin_large_256",  "ViTamin-L-256px",  160, 160, 320, 1024, 31, 16, 256, 1, 768, 768, 12, 12, 256},
    {"ViTamin-L-336",  "vitamin_large_336",  "ViTamin-L-336px",  160, 160, 320, 1024, 31, 16, 336, 1, 768, 768, 12, 12, 336},
    {"ViTamin-L-384",  "vitamin_large_384",  "ViTamin-L-384px",  160, 160, 320, 1024, 31, 16, 384, 1, 768, 768, 12, 12, 384},
    {"ViTamin-L2",     "vitamin_large2_224", "ViTamin-L2-224px", 160, 160, 320, 1024, 31, 16, 224, 1, 1024, 1024, 16, 24, 224},
    {"ViTamin-L2-256", "vitamin_large2_256", "ViTamin-L2-256px", 160, 160, 320, 1024, 31, 16, 256, 1, 1024, 1024, 16, 24, 256},
    {"ViTamin-L2-336", "vitamin_large2_336", "ViTamin-L2-336px", 160, 160, 320, 1024, 31, 16, 336, 1, 1024, 1024, 16, 24, 336},
    {"ViTamin-L2-384", "vitamin_large2_384", "ViTamin-L2-384px", 160, 160, 320, 1024, 31, 16, 384, 1, 1024, 1024, 16, 24, 384},
    {"ViTamin-XL-256", "vitamin_xlarge_256", "ViTamin-XL-256px", 192, 192, 384, 1152, 32, 16, 256, 0, 1152, 1152, 16, 27, 256},
    {"ViTamin-XL-336", "vitamin_xlarge_336", "ViTamin-XL-336px", 192, 192, 384, 1152, 32, 16, 336, 0, 1152, 1152, 16, 27, 336},
    /* open_clip's json says image_size 256 here (a bug in open_clip model_configs/ViTamin-XL-384.json); the authors
     * and the HF config.json say 384, and so do we. `preprocess` records open_clip's. */
    {"ViTamin-XL-384", "vitamin_xlarge_384", "ViTamin-XL-384px", 192, 192, 384, 1152, 32, 16, 384, 0, 1152, 1152, 16, 27, 256},
    /* Not released: the tiny member trained by the demo (scripts/demo.sh). */
    {"ViTamin-Tiny",   "",                   "",                 16, 16, 32, 96, 2, 2, 32, 1, 96, 96, 2, 2, 32},
};
enum { FAMILY_COUNT = (int)(sizeof FAMILY / sizeof FAMILY[0]) };

static void fill_from_row(const family_row *r, vt_model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->name, sizeof cfg->name, "%s", r->name);
    snprintf(cfg->timm_name, sizeof cfg->timm_name, "%s", r->timm_name);
    if (r->hf_repo[0]) snprintf(cfg->hf_repo, sizeof cfg->hf_repo, "jienengchen/%s", r->hf_repo);
    cfg->stem_width = r->c0;
    cfg->stage_widths[0] = r->c1;
    cfg->stage_widths[1] = r->c2;
    cfg->stage_depths[0] = 2;
    cfg->stage_depths[1] = 4;
    cfg->width = r->d;
    cfg->depth = r->nb;
    cfg->heads = r->heads;
    cfg->mlp_hidden = 2 * r->d;
    cfg->image_size = r->img;
    cfg->has_pos_embed = r->pos;
    cfg->embed_dim = r->e;
    cfg->text_width = r->tw;
    cfg->text_heads = r->th;
    cfg->text_layers = r->tl;
    cfg->context_length = 77;
    cfg->vocab_size = 49408;
    cfg->open_clip_preprocess_size = r->preprocess;
}


int vt_config_token_stride(const vt_model_config *cfg) {
    if (cfg->image_tower == VT_TOWER_CONVNEXT) return 32;
    return cfg->image_tower == VT_TOWER_VIT ? cfg->patch_size : 16;
}

int vt_config_token_grid(const vt_model_config *cfg) {
    return cfg->image_size / vt_config_token_stride(cfg);
}

int vt_config_mlp_act(const vt_model_config *cfg) { return cfg->quick_gelu ? VT_ACT_QUICKGELU : VT_ACT_GELU; }

/* The ViTamin family first, then open_clip's ViT configs (model/config_vit.c),
 * then its ConvNeXt ones (model/config_convnext.c). */
enum { MAX_CONFIGS = 128 };

int vt_config_count(void) { return FAMILY_COUNT + vit_config_count() + convnext_config_count(); }

const vt_model_config *vt_config_at(int index) {
    /* Built once per process on first use; the table is immutable afterwards. */
    static vt_model_config table[MAX_CONFIGS];
    static int built = 0;
    if (index < 0 || index >= vt_config_count() || index >= MAX_CONFIGS) return NULL;
#pragma omp critical(vt_config_table)
    if (!built) {
        for (int i = 0; i < FAMILY_COUNT; i++) fill_from_row(&FAMILY[i], &table[i]);
        for (int i = 0; i < vit_config_count() && FAMILY_COUNT + i < MAX_CONFIGS; i++)
            vit_config_fill(i, &table[FAMILY_COUNT + i]);
        int first = FAMILY_COUNT + vit_config_count();
        for (int i = 0; i < convnext_config_count() && first + i < MAX_CONFIGS; i++)
            convnext_config_fill(i, &table[first + i]);
        built = 1;
    }
    return &table[index];
}

/* "ViTamin-C96-N8", "ViTamin-C96-N8-256" or either with "-SwiGLU" → custom
 * config. Returns 1 if the name has that form. */
static int parse_custom_name(const char *name, int *c, int *nb, int *img, int *swiglu) {
    if (strncasecmp(name, "ViTamin-C", 9) != 0) return 0;
    char body[64];
    snprintf(body, sizeof body, "%s", name + 9);
    size_t n = strlen(body);
    *swiglu = n > 7 && !strcasecmp(body + n - 7, "-SwiGLU");
    if (*swiglu) body[n - 7] = '\0';
    char tail[16] = "";
    int k = sscanf(body, "%d-N%d-%d%15s", c, nb, img, tail);
    if (k == 2) { *img = 224; return 1; }
    return k == 3;
}

vt_status vt_config_lookup(const char *name, vt_model_config *out, vt_error *err) {
    if (!name || !*name) return vt_fail(err, VT_ERR_ARGUMENT, "empty model name");
    const char *bare = name;
    if (!strncasecmp(bare, "hf-hub:", 7)) bare += 7;
    if (!strncasecmp(bare, "jienengchen/", 12)) bare += 12;
    for (int i = 0; i < FAMILY_COUNT; i++) {
        const family_row *r = &FAMILY[i];
        if (!strcasecmp(bare, r->name) || (r->hf_repo[0] && !strcasecmp(bare, r->hf_repo))) {
            fill_from_row(r, out);
            return VT_OK;
        }
    }
    /* timm trunk names map to the first open_clip model built on them. */
    for (int i = 0; i < FAMILY_COUNT; i++) {
        if (FAMILY[i].timm_name[0] && !strcasecmp(bare, FAMILY[i].timm_name)) {
            fill_from_row(&FAMILY[i], out);
            return VT_OK;
        }
    }
    if (vit_config_lookup(bare, out) || convnext_config_lookup(bare, out)) return VT_OK;
    const char *tokenizer = vit_config_other_tokenizer(bare);
    if (tokenizer)
        return vt_fail(err, VT_ERR_MODEL,
                       "model '%s' needs the Hugging Face tokenizer '%s'; vitamin.c has only the CLIP BPE tokenizer, "
                       "so it runs the ViT configs whose text tower uses it (run 'vitamin info' for the list)",
                       name, tokenizer);
    int c, nb, img, swiglu;
    if (parse_custom_name(bare, &c, &nb, &img, &swiglu)) {
        vt_status st = vt_config_custom(c, nb, img, out, err);
        if (!st && swiglu) {
            out->mlp_glu = 1;
            size_t len = strlen(out->name);
            snprintf(out->name + len, sizeof out->name - len, "-SwiGLU");
        }
        return st;
    }
    char known[1024] = "";
    for (int i = 0; i < FAMILY_COUNT; i++) {
        strncat(known, FAMILY[i].name, sizeof known - strlen(known) - 3);
        strncat(known, ", ", sizeof known - strlen(known) - 1);
    }
    return vt_fail(err, VT_ERR_MODEL,
                   "unknown model '%s'. Known models: %sthe open_clip ViT configs (ViT-B-32, ViT-L-14-336, ...), "
                   "the ConvNeXt ones (convnext_tiny ... convnext_xxlarge_320, ConvNeXt-T/-B/-XL, ConvNeXt-Atto), "
                   "or a custom size 'ViTamin-C<width>-N<depth>[-<image size>]' (run 'vitamin info' for the table)",
                   name, known);
}

/* "vitamin_<family>[_<size>]" -> family ("small", "base", "large", "xlarge";
 * timm's "large2" is the "large" trunk under another CLIP pairing) and size (0
 * when the name has none, as the authors' "vitamin_small"). */
int vt_config_parse_trunk(const char *trunk, char *family, size_t family_size, int *size) {
    static const char *const FAMILIES[] = {"small", "base", "large2", "large", "xlarge"};
    *size = 0;
    if (family_size) family[0] = '\0';
    if (!trunk || strncasecmp(trunk, "vitamin_", 8)) return -1;
    const char *rest = trunk + 8;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++) {
        size_t n = strlen(FAMILIES[i]);
        if (strncasecmp(rest, FAMILIES[i], n)) continue;
        const char *tail = rest + n;
        if (*tail == '_') {
            char *end;
            long v = strtol(tail + 1, &end, 10);
            if (end == tail + 1 || *end || v < 16 || v > 4096) return 0;
            *size = (int)v;
        } else if (*tail) {
            continue; /* "large2" is tried before "large" */
        }
        snprintf(family, family_size, "%s", i == 2 ? "large" : FAMILIES[i]);
        return 1;
    }
    return 0;
}

/* The trunk family of a table row ("" for rows without a timm trunk). */
static void row_family(const family_row *r, char *family, size_t size) {
    int ignored;
    if (vt_config_parse_trunk(r->timm_name, family, size, &ignored) != 1) family[0] = '\0';
}

int vt_config_find_member(const char *family, int image_size, int embed_dim, int text_width, int text_layers,
                          vt_model_config *out) {
    for (int i = 0; i < FAMILY_COUNT; i++) {
        const family_row *r = &FAMILY[i];
        char f[16];
        row_family(r, f, sizeof f);
        if (!f[0] || strcmp(f, family) || r->img != image_size) continue;
        if ((embed_dim && r->e != embed_dim) || (text_width && r->tw != text_width) ||
            (text_layers && r->tl != text_layers))
            continue;
        fill_from_row(r, out);
        return 1;
    }
    return 0;
}

vt_status vt_config_trunk(const char *family, int image_size, vt_model_config *out, vt_error *err) {
    const family_row *base = NULL;
    for (int i = 0; i < FAMILY_COUNT && !base; i++) {
        char f[16];
        row_family(&FAMILY[i], f, sizeof f);
        if (f[0] && !strcmp(f, family)) base = &FAMILY[i];
    }
    if (!base) return vt_fail(err, VT_ERR_MODEL, "unknown ViTamin trunk family '%s'", family);
    fill_from_row(base, out);
    for (int i = 0; i < FAMILY_COUNT; i++) { /* prefer the row built at that size (its timm name) */
        char f[16];
        row_family(&FAMILY[i], f, sizeof f);
        if (f[0] && !strcmp(f, family) && FAMILY[i].img == image_size) {
            fill_from_row(&FAMILY[i], out);
            break;
        }
    }
    if (out->image_size != image_size) {
        if (image_size < 16 || image_size > 4096 || image_size % 16)
            return vt_fail(err, VT_ERR_MODEL, "image size %d for trunk vitamin_%s: must be a multiple of 16 in [16, 4096]",
                           image_size, family);
        out->image_size = out->open_clip_preprocess_size = image_size;
        snprintf(out->timm_name, sizeof out->timm_name, "vitamin_%s_%d", family, image_size);
    }
    return VT_OK;
}

vt_status vt_config_custom(int width_c, int depth, int image_size, vt_model_config *out,
                           vt_error *err) {
    if (width_c < 8 || width_c > 4096 || width_c % 8 != 0)
        return vt_fail(err, VT_ERR_MODEL, "custom width C=%d: must be a multiple of 8 in [8, 4096]", width_c);
    if (depth < 1 || depth > 256)
        return vt_fail(err, VT_ERR_MODEL, "custom depth N_B=%d: must be in [1, 256]", depth);
    if (image_size < 16 || image_size > 4096 || image_size % 16 != 0)
        return vt_fail(err, VT_ERR_MODEL, "custom image size %d: must be a multiple of 16 in [16, 4096]",
                       image_size);
    /* The paper scales the family by C and N_B alone: C0 = C1 = C, C2 = 2C,
     * D = 6C (S: 64 -> 384, B: 128 -> 768, XL: 192 -> 1152), head dim 64 when it
     * divides D (else 16 heads, as XL), and a text tower of the same width as
     * D with 12 layers, embed dim D. */
    family_row r = {"", "", "", width_c, width_c, 2 * width_c, 6 * width_c, depth, 0, image_size, 1,
                    6 * width_c, 6 * width_c, 0, 12, image_size};
    r.heads = (r.d % 64 == 0) ? r.d / 64 : 16;
    if (r.d % r.heads) r.heads = 1;
    r.th = r.heads;
    fill_from_row(&r, out);
    snprintf(out->name, sizeof out->name, "ViTamin-C%d-N%d-%d", width_c, depth, image_size);
    return vt_config_validate(out, err);
}

/* The text tower's checks, shared by both image towers. */
static vt_status validate_text(const vt_model_config *c, vt_error *err) {
    if (c->text_width > 0 && (c->text_heads <= 0 || c->text_width % c->text_heads))
        return vt_fail(err, VT_ERR_MODEL, "model '%s': text width %d not divisible by %d heads", c->name,
                       c->text_width, c->text_heads);
    if (c->text_width > 0 && (c->context_length < 2 || c->context_length > 4096))
        return vt_fail(err, VT_ERR_MODEL, "model '%s': context length %d out of range", c->name,
                       c->context_length);
    return VT_OK;
}

vt_status vt_config_validate(const vt_model_config *c, vt_error *err) {
    if (c->image_tower == VT_TOWER_VIT || c->image_tower == VT_TOWER_CONVNEXT) {
        vt_status st = c->image_tower == VT_TOWER_VIT ? vit_config_validate(c, err) : convnext_config_validate(c, err);
        return st ? st : validate_text(c, err);
    }
    if (c->image_tower != VT_TOWER_VITAMIN)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': unknown image tower %d", c->name, c->image_tower);
    if (c->stem_width <= 0 || c->stage_widths[0] <= 0 || c->stage_widths[1] <= 0 || c->width <= 0 ||
        c->depth <= 0 || c->heads <= 0 || c->embed_dim <= 0)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': all widths and depths must be positive", c->name);
    if (c->width % c->heads)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': width %d not divisible by %d heads", c->name,
                       c->width, c->heads);
    if (c->stage_depths[0] < 1 || c->stage_depths[1] < 1 || c->stage_depths[0] + c->stage_depths[1] > VT_MAX_MBCONV)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': %d + %d MBConv blocks; each stage needs 1 to %d in all",
                       c->name, c->stage_depths[0], c->stage_depths[1], VT_MAX_MBCONV);
    if (c->mlp_glu != 0 && c->mlp_glu != 1)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': unknown MLP gate %d", c->name, c->mlp_glu);
    if (c->image_size % 16)
        return vt_fail(err, VT_ERR_MODEL, "model '%s': image size %d is not a multiple of 16", c->name,
                       c->image_size);
    return validate_text(c, err);
}

/* --- parameter counts: the schema's tensors (model/schema.c), which the tests
 * check against open_clip's model.parameters() for every config --- */

int64_t vt_config_image_params(const vt_model_config *c) {
    model_schema s;
    if (schema_build(c, 0, 0, &s, NULL)) return -1;
    int64_t n = s.params[SCHEMA_IMAGE];
    schema_free(&s);
    return n;
}

int64_t vt_config_text_params(const vt_model_config *c) {
    if (c->text_width <= 0) return 0;
    model_schema s;
    if (schema_build(c, 1, 0, &s, NULL)) return -1;
    int64_t n = s.params[SCHEMA_TEXT];
    schema_free(&s);
    return n;
}

/* --- FLOPs: 2 per multiply-add of every conv, linear and attention matmul --- */

double vt_config_image_flops(const vt_model_config *c, int image_size) {
    if (c->image_tower == VT_TOWER_VIT) return vit_config_image_flops(c, image_size);
    if (c->image_tower == VT_TOWER_CONVNEXT) return convnext_config_image_flops(c, image_size);
    vt_model_config at_size = *c;
    at_size.image_size = image_size;
    image_topology t;
    if (image_topology_build(&at_size, &t)) return -1;
    double hw = (double)t.stem_out * t.stem_out, c0 = t.stem_width;
    double f = 2 * hw * 27 * c0 + 2 * hw * 9 * c0 * c0; /* stem */
    for (int k = 0; k < t.mbconv_count; k++) {
        const topo_mbconv *b = &t.mbconv[k];
        double in_hw = (double)b->h_in * b->h_in, out_hw = (double)b->h_out * b->h_out;
        f += 2 * in_hw * b->cin * b->mid;                          /* expand 1x1 at input resolution */
        f += 2 * out_hw * 9 * b->mid + 2 * out_hw * b->mid * b->cout; /* depthwise (stride) + project */
        if (b->has_expand) f += 2 * out_hw * b->cin * b->cout;
    }
    double n = t.tokens, d = t.width, h = t.mlp_hidden;
    f += 2 * n * 9 * t.pool_channels * d;            /* StridedConv */
    f += t.depth * (2 * n * d * (3 * d + d + 2 * h) + 2 * n * h * d + 2 * 2 * n * n * d);
    f += 2 * d * c->embed_dim;
    return f;
}

double vt_config_text_flops(const vt_model_config *c) {
    double t = c->context_length, w = c->text_width;
    return c->text_layers * (2 * t * w * (3 * w + w + 8 * w) + 2 * 2 * t * t * w) + 2 * w * c->embed_dim;
}
