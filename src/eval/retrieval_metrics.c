/* Image–text retrieval recall@K (eval_metrics.h): rows sharing an image path
 * become one image with several captions; both sides are embedded a batch at
 * a time and ranked through blocked similarities. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/eval_metrics.h"
#include "eval/similarity.h"

const int RETRIEVAL_K[RETRIEVAL_KS] = {1, 5, 10};

enum { DEFAULT_IMAGE_BATCH = 32, DEFAULT_TEXT_BATCH = 256 };

typedef struct {
    const size_t *text_image;
    const float *text_positive;   /* [n_texts] score of each caption with its own image */
    const float *image_positive;  /* [n_images] best score of each image with one of its captions */
    size_t *text_above;           /* images scoring strictly above the caption's own image */
    size_t *image_above;          /* other images' captions scoring strictly above the best own one */
} retrieval_tally;

/* Blocks of texts (a) x images (b). A caption's pair with its own image is
 * skipped, not compared: its GEMM score may round a hair away from the
 * positive score computed separately. */
static void count_above(void *user, size_t a0, size_t na, size_t b0, size_t nb, const float *scores) {
    retrieval_tally *t = user;
    for (size_t i = 0; i < na; i++) {
        size_t text = a0 + i, own = t->text_image[text];
        const float *row = scores + i * nb;
        float positive = t->text_positive[text];
        for (size_t j = 0; j < nb; j++) {
            size_t image = b0 + j;
            if (image == own) continue;
            if (row[j] > positive) t->text_above[text]++;
            if (row[j] > t->image_positive[image]) t->image_above[image]++;
        }
    }
}

static float dot(const float *a, const float *b, int dim) {
    double s = 0;
    for (int j = 0; j < dim; j++) s += (double)a[j] * b[j];
    return (float)s;
}

vt_status eval_retrieval_features(const float *image_features, size_t n_images, const float *text_features,
                                  const size_t *text_image, size_t n_texts, int dim, retrieval_metrics *out,
                                  vt_error *err) {
    if (!out || !image_features || !text_features || !text_image || dim <= 0 || !n_images || !n_texts)
        return vt_fail(err, VT_ERR_ARGUMENT, "eval_retrieval_features: need at least one image and one caption");
    float *text_positive = malloc(n_texts * sizeof(float));
    float *image_positive = malloc(n_images * sizeof(float));
    unsigned char *has_caption = calloc(n_images, 1);
    retrieval_tally t = {text_image, text_positive, image_positive, calloc(n_texts, sizeof(size_t)),
                         calloc(n_images, sizeof(size_t))};
    vt_status st = VT_OK;
    if (!text_positive || !image_positive || !has_caption || !t.text_above || !t.image_above)
        st = vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu images and %zu captions", n_images, n_texts);
    for (size_t i = 0; i < n_texts && !st; i++) {
        size_t image = text_image[i];
        if (image >= n_images) {
            st = vt_fail(err, VT_ERR_ARGUMENT, "caption %zu points at image %zu of %zu", i, image, n_images);
            break;
        }
        text_positive[i] = dot(text_features + i * dim, image_features + image * dim, dim);
        if (!has_caption[image] || text_positive[i] > image_positive[image]) image_positive[image] = text_positive[i];
        has_caption[image] = 1;
    }
    for (size_t i = 0; i < n_images && !st; i++)
        if (!has_caption[i]) st = vt_fail(err, VT_ERR_ARGUMENT, "image %zu has no caption", i);
    if (!st) st = similarity_blocks(text_features, n_texts, image_features, n_images, dim, count_above, &t, err);
    if (!st) {
        *out = (retrieval_metrics){.n_images = n_images, .n_texts = n_texts};
        for (int k = 0; k < RETRIEVAL_KS; k++) {
            size_t hits = 0;
            for (size_t i = 0; i < n_texts; i++) hits += t.text_above[i] < (size_t)RETRIEVAL_K[k];
            out->text_to_image[k] = (double)hits / (double)n_texts;
            hits = 0;
            for (size_t i = 0; i < n_images; i++) hits += t.image_above[i] < (size_t)RETRIEVAL_K[k];
            out->image_to_text[k] = (double)hits / (double)n_images;
        }
    }
    free(text_positive);
    free(image_positive);
    free(has_caption);
    free(t.text_above);
    free(t.image_above);
    return st;
}

static int compare_rows(const void *a, const void *b, void *paths) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(((const char *const *)paths)[x], ((const char *const *)paths)[y]);
    return c ? c : (x > y) - (x < y);
}

/* text_image[row] = index of the row's image, images numbered in order of first
 * appearance; first_row[image] = the row where it first appears. */
static vt_status group_images(const char *const *paths, size_t n, size_t *text_image, size_t *first_row,
                              size_t *n_images, vt_error *err) {
    size_t *order = malloc(n * sizeof *order), *rep = malloc(n * sizeof *rep);
    if (!order || !rep) {
        free(order);
        free(rep);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory grouping %zu rows by image", n);
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, compare_rows, (void *)paths);
    for (size_t i = 0; i < n; i++) /* ties sort by row, so a group's first entry is its first row */
        rep[order[i]] = i > 0 && !strcmp(paths[order[i]], paths[order[i - 1]]) ? rep[order[i - 1]] : order[i];
    *n_images = 0;
    for (size_t row = 0; row < n; row++) {
        if (rep[row] == row) {
            first_row[*n_images] = row;
            text_image[row] = (*n_images)++;
        } else {
            text_image[row] = text_image[rep[row]];
        }
    }
    free(order);
    free(rep);
    return VT_OK;
}

static void report(const eval_options *opt, const char *what, size_t done, size_t total) {
    if (opt && opt->progress) opt->progress(opt->progress_user, what, done, total);
}

/* Tokenizes caption by caption so that an error names its row. */
static vt_status embed_captions(const vt_model *model, const vt_tokenizer *tok, const char *const *captions, size_t n,
                                int context, int dim, size_t batch, const eval_options *opt, float *out,
                                vt_error *err) {
    int32_t *ids = malloc(batch * (size_t)context * sizeof *ids);
    if (!ids) return vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu token rows", batch);
    vt_status st = VT_OK;
    report(opt, "texts", 0, n);
    for (size_t i = 0; i < n && !st; i += batch) {
        size_t count = n - i < batch ? n - i : batch;
        for (size_t j = 0; j < count && !st; j++) {
            st = vt_tokenize(tok, captions[i + j], context, ids + j * context, err);
            if (st) vt_error_prefix(err, "caption of row %zu: ", i + j);
        }
        if (!st) st = vt_encode_tokens(model, ids, (int)count, 1, out + i * dim, err);
        report(opt, "texts", i + count, n);
    }
    free(ids);
    return st;
}

vt_status eval_retrieval(const vt_model *model, const vt_tokenizer *tok, const char *const *image_paths,
                         const char *const *captions, size_t n, const eval_options *opt, retrieval_metrics *out,
                         vt_error *err) {
    if (!model || !tok || !out || (n && (!image_paths || !captions)))
        return vt_fail(err, VT_ERR_ARGUMENT, "eval_retrieval: bad arguments");
    if (n == 0) return vt_fail(err, VT_ERR_ARGUMENT, "retrieval evaluation: no (image, caption) rows");
    vt_model_info info;
    vt_model_get_info(model, &info);
    if (!info.has_text)
        return vt_fail(err, VT_ERR_MODEL, "%s has no text tower (image-only checkpoint): retrieval needs one", info.name);
    int dim = info.embed_dim;
    size_t image_batch = opt && opt->batch > 0 ? (size_t)opt->batch : DEFAULT_IMAGE_BATCH;
    size_t text_batch = opt && opt->batch > 0 ? (size_t)opt->batch : DEFAULT_TEXT_BATCH;
    if (image_batch > INT32_MAX / 2) image_batch = INT32_MAX / 2;
    if (text_batch > n) text_batch = n;

    size_t *text_image = malloc(n * sizeof *text_image), *first_row = malloc(n * sizeof *first_row), n_images = 0;
    const char **unique_paths = NULL;
    float *text_features = malloc(n * (size_t)dim * sizeof(float)), *image_features = NULL;
    vt_status st = text_image && first_row && text_features
                       ? group_images(image_paths, n, text_image, first_row, &n_images, err)
                       : vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu rows", n);
    if (!st) {
        unique_paths = malloc(n_images * sizeof *unique_paths);
        image_features = malloc(n_images * (size_t)dim * sizeof(float));
        if (!unique_paths || !image_features) st = vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu images", n_images);
    }
    if (!st) {
        for (size_t i = 0; i < n_images; i++) unique_paths[i] = image_paths[first_row[i]];
        st = embed_captions(model, tok, captions, n, info.context_length, dim, text_batch, opt, text_features, err);
    }
    if (!st) report(opt, "images", 0, n_images);
    for (size_t i = 0; i < n_images && !st; i += image_batch) {
        size_t count = n_images - i < image_batch ? n_images - i : image_batch;
        st = vt_encode_image_files(model, unique_paths + i, (int)count, 1, image_features + i * dim, err);
        report(opt, "images", i + count, n_images);
    }
    if (!st) st = eval_retrieval_features(image_features, n_images, text_features, text_image, n, dim, out, err);
    free(text_image);
    free(first_row);
    free(unique_paths);
    free(text_features);
    free(image_features);
    return st;
}
