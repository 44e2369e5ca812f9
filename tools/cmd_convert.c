/* vitamin convert: any supported checkpoint → open_clip-named safetensors
 * (optionally fp16/bf16) plus open_clip_config.json beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/float16.h"
#include "io/checkpoint/checkpoint.h"
#include "model/config_json.h"
#include "model/schema.h"
#include "model/weights.h"

static const char CONVERT_HELP[] =
    "usage: vitamin convert -m MODEL -o OUT.safetensors [--dtype f32|f16|bf16]\n"
    "\n"
    "Checks the checkpoint against its model (every tensor, as 'vitamin info -m'),\n"
    "then writes it as safetensors under open_clip's state-dict names (text.*,\n"
    "no module. prefix) and writes open_clip_config.json in the same directory.\n"
    "\n"
    "  -o, --output PATH      output .safetensors (written atomically)\n"
    "      --dtype T          f32 (default), f16 or bf16 (round to nearest even)\n";

int cmd_convert(int argc, char **argv) {
    cli_model_options mo = {0};
    const char *output = NULL, *dtype_name = "f32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", CONVERT_HELP, CLI_MODEL_OPTIONS_HELP);
            return CLI_OK;
        } else if (cli_model_option(argc, argv, &i, &mo) || cli_option(argc, argv, &i, "--output", "-o", &output) ||
                   cli_option(argc, argv, &i, "--dtype", NULL, &dtype_name)) {
        } else {
            cli_errorf("convert", "unknown option '%s' (see 'vitamin convert --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    vt_dtype dtype;
    if (!strcmp(dtype_name, "f32") || !strcmp(dtype_name, "fp32") || !strcmp(dtype_name, "float32")) dtype = VT_DTYPE_F32;
    else if (!strcmp(dtype_name, "f16") || !strcmp(dtype_name, "fp16") || !strcmp(dtype_name, "float16")) dtype = VT_DTYPE_F16;
    else if (!strcmp(dtype_name, "bf16") || !strcmp(dtype_name, "bfloat16")) dtype = VT_DTYPE_BF16;
    else { cli_errorf("convert", "--dtype '%s': expected f32, f16 or bf16", dtype_name); return CLI_USAGE; }
    if (!output) { cli_errorf("convert", "missing -o OUT.safetensors"); return CLI_USAGE; }

    vt_model *model = cli_load_model("convert", &mo); /* validates every tensor */
    if (!model) return CLI_FAIL;
    key_index ix = {0};
    vt_error err = {0};
    if (key_index_build(model->checkpoint, &ix, &err)) {
        cli_error("convert", &err);
        key_index_free(&ix);
        vt_model_free(model);
        return CLI_FAIL;
    }
    ckpt_tensor *out = calloc(ix.count ? ix.count : 1, sizeof *out);
    size_t n = 0;
    int rc = CLI_FAIL;
    size_t elem = vt_dtype_size(dtype);
    char logit_scale[32];
    schema_name(T_LOGIT_SCALE, -1, -1, logit_scale, sizeof logit_scale);
    for (size_t i = 0; out && i < ix.count; i++) {
        const ckpt_tensor *t = ix.tensors[i];
        if (schema_is_buffer(ix.names[i])) continue; /* not a parameter; open_clip rebuilds it */
        ckpt_tensor *o = &out[n++];
        *o = *t;
        char saved[512];
        schema_saved_name(&model->cfg, ix.names[i], saved, sizeof saved);
        o->name = strdup(saved);
        o->dtype = dtype;
        if (!strcmp(ix.names[i], logit_scale)) o->ndim = 0; /* open_clip stores it 0-d */
        void *buf = malloc(t->numel * elem + 1);
        o->data = buf;
        if (!buf || !o->name) { cli_errorf("convert", "out of memory"); goto done; }
        for (int64_t j = 0; j < t->numel; j++) {
            float v = ckpt_element_f32(t, j);
            if (dtype == VT_DTYPE_F32) memcpy((char *)buf + 4 * j, &v, 4);
            else {
                uint16_t h = dtype == VT_DTYPE_BF16 ? vt_f32_to_bf16(v) : vt_f32_to_f16(v);
                memcpy((char *)buf + 2 * j, &h, 2);
            }
        }
    }
    const char *meta[] = {"format", "pt", "converted_by", "vitamin.c", NULL};
    if (safetensors_write(output, out, n, meta, &err)) { cli_error("convert", &err); goto done; }
    char config_path[4096];
    const char *slash = strrchr(output, '/');
    snprintf(config_path, sizeof config_path, "%.*sopen_clip_config.json", slash ? (int)(slash - output + 1) : 0, output);
    if (config_write_open_clip_json(config_path, &model->cfg, &err)) { cli_error("convert", &err); goto done; }
    fprintf(stderr, "convert: wrote %zu tensors (%s) of %s to %s\n", n, dtype_name, model->cfg.name, output);
    rc = CLI_OK;
done:
    for (size_t i = 0; out && i < n; i++) { free(out[i].name); free((void *)out[i].data); }
    free(out);
    key_index_free(&ix);
    vt_model_free(model);
    return rc;
}
