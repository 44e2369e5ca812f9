/* CSV tables and WebDataset shards as indexed sample sources (see data_source.h). */
#include "train/data_source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/error.h"
#include "io/dataset/csv.h"
#include "io/dataset/shard_list.h"
#include "io/dataset/tar_reader.h"

/* Shards beyond this many are opened per read instead of held open, so a
 * dataset of thousands of shards stays under the descriptor limit. */
#define MAX_OPEN_SHARDS 256

typedef struct {
    char *path;
    int fd;                 /* -1: open per read */
    tar_index index;
    int64_t first;          /* global index of its first sample */
} shard;

struct data_source {
    int is_tar;
    int64_t count;
    /* CSV */
    csv_table table;
    char *table_path;
    int image_column, caption_column;
    /* tar */
    shard *shards;
    size_t shard_count;
};

static int ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------------------- */
/* CSV                                                                        */
/* ------------------------------------------------------------------------- */

static vt_status open_csv(data_source *src, const data_options *o, vt_error *err) {
    char sep = o->csv_separator ? o->csv_separator : '\t';
    const char *img_key = o->csv_img_key ? o->csv_img_key : "filepath";
    const char *caption_key = o->csv_caption_key ? o->csv_caption_key : "title";
    vt_status st = csv_read(o->train_data, sep, &src->table, err);
    if (st != VT_OK) return st;
    if (!(src->table_path = strdup(o->train_data))) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    st = csv_require_column(&src->table, o->train_data, img_key, "--csv-img-key", &src->image_column, err);
    if (st == VT_OK)
        st = csv_require_column(&src->table, o->train_data, caption_key, "--csv-caption-key", &src->caption_column,
                                err);
    if (st == VT_OK && src->table.rows == 0)
        st = vt_fail(err, VT_ERR_FORMAT, "%s has a header but no rows; nothing to train on", o->train_data);
    src->count = (int64_t)src->table.rows;
    return st;
}

/* pandas.read_csv turns these cells into NaN (its default na_values), and
 * CsvDataset's str() makes every one of them the text "nan". */
static const char *pandas_cell(const char *cell) {
    static const char *const NA[] = {"",     "#N/A", "#N/A N/A", "#NA",  "-1.#IND", "-1.#QNAN", "-NaN",
                                     "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",     "NA",       "NULL",
                                     "NaN",  "None", "n/a",      "nan",  "null"};
    for (size_t i = 0; i < sizeof NA / sizeof NA[0]; i++)
        if (!strcmp(cell, NA[i])) return "nan";
    return cell;
}

static vt_status read_csv_sample(const data_source *src, int64_t index, decoded_image *image, char **caption,
                                 size_t *caption_len, vt_error *err) {
    const char *cell = pandas_cell(csv_cell(&src->table, (size_t)index, src->image_column));
    char *path = csv_resolve_path(src->table_path, cell);
    if (!path) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status st = image_decode_file(path, image, err);
    if (st != VT_OK) vt_error_prefix(err, "%s row %lld: ", src->table_path, (long long)index + 1);
    free(path);
    if (st != VT_OK) return st;
    const char *text = pandas_cell(csv_cell(&src->table, (size_t)index, src->caption_column));
    *caption_len = strlen(text);
    if (!(*caption = strdup(text))) {
        image_free(image);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    return VT_OK;
}

/* ------------------------------------------------------------------------- */
/* Tar shards                                                                 */
/* ------------------------------------------------------------------------- */

static vt_status open_tar(data_source *src, const data_options *o, vt_error *err) {
    shard_list list;
    vt_status st = shard_list_expand(o->train_data, &list, err);
    if (st != VT_OK) return st;
    src->shards = calloc(list.count, sizeof *src->shards);
    if (!src->shards) {
        shard_list_free(&list);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu shards", list.count);
    }
    for (size_t i = 0; i < list.count; i++) src->shards[i].fd = -1;
    src->shard_count = list.count;
    for (size_t i = 0; i < list.count && st == VT_OK; i++) {
        shard *sh = &src->shards[i];
        sh->path = list.paths[i];
        list.paths[i] = NULL;
        sh->first = src->count;
        st = tar_index_shard(sh->path, &sh->index, err);
        src->count += (int64_t)sh->index.count;
        if (st == VT_OK && list.count <= MAX_OPEN_SHARDS) {
            sh->fd = open(sh->path, O_RDONLY | O_CLOEXEC);
            if (sh->fd < 0) st = vt_fail(err, VT_ERR_IO, "cannot open shard %s: %s", sh->path, strerror(errno));
        }
    }
    shard_list_free(&list);
    return st;
}

/* The shard holding global sample `index` (binary search on first). */
static const shard *shard_of(const data_source *src, int64_t index, size_t *local) {
    size_t lo = 0, hi = src->shard_count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (src->shards[mid].first <= index) lo = mid;
        else hi = mid;
    }
    *local = (size_t)(index - src->shards[lo].first);
    return &src->shards[lo];
}

static vt_status pread_all(const shard *sh, int fd, uint64_t offset, uint64_t size, uint8_t **out, vt_error *err) {
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %llu bytes", (unsigned long long)size);
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, buf + done, (size_t)size - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            free(buf);
            return vt_fail(err, VT_ERR_IO, "%s: %s at byte %llu (was the shard changed after it was indexed?)",
                           sh->path, got < 0 ? strerror(errno) : "unexpected end of file",
                           (unsigned long long)(offset + done));
        }
        done += (size_t)got;
    }
    *out = buf;
    return VT_OK;
}

static vt_status read_tar_sample(const data_source *src, int64_t index, decoded_image *image, char **caption,
                                 size_t *caption_len, vt_error *err) {
    size_t local;
    const shard *sh = shard_of(src, index, &local);
    const tar_sample *s = &sh->index.samples[local];
    int fd = sh->fd;
    if (fd < 0 && (fd = open(sh->path, O_RDONLY | O_CLOEXEC)) < 0)
        return vt_fail(err, VT_ERR_IO, "cannot open shard %s: %s", sh->path, strerror(errno));
    uint8_t *bytes = NULL, *text = NULL;
    vt_status st = pread_all(sh, fd, s->image_offset, s->image_size, &bytes, err);
    if (st == VT_OK) st = pread_all(sh, fd, s->text_offset, s->text_size, &text, err);
    if (fd != sh->fd) close(fd);
    if (st == VT_OK) {
        st = image_decode_memory(bytes, (size_t)s->image_size, image, err);
        if (st != VT_OK) vt_error_prefix(err, "%s: %s: ", sh->path, tar_sample_name(&sh->index, local));
    }
    free(bytes);
    if (st != VT_OK) {
        free(text);
        return st;
    }
    /* NUL-terminated for convenience; the length is what counts. */
    uint8_t *terminated = realloc(text, (size_t)s->text_size + 1);
    if (!terminated) {
        free(text);
        image_free(image);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    terminated[s->text_size] = '\0';
    *caption = (char *)terminated;
    *caption_len = (size_t)s->text_size;
    return VT_OK;
}

/* ------------------------------------------------------------------------- */
/* Interface                                                                  */
/* ------------------------------------------------------------------------- */

vt_status data_source_open(const data_options *o, data_source **out, vt_error *err) {
    *out = NULL;
    if (!o || !o->train_data || !*o->train_data)
        return vt_fail(err, VT_ERR_ARGUMENT, "no training data given; pass a .csv/.tsv table or .tar shards");
    data_source *src = calloc(1, sizeof *src);
    if (!src) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status st;
    if (ends_with_ci(o->train_data, ".csv") || ends_with_ci(o->train_data, ".tsv")) {
        st = open_csv(src, o, err);
    } else if (ends_with_ci(o->train_data, ".tar")) {
        src->is_tar = 1;
        st = open_tar(src, o, err);
    } else {
        st = vt_fail(err, VT_ERR_ARGUMENT,
                     "cannot tell the type of training data '%s': expected a .csv/.tsv table or .tar shards "
                     "(e.g. dir/shard-{000..009}.tar)",
                     o->train_data);
    }
    if (st != VT_OK) {
        data_source_close(src);
        return st;
    }
    *out = src;
    return VT_OK;
}

int64_t data_source_count(const data_source *src) { return src->count; }

int data_source_rgb_first(const data_source *src) { return src->is_tar; }

vt_status data_source_read(const data_source *src, int64_t index, decoded_image *image, char **caption,
                           size_t *caption_len, vt_error *err) {
    if (index < 0 || index >= src->count)
        return vt_fail(err, VT_ERR_ARGUMENT, "sample %lld outside 0..%lld", (long long)index,
                       (long long)src->count - 1);
    return src->is_tar ? read_tar_sample(src, index, image, caption, caption_len, err)
                       : read_csv_sample(src, index, image, caption, caption_len, err);
}

void data_source_describe(const data_source *src, int64_t index, char *out, size_t size) {
    if (index < 0 || index >= src->count) {
        snprintf(out, size, "sample %lld", (long long)index);
    } else if (src->is_tar) {
        size_t local;
        const shard *sh = shard_of(src, index, &local);
        snprintf(out, size, "%s: %s", sh->path, tar_sample_name(&sh->index, local));
    } else {
        snprintf(out, size, "%s row %lld (%s)", src->table_path, (long long)index + 1,
                 csv_cell(&src->table, (size_t)index, src->image_column));
    }
}

void data_source_close(data_source *src) {
    if (!src) return;
    csv_free(&src->table);
    free(src->table_path);
    for (size_t i = 0; i < src->shard_count; i++) {
        if (src->shards[i].fd >= 0) close(src->shards[i].fd);
        tar_index_free(&src->shards[i].index);
        free(src->shards[i].path);
    }
    free(src->shards);
    free(src);
}
