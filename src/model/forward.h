/* Forward passes of the towers (image_tower.c, vit_tower.c, text_tower.c) and the
 * scratch memory they run in. All memory a forward pass touches is planned up
 * front from the model and the batch size: one arena, no allocation inside. */
#ifndef VT_MODEL_FORWARD_H
#define VT_MODEL_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* Optional observer of intermediate activations (per-stage parity tests and
 * dense patch features). `shape` is [batch, ...]; layout NHWC for conv maps,
 * [batch, tokens, width] for token sequences. */
typedef void (*vt_trace_fn)(void *user, const char *name, const float *data, int ndim, const int64_t *shape);
typedef struct {
    vt_trace_fn fn;
    void *user;
} vt_trace;

/* Floats of scratch an image forward pass of `batch` images needs. */
size_t image_tower_scratch_floats(const struct vt_model *m, int batch);
/* pixels: [batch, 3, S, S] normalised (NCHW, as open_clip's preprocess gives);
 * out: [batch, E] unnormalised image features (encode_image). */
void image_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                         const vt_trace *trace);

/* The ViT tower's (vit_tower.c); image_tower_* dispatch to them. */
size_t vit_tower_scratch_floats(const struct vt_model *m, int batch);
void vit_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                       const vt_trace *trace);
/* The ConvNeXt tower's (convnext_tower.c); image_tower_* dispatch to them. */
size_t convnext_tower_scratch_floats(const struct vt_model *m, int batch);
void convnext_tower_forward(const struct vt_model *m, const float *pixels, int batch, float *out, float *scratch,
                            const vt_trace *trace);
/* open_clip's head over `rows` head-normed vectors [rows, width]: the linear
 * proj, or timm_proj "mlp" (fc1 + GELU into `hidden` [rows, 2E], fc2). */
void convnext_head(const struct vt_model *m, const float *normed, size_t rows, float *out, float *hidden);
/* patches[b, gy·grid + gx] = pixels[b, :, gy·p .. +p, gx·p .. +p] flattened
 * as (channel, ky, kx), for image size s: conv1's weight [W, 3, p, p] is then
 * a plain [W, 3p²] matrix. Pixels past grid·p (image size not a multiple of
 * p) are dropped, as a stride-p conv drops them. Inference and training. */
void vit_gather_patches(float *patches, const float *pixels, int batch, int s, int p, int grid);
/* open_clip VisionTransformer._pool: pooled [batch, w] from x [batch, t, w]:
 * the class token (row 0), or with pool_avg the mean of the t − 1 patch
 * tokens. Inference and training. */
void vit_pool_tokens(float *pooled, const float *x, int batch, int t, int w, int pool_avg);
/* ln_post on `rows` tokens [rows, width] in place (dense features). */
void vit_tower_final_norm(const struct vt_model *m, float *tokens, size_t rows);
/* The tower's head on each of `rows` token rows [rows, width], as it runs on
 * the pooled vector — ViTamin: fc_norm + head.proj; a ViT: ln_post + proj —
 * normalising `tokens` in place and writing out [rows, embed_dim] (the dense
 * image-text embeddings of FC-CLIP and F-ViT). */
void image_tower_head_tokens(const struct vt_model *m, float *tokens, size_t rows, float *out);

/* One open_clip ResidualAttentionBlock on x [batch, t, w] in place
 * (resblock.c): `act` a vt_act, `hidden` the MLP width; t1 holds batch·t·w
 * floats, big batch·t·max(3w, hidden), attn_scratch as attention_forward's. */
void resblock_forward(const struct vt_model *m, const resblock *blk, float *x, int batch, int t, int w, int heads,
                      int causal, int act, int hidden, float *t1, float *big, float *attn_scratch);

size_t text_tower_scratch_floats(const struct vt_model *m, int batch);
/* ids: [batch, context_length]; out: [batch, E] unnormalised (encode_text). */
void text_tower_forward(const struct vt_model *m, const int32_t *ids, int batch, float *out, float *scratch,
                        const vt_trace *trace);

/* Image features with every traced activation reported to `fn` (tests/tools). */
vt_status vt_encode_pixels_trace(const struct vt_model *m, const float *pixels, int n, float *out, vt_trace_fn fn,
                                 void *user, vt_error *err);

#endif
