/* The AdamW moments inside open_clip's training checkpoint epoch_N.pt
 * ({"epoch", "name", "state_dict", "optimizer"[, "scaler"]}, torch.save). The
 * optimizer entry is torch's Optimizer.state_dict(): "state" maps a parameter
 * index to {"step", "exp_avg", "exp_avg_sq"}, "param_groups" lists the
 * indices of each group. open_clip_train/main.py builds two groups from
 * model.named_parameters(): first the gain-or-bias parameters (no weight
 * decay), then the rest, so index -> name follows from the parameter table. */
#ifndef VT_TRAIN_OPEN_CLIP_EPOCH_H
#define VT_TRAIN_OPEN_CLIP_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#include "train/params.h"
#include "vitamin.h"

/* Reads the moments of `path` into exp_avg / exp_avg_sq (p's layout; entries
 * the file has no state for are left as they are) and the largest "step" into
 * *step. *found = 0 when the file holds no optimizer (not a torch zip, or no
 * "optimizer" dict). When the optimizer's groups are not open_clip's grouping
 * of p (a locked tower, another optimizer), nothing is read, *found = 1 and
 * `note` says why; "" otherwise. A tensor of the wrong shape, a non-finite
 * value or a truncated storage is an error naming the file and tensor. */
vt_status open_clip_epoch_load_moments(const char *path, const train_params *p, float *exp_avg, float *exp_avg_sq,
                                       int64_t *step, int *found, char *note, size_t note_size, vt_error *err);

#endif
