/* The parameter table of a ViTamin CLIP model in open_clip state_dict order
 * (vitamin-spec Appendix A), its initialisation (spec §6.1) and loading. */
#include "train/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "model/weights.h"
#include "train/rng.h"

enum { TABLE_GROW = 64 };

typedef struct {
    train_params *p;
    int capacity;
    int failed;
} table_builder;

static void add(table_builder *b, int tower, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* open_clip_train/main.py: exclude = ndim < 2 or "bn"/"ln"/"bias"/"logit_scale"
 * in the name; everything else is decayed — including the token and positional
 * embeddings, pos_embed and text_projection (ndim >= 2). */
static int open_clip_decays(const char *name, int ndim) {
    return !(ndim < 2 || strstr(name, "bn") || strstr(name, "ln") || strstr(name, "bias") ||
             strstr(name, "logit_scale"));
}

static void add(table_builder *b, int tower, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (b->failed) return;
    train_params *p = b->p;
    if (p->count == b->capacity) {
        int cap = b->capacity + TABLE_GROW;
        train_param *grown = realloc(p->params, (size_t)cap * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return;
        }
        p->params = grown;
        b->capacity = cap;
    }
    train_param *t = &p->params[p->count++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->count *= (size_t)shape[i];
    }
    t->offset = p->total;
    /* Every tensor starts on a 64-byte boundary: vector loops and GEMM packing
     * read whole cache lines. */
    p->total += (t->count + 15) & ~(size_t)15;
    t->decay = open_clip_decays(t->name, ndim);
    t->tower = tower;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define ADD(tower, shape, ...) add(&b, tower, NDIM shape, S shape, __VA_ARGS__)

static void build_table(table_builder *bp, const vt_model_config *c) {
    table_builder b = *bp;
    const char *bb = "visual.trunk.patch_embed.backbone";
    int n = (c->image_size / 16) * (c->image_size / 16), d = c->width, h = c->mlp_hidden, c0 = c->stem_width;
    add(&b, TRAIN_TOWER_SHARED, 0, NULL, "logit_scale");
    if (c->has_pos_embed) ADD(TRAIN_TOWER_IMAGE, (1, n, d), "visual.trunk.pos_embed");
    ADD(TRAIN_TOWER_IMAGE, (c0, 3, 3, 3), "%s.stem.conv1.weight", bb);
    ADD(TRAIN_TOWER_IMAGE, (c0), "%s.stem.conv1.bias", bb);
    ADD(TRAIN_TOWER_IMAGE, (c0), "%s.stem.norm1.weight", bb);
    ADD(TRAIN_TOWER_IMAGE, (c0), "%s.stem.norm1.bias", bb);
    ADD(TRAIN_TOWER_IMAGE, (c0, c0, 3, 3), "%s.stem.conv2.weight", bb);
    ADD(TRAIN_TOWER_IMAGE, (c0), "%s.stem.conv2.bias", bb);
    int cin = c0;
    for (int s = 0; s < 2; s++) {
        int cout = c->stage_widths[s], mid = 4 * cout;
        for (int i = 0; i < c->stage_depths[s]; i++) {
            const char *pre = bb;
            if (i == 0 && cin != cout) {
                ADD(TRAIN_TOWER_IMAGE, (cout, cin, 1, 1), "%s.stages.%d.%d.shortcut.expand.weight", pre, s, i);
                ADD(TRAIN_TOWER_IMAGE, (cout), "%s.stages.%d.%d.shortcut.expand.bias", pre, s, i);
            }
            ADD(TRAIN_TOWER_IMAGE, (cin), "%s.stages.%d.%d.pre_norm.weight", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (cin), "%s.stages.%d.%d.pre_norm.bias", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (mid, cin, 1, 1), "%s.stages.%d.%d.conv1_1x1.weight", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (mid), "%s.stages.%d.%d.conv1_1x1.bias", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (mid, 1, 3, 3), "%s.stages.%d.%d.conv2_kxk.weight", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (mid), "%s.stages.%d.%d.conv2_kxk.bias", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (cout, mid, 1, 1), "%s.stages.%d.%d.conv3_1x1.weight", pre, s, i);
            ADD(TRAIN_TOWER_IMAGE, (cout), "%s.stages.%d.%d.conv3_1x1.bias", pre, s, i);
            cin = cout;
        }
    }
    /* state_dict order puts pool.proj before pool.norm (registration order),
     * although the norm runs first. */
    ADD(TRAIN_TOWER_IMAGE, (d, cin, 3, 3), "%s.pool.proj.weight", bb);
    ADD(TRAIN_TOWER_IMAGE, (d), "%s.pool.proj.bias", bb);
    ADD(TRAIN_TOWER_IMAGE, (cin), "%s.pool.norm.weight", bb);
    ADD(TRAIN_TOWER_IMAGE, (cin), "%s.pool.norm.bias", bb);
    for (int i = 0; i < c->depth; i++) {
        const char *pre = "visual.trunk.blocks";
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.norm1.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.norm1.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (3 * d, d), "%s.%d.attn.qkv.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (3 * d), "%s.%d.attn.qkv.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d, d), "%s.%d.attn.proj.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.attn.proj.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.norm2.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.norm2.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.mlp.norm.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.mlp.norm.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (h, d), "%s.%d.mlp.w0.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (h), "%s.%d.mlp.w0.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (h, d), "%s.%d.mlp.w1.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (h), "%s.%d.mlp.w1.bias", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d, h), "%s.%d.mlp.w2.weight", pre, i);
        ADD(TRAIN_TOWER_IMAGE, (d), "%s.%d.mlp.w2.bias", pre, i);
    }
    ADD(TRAIN_TOWER_IMAGE, (d), "visual.trunk.fc_norm.weight");
    ADD(TRAIN_TOWER_IMAGE, (d), "visual.trunk.fc_norm.bias");
    ADD(TRAIN_TOWER_IMAGE, (c->embed_dim, d), "visual.head.proj.weight");

    int w = c->text_width;
    ADD(TRAIN_TOWER_TEXT, (c->context_length, w), "text.positional_embedding");
    ADD(TRAIN_TOWER_TEXT, (w, c->embed_dim), "text.text_projection");
    ADD(TRAIN_TOWER_TEXT, (c->vocab_size, w), "text.token_embedding.weight");
    for (int i = 0; i < c->text_layers; i++) {
        const char *pre = "text.transformer.resblocks";
        ADD(TRAIN_TOWER_TEXT, (w), "%s.%d.ln_1.weight", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w), "%s.%d.ln_1.bias", pre, i);
        ADD(TRAIN_TOWER_TEXT, (3 * w, w), "%s.%d.attn.in_proj_weight", pre, i);
        ADD(TRAIN_TOWER_TEXT, (3 * w), "%s.%d.attn.in_proj_bias", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w, w), "%s.%d.attn.out_proj.weight", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w), "%s.%d.attn.out_proj.bias", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w), "%s.%d.ln_2.weight", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w), "%s.%d.ln_2.bias", pre, i);
        ADD(TRAIN_TOWER_TEXT, (4 * w, w), "%s.%d.mlp.c_fc.weight", pre, i);
        ADD(TRAIN_TOWER_TEXT, (4 * w), "%s.%d.mlp.c_fc.bias", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w, 4 * w), "%s.%d.mlp.c_proj.weight", pre, i);
        ADD(TRAIN_TOWER_TEXT, (w), "%s.%d.mlp.c_proj.bias", pre, i);
    }
    ADD(TRAIN_TOWER_TEXT, (w), "text.ln_final.weight");
    ADD(TRAIN_TOWER_TEXT, (w), "text.ln_final.bias");
    *bp = b;
}

vt_status train_params_create(const vt_model_config *cfg, train_params *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    out->cfg = *cfg;
    table_builder b = {out, 0, 0};
    build_table(&b, cfg);
    if (!b.failed) {
        size_t bytes = (out->total * sizeof(float) + 63) & ~(size_t)63;
        out->values = aligned_alloc(64, bytes ? bytes : 64);
        out->grads = aligned_alloc(64, bytes ? bytes : 64);
        if (out->values && out->grads) {
            memset(out->values, 0, bytes);
            memset(out->grads, 0, bytes);
            return VT_OK;
        }
    }
    train_params_free(out);
    return vt_fail(err, VT_ERR_NOMEM, "out of memory for the parameters of %s", cfg->name);
}

void train_params_free(train_params *p) {
    free(p->params);
    free(p->values);
    free(p->grads);
    memset(p, 0, sizeof *p);
}

int train_params_find(const train_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (!strcmp(p->params[i].name, name)) return i;
    return -1;
}

float *train_param_values(const train_params *p, const char *name) {
    int i = train_params_find(p, name);
    return i < 0 ? NULL : p->values + p->params[i].offset;
}

float *train_param_grads(const train_params *p, const char *name) {
    int i = train_params_find(p, name);
    return i < 0 ? NULL : p->grads + p->params[i].offset;
}

/* ---- Initialisation (vitamin-spec §6.1) ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static void fill_normal(float *x, size_t n, double std, uint64_t key) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(key, i));
}

static void fill_uniform(float *x, size_t n, double bound, uint64_t key) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(bound * (2.0 * rng_uniform(key, i) - 1.0));
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

void train_params_init(train_params *p, uint64_t seed) {
    const vt_model_config *c = &p->cfg;
    double w = c->text_width, layers = c->text_layers;
    for (int i = 0; i < p->count; i++) {
        const train_param *t = &p->params[i];
        float *x = p->values + t->offset;
        const char *name = t->name;
        /* One independent stream per tensor: init does not depend on table order. */
        uint64_t key = rng_key(seed, 0x696e6974ULL /* "init" */, (uint64_t)i);
        size_t fan_in = t->ndim >= 2 ? t->count / (size_t)t->shape[0] : 1;
        if (!strcmp(name, "logit_scale")) {
            x[0] = (float)log(1.0 / 0.07);
        } else if (strstr(name, "norm") || strstr(name, ".ln_")) {
            fill_const(x, t->count, ends_with(name, ".weight") ? 1.0f : 0.0f);
        } else if (!strncmp(name, "visual.", 7)) {
            if (strstr(name, "pool.proj.")) {
                /* Left at PyTorch's Conv2d default: U(±1/sqrt(fan_in)) for weight and bias. */
                int wi = train_params_find(p, "visual.trunk.patch_embed.backbone.pool.proj.weight");
                size_t proj_fan_in = p->params[wi].count / (size_t)p->params[wi].shape[0];
                fill_uniform(x, t->count, 1.0 / sqrt((double)proj_fan_in), key);
            } else if (ends_with(name, "head.proj.weight")) {
                fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in), key);
            } else if (ends_with(name, ".bias")) {
                fill_const(x, t->count, 0.0f);
            } else if (t->ndim == 4) {
                /* timm _init_conv: N(0, sqrt(2 / fan_out)), fan_out = kh·kw·out / groups. */
                int depthwise = t->shape[1] == 1 && t->shape[2] == 3;
                double fan_out = (double)t->shape[2] * (double)t->shape[3] * (double)(depthwise ? 1 : t->shape[0]);
                fill_normal(x, t->count, sqrt(2.0 / fan_out), key);
            } else {
                /* Trunk Linear layers and pos_embed: trunc_normal(std 0.02, cut at ±2 = untruncated). */
                fill_normal(x, t->count, 0.02, key);
            }
        } else {
            double attn_std = pow(w, -0.5), proj_std = pow(w, -0.5) * pow(2.0 * layers, -0.5);
            if (ends_with(name, "token_embedding.weight")) fill_normal(x, t->count, 0.02, key);
            else if (ends_with(name, "positional_embedding")) fill_normal(x, t->count, 0.01, key);
            else if (ends_with(name, "text_projection")) fill_normal(x, t->count, attn_std, key);
            else if (ends_with(name, "in_proj_weight")) fill_normal(x, t->count, attn_std, key);
            else if (ends_with(name, "out_proj.weight") || ends_with(name, "c_proj.weight"))
                fill_normal(x, t->count, proj_std, key);
            else if (ends_with(name, "c_fc.weight")) fill_normal(x, t->count, pow(2.0 * w, -0.5), key);
            else if (ends_with(name, "in_proj_bias") || ends_with(name, "out_proj.bias"))
                fill_const(x, t->count, 0.0f);
            else if (ends_with(name, "c_fc.bias") || ends_with(name, "c_proj.bias")) {
                /* nn.Linear default bias: U(±1/sqrt(fan_in)) of its weight. */
                const train_param *wt = t - 1;
                fill_uniform(x, t->count, 1.0 / sqrt((double)(wt->count / (size_t)wt->shape[0])), key);
            }
        }
    }
}

/* ---- Loading from a checkpoint file ---- */

vt_status train_params_load_checkpoint(train_params *p, const char *path, vt_error *err) {
    ckpt_file *f = NULL;
    vt_status st = ckpt_open(path, &f, err);
    if (st) return st;
    char *seen = calloc((size_t)p->count, 1);
    if (!seen) {
        ckpt_close(f);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    /* Plain OpenAI-CLIP text keys ("token_embedding.weight" without "text.")
     * are recognised the way the inference loader recognises them. */
    int plain_clip = ckpt_find(f, "token_embedding.weight") || ckpt_find(f, "module.token_embedding.weight");
    for (size_t i = 0; i < ckpt_count(f) && !st; i++) {
        const ckpt_tensor *t = ckpt_at(f, i);
        char name[256];
        weights_normalize_key(t->name, plain_clip, 0, name, sizeof name);
        if (!strncmp(name, "text.attn_mask", 14)) continue; /* a buffer, not a parameter */
        int k = train_params_find(p, name);
        if (k < 0) {
            st = vt_fail(err, VT_ERR_SHAPE, "%s: unexpected tensor '%s' for %s (is this checkpoint another model? "
                         "pick the architecture with --model-name)", path, t->name, p->cfg.name);
            break;
        }
        const train_param *q = &p->params[k];
        int same = t->ndim == q->ndim;
        for (int d = 0; same && d < q->ndim; d++) same = t->shape[d] == q->shape[d];
        if (!same) {
            st = vt_fail(err, VT_ERR_SHAPE, "%s: tensor '%s' has a different shape than %s expects", path, t->name,
                         p->cfg.name);
            break;
        }
        if (t->dtype != VT_DTYPE_F32 && t->dtype != VT_DTYPE_F16 && t->dtype != VT_DTYPE_BF16 &&
            t->dtype != VT_DTYPE_F64) {
            st = vt_fail(err, VT_ERR_DTYPE, "%s: tensor '%s' has dtype %s; expected a floating-point type", path,
                         t->name, vt_dtype_name(t->dtype));
            break;
        }
        float *x = p->values + q->offset;
        for (int64_t e = 0; e < t->numel; e++) {
            x[e] = ckpt_element_f32(t, e);
            if (!isfinite(x[e])) {
                st = vt_fail(err, VT_ERR_VALUE, "%s: tensor '%s' holds a non-finite value at index %lld", path,
                             t->name, (long long)e);
                break;
            }
        }
        seen[k] = 1;
    }
    for (int k = 0; k < p->count && !st; k++)
        if (!seen[k])
            st = vt_fail(err, VT_ERR_SHAPE, "%s: tensor '%s' is missing (is this a %s checkpoint?)", path,
                         p->params[k].name, p->cfg.name);
    free(seen);
    ckpt_close(f);
    return st;
}

/* ---- The inference engine over the current weights ---- */

vt_status train_params_build_model(const train_params *p, struct vt_model **out, vt_error *err) {
    ckpt_tensor *t = calloc((size_t)p->count, sizeof *t);
    if (!t) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->count; i++) {
        const train_param *q = &p->params[i];
        t[i].name = (char *)q->name;
        t[i].dtype = VT_DTYPE_F32;
        t[i].ndim = q->ndim;
        t[i].numel = (int64_t)q->count;
        for (int d = 0; d < q->ndim; d++) t[i].shape[d] = q->shape[d];
        t[i].data = p->values + q->offset;
    }
    ckpt_file *f = NULL;
    vt_status st = ckpt_from_tensors("<training weights>", t, (size_t)p->count, &f, err);
    free(t);
    if (st) return st;
    return model_load_from_checkpoint(f, &p->cfg, out, err);
}
