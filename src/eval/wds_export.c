/* CLIP_benchmark wds/ export (wds_export.h). */
#include "eval/wds_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/file.h"
#include "io/dataset/tar_writer.h"

/* Biggest image file copied into a shard. */
#define MAX_IMAGE_BYTES ((size_t)1 << 30)

/* The extension CLIP_benchmark's loader looks for ("jpg", "png", ...). */
static vt_status image_extension(const char *path, const char **ext, vt_error *err) {
    static const char *const known[][2] = {{"jpg", "jpg"}, {"jpeg", "jpeg"}, {"png", "png"}, {"webp", "webp"}};
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcasecmp(dot + 1, known[i][0])) {
                *ext = known[i][1];
                return VT_OK;
            }
    return vt_fail(err, VT_ERR_UNSUPPORTED,
                   "%s: CLIP_benchmark's wds loader reads .jpg, .jpeg, .png and .webp images; convert this one first",
                   path);
}

static vt_status write_text(const char *dir, const char *name, const char *text, vt_error *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return vt_fail(err, VT_ERR_ARGUMENT, "output path too long: %s/%s", dir, name);
    return atomic_file_write_all(path, text, strlen(text), 1, err);
}

/* Lines joined with '\n' (and a final one), `{}` turned into `{c}` when asked. */
static char *join_lines(char *const *lines, size_t n, int braces_to_c) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += 3 * strlen(lines[i]) + 1;
    char *s = malloc(total), *p = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *q = lines[i]; *q; q++) {
            if (braces_to_c && q[0] == '{' && q[1] == '}') {
                memcpy(p, "{c}", 3);
                p += 3;
                q++;
            } else {
                *p++ = *q;
            }
        }
        *p++ = '\n';
    }
    *p = '\0';
    return s;
}

typedef struct {
    const wds_export_options *opt;
    char split_dir[4096];
    tar_writer tar;
    int open;
    size_t in_shard, shards, done, total;
} exporter;

static vt_status exporter_start(exporter *e, const wds_export_options *opt, size_t total, vt_error *err) {
    memset(e, 0, sizeof *e);
    e->opt = opt;
    e->total = total;
    if (!opt->out_dir || !opt->split || !*opt->split || strchr(opt->split, '/') || !opt->shard_size)
        return vt_fail(err, VT_ERR_ARGUMENT, "wds export: need an output directory, a split name without '/' and "
                                             "a shard size >= 1");
    if (snprintf(e->split_dir, sizeof e->split_dir, "%s/%s", opt->out_dir, opt->split) >= (int)sizeof e->split_dir)
        return vt_fail(err, VT_ERR_ARGUMENT, "output path too long: %s", opt->out_dir);
    return vt_make_dirs(e->split_dir, err);
}

static vt_status exporter_close_shard(exporter *e, vt_error *err) {
    if (!e->open) return VT_OK;
    e->open = 0;
    vt_status st = tar_writer_commit(&e->tar, err);
    if (!st) e->shards++;
    return st;
}

/* One sample: the image file's bytes, then the label or caption member. */
static vt_status exporter_add(exporter *e, const char *image_path, const char *second_ext, const char *second,
                              vt_error *err) {
    vt_status st;
    if (e->open && e->in_shard == e->opt->shard_size && (st = exporter_close_shard(e, err))) return st;
    if (!e->open) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%zu.tar", e->split_dir, e->shards);
        if ((st = tar_writer_open(&e->tar, path, err))) return st;
        e->open = 1;
        e->in_shard = 0;
    }
    const char *ext = NULL;
    if ((st = image_extension(image_path, &ext, err))) return st;
    char *bytes;
    size_t size;
    if ((st = vt_read_file(image_path, MAX_IMAGE_BYTES, 0, &bytes, &size, err))) return st;
    char name[64];
    snprintf(name, sizeof name, "s%08zu.%s", e->done, ext);
    st = tar_writer_add(&e->tar, name, bytes, size, err);
    free(bytes);
    if (!st) {
        snprintf(name, sizeof name, "s%08zu.%s", e->done, second_ext);
        st = tar_writer_add(&e->tar, name, second, strlen(second), err);
    }
    if (st) return st;
    e->in_shard++;
    e->done++;
    if (e->opt->progress) e->opt->progress(e->opt->user, e->done, e->total);
    return VT_OK;
}

static vt_status exporter_finish(exporter *e, wds_export_stats *stats, vt_error *err) {
    vt_status st = exporter_close_shard(e, err);
    if (st) return st;
    char count[32];
    snprintf(count, sizeof count, "%zu\n", e->shards);
    if ((st = write_text(e->split_dir, "nshards.txt", count, err))) return st;
    stats->samples = e->done;
    stats->shards = e->shards;
    return VT_OK;
}

static void exporter_abort(exporter *e) {
    if (e->open) tar_writer_discard(&e->tar);
    e->open = 0;
}

vt_status wds_export_classification(const eval_zeroshot_inputs *in, const wds_export_options *opt,
                                    wds_export_stats *stats, vt_error *err) {
    memset(stats, 0, sizeof *stats);
    if (!in->set.labels) return vt_fail(err, VT_ERR_ARGUMENT, "wds export: the set has no labels");
    exporter e;
    vt_status st = exporter_start(&e, opt, in->set.n, err);
    for (size_t i = 0; i < in->set.n && !st; i++) {
        char label[16];
        snprintf(label, sizeof label, "%d", in->set.labels[i]);
        st = exporter_add(&e, in->set.paths[i], "cls", label, err);
    }
    if (!st) st = exporter_finish(&e, stats, err);
    exporter_abort(&e);
    if (st) return st;
    char *classes = join_lines(in->classes, in->n_classes, 0), *templates = join_lines(in->templates, in->n_templates, 1);
    if (!classes || !templates) st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
    if (!st) st = write_text(opt->out_dir, "classnames.txt", classes, err);
    if (!st) st = write_text(opt->out_dir, "zeroshot_classification_templates.txt", templates, err);
    if (!st) st = write_text(opt->out_dir, "dataset_type.txt", "classification\n", err);
    free(classes);
    free(templates);
    return st;
}

static const eval_dataset *sort_set;
static int by_path_then_row(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(sort_set->paths[i], sort_set->paths[j]);
    return c ? c : (i > j) - (i < j);
}

vt_status wds_export_retrieval(const eval_dataset *set, const wds_export_options *opt, wds_export_stats *stats,
                               vt_error *err) {
    memset(stats, 0, sizeof *stats);
    if (!set->captions) return vt_fail(err, VT_ERR_ARGUMENT, "wds export: the set has no captions");
    size_t n = set->n;
    size_t *order = malloc((n ? n : 1) * sizeof *order), *first_of = malloc((n ? n : 1) * sizeof *first_of);
    if (!order || !first_of) {
        free(order);
        free(first_of);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    /* Group rows by image path (stable), then emit the groups in the order
     * their first row appears, as the evaluation numbers images. */
    for (size_t i = 0; i < n; i++) order[i] = i;
    sort_set = set;
    qsort(order, n, sizeof *order, by_path_then_row);
    size_t images = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(set->paths[order[i]], set->paths[order[i - 1]])) first_of[images++] = i;
    /* group g spans order[first_of[g] .. next); sort groups by their first row */
    size_t *group_order = malloc((images ? images : 1) * sizeof *group_order);
    vt_status st = group_order ? VT_OK : vt_fail(err, VT_ERR_NOMEM, "out of memory");
    for (size_t g = 0; g < images && !st; g++) group_order[g] = g;
    for (size_t g = 1; g < images && !st; g++) { /* insertion sort by first row; groups are usually in order */
        size_t v = group_order[g], k = g;
        while (k > 0 && order[first_of[group_order[k - 1]]] > order[first_of[v]]) {
            group_order[k] = group_order[k - 1];
            k--;
        }
        group_order[k] = v;
    }
    exporter e;
    if (!st) st = exporter_start(&e, opt, images, err);
    else memset(&e, 0, sizeof e);
    for (size_t gi = 0; gi < images && !st; gi++) {
        size_t g = group_order[gi], from = first_of[g], to = g + 1 < images ? first_of[g + 1] : n;
        char **lines = malloc((to - from) * sizeof *lines);
        if (!lines) {
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t r = from; r < to; r++) {
            lines[r - from] = set->captions[order[r]];
            if (strchr(lines[r - from], '\n')) {
                st = vt_fail(err, VT_ERR_VALUE, "caption of %s holds a line break: CLIP_benchmark reads one caption "
                                                "per line", set->paths[order[r]]);
            }
        }
        char *txt = st ? NULL : join_lines(lines, to - from, 0);
        free(lines);
        if (!st && !txt) st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
        if (!st) st = exporter_add(&e, set->paths[order[from]], "txt", txt, err);
        free(txt);
        stats->captions += to - from;
    }
    if (!st) st = exporter_finish(&e, stats, err);
    exporter_abort(&e);
    free(order);
    free(first_of);
    free(group_order);
    if (!st) st = write_text(opt->out_dir, "dataset_type.txt", "retrieval\n", err);
    return st;
}
