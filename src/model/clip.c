/* Public model API (include/vitamin.h): loading, batching, normalisation. The
 * towers themselves live in image_tower.c and text_tower.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "model/checkpoint_keys.h"
#include "model/config_vit.h"
#include "io/image/image.h"
#include "io/text/tokenizer.h"
#include "kernels/kernels.h"
#include "kernels/norm.h"
#include "model/forward.h"
#include "model/config_resolve.h"
#include "model/weights.h"

/* Images per forward pass: bounds scratch memory (ViTamin-L at 224 needs about
 * 0.2 GB per image) while keeping GEMMs tall enough to be efficient. */
enum { IMAGE_CHUNK = 8, TEXT_CHUNK = 64 };


void vt_model_free(vt_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->owned_count; i++) free(m->owned[i]);
    free(m->owned);
    free(m->vit);
    free(m->vit_blocks);
    for (int s = 0; s < 4; s++) free(m->cnx_stages[s].blocks);
    free(m->text);
    ckpt_close(m->checkpoint);
    scratch_pool_destroy(&m->scratch);
    free(m);
}

/* The part of loading shared by files and in-memory tensors: ISA and bf16
 * choice, then config (given or resolved from the file) and binding. Takes
 * ownership of `checkpoint` (NULL: open `path`). */
static vt_status load_model(const char *path, ckpt_file *checkpoint, const vt_model_config *cfg,
                            const vt_load_options *options, vt_model **out, vt_error *err) {
    *out = NULL;
    vt_model *m = calloc(1, sizeof *m);
    if (!m) {
        ckpt_close(checkpoint);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    scratch_pool_init(&m->scratch);
    m->checkpoint = checkpoint;
    vt_kernels kernels;
    vt_status st = vt_kernels_select(&kernels, err);
    m->isa = kernels.isa;
    m->bf16 = options && options->bf16;
    if (!st && m->bf16) st = vt_kernels_require_bf16(&kernels, err);
    m->amx = m->bf16 && kernels.amx;
    if (!st && !m->checkpoint) st = model_checkpoint_open(path, &m->checkpoint, err);
    if (!st) {
        if (cfg) m->cfg = *cfg;
        else
            st = config_resolve(path, m->checkpoint, options ? options->model_name : NULL,
                                options ? options->fallback_model_name : NULL, &m->cfg, &m->notes, err);
        if (!st) st = vt_config_validate(&m->cfg, err);
        if (!st && options && options->image_size && options->image_size != m->cfg.image_size)
            st = vit_config_force_image_size(&m->cfg, options->image_size, &m->vit_pos_stored_grid, err);
        if (!st) st = weights_bind(m, err);
        /* Packed copies now hold most weights; in-place tensors fault back in on use. */
        if (!st) ckpt_release_pages(m->checkpoint);
        if (st) vt_error_prefix(err, "%s: ", path);
    }
    if (st) {
        vt_model_free(m);
        return st;
    }
    *out = m;
    return VT_OK;
}

vt_status vt_model_load(const char *path, const vt_load_options *options, vt_model **out, vt_error *err) {
    if (!path || !out) return vt_fail(err, VT_ERR_ARGUMENT, "vt_model_load: path and out must not be NULL");
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
        /* A directory stands for the checkpoint in it, as for -m (never the network). */
        vt_checkpoint_ref ref;
        vt_hub_options offline = {.offline = 1};
        vt_status s = vt_resolve_checkpoint(path, &offline, &ref, err);
        return s ? s : load_model(ref.path, NULL, NULL, options, out, err);
    }
    return load_model(path, NULL, NULL, options, out, err);
}

vt_status model_load_from_checkpoint(ckpt_file *checkpoint, const vt_model_config *cfg, vt_model **out,
                                     vt_error *err) {
    return load_model(ckpt_label(checkpoint), checkpoint, cfg, NULL, out, err);
}

void vt_model_get_info(const vt_model *m, vt_model_info *info) {
    memset(info, 0, sizeof *info);
    info->name = m->cfg.name;
    info->image_size = m->cfg.image_size;
    info->embed_dim = m->cfg.embed_dim;
    info->has_text = m->has_text;
    info->context_length = m->cfg.context_length;
    info->logit_scale = expf(m->logit_scale);
    info->token_grid = vt_config_token_grid(&m->cfg);
    info->width = m->cfg.width;
    info->image_params = vt_config_image_params(&m->cfg);
    info->text_params = m->has_text ? vt_config_text_params(&m->cfg) : 0;
    info->notes = m->notes.text;
    info->depth = m->cfg.depth;
    info->patch_stride = vt_config_token_stride(&m->cfg);
}


/* Runs the image tower chunk by chunk; `trace` may capture activations. */
static vt_status encode_pixels_traced(const vt_model *m, const float *pixels, int n, int normalize, float *out,
                                      const vt_trace *trace, vt_error *err) {
    if (!m || (!pixels && n) || (!out && n) || n < 0)
        return vt_fail(err, VT_ERR_ARGUMENT, "vt_encode_pixels: NULL model/buffer or negative count");
    int chunk = n < IMAGE_CHUNK ? n : IMAGE_CHUNK;
    if (chunk == 0) return VT_OK;
    size_t scratch_floats;
    float *scratch = scratch_pool_take((scratch_pool *)&m->scratch, image_tower_scratch_floats(m, chunk), &scratch_floats);
    if (!scratch) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the image forward pass (batch %d)", chunk);
    size_t image_floats = (size_t)3 * m->cfg.image_size * m->cfg.image_size;
    for (int i = 0; i < n; i += chunk) {
        int b = n - i < chunk ? n - i : chunk;
        float *o = out + (size_t)i * m->cfg.embed_dim;
        image_tower_forward(m, pixels + (size_t)i * image_floats, b, o, scratch, trace);
        if (normalize) l2_normalize_rows(o, o, (size_t)b, m->cfg.embed_dim);
    }
    scratch_pool_give((scratch_pool *)&m->scratch, scratch, scratch_floats);
    return VT_OK;
}

vt_status vt_encode_pixels(const vt_model *m, const float *pixels, int n, int normalize, float *out, vt_error *err) {
    return encode_pixels_traced(m, pixels, n, normalize, out, NULL, err);
}

/* Exposed to tests/tools/trace_dump.c through forward.h's vt_trace. */
vt_status vt_encode_pixels_trace(const vt_model *m, const float *pixels, int n, float *out, vt_trace_fn fn,
                                 void *user, vt_error *err) {
    vt_trace trace = {fn, user};
    return encode_pixels_traced(m, pixels, n, 0, out, &trace, err);
}

vt_status vt_encode_image_files(const vt_model *m, const char *const *paths, int n, int normalize, float *out,
                                vt_error *err) {
    if (!m || (!paths && n) || n < 0) return vt_fail(err, VT_ERR_ARGUMENT, "vt_encode_image_files: bad arguments");
    int s = m->cfg.image_size;
    size_t image_floats = (size_t)3 * s * s;
    int chunk = n < IMAGE_CHUNK ? n : IMAGE_CHUNK;
    if (!chunk) return VT_OK;
    float *pixels = malloc(chunk * image_floats * sizeof(float));
    if (!pixels) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status st = VT_OK;
    for (int i = 0; i < n && !st; i += chunk) {
        int b = n - i < chunk ? n - i : chunk;
        vt_status local[IMAGE_CHUNK] = {0};
        vt_error local_err[IMAGE_CHUNK];
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < b; j++) {
            decoded_image img;
            local[j] = image_decode_file(paths[i + j], &img, &local_err[j]);
            if (!local[j]) {
                local[j] = image_preprocess_clip(&img, s, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, pixels + j * image_floats, &local_err[j]);
                image_free(&img);
            }
        }
        for (int j = 0; j < b && !st; j++)
            if (local[j]) {
                if (err) *err = local_err[j];
                st = local[j];
            }
        if (!st) st = vt_encode_pixels(m, pixels, b, normalize, out + (size_t)i * m->cfg.embed_dim, err);
    }
    free(pixels);
    return st;
}

vt_status vt_encode_rgb8(const vt_model *m, const uint8_t *const *rgb, const int *widths, const int *heights, int n,
                         int normalize, float *out, vt_error *err) {
    if (!m || (n && (!rgb || !widths || !heights)) || n < 0)
        return vt_fail(err, VT_ERR_ARGUMENT, "vt_encode_rgb8: bad arguments");
    int s = m->cfg.image_size;
    size_t image_floats = (size_t)3 * s * s;
    float *pixels = malloc((n ? n : 1) * image_floats * sizeof(float));
    if (!pixels) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status st = VT_OK;
    for (int i = 0; i < n && !st; i++) {
        st = image_preprocess_rgb8(rgb[i], widths[i], heights[i], s, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, pixels + i * image_floats, err);
        if (st) vt_error_prefix(err, "image %d: ", i);
    }
    if (!st) st = vt_encode_pixels(m, pixels, n, normalize, out, err);
    free(pixels);
    return st;
}

vt_status vt_encode_tokens(const vt_model *m, const int32_t *ids, int n, int normalize, float *out, vt_error *err) {
    if (!m || n < 0 || (n && (!ids || !out))) return vt_fail(err, VT_ERR_ARGUMENT, "vt_encode_tokens: bad arguments");
    if (!m->has_text)
        return vt_fail(err, VT_ERR_MODEL, "model %s was loaded without a text tower (image-only checkpoint)", m->cfg.name);
    int ctx = m->cfg.context_length;
    for (size_t i = 0; i < (size_t)n * ctx; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return vt_fail(err, VT_ERR_VALUE, "token id %d at text %zu position %zu is outside the vocabulary [0, %d)",
                           ids[i], i / ctx, i % ctx, m->cfg.vocab_size);
    int chunk = n < TEXT_CHUNK ? n : TEXT_CHUNK;
    if (!chunk) return VT_OK;
    size_t scratch_floats;
    float *scratch = scratch_pool_take((scratch_pool *)&m->scratch, text_tower_scratch_floats(m, chunk), &scratch_floats);
    if (!scratch) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the text forward pass");
    for (int i = 0; i < n; i += chunk) {
        int b = n - i < chunk ? n - i : chunk;
        float *o = out + (size_t)i * m->cfg.embed_dim;
        text_tower_forward(m, ids + (size_t)i * ctx, b, o, scratch, NULL);
        if (normalize) l2_normalize_rows(o, o, (size_t)b, m->cfg.embed_dim);
    }
    scratch_pool_give((scratch_pool *)&m->scratch, scratch, scratch_floats);
    return VT_OK;
}

vt_status vt_tokenizer_load(const char *vocab_path, vt_tokenizer **out, vt_error *err) {
    return clip_tokenizer_load(vocab_path, out, err);
}

void vt_tokenizer_free(vt_tokenizer *t) { clip_tokenizer_free(t); }

vt_status vt_tokenize(const vt_tokenizer *t, const char *text, int context_length, int32_t *ids, vt_error *err) {
    return clip_tokenize(t, text, context_length, ids, err);
}

vt_status vt_encode_texts(const vt_model *m, const vt_tokenizer *t, const char *const *texts, int n, int normalize,
                          float *out, vt_error *err) {
    if (!m || !t || n < 0 || (n && !texts)) return vt_fail(err, VT_ERR_ARGUMENT, "vt_encode_texts: bad arguments");
    int ctx = m->cfg.context_length;
    int32_t *ids = malloc(((size_t)n + 1) * ctx * sizeof(int32_t));
    if (!ids) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status st = VT_OK;
    for (int i = 0; i < n && !st; i++) {
        st = clip_tokenize(t, texts[i], ctx, ids + (size_t)i * ctx, err);
        if (st) vt_error_prefix(err, "text %d: ", i);
    }
    if (!st) st = vt_encode_tokens(m, ids, n, normalize, out, err);
    free(ids);
    return st;
}
