/* A checkpoint indexed under open_clip names (see checkpoint_keys.h; the
 * layouts themselves are model/schema.c's). */
#include "model/checkpoint_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/hf_clip.h"
#include "model/schema.h"

vt_status model_checkpoint_open(const char *path, ckpt_file **out, vt_error *err) {
    vt_status st = ckpt_open(path, out, err);
    if (!st && hf_clip_is_layout(*out)) st = hf_clip_translate(*out, err);
    if (st) {
        ckpt_close(*out);
        *out = NULL;
    }
    return st;
}

static void detect_layout(const ckpt_file *ckpt, int *plain_clip, int *timm_only) {
    *plain_clip = *timm_only = 0;
    for (size_t i = 0; i < ckpt_count(ckpt); i++) schema_detect_layout(ckpt_at(ckpt, i)->name, plain_clip, timm_only);
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
        schema_normalize_key(ix->tensors[i]->name, plain, timm_only, buf, sizeof buf);
        ix->names[i] = strdup(buf);
        if (!ix->names[i]) return vt_fail(err, VT_ERR_NOMEM, "out of memory indexing checkpoint");
        ix->used[i] = (unsigned char)schema_is_buffer(buf); /* buffers count as read: strict loading skips them */
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

