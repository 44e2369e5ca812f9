/* Image decoding and the open_clip evaluation transform, pixel-exact with
 * Pillow + torchvision:
 *   PIL.Image.open(path) -> Resize(S, BICUBIC) -> CenterCrop(S) -> convert("RGB")
 *   -> ToTensor -> Normalize(mean, std)
 * Note the order: open_clip resizes the image in its *own* mode and converts to
 * RGB afterwards, so the decoded image keeps its Pillow mode (L, LA, P, RGB,
 * RGBA, CMYK, I;16 ...) until the end. */
#ifndef VT_IO_IMAGE_H
#define VT_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

/* Pillow image modes we meet when decoding JPEG / PNG / WebP. */
typedef enum {
    IMAGE_MODE_L,      /* 8-bit gray */
    IMAGE_MODE_LA,     /* 8-bit gray + alpha */
    IMAGE_MODE_P,      /* 8-bit palette index (+ palette, optional transparency) */
    IMAGE_MODE_RGB,
    IMAGE_MODE_RGBA,
    IMAGE_MODE_CMYK,
    IMAGE_MODE_I16,    /* 16-bit gray ("I;16") */
    IMAGE_MODE_I32,    /* 32-bit signed gray ("I") */
    IMAGE_MODE_1,      /* 1-bit, stored one byte per pixel (0 or 255) */
} image_mode;

typedef struct {
    int width, height;
    image_mode mode;
    int channels;              /* bytes (or 16/32-bit units) per pixel for this mode */
    int bytes_per_channel;     /* 1, 2 or 4 */
    uint8_t *pixels;           /* row-major, interleaved, malloc'd */
    uint8_t palette[256 * 4];  /* IMAGE_MODE_P: RGBA palette entries */
    int palette_size;
} decoded_image;

/* Largest image we accept (pixels). Larger ones fail with VT_ERR_UNSUPPORTED
 * instead of exhausting memory ("decompression bomb"), like Pillow's limit. */
#define IMAGE_MAX_PIXELS (178956970LL)

vt_status image_decode_file(const char *path, decoded_image *out, vt_error *err);
vt_status image_decode_memory(const uint8_t *bytes, size_t size, decoded_image *out, vt_error *err);
void image_free(decoded_image *image);

/* OpenAI CLIP's pixel mean and std (open_clip constants.py), which every
 * ViTamin model normalises with. */
extern const float CLIP_PIXEL_MEAN[3], CLIP_PIXEL_STD[3];

/* The whole open_clip eval transform: writes 3*size*size floats, CHW order. */
vt_status image_preprocess_clip(const decoded_image *image, int size, const float mean[3],
                                const float std[3], float *out_chw, vt_error *err);

/* The same from an 8-bit RGB buffer (HWC), for library callers. */
vt_status image_preprocess_rgb8(const uint8_t *rgb, int width, int height, int size,
                                const float mean[3], const float std[3], float *out_chw,
                                vt_error *err);

/* Intermediate step exposed for tests: the uint8 RGB crop (size*size*3, HWC)
 * that ToTensor would see. */
vt_status image_resize_crop_rgb8(const decoded_image *image, int size, uint8_t *out_hwc,
                                 vt_error *err);

/* Pieces of the transform the training crop (train/augment.c) reuses:
 * Pillow's convert("RGB") of one pixel in the image's mode (I;16 and I clipped,
 * not scaled), and Convert.c's premultiplied-alpha round trip ("RGBA" <->
 * "RGBa", "LA" <-> "La") that Image.resize goes through. */
void image_pixel_to_rgb(const decoded_image *image, const uint8_t *p, uint8_t *rgb);
void image_premultiply_alpha(uint8_t *pixels, size_t count, int channels);
void image_unpremultiply_alpha(uint8_t *pixels, size_t count, int channels);

/* Pillow's name for a mode: "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "1". */
const char *image_mode_name(image_mode mode);

/* image_decode_memory with a tighter limit on width * height (at most
 * IMAGE_MAX_PIXELS), for callers that must bound memory, such as the fuzzer. */
vt_status image_decode_memory_limited(const uint8_t *bytes, size_t size, long long max_pixels,
                                      decoded_image *out, vt_error *err);

/* The geometry of open_clip's Resize(size) + CenterCrop(size) for a
 * width x height image: torchvision's shortest-side output size and the crop's
 * top-left corner inside it. */
typedef struct {
    int resized_width, resized_height;
    int crop_left, crop_top;
} image_crop_plan;

vt_status image_plan_resize_crop(int width, int height, int size, image_crop_plan *plan,
                                 vt_error *err);

#endif
