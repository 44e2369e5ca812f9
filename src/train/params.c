/* The parameter table of a CLIP model (ViTamin, ViT or ConvNeXt image tower): the schema (model/schema.h) in
 * one flat buffer, open_clip's initialisation by tensor kind, and loading. */
#include "train/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/checkpoint/checkpoint.h"
#include "model/model.h"
#include "model/checkpoint_keys.h"
#include "model/schema.h"
#include "train/rng.h"

/* The table is the schema's (model/schema.h), laid out in one flat buffer. */
static vt_status build_table(train_params *p, vt_error *err) {
    vt_status st = schema_build(&p->cfg, 1, 0, &p->schema, err);
    if (st) return st;
    p->count = p->schema.count;
    p->params = calloc((size_t)p->count, sizeof *p->params);
    if (!p->params) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the parameter table of %s", p->cfg.name);
    for (int i = 0; i < p->count; i++) {
        const schema_tensor *s = &p->schema.tensors[i];
        train_param *t = &p->params[i];
        snprintf(t->name, sizeof t->name, "%s", s->name);
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->count = s->count;
        t->offset = p->total;
        /* Every tensor starts on a 64-byte boundary: vector loops and GEMM packing
         * read whole cache lines. */
        p->total += (t->count + 15) & ~(size_t)15;
        t->decay = s->decay;
        t->tower = (int)s->tower;
    }
    return VT_OK;
}

vt_status train_params_create(const vt_model_config *cfg, train_params *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    out->cfg = *cfg;
    vt_status st = build_table(out, err);
    if (st) {
        train_params_free(out);
        return st;
    }
    size_t bytes = (out->total * sizeof(float) + 63) & ~(size_t)63;
    out->values = aligned_alloc(64, bytes ? bytes : 64);
    out->grads = aligned_alloc(64, bytes ? bytes : 64);
    if (out->values && out->grads) {
        memset(out->values, 0, bytes);
        memset(out->grads, 0, bytes);
        return VT_OK;
    }
    train_params_free(out);
    return vt_fail(err, VT_ERR_NOMEM, "out of memory for the parameters of %s", cfg->name);
}

void train_params_free(train_params *p) {
    schema_free(&p->schema);
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

/* ---- Initialisation (open_clip TextTransformer.init_parameters, timm init_weights_vit_timm / _init_conv) ---- */

static void fill_normal(float *x, size_t n, double std, uint64_t key) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(key, i));
}

static void fill_uniform(float *x, size_t n, double bound, uint64_t key) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(bound * (2.0 * rng_uniform(key, i) - 1.0));
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

/* fan_in of a weight: elements per output row. */
static size_t fan_in_of(const train_params *p, schema_kind kind, int i) {
    int k = schema_find(&p->schema, kind, i, -1);
    return k < 0 ? 1 : p->params[k].count / (size_t)p->params[k].shape[0];
}

/* open_clip VisionTransformer: no init_parameters of its own (transformer.py
 * says so), so the modules' PyTorch defaults, plus the three parameters it
 * draws as scale · randn with scale = width^-0.5. */
static void init_vit_tensor(const train_params *p, const schema_tensor *s, const train_param *t, float *x,
                            uint64_t key) {
    const vt_model_config *c = &p->cfg;
    double scale = pow((double)c->width, -0.5);
    size_t fan_in = t->ndim >= 2 ? t->count / (size_t)t->shape[0] : 1;
    switch (s->kind) {
    case T_VIT_CLASS_EMB:
    case T_VIT_POS:
    case T_VIT_PROJ: fill_normal(x, t->count, scale, key); break;
    case T_VIT_LS1:
    case T_VIT_LS2: fill_const(x, t->count, c->ls_init); break;
    case T_VIT_IN_PROJ_W: /* nn.MultiheadAttention: xavier_uniform_ over [3W, W] */
        fill_uniform(x, t->count, sqrt(6.0 / (double)(t->shape[0] + t->shape[1])), key);
        break;
    case T_VIT_IN_PROJ_B:
    case T_VIT_OUT_PROJ_B: fill_const(x, t->count, 0.0f); break; /* MultiheadAttention zeroes both */
    case T_VIT_FC_B: /* nn.Linear bias: U(±1/sqrt(fan_in)) of its weight */
        fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_VIT_FC_W, s->index[0])), key);
        break;
    case T_VIT_CPROJ_B:
        fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_VIT_CPROJ_W, s->index[0])), key);
        break;
    default: /* conv1, out_proj, c_fc, c_proj weights: kaiming_uniform(a = sqrt 5) = U(±1/sqrt(fan_in)) */
        fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in), key);
        break;
    }
}

/* timm convnext.py _init_weights: every trunk Conv2d and Linear weight
 * trunc_normal_(std 0.02) (cut at ±2, i.e. untruncated), biases 0; gamma =
 * ls_init_value (1e-6) · ones. open_clip's head Linear layers keep PyTorch's
 * default: weight and bias U(±1/sqrt(fan_in)). */
static void init_convnext_tensor(const train_params *p, const schema_tensor *s, const train_param *t, float *x,
                                 uint64_t key) {
    size_t fan_in = t->ndim >= 2 ? t->count / (size_t)t->shape[0] : 1;
    switch (s->kind) {
    case T_CNX_GAMMA: fill_const(x, t->count, 1e-6f); break;
    case T_HEAD_PROJ_W:
    case T_HEAD_MLP_FC1_W:
    case T_HEAD_MLP_FC2_W: fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in), key); break;
    case T_HEAD_PROJ_B:
        fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_HEAD_PROJ_W, -1)), key);
        break;
    case T_HEAD_MLP_FC1_B:
        fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_HEAD_MLP_FC1_W, -1)), key);
        break;
    case T_HEAD_MLP_FC2_B:
        fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_HEAD_MLP_FC2_W, -1)), key);
        break;
    default:
        if (s->role == ROLE_BIAS) fill_const(x, t->count, 0.0f);
        else fill_normal(x, t->count, 0.02, key);
        break;
    }
}

void train_params_init(train_params *p, uint64_t seed) {
    const vt_model_config *c = &p->cfg;
    double w = c->text_width, layers = c->text_layers;
    for (int i = 0; i < p->count; i++) {
        const train_param *t = &p->params[i];
        const schema_tensor *s = &p->schema.tensors[i];
        float *x = p->values + t->offset;
        /* One independent stream per tensor: init does not depend on table order. */
        uint64_t key = rng_key(seed, 0x696e6974ULL /* "init" */, (uint64_t)i);
        size_t fan_in = t->ndim >= 2 ? t->count / (size_t)t->shape[0] : 1;
        if (s->kind == T_LOGIT_SCALE) {
            x[0] = (float)log(1.0 / 0.07);
        } else if (s->role == ROLE_NORM_WEIGHT || s->role == ROLE_NORM_BIAS) {
            fill_const(x, t->count, s->role == ROLE_NORM_WEIGHT ? 1.0f : 0.0f);
        } else if (s->tower == SCHEMA_IMAGE && c->image_tower == VT_TOWER_VIT) {
            init_vit_tensor(p, s, t, x, key);
        } else if (s->tower == SCHEMA_IMAGE && c->image_tower == VT_TOWER_CONVNEXT) {
            init_convnext_tensor(p, s, t, x, key);
        } else if (s->tower == SCHEMA_IMAGE) {
            if (s->kind == T_POOL_PROJ_W || s->kind == T_POOL_PROJ_B) {
                /* Left at PyTorch's Conv2d default: U(±1/sqrt(fan_in)) for weight and bias. */
                fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_POOL_PROJ_W, -1)), key);
            } else if (s->kind == T_HEAD_PROJ_W) {
                fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in), key);
            } else if (s->role == ROLE_BIAS) {
                fill_const(x, t->count, 0.0f);
            } else if (t->ndim == 4) {
                /* timm _init_conv: N(0, sqrt(2 / fan_out)), fan_out = kh·kw·out / groups. */
                int depthwise = s->kind == T_MB_DW_W;
                double fan_out = (double)t->shape[2] * (double)t->shape[3] * (double)(depthwise ? 1 : t->shape[0]);
                fill_normal(x, t->count, sqrt(2.0 / fan_out), key);
            } else {
                /* Trunk Linear layers and pos_embed: trunc_normal(std 0.02, cut at ±2 = untruncated). */
                fill_normal(x, t->count, 0.02, key);
            }
        } else {
            /* open_clip transformer.py TextTransformer.init_parameters. */
            double attn_std = pow(w, -0.5), proj_std = pow(w, -0.5) * pow(2.0 * layers, -0.5);
            switch (s->kind) {
            case T_TXT_TOKEN: fill_normal(x, t->count, 0.02, key); break;
            case T_TXT_POS: fill_normal(x, t->count, 0.01, key); break;
            case T_TXT_PROJ:
            case T_TXT_IN_PROJ_W: fill_normal(x, t->count, attn_std, key); break;
            case T_TXT_OUT_PROJ_W:
            case T_TXT_CPROJ_W: fill_normal(x, t->count, proj_std, key); break;
            case T_TXT_FC_W: fill_normal(x, t->count, pow(2.0 * w, -0.5), key); break;
            case T_TXT_IN_PROJ_B:
            case T_TXT_OUT_PROJ_B: fill_const(x, t->count, 0.0f); break;
            case T_TXT_FC_B: /* nn.Linear default bias: U(±1/sqrt(fan_in)) of its weight. */
                fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_TXT_FC_W, s->index[0])), key);
                break;
            case T_TXT_CPROJ_B:
                fill_uniform(x, t->count, 1.0 / sqrt((double)fan_in_of(p, T_TXT_CPROJ_W, s->index[0])), key);
                break;
            default: break;
            }
        }
    }
}

/* ---- Loading from a checkpoint file ---- */

vt_status train_params_load_checkpoint(train_params *p, const char *path, vt_error *err) {
    ckpt_file *f = NULL;
    vt_status st = model_checkpoint_open(path, &f, err);
    if (st) return st;
    char *seen = calloc((size_t)p->count, 1);
    if (!seen) {
        ckpt_close(f);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    /* The same key layouts and buffers as the inference loader (model/checkpoint_keys.h). */
    key_index ix = {0};
    st = key_index_build(f, &ix, err);
    for (size_t i = 0; i < ix.count && !st; i++) {
        const ckpt_tensor *t = ix.tensors[i];
        const char *name = ix.names[i];
        if (schema_is_buffer(name)) continue; /* a buffer, not a parameter */
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
    key_index_free(&ix);
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
