/* Config resolution (see config_resolve.h). */
#include "model/config_resolve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/image/image.h"
#include "io/serial/json.h"
#include "model/checkpoint_keys.h"
#include "model/config_convnext.h"
#include "model/config_json.h"
#include "model/schema.h"

/* How many consecutive (kind, 0..n-1) tensors the checkpoint holds. */
static int count_indexed(const key_index *ix, schema_kind kind) {
    int n = 0;
    char name[160];
    for (;; n++) {
        schema_name(kind, n, -1, name, sizeof name);
        if (!key_index_find(ix, name, NULL)) return n;
    }
}

static const ckpt_tensor *find_kind(const key_index *ix, schema_kind kind, char *name, size_t size) {
    schema_name(kind, 0, -1, name, size); /* index 0 for the per-block kinds */
    return key_index_find(ix, name, NULL);
}

static int64_t dim(const key_index *ix, schema_kind kind, int ndim, int axis) {
    char name[160];
    const ckpt_tensor *t = find_kind(ix, kind, name, sizeof name);
    return t && t->ndim == ndim ? t->shape[axis] : -1;
}

static void format_shape(char *buf, size_t size, const ckpt_tensor *t) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* The directory part of `path` ("" or ending in '/'), as a length. */
static size_t dir_length(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path + 1) : 0;
}

/* ------------------------------------------------- config vs tensors */

typedef struct {
    const char *config_path;
    const key_index *ix;
    vt_error *err;
    vt_status status;
} cross_check;

/* `field` (as the config spells it) says `expected`; tensor `name` says `got`
 * along `axis`: an error naming both when they differ. */
static void expect_dim(cross_check *c, const char *field, long long expected, schema_kind kind, int ndim, int axis,
                       const char *meaning) {
    if (c->status) return;
    char name[160];
    const ckpt_tensor *t = find_kind(c->ix, kind, name, sizeof name);
    if (!t || t->ndim != ndim || t->shape[axis] == expected) return;
    char shape[128];
    format_shape(shape, sizeof shape, t);
    c->status = vt_fail(c->err, VT_ERR_MODEL,
                        "%s: %s says %s %lld, but tensor '%s' has shape %s (%s %lld): the config does not describe "
                        "these weights. Fix or remove it (the architecture is then inferred from the tensors), or pass "
                        "--model-name NAME",
                        c->config_path, field, meaning, expected, name, shape, meaning, (long long)t->shape[axis]);
}

static void expect_count(cross_check *c, const char *field, int expected, schema_kind kind, const char *what) {
    if (c->status) return;
    int got = count_indexed(c->ix, kind);
    if (got == 0 || got == expected) return; /* absent towers are the binder's to report */
    char first[160];
    schema_name(kind, 0, -1, first, sizeof first);
    c->status = vt_fail(c->err, VT_ERR_MODEL,
                        "%s: %s says %d %s, but the checkpoint holds %d (tensors like '%s'): the config does not "
                        "describe these weights. Fix or remove it, or pass --model-name NAME",
                        c->config_path, field, expected, what, got, first);
}

/* A ViT config against conv1 [W, 3, p, p], positional_embedding [grid²+1, W],
 * the resblocks and proj [W, E]. */
static void check_vit_against_tensors(cross_check *c, const vt_model_config *m) {
    int grid = vt_config_token_grid(m);
    expect_dim(c, "vision_cfg.width", m->width, T_VIT_CONV1_W, 4, 0, "width");
    expect_dim(c, "vision_cfg.patch_size", m->patch_size, T_VIT_CONV1_W, 4, 2, "patch size");
    expect_dim(c, "vision_cfg.image_size", (long long)grid * grid + 1, T_VIT_POS, 2, 0,
               "tokens ((image_size/patch_size)^2 + 1)");
    expect_count(c, "vision_cfg.layers", m->depth, T_VIT_LN1_W, "transformer blocks");
    expect_dim(c, "vision_cfg.mlp_ratio", m->mlp_hidden, T_VIT_FC_W, 2, 0, "MLP width");
    expect_dim(c, "embed_dim", m->embed_dim, T_VIT_PROJ, 2, 1, "embed dim");
}

/* A ViTamin config against the stem, blocks, head and pos_embed. */
static void check_vitamin_against_tensors(cross_check *c, const vt_model_config *m) {
    char trunk[128];
    snprintf(trunk, sizeof trunk, "vision_cfg.timm_model_name (trunk %s)", m->timm_name[0] ? m->timm_name : m->name);
    expect_dim(c, trunk, m->stem_width, T_STEM_CONV1_W, 4, 0, "stem width");
    expect_dim(c, trunk, m->width, T_BLK_NORM1_W, 1, 0, "width");
    expect_count(c, trunk, m->depth, T_BLK_NORM1_W, "transformer blocks");
    expect_dim(c, "embed_dim", m->embed_dim, T_HEAD_PROJ_W, 2, 0, "embed dim");
    if (!c->status && m->has_pos_embed) {
        int grid = vt_config_token_grid(m);
        expect_dim(c, "vision_cfg.image_size", (long long)grid * grid, T_POS_EMBED, 3, 1,
                   "tokens ((image_size/16)^2)");
    } else if (!c->status && dim(c->ix, T_POS_EMBED, 3, 1) >= 0) {
        c->status = vt_fail(c->err, VT_ERR_MODEL,
                            "%s: %s has no positional embedding (an XL trunk), but the checkpoint holds "
                            "'visual.trunk.pos_embed': the config does not describe these weights",
                            c->config_path, trunk);
    }
}

static vt_status check_config_against_tensors(const char *config_path, const key_index *ix, const vt_model_config *m,
                                              vt_error *err) {
    cross_check c = {config_path, ix, err, VT_OK};
    /* ConvNeXt: the binder checks every tensor's shape against the schema,
     * naming tensor and model; nothing here adds to that. */
    if (m->image_tower == VT_TOWER_VIT)
        check_vit_against_tensors(&c, m);
    else if (m->image_tower == VT_TOWER_VITAMIN)
        check_vitamin_against_tensors(&c, m);
    if (m->text_width > 0) {
        expect_dim(&c, "text_cfg.width", m->text_width, T_TXT_TOKEN, 2, 1, "width");
        expect_dim(&c, "text_cfg.vocab_size", m->vocab_size, T_TXT_TOKEN, 2, 0, "vocabulary");
        expect_dim(&c, "text_cfg.context_length", m->context_length, T_TXT_POS, 2, 0, "context");
        expect_count(&c, "text_cfg.layers", m->text_layers, T_TXT_LN1_W, "text layers");
        expect_dim(&c, "embed_dim", m->embed_dim, T_TXT_PROJ, 2, 1, "embed dim");
    }
    return c.status;
}

/* ----------------------------------------------------- shape inference */

/* An open_clip VisionTransformer checkpoint: widths, patch, grid, depth and
 * MLP width from the tensors; the head count, the pooling and the MLP
 * activation are not in them, so the registered config with these shapes
 * supplies them (GELU, head width 64 and class-token pooling otherwise), with
 * a note when QuickGELU is the likelier choice cannot be told apart. */
static vt_status config_from_vit_shapes(const key_index *ix, int openai_archive, vt_model_config *out,
                                        vt_notes *notes, vt_error *err) {
    char name[160];
    const ckpt_tensor *conv1 = find_kind(ix, T_VIT_CONV1_W, name, sizeof name);
    int64_t tokens = dim(ix, T_VIT_POS, 2, 0), e = dim(ix, T_VIT_PROJ, 2, 1), hidden = dim(ix, T_VIT_FC_W, 2, 0);
    if (conv1->ndim != 4 || conv1->shape[2] != conv1->shape[3] || tokens < 2 || e <= 0 || hidden <= 0)
        return vt_fail(err, VT_ERR_MODEL,
                       "checkpoint has an open_clip ViT tower with unexpected shapes (%s, the positional embedding, "
                       "proj or the MLP); pass --model-name NAME or put open_clip_config.json beside it", name);
    int64_t w = conv1->shape[0], p = conv1->shape[2], grid = 1;
    while ((grid + 1) * (grid + 1) + 1 <= tokens) grid++;
    if (grid * grid + 1 != tokens)
        return vt_fail(err, VT_ERR_MODEL, "visual.positional_embedding has %lld rows, not grid^2 + 1", (long long)tokens);
    int layers = count_indexed(ix, T_VIT_LN1_W), tw = (int)dim(ix, T_TXT_TOKEN, 2, 1), tl = count_indexed(ix, T_TXT_LN1_W);
    int has_ls = dim(ix, T_VIT_LS1, 1, 0) > 0, no_ln_pre = dim(ix, T_VIT_LN_PRE_W, 1, 0) < 0;
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *r = vt_config_at(i);
        if (r->image_tower == VT_TOWER_VIT && r->width == w && r->patch_size == p && vt_config_token_grid(r) == grid &&
            r->depth == layers && r->mlp_hidden == hidden && r->embed_dim == e && (r->ls_init > 0) == has_ls &&
            r->quick_gelu == openai_archive && (tw < 0 || (r->text_width == tw && r->text_layers == tl))) {
            *out = *r;
            if (tw < 0) out->text_width = 0;
            if (openai_archive) return VT_OK;
            vt_note(notes, "the tensors do not say whether %s's MLPs use GELU or QuickGELU: running GELU; OpenAI's "
                    "weights (and the -quickgelu releases) need --model-name %s-quickgelu or their "
                    "open_clip_config.json", out->name, out->name);
            return VT_OK;
        }
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "ViT-custom");
    out->image_tower = VT_TOWER_VIT;
    out->has_pos_embed = 1;
    out->width = (int)w;
    out->patch_size = (int)p;
    out->image_size = out->open_clip_preprocess_size = (int)(grid * p);
    out->depth = layers;
    out->heads = (int)(w % 64 ? 1 : w / 64);
    out->mlp_hidden = (int)hidden;
    out->embed_dim = (int)e;
    out->ls_init = has_ls ? 1e-5f : 0.0f;
    out->no_ln_pre = no_ln_pre;
    out->text_width = tw > 0 ? tw : 0;
    out->text_layers = tl;
    out->text_heads = tw > 0 && tw % 64 == 0 ? tw / 64 : 1;
    out->context_length = (int)dim(ix, T_TXT_POS, 2, 0);
    out->vocab_size = (int)dim(ix, T_TXT_TOKEN, 2, 0);
    out->quick_gelu = openai_archive;
    vt_note(notes, "ViT shapes match no open_clip config: assuming head width 64, class-token pooling and %s; "
            "put the model's open_clip_config.json beside it to be sure",
            openai_archive ? "QuickGELU (an OpenAI TorchScript archive)" : "GELU");
    return vt_config_validate(out, err);
}

/* A timm ConvNeXt trunk under open_clip's TimmModel: stage widths from the
 * stem and downsample convs, block counts by name, the head type and embed
 * dim from its tensors, the text tower's size; the image size is in no
 * tensor, so the first registered config with these shapes (the 224/256 px
 * one of a pair that differ only in size) supplies it, with a note. */
static vt_status config_from_convnext_shapes(const key_index *ix, vt_model_config *out, vt_notes *notes,
                                             vt_error *err) {
    int dims[4], depths[4];
    char name[160];
    dims[0] = (int)dim(ix, T_CNX_STEM_W, 4, 0);
    for (int s = 0; s < 4; s++) {
        if (s > 0) {
            schema_name(T_CNX_DS_CONV_W, s, -1, name, sizeof name);
            const ckpt_tensor *t = key_index_find(ix, name, NULL);
            dims[s] = t && t->ndim == 4 ? (int)t->shape[0] : -1;
        }
        depths[s] = 0;
        for (;; depths[s]++) {
            schema_name(T_CNX_GAMMA, s, depths[s], name, sizeof name);
            if (!key_index_find(ix, name, NULL)) break;
        }
    }
    schema_name(T_CNX_FC1_W, 0, 0, name, sizeof name);
    const ckpt_tensor *fc1 = key_index_find(ix, name, NULL);
    int conv_mlp = fc1 && fc1->ndim == 4;
    int mlp = dim(ix, T_HEAD_MLP_FC1_W, 2, 0) > 0;
    int64_t e = mlp ? dim(ix, T_HEAD_MLP_FC2_W, 2, 0) : dim(ix, T_HEAD_PROJ_W, 2, 0);
    int64_t tw = dim(ix, T_TXT_TOKEN, 2, 1);
    int tl = count_indexed(ix, T_TXT_LN1_W), matches = 0;
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *r = vt_config_at(i);
        if (r->image_tower != VT_TOWER_CONVNEXT || r->embed_dim != e || r->head_mlp != mlp ||
            memcmp(r->cnx_dims, dims, sizeof dims) || memcmp(r->cnx_depths, depths, sizeof depths) ||
            r->cnx_conv_mlp != conv_mlp || (tw >= 0 && (r->text_width != tw || r->text_layers != tl)))
            continue;
        if (!matches++) *out = *r;
    }
    if (!matches) {
        char trunks[512];
        convnext_trunk_names(trunks, sizeof trunks);
        vt_model_config t;
        memset(&t, 0, sizeof t);
        int known = convnext_trunk_by_shapes(dims, depths, conv_mlp, &t);
        return vt_fail(err, VT_ERR_MODEL,
                       "checkpoint has a ConvNeXt tower (stage widths %d/%d/%d/%d, %d/%d/%d/%d blocks, %s head to "
                       "%lld%s%s) that matches no registered config; put its open_clip_config.json (vision_cfg."
                       "timm_model_name one of %s) beside it",
                       dims[0], dims[1], dims[2], dims[3], depths[0], depths[1], depths[2], depths[3],
                       mlp ? "mlp" : "linear", (long long)e, known ? ": timm's " : "", known ? t.timm_name : "",
                       trunks);
    }
    if (tw < 0) out->text_width = 0;
    if (matches > 1)
        vt_note(notes, "%s and a larger-image variant have the same tensors; running %s at %d px (pass --model-name "
                "for the other, e.g. %s_320)", out->name, out->name, out->image_size, out->name);
    return VT_OK;
}

/* `openai_archive`: a TorchScript archive, which only OpenAI's releases are:
 * QuickGELU, as open_clip's load_openai_model builds them. */
static vt_status config_from_shapes(const key_index *ix, int openai_archive, vt_model_config *out, vt_notes *notes,
                                    vt_error *err) {
    if (dim(ix, T_VIT_CONV1_W, 4, 0) > 0) return config_from_vit_shapes(ix, openai_archive, out, notes, err);
    if (dim(ix, T_CNX_STEM_W, 4, 0) > 0) return config_from_convnext_shapes(ix, out, notes, err);
    int64_t c0 = dim(ix, T_STEM_CONV1_W, 4, 0);
    int64_t d = dim(ix, T_BLK_NORM1_W, 1, 0);
    int64_t e = dim(ix, T_HEAD_PROJ_W, 2, 0);
    if (c0 <= 0 || d <= 0 || e <= 0) {
        char stem[160], block[160], head[160];
        schema_name(T_STEM_CONV1_W, -1, -1, stem, sizeof stem);
        schema_name(T_BLK_NORM1_W, 0, -1, block, sizeof block);
        schema_name(T_HEAD_PROJ_W, -1, -1, head, sizeof head);
        return vt_fail(err, VT_ERR_MODEL,
                       "checkpoint has no ViTamin image tower (missing %s, %s or %s); pass --model-name NAME if it is "
                       "one", stem, block, head);
    }
    int nb = count_indexed(ix, T_BLK_NORM1_W);
    int64_t tw = dim(ix, T_TXT_TOKEN, 2, 1);
    int tl = count_indexed(ix, T_TXT_LN1_W);
    int64_t grid_tokens = dim(ix, T_POS_EMBED, 3, 1);
    int pos = grid_tokens >= 0;
    int matches = 0;
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *r = vt_config_at(i);
        int img_ok = pos ? (r->has_pos_embed && vt_config_token_grid(r) * vt_config_token_grid(r) == grid_tokens)
                         : !r->has_pos_embed;
        if (r->stem_width == c0 && r->width == d && r->depth == nb && r->embed_dim == e && img_ok &&
            (tw < 0 || (r->text_width == tw && r->text_layers == tl))) {
            if (!matches) *out = *r;
            matches++;
        }
    }
    if (matches == 1) {
        if (tw < 0) out->text_width = 0;
        return VT_OK;
    }
    if (matches > 1)
        return vt_fail(err, VT_ERR_MODEL,
                       "checkpoint matches %d ViTamin models (e.g. %s): XL checkpoints have no positional embedding, so "
                       "the image size cannot be inferred; pass --model-name ViTamin-XL-256, -XL-336 or -XL-384, or put "
                       "the repo's config.json beside it",
                       matches, out->name);
    return vt_fail(err, VT_ERR_MODEL,
                   "checkpoint shapes (stem %lld, width %lld, %d blocks, embed %lld, text width %lld, %d text layers) "
                   "match no registered ViTamin model; pass --model-name NAME or put open_clip_config.json beside it",
                   (long long)c0, (long long)d, nb, (long long)e, (long long)tw, tl);
}

/* ------------------------------------------- preprocessor_config.json */

/* A size field: an integer, or {"shortest_edge": n} / {"height": h, "width": w}
 * (HF's two spellings). *value = 0 when absent; -1 when height != width. */
static vt_status size_field(const char *path, const json_value *root, const char *key, int *value, vt_error *err) {
    const json_value *v = json_get(root, key);
    *value = 0;
    if (!v || v->type == JSON_NULL) return VT_OK;
    if (v->type == JSON_NUMBER && v->number == floor(v->number) && v->number > 0 && v->number < (1 << 24)) {
        *value = (int)v->number;
        return VT_OK;
    }
    if (v->type == JSON_OBJECT) {
        double se = json_get_number(v, "shortest_edge", -1), h = json_get_number(v, "height", -1),
               w = json_get_number(v, "width", -1);
        if (se > 0 && se < (1 << 24) && se == floor(se)) {
            *value = (int)se;
            return VT_OK;
        }
        if (h > 0 && w > 0 && h < (1 << 24) && w < (1 << 24) && h == floor(h) && w == floor(w)) {
            *value = h == w ? (int)h : -1;
            return VT_OK;
        }
    }
    return vt_fail(err, VT_ERR_FORMAT,
                   "%s: %s must be a positive integer, {\"shortest_edge\": N} or {\"height\": H, \"width\": W}", path,
                   key);
}

static vt_status triple_field(const char *path, const json_value *root, const char *key, double out[3], int *present,
                              vt_error *err) {
    const json_value *v = json_get(root, key);
    *present = 0;
    if (!v || v->type == JSON_NULL) return VT_OK;
    if (v->type != JSON_ARRAY || v->count != 3)
        return vt_fail(err, VT_ERR_FORMAT, "%s: %s must be a list of 3 numbers", path, key);
    for (int i = 0; i < 3; i++) {
        if (v->items[i].type != JSON_NUMBER)
            return vt_fail(err, VT_ERR_FORMAT, "%s: %s[%d] must be a number", path, key, i);
        out[i] = v->items[i].number;
    }
    *present = 1;
    return VT_OK;
}

static int same_triple(const double a[3], const float b[3]) {
    for (int i = 0; i < 3; i++)
        if (fabs(a[i] - b[i]) > 1e-4 * fabs(b[i])) return 0;
    return 1;
}

vt_status config_check_preprocessor(const char *path, const char *text, size_t size, const vt_model_config *cfg,
                                    vt_notes *notes, vt_error *err) {
    json_value *root = NULL;
    vt_status st = json_parse(text, size, &root, err);
    if (st) {
        vt_error_prefix(err, "%s: not valid JSON (fix or remove the file): ", path);
        return st;
    }
    if (root->type != JSON_OBJECT) {
        json_free(root);
        return vt_fail(err, VT_ERR_FORMAT, "%s: not a JSON object (fix or remove the file)", path);
    }
    int crop = 0, resize = 0, has_mean = 0, has_std = 0;
    double mean[3], std[3];
    st = size_field(path, root, "crop_size", &crop, err);
    if (!st) st = size_field(path, root, "size", &resize, err);
    if (!st) st = triple_field(path, root, "image_mean", mean, &has_mean, err);
    if (!st) st = triple_field(path, root, "image_std", std, &has_std, err);
    const json_value *resample = json_get(root, "resample");
    if (!st && resample && resample->type != JSON_NUMBER)
        st = vt_fail(err, VT_ERR_FORMAT, "%s: resample must be a PIL filter number (3 = bicubic)", path);
    if (st) {
        json_free(root);
        return st;
    }
    int s = cfg->image_size;
    char ours[160];
    snprintf(ours, sizeof ours, "vitamin.c resizes the short side to %d and center-crops %dx%d (bicubic, OpenAI "
             "mean/std, as open_clip does)", s, s, s);
    if (crop && crop != s)
        vt_note(notes, "%s: crop_size %d disagrees with the model's %d px input; %s", path, crop, s, ours);
    if (resize && resize != s)
        vt_note(notes, "%s: size %d disagrees with the model's %d px input; %s", path, resize, s, ours);
    if ((has_mean && !same_triple(mean, CLIP_PIXEL_MEAN)) || (has_std && !same_triple(std, CLIP_PIXEL_STD)))
        vt_note(notes, "%s: image_mean/image_std differ from OpenAI's CLIP values the model was trained with; %s", path,
                ours);
    if (resample && resample->number != 3)
        vt_note(notes, "%s: resample %g is not bicubic (3); %s", path, resample->number, ours);
    static const char *const FLAGS[] = {"do_resize", "do_center_crop", "do_normalize", "do_rescale"};
    for (size_t i = 0; i < sizeof FLAGS / sizeof *FLAGS; i++) {
        const json_value *f = json_get(root, FLAGS[i]);
        if (f && f->type == JSON_BOOL && !f->boolean) vt_note(notes, "%s: %s is false; %s", path, FLAGS[i], ours);
    }
    json_free(root);
    return VT_OK;
}

static vt_status check_preprocessor_beside(const char *ckpt_path, const vt_model_config *cfg, vt_notes *notes,
                                           vt_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%.*spreprocessor_config.json", (int)dir_length(ckpt_path), ckpt_path);
    char *text;
    size_t size;
    vt_status st = vt_read_file(path, 1 << 20, 1, &text, &size, err);
    if (!st && text) st = config_check_preprocessor(path, text, size, cfg, notes, err);
    free(text);
    return st;
}

/* ------------------------------------------------------------ resolve */

vt_status config_resolve(const char *checkpoint_path, const ckpt_file *ckpt, const char *model_name,
                         const char *fallback_name, vt_model_config *out, vt_notes *notes, vt_error *err) {
    if (model_name && *model_name) return vt_config_lookup(model_name, out, err);
    key_index ix = {0};
    vt_status st = key_index_build(ckpt, &ix, err);
    int found = 0;
    static const char *const NAMES[] = {"open_clip_config.json", "config.json"};
    char config_path[4096] = "";
    for (int n = 0; n < 2 && !st && !found; n++) {
        snprintf(config_path, sizeof config_path, "%.*s%s", (int)dir_length(checkpoint_path), checkpoint_path,
                 NAMES[n]);
        st = config_read_json(config_path, out, &found, notes, err);
    }
    if (!st && found) st = check_config_against_tensors(config_path, &ix, out, err);
    if (!st && !found && fallback_name && *fallback_name) {
        st = vt_config_lookup(fallback_name, out, err);
        found = !st;
    }
    if (!st && !found) {
        st = config_from_shapes(&ix, ckpt_get_format(ckpt) == CKPT_FORMAT_TORCHSCRIPT, out, notes, err);
        if (!st)
            vt_note(notes, "no open_clip_config.json or config.json beside %s: %s inferred from the tensor shapes",
                    checkpoint_path, out->name);
    }
    key_index_free(&ix);
    if (!st) st = check_preprocessor_beside(checkpoint_path, out, notes, err);
    return st;
}
