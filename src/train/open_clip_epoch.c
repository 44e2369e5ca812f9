/* Optimizer moments from open_clip's epoch_N.pt (see open_clip_epoch.h). The
 * checkpoint reader (io/checkpoint.c) only exposes the state dict, so this
 * walks the unpickled tree itself (io/pickle_reader.h: plain values, executes
 * nothing) and reads each moment's storage from the zip archive with the same
 * bounds checks: storage inside its entry, every strided element inside the
 * storage. */
#include "train/open_clip_epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/checkpoint/checkpoint.h"
#include "io/checkpoint/pickle_reader.h"
#include "io/checkpoint/zip_reader.h"

typedef struct {
    const char *path;
    zip_archive zip;
    char prefix[256];            /* "<archive>" of "<archive>/data.pkl" */
    const train_params *p;
    vt_error *err;
} epoch_reader;

static vt_status map_file(const char *path, void **bytes, size_t *size, vt_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vt_fail(err, VT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat s;
    if (fstat(fd, &s) != 0 || s.st_size <= 0) {
        close(fd);
        return vt_fail(err, VT_ERR_FORMAT, "%s: empty or unreadable file", path);
    }
    *size = (size_t)s.st_size;
    *bytes = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (*bytes == MAP_FAILED) return vt_fail(err, VT_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    return VT_OK;
}

static vt_status load_pickle(epoch_reader *r, pickle_document **doc, const pk_value **root) {
    const zip_entry *entry = NULL;
    for (size_t i = 0; i < r->zip.count && !entry; i++) {
        const char *name = r->zip.entries[i].name, *slash = strchr(name, '/');
        if (slash && slash != name && !strcmp(slash, "/data.pkl") && (size_t)(slash - name) < sizeof r->prefix) {
            snprintf(r->prefix, sizeof r->prefix, "%.*s", (int)(slash - name), name);
            entry = &r->zip.entries[i];
        }
    }
    if (!entry) return vt_fail(r->err, VT_ERR_FORMAT, "%s: zip archive without '<name>/data.pkl'", r->path);
    const uint8_t *bytes;
    size_t size;
    void *owned = NULL;
    vt_status st = zip_entry_bytes(&r->zip, entry, &bytes, &size, &owned, r->err);
    if (!st && !owned) st = zip_entry_verify(&r->zip, entry, r->err);
    if (!st) st = pickle_load(bytes, size, r->path, doc, root, r->err);
    free(owned);
    return st;
}

/* Copies a pickled tensor (any float dtype, any strides) into `out` as fp32
 * after checking its shape against the parameter's. */
static vt_status read_moment(epoch_reader *r, const pk_value *v, const train_param *q, const char *what,
                             int nonnegative, float *out) {
    if (!v || v->kind != PK_TENSOR)
        return vt_fail(r->err, VT_ERR_FORMAT, "%s: optimizer state of '%s' has no %s tensor", r->path, q->name, what);
    const pk_tensor *t = v->tensor;
    int same = t->ndim == q->ndim;
    for (int d = 0; same && d < q->ndim; d++) same = t->shape[d] == q->shape[d];
    if (!same)
        return vt_fail(r->err, VT_ERR_SHAPE,
                       "%s: optimizer %s for '%s' has %d dims and not the parameter's shape (the optimizer state "
                       "belongs to another model or grouping)",
                       r->path, what, q->name, t->ndim);
    vt_dtype dtype = t->storage->dtype;
    if (dtype != VT_DTYPE_F32 && dtype != VT_DTYPE_F16 && dtype != VT_DTYPE_BF16 && dtype != VT_DTYPE_F64)
        return vt_fail(r->err, VT_ERR_DTYPE, "%s: optimizer %s for '%s' has dtype %s", r->path, what, q->name,
                       vt_dtype_name(dtype));
    char entry_name[512];
    snprintf(entry_name, sizeof entry_name, "%s/data/%s", r->prefix, t->storage->key);
    const zip_entry *entry = zip_find(&r->zip, entry_name);
    if (!entry)
        return vt_fail(r->err, VT_ERR_FORMAT, "%s: storage '%s' of the optimizer %s for '%s' is missing (truncated file?)",
                       r->path, entry_name, what, q->name);
    const uint8_t *bytes;
    size_t size;
    void *owned = NULL;
    vt_status st = zip_entry_bytes(&r->zip, entry, &bytes, &size, &owned, r->err);
    if (st) return st;
    size_t element = vt_dtype_size(dtype);
    uint64_t storage_numel = t->storage->numel;
    /* The last element a strided view touches must lie inside the storage. */
    int64_t last = t->storage_offset;
    int ok = storage_numel <= size / element && last >= 0;
    for (int d = 0; ok && d < t->ndim; d++) {
        int64_t span;
        ok = t->stride[d] >= 0 && t->shape[d] >= 1 && !__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &span) &&
             !__builtin_add_overflow(last, span, &last);
    }
    if (!ok || (uint64_t)last >= storage_numel) {
        free(owned);
        return vt_fail(r->err, VT_ERR_FORMAT,
                       "%s: the optimizer %s for '%s' reaches past the end of its storage '%s' (truncated or corrupt file)",
                       r->path, what, q->name, entry_name);
    }
    ckpt_tensor flat = {.dtype = dtype, .ndim = 1, .numel = (int64_t)storage_numel, .data = bytes};
    int64_t index[CKPT_MAX_DIMS] = {0};
    for (size_t i = 0; i < q->count; i++) {
        int64_t source = t->storage_offset;
        for (int d = 0; d < t->ndim; d++) source += index[d] * t->stride[d];
        out[i] = ckpt_element_f32(&flat, source);
        if (!isfinite(out[i]) || (nonnegative && out[i] < 0)) {
            free(owned);
            return vt_fail(r->err, VT_ERR_VALUE, "%s: the optimizer %s for '%s' holds an impossible value (%g) at %zu",
                           r->path, what, q->name, (double)out[i], i);
        }
        for (int d = t->ndim - 1; d >= 0 && ++index[d] == t->shape[d]; d--) index[d] = 0;
    }
    free(owned);
    return VT_OK;
}

static int step_of(const pk_value *v, int64_t *step) {
    if (!v) return 0;
    if (v->kind == PK_INT) *step = v->integer;
    else if (v->kind == PK_FLOAT) *step = (int64_t)v->real;
    else return 0; /* a tensor step is read by the caller */
    return 1;
}

/* A 0-d tensor "step" (torch >= 1.12) as an integer. */
static vt_status tensor_step(epoch_reader *r, const pk_value *v, const train_param *q, int64_t *step) {
    static const train_param scalar = {.name = "step", .ndim = 0, .count = 1};
    float x;
    train_param named = scalar;
    snprintf(named.name, sizeof named.name, "%s", q->name);
    vt_status st = read_moment(r, v, &named, "step", 1, &x);
    if (!st && (x < 0 || x != floorf(x)))
        return vt_fail(r->err, VT_ERR_VALUE, "%s: optimizer step of '%s' is %g, not a count", r->path, q->name, (double)x);
    *step = (int64_t)x;
    return st;
}

/* The parameter table in open_clip's optimizer order: group 0 is the
 * gain-or-bias parameters, group 1 the rest (train_param.decay is exactly
 * open_clip's include rule), each in named_parameters order = table order. */
static int open_clip_group(const train_param *q) { return q->decay ? 1 : 0; }

static vt_status read_optimizer(epoch_reader *r, const pk_value *opt, float *exp_avg, float *exp_avg_sq,
                                int64_t *step, char *note, size_t note_size) {
    const train_params *p = r->p;
    const pk_value *state = pk_dict_get(opt, "state"), *groups = pk_dict_get(opt, "param_groups");
    if (!state || state->kind != PK_DICT || !groups || groups->kind != PK_LIST)
        return vt_fail(r->err, VT_ERR_FORMAT, "%s: \"optimizer\" is not a torch optimizer state_dict (no state / param_groups)",
                       r->path);
    int expected[2] = {0, 0};
    for (int i = 0; i < p->count; i++) expected[open_clip_group(&p->params[i])]++;
    const pk_value *lists[2] = {NULL, NULL};
    int matches = groups->count == 2;
    for (size_t g = 0; matches && g < 2; g++) {
        lists[g] = pk_dict_get(groups->items[g], "params");
        matches = lists[g] && lists[g]->kind == PK_LIST && lists[g]->count == (size_t)expected[g];
    }
    if (!matches) {
        char sizes[128] = "";
        for (size_t g = 0; g < groups->count && g < 4; g++) {
            const pk_value *l = pk_dict_get(groups->items[g], "params");
            size_t n = strlen(sizes);
            snprintf(sizes + n, sizeof sizes - n, "%s%zu", g ? ", " : "", l && l->kind == PK_LIST ? l->count : 0);
        }
        snprintf(note, note_size,
                 "%s: its optimizer has %zu param groups of [%s] parameters, not open_clip's AdamW grouping of %s "
                 "([%d, %d]; a locked tower or another optimizer?): loaded the weights only, AdamW moments start at zero",
                 r->path, groups->count, sizes, p->cfg.name, expected[0], expected[1]);
        return VT_OK;
    }
    *step = 0;
    for (int g = 0; g < 2; g++) {
        int j = 0;
        for (int i = 0; i < p->count; i++) {
            const train_param *q = &p->params[i];
            if (open_clip_group(q) != g) continue;
            const pk_value *index = lists[g]->items[j++];
            if (index->kind != PK_INT)
                return vt_fail(r->err, VT_ERR_FORMAT, "%s: param_groups[%d].params holds a non-integer", r->path, g);
            const pk_value *entry = NULL;
            for (size_t k = 0; k < state->count && !entry; k++)
                if (state->keys[k]->kind == PK_INT && state->keys[k]->integer == index->integer) entry = state->items[k];
            if (!entry) continue; /* never stepped: moments stay zero, as torch would start them */
            if (entry->kind != PK_DICT)
                return vt_fail(r->err, VT_ERR_FORMAT, "%s: optimizer state %lld is not a dict", r->path,
                               (long long)index->integer);
            vt_status st = read_moment(r, pk_dict_get(entry, "exp_avg"), q, "exp_avg", 0, exp_avg + q->offset);
            /* exp_avg_sq is a running mean of squares: never negative. */
            if (!st) st = read_moment(r, pk_dict_get(entry, "exp_avg_sq"), q, "exp_avg_sq", 1, exp_avg_sq + q->offset);
            int64_t s = 0;
            const pk_value *sv = pk_dict_get(entry, "step");
            if (!st && !step_of(sv, &s)) st = tensor_step(r, sv, q, &s);
            if (st) return st;
            if (s > *step) *step = s;
        }
    }
    return VT_OK;
}

vt_status open_clip_epoch_load_moments(const char *path, const train_params *p, float *exp_avg, float *exp_avg_sq,
                                       int64_t *step, int *found, char *note, size_t note_size, vt_error *err) {
    *found = 0;
    if (note_size) note[0] = '\0';
    void *bytes = NULL;
    size_t size = 0;
    vt_status st = map_file(path, &bytes, &size, err);
    if (st) return st;
    epoch_reader r = {.path = path, .p = p, .err = err};
    if (size < 4 || memcmp(bytes, "PK\x03\x04", 4) != 0) { /* safetensors: weights only */
        munmap(bytes, size);
        return VT_OK;
    }
    pickle_document *doc = NULL;
    const pk_value *root = NULL;
    st = zip_open(&r.zip, bytes, size, path, err);
    if (!st) {
        st = load_pickle(&r, &doc, &root);
        const pk_value *opt = st ? NULL : pk_dict_get(root, "optimizer");
        if (opt && opt->kind == PK_DICT) {
            *found = 1;
            st = read_optimizer(&r, opt, exp_avg, exp_avg_sq, step, note, note_size);
        }
        pickle_free(doc);
        zip_close(&r.zip);
    }
    munmap(bytes, size);
    return st;
}
