/* vitamin.c — ViTamin CLIP inference in C.
 *
 * Public API. Everything a caller needs: load a model (open_clip checkpoint in
 * PyTorch .bin or safetensors form), tokenize text, encode images and texts into
 * L2-normalised embeddings. All functions that can fail return a vt_status and,
 * when `err` is non-NULL, fill it with a message that names the file, tensor or
 * argument and says what was expected.
 *
 * Thread safety: no global mutable state. A loaded vt_model is read-only after
 * vt_model_load; any number of threads may call the encode functions on the same
 * model at once (each call uses its own scratch memory).
 */
#ifndef VITAMIN_H
#define VITAMIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VT_OK = 0,
    VT_ERR_ARGUMENT,     /* bad argument from the caller (NULL, negative size, ...) */
    VT_ERR_IO,           /* file missing, unreadable, disk full */
    VT_ERR_FORMAT,       /* file exists but is not what it claims (truncated, corrupt) */
    VT_ERR_UNSUPPORTED,  /* valid file using a feature we do not implement */
    VT_ERR_SHAPE,        /* tensor shape or count does not match the model */
    VT_ERR_DTYPE,        /* tensor dtype not usable */
    VT_ERR_MODEL,        /* unknown model name or inconsistent configuration */
    VT_ERR_NOMEM,        /* allocation failed */
    VT_ERR_VALUE,        /* non-finite weights, invalid UTF-8, ... */
} vt_status;

/* Caller-owned error report. */
typedef struct {
    vt_status status;
    char message[1024];
} vt_error;

const char *vt_status_name(vt_status status);

/* ---------------------------------------------------------------- models */

typedef struct vt_model vt_model;

typedef struct {
    /* open_clip model name ("ViTamin-L-384"), HF repo ("jienengchen/ViTamin-S"),
     * timm trunk or custom "ViTamin-C<w>-N<d>"; NULL: read open_clip_config.json
     * or config.json beside the checkpoint, else `fallback_model_name`, else
     * infer from tensor shapes. */
    const char *model_name;
    /* Nonzero: keep the GEMM weights in bfloat16 (round to nearest even) and
     * multiply with bf16 inputs, accumulating in fp32 — half the weight memory;
     * faster only where the CPU's bf16 units outrun its fp32 FMAs (bench/).
     * Needs AVX512-BF16. Embeddings agree with fp32 to cosine >= 0.999. */
    int bf16;
    /* The model to assume when no config file is beside the checkpoint (the
     * model a hub name stood for, see vt_hub_resolve); NULL: shape inference. */
    const char *fallback_model_name;
    /* Nonzero: run a ViT at this image size instead of its own (open_clip's
     * force_image_size): the positional embedding's grid is resampled as
     * open_clip's resize_pos_embed does (bicubic, antialiased). The size must
     * be a multiple of the patch size. ViTamin's sizes are separate models. */
    int image_size;
} vt_load_options;

/* Loads an open_clip ViTamin checkpoint: PyTorch .bin/.pt (zip + pickle, read
 * without executing anything) or .safetensors; fp32, fp16 or bf16; or a
 * directory holding one (see vt_resolve_checkpoint for names and the hub
 * cache). Every parameter is checked by name and shape; extra tensors are an
 * error. */
vt_status vt_model_load(const char *checkpoint_path, const vt_load_options *options, vt_model **out,
                        vt_error *err);
void vt_model_free(vt_model *model);

typedef struct {
    const char *name;
    int image_size;        /* the image tower's input size (pixels, square) */
    int embed_dim;         /* length of every embedding */
    int has_text;          /* 0 for image-only (timm) checkpoints */
    int context_length;    /* text tokens per string */
    float logit_scale;     /* exp() of the stored parameter: the similarity scale */
    int token_grid;        /* patch tokens per side (image_size / 16) */
    int width;             /* transformer width (dense patch feature size) */
    long long image_params, text_params;
    /* What loading decided that a user should hear, one line each ("" if
     * nothing): a fallback to shape inference, a config field overridden, a
     * preprocessor_config.json that disagrees with the model's transform. */
    const char *notes;
    int depth;             /* transformer blocks of the image tower */
    int patch_stride;      /* pixels per token side: 16 for ViTamin, a ViT's patch size */
} vt_model_info;

void vt_model_get_info(const vt_model *model, vt_model_info *info);

/* Image features from preprocessed pixels [n, 3, S, S] (normalised, NCHW, as
 * open_clip's preprocess makes them). out: [n, embed_dim]; rows L2-normalised
 * when `normalize` is set (F.normalize), raw encode_image output otherwise. */
vt_status vt_encode_pixels(const vt_model *model, const float *pixels, int n, int normalize, float *out,
                           vt_error *err);

/* Decode + open_clip eval transform + encode, for image files (JPEG/PNG/WebP). */
vt_status vt_encode_image_files(const vt_model *model, const char *const *paths, int n, int normalize,
                                float *out, vt_error *err);

/* From 8-bit RGB buffers (HWC, tightly packed), one image each. */
vt_status vt_encode_rgb8(const vt_model *model, const uint8_t *const *rgb, const int *widths,
                         const int *heights, int n, int normalize, float *out, vt_error *err);

/* Dense patch features: the last transformer block's tokens [n, grid*grid, width]
 * (before pooling and fc_norm), for pixels as in vt_encode_pixels. */
vt_status vt_patch_features(const vt_model *model, const float *pixels, int n, float *out, vt_error *err);
/* The same tokens after the tower's final per-token norm, as open_clip's
 * forward_intermediates(normalize_intermediates=True) gives them: a ViT's
 * ln_post. ViTamin pools before its norm (timm fc_norm; its per-token norm is
 * Identity), so for ViTamin these equal vt_patch_features. */
vt_status vt_patch_features_normed(const vt_model *model, const float *pixels, int n, float *out, vt_error *err);

/* Intermediate outputs, as timm's forward_intermediates and the detection /
 * segmentation / LMM code built on these towers take them. A layer is a
 * transformer block index 0 .. depth-1 (negative: from the end, -1 the last,
 * -2 the one LLaVA selects) or one of ViTamin's conv maps below. */
enum {
    VT_LAYER_STEM = 1000,    /* ViTamin: the stem's output, stride 2 */
    VT_LAYER_STAGE1 = 1001,  /* ViTamin: MBConv stage 1, stride 4 */
    VT_LAYER_STAGE2 = 1002,  /* ViTamin: MBConv stage 2, stride 8 */
};
/* A layer's output shape for n images: conv maps NCHW [n, C, H, W] (ndim 4);
 * block tokens [n, tokens, width] (ndim 3; a ViT's class token first). */
vt_status vt_image_layer_shape(const vt_model *model, int layer, int n, int *ndim, int64_t shape[4], vt_error *err);
/* `count` layers' outputs for pixels [n, 3, S, S] in one forward pass: out[k]
 * receives layers[k]'s. norm[k] nonzero (norm may be NULL: none): block
 * tokens through the tower's final per-token norm (timm's norm=True: a ViT's
 * ln_post; Identity for ViTamin, whose fc_norm follows the pool); conv maps
 * are never normed. A layer may be asked for twice (normed and not). */
vt_status vt_image_intermediates(const vt_model *model, const float *pixels, int n, const int *layers,
                                 const int *norm, int count, float *const *out, vt_error *err);
/* Dense image-text embeddings: each patch token of the last block through the
 * tower's head (ViTamin: fc_norm + head.proj; a ViT: ln_post + proj), as the
 * pooled vector goes, L2-normalised when `normalize` is set (FC-CLIP's
 * clip_vis_dense, F-ViT): out [n, grid*grid, embed_dim]. */
vt_status vt_dense_embeddings(const vt_model *model, const float *pixels, int n, int normalize, float *out,
                              vt_error *err);
/* Dense embeddings of an image larger than the model's size S: `image` is one
 * normalised image [3, height, width]; windows of S x S every `stride` pixels,
 * the last row and column of windows flush with the far edge (mmseg's slide
 * inference); each window's vt_dense_embeddings (unnormalised) averaged where
 * windows overlap, then L2-normalised when `normalize` is set. out:
 * [height/p, width/p, embed_dim], p the token stride (16 for ViTamin, the patch
 * size for a ViT); height, width >= S and multiples of p, stride a multiple of p. */
vt_status vt_dense_embeddings_sliding(const vt_model *model, const float *image, int height, int width, int stride,
                                      int normalize, float *out, vt_error *err);

/* Text features from token ids [n, context_length] (see vt_tokenize). */
vt_status vt_encode_tokens(const vt_model *model, const int32_t *ids, int n, int normalize, float *out,
                           vt_error *err);

/* ------------------------------------------------------- architectures */

/* The architectures vitamin.c builds, by open_clip name: index 0 ..
 * vt_model_count() - 1 (ViTamin's family, then open_clip's ViT configs). */
int vt_model_count(void);
const char *vt_model_name(int index);  /* NULL out of range */

/* An architecture's numbers by name (open_clip, timm trunk or custom
 * "ViTamin-C<w>-N<d>" name), as vt_model_get_info gives them for a loaded
 * model, without reading weights: logit_scale 0 and notes "" (no weights). */
vt_status vt_model_describe(const char *name, vt_model_info *info, vt_error *err);

/* --------------------------------------------------------- preprocessing */

/* One input image: set exactly one of the three. */
typedef struct {
    const char *path;                        /* a JPEG/PNG/WebP file, or */
    const uint8_t *encoded;                  /* such a file's bytes in memory, or */
    size_t encoded_length;
    const uint8_t *rgb;                      /* 8-bit RGB pixels, HWC, tightly packed */
    int width, height;
} vt_image_source;

/* open_clip's eval transform alone — Resize(size, bicubic) in the image's own
 * Pillow mode, CenterCrop(size), convert("RGB"), ToTensor, Normalize with
 * OpenAI's CLIP mean/std (every model here uses them) — writing 3*size*size
 * floats in CHW order: one image of what vt_encode_pixels takes. */
vt_status vt_preprocess_image(const vt_image_source *image, int size, float *out, vt_error *err);

/* open_clip's training transform: RandomResizedCrop(size, scale=(scale_min,
 * scale_max), ratio=(3/4, 4/3), bicubic) in the image's own mode, then as
 * above; the box drawn by torchvision's get_params from vitamin's counter RNG
 * keyed by (seed, epoch, sample), as `vitamin train` draws it, so the same
 * key gives the same crop on every machine and thread count. */
typedef struct {
    uint64_t seed;
    int64_t epoch, sample;
    float scale_min, scale_max;  /* 0, 0: open_clip's default (0.9, 1.0) */
} vt_random_crop;
vt_status vt_preprocess_image_train(const vt_image_source *image, const vt_random_crop *crop, int size, float *out,
                                    vt_error *err);

/* ------------------------------------------------- checkpoints by name */

typedef struct {
    /* Never use the network (also when $HF_HUB_OFFLINE is 1/true/yes). */
    int offline;
    /* Progress bar with speed and ETA on stderr while downloading. */
    int progress;
    /* Branch, tag or commit; NULL: "main" (or the "@REV" of the spec). */
    const char *revision;
} vt_hub_options;

typedef struct {
    char path[4096];      /* the checkpoint file */
    char model_name[64];  /* the family member a released name stands for ("" otherwise) */
    char repo[256];       /* "jienengchen/ViTamin-S" when it came from the hub cache ("" otherwise) */
    int downloaded;       /* something was fetched just now */
} vt_checkpoint_ref;

/* What `-m` accepts: a checkpoint file; a directory holding one
 * (open_clip_model.safetensors, open_clip_pytorch_model.bin, model.safetensors
 * or pytorch_model.bin); a hub repo ("hf-hub:jienengchen/ViTamin-L-384px",
 * "jienengchen/ViTamin-S", optionally "@REV"); or a released model's open_clip
 * name ("ViTamin-L-384", pretrained tag datacomp1b). Repos are looked up in
 * the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub: the layout huggingface_hub writes) and, unless
 * offline, downloaded into it when missing (vt_hub_pull). */
vt_status vt_resolve_checkpoint(const char *spec, const vt_hub_options *options, vt_checkpoint_ref *out,
                                vt_error *err);

/* Downloads a repo's config.json, preprocessor_config.json and weights into the
 * Hugging Face cache ($HF_ENDPOINT, default the public hub; $HF_TOKEN sent when
 * set), as huggingface_hub lays it out (blobs named by etag, snapshot links,
 * refs), so both tools share one copy. Interrupted downloads resume (HTTP
 * Range); LFS files are checked against their sha256 before they enter the cache. */
vt_status vt_hub_pull(const char *spec, const vt_hub_options *options, vt_checkpoint_ref *out, vt_error *err);

/* ------------------------------------------------------------- tokenizer */

typedef struct clip_tokenizer vt_tokenizer;

/* NULL path: $VITAMIN_BPE_VOCAB if set, else open_clip's vocabulary built into the library. */
vt_status vt_tokenizer_load(const char *vocab_path, vt_tokenizer **out, vt_error *err);
void vt_tokenizer_free(vt_tokenizer *tokenizer);
/* Exactly `context_length` ids: [SOT] tokens [EOT], truncated with EOT last, 0-padded. */
vt_status vt_tokenize(const vt_tokenizer *tokenizer, const char *utf8_text, int context_length, int32_t *ids,
                      vt_error *err);

/* Tokenize + encode. */
vt_status vt_encode_texts(const vt_model *model, const vt_tokenizer *tokenizer, const char *const *texts,
                          int n, int normalize, float *out, vt_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VITAMIN_H */
