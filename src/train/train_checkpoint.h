/* Training checkpoints: one directory per save under --save-dir,
 *   SAVE_DIR/step_00001000/ open_clip_model.safetensors  (open_clip names; open_clip loads it)
 *                           open_clip_config.json
 *                           optimizer.safetensors        (exp_avg.<name>, exp_avg_sq.<name>)
 *                           state.json                   (step, samples, seed, args, ...)
 *   SAVE_DIR/latest         text file naming the newest complete checkpoint directory
 * written so that a crash at any instant loses nothing: files go into
 * "step_N.tmp.<pid>", each is fsync'ed, the directory is renamed into place and
 * SAVE_DIR fsync'ed, and only then is `latest` replaced (temp file, fsync,
 * rename). Older checkpoints beyond keep_last are removed after that. */
#ifndef VT_TRAIN_TRAIN_CHECKPOINT_H
#define VT_TRAIN_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "train/params.h"
#include "vitamin.h"

typedef struct {
    int64_t step;           /* optimizer steps completed */
    int64_t samples_seen;
    int64_t skipped;        /* bad samples skipped so far */
    uint64_t seed;
    double last_loss;
    const char *args_json;  /* save: the run's arguments as a JSON object (may be NULL) */
    char *loaded_args_json; /* load: malloc'd copy of the saved one (or NULL); caller frees */
} train_state;

/* Saves; writes the final directory path into saved_dir (may be NULL). */
vt_status train_checkpoint_save(const char *save_dir, const train_params *p, const float *exp_avg,
                                 const float *exp_avg_sq, const train_state *state, int keep_last,
                                 char *saved_dir, size_t saved_dir_cap, vt_error *err);

/* Resolves a --resume argument: "latest" (needs save_dir: the directory named
 * by SAVE_DIR/latest), a checkpoint directory, or an open_clip checkpoint file
 * (.safetensors, .bin, or open_clip's epoch_N.pt with "state_dict"). */
vt_status train_checkpoint_resolve(const char *resume, const char *save_dir, char *out, size_t out_cap,
                                   vt_error *err);

/* Loads a resolved checkpoint into p (and the moments and state if the
 * checkpoint has them; otherwise the moments are zeroed and state->step = 0).
 * The model shapes must match p's config (error names the tensor). */
vt_status train_checkpoint_load(const char *resolved, train_params *p, float *exp_avg, float *exp_avg_sq,
                                train_state *state, vt_error *err);

#endif
