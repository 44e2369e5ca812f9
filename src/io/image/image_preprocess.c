/* open_clip's eval transform (open_clip/transform.py: image_transform with
 * is_train=False, resize_mode "shortest", square size S):
 *
 *   Resize(S, BICUBIC) -> CenterCrop(S) -> convert("RGB") -> ToTensor -> Normalize
 *
 * reproduced byte for byte on top of Pillow's resampling (pillow_resample.c).
 * The resize runs in the image's own Pillow mode; only the S x S crop is ever
 * computed, then converted to RGB with Pillow's Convert.c formulas. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/image/image.h"
#include "io/image/pillow_resample.h"

const float CLIP_PIXEL_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float CLIP_PIXEL_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Largest crop size we accept; far above any CLIP model's input. */
#define IMAGE_MAX_CROP_SIZE 65500

/* ------------------------------------------------------------------------- */
/* Geometry: torchvision Resize(int) and CenterCrop                           */
/* ------------------------------------------------------------------------- */

/* torchvision.transforms.functional.center_crop: int(round((dim - size) / 2.0))
 * with Python's round-half-to-even, done in integers (dim - size >= 0 here). */
static int center_crop_offset(int dim, int size) {
    int twice = dim - size; /* (dim - size) / 2.0 == twice / 2 */
    int half = twice / 2;
    if (twice % 2 == 0) return half;
    return (half % 2 == 0) ? half : half + 1; /* .5: to the even neighbour */
}

vt_status image_plan_resize_crop(int width, int height, int size, image_crop_plan *plan,
                                 vt_error *err) {
    if (!plan) return vt_fail(err, VT_ERR_ARGUMENT, "image_plan_resize_crop: NULL plan");
    if (width < 1 || height < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "image size %dx%d is empty", width, height);
    if (size < 1 || size > IMAGE_MAX_CROP_SIZE)
        return vt_fail(err, VT_ERR_ARGUMENT, "crop size %d outside 1..%d", size,
                       IMAGE_MAX_CROP_SIZE);
    /* _compute_resized_output_size: the short side becomes `size`, the long side
     * int(size * long / short) — Python's true division of exact integers, which
     * a double division of the same (exactly representable) values reproduces. */
    int short_side = width <= height ? width : height;
    int long_side = width <= height ? height : width;
    double scaled = (double)((long long)size * long_side) / short_side;
    if (scaled >= 2147483647.0)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "resizing a %dx%d image to a shortest side of %d gives a %.0f-pixel "
                       "long side, too long to index",
                       width, height, size, scaled);
    int new_long = (int)scaled;
    plan->resized_width = width <= height ? size : new_long;
    plan->resized_height = width <= height ? new_long : size;
    plan->crop_left = center_crop_offset(plan->resized_width, size);
    plan->crop_top = center_crop_offset(plan->resized_height, size);
    return VT_OK;
}

/* ------------------------------------------------------------------------- */
/* Mode bookkeeping                                                           */
/* ------------------------------------------------------------------------- */

static vt_status check_decoded_image(const decoded_image *image, vt_error *err) {
    if (!image || !image->pixels) return vt_fail(err, VT_ERR_ARGUMENT, "image: NULL image");
    if (image->width < 1 || image->height < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "image: empty size %dx%d", image->width,
                       image->height);
    int channels, bytes;
    switch (image->mode) {
    case IMAGE_MODE_L: case IMAGE_MODE_P: case IMAGE_MODE_1: channels = 1; bytes = 1; break;
    case IMAGE_MODE_LA: channels = 2; bytes = 1; break;
    case IMAGE_MODE_RGB: channels = 3; bytes = 1; break;
    case IMAGE_MODE_RGBA: case IMAGE_MODE_CMYK: channels = 4; bytes = 1; break;
    case IMAGE_MODE_I16: channels = 1; bytes = 2; break;
    case IMAGE_MODE_I32: channels = 1; bytes = 4; break;
    default: return vt_fail(err, VT_ERR_ARGUMENT, "image: unknown mode %d", (int)image->mode);
    }
    if (image->channels != channels || image->bytes_per_channel != bytes)
        return vt_fail(err, VT_ERR_ARGUMENT,
                       "image: mode %s needs %d channel(s) of %d byte(s), got %d of %d",
                       image_mode_name(image->mode), channels, bytes, image->channels,
                       image->bytes_per_channel);
    return VT_OK;
}

static resample_sample_type sample_type_of(const decoded_image *image) {
    return image->mode == IMAGE_MODE_I16   ? RESAMPLE_U16
           : image->mode == IMAGE_MODE_I32 ? RESAMPLE_I32
                                           : RESAMPLE_U8;
}

static resample_image resample_view(const decoded_image *image, void *pixels) {
    resample_image view = {image->width, image->height, image->channels, sample_type_of(image),
                           pixels};
    return view;
}

/* ------------------------------------------------------------------------- */
/* Premultiplied alpha around the resize (Image.resize for LA / RGBA)         */
/* ------------------------------------------------------------------------- */

/* Convert.c MULDIV255: a * b / 255, rounded, in integers. */
static inline uint8_t multiply_divide_255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Convert.c rgbA2rgba / lA2la: every colour channel times alpha / 255. */
void image_premultiply_alpha(uint8_t *pixels, size_t count, int channels) {
    for (size_t i = 0; i < count; i++) {
        uint8_t *p = pixels + i * channels;
        unsigned alpha = p[channels - 1];
        for (int c = 0; c < channels - 1; c++) p[c] = multiply_divide_255(p[c], alpha);
    }
}

/* Convert.c rgba2rgbA / la2lA: back to straight alpha, truncating the division;
 * alpha 0 and 255 keep the colour as is. */
void image_unpremultiply_alpha(uint8_t *pixels, size_t count, int channels) {
    for (size_t i = 0; i < count; i++) {
        uint8_t *p = pixels + i * channels;
        unsigned alpha = p[channels - 1];
        if (alpha == 0 || alpha == 255) continue;
        for (int c = 0; c < channels - 1; c++) {
            unsigned v = 255u * p[c] / alpha;
            p[c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Resize + crop in the image's own mode                                      */
/* ------------------------------------------------------------------------- */

/* Image.resize: modes "1" and "P" are always resized with NEAREST; "LA" and
 * "RGBA" go through their premultiplied forms "La" / "RGBa" and back; every
 * other mode uses the requested BICUBIC filter directly. */
static vt_status resize_window_in_mode(const decoded_image *image, const image_crop_plan *plan,
                                       int size, void *window_pixels, vt_error *err) {
    resample_window window = {plan->crop_left, plan->crop_top, size, size};
    resample_image out = {0};
    out.pixels = window_pixels;
    resample_image in = resample_view(image, image->pixels);

    if (image->mode == IMAGE_MODE_1 || image->mode == IMAGE_MODE_P)
        return pillow_resize_nearest(&in, plan->resized_width, plan->resized_height, window,
                                     &out, err);
    if (image->mode != IMAGE_MODE_LA && image->mode != IMAGE_MODE_RGBA)
        return pillow_resize_bicubic(&in, plan->resized_width, plan->resized_height, window,
                                     &out, err);

    size_t count = (size_t)image->width * image->height;
    uint8_t *premultiplied = malloc(count * image->channels);
    if (!premultiplied)
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for a %dx%d premultiplied copy",
                       image->width, image->height);
    memcpy(premultiplied, image->pixels, count * image->channels);
    image_premultiply_alpha(premultiplied, count, image->channels);
    in.pixels = premultiplied;
    vt_status st = pillow_resize_bicubic(&in, plan->resized_width, plan->resized_height, window,
                                         &out, err);
    free(premultiplied);
    if (st == VT_OK) image_unpremultiply_alpha(window_pixels, (size_t)size * size, image->channels);
    return st;
}

/* CenterCrop alone: torchvision's resize returned the image unchanged because
 * its short side already equals `size` (so no premultiply round trip either). */
static void copy_window(const decoded_image *image, const image_crop_plan *plan, int size,
                        uint8_t *window_pixels) {
    size_t pixel = (size_t)image->channels * image->bytes_per_channel;
    for (int y = 0; y < size; y++) {
        const uint8_t *src = image->pixels +
                             ((size_t)(plan->crop_top + y) * image->width + plan->crop_left) *
                                 pixel;
        memcpy(window_pixels + (size_t)y * size * pixel, src, (size_t)size * pixel);
    }
}

/* ------------------------------------------------------------------------- */
/* convert("RGB") (Convert.c)                                                 */
/* ------------------------------------------------------------------------- */

static inline uint8_t clamp_to_byte(long long v) {
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Convert.c cmyk2rgb: nk = 255 - K; channel = nk - MULDIV255(C, nk). */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb) {
    unsigned nk = 255u - cmyk[3];
    for (int c = 0; c < 3; c++) {
        int v = (int)nk - (int)multiply_divide_255(cmyk[c], nk);
        rgb[c] = clamp_to_byte(v);
    }
}

/* One pixel of `image`'s mode to RGB. I;16 and I are clipped to 0..255, not
 * scaled (Pillow 13: I;16 -> RGB gives 255 for every value >= 255). */
void image_pixel_to_rgb(const decoded_image *image, const uint8_t *p, uint8_t *rgb) {
    switch (image->mode) {
    case IMAGE_MODE_RGB:
    case IMAGE_MODE_RGBA: /* alpha dropped, colour not composited */
        memcpy(rgb, p, 3);
        return;
    case IMAGE_MODE_CMYK: cmyk_to_rgb(p, rgb); return;
    case IMAGE_MODE_P: memcpy(rgb, image->palette + 4 * p[0], 3); return;
    case IMAGE_MODE_I16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        rgb[0] = rgb[1] = rgb[2] = clamp_to_byte(v);
        return;
    }
    case IMAGE_MODE_I32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        rgb[0] = rgb[1] = rgb[2] = clamp_to_byte(v);
        return;
    }
    case IMAGE_MODE_1: /* Convert.c bit2rgb: any non-zero byte is white */
        rgb[0] = rgb[1] = rgb[2] = p[0] ? 255 : 0;
        return;
    case IMAGE_MODE_L:
    case IMAGE_MODE_LA: /* alpha dropped */
        rgb[0] = rgb[1] = rgb[2] = p[0];
        return;
    }
}

static void window_to_rgb(const decoded_image *image, const uint8_t *window_pixels,
                          size_t count, uint8_t *rgb) {
    size_t pixel = (size_t)image->channels * image->bytes_per_channel;
    for (size_t i = 0; i < count; i++) image_pixel_to_rgb(image, window_pixels + i * pixel, rgb + 3 * i);
}

/* ------------------------------------------------------------------------- */
/* Entry points                                                               */
/* ------------------------------------------------------------------------- */

vt_status image_resize_crop_rgb8(const decoded_image *image, int size, uint8_t *out_hwc,
                                 vt_error *err) {
    vt_status st = check_decoded_image(image, err);
    if (st != VT_OK) return st;
    if (!out_hwc) return vt_fail(err, VT_ERR_ARGUMENT, "image_resize_crop_rgb8: NULL output");
    image_crop_plan plan;
    st = image_plan_resize_crop(image->width, image->height, size, &plan, err);
    if (st != VT_OK) return st;

    size_t pixel = (size_t)image->channels * image->bytes_per_channel;
    uint8_t *window_pixels = malloc((size_t)size * size * pixel);
    if (!window_pixels)
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for a %dx%d crop", size, size);
    /* torchvision F.resize: `if [image_height, image_width] == output_size: return img` */
    if (plan.resized_width == image->width && plan.resized_height == image->height)
        copy_window(image, &plan, size, window_pixels);
    else
        st = resize_window_in_mode(image, &plan, size, window_pixels, err);
    if (st == VT_OK) window_to_rgb(image, window_pixels, (size_t)size * size, out_hwc);
    free(window_pixels);
    return st;
}

/* ToTensor then Normalize, in float32 and in torchvision's order:
 * x = u8 / 255 (float division), then (x - mean) then / std, HWC -> CHW. */
static void to_tensor_normalize(const uint8_t *rgb, int size, const float mean[3],
                                const float std[3], float *out_chw) {
    size_t plane = (size_t)size * size;
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < plane; i++) {
            float x = (float)rgb[3 * i + c] / 255.0f;
            float centred = x - mean[c];
            out_chw[c * plane + i] = centred / std[c];
        }
    }
}

static vt_status check_normalisation(const float mean[3], const float std[3], float *out,
                                     vt_error *err) {
    if (!mean || !std || !out)
        return vt_fail(err, VT_ERR_ARGUMENT, "image preprocess: NULL mean, std or output");
    for (int c = 0; c < 3; c++) {
        /* torchvision Normalize refuses a zero std ("leading to division by zero") */
        if (std[c] == 0.0f || std[c] != std[c])
            return vt_fail(err, VT_ERR_ARGUMENT, "image preprocess: std[%d] = %g is not usable",
                           c, (double)std[c]);
    }
    return VT_OK;
}

vt_status image_preprocess_clip(const decoded_image *image, int size, const float mean[3],
                                const float std[3], float *out_chw, vt_error *err) {
    vt_status st = check_normalisation(mean, std, out_chw, err);
    if (st != VT_OK) return st;
    if (size < 1 || size > IMAGE_MAX_CROP_SIZE)
        return vt_fail(err, VT_ERR_ARGUMENT, "crop size %d outside 1..%d", size,
                       IMAGE_MAX_CROP_SIZE);
    uint8_t *rgb = malloc((size_t)size * size * 3);
    if (!rgb) return vt_fail(err, VT_ERR_NOMEM, "out of memory for a %dx%d crop", size, size);
    st = image_resize_crop_rgb8(image, size, rgb, err);
    if (st == VT_OK) to_tensor_normalize(rgb, size, mean, std, out_chw);
    free(rgb);
    return st;
}

vt_status image_preprocess_rgb8(const uint8_t *rgb, int width, int height, int size,
                                const float mean[3], const float std[3], float *out_chw,
                                vt_error *err) {
    if (!rgb) return vt_fail(err, VT_ERR_ARGUMENT, "image_preprocess_rgb8: NULL pixels");
    decoded_image view;
    memset(&view, 0, sizeof view);
    view.width = width;
    view.height = height;
    view.mode = IMAGE_MODE_RGB;
    view.channels = 3;
    view.bytes_per_channel = 1;
    /* The pipeline only reads the pixels; the cast just fits decoded_image. */
    view.pixels = (uint8_t *)rgb;
    return image_preprocess_clip(&view, size, mean, std, out_chw, err);
}
