/* Config resolution (see config_resolve.h). */
#include "model/config_resolve.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/image.h"
#include "io/json.h"
#include "model/checkpoint_keys.h"
#include "model/config_json.h"

static int count_prefixed_blocks(const key_index *ix, const char *fmt) {
    int n = 0;
    char name[640];
    for (;; n++) {
        snprintf(name, sizeof name, fmt, n);
        if (!key_index_find(ix, name, NULL)) return n;
    }
}

static int64_t dim(const key_index *ix, const char *name, int ndim, int axis) {
    const ckpt_tensor *t = key_index_find(ix, name, NULL);
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
static void expect_dim(cross_check *c, const char *field, long long expected, const char *name, int ndim, int axis,
                       const char *meaning) {
    if (c->status) return;
    const ckpt_tensor *t = key_index_find(c->ix, name, NULL);
    if (!t || t->ndim != ndim || t->shape[axis] == expected) return;
    char shape[128];
    format_shape(shape, sizeof shape, t);
    c->status = vt_fail(c->err, VT_ERR_MODEL,
                        "%s: %s says %s %lld, but tensor '%s' has shape %s (%s %lld): the config does not describe "
                        "these weights. Fix or remove it (the architecture is then inferred from the tensors), or pass "
                        "--model-name NAME",
                        c->config_path, field, meaning, expected, name, shape, meaning, (long long)t->shape[axis]);
}

static void expect_count(cross_check *c, const char *field, int expected, const char *fmt, const char *what) {
    if (c->status) return;
    int got = count_prefixed_blocks(c->ix, fmt);
    if (got == 0 || got == expected) return; /* absent towers are the binder's to report */
    char first[160];
    snprintf(first, sizeof first, fmt, 0);
    c->status = vt_fail(c->err, VT_ERR_MODEL,
                        "%s: %s says %d %s, but the checkpoint holds %d (tensors like '%s'): the config does not "
                        "describe these weights. Fix or remove it, or pass --model-name NAME",
                        c->config_path, field, expected, what, got, first);
}

static vt_status check_config_against_tensors(const char *config_path, const key_index *ix, const vt_model_config *m,
                                              vt_error *err) {
    cross_check c = {config_path, ix, err, VT_OK};
    char trunk[128];
    snprintf(trunk, sizeof trunk, "vision_cfg.timm_model_name (trunk %s)", m->timm_name[0] ? m->timm_name : m->name);
    expect_dim(&c, trunk, m->stem_width, "visual.trunk.patch_embed.backbone.stem.conv1.weight", 4, 0, "stem width");
    expect_dim(&c, trunk, m->width, "visual.trunk.blocks.0.norm1.weight", 1, 0, "width");
    expect_count(&c, trunk, m->depth, "visual.trunk.blocks.%d.norm1.weight", "transformer blocks");
    expect_dim(&c, "embed_dim", m->embed_dim, "visual.head.proj.weight", 2, 0, "embed dim");
    if (!c.status && m->has_pos_embed) {
        int grid = m->image_size / 16;
        expect_dim(&c, "vision_cfg.image_size", (long long)grid * grid, "visual.trunk.pos_embed", 3, 1,
                   "tokens ((image_size/16)^2)");
    } else if (!c.status && key_index_find(ix, "visual.trunk.pos_embed", NULL)) {
        c.status = vt_fail(err, VT_ERR_MODEL,
                           "%s: %s has no positional embedding (an XL trunk), but the checkpoint holds "
                           "'visual.trunk.pos_embed': the config does not describe these weights",
                           config_path, trunk);
    }
    if (m->text_width > 0) {
        expect_dim(&c, "text_cfg.width", m->text_width, "text.token_embedding.weight", 2, 1, "width");
        expect_dim(&c, "text_cfg.vocab_size", m->vocab_size, "text.token_embedding.weight", 2, 0, "vocabulary");
        expect_dim(&c, "text_cfg.context_length", m->context_length, "text.positional_embedding", 2, 0, "context");
        expect_count(&c, "text_cfg.layers", m->text_layers, "text.transformer.resblocks.%d.ln_1.weight", "text layers");
        expect_dim(&c, "embed_dim", m->embed_dim, "text.text_projection", 2, 1, "embed dim");
    }
    return c.status;
}

/* ----------------------------------------------------- shape inference */

static vt_status config_from_shapes(const key_index *ix, vt_model_config *out, vt_error *err) {
    int64_t c0 = dim(ix, "visual.trunk.patch_embed.backbone.stem.conv1.weight", 4, 0);
    int64_t d = dim(ix, "visual.trunk.blocks.0.norm1.weight", 1, 0);
    int64_t e = dim(ix, "visual.head.proj.weight", 2, 0);
    if (c0 <= 0 || d <= 0 || e <= 0)
        return vt_fail(err, VT_ERR_MODEL,
                       "checkpoint has no ViTamin image tower (missing visual.trunk.patch_embed.backbone.stem.conv1.weight, "
                       "visual.trunk.blocks.0.norm1.weight or visual.head.proj.weight); pass --model-name NAME if it is one");
    int nb = count_prefixed_blocks(ix, "visual.trunk.blocks.%d.norm1.weight");
    int64_t tw = dim(ix, "text.token_embedding.weight", 2, 1);
    int tl = count_prefixed_blocks(ix, "text.transformer.resblocks.%d.ln_1.weight");
    const ckpt_tensor *pos = key_index_find(ix, "visual.trunk.pos_embed", NULL);
    int grid_tokens = pos && pos->ndim == 3 ? (int)pos->shape[1] : 0;
    int matches = 0;
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *r = vt_config_at(i);
        int img_ok = pos ? (r->has_pos_embed && (r->image_size / 16) * (r->image_size / 16) == grid_tokens)
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

/* Reads `path` whole (at most 1 MiB); *text = NULL with VT_OK if absent. */
static vt_status read_small_file(const char *path, char **text, size_t *size, vt_error *err) {
    *text = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? VT_OK : vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    enum { LIMIT = 1 << 20 };
    char *buf = malloc(LIMIT + 1);
    size_t n = buf ? fread(buf, 1, LIMIT + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (!buf) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
    if (failed || n > LIMIT) {
        free(buf);
        return vt_fail(err, failed ? VT_ERR_IO : VT_ERR_FORMAT, failed ? "error reading %s" : "%s: larger than 1 MiB",
                       path);
    }
    *text = buf;
    *size = n;
    return VT_OK;
}

static vt_status check_preprocessor_beside(const char *ckpt_path, const vt_model_config *cfg, vt_notes *notes,
                                           vt_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%.*spreprocessor_config.json", (int)dir_length(ckpt_path), ckpt_path);
    char *text;
    size_t size;
    vt_status st = read_small_file(path, &text, &size, err);
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
        st = config_from_shapes(&ix, out, err);
        if (!st)
            vt_note(notes, "no open_clip_config.json or config.json beside %s: %s inferred from the tensor shapes",
                    checkpoint_path, out->name);
    }
    key_index_free(&ix);
    if (!st) st = check_preprocessor_beside(checkpoint_path, out, notes, err);
    return st;
}
