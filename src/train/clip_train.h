/* Training forward and backward of a whole CLIP model (a ViTamin, ViT or
 * ConvNeXt image tower, the CLIP text tower) on the flat
 * parameter buffer (train/params.h): each tower's forward keeps what its
 * backward needs; the backward accumulates into train_params.grads.
 *
 * One step of the loop (train/trainer.c):
 *   clip_train_forward(batch) → image and text features (unnormalised)
 *   clip_loss_forward_backward(features) → loss, d features, d logit_scale
 *   clip_train_backward(d features) → parameter gradients (+=)
 * Gradient accumulation (open_clip --accum-freq) runs the forward once more per
 * micro-batch and back-propagates its slice of the full batch's d features. */
#ifndef VT_TRAIN_CLIP_TRAIN_H
#define VT_TRAIN_CLIP_TRAIN_H

#include <stdint.h>

#include "train/params.h"
#include "vitamin.h"

typedef struct {
    int batch;          /* largest micro-batch passed to clip_train_forward */
    float drop_path;    /* stochastic depth of the transformer blocks: rate i·r/(N_B−1) for block i
                           (timm linspace(0, r, depth)); open_clip's ViTamin configs use 0.1 */
    float patch_dropout; /* a ViT's open_clip PatchDropout (--force-patch-dropout): each image keeps
                           max(1, int(N·(1 − p))) of its N patch tokens (and the class token),
                           drawn per (step, sample) like the drop-path masks; 0: off */
    uint64_t seed;      /* keys the drop-path masks */
    int recompute;      /* open_clip --grad-checkpointing: keep only each block's input (MBConv and
                           transformer blocks, both towers) and re-run the block's forward right before
                           its backward; same results bit for bit, a fraction of the activation memory */
} clip_train_options;

typedef struct image_train_state image_train_state;
typedef struct vit_train_state vit_train_state;
typedef struct convnext_train_state convnext_train_state;
typedef struct text_train_state text_train_state;

typedef struct {
    train_params *params;
    clip_train_options options;
    unsigned char *frozen;  /* [params->count]: 1 = no gradient (--lock-image / --lock-text) */
    image_train_state *image; /* the ViTamin image tower, or */
    vit_train_state *vit;     /* the ViT one, or */
    convnext_train_state *convnext; /* the ConvNeXt one (cfg.image_tower) */
    text_train_state *text;
} clip_trainer;

/* VT_OK if the trainer can train `cfg`'s towers, else an error saying why. */
vt_status clip_train_supports(const vt_model_config *cfg, vt_error *err);
vt_status clip_trainer_create(train_params *params, const clip_train_options *options, clip_trainer **out,
                              vt_error *err);
void clip_trainer_free(clip_trainer *trainer);

/* Call after changing trainer->frozen (re-resolves which gradients to compute). */
vt_status clip_trainer_update_frozen(clip_trainer *trainer, vt_error *err);

/* Forward of n <= options.batch samples: pixels [n, 3, S, S] (CHW, normalised),
 * tokens [n, context_length]. Writes image_features, text_features [n, E]
 * (unnormalised) and keeps the activations for clip_train_backward.
 * drop_key and first_sample key the drop-path masks: sample i of this call is
 * sample first_sample + i of the global batch (so a re-run of the same
 * micro-batch, or the same sample on another rank, draws the same mask). */
void clip_train_forward(clip_trainer *trainer, const float *pixels, const int32_t *tokens, int n,
                        uint64_t drop_key, int64_t first_sample, float *image_features, float *text_features);

/* Backward of the last forward: d image / text features [n, E]. Accumulates
 * into params->grads (not logit_scale, whose gradient comes from the loss). */
void clip_train_backward(clip_trainer *trainer, const float *d_image_features, const float *d_text_features);

/* The image tower's backward alone (the trainer overlaps its gradients'
 * all-reduce with the text backward). */
void clip_train_image_backward(clip_trainer *trainer, const float *d_image_features);

/* ---- Per tower (clip_train.c calls these) ---- */
/* ViTamin (image_train.c). */
vt_status image_train_create(clip_trainer *trainer, vt_error *err);
void image_train_free(image_train_state *state);
void image_train_forward(clip_trainer *trainer, const float *pixels, int n, uint64_t drop_key,
                         int64_t first_sample, float *features);
void image_train_backward(clip_trainer *trainer, const float *d_features);

/* ViT (vit_train.c); no drop path (open_clip's VisionTransformer has none). */
vt_status vit_train_create(clip_trainer *trainer, vt_error *err);
void vit_train_free(vit_train_state *state);
void vit_train_forward(clip_trainer *trainer, const float *pixels, int n, uint64_t drop_key, int64_t first_sample,
                       float *features);
/* The patch indices (0 .. N−1) the last forward kept, [n, *kept] per image in
 * the order the tokens ran; NULL without patch dropout (tests compare them). */
const int32_t *vit_train_kept_patches(const clip_trainer *trainer, int *kept);
void vit_train_backward(clip_trainer *trainer, const float *d_features);

/* ConvNeXt (convnext_train.c); drop path over all blocks, as timm. */
vt_status convnext_train_create(clip_trainer *trainer, vt_error *err);
void convnext_train_free(convnext_train_state *state);
void convnext_train_forward(clip_trainer *trainer, const float *pixels, int n, uint64_t drop_key,
                            int64_t first_sample, float *features);
void convnext_train_backward(clip_trainer *trainer, const float *d_features);

vt_status text_train_create(clip_trainer *trainer, vt_error *err);
void text_train_free(text_train_state *state);
void text_train_forward(clip_trainer *trainer, const int32_t *tokens, int n, float *features);
void text_train_backward(clip_trainer *trainer, const float *d_features);

/* Value and gradient pointers of the schema tensor (kind, i, j) for a tower
 * file (model/schema.h); the gradient is NULL when the tensor is frozen. */
typedef struct {
    float *value;
    float *grad;
} train_tensor;
train_tensor clip_trainer_tensor(const clip_trainer *trainer, schema_kind kind, int i, int j);

#endif
