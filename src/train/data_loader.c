/* The training data loader (see data.h): a ring of batch buffers that
 * background threads fill sample by sample, ahead of the caller.
 *
 * Work unit: one sample slot (step, position) of this rank's part of a batch.
 * Threads take units in order, but each unit's result depends only on
 * (seed, step, position), so the thread count and timing never change a
 * batch. The ring holds RING_BATCHES batches: while the caller holds batch s
 * (valid until its next call), the threads fill s+1 .. s+RING_BATCHES-1. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/text/tokenizer.h"
#include "train/augment.h"
#include "train/data.h"
#include "train/data_source.h"
#include "train/rng.h"

#define RING_BATCHES 3
/* Permutations alive at once: the ring's steps span at most RING_BATCHES
 * epochs (one step per epoch), plus one being replaced. */
#define PERM_CACHE (RING_BATCHES + 1)
/* A position whose candidates fail this many times in a row fails the batch
 * even without strict: the data is broken, not a sample. */
#define MAX_TRIES_PER_POSITION 100
#define DEFAULT_WORKERS 2

typedef struct {
    int64_t step;        /* -1: empty */
    int done;            /* positions finished */
    int64_t skipped;     /* failed tries in this batch */
    int error_position;  /* lowest failing position, or -1 */
    vt_error error;
    float *pixels;
    int32_t *tokens;
    int64_t *sample_index;
} batch_buffer;

typedef struct {
    int64_t epoch;       /* -1: empty */
    int refs;
    uint32_t *order;
} permutation;

struct data_loader {
    data_options options;
    data_source *source;
    int rgb_first;
    int64_t samples, steps_per_epoch;
    int local_count;     /* B / world */
    size_t pixels_per_sample;

    pthread_mutex_t lock;
    pthread_cond_t work_ready, batch_ready;
    pthread_t *threads;
    int thread_count;

    batch_buffer ring[RING_BATCHES];
    permutation perms[PERM_CACHE];
    int64_t next_step;   /* the step data_loader_next returns next */
    int64_t held_step;   /* the step the caller holds, or -1 */
    int64_t fill_step;   /* the next unit to hand out */
    int fill_position;
    int in_flight;
    int paused, stopping;
    int64_t skipped_total;
};

/* ------------------------------------------------------------------------- */
/* Permutations                                                               */
/* ------------------------------------------------------------------------- */

static void shuffle(uint32_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    rng_stream s = rng_stream_for(seed, RNG_DOMAIN_SHUFFLE, (uint64_t)epoch, 0);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_stream_below(&s, (uint64_t)i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* The permutation of `epoch`, referenced; called with the lock held. The
 * shuffle runs under the lock: it is O(N) once per epoch. */
static permutation *acquire_permutation(data_loader *l, int64_t epoch) {
    permutation *free_slot = NULL;
    for (int i = 0; i < PERM_CACHE; i++) {
        permutation *p = &l->perms[i];
        if (p->epoch == epoch) {
            p->refs++;
            return p;
        }
        if (p->refs == 0 && (!free_slot || p->epoch < free_slot->epoch)) free_slot = p;
    }
    /* Cannot be NULL: at most RING_BATCHES epochs are referenced at once. */
    free_slot->epoch = epoch;
    shuffle(free_slot->order, l->samples, l->options.seed, epoch);
    free_slot->refs = 1;
    return free_slot;
}

/* ------------------------------------------------------------------------- */
/* One sample                                                                 */
/* ------------------------------------------------------------------------- */

/* Decodes, augments and tokenizes dataset sample `index`. */
static vt_status prepare_sample(const data_loader *l, int64_t epoch, int64_t index, float *pixels, int32_t *tokens,
                                vt_error *err) {
    const data_options *o = &l->options;
    decoded_image image;
    char *caption = NULL;
    size_t caption_len = 0;
    vt_status st = data_source_read(l->source, index, &image, &caption, &caption_len, err);
    if (st != VT_OK) return st;
    st = clip_tokenize_n(o->tokenizer, caption, caption_len, o->context_length, tokens, err);
    if (st != VT_OK) {
        char where[512];
        data_source_describe(l->source, index, where, sizeof where);
        vt_error_prefix(err, "caption of %s: ", where);
    } else if (o->augment) {
        crop_box box;
        data_crop_params(o->seed, epoch, index, image.width, image.height, o->scale_min, o->scale_max, &box.top,
                         &box.left, &box.height, &box.width);
        st = augment_resized_crop(&image, box, o->image_size, l->rgb_first, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, pixels,
                                  err);
    } else {
        st = augment_eval_transform(&image, o->image_size, l->rgb_first, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, pixels,
                                    err);
    }
    image_free(&image);
    free(caption);
    return st;
}

/* Fills position `position` of this rank's part of global step `step`,
 * trying replacements for bad samples (data.h). Returns the failed tries in
 * *skipped; a non-OK status is the batch's error. */
static vt_status fill_position(const data_loader *l, const permutation *perm, int64_t step, int position,
                               batch_buffer *buffer, int64_t *skipped, vt_error *err) {
    const int64_t n = l->samples, batch = l->options.global_batch;
    const int64_t epoch = step / l->steps_per_epoch;
    const int64_t start = (step % l->steps_per_epoch) * batch;
    const int64_t j = (int64_t)l->options.rank * l->local_count + position; /* position in the global batch */
    float *pixels = buffer->pixels + (size_t)position * l->pixels_per_sample;
    int32_t *tokens = buffer->tokens + (size_t)position * (size_t)l->options.context_length;
    *skipped = 0;
    /* Replacements come from the n - batch positions outside this batch,
     * in permutation order from its end; position j takes every batch-th. */
    const int64_t others = n - batch;
    for (int64_t k = 0;; k++) {
        int64_t where = k == 0 ? start + j : (start + batch + (j + (k - 1) * batch) % others) % n;
        int64_t index = perm->order[where];
        vt_status st = prepare_sample(l, epoch, index, pixels, tokens, err);
        if (st == VT_OK) {
            buffer->sample_index[position] = index;
            return VT_OK;
        }
        if (st == VT_ERR_NOMEM || l->options.strict) return st;
        ++*skipped;
        if (others == 0) {
            vt_error_prefix(err, "no sample to replace a bad one with (the dataset is a single batch): ");
            return st;
        }
        if (k + 1 >= MAX_TRIES_PER_POSITION) {
            vt_error_prefix(err, "%d unreadable samples in a row (is the data intact?); the last: ",
                            MAX_TRIES_PER_POSITION);
            return st;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Decode threads                                                             */
/* ------------------------------------------------------------------------- */

static int unit_available(const data_loader *l) {
    int64_t window_start = l->held_step >= 0 ? l->held_step : l->next_step;
    return !l->paused && l->fill_step < window_start + RING_BATCHES;
}

static void *decode_thread(void *arg) {
    data_loader *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->stopping && !unit_available(l)) pthread_cond_wait(&l->work_ready, &l->lock);
        if (l->stopping) break;
        int64_t step = l->fill_step;
        int position = l->fill_position;
        batch_buffer *buffer = &l->ring[step % RING_BATCHES];
        if (position == 0) {
            /* The previous occupant (step - RING_BATCHES) has been released. */
            buffer->step = step;
            buffer->done = 0;
            buffer->skipped = 0;
            buffer->error_position = -1;
        }
        if (++l->fill_position == l->local_count) {
            l->fill_step++;
            l->fill_position = 0;
        }
        permutation *perm = acquire_permutation(l, step / l->steps_per_epoch);
        l->in_flight++;
        pthread_mutex_unlock(&l->lock);

        vt_error err = {0};
        int64_t skipped = 0;
        vt_status st = fill_position(l, perm, step, position, buffer, &skipped, &err);

        pthread_mutex_lock(&l->lock);
        perm->refs--;
        buffer->skipped += skipped;
        if (st != VT_OK && (buffer->error_position < 0 || position < buffer->error_position)) {
            buffer->error_position = position;
            buffer->error = err;
            if (!buffer->error.message[0]) vt_fail(&buffer->error, st, "sample preparation failed");
        }
        buffer->done++;
        l->in_flight--;
        if (buffer->done == l->local_count || l->in_flight == 0) pthread_cond_broadcast(&l->batch_ready);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Public interface                                                           */
/* ------------------------------------------------------------------------- */

static vt_status check_options(const data_options *o, vt_error *err) {
    if (!o->tokenizer) return vt_fail(err, VT_ERR_ARGUMENT, "data loader: no tokenizer");
    if (o->image_size < 1 || o->image_size > 4096)
        return vt_fail(err, VT_ERR_ARGUMENT, "data loader: image size %d outside 1..4096", o->image_size);
    if (o->context_length < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "data loader: context length %d, must be >= 1", o->context_length);
    if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
        return vt_fail(err, VT_ERR_ARGUMENT, "data loader: rank %d of world %d is not a valid rank", o->rank,
                       o->world);
    if (o->global_batch < 1 || o->global_batch % o->world != 0)
        return vt_fail(err, VT_ERR_ARGUMENT,
                       "data loader: global batch %d must be a positive multiple of the number of processes (%d)",
                       o->global_batch, o->world);
    if (o->workers < 0 || o->workers > 256)
        return vt_fail(err, VT_ERR_ARGUMENT, "data loader: %d workers, expected 0..256", o->workers);
    if (!(o->scale_min > 0.0f && o->scale_min <= o->scale_max && o->scale_max <= 1.0f))
        return vt_fail(err, VT_ERR_ARGUMENT, "data loader: crop scale (%g, %g) must satisfy 0 < min <= max <= 1",
                       (double)o->scale_min, (double)o->scale_max);
    return VT_OK;
}

static vt_status allocate(data_loader *l, vt_error *err) {
    size_t count = (size_t)l->local_count;
    for (int i = 0; i < RING_BATCHES; i++) {
        batch_buffer *b = &l->ring[i];
        b->step = -1;
        b->pixels = malloc(count * l->pixels_per_sample * sizeof *b->pixels);
        b->tokens = malloc(count * (size_t)l->options.context_length * sizeof *b->tokens);
        b->sample_index = malloc(count * sizeof *b->sample_index);
        if (!b->pixels || !b->tokens || !b->sample_index)
            return vt_fail(err, VT_ERR_NOMEM, "out of memory for %d batches of %zu %dx%d images", RING_BATCHES,
                           count, l->options.image_size, l->options.image_size);
    }
    for (int i = 0; i < PERM_CACHE; i++) {
        l->perms[i].epoch = -1;
        if (!(l->perms[i].order = malloc((size_t)l->samples * sizeof *l->perms[i].order)))
            return vt_fail(err, VT_ERR_NOMEM, "out of memory for the order of %lld samples", (long long)l->samples);
    }
    return VT_OK;
}

static void free_loader(data_loader *l) {
    for (int i = 0; i < RING_BATCHES; i++) {
        free(l->ring[i].pixels);
        free(l->ring[i].tokens);
        free(l->ring[i].sample_index);
    }
    for (int i = 0; i < PERM_CACHE; i++) free(l->perms[i].order);
    data_source_close(l->source);
    free(l->threads);
    free(l);
}

vt_status data_loader_open(const data_options *options, data_loader **out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "data_loader_open: NULL output");
    *out = NULL;
    if (!options) return vt_fail(err, VT_ERR_ARGUMENT, "data_loader_open: NULL options");
    data_options o = *options;
    if (o.scale_min == 0.0f && o.scale_max == 0.0f) o.scale_min = 0.9f, o.scale_max = 1.0f;
    vt_status st = check_options(&o, err);
    if (st != VT_OK) return st;

    data_loader *l = calloc(1, sizeof *l);
    if (!l) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    o.train_data = NULL; /* only needed by data_source_open; not kept */
    l->options = o;
    st = data_source_open(options, &l->source, err);
    if (st != VT_OK) {
        free_loader(l);
        return st;
    }
    l->rgb_first = data_source_rgb_first(l->source);
    l->samples = data_source_count(l->source);
    if (l->samples > (int64_t)UINT32_MAX) st = vt_fail(err, VT_ERR_UNSUPPORTED, "more than 2^32 samples");
    else if (l->samples < o.global_batch)
        st = vt_fail(err, VT_ERR_ARGUMENT,
                     "%s has %lld samples, fewer than one global batch of %d; lower the batch size",
                     options->train_data, (long long)l->samples, o.global_batch);
    l->steps_per_epoch = l->samples / o.global_batch;
    l->local_count = o.global_batch / o.world;
    l->pixels_per_sample = 3 * (size_t)o.image_size * (size_t)o.image_size;
    if (st == VT_OK) st = allocate(l, err);
    if (st != VT_OK) {
        free_loader(l);
        return st;
    }

    l->held_step = -1;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->work_ready, NULL);
    pthread_cond_init(&l->batch_ready, NULL);
    int wanted = o.workers ? o.workers : DEFAULT_WORKERS;
    l->threads = calloc((size_t)wanted, sizeof *l->threads);
    for (int i = 0; l->threads && i < wanted; i++) {
        if (pthread_create(&l->threads[i], NULL, decode_thread, l) != 0) break;
        l->thread_count++;
    }
    if (l->thread_count == 0) {
        data_loader_close(l);
        return vt_fail(err, VT_ERR_NOMEM, "data loader: cannot start decode threads");
    }
    *out = l;
    return VT_OK;
}

int64_t data_loader_samples(const data_loader *l) { return l ? l->samples : 0; }

int64_t data_loader_steps_per_epoch(const data_loader *l) { return l ? l->steps_per_epoch : 0; }

vt_status data_loader_seek(data_loader *l, int64_t step, vt_error *err) {
    if (!l) return vt_fail(err, VT_ERR_ARGUMENT, "data_loader_seek: NULL loader");
    if (step < 0) return vt_fail(err, VT_ERR_ARGUMENT, "data_loader_seek: step %lld is negative", (long long)step);
    pthread_mutex_lock(&l->lock);
    /* Let the units in flight finish so that no thread writes into a buffer
     * after it is reassigned. */
    l->paused = 1;
    while (l->in_flight > 0) pthread_cond_wait(&l->batch_ready, &l->lock);
    for (int i = 0; i < RING_BATCHES; i++) l->ring[i].step = -1;
    l->next_step = l->fill_step = step;
    l->fill_position = 0;
    l->held_step = -1;
    l->skipped_total = 0;
    l->paused = 0;
    pthread_cond_broadcast(&l->work_ready);
    pthread_mutex_unlock(&l->lock);
    return VT_OK;
}

vt_status data_loader_next(data_loader *l, data_batch *out, vt_error *err) {
    if (!l || !out) return vt_fail(err, VT_ERR_ARGUMENT, "data_loader_next: NULL loader or batch");
    pthread_mutex_lock(&l->lock);
    l->held_step = -1; /* the caller is done with the previous batch */
    pthread_cond_broadcast(&l->work_ready);
    int64_t step = l->next_step;
    batch_buffer *b = &l->ring[step % RING_BATCHES];
    while (!(b->step == step && b->done == l->local_count)) pthread_cond_wait(&l->batch_ready, &l->lock);
    vt_status st = VT_OK;
    if (b->error_position >= 0) {
        st = b->error.status != VT_OK ? b->error.status : VT_ERR_FORMAT;
        if (err) *err = b->error;
        /* The loader stays at this step: asking again gives the same error. */
        pthread_mutex_unlock(&l->lock);
        return st;
    }
    l->skipped_total += b->skipped;
    l->held_step = step;
    l->next_step = step + 1;
    pthread_mutex_unlock(&l->lock);

    out->count = l->local_count;
    out->pixels = b->pixels;
    out->tokens = b->tokens;
    out->sample_index = b->sample_index;
    out->step = step;
    out->epoch = step / l->steps_per_epoch;
    out->skipped_total = l->skipped_total;
    return VT_OK;
}

void data_loader_close(data_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_broadcast(&l->work_ready);
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < l->thread_count; i++) pthread_join(l->threads[i], NULL);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->work_ready);
    pthread_cond_destroy(&l->batch_ready);
    free_loader(l);
}
