/* Training checkpoints: one directory per save under --save-dir,
 *   SAVE_DIR/step_00001000/ open_clip_model.safetensors  (open_clip names; open_clip loads it)
 *                           open_clip_config.json
 *                           optimizer.safetensors        (exp_avg.<name>, exp_avg_sq.<name>)
 *                           state.json                   (step, samples, seed, args, ...)
 *   SAVE_DIR/latest         text file naming the newest complete checkpoint directory
 * written so that a crash at any instant loses nothing: files go into
 * "step_N.tmp.<pid>", each is fsync'ed, the directory is renamed into place and
 * SAVE_DIR fsync'ed, and only then is `latest` replaced (temp file, fsync,
 * rename). Older checkpoints beyond keep_last are removed after that.
 * Leftover "*.tmp.<pid>" entries of dead processes (a crashed save) are never
 * read, and the next save removes them. */
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
    char warning[512];      /* load: what could not be restored and was reset instead (e.g. the
                               moments of an epoch_N.pt whose param groups do not match), for
                               the caller to show; "" when everything was */
} train_state;

/* Saves; writes the final directory path into saved_dir (may be NULL).
 * exp_avg and exp_avg_sq may both be NULL: no optimizer.safetensors (a
 * weights-only checkpoint; loading it starts the moments at zero). Saving a
 * step whose directory exists replaces it atomically (renameat2 exchange).
 * keep_last <= 0 keeps everything; pruning never removes the newest step nor
 * the one just saved. If only the pruning fails, the checkpoint is saved
 * (saved_dir is set) and the error says so. */
vt_status train_checkpoint_save(const char *save_dir, const train_params *p, const float *exp_avg,
                                 const float *exp_avg_sq, const train_state *state, int keep_last,
                                 char *saved_dir, size_t saved_dir_cap, vt_error *err);

/* Resolves a --resume argument: "latest" (needs save_dir: the directory named
 * by SAVE_DIR/latest, or without that file the highest complete step_N), a
 * save directory (its latest), a checkpoint directory, or an open_clip
 * checkpoint file (.safetensors, .bin, or open_clip's epoch_N.pt with
 * "state_dict"). VT_ERR_IO when there is nothing to resume. */
vt_status train_checkpoint_resolve(const char *resume, const char *save_dir, char *out, size_t out_cap,
                                   vt_error *err);

/* Loads a resolved checkpoint into p (and the moments and state if the
 * checkpoint has them; otherwise the moments are zeroed and state->step = 0).
 * The model shapes must match p's config (error names the tensor). From an
 * open_clip epoch_N.pt the AdamW moments are read too (torch optimizer
 * state_dict, mapped to names through open_clip's two param groups) and
 * state->step is their step; if the groups do not match, the weights alone
 * are loaded and state->warning says so. exp_avg, exp_avg_sq and state may be
 * NULL (weights only). */
vt_status train_checkpoint_load(const char *resolved, train_params *p, float *exp_avg, float *exp_avg_sq,
                                train_state *state, vt_error *err);

/* Test hook: when set, called with a stage name at each point of a save where
 * a crash must leave a usable checkpoint ("dir_created", "model_written",
 * "config_written", "optimizer_written", "state_written", "renamed",
 * "latest_written", "pruned"), so tests can kill the process there. */
extern void (*train_checkpoint_save_hook)(const char *stage);

#endif
