/* Training data: open_clip's CSV/TSV input and WebDataset tar shards, decoded
 * and augmented on background threads, in an order that depends only on the
 * seed — never on the thread count, the number of ranks or timing.
 *
 * Order: epoch e visits the N samples in a permutation drawn from (seed, e)
 * (Fisher-Yates, j = rng_stream_below(i + 1) for i = N-1 .. 1, on the stream
 * rng_stream_for(seed, RNG_DOMAIN_SHUFFLE, e, 0) of train/rng.h);
 * global step s (counted over all epochs) takes positions
 * [(s mod steps_per_epoch)·B, +B) of epoch s / steps_per_epoch's permutation,
 * B = global batch; steps_per_epoch = N / B (drop_last, as open_clip). A
 * process of rank r out of R gets the r-th contiguous slice of B/R samples of
 * each global batch (issue 5: data parallel).
 *
 * Augmentation (open_clip training transform): RandomResizedCrop(S,
 * scale=(scale_min, scale_max), ratio=(3/4, 4/3), bicubic) with torchvision's
 * get_params algorithm, then RGB, ToTensor, Normalize(CLIP mean/std). Its
 * random numbers come from a counter-based generator keyed by (seed, epoch,
 * sample index), so a sample gets the same crop whichever rank or thread
 * decodes it. With augment = 0 the evaluation transform (resize, center crop)
 * is used instead. As in open_clip, CSV images are cropped and resized in
 * their own Pillow mode and converted to RGB afterwards, while tar images are
 * converted to RGB first (webdataset's "pilrgb" decode); the two agree for
 * RGB and L images.
 *
 * Bad samples (missing file, undecodable image, caption that is not UTF-8):
 * with strict = 0 the sample is replaced by the next sample of the epoch's
 * permutation after the global batch that decodes (deterministic), and
 * counted in data_batch.skipped_total; with strict = 1 data_loader_next fails
 * naming the file. Precisely: the replacements of a batch that ends at
 * permutation position P are the N - B positions outside it, in order
 * P, P + 1, ... (mod N); a bad sample at global-batch position j
 * (0 <= j < B) takes the j-th of them, then the (j + B)-th, (j + 2B)-th ...
 * (mod N - B), so two bad samples of one batch do not take the same
 * replacement and every rank computes the same choice for its own positions;
 * 100 bad samples in a row for one position fail even without strict.
 * skipped_total counts every failed try since open or the last seek. */
#ifndef VT_TRAIN_DATA_H
#define VT_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

typedef struct {
    /* A .csv/.tsv table, or WebDataset shards: one .tar, a brace range
     * "dir/shard-{000000..000009}.tar", or several of these joined with "::"
     * (open_clip's --train-data forms). */
    const char *train_data;
    char csv_separator;          /* open_clip default '\t' */
    const char *csv_img_key;     /* default "filepath" */
    const char *csv_caption_key; /* default "title" */
    int image_size;
    int context_length;
    const vt_tokenizer *tokenizer;
    uint64_t seed;
    int global_batch;
    int rank, world;             /* 0, 1 for a single process */
    int workers;                 /* decode threads (0: 2) */
    int strict;
    int augment;                 /* 1: RandomResizedCrop; 0: eval transform */
    float scale_min, scale_max;  /* open_clip default 0.9, 1.0 (both 0: the default) */
} data_options;

typedef struct data_loader data_loader;

typedef struct {
    int count;                   /* samples in this process's part of the batch (B / R) */
    float *pixels;               /* [count, 3, S, S] normalised, CHW like open_clip */
    int32_t *tokens;             /* [count, context_length] */
    int64_t *sample_index;       /* [count] index into the dataset (row / tar member order) */
    int64_t step, epoch;
    int64_t skipped_total;       /* bad samples replaced so far */
} data_batch;

vt_status data_loader_open(const data_options *options, data_loader **out, vt_error *err);
int64_t data_loader_samples(const data_loader *loader);
int64_t data_loader_steps_per_epoch(const data_loader *loader);
/* Positions the loader so that the next batch is global step `step`. */
vt_status data_loader_seek(data_loader *loader, int64_t step, vt_error *err);
/* The next batch; owned by the loader and valid until the next call. Batches
 * ahead are prepared in the background while the caller trains. */
vt_status data_loader_next(data_loader *loader, data_batch *out, vt_error *err);
void data_loader_close(data_loader *loader);

/* Exposed for tests: torchvision RandomResizedCrop.get_params given uniform
 * draws from the sample's generator: writes the crop box (top, left, height, width). */
void data_crop_params(uint64_t seed, int64_t epoch, int64_t sample, int width, int height, float scale_min,
                      float scale_max, int *top, int *left, int *crop_h, int *crop_w);

#endif
