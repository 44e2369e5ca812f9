/* RandomResizedCrop for training (see augment.h): torchvision's get_params
 * on the counter RNG, then Pillow's crop + bicubic resize in the image's mode.
 * The RGB conversion and ToTensor/Normalize are image_preprocess.c's: the
 * resized S x S window is handed to image_preprocess_clip, for which it is
 * already the right size (torchvision's Resize and CenterCrop then do nothing). */
#include "train/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/image/pillow_resample.h"
#include "train/data.h"
#include "train/rng.h"

/* ------------------------------------------------------------------------- */
/* torchvision RandomResizedCrop.get_params                                   */
/* ------------------------------------------------------------------------- */

/* torch's float32 uniform_(from, to): from + u * (to - from) computed in
 * float, u a 24-bit uniform (ATen's uniform_real_distribution<float>). */
static float torch_uniform_float(rng_stream *s, float from, float to) {
    float u = rng_stream_float(s);
    float span = to - from;
    float scaled = u * span;
    return scaled + from;
}

/* Python's round() to int: half to even, which rint does in the default mode. */
static long long python_round(double x) { return (long long)rint(x); }

void data_crop_params(uint64_t seed, int64_t epoch, int64_t sample, int width, int height, float scale_min,
                      float scale_max, int *top, int *left, int *crop_h, int *crop_w) {
    const double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
    rng_stream s = rng_stream_for(seed, RNG_DOMAIN_CROP, (uint64_t)epoch, (uint64_t)sample);
    double area = (double)height * width;
    /* log_ratio = torch.log(torch.tensor(ratio)): float32 */
    float log_ratio_min = logf((float)ratio_min), log_ratio_max = logf((float)ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target_area = area * (double)torch_uniform_float(&s, scale_min, scale_max);
        double aspect_ratio = (double)expf(torch_uniform_float(&s, log_ratio_min, log_ratio_max));
        long long w = python_round(sqrt(target_area * aspect_ratio));
        long long h = python_round(sqrt(target_area / aspect_ratio));
        if (0 < w && w <= width && 0 < h && h <= height) {
            *top = (int)rng_stream_below(&s, (uint64_t)(height - h + 1));
            *left = (int)rng_stream_below(&s, (uint64_t)(width - w + 1));
            *crop_h = (int)h;
            *crop_w = (int)w;
            return;
        }
    }
    /* Fallback to a central crop of the nearest allowed aspect ratio. */
    double in_ratio = (double)width / (double)height;
    long long w, h;
    if (in_ratio < ratio_min) {
        w = width;
        h = python_round((double)w / ratio_min);
    } else if (in_ratio > ratio_max) {
        h = height;
        w = python_round((double)h * ratio_max);
    } else {
        w = width;
        h = height;
    }
    *crop_h = (int)h;
    *crop_w = (int)w;
    *top = (int)((height - h) / 2);
    *left = (int)((width - w) / 2);
}

/* ------------------------------------------------------------------------- */
/* convert("RGB") for webdataset's "pilrgb" decode (Pillow's Convert.c, the  */
/* same formulas as image_preprocess.c's pixel_to_rgb)                        */
/* ------------------------------------------------------------------------- */

static size_t pixel_bytes(const decoded_image *image) {
    return (size_t)image->channels * (size_t)image->bytes_per_channel;
}

/* Copies `box` out of `image`, converting to RGB when rgb is set. */
static void copy_box(const decoded_image *image, crop_box box, int to_rgb, uint8_t *out) {
    size_t pixel = pixel_bytes(image);
    for (int y = 0; y < box.height; y++) {
        const uint8_t *row = image->pixels + ((size_t)(box.top + y) * image->width + box.left) * pixel;
        if (!to_rgb) {
            memcpy(out + (size_t)y * box.width * pixel, row, (size_t)box.width * pixel);
            continue;
        }
        uint8_t *dst = out + (size_t)y * box.width * 3;
        for (int x = 0; x < box.width; x++) image_pixel_to_rgb(image, row + x * pixel, dst + 3 * x);
    }
}

/* ------------------------------------------------------------------------- */
/* Image.resize in the crop's mode                                            */
/* ------------------------------------------------------------------------- */

/* `crop` (a decoded_image of the crop box, own mode or RGB) resized to
 * size x size into `out` (same mode). Image.resize: same size = copy; "1"
 * and "P" always NEAREST; "LA"/"RGBA" through their premultiplied forms. */
static vt_status resize_crop(decoded_image *crop, int size, uint8_t *out, vt_error *err) {
    size_t pixel = pixel_bytes(crop);
    if (crop->width == size && crop->height == size) {
        memcpy(out, crop->pixels, (size_t)size * size * pixel);
        return VT_OK;
    }
    resample_sample_type type = crop->mode == IMAGE_MODE_I16   ? RESAMPLE_U16
                                : crop->mode == IMAGE_MODE_I32 ? RESAMPLE_I32
                                                               : RESAMPLE_U8;
    resample_image in = {crop->width, crop->height, crop->channels, type, crop->pixels};
    resample_image result = {0};
    result.pixels = out;
    resample_window window = {0, 0, size, size};
    if (crop->mode == IMAGE_MODE_1 || crop->mode == IMAGE_MODE_P)
        return pillow_resize_nearest(&in, size, size, window, &result, err);
    int alpha = crop->mode == IMAGE_MODE_LA || crop->mode == IMAGE_MODE_RGBA;
    if (alpha) image_premultiply_alpha(crop->pixels, (size_t)crop->width * crop->height, crop->channels);
    vt_status st = pillow_resize_bicubic(&in, size, size, window, &result, err);
    if (st == VT_OK && alpha) image_unpremultiply_alpha(out, (size_t)size * size, crop->channels);
    return st;
}

/* ------------------------------------------------------------------------- */
/* Entry points                                                               */
/* ------------------------------------------------------------------------- */

static vt_status check_image(const decoded_image *image, int size, vt_error *err) {
    if (!image || !image->pixels || image->width < 1 || image->height < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "augment: empty image");
    if (size < 1 || size > 65500) return vt_fail(err, VT_ERR_ARGUMENT, "augment: output size %d outside 1..65500", size);
    return VT_OK;
}

vt_status augment_resized_crop(const decoded_image *image, crop_box box, int size, int rgb_first,
                               const float mean[3], const float std[3], float *out_chw, vt_error *err) {
    vt_status st = check_image(image, size, err);
    if (st != VT_OK) return st;
    if (box.top < 0 || box.left < 0 || box.height < 1 || box.width < 1 || box.top > image->height - box.height ||
        box.left > image->width - box.width)
        return vt_fail(err, VT_ERR_ARGUMENT, "augment: crop box (top %d, left %d, %dx%d) outside the %dx%d image",
                       box.top, box.left, box.width, box.height, image->width, image->height);

    /* The crop as its own image; it carries the palette for mode P. */
    decoded_image crop = *image;
    crop.width = box.width;
    crop.height = box.height;
    if (rgb_first) {
        crop.mode = IMAGE_MODE_RGB;
        crop.channels = 3;
        crop.bytes_per_channel = 1;
    }
    size_t pixel = pixel_bytes(&crop);
    crop.pixels = malloc((size_t)box.width * box.height * pixel);
    uint8_t *window = malloc((size_t)size * size * pixel);
    if (!crop.pixels || !window) {
        free(crop.pixels);
        free(window);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory cropping %dx%d", box.width, box.height);
    }
    copy_box(image, box, rgb_first, crop.pixels);
    st = resize_crop(&crop, size, window, err);
    if (st == VT_OK) {
        decoded_image resized = crop;
        resized.width = resized.height = size;
        resized.pixels = window;
        st = image_preprocess_clip(&resized, size, mean, std, out_chw, err);
    }
    free(crop.pixels);
    free(window);
    return st;
}

vt_status augment_eval_transform(const decoded_image *image, int size, int rgb_first, const float mean[3],
                                 const float std[3], float *out_chw, vt_error *err) {
    vt_status st = check_image(image, size, err);
    if (st != VT_OK) return st;
    if (!rgb_first || image->mode == IMAGE_MODE_RGB)
        return image_preprocess_clip(image, size, mean, std, out_chw, err);
    crop_box all = {0, 0, image->height, image->width};
    uint8_t *rgb = malloc((size_t)image->width * image->height * 3);
    if (!rgb) return vt_fail(err, VT_ERR_NOMEM, "out of memory converting a %dx%d image", image->width, image->height);
    copy_box(image, all, 1, rgb);
    st = image_preprocess_rgb8(rgb, image->width, image->height, size, mean, std, out_chw, err);
    free(rgb);
    return st;
}
