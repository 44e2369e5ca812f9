/* The architectures by name for library callers (include/vitamin.h): the
 * config table's names and, per name, the numbers a loaded model reports. */
#include <string.h>

#include "vitamin.h"
#include "core/error.h"
#include "model/config.h"

int vt_model_count(void) { return vt_config_count(); }

const char *vt_model_name(int index) {
    const vt_model_config *c = vt_config_at(index);
    return c ? c->name : NULL;
}

vt_status vt_model_describe(const char *name, vt_model_info *info, vt_error *err) {
    if (!name || !info) return vt_fail(err, VT_ERR_ARGUMENT, "vt_model_describe: NULL argument");
    /* info->name points into the config table for a table entry (valid for
     * the process); a custom name's copy is per thread, valid until this
     * thread's next call. */
    static _Thread_local vt_model_config custom;
    vt_model_config c;
    vt_status st = vt_config_lookup(name, &c, err);
    if (st) return st;
    const char *stable = NULL;
    for (int i = 0; i < vt_config_count() && !stable; i++)
        if (!strcmp(vt_config_at(i)->name, c.name)) stable = vt_config_at(i)->name;
    if (!stable) {
        custom = c;
        stable = custom.name;
    }
    memset(info, 0, sizeof *info);
    info->name = stable;
    info->image_size = c.image_size;
    info->embed_dim = c.embed_dim;
    info->has_text = 1;
    info->context_length = c.context_length;
    info->token_grid = vt_config_token_grid(&c);
    info->width = c.width;
    info->image_params = vt_config_image_params(&c);
    info->text_params = vt_config_text_params(&c);
    info->notes = "";
    info->depth = c.depth;
    info->patch_stride = vt_config_token_stride(&c);
    return VT_OK;
}
