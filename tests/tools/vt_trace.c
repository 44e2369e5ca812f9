/* Test driver for layer-by-layer parity: loads a checkpoint, runs raw inputs
 * and writes every traced activation as OUT_DIR/<name>.npy ([batch, rest]
 * flattened; the test reshapes), plus image_features.npy / text_features.npy.
 *
 *   vt_trace CKPT OUT_DIR [--model NAME] [--pixels FILE.f32 N] [--tokens FILE.i32 N]
 * Pixels are raw float32 [N, 3, S, S]; tokens raw int32 [N, context]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/serial/npy.h"
#include "model/forward.h"
#include "vitamin.h"

typedef struct {
    const char *dir;
    int failed;
} dump_ctx;

static void dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    dump_ctx *ctx = user;
    int64_t rest = 1;
    for (int i = 1; i < ndim; i++) rest *= shape[i];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", ctx->dir, name);
    vt_error err;
    if (npy_write_f32(path, shape[0], rest, data, &err)) {
        fprintf(stderr, "vt_trace: %s\n", err.message);
        ctx->failed = 1;
    }
}

static void *read_raw(const char *path, size_t bytes) {
    FILE *f = fopen(path, "rb");
    void *buf = malloc(bytes ? bytes : 1);
    if (!f || !buf || fread(buf, 1, bytes, f) != bytes) {
        fprintf(stderr, "vt_trace: cannot read %zu bytes from %s\n", bytes, path);
        exit(1);
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: vt_trace CKPT OUT_DIR [--model NAME] [--pixels FILE N] [--tokens FILE N]\n");
        return 2;
    }
    const char *model_name = NULL, *pixels_path = NULL, *tokens_path = NULL;
    int n_images = 0, n_texts = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_name = argv[++i];
        else if (!strcmp(argv[i], "--pixels") && i + 2 < argc) { pixels_path = argv[++i]; n_images = atoi(argv[++i]); }
        else if (!strcmp(argv[i], "--tokens") && i + 2 < argc) { tokens_path = argv[++i]; n_texts = atoi(argv[++i]); }
        else { fprintf(stderr, "vt_trace: bad argument '%s'\n", argv[i]); return 2; }
    }
    vt_error err = {0};
    vt_model *model;
    vt_load_options opt = {.model_name = model_name, .bf16 = getenv("VITAMIN_BF16") != NULL};
    if (vt_model_load(argv[1], &opt, &model, &err)) {
        fprintf(stderr, "vt_trace: %s\n", err.message);
        return 1;
    }
    vt_model_info info;
    vt_model_get_info(model, &info);
    dump_ctx ctx = {argv[2], 0};
    int rc = 0;
    if (pixels_path) {
        size_t floats = (size_t)n_images * 3 * info.image_size * info.image_size;
        float *pixels = read_raw(pixels_path, floats * sizeof(float));
        float *feats = malloc((size_t)n_images * info.embed_dim * sizeof(float));
        if (vt_encode_pixels_trace(model, pixels, n_images, feats, dump, &ctx, &err)) {
            fprintf(stderr, "vt_trace: %s\n", err.message);
            rc = 1;
        } else {
            dump(&ctx, "image_features", feats, 2, (const int64_t[]){n_images, info.embed_dim});
        }
        free(pixels);
        free(feats);
    }
    if (tokens_path && !rc) {
        int32_t *ids = read_raw(tokens_path, (size_t)n_texts * info.context_length * sizeof(int32_t));
        float *feats = malloc(((size_t)n_texts + 1) * info.embed_dim * sizeof(float));
        if (vt_encode_tokens(model, ids, n_texts, 0, feats, &err)) {
            fprintf(stderr, "vt_trace: %s\n", err.message);
            rc = 1;
        } else {
            dump(&ctx, "text_features", feats, 2, (const int64_t[]){n_texts, info.embed_dim});
        }
        free(ids);
        free(feats);
    }
    printf("%s image_size=%d embed_dim=%d logit_scale=%.9g\n", info.name, info.image_size, info.embed_dim,
           info.logit_scale);
    vt_model_free(model);
    return rc || ctx.failed;
}
