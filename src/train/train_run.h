/* A whole training run, as `vitamin train` drives it: model set-up (fresh
 * init, --pretrained weights or --resume), the data loader, the step loop with
 * open_clip's schedule, logging (progress line, JSON lines), periodic
 * zero-shot evaluation, atomic checkpoints and a loss/accuracy plot. */
#ifndef VT_TRAIN_TRAIN_RUN_H
#define VT_TRAIN_TRAIN_RUN_H

#include <stdint.h>

#include "train/data.h"
#include "train/dist.h"
#include "vitamin.h"

typedef struct {
    const char *model_name;      /* --model (open_clip name or ViTamin-C<w>-N<d>) */
    const char *pretrained;      /* --pretrained CHECKPOINT: start from these weights (NULL: fresh init) */
    const char *vocab_path;      /* --vocab (NULL: the built-in BPE vocabulary) */
    data_options data;           /* --train-data, --csv-*, --workers, --strict (size/seed/batch filled in) */
    int batch_size;              /* --batch-size (global batch) */
    int accum_freq;              /* --accum-freq: micro-batches per step */
    int epochs;                  /* --epochs */
    int64_t steps;               /* --steps (0: epochs × steps per epoch) */
    double lr, wd, beta1, beta2, eps;
    int64_t warmup;
    const char *lr_scheduler;    /* "cosine" | "const" */
    double grad_clip_norm;       /* 0: off */
    uint64_t seed;
    float drop_path;             /* < 0: open_clip's config value (0.1) */
    float patch_dropout;         /* a ViT's --force-patch-dropout (0: off) */
    int lock_image, lock_text;   /* --lock-image / --lock-text (open_clip semantics, train/lock.h) */
    int lock_image_unlocked_groups; /* --lock-image-unlocked-groups: last N trunk layer groups stay trainable */
    int lock_text_unlocked_layers;  /* --lock-text-unlocked-layers: last N text layer groups stay trainable */
    int grad_checkpointing;      /* --grad-checkpointing: recompute block activations in the backward */
    const char *save_dir;        /* NULL: no checkpoints */
    int64_t save_every;          /* steps between checkpoints (0: at the end of each epoch) */
    int keep_last;               /* checkpoints kept (0: all) */
    const char *resume;          /* "latest", a checkpoint dir or file */
    const char *log_path;        /* --log: one JSON object per step */
    int log_every;               /* progress line every N steps */
    /* Zero-shot evaluation during training (all NULL: none). */
    const char *zeroshot_data, *zeroshot_classnames, *zeroshot_templates;
    const char *retrieval_data;  /* --retrieval-data: CSV of image paths and captions (recall@K) */
    int64_t eval_every;          /* steps (0: only at the end) */
    const char *plot_path;       /* PNG of loss and zero-shot accuracy (needs gnuplot) */
    const char *args_json;       /* the command line as JSON, stored in checkpoints */
    /* Data parallel (mpirun): --batch-size is per rank, as in open_clip, so the
     * global batch is batch_size × world. */
    dist_ctx *dist;              /* NULL: one process */
    int local_loss, gather_with_grad, zero1;
} train_run_options;

/* Fills open_clip's defaults (lr 5e-4, wd 0.2, betas 0.9/0.98, eps 1e-6,
 * warmup 10000, batch 64, 32 epochs, cosine, tab-separated CSV with filepath
 * and title columns, keep all checkpoints...). */
void train_run_defaults(train_run_options *o);

vt_status train_run(const train_run_options *o, vt_error *err);

#endif
