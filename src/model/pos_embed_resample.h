/* A ViT's positional embedding on another patch grid, as open_clip's
 * resize_pos_embed makes it when a checkpoint is loaded into a model of
 * another image size (open_clip model.py): the class token's row kept, the
 * grid rows resampled with F.interpolate(mode="bicubic", antialias=True,
 * align_corners=False), which is Pillow's bicubic (Keys a = -0.5, the window
 * clipped at the border and the weights renormalised), width first. */
#ifndef VT_MODEL_POS_EMBED_RESAMPLE_H
#define VT_MODEL_POS_EMBED_RESAMPLE_H

#include "vitamin.h"

/* in: [from² + 1, width]; out: [to² + 1, width]. */
vt_status pos_embed_resample(const float *in, int from, int to, int width, float *out, vt_error *err);

#endif
