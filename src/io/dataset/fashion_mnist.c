/* The Fashion-MNIST demo dataset (see fashion_mnist.h): Debian's IDX files ->
 * PNG files + open_clip-style tables. */
#include "io/dataset/fashion_mnist.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/dataset/idx.h"
#include "io/image/image_encode.h"
#include "train/rng.h"

#define CLASS_COUNT 10

static const char *const CLASS_NAMES[CLASS_COUNT] = {"t-shirt", "trouser", "pullover", "dress",   "coat",
                                                     "sandal",  "shirt",   "sneaker",  "bag",     "ankle boot"};

/* Caption phrasings: %s is the article ("a"/"an") where there is one, then the name. */
typedef struct {
    const char *format;
    int has_article;
} phrasing;

static const phrasing PHRASINGS[] = {
    {"a photo of %s %s.", 1},
    {"a black and white photo of the %s.", 0},
    {"%s %s.", 1},
    {"a picture of %s %s", 1},
    {"a grayscale photo of %s %s.", 1},
    {"a low resolution photo of the %s.", 0},
    {"a product photo of %s %s.", 1},
    {"a close-up photo of the %s.", 0},
};

static const char *const TEMPLATES[] = {
    "a photo of a {}.", "a black and white photo of the {}.", "a low resolution photo of a {}.",
    "a photo of the {}.", "a picture of a {}.",
};

/* ------------------------------------------------------------------------- */
/* Files                                                                      */
/* ------------------------------------------------------------------------- */

/* Each file is complete or absent after a kill (temp file + rename); the
 * files are not fsync'ed one by one (70,000 fsyncs would take minutes here):
 * fashion_mnist_write syncs the file system once at the end. */
static vt_status write_if_changed(const char *path, const void *bytes, size_t size, vt_error *err) {
    return atomic_file_write_all(path, bytes, size, 0, err);
}

static vt_status make_dir(const char *path, vt_error *err) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat info;
        if (stat(path, &info) == 0 && S_ISDIR(info.st_mode)) return VT_OK;
        return vt_fail(err, VT_ERR_IO, "%s exists and is not a directory", path);
    }
    return vt_fail(err, VT_ERR_IO, "cannot create directory %s: %s", path, strerror(errno));
}

/* A growing text buffer for the tables. */
typedef struct {
    char *text;
    size_t size, capacity;
} text_buffer;

static int append(text_buffer *b, const char *s) {
    size_t n = strlen(s);
    if (b->size + n + 1 > b->capacity) {
        size_t capacity = b->capacity ? b->capacity * 2 : 1 << 16;
        while (capacity < b->size + n + 1) capacity *= 2;
        char *grown = realloc(b->text, capacity);
        if (!grown) return 0;
        b->text = grown;
        b->capacity = capacity;
    }
    memcpy(b->text + b->size, s, n + 1);
    b->size += n;
    return 1;
}

/* ------------------------------------------------------------------------- */
/* The dataset                                                                */
/* ------------------------------------------------------------------------- */

typedef struct {
    idx_array images, labels;
    int width, height;
} idx_split;

/* Opens SRC/NAME.gz, or SRC/NAME if there is no .gz. */
static vt_status read_idx(const char *src, const char *name, idx_array *out, vt_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gz", src, name);
    if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/%s", src, name);
    if (access(path, R_OK) != 0)
        return vt_fail(err, VT_ERR_IO,
                       "cannot read %s/%s[.gz]; install Debian's dataset-fashion-mnist "
                       "(apt-get install dataset-fashion-mnist) or pass --src DIR",
                       src, name);
    return idx_read_file(path, out, err);
}

static vt_status load_split(const char *src, const char *prefix, idx_split *split, vt_error *err) {
    char images_name[64], labels_name[64];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", prefix);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", prefix);
    vt_status st = read_idx(src, images_name, &split->images, err);
    if (st == VT_OK) st = read_idx(src, labels_name, &split->labels, err);
    if (st != VT_OK) return st;
    if (split->images.ndim != 3 || split->images.dims[1] < 1 || split->images.dims[2] < 1 ||
        split->images.dims[1] > 4096 || split->images.dims[2] > 4096)
        return vt_fail(err, VT_ERR_FORMAT, "%s/%s: expected images of shape [count, rows, cols]", src, images_name);
    if (split->labels.ndim != 1 || split->labels.dims[0] != split->images.dims[0])
        return vt_fail(err, VT_ERR_FORMAT, "%s/%s: %u labels for %u images in %s", src, labels_name,
                       split->labels.ndim == 1 ? split->labels.dims[0] : 0, split->images.dims[0], images_name);
    if (split->images.dims[0] > 99999)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s/%s: %u images, at most 99999 fit the file names", src,
                       images_name, split->images.dims[0]);
    for (size_t i = 0; i < split->labels.count; i++)
        if (split->labels.data[i] >= CLASS_COUNT)
            return vt_fail(err, VT_ERR_FORMAT, "%s/%s: label %u of image %zu is not a class 0..9", src, labels_name,
                           split->labels.data[i], i);
    split->height = (int)split->images.dims[1];
    split->width = (int)split->images.dims[2];
    return VT_OK;
}

/* The caption of training image i: a phrasing picked by a hash of i. */
static void caption_for(size_t i, int label, char *out, size_t size) {
    size_t count = sizeof PHRASINGS / sizeof PHRASINGS[0];
    const phrasing *p = &PHRASINGS[rng_mix64((uint64_t)i + 0x66617368ULL /* "fash" */) % count];
    const char *name = CLASS_NAMES[label];
    const char *article = strchr("aeiou", name[0]) ? "an" : "a";
    if (p->has_article) snprintf(out, size, p->format, article, name);
    else snprintf(out, size, p->format, name);
}

/* Writes DIR/SPLIT/NNNNN.png for every image, in parallel. */
static vt_status write_pngs(const char *out_dir, const char *split_name, const idx_split *split, vt_error *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", out_dir, split_name);
    vt_status st = make_dir(dir, err);
    if (st != VT_OK) return st;
    long long n = (long long)split->images.dims[0];
    size_t pixels = (size_t)split->width * split->height;
    int failed = 0;
#pragma omp parallel
    {
        png_memory png = {0};
        vt_error local = {0};
#pragma omp for schedule(dynamic, 256)
        for (long long i = 0; i < n; i++) {
            if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
            char path[4200];
            snprintf(path, sizeof path, "%s/%05lld.png", dir, i);
            vt_status s = VT_OK;
            if (!png_encode_gray(split->images.data + (size_t)i * pixels, split->width, split->height, &png))
                s = vt_fail(&local, VT_ERR_NOMEM, "cannot encode %s", path);
            else
                s = write_if_changed(path, png.bytes, png.size, &local);
            if (s != VT_OK) {
#pragma omp critical(dataset_error)
                if (!failed) {
                    failed = 1;
                    st = s;
                    if (err) *err = local;
                }
            }
        }
        free(png.bytes);
    }
    return st;
}

static vt_status write_text(const char *out_dir, const char *name, const text_buffer *text, vt_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    return write_if_changed(path, text->text ? text->text : "", text->size, err);
}

static vt_status write_tables(const char *out_dir, const idx_split *train, const idx_split *test, vt_error *err) {
    text_buffer train_csv = {0}, test_csv = {0}, classes = {0}, templates = {0};
    int ok = append(&train_csv, "filepath\ttitle\n") && append(&test_csv, "filepath\tlabel\n");
    char line[256], caption[128];
    for (size_t i = 0; ok && i < train->labels.count; i++) {
        caption_for(i, train->labels.data[i], caption, sizeof caption);
        snprintf(line, sizeof line, "train/%05zu.png\t%s\n", i, caption);
        ok = append(&train_csv, line);
    }
    for (size_t i = 0; ok && i < test->labels.count; i++) {
        snprintf(line, sizeof line, "test/%05zu.png\t%d\n", i, test->labels.data[i]);
        ok = append(&test_csv, line);
    }
    for (int c = 0; ok && c < CLASS_COUNT; c++) ok = append(&classes, CLASS_NAMES[c]) && append(&classes, "\n");
    for (size_t t = 0; ok && t < sizeof TEMPLATES / sizeof TEMPLATES[0]; t++)
        ok = append(&templates, TEMPLATES[t]) && append(&templates, "\n");
    vt_status st = ok ? VT_OK : vt_fail(err, VT_ERR_NOMEM, "out of memory building the tables");
    if (st == VT_OK) st = write_text(out_dir, "train.csv", &train_csv, err);
    if (st == VT_OK) st = write_text(out_dir, "test.csv", &test_csv, err);
    if (st == VT_OK) st = write_text(out_dir, "classnames.txt", &classes, err);
    if (st == VT_OK) st = write_text(out_dir, "templates.txt", &templates, err);
    free(train_csv.text);
    free(test_csv.text);
    free(classes.text);
    free(templates.text);
    return st;
}

vt_status fashion_mnist_write(const char *src, const char *out_dir, int *train_count, int *test_count, vt_error *err) {
    idx_split train = {0}, test = {0};
    vt_status st = load_split(src, "train", &train, err);
    if (st == VT_OK) st = load_split(src, "t10k", &test, err);
    if (st == VT_OK) st = make_dir(out_dir, err);
    if (st == VT_OK) st = write_pngs(out_dir, "train", &train, err);
    if (st == VT_OK) st = write_pngs(out_dir, "test", &test, err);
    if (st == VT_OK) st = write_tables(out_dir, &train, &test, err);
    if (st == VT_OK) {
        int fd = open(out_dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || syncfs(fd)) st = vt_fail(err, VT_ERR_IO, "cannot sync %s: %s", out_dir, strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (train_count) *train_count = (int)train.images.dims[0];
    if (test_count) *test_count = (int)test.images.dims[0];
    idx_free(&train.images);
    idx_free(&train.labels);
    idx_free(&test.images);
    idx_free(&test.labels);
    return st;
}
