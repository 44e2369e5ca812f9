/* vitamin embed: image and text embeddings into one .npy matrix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train/dist.h"
#include "commands.h"
#include "core/error.h"
#include "io/image/image.h"
#include "io/serial/npy.h"

static const char EMBED_HELP[] =
    "usage: vitamin embed -m MODEL [--image PATH]... [--text STRING]... -o OUT.npy\n"
    "\n"
    "Writes one float32 .npy matrix [images + texts, embed_dim], every row\n"
    "L2-normalised: images first in the order given, then texts.\n"
    "\n"
    "  -i, --image PATH       an image file (JPEG/PNG/WebP), a directory of them, or a glob\n"
    "      --images-from FILE one image path per line (\"-\" = stdin)\n"
    "      --text STRING      a text to embed (repeatable)\n"
    "      --texts-from FILE  one text per line\n"
    "  -o, --output OUT.npy   output file (written atomically)\n"
    "      --raw              do not L2-normalise (open_clip's encode_image/encode_text output)\n"
    "      --patch-features F also write the dense patch features of the images to F.npy:\n"
    "                         [images, grid*grid*width], the last transformer block's tokens\n"
    "                         (timm forward_features), token t = row * grid + column\n"
    "      --patch-norm       apply the tower's final per-token norm to them (a ViT's ln_post,\n"
    "                         open_clip forward_intermediates(normalize_intermediates=True));\n"
    "                         ViTamin has none per token (it pools first), so no change there\n"
    "      --layer N          --patch-features from transformer block N instead of the last\n"
    "                         (0-based; negative counts from the end: -2 is LLaVA's choice)\n"
    "      --dense-embeddings F  also write dense image-text embeddings to F.npy:\n"
    "                         [images, grid*grid*embed_dim], each patch token through the\n"
    "                         tower's head (fc_norm/ln_post + projection), L2-normalised\n"
    "                         unless --raw (FC-CLIP's clip_vis_dense, F-ViT)\n";

/* Per-image token rows, one image at a time (a row is grid²·width floats,
 * 0.6 MB for ViTamin-L at 384 px): a block's patch tokens (`dense` 0; a
 * ViT's class token dropped) or the dense embeddings (`dense` 1). */
static vt_status write_token_rows(const vt_model *model, const vt_model_info *info, const cli_list *images, int dense,
                                  int layer, int normed, const char *path, vt_error *err) {
    int ndim;
    int64_t shape[4];
    vt_status st = vt_image_layer_shape(model, layer, 1, &ndim, shape, err);
    if (st) return st;
    size_t s = (size_t)info->image_size, patches = (size_t)info->token_grid * info->token_grid;
    size_t prefix = (size_t)shape[1] - patches, row = patches * (dense ? info->embed_dim : info->width);
    float *pixels = malloc(3 * s * s * sizeof(float)), *all = malloc(images->count * row * sizeof(float));
    float *tokens = malloc((size_t)shape[1] * shape[2] * sizeof(float));
    st = pixels && all && tokens ? VT_OK : VT_ERR_NOMEM;
    if (st) vt_fail(err, st, "out of memory for %zu rows of %zu floats", images->count, row);
    for (size_t i = 0; i < images->count && !st; i++) {
        vt_image_source src = {.path = images->items[i]};
        st = vt_preprocess_image(&src, (int)s, pixels, err);
        if (st) break;
        if (dense) {
            st = vt_dense_embeddings(model, pixels, 1, normed, all + i * row, err);
        } else {
            st = vt_image_intermediates(model, pixels, 1, &layer, &normed, 1, &tokens, err);
            if (!st) memcpy(all + i * row, tokens + prefix * info->width, row * sizeof(float));
        }
    }
    if (!st) st = npy_write_f32(path, (int64_t)images->count, (int64_t)row, all, err);
    free(pixels);
    free(all);
    free(tokens);
    return st;
}

int cmd_embed(int argc, char **argv) {
    cli_model_options mo = {0};
    cli_list images = {0}, texts = {0};
    const char *output = NULL, *patch_output = NULL, *dense_output = NULL, *value;
    int raw = 0, patch_norm = 0, layer = -1, layer_given = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", EMBED_HELP, CLI_MODEL_OPTIONS_HELP);
            return CLI_OK;
        } else if (cli_model_option(argc, argv, &i, &mo)) {
        } else if (cli_option(argc, argv, &i, "--image", "-i", &value)) {
            if (!cli_add_images("embed", &images, value)) return CLI_FAIL;
        } else if (cli_option(argc, argv, &i, "--images-from", NULL, &value)) {
            if (!cli_add_lines("embed", &images, value)) return CLI_FAIL;
        } else if (cli_option(argc, argv, &i, "--text", NULL, &value)) {
            cli_list_push(&texts, value);
        } else if (cli_option(argc, argv, &i, "--texts-from", NULL, &value)) {
            if (!cli_add_lines("embed", &texts, value)) return CLI_FAIL;
        } else if (cli_option(argc, argv, &i, "--output", "-o", &output)) {
        } else if (cli_option(argc, argv, &i, "--patch-features", NULL, &patch_output)) {
        } else if (cli_option(argc, argv, &i, "--dense-embeddings", NULL, &dense_output)) {
        } else if (cli_int_option(argc, argv, &i, "--layer", NULL, -1000, 999, &layer)) {
            layer_given = 1;
        } else if (!strcmp(argv[i], "--raw")) {
            raw = 1;
        } else if (!strcmp(argv[i], "--patch-norm")) {
            patch_norm = 1;
        } else {
            cli_errorf("embed", "unknown option '%s' (see 'vitamin embed --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!output) { cli_errorf("embed", "missing -o OUT.npy (see 'vitamin embed --help')"); return CLI_USAGE; }
    if (patch_norm && !patch_output) {
        cli_errorf("embed", "--patch-norm normalises the --patch-features output; give --patch-features F too");
        return CLI_USAGE;
    }
    if (layer_given && !patch_output) {
        cli_errorf("embed", "--layer picks the block of --patch-features; give --patch-features F too");
        return CLI_USAGE;
    }
    if (!images.count && !texts.count) { cli_errorf("embed", "nothing to embed: give --image and/or --text"); return CLI_USAGE; }

    /* Under mpirun (build/mpi/vitamin) the rows (images, then texts) are split
     * into contiguous ranges, one per rank; rank 0 gathers them in input order
     * and writes the file. */
    dist_ctx dist;
    vt_error derr = {0};
    if (dist_init(&dist, &derr)) { cli_error("embed", &derr); return CLI_FAIL; }
    if (dist.world > 1 && (patch_output || dense_output)) {
        cli_errorf("embed", "--patch-features and --dense-embeddings run in one process; drop mpirun for them");
        dist_finalize(&dist);
        return CLI_USAGE;
    }
    int rc = CLI_FAIL;
    vt_model *model = cli_load_model("embed", &mo);
    vt_tokenizer *tok = NULL;
    float *out = NULL;
    size_t *range = NULL;
    if (!model) goto done;
    vt_model_info info;
    vt_model_get_info(model, &info);
    if (texts.count && !info.has_text) { cli_errorf("embed", "%s has no text tower (image-only checkpoint)", info.name); goto done; }
    if (texts.count && !(tok = cli_load_tokenizer("embed", &mo))) goto done;
    size_t rows = images.count + texts.count;
    out = malloc(rows * info.embed_dim * sizeof(float));
    if (!out) { cli_errorf("embed", "out of memory for %zu embeddings", rows); goto done; }
    vt_error err = {0};
    range = calloc((size_t)dist.world + 1, sizeof *range);
    if (!range) { cli_errorf("embed", "out of memory"); goto done; }
    for (int r = 0; r <= dist.world; r++) range[r] = rows * (size_t)r / (size_t)dist.world;
    size_t mine_begin = range[dist.rank], mine_end = range[dist.rank + 1];
    int batch = mo.batch ? mo.batch : 8;
    double started = cli_now();
    size_t img_begin = mine_begin < images.count ? mine_begin : images.count;
    size_t img_end = mine_end < images.count ? mine_end : images.count;
    for (size_t i = img_begin; i < img_end; i += batch) {
        int n = img_end - i < (size_t)batch ? (int)(img_end - i) : batch;
        if (vt_encode_image_files(model, (const char *const *)images.items + i, n, !raw, out + i * info.embed_dim, &err)) {
            cli_error("embed", &err);
            goto done;
        }
        if (dist.rank == 0) cli_progress("embed images", i + n - img_begin, img_end - img_begin, started);
    }
    batch = mo.batch ? mo.batch : 64;
    size_t txt_begin = mine_begin > images.count ? mine_begin - images.count : 0;
    size_t txt_end = mine_end > images.count ? mine_end - images.count : 0;
    for (size_t i = txt_begin; i < txt_end; i += batch) {
        int n = txt_end - i < (size_t)batch ? (int)(txt_end - i) : batch;
        float *dst = out + (images.count + i) * info.embed_dim;
        if (vt_encode_texts(model, tok, (const char *const *)texts.items + i, n, !raw, dst, &err)) {
            cli_error("embed", &err);
            goto done;
        }
    }
    if (patch_output && images.count &&
        write_token_rows(model, &info, &images, 0, layer, patch_norm, patch_output, &err)) {
        cli_error("embed", &err);
        goto done;
    }
    if (dense_output && images.count && write_token_rows(model, &info, &images, 1, -1, !raw, dense_output, &err)) {
        cli_error("embed", &err);
        goto done;
    }
    if (dist.world > 1) {
        for (int r = 0; r <= dist.world; r++) range[r] *= (size_t)info.embed_dim;
        dist_gatherv_to_root(&dist, out, range);
    }
    if (dist.rank == 0) {
        if (npy_write_f32(output, (int64_t)rows, info.embed_dim, out, &err)) {
            cli_error("embed", &err);
            goto done;
        }
        fprintf(stderr, "embed: wrote %zu x %d to %s%s\n", rows, info.embed_dim, output,
                dist.world > 1 ? " (gathered from all ranks)" : "");
    }
    rc = CLI_OK;
done:
    free(range);
    /* A rank that failed takes the whole job down rather than leaving the
     * others waiting in the gather. */
    if (rc != CLI_OK && dist.world > 1) dist_abort(&dist, rc);
    dist_finalize(&dist);
    free(out);
    vt_tokenizer_free(tok);
    vt_model_free(model);
    cli_list_free(&images);
    cli_list_free(&texts);
    return rc;
}
