/* The filesystem side of training checkpoints (train_checkpoint.h): making and
 * fsyncing directories, removing whole trees, the "step_N" names and the
 * "*.tmp.<pid>" leftovers of crashed saves. */
#ifndef VT_TRAIN_CHECKPOINT_DIR_H
#define VT_TRAIN_CHECKPOINT_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

/* The name of step N's directory: "step_00001000" (8 digits, more if needed). */
void checkpoint_dir_name(int64_t step, char *out, size_t out_size);
/* 1 if `name` is a step directory name (and *step its number), else 0. */
int checkpoint_dir_parse_step(const char *name, int64_t *step);

/* fsync of a directory, so renames and new entries in it survive a crash. */
vt_status checkpoint_dir_sync(const char *path, vt_error *err);
/* rm -r that never follows symbolic links. Returns 0 or an errno value. */
int checkpoint_dir_remove_tree(const char *path);

/* Removes "<anything>.tmp.<pid>" entries of `save_dir` whose process is gone
 * (a crashed save; a live process's temporaries are left alone). Best effort. */
void checkpoint_dir_remove_stale_temps(const char *save_dir);

/* The step numbers of the step_N directories in `save_dir`, ascending
 * (malloc'd; NULL and 0 if none). Returns 0 or an errno value. */
int checkpoint_dir_list_steps(const char *save_dir, int64_t **steps, size_t *count);

/* 1 if `dir`/`name` is a regular file, 1 for a directory when name is NULL. */
int checkpoint_dir_has(const char *dir, const char *name);

#endif
