/* open_clip's training image transform, pixel-exact with torchvision + Pillow:
 *
 *   RandomResizedCrop(S, scale, ratio=(3/4, 4/3), BICUBIC) -> convert("RGB")
 *   -> ToTensor -> Normalize(mean, std)
 *
 * The crop box comes from data_crop_params (train/data.h: torchvision's
 * get_params driven by the counter RNG); the crop + resize is
 * img.crop(box).resize((S, S), BICUBIC) in the image's own Pillow mode, as
 * torchvision.transforms.functional.resized_crop does for a PIL image. */
#ifndef VT_TRAIN_AUGMENT_H
#define VT_TRAIN_AUGMENT_H

#include "io/image/image.h"

typedef struct {
    int top, left, height, width;
} crop_box;

/* Crops `box` (inside the image) out of `image`, resizes it to size x size
 * and normalises it into out_chw (3 * size * size floats).
 * rgb_first = 1 converts the image to RGB before cropping, as webdataset's
 * "pilrgb" decoder does for open_clip's tar input; 0 keeps its own mode until
 * after the resize, as open_clip's CSV input does. */
vt_status augment_resized_crop(const decoded_image *image, crop_box box, int size, int rgb_first,
                               const float mean[3], const float std[3], float *out_chw, vt_error *err);

/* The evaluation transform (resize shortest side, centre crop) with the same
 * rgb_first choice. */
vt_status augment_eval_transform(const decoded_image *image, int size, int rgb_first, const float mean[3],
                                 const float std[3], float *out_chw, vt_error *err);

#endif
