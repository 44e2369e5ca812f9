/* vitamin.c side of the benchmark (bench/run.py drives it and the references).
 *   engine_bench CKPT [--model-name N] [--threads T] [--image-batches 1,8,32]
 *                [--text-batches 1,64] [--seconds S]
 * Prints one JSON object: load time, images/s and latency per batch size,
 * texts/s per batch size, peak RSS. Inputs are random (seeded): speed does not
 * depend on pixel values. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peak_rss.h"

#include "vitamin.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c) break;
        s = c + 1;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: engine_bench CKPT [--model-name N] [--threads T] [--image-batches L] [--text-batches L] [--seconds S]\n");
        return 2;
    }
    double t_start = now();
    const char *model_name = NULL;
    int bf16 = 0;
    int image_batches[8] = {1, 8, 32}, n_image = 3, text_batches[8] = {1, 64}, n_text = 2;
    double seconds = 3.0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--model-name") && i + 1 < argc) model_name = argv[++i];
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) omp_set_num_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--image-batches") && i + 1 < argc) n_image = parse_list(argv[++i], image_batches, 8);
        else if (!strcmp(argv[i], "--text-batches") && i + 1 < argc) n_text = parse_list(argv[++i], text_batches, 8);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else { fprintf(stderr, "engine_bench: bad argument %s\n", argv[i]); return 2; }
    }
    vt_error err = {0};
    vt_model *model;
    vt_load_options opt = {.model_name = model_name, .bf16 = bf16};
    if (vt_model_load(argv[1], &opt, &model, &err)) {
        fprintf(stderr, "engine_bench: %s\n", err.message);
        return 1;
    }
    vt_model_info info;
    vt_model_get_info(model, &info);
    double load_s = now() - t_start;
    int max_b = 1;
    for (int i = 0; i < n_image; i++) max_b = image_batches[i] > max_b ? image_batches[i] : max_b;
    size_t img_floats = (size_t)3 * info.image_size * info.image_size;
    float *pixels = malloc(max_b * img_floats * sizeof(float));
    float *out = malloc((size_t)(max_b > 64 ? max_b : 64) * info.embed_dim * sizeof(float));
    unsigned s = 1;
    for (size_t i = 0; i < max_b * img_floats; i++) pixels[i] = (float)((s = s * 1103515245u + 12345u) >> 16 & 0x7fff) / 16384.0f - 1.0f;
    vt_encode_pixels(model, pixels, 1, 1, out, &err); /* first embedding: time-to-first-result */
    double first_s = now() - t_start;
    long rss_after_first = peak_rss_kb();
    printf("{\"model\": \"%s\", \"threads\": %d, \"load_s\": %.3f, \"first_embedding_s\": %.3f, \"peak_rss_batch1_mb\": %.1f, \"images\": {",
           info.name, omp_get_max_threads(), load_s, first_s, rss_after_first / 1024.0);
    for (int i = 0; i < n_image; i++) {
        int b = image_batches[i], iters = 0;
        double t0 = now(), best = 1e30;
        while (now() - t0 < seconds || iters < 2) {
            double t = now();
            vt_encode_pixels(model, pixels, b, 1, out, &err);
            double dt = now() - t;
            best = dt < best ? dt : best;
            iters++;
        }
        double per_s = b * iters / (now() - t0);
        printf("%s\"%d\": {\"images_per_s\": %.3f, \"best_batch_latency_ms\": %.2f}", i ? ", " : "", b, per_s, best * 1e3);
        fflush(stdout);
    }
    printf("}, \"texts\": {");
    if (info.has_text) {
        int32_t *ids = calloc((size_t)64 * info.context_length, sizeof(int32_t));
        for (int t = 0; t < 64; t++) { /* realistic prompts: ~10 tokens then EOT */
            ids[t * info.context_length] = 49406;
            for (int j = 1; j < 11; j++) ids[t * info.context_length + j] = 320 + (t * 7 + j * 13) % 4000;
            ids[t * info.context_length + 11] = 49407;
        }
        for (int i = 0; i < n_text; i++) {
            int b = text_batches[i] > 64 ? 64 : text_batches[i], iters = 0;
            double t0 = now();
            while (now() - t0 < seconds || iters < 2) {
                vt_encode_tokens(model, ids, b, 1, out, &err);
                iters++;
            }
            printf("%s\"%d\": {\"texts_per_s\": %.3f}", i ? ", " : "", b, b * iters / (now() - t0));
        }
        free(ids);
    }
    printf("}, \"peak_rss_mb\": %.1f}\n", peak_rss_kb() / 1024.0);
    free(pixels);
    free(out);
    vt_model_free(model);
    return 0;
}
