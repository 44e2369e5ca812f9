/* Saving a training checkpoint (train_checkpoint.h): four files written into a
 * private temporary directory, which is renamed into place only once every
 * byte is on disk; then `latest` is switched; then old checkpoints are pruned.
 * Whatever instant a crash hits, SAVE_DIR/latest names a complete checkpoint. */
#include "train/train_checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "model/schema.h"
#include "io/checkpoint/checkpoint.h"
#include "io/serial/json.h"
#include "io/serial/json_write.h"
#include "core/atomic_file.h"
#include "model/config_json.h"
#include "train/checkpoint_dir.h"
#include "core/file.h"

void (*train_checkpoint_save_hook)(const char *stage) = NULL;

static void reached(const char *stage) {
    if (train_checkpoint_save_hook) train_checkpoint_save_hook(stage);
}

static void join(char *out, size_t size, const char *dir, const char *name) { snprintf(out, size, "%s/%s", dir, name); }

/* The parameters (or one moment buffer, under "<prefix><name>") as safetensors
 * entries pointing into the flat buffer: nothing is copied. */
static vt_status write_tensors(const char *path, const train_params *p, const float *const *buffers,
                               const char *const *prefixes, int buffer_count, vt_error *err) {
    size_t n = (size_t)p->count * (size_t)buffer_count;
    ckpt_tensor *t = calloc(n ? n : 1, sizeof *t);
    char *names = malloc(n * 128 + 1);
    if (!t || !names) {
        free(t);
        free(names);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory writing %s", path);
    }
    size_t k = 0;
    for (int b = 0; b < buffer_count; b++) {
        for (int i = 0; i < p->count; i++, k++) {
            const train_param *q = &p->params[i];
            t[k].name = names + k * 128;
            /* The weights under open_clip's names for this model (a ViT's text
             * tower at the top level, model/schema.h); moments as stored. */
            char saved[128];
            schema_saved_name(&p->cfg, q->name, saved, sizeof saved);
            snprintf(t[k].name, 128, "%s%s", prefixes[b], prefixes[b][0] ? q->name : saved);
            t[k].dtype = VT_DTYPE_F32;
            t[k].ndim = q->ndim;
            for (int d = 0; d < q->ndim; d++) t[k].shape[d] = q->shape[d];
            t[k].numel = (int64_t)q->count;
            t[k].data = buffers[b] + q->offset;
        }
    }
    const char *meta[] = {"format", "pt", "written_by", "vitamin.c train", NULL};
    vt_status st = safetensors_write(path, t, n, meta, err);
    free(t);
    free(names);
    return st;
}

static vt_status write_state(const char *path, const train_params *p, const train_state *s, vt_error *err) {
    json_value *args = NULL;
    if (s->args_json) {
        vt_status st = json_parse(s->args_json, strlen(s->args_json), &args, err);
        if (st) {
            vt_error_prefix(err, "the run's arguments (train_state.args_json) are not valid JSON: ");
            return st;
        }
    }
    json_writer w = {0};
    json_write_raw(&w, "{\n  \"format\": \"vitamin.c train state\",\n  \"version\": 1,\n  \"model\": ");
    json_write_string(&w, p->cfg.name);
    /* Integers up to 2^53 are exact as JSON numbers; the seed is any uint64, so
     * it goes as a decimal string. */
    json_write_format(&w, ",\n  \"step\": %" PRId64 ",\n  \"samples_seen\": %" PRId64 ",\n  \"skipped\": %" PRId64
                          ",\n  \"seed\": \"%" PRIu64 "\",\n  \"last_loss\": ",
                      s->step, s->samples_seen, s->skipped, s->seed);
    json_write_double(&w, s->last_loss);
    json_write_raw(&w, ",\n  \"args\": ");
    if (args) json_write_value(&w, args);
    else json_write_raw(&w, "null");
    json_write_raw(&w, "\n}\n");
    json_free(args);
    if (w.failed) {
        json_writer_free(&w);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory writing %s", path);
    }
    vt_status st = atomic_file_write_all(path, w.text, w.length, 1, err);
    json_writer_free(&w);
    return st;
}

static vt_status write_files(const char *dir, const train_params *p, const float *exp_avg, const float *exp_avg_sq,
                             const train_state *state, vt_error *err) {
    char path[4096];
    join(path, sizeof path, dir, "open_clip_model.safetensors");
    const float *values[] = {p->values};
    const char *no_prefix[] = {""};
    vt_status st = write_tensors(path, p, values, no_prefix, 1, err);
    if (st) return st;
    reached("model_written");
    join(path, sizeof path, dir, "open_clip_config.json");
    st = config_write_open_clip_json(path, &p->cfg, err);
    if (st) return st;
    reached("config_written");
    if (exp_avg) {
        join(path, sizeof path, dir, "optimizer.safetensors");
        const float *moments[] = {exp_avg, exp_avg_sq};
        const char *prefixes[] = {"exp_avg.", "exp_avg_sq."};
        st = write_tensors(path, p, moments, prefixes, 2, err);
        if (st) return st;
        reached("optimizer_written");
    }
    join(path, sizeof path, dir, "state.json");
    st = write_state(path, p, state, err);
    if (st) return st;
    reached("state_written");
    return checkpoint_dir_sync(dir, err);
}

/* Moves `temp` to `final`. If `final` exists (the same step saved again), the
 * two are exchanged atomically, so `final` is complete at every instant, and
 * *replaced = 1: the old checkpoint now sits at `temp`. */
static vt_status publish(const char *temp, const char *final, int *replaced, vt_error *err) {
    *replaced = 0;
    if (rename(temp, final) == 0) return VT_OK;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return vt_fail(err, VT_ERR_IO, "cannot rename %s to %s: %s", temp, final, strerror(errno));
    if (renameat2(AT_FDCWD, temp, AT_FDCWD, final, RENAME_EXCHANGE) != 0)
        return vt_fail(err, VT_ERR_IO, "cannot replace the existing checkpoint %s: %s", final, strerror(errno));
    *replaced = 1;
    return VT_OK;
}

static vt_status write_latest(const char *save_dir, const char *name, vt_error *err) {
    char path[4096], line[128];
    join(path, sizeof path, save_dir, "latest");
    int n = snprintf(line, sizeof line, "%s\n", name);
    return atomic_file_write_all(path, line, (size_t)n, 1, err);
}

/* Removes step directories beyond the newest keep_last, never the newest one
 * nor `keep_step` (the one `latest` names). A victim is first renamed to a
 * temporary name, so a crash mid-removal leaves a leftover, not a torn
 * checkpoint that resolve could pick. */
static vt_status prune(const char *save_dir, int keep_last, int64_t keep_step, vt_error *err) {
    if (keep_last <= 0) return VT_OK;
    int64_t *steps = NULL;
    size_t count = 0;
    int e = checkpoint_dir_list_steps(save_dir, &steps, &count);
    if (e) return vt_fail(err, VT_ERR_IO, "cannot list %s to remove old checkpoints: %s", save_dir, strerror(e));
    vt_status st = VT_OK;
    for (size_t i = 0; i + (size_t)keep_last < count && i + 1 < count && !st; i++) {
        if (steps[i] == keep_step) continue;
        char name[64], path[3200], doomed[3300];
        checkpoint_dir_name(steps[i], name, sizeof name);
        join(path, sizeof path, save_dir, name);
        snprintf(doomed, sizeof doomed, "%s.tmp.%ld", path, (long)getpid());
        e = rename(path, doomed) == 0 ? checkpoint_dir_remove_tree(doomed) : errno;
        if (e)
            st = vt_fail(err, VT_ERR_IO, "cannot remove old checkpoint %s (--keep-last %d): %s", path, keep_last,
                         strerror(e));
        reached("pruned");
    }
    free(steps);
    return st;
}

vt_status train_checkpoint_save(const char *save_dir, const train_params *p, const float *exp_avg,
                                const float *exp_avg_sq, const train_state *state, int keep_last, char *saved_dir,
                                size_t saved_dir_cap, vt_error *err) {
    if (!save_dir || !*save_dir || !p || !state)
        return vt_fail(err, VT_ERR_ARGUMENT, "train_checkpoint_save: save_dir, params and state are required");
    if (!exp_avg != !exp_avg_sq)
        return vt_fail(err, VT_ERR_ARGUMENT, "train_checkpoint_save: pass both AdamW moments or neither");
    if (state->step < 0) return vt_fail(err, VT_ERR_ARGUMENT, "train_checkpoint_save: negative step %" PRId64, state->step);
    if (saved_dir && saved_dir_cap) saved_dir[0] = '\0';
    if (strlen(save_dir) > 3000) return vt_fail(err, VT_ERR_ARGUMENT, "--save-dir path is too long");
    vt_status st = vt_make_dirs(save_dir, err);
    if (st) return st;
    checkpoint_dir_remove_stale_temps(save_dir);

    /* save_dir is at most 3000 bytes (checked above), so no name is cut. */
    char name[64], final[3200], temp[3300];
    checkpoint_dir_name(state->step, name, sizeof name);
    join(final, sizeof final, save_dir, name);
    snprintf(temp, sizeof temp, "%s.tmp.%ld", final, (long)getpid());
    if (mkdir(temp, 0777) != 0) return vt_fail(err, VT_ERR_IO, "cannot create %s: %s", temp, strerror(errno));
    reached("dir_created");
    int replaced = 0;
    st = write_files(temp, p, exp_avg, exp_avg_sq, state, err);
    if (!st) st = publish(temp, final, &replaced, err);
    if (st) {
        checkpoint_dir_remove_tree(temp);
        vt_error_prefix(err, "saving checkpoint %s: ", final);
        return st;
    }
    reached("renamed");
    st = checkpoint_dir_sync(save_dir, err);
    if (!st) st = write_latest(save_dir, name, err);
    if (st) {
        vt_error_prefix(err, "saving checkpoint %s (complete, but %s/latest still names the previous one): ", final,
                        save_dir);
        return st;
    }
    reached("latest_written");
    if (saved_dir && saved_dir_cap) snprintf(saved_dir, saved_dir_cap, "%s", final);
    if (replaced) checkpoint_dir_remove_tree(temp); /* the old copy of this step; a leftover is cleaned next time */
    st = prune(save_dir, keep_last, state->step, err);
    if (st) vt_error_prefix(err, "checkpoint %s saved, but: ", final);
    return st;
}
