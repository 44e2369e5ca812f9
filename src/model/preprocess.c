/* Public preprocessing (include/vitamin.h): open_clip's eval and training
 * transforms for one image from a file, encoded bytes or RGB pixels — the
 * same pipeline the encoders and `vitamin train` run (io/image, train/augment). */
#include <string.h>

#include "vitamin.h"
#include "core/error.h"
#include "io/image/image.h"
#include "train/augment.h"
#include "train/data.h"

/* Decodes (or wraps, for RGB pixels) the one source that is set. *owned says
 * whether `out` must be freed. */
static vt_status open_source(const vt_image_source *src, int size, decoded_image *out, int *owned, vt_error *err) {
    *owned = 0;
    if (!src || !out) return vt_fail(err, VT_ERR_ARGUMENT, "vt_preprocess: NULL argument");
    if (size < 1 || size > 4096) return vt_fail(err, VT_ERR_ARGUMENT, "vt_preprocess: image size %d outside 1..4096", size);
    int set = !!src->path + !!src->encoded + !!src->rgb;
    if (set != 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "vt_image_source: set exactly one of path, encoded, rgb (%d are set)", set);
    if (src->path) {
        vt_status st = image_decode_file(src->path, out, err);
        *owned = !st;
        return st;
    }
    if (src->encoded) {
        vt_status st = image_decode_memory(src->encoded, src->encoded_length, out, err);
        *owned = !st;
        return st;
    }
    if (src->width < 1 || src->height < 1 || (long long)src->width * src->height > IMAGE_MAX_PIXELS)
        return vt_fail(err, VT_ERR_ARGUMENT, "RGB image of %dx%d pixels: width and height must be 1..%lld pixels in all",
                       src->width, src->height, (long long)IMAGE_MAX_PIXELS);
    memset(out, 0, sizeof *out);
    out->width = src->width;
    out->height = src->height;
    out->mode = IMAGE_MODE_RGB;
    out->channels = 3;
    out->bytes_per_channel = 1;
    out->pixels = (uint8_t *)src->rgb;  /* only read; the cast fits decoded_image */
    return VT_OK;
}

vt_status vt_preprocess_image(const vt_image_source *image, int size, float *out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "vt_preprocess_image: NULL output");
    decoded_image img;
    int owned;
    vt_status st = open_source(image, size, &img, &owned, err);
    if (st) return st;
    st = image_preprocess_clip(&img, size, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, out, err);
    if (owned) image_free(&img);
    return st;
}

vt_status vt_preprocess_image_train(const vt_image_source *image, const vt_random_crop *crop, int size, float *out,
                                    vt_error *err) {
    if (!out || !crop) return vt_fail(err, VT_ERR_ARGUMENT, "vt_preprocess_image_train: NULL argument");
    float lo = crop->scale_min, hi = crop->scale_max;
    if (lo == 0.0f && hi == 0.0f) lo = 0.9f, hi = 1.0f;
    if (!(lo > 0.0f && lo <= hi && hi <= 1.0f))
        return vt_fail(err, VT_ERR_ARGUMENT, "crop scale (%g, %g): need 0 < min <= max <= 1", (double)lo, (double)hi);
    decoded_image img;
    int owned;
    vt_status st = open_source(image, size, &img, &owned, err);
    if (st) return st;
    crop_box box;
    data_crop_params(crop->seed, crop->epoch, crop->sample, img.width, img.height, lo, hi, &box.top, &box.left,
                     &box.height, &box.width);
    st = augment_resized_crop(&img, box, size, 0, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, out, err);
    if (owned) image_free(&img);
    return st;
}
