/* data_loader_dump: drives the training data pipeline for tests/test_data_loader.py.
 *
 *   data_loader_dump batches --data SPEC --out DIR [--size S] [--batch B] [--steps K]
 *        [--seed N] [--rank R] [--world W] [--workers T] [--strict] [--eval]
 *        [--context C] [--seek STEP] [--vocab PATH] [--scale MIN MAX] [--close-early]
 *     opens a loader and writes the next K batches as DIR/pixels.npy
 *     [K*count, 3*S*S], DIR/tokens.npy [K*count, C] and DIR/index.npy [K, count]
 *     (float32; ids and indices are exact below 2^24); prints
 *     "samples N steps_per_epoch M" and one "step E epoch F skipped G" per batch.
 *     --close-early closes the loader right after the first batch (mid-epoch,
 *     threads busy) to check that close neither hangs nor leaks.
 *   data_loader_dump crop            reads "seed epoch sample width height smin smax"
 *     lines on stdin, prints "top left height width" per line (data_crop_params).
 *   data_loader_dump transform IMAGE S TOP LEFT HEIGHT WIDTH RGB_FIRST OUT.f32
 *     the augmentation of one image with a given box, raw float32 CHW.
 *   data_loader_dump shards SPEC     one expanded shard name per line.
 *   data_loader_dump tar FILE        "image_name image_offset image_size text_offset text_size" per sample.
 * Errors: the message on stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/image/image.h"
#include "io/serial/npy.h"
#include "io/dataset/shard_list.h"
#include "io/dataset/tar_reader.h"
#include "train/augment.h"
#include "train/data.h"

static int fail(const vt_error *err) {
    fprintf(stderr, "%s\n", err->message);
    return 1;
}

static int cmd_crop(void) {
    unsigned long long seed;
    long long epoch, sample;
    int width, height;
    float smin, smax;
    while (scanf("%llu %lld %lld %d %d %f %f", &seed, &epoch, &sample, &width, &height, &smin, &smax) == 7) {
        int top, left, h, w;
        data_crop_params(seed, epoch, sample, width, height, smin, smax, &top, &left, &h, &w);
        printf("%d %d %d %d\n", top, left, h, w);
    }
    return 0;
}

static int cmd_transform(int argc, char **argv) {
    if (argc != 10) return 2;
    vt_error err = {0};
    decoded_image image;
    if (image_decode_file(argv[2], &image, &err) != VT_OK) return fail(&err);
    int size = atoi(argv[3]);
    crop_box box = {atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7])};
    size_t n = 3 * (size_t)size * size;
    float *out = malloc(n * sizeof *out);
    vt_status st = augment_resized_crop(&image, box, size, atoi(argv[8]), CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, out, &err);
    image_free(&image);
    if (st != VT_OK) {
        free(out);
        return fail(&err);
    }
    FILE *f = fopen(argv[9], "wb");
    int rc = !f || fwrite(out, sizeof *out, n, f) != n;
    if (f) rc |= fclose(f) != 0;
    free(out);
    return rc;
}

static int cmd_shards(const char *spec) {
    vt_error err = {0};
    shard_list list;
    if (shard_list_expand(spec, &list, &err) != VT_OK) return fail(&err);
    for (size_t i = 0; i < list.count; i++) printf("%s\n", list.paths[i]);
    shard_list_free(&list);
    return 0;
}

static int cmd_tar(const char *path) {
    vt_error err = {0};
    tar_index index = {0};
    vt_status st = tar_index_shard(path, &index, &err);
    for (size_t i = 0; st == VT_OK && i < index.count; i++) {
        const tar_sample *s = &index.samples[i];
        printf("%s %llu %llu %llu %llu\n", tar_sample_name(&index, i), (unsigned long long)s->image_offset,
               (unsigned long long)s->image_size, (unsigned long long)s->text_offset,
               (unsigned long long)s->text_size);
    }
    tar_index_free(&index);
    return st == VT_OK ? 0 : fail(&err);
}

static int cmd_batches(int argc, char **argv) {
    data_options o = {0};
    o.csv_separator = '\t';
    o.image_size = 32;
    o.context_length = 77;
    o.global_batch = 4;
    o.world = 1;
    o.augment = 1;
    o.scale_min = 0.9f;
    o.scale_max = 1.0f;
    const char *out_dir = NULL, *vocab = NULL;
    int steps = 2, close_early = 0;
    long long seek = -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v) o.train_data = v, i++;
        else if (!strcmp(a, "--out") && v) out_dir = v, i++;
        else if (!strcmp(a, "--size") && v) o.image_size = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v) o.global_batch = atoi(v), i++;
        else if (!strcmp(a, "--steps") && v) steps = atoi(v), i++;
        else if (!strcmp(a, "--seed") && v) o.seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--rank") && v) o.rank = atoi(v), i++;
        else if (!strcmp(a, "--world") && v) o.world = atoi(v), i++;
        else if (!strcmp(a, "--workers") && v) o.workers = atoi(v), i++;
        else if (!strcmp(a, "--context") && v) o.context_length = atoi(v), i++;
        else if (!strcmp(a, "--seek") && v) seek = atoll(v), i++;
        else if (!strcmp(a, "--vocab") && v) vocab = v, i++;
        else if (!strcmp(a, "--csv-img-key") && v) o.csv_img_key = v, i++;
        else if (!strcmp(a, "--csv-caption-key") && v) o.csv_caption_key = v, i++;
        else if (!strcmp(a, "--scale") && v && i + 2 < argc) o.scale_min = (float)atof(v), o.scale_max = (float)atof(argv[i + 2]), i += 2;
        else if (!strcmp(a, "--strict")) o.strict = 1;
        else if (!strcmp(a, "--eval")) o.augment = 0;
        else if (!strcmp(a, "--close-early")) close_early = 1;
        else {
            fprintf(stderr, "data_loader_dump: unknown option %s\n", a);
            return 2;
        }
    }
    if (!out_dir || steps < 1) return 2;
    vt_error err = {0};
    vt_tokenizer *tok = NULL;
    if (vt_tokenizer_load(vocab, &tok, &err) != VT_OK) return fail(&err);
    o.tokenizer = tok;
    data_loader *loader = NULL;
    if (data_loader_open(&o, &loader, &err) != VT_OK) {
        vt_tokenizer_free(tok);
        return fail(&err);
    }
    printf("samples %lld steps_per_epoch %lld\n", (long long)data_loader_samples(loader),
           (long long)data_loader_steps_per_epoch(loader));
    int rc = 0;
    if (seek >= 0 && data_loader_seek(loader, seek, &err) != VT_OK) rc = fail(&err);
    int count = o.global_batch / o.world;
    size_t plane = 3 * (size_t)o.image_size * o.image_size;
    float *pixels = malloc((size_t)steps * count * plane * sizeof(float));
    float *tokens = malloc((size_t)steps * count * o.context_length * sizeof(float));
    float *index = malloc((size_t)steps * count * sizeof(float));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int s = 0; rc == 0 && s < steps; s++) {
        data_batch b;
        if (data_loader_next(loader, &b, &err) != VT_OK) {
            rc = fail(&err);
            break;
        }
        printf("step %lld epoch %lld skipped %lld\n", (long long)b.step, (long long)b.epoch,
               (long long)b.skipped_total);
        memcpy(pixels + (size_t)s * count * plane, b.pixels, (size_t)count * plane * sizeof(float));
        for (int i = 0; i < count * o.context_length; i++)
            tokens[(size_t)s * count * o.context_length + i] = (float)b.tokens[i];
        for (int i = 0; i < count; i++) index[(size_t)s * count + i] = (float)b.sample_index[i];
        if (close_early) {
            steps = s + 1;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "%.1f samples/s\n", seconds > 0 ? (double)steps * count / seconds : 0.0);
    data_loader_close(loader);
    vt_tokenizer_free(tok);
    if (rc == 0) {
        char path[4096];
        mkdir(out_dir, 0777);
        snprintf(path, sizeof path, "%s/pixels.npy", out_dir);
        if (npy_write_f32(path, (int64_t)steps * count, (int64_t)plane, pixels, &err) != VT_OK) rc = fail(&err);
        snprintf(path, sizeof path, "%s/tokens.npy", out_dir);
        if (!rc && npy_write_f32(path, (int64_t)steps * count, o.context_length, tokens, &err) != VT_OK)
            rc = fail(&err);
        snprintf(path, sizeof path, "%s/index.npy", out_dir);
        if (!rc && npy_write_f32(path, steps, count, index, &err) != VT_OK) rc = fail(&err);
    }
    free(pixels);
    free(tokens);
    free(index);
    return rc;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc >= 2 && !strcmp(argv[1], "batches")) rc = cmd_batches(argc, argv);
    else if (argc == 2 && !strcmp(argv[1], "crop")) rc = cmd_crop();
    else if (argc >= 2 && !strcmp(argv[1], "transform")) rc = cmd_transform(argc, argv);
    else if (argc == 3 && !strcmp(argv[1], "shards")) rc = cmd_shards(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "tar")) rc = cmd_tar(argv[2]);
    if (rc == 2) fprintf(stderr, "usage: see the comment at the top of tests/tools/data_loader_dump.c\n");
    return rc;
}
