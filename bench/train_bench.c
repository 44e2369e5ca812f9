/* Training-step throughput of vitamin.c for bench/train_bench.py: a fresh
 * open_clip-initialised model, one random batch (pixels N(0,1), captions of
 * 12 tokens), `steps` full AdamW steps after one warm-up step. Prints one JSON
 * line: images per second, seconds per step, peak RSS. OpenMP threads wait
 * passively (OMP_WAIT_POLICY=PASSIVE) unless the environment says otherwise.
 * usage: train_bench MODEL BATCH STEPS [ACCUM_FREQ] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peak_rss.h"
#include <unistd.h>

#include "model/config.h"
#include "train/rng.h"
#include "train/trainer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}


int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: train_bench MODEL BATCH STEPS [ACCUM_FREQ]\n");
        return 2;
    }
    /* The same OpenMP wait policy as `vitamin train` (tools/vitamin.c):
     * libgomp's default spin-waiting makes a step 1.5-2x slower whenever
     * anything else shares the cores. libgomp reads the policy when it loads:
     * set it and restart once, unless chosen. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        execv("/proc/self/exe", argv);
        /* exec failed (no /proc): carry on with the default policy */
    }
    int batch = atoi(argv[2]), steps = atoi(argv[3]), accum = argc > 4 ? atoi(argv[4]) : 1;
    vt_error err;
    vt_model_config cfg;
    train_params p;
    if (vt_config_lookup(argv[1], &cfg, &err) || train_params_create(&cfg, &p, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    train_params_init(&p, 0);
    size_t px = 3 * (size_t)cfg.image_size * cfg.image_size, ctx = (size_t)cfg.context_length;
    float *pixels = malloc(sizeof(float) * px * batch);
    int32_t *tokens = calloc(ctx * batch, sizeof(int32_t));
    for (size_t i = 0; i < px * batch; i++) pixels[i] = (float)rng_normal(1, i);
    for (int b = 0; b < batch; b++) {
        tokens[b * ctx] = 49406;
        for (int t = 1; t < 11; t++) tokens[b * ctx + t] = 256 + (int)(rng_bits(2, (uint64_t)(b * 16 + t)) % 40000);
        tokens[b * ctx + 11] = 49407;
    }
    clip_train_options opt = {.batch = batch / accum, .drop_path = 0.1f, .seed = 0};
    trainer *t;
    if (trainer_create(&p, batch, batch / accum, &opt, &t, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    adamw_hparams adam = {0.9f, 0.98f, 1e-6f, 0.2f};
    step_result r;
    double t0 = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) t0 = now();
        if (trainer_step(t, pixels, tokens, batch, 1e-4, &adam, 0.0, (uint64_t)s, &r, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    double per_step = (now() - t0) / steps;
    printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"images_per_s\": %.3f, \"seconds_per_step\": %.4f, "
           "\"peak_rss_mb\": %.1f, \"loss\": %.4f}\n",
           cfg.name, batch, omp_get_max_threads(), batch / per_step, per_step, peak_rss_kb() / 1024.0, r.loss);
    trainer_free(t);
    train_params_free(&p);
    free(pixels);
    free(tokens);
    return 0;
}
