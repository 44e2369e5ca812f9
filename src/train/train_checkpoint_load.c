/* Finding and loading training checkpoints (train_checkpoint.h): `latest`,
 * checkpoint directories written by train_checkpoint_save, and open_clip
 * files (.safetensors, .bin, epoch_N.pt with its AdamW moments). */
#include "train/train_checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/checkpoint/checkpoint.h"
#include "io/serial/json.h"
#include "io/serial/json_write.h"
#include "model/config_json.h"
#include "train/checkpoint_dir.h"
#include "train/open_clip_epoch.h"

enum { STATE_JSON_MAX_BYTES = 1 << 24 };
#define JSON_EXACT_INTEGER_LIMIT 9007199254740992.0 /* 2^53 */

static const char MODEL_FILE[] = "open_clip_model.safetensors";

/* ---------------------------------------------------------------- resolving */

static vt_status copy_out(char *out, size_t cap, const char *dir, const char *name, vt_error *err) {
    int n = name ? snprintf(out, cap, "%s/%s", dir, name) : snprintf(out, cap, "%s", dir);
    if (n < 0 || (size_t)n >= cap) return vt_fail(err, VT_ERR_ARGUMENT, "checkpoint path %s is too long", dir);
    return VT_OK;
}

/* The directory SAVE_DIR/latest names, or without that file the highest step_N. */
static vt_status resolve_latest(const char *save_dir, char *out, size_t cap, vt_error *err) {
    char path[4096], name[256] = "";
    snprintf(path, sizeof path, "%s/latest", save_dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = fread(name, 1, sizeof name - 1, f);
        int bad = ferror(f) || !feof(f) || fgetc(f) != EOF;
        fclose(f);
        name[n] = '\0';
        while (n && (name[n - 1] == '\n' || name[n - 1] == '\r' || name[n - 1] == ' ')) name[--n] = '\0';
        if (bad || !n || strchr(name, '/') || name[0] == '.' || strlen(name) != n)
            return vt_fail(err, VT_ERR_FORMAT,
                           "%s does not hold a checkpoint directory name; delete it to resume from the newest step_N, "
                           "or pass --resume %s/step_N",
                           path, save_dir);
        char dir[4400];
        snprintf(dir, sizeof dir, "%s/%s", save_dir, name);
        if (!checkpoint_dir_has(dir, MODEL_FILE))
            return vt_fail(err, VT_ERR_FORMAT,
                           "%s names %s, which is missing or has no %s; pass --resume with a complete checkpoint directory",
                           path, dir, MODEL_FILE);
        return copy_out(out, cap, dir, NULL, err);
    }
    if (errno != ENOENT) return vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    /* No `latest` yet: a crash between the first directory rename and the
     * first `latest` write. Step directories are complete by construction. */
    int64_t *steps = NULL;
    size_t count = 0;
    int e = checkpoint_dir_list_steps(save_dir, &steps, &count);
    if (e && e != ENOENT) return vt_fail(err, VT_ERR_IO, "cannot list %s: %s", save_dir, strerror(e));
    vt_status st = vt_fail(err, VT_ERR_IO, "nothing to resume in %s: no 'latest' file and no step_N checkpoint directory",
                           save_dir);
    for (size_t i = count; i-- > 0;) {
        char step_name[64], dir[4400];
        checkpoint_dir_name(steps[i], step_name, sizeof step_name);
        snprintf(dir, sizeof dir, "%s/%s", save_dir, step_name);
        if (checkpoint_dir_has(dir, MODEL_FILE)) {
            st = copy_out(out, cap, dir, NULL, err);
            break;
        }
    }
    free(steps);
    return st;
}

vt_status train_checkpoint_resolve(const char *resume, const char *save_dir, char *out, size_t out_cap,
                                   vt_error *err) {
    if (!resume || !*resume) return vt_fail(err, VT_ERR_ARGUMENT, "--resume needs a value");
    if (!strcmp(resume, "latest")) {
        if (!save_dir || !*save_dir)
            return vt_fail(err, VT_ERR_ARGUMENT, "--resume latest needs --save-dir (the directory holding 'latest')");
        return resolve_latest(save_dir, out, out_cap, err);
    }
    struct stat s;
    if (stat(resume, &s) != 0)
        return vt_fail(err, VT_ERR_IO,
                       "--resume %s: %s (expected 'latest', a checkpoint directory or an open_clip checkpoint file)",
                       resume, strerror(errno));
    if (S_ISREG(s.st_mode)) return copy_out(out, out_cap, resume, NULL, err);
    if (!S_ISDIR(s.st_mode)) return vt_fail(err, VT_ERR_IO, "--resume %s: not a file or directory", resume);
    if (checkpoint_dir_has(resume, MODEL_FILE)) return copy_out(out, out_cap, resume, NULL, err);
    /* A --save-dir: resume its latest. */
    vt_status st = resolve_latest(resume, out, out_cap, err);
    if (st == VT_ERR_IO)
        return vt_fail(err, VT_ERR_IO,
                       "--resume %s: a directory without %s and without checkpoints under it (no 'latest', no step_N)",
                       resume, MODEL_FILE);
    return st;
}

/* ---------------------------------------------------------------- loading */

static int same_architecture(const vt_model_config *a, const vt_model_config *b) {
    return a->stem_width == b->stem_width && a->stage_widths[0] == b->stage_widths[0] &&
           a->stage_widths[1] == b->stage_widths[1] && a->stage_depths[0] == b->stage_depths[0] &&
           a->stage_depths[1] == b->stage_depths[1] && a->width == b->width && a->depth == b->depth &&
           a->heads == b->heads && a->mlp_hidden == b->mlp_hidden && a->image_size == b->image_size &&
           a->has_pos_embed == b->has_pos_embed && a->embed_dim == b->embed_dim && a->text_width == b->text_width &&
           a->text_heads == b->text_heads && a->text_layers == b->text_layers &&
           a->context_length == b->context_length && a->vocab_size == b->vocab_size && a->mlp_glu == b->mlp_glu;
}

/* Head counts do not show in any tensor shape, so the saved config is checked
 * as a whole before the tensors are. */
static vt_status check_config(const char *dir, const train_params *p, vt_error *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/open_clip_config.json", dir);
    vt_model_config saved;
    int found = 0;
    vt_status st = config_read_json(path, &saved, &found, NULL, err);
    if (st || !found) return st;
    if (!same_architecture(&saved, &p->cfg))
        return vt_fail(err, VT_ERR_MODEL,
                       "%s holds a %s (open_clip_config.json) but this run builds %s; pass --model %s, or resume from "
                       "a checkpoint of %s",
                       dir, saved.name, p->cfg.name, saved.name, p->cfg.name);
    return VT_OK;
}

/* optimizer.safetensors: "exp_avg.<name>" and "exp_avg_sq.<name>" for every
 * parameter, nothing else. */
static vt_status load_moments(const char *path, const train_params *p, float *exp_avg, float *exp_avg_sq,
                              vt_error *err) {
    ckpt_file *f = NULL;
    vt_status st = ckpt_open(path, &f, err);
    if (st) return st;
    static const char *const PREFIXES[] = {"exp_avg.", "exp_avg_sq."};
    float *buffers[] = {exp_avg, exp_avg_sq};
    for (int b = 0; b < 2 && !st; b++) {
        for (int i = 0; i < p->count && !st; i++) {
            const train_param *q = &p->params[i];
            char name[160];
            snprintf(name, sizeof name, "%s%s", PREFIXES[b], q->name);
            const ckpt_tensor *t = ckpt_find(f, name);
            if (!t) {
                st = vt_fail(err, VT_ERR_SHAPE, "%s: tensor '%s' is missing (optimizer state of another model?)", path, name);
                break;
            }
            int same = t->ndim == q->ndim;
            for (int d = 0; same && d < q->ndim; d++) same = t->shape[d] == q->shape[d];
            if (!same || (size_t)t->numel != q->count) {
                st = vt_fail(err, VT_ERR_SHAPE, "%s: tensor '%s' has %d dims / %lld elements, expected %d / %zu for %s",
                             path, name, t->ndim, (long long)t->numel, q->ndim, q->count, p->cfg.name);
                break;
            }
            if (t->dtype != VT_DTYPE_F32 && t->dtype != VT_DTYPE_F16 && t->dtype != VT_DTYPE_BF16 &&
                t->dtype != VT_DTYPE_F64) {
                st = vt_fail(err, VT_ERR_DTYPE, "%s: tensor '%s' has dtype %s", path, name, vt_dtype_name(t->dtype));
                break;
            }
            float *x = buffers[b] + q->offset;
            for (int64_t e = 0; e < t->numel; e++) {
                x[e] = ckpt_element_f32(t, e);
                /* exp_avg_sq is a running mean of squares: never negative. */
                if (!isfinite(x[e]) || (b == 1 && x[e] < 0)) {
                    st = vt_fail(err, VT_ERR_VALUE, "%s: tensor '%s' holds an impossible value (%g) at index %lld; the file is corrupt",
                                 path, name, (double)x[e], (long long)e);
                    break;
                }
            }
        }
    }
    if (!st && ckpt_count(f) != 2 * (size_t)p->count) {
        for (size_t i = 0; i < ckpt_count(f); i++) {
            const char *name = ckpt_at(f, i)->name, *rest = NULL;
            if (!strncmp(name, PREFIXES[0], strlen(PREFIXES[0]))) rest = name + strlen(PREFIXES[0]);
            if (!strncmp(name, PREFIXES[1], strlen(PREFIXES[1]))) rest = name + strlen(PREFIXES[1]);
            if (!rest || train_params_find(p, rest) < 0) {
                st = vt_fail(err, VT_ERR_SHAPE, "%s: unexpected tensor '%s' (optimizer state of another model?)", path, name);
                break;
            }
        }
        if (!st) st = vt_fail(err, VT_ERR_FORMAT, "%s: a tensor name appears twice", path);
    }
    ckpt_close(f);
    return st;
}

static vt_status read_text(const char *path, char **text, size_t *size, vt_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    *text = NULL;
    *size = 0;
    size_t cap = 0;
    vt_status st = VT_OK;
    for (;;) {
        if (*size + 4096 > cap) {
            char *grown = cap * 2 > STATE_JSON_MAX_BYTES ? NULL : realloc(*text, cap = cap ? cap * 2 : 8192);
            if (!grown) {
                st = vt_fail(err, VT_ERR_FORMAT, "%s: too large or out of memory (limit 16 MiB)", path);
                break;
            }
            *text = grown;
        }
        size_t got = fread(*text + *size, 1, cap - *size, f);
        *size += got;
        if (got == 0) break;
    }
    if (!st && ferror(f)) st = vt_fail(err, VT_ERR_IO, "error reading %s", path);
    fclose(f);
    if (st) {
        free(*text);
        *text = NULL;
    }
    return st;
}

static vt_status get_count(const char *path, const json_value *root, const char *key, int64_t *out, vt_error *err) {
    const json_value *v = json_get(root, key);
    if (!v || v->type != JSON_NUMBER || v->number != floor(v->number) || v->number < 0 ||
        v->number >= JSON_EXACT_INTEGER_LIMIT)
        return vt_fail(err, VT_ERR_FORMAT, "%s: \"%s\" must be a non-negative integer", path, key);
    *out = (int64_t)v->number;
    return VT_OK;
}

static vt_status parse_state(const char *path, const json_value *root, train_state *s, vt_error *err) {
    const char *format = json_get_string(root, "format", "");
    if (strcmp(format, "vitamin.c train state") != 0)
        return vt_fail(err, VT_ERR_FORMAT, "%s: not a vitamin.c train state (\"format\" is '%s')", path, format);
    if (json_get_number(root, "version", 0) != 1)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: state version %g; this vitamin.c reads version 1", path,
                       json_get_number(root, "version", 0));
    vt_status st = get_count(path, root, "step", &s->step, err);
    if (!st) st = get_count(path, root, "samples_seen", &s->samples_seen, err);
    if (!st) st = get_count(path, root, "skipped", &s->skipped, err);
    if (st) return st;
    const char *seed = json_get_string(root, "seed", NULL);
    char *end = NULL;
    errno = 0;
    unsigned long long value = seed && seed[0] >= '0' && seed[0] <= '9' ? strtoull(seed, &end, 10) : 0;
    if (!seed || !end || *end || errno == ERANGE)
        return vt_fail(err, VT_ERR_FORMAT, "%s: \"seed\" must be a decimal uint64 in a string", path);
    s->seed = value;
    const json_value *loss = json_get(root, "last_loss");
    if (!loss || (loss->type != JSON_NUMBER && loss->type != JSON_NULL))
        return vt_fail(err, VT_ERR_FORMAT, "%s: \"last_loss\" must be a number or null", path);
    s->last_loss = loss->type == JSON_NUMBER ? loss->number : NAN;
    const json_value *args = json_get(root, "args");
    if (args && args->type != JSON_NULL) {
        json_writer w = {0};
        json_write_value(&w, args);
        if (w.failed) {
            json_writer_free(&w);
            return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
        }
        s->loaded_args_json = w.text; /* handed over to the caller */
    }
    return VT_OK;
}

static vt_status load_state(const char *path, train_state *s, vt_error *err) {
    char *text = NULL;
    size_t size = 0;
    vt_status st = read_text(path, &text, &size, err);
    if (st) return st;
    json_value *root = NULL;
    st = json_parse(text, size, &root, err);
    free(text);
    if (st) {
        vt_error_prefix(err, "%s (truncated or corrupt): ", path);
        return st;
    }
    st = parse_state(path, root, s, err);
    json_free(root);
    return st;
}

static vt_status load_directory(const char *dir, train_params *p, float *exp_avg, float *exp_avg_sq,
                                train_state *state, vt_error *err) {
    char path[4400];
    vt_status st = check_config(dir, p, err);
    snprintf(path, sizeof path, "%s/%s", dir, MODEL_FILE);
    if (!st) st = train_params_load_checkpoint(p, path, err);
    if (!st && exp_avg) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
        if (checkpoint_dir_has(dir, "optimizer.safetensors")) st = load_moments(path, p, exp_avg, exp_avg_sq, err);
        else if (state)
            snprintf(state->warning, sizeof state->warning,
                     "%s has no optimizer.safetensors (a weights-only checkpoint): AdamW moments start at zero", dir);
    }
    if (!st && state && checkpoint_dir_has(dir, "state.json")) {
        snprintf(path, sizeof path, "%s/state.json", dir);
        st = load_state(path, state, err);
    }
    return st;
}

static vt_status load_file(const char *path, train_params *p, float *exp_avg, float *exp_avg_sq,
                           train_state *state, vt_error *err) {
    vt_status st = train_params_load_checkpoint(p, path, err);
    if (st || !exp_avg) return st;
    int64_t step = 0;
    int found = 0;
    char note[sizeof state->warning];
    st = open_clip_epoch_load_moments(path, p, exp_avg, exp_avg_sq, &step, &found, note, sizeof note, err);
    if (st) return st;
    if (state && note[0]) snprintf(state->warning, sizeof state->warning, "%s", note);
    else if (state && found) state->step = step;
    return VT_OK;
}

vt_status train_checkpoint_load(const char *resolved, train_params *p, float *exp_avg, float *exp_avg_sq,
                                train_state *state, vt_error *err) {
    if (!resolved || !p) return vt_fail(err, VT_ERR_ARGUMENT, "train_checkpoint_load: path and params are required");
    if (!exp_avg != !exp_avg_sq)
        return vt_fail(err, VT_ERR_ARGUMENT, "train_checkpoint_load: pass both AdamW moments or neither");
    if (exp_avg) {
        memset(exp_avg, 0, p->total * sizeof *exp_avg);
        memset(exp_avg_sq, 0, p->total * sizeof *exp_avg_sq);
    }
    if (state) {
        /* What the checkpoint does not hold starts fresh; the seed stays the caller's. */
        state->step = state->samples_seen = state->skipped = 0;
        state->last_loss = 0;
        state->loaded_args_json = NULL;
        state->warning[0] = '\0';
    }
    return checkpoint_dir_has(resolved, NULL) ? load_directory(resolved, p, exp_avg, exp_avg_sq, state, err)
                                              : load_file(resolved, p, exp_avg, exp_avg_sq, state, err);
}
