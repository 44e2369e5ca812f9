/* vitamin info: the family table, or what a checkpoint holds. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "model/config.h"

static const char INFO_HELP[] =
    "usage: vitamin info [-m MODEL] [--model-name NAME]\n"
    "\n"
    "Without -m: every registered model (the ViTamin family, then open_clip's ViT\n"
    "CLIP configs that use the CLIP tokenizer; their trunk column is ViT/<patch>)\n"
    "with its parameter counts (as open_clip counts them) and forward\n"
    "GFLOPs (2 per multiply-add).\n"
    "With -m: loads the checkpoint (checking every tensor) and describes it.\n"
    "With --model-name only: the row of that model (custom sizes too:\n"
    "ViTamin-C<width>-N<depth>[-<image size>]).\n";

static void print_header(void) {
    printf("%-22s %-19s %5s %5s %6s %4s %5s %10s %4s %14s %14s %10s %9s\n", "model", "timm trunk", "image", "embed",
           "width", "depth", "heads", "text W/L", "", "image params", "text params", "GFLOP/img", "GFLOP/txt");
}

static void print_row(const vt_model_config *c) {
    char text[32], trunk[64];
    snprintf(text, sizeof text, "%d/%d", c->text_width, c->text_layers);
    if (c->image_tower == VT_TOWER_VIT)
        snprintf(trunk, sizeof trunk, "ViT/%d", c->patch_size); /* patch size */
    else
        snprintf(trunk, sizeof trunk, "%s", c->timm_name[0] ? c->timm_name : "-");
    int depth = c->depth; /* ConvNeXt: its blocks over the four stages */
    if (c->image_tower == VT_TOWER_CONVNEXT)
        depth = c->cnx_depths[0] + c->cnx_depths[1] + c->cnx_depths[2] + c->cnx_depths[3];
    printf("%-22s %-19s %5d %5d %6d %5d %5d %10s %4s %14lld %14lld %10.2f %9.2f\n", c->name, trunk, c->image_size, c->embed_dim, c->width, depth, c->heads, text, "",
           (long long)vt_config_image_params(c), (long long)vt_config_text_params(c),
           vt_config_image_flops(c, c->image_size) / 1e9, vt_config_text_flops(c) / 1e9);
}

int cmd_info(int argc, char **argv) {
    cli_model_options mo = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", INFO_HELP, CLI_MODEL_OPTIONS_HELP);
            return CLI_OK;
        } else if (!cli_model_option(argc, argv, &i, &mo)) {
            cli_errorf("info", "unknown option '%s' (see 'vitamin info --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!mo.model_path && mo.model_name) {
        vt_model_config c;
        vt_error err = {0};
        if (vt_config_lookup(mo.model_name, &c, &err)) { cli_error("info", &err); return CLI_FAIL; }
        print_header();
        print_row(&c);
        return CLI_OK;
    }
    if (!mo.model_path) {
        print_header();
        for (int i = 0; i < vt_config_count(); i++) print_row(vt_config_at(i));
        printf("\nNote: ViTamin-XL-384 runs at 384 px as the authors and the HF config.json specify;\n"
               "open_clip's ViTamin-XL-384.json says image_size 256 (its preprocessing then feeds 256 px).\n");
        return CLI_OK;
    }
    vt_model *model = cli_load_model("info", &mo);
    if (!model) return CLI_FAIL;
    vt_model_info info;
    vt_model_get_info(model, &info);
    printf("model:        %s\nimage size:   %d (%dx%d tokens of width %d)\nembed dim:    %d\n", info.name,
           info.image_size, info.token_grid, info.token_grid, info.width, info.embed_dim);
    printf("text tower:   %s (context %d)\nlogit scale:  %.4f\n", info.has_text ? "yes" : "no (image-only)",
           info.context_length, info.logit_scale);
    printf("parameters:   image %lld, text %lld\n", info.image_params, info.text_params);
    vt_model_free(model);
    return CLI_OK;
}
