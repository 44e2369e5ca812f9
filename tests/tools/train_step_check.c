/* Gradient / optimizer parity driver for tests/reference/test_train_parity.py:
 * loads a model's weights into the training parameter buffer, runs `steps`
 * AdamW steps with open_clip's cosine schedule on one fixed batch, and writes
 *   OUT/grads.safetensors    gradients of the first step, by open_clip name
 *   OUT/features.npy         [2n, E] image then text features of the first step
 *   OUT/losses.npy           [steps] loss of every step
 *   OUT/final.safetensors    weights after the last step
 * MODEL: a registered name or an open_clip_config.json path.
 * usage: train_step_check MODEL CKPT PIXELS.npy TOKENS.npy OUT STEPS LR WD WARMUP MICRO_BATCH [CLIP_NORM]
 *                         [--recompute] [--lock-image N] [--lock-text N] [--drop-path R]
 *   CKPT "-": open_clip's fresh init (seed 0) instead of a checkpoint;
 *   --recompute: clip_train_options.recompute (--grad-checkpointing);
 *   --lock-image N / --lock-text N: lock the tower with N unlocked groups / layers (train/lock.h);
 *   --drop-path R: stochastic depth (default 0, as open_clip in eval mode; for recompute checks);
 *   --patch-dropout P: a ViT's patch dropout; its picks (the same every step: drop key 0) go to OUT/kept.npy;
 * and prints the peak resident memory (VmHWM) on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/checkpoint/checkpoint.h"
#include "io/serial/npy.h"
#include "model/config.h"
#include "model/config_json.h"
#include "model/schema.h"
#include "train/lock.h"
#include "train/trainer.h"

static int fail(const vt_error *err) {
    fprintf(stderr, "train_step_check: %s\n", err->message);
    return 1;
}

static vt_status write_tensors(const char *path, const train_params *p, const float *base, vt_error *err) {
    ckpt_tensor *t = calloc((size_t)p->count, sizeof *t);
    for (int i = 0; i < p->count; i++) {
        const train_param *q = &p->params[i];
        t[i].name = malloc(160);
        schema_saved_name(&p->cfg, q->name, t[i].name, 160); /* open_clip's names for this model */
        t[i].dtype = VT_DTYPE_F32;
        t[i].ndim = q->ndim;
        t[i].numel = (int64_t)q->count;
        for (int d = 0; d < q->ndim; d++) t[i].shape[d] = q->shape[d];
        t[i].data = base + q->offset;
    }
    vt_status st = safetensors_write(path, t, (size_t)p->count, NULL, err);
    for (int i = 0; i < p->count; i++) free(t[i].name);
    free(t);
    return st;
}

/* The weights: a checkpoint, or "-" for a fresh init. */
static vt_status load_weights(train_params *p, const char *ckpt, vt_error *err) {
    if (strcmp(ckpt, "-")) return train_params_load_checkpoint(p, ckpt, err);
    train_params_init(p, 0);
    return VT_OK;
}

/* MODEL: a registered name, or an open_clip_config.json (custom test towers). */
static vt_status model_config(const char *model, vt_model_config *cfg, vt_error *err) {
    size_t n = strlen(model);
    if (n < 5 || strcmp(model + n - 5, ".json")) return vt_config_lookup(model, cfg, err);
    int found = 0;
    vt_status st = config_read_json(model, cfg, &found, NULL, err);
    if (!st && !found) st = vt_fail(err, VT_ERR_FORMAT, "%s describes no model", model);
    return st;
}

static void print_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) fprintf(stderr, "peak_rss_kb %ld\n", strtol(line + 6, NULL, 10));
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 11) {
        fprintf(stderr, "usage: train_step_check MODEL CKPT PIXELS.npy TOKENS.npy OUT STEPS LR WD WARMUP MICRO_BATCH "
                        "[CLIP_NORM] [--recompute] [--lock-image N] [--lock-text N] [--drop-path R]\n");
        return 2;
    }
    const char *out = argv[5];
    int steps = atoi(argv[6]), warmup = atoi(argv[9]), micro = atoi(argv[10]);
    double lr = atof(argv[7]), clip_norm = 0.0;
    float drop_path = 0.0f, patch_dropout = 0.0f;
    int recompute = 0, lock_image = 0, image_groups = 0, lock_text = 0, text_layers = 0;
    for (int i = 11; i < argc; i++) {
        if (!strcmp(argv[i], "--recompute")) recompute = 1;
        else if (!strcmp(argv[i], "--lock-image") && i + 1 < argc) lock_image = 1, image_groups = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lock-text") && i + 1 < argc) lock_text = 1, text_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--drop-path") && i + 1 < argc) drop_path = (float)atof(argv[++i]);
        else if (!strcmp(argv[i], "--patch-dropout") && i + 1 < argc) patch_dropout = (float)atof(argv[++i]);
        else if (argv[i][0] != '-' || (argv[i][1] >= '0' && argv[i][1] <= '9')) clip_norm = atof(argv[i]);
        else {
            fprintf(stderr, "train_step_check: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    adamw_hparams adam = {0.9f, 0.98f, 1e-6f, (float)atof(argv[8])};
    vt_error err;
    vt_model_config cfg;
    train_params p;
    if (model_config(argv[1], &cfg, &err) || train_params_create(&cfg, &p, &err) ||
        load_weights(&p, argv[2], &err))
        return fail(&err);
    float *pixels, *tok_f;
    int64_t n, px, n2, ctx;
    if (npy_read_f32(argv[3], &pixels, &n, &px, &err) || npy_read_f32(argv[4], &tok_f, &n2, &ctx, &err)) return fail(&err);
    if (n != n2 || ctx != cfg.context_length || px != 3LL * cfg.image_size * cfg.image_size) {
        fprintf(stderr, "train_step_check: inputs do not match the model\n");
        return 1;
    }
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(n * ctx));
    for (int64_t i = 0; i < n * ctx; i++) tokens[i] = (int32_t)tok_f[i];
    trainer *t;
    clip_train_options opt = {.batch = (int)n, .drop_path = drop_path, .patch_dropout = patch_dropout, .seed = 0,
                              .recompute = recompute};
    if (trainer_create(&p, (int)n, micro > 0 ? micro : (int)n, &opt, &t, &err)) return fail(&err);
    train_lock_apply(&p, t->model->frozen, lock_image, image_groups, lock_text, text_layers);
    if (clip_trainer_update_frozen(t->model, &err)) return fail(&err);
    float *losses = calloc((size_t)steps, sizeof(float));
    char path[4096];
    for (int s = 0; s < steps; s++) {
        step_result r;
        double step_lr = lr_cosine(lr, warmup, steps, s);
        if (trainer_step(t, pixels, tokens, (int)n, step_lr, &adam, clip_norm, 0, &r, &err)) return fail(&err);
        losses[s] = (float)r.loss;
    }
    snprintf(path, sizeof path, "%s/losses.npy", out);
    if (npy_write_f32(path, 1, steps, losses, &err)) return fail(&err);
    snprintf(path, sizeof path, "%s/final.safetensors", out);
    if (write_tensors(path, &p, p.values, &err)) return fail(&err);
    /* Raw gradients and features at the initial weights: reload and run the gradient pass only. */
    if (load_weights(&p, argv[2], &err)) return fail(&err);
    size_t e = (size_t)cfg.embed_dim;
    trainer_gradients(t, pixels, tokens, (int)n, 0, NULL);
    snprintf(path, sizeof path, "%s/grads.safetensors", out);
    if (write_tensors(path, &p, p.grads, &err)) return fail(&err);
    /* Features from a whole-batch forward (with micro-batching the stored ones are the last re-run's, equal anyway). */
    float *feats = malloc(sizeof(float) * 2 * (size_t)n * e);
    memcpy(feats, t->image_features, sizeof(float) * (size_t)n * e);
    memcpy(feats + (size_t)n * e, t->text_features, sizeof(float) * (size_t)n * e);
    snprintf(path, sizeof path, "%s/features.npy", out);
    if (npy_write_f32(path, 2 * n, (int64_t)e, feats, &err)) return fail(&err);
    int kept = 0;
    const int32_t *keep = vit_train_kept_patches(t->model, &kept);
    if (keep) { /* patch dropout's picks of that pass (every step drew the same: drop key 0) */
        float *kf = malloc(sizeof(float) * (size_t)n * (size_t)kept);
        for (int64_t i = 0; i < n * kept; i++) kf[i] = (float)keep[i];
        snprintf(path, sizeof path, "%s/kept.npy", out);
        if (npy_write_f32(path, n, kept, kf, &err)) return fail(&err);
        free(kf);
    }
    print_peak_rss();
    printf("ok\n");
    trainer_free(t);
    train_params_free(&p);
    free(losses);
    free(feats);
    free(pixels);
    free(tok_f);
    free(tokens);
    return 0;
}
