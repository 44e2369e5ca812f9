/* Both towers together: creation, frozen tensors, forward, backward. */
#include "train/clip_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

train_tensor clip_trainer_tensor(const clip_trainer *tr, schema_kind kind, int i, int j) {
    int k = train_params_index(tr->params, kind, i, j);
    if (k < 0) { /* a tower asking for a tensor its own schema does not have: a bug, not an input error */
        char name[160];
        schema_name(kind, i, j, name, sizeof name);
        fprintf(stderr, "vitamin: internal error: %s has no tensor %s\n", tr->params->cfg.name, name);
        abort();
    }
    train_tensor t = {tr->params->values + tr->params->params[k].offset, NULL};
    if (!tr->frozen[k]) t.grad = tr->params->grads + tr->params->params[k].offset;
    return t;
}

static int tower(const clip_trainer *tr) { return tr->params->cfg.image_tower; }

static vt_status create_towers(clip_trainer *tr, vt_error *err) {
    vt_status st = tower(tr) == VT_TOWER_VIT        ? vit_train_create(tr, err)
                   : tower(tr) == VT_TOWER_CONVNEXT ? convnext_train_create(tr, err)
                                                    : image_train_create(tr, err);
    if (!st) st = text_train_create(tr, err);
    return st;
}

static void free_towers(clip_trainer *tr) {
    image_train_free(tr->image);
    vit_train_free(tr->vit);
    convnext_train_free(tr->convnext);
    text_train_free(tr->text);
    tr->image = NULL;
    tr->vit = NULL;
    tr->convnext = NULL;
    tr->text = NULL;
}

vt_status clip_train_supports(const vt_model_config *cfg, vt_error *err) {
    if (cfg->image_tower != VT_TOWER_VITAMIN && cfg->image_tower != VT_TOWER_VIT &&
        cfg->image_tower != VT_TOWER_CONVNEXT)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: no training tower for this image tower", cfg->name);
    if (cfg->text_width <= 0)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s has no text tower; CLIP training needs both towers", cfg->name);
    return VT_OK;
}

vt_status clip_trainer_create(train_params *params, const clip_train_options *options, clip_trainer **out,
                              vt_error *err) {
    *out = NULL;
    if (options->batch < 1) return vt_fail(err, VT_ERR_ARGUMENT, "training batch must be at least 1");
    vt_status supported = clip_train_supports(&params->cfg, err);
    if (supported) return supported;
    clip_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    tr->params = params;
    tr->options = *options;
    tr->frozen = calloc((size_t)params->count, 1);
    vt_status st = tr->frozen ? create_towers(tr, err) : vt_fail(err, VT_ERR_NOMEM, "out of memory");
    if (st) {
        clip_trainer_free(tr);
        return st;
    }
    *out = tr;
    return VT_OK;
}

void clip_trainer_free(clip_trainer *tr) {
    if (!tr) return;
    free_towers(tr);
    free(tr->frozen);
    free(tr);
}

vt_status clip_trainer_update_frozen(clip_trainer *tr, vt_error *err) {
    /* The towers resolve gradient pointers (NULL when frozen) once, at creation. */
    free_towers(tr);
    return create_towers(tr, err);
}

void clip_train_forward(clip_trainer *tr, const float *pixels, const int32_t *tokens, int n, uint64_t drop_key,
                        int64_t first_sample, float *image_features, float *text_features) {
    if (tower(tr) == VT_TOWER_VIT) vit_train_forward(tr, pixels, n, drop_key, first_sample, image_features);
    else if (tower(tr) == VT_TOWER_CONVNEXT) convnext_train_forward(tr, pixels, n, drop_key, first_sample, image_features);
    else image_train_forward(tr, pixels, n, drop_key, first_sample, image_features);
    text_train_forward(tr, tokens, n, text_features);
}

void clip_train_image_backward(clip_trainer *tr, const float *d_image_features) {
    if (tower(tr) == VT_TOWER_VIT) vit_train_backward(tr, d_image_features);
    else if (tower(tr) == VT_TOWER_CONVNEXT) convnext_train_backward(tr, d_image_features);
    else image_train_backward(tr, d_image_features);
}

void clip_train_backward(clip_trainer *tr, const float *d_image_features, const float *d_text_features) {
    clip_train_image_backward(tr, d_image_features);
    text_train_backward(tr, d_text_features);
}
