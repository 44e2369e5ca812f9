/* Pillow's Image.resize, reproduced bit for bit (Pillow 13, src/libImaging/Resample.c
 * and Geometry.c), for the two filters open_clip's eval transform can reach:
 *   - bicubic (Keys, a = -0.5, antialiased when shrinking), Pillow's default;
 *   - nearest, which Image.resize forces for modes "1" and "P".
 *
 * Both compute only a rectangular *window* of the full-size output: open_clip
 * resizes and then centre-crops, and every output pixel of Pillow's resize
 * depends only on its own coordinates, so computing just the crop gives the same
 * bytes without allocating e.g. the 224 x 746666 image a 3 x 10000 input becomes.
 *
 * Images here are plain interleaved sample arrays; the Pillow mode decides which
 * sample type (and therefore which of Pillow's code paths) is used:
 *   RESAMPLE_U8  L, LA/La, RGB, RGBA/RGBa, CMYK, P, 1   (ImagingResample*_8bpc)
 *   RESAMPLE_U16 I;16                                   (ImagingResample*_16bpc)
 *   RESAMPLE_I32 I                                      (ImagingResample*_32bpc)
 * Each channel is filtered independently, so the channel order does not matter. */
#ifndef VT_IO_PILLOW_RESAMPLE_H
#define VT_IO_PILLOW_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

typedef enum {
    RESAMPLE_U8,   /* uint8_t samples */
    RESAMPLE_U16,  /* uint16_t samples, host byte order */
    RESAMPLE_I32,  /* int32_t samples, host byte order */
} resample_sample_type;

/* An image as the resampler sees it: width x height pixels, `channels`
 * interleaved samples per pixel, rows packed without padding. */
typedef struct {
    int width, height;
    int channels;
    resample_sample_type type;
    void *pixels;
} resample_image;

/* The part of a (virtual) out_width x out_height resize result to compute. */
typedef struct {
    int left, top, width, height;
} resample_window;

/* Bytes per sample of a resample_sample_type (1, 2 or 4). */
size_t resample_sample_size(resample_sample_type type);

/* Pillow's bicubic kernel (Resample.c: bicubic_filter), support 2. */
double pillow_bicubic_filter(double x);

/* Resizes `in` to out_width x out_height with Pillow's BICUBIC filter and writes
 * the pixels inside `window` to out->pixels (window.width x window.height pixels,
 * same channels and type as `in`; out->pixels must be allocated by the caller,
 * and out's width/height/channels/type are filled in here). */
vt_status pillow_resize_bicubic(const resample_image *in, int out_width, int out_height,
                                resample_window window, resample_image *out, vt_error *err);

/* Whether Pillow 13's ImagingResampleInner runs the vertical pass before the
 * horizontal one for an in_width x in_height -> out_width x out_height resize:
 * when the height shrinks by more than twice as many pixels as the width does
 * (Pillow PR #9549; checked against Pillow 13.0.0 on thousands of sizes in
 * L, I;16, I and F, strict ">" at the boundary). The passes round to the sample
 * type in between, so the order changes output bytes; pillow_resize_bicubic
 * follows it. */
int pillow_resize_vertical_first(int in_width, int in_height, int out_width, int out_height);

/* The same with Pillow's NEAREST filter (Geometry.c: ImagingScaleAffine). */
vt_status pillow_resize_nearest(const resample_image *in, int out_width, int out_height,
                                resample_window window, resample_image *out, vt_error *err);

#endif
