/* open_clip's tower locking (--lock-image / --lock-text and their
 * --lock-image-unlocked-groups / --lock-text-unlocked-layers), as a frozen
 * flag per tensor of the flat parameter table (train/params.h). */
#ifndef VT_TRAIN_LOCK_H
#define VT_TRAIN_LOCK_H

#include "train/params.h"

/* Writes frozen[i] (1 = no gradient, no optimizer update) for every tensor of
 * p. A tower that is not locked stays trainable; logit_scale and the image
 * head projection (visual.head.proj) are never frozen. Unlocked counts are
 * >= 0; 0 freezes the whole trunk / text tower, a count above the number of
 * groups unlocks everything, as in open_clip. */
void train_lock_apply(const train_params *p, unsigned char *frozen, int lock_image, int image_unlocked_groups,
                      int lock_text, int text_unlocked_layers);

#endif
