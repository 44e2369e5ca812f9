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
    "                         ViTamin has none per token (it pools first), so no change there\n";

/* Dense patch features of every image, one image at a time (a row is
 * grid²·width floats, 0.6 MB for ViTamin-L at 384 px). */
static vt_status write_patch_features(const vt_model *model, const vt_model_info *info, const cli_list *images,
                                      int normed, const char *path, vt_error *err) {
    size_t s = (size_t)info->image_size, row = (size_t)info->token_grid * info->token_grid * info->width;
    float *pixels = malloc(3 * s * s * sizeof(float)), *all = malloc(images->count * row * sizeof(float));
    vt_status st = pixels && all ? VT_OK : VT_ERR_NOMEM;
    if (st) vt_fail(err, st, "out of memory for %zu patch-feature rows", images->count);
    for (size_t i = 0; i < images->count && !st; i++) {
        decoded_image img;
        st = image_decode_file(images->items[i], &img, err);
        if (st) break;
        st = image_preprocess_clip(&img, (int)s, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, pixels, err);
        image_free(&img);
        if (!st) st = (normed ? vt_patch_features_normed : vt_patch_features)(model, pixels, 1, all + i * row, err);
    }
    if (!st) st = npy_write_f32(path, (int64_t)images->count, (int64_t)row, all, err);
    free(pixels);
    free(all);
    return st;
}

int cmd_embed(int argc, char **argv) {
    cli_model_options mo = {0};
    cli_list images = {0}, texts = {0};
    const char *output = NULL, *patch_output = NULL, *value;
    int raw = 0, patch_norm = 0;
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
    if (!images.count && !texts.count) { cli_errorf("embed", "nothing to embed: give --image and/or --text"); return CLI_USAGE; }

    /* Under mpirun (build/mpi/vitamin) the rows (images, then texts) are split
     * into contiguous ranges, one per rank; rank 0 gathers them in input order
     * and writes the file. */
    dist_ctx dist;
    vt_error derr = {0};
    if (dist_init(&dist, &derr)) { cli_error("embed", &derr); return CLI_FAIL; }
    if (dist.world > 1 && patch_output) {
        cli_errorf("embed", "--patch-features runs in one process; drop mpirun for it");
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
    if (patch_output && images.count && write_patch_features(model, &info, &images, patch_norm, patch_output, &err)) {
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
