/* Checkpoint key layouts -> open_clip names (see checkpoint_keys.h). */
#include "model/checkpoint_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char *const PLAIN_CLIP_TEXT_KEYS[] = {"token_embedding.", "positional_embedding", "transformer.",
                                                   "ln_final.", "text_projection"};

void weights_normalize_key(const char *key, int plain_clip_layout, int timm_image_only, char *out,
                           size_t out_size) {
    while (!strncmp(key, "module.", 7)) key += 7; /* DDP wrapper */
    if (timm_image_only) {
        if (!strcmp(key, "head.weight")) { snprintf(out, out_size, "visual.head.proj.weight"); return; }
        if (!strcmp(key, "head.bias")) { snprintf(out, out_size, "visual.head.proj.bias"); return; }
        snprintf(out, out_size, "visual.trunk.%s", key);
        return;
    }
    if (plain_clip_layout) {
        for (size_t i = 0; i < sizeof PLAIN_CLIP_TEXT_KEYS / sizeof *PLAIN_CLIP_TEXT_KEYS; i++) {
            if (!strncmp(key, PLAIN_CLIP_TEXT_KEYS[i], strlen(PLAIN_CLIP_TEXT_KEYS[i]))) {
                snprintf(out, out_size, "text.%s", key);
                return;
            }
        }
    }
    snprintf(out, out_size, "%s", key);
}

static const char *strip_module(const char *k) {
    while (!strncmp(k, "module.", 7)) k += 7;
    return k;
}

static void detect_layout(const ckpt_file *ckpt, int *plain_clip, int *timm_only) {
    *plain_clip = *timm_only = 0;
    for (size_t i = 0; i < ckpt_count(ckpt); i++) {
        const char *k = strip_module(ckpt_at(ckpt, i)->name);
        if (!strcmp(k, "positional_embedding")) *plain_clip = 1;
        if (!strcmp(k, "patch_embed.backbone.stem.conv1.weight")) *timm_only = 1;
    }
}

vt_status key_index_build(const ckpt_file *ckpt, key_index *ix, vt_error *err) {
    int plain, timm_only;
    detect_layout(ckpt, &plain, &timm_only);
    ix->count = ckpt_count(ckpt);
    ix->names = calloc(ix->count ? ix->count : 1, sizeof *ix->names);
    ix->tensors = calloc(ix->count ? ix->count : 1, sizeof *ix->tensors);
    ix->used = calloc(ix->count ? ix->count : 1, 1);
    if (!ix->names || !ix->tensors || !ix->used) return vt_fail(err, VT_ERR_NOMEM, "out of memory indexing checkpoint");
    for (size_t i = 0; i < ix->count; i++) {
        char buf[512];
        ix->tensors[i] = ckpt_at(ckpt, i);
        weights_normalize_key(ix->tensors[i]->name, plain, timm_only, buf, sizeof buf);
        ix->names[i] = strdup(buf);
        if (!ix->names[i]) return vt_fail(err, VT_ERR_NOMEM, "out of memory indexing checkpoint");
    }
    return VT_OK;
}

void key_index_free(key_index *ix) {
    for (size_t i = 0; i < ix->count; i++) free(ix->names[i]);
    free(ix->names);
    free(ix->tensors);
    free(ix->used);
    memset(ix, 0, sizeof *ix);
}

const ckpt_tensor *key_index_find(const key_index *ix, const char *name, size_t *pos) {
    for (size_t i = 0; i < ix->count; i++)
        if (!strcmp(ix->names[i], name)) {
            if (pos) *pos = i;
            return ix->tensors[i];
        }
    return NULL;
}

