/* Zero-shot classification accuracy (eval_metrics.h): build the classifier,
 * embed the images a batch at a time, and keep only per-class counts. */
#include <stdlib.h>

#include "core/error.h"
#include "eval/eval_metrics.h"
#include "eval/similarity.h"
#include "eval/zeroshot.h"

enum { DEFAULT_IMAGE_BATCH = 32, CLASSES_PER_CALL = 16 };

/* Running counts over the images seen so far. */
typedef struct {
    int n_classes, k;
    size_t n, top1, topk;
    size_t *class_total, *class_hit;
    /* the chunk being scored */
    const int *labels;
    double *target_score;   /* score of each image's own class */
    size_t *above;          /* classes scoring strictly higher */
} zeroshot_tally;

static void count_above(void *user, size_t a0, size_t na, size_t b0, size_t nb, const float *scores) {
    zeroshot_tally *t = user;
    for (size_t i = 0; i < na; i++) {
        size_t img = a0 + i, own = (size_t)t->labels[img];
        const float *row = scores + i * nb;
        for (size_t j = 0; j < nb; j++)
            /* the own class is skipped, not compared: its GEMM score may round
             * a hair away from target_score */
            if (b0 + j != own && row[j] > t->target_score[img]) t->above[img]++;
    }
}

static vt_status tally_add(zeroshot_tally *t, const float *features, const int *labels, size_t n,
                           const float *weights, int dim, vt_error *err) {
    t->labels = labels;
    for (size_t i = 0; i < n; i++) {
        const float *x = features + i * dim, *w = weights + (size_t)labels[i] * dim;
        double dot = 0;
        for (int j = 0; j < dim; j++) dot += (double)x[j] * w[j];
        t->target_score[i] = (float)dot;
        t->above[i] = 0;
    }
    vt_status st = similarity_blocks(features, n, weights, (size_t)t->n_classes, dim, count_above, t, err);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        t->class_total[labels[i]]++;
        if (t->above[i] == 0) {
            t->top1++;
            t->class_hit[labels[i]]++;
        }
        if (t->above[i] < (size_t)t->k) t->topk++;
    }
    t->n += n;
    return VT_OK;
}

static vt_status tally_init(zeroshot_tally *t, int n_classes, size_t chunk, vt_error *err) {
    *t = (zeroshot_tally){.n_classes = n_classes, .k = n_classes < 5 ? n_classes : 5};
    t->class_total = calloc((size_t)n_classes, sizeof *t->class_total);
    t->class_hit = calloc((size_t)n_classes, sizeof *t->class_hit);
    t->target_score = malloc(chunk * sizeof *t->target_score);
    t->above = malloc(chunk * sizeof *t->above);
    if (!t->class_total || !t->class_hit || !t->target_score || !t->above)
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for %d classes", n_classes);
    return VT_OK;
}

static void tally_finish(const zeroshot_tally *t, zeroshot_metrics *out) {
    *out = (zeroshot_metrics){.n_images = t->n, .n_classes = t->n_classes, .top5_k = t->k,
                              .top1_correct = t->top1, .top5_correct = t->topk};
    if (t->n) {
        out->top1 = (double)t->top1 / (double)t->n;
        out->top5 = (double)t->topk / (double)t->n;
    }
    double recall_sum = 0;
    for (int c = 0; c < t->n_classes; c++)
        if (t->class_total[c]) {
            recall_sum += (double)t->class_hit[c] / (double)t->class_total[c];
            out->classes_with_images++;
        }
    if (out->classes_with_images) out->mean_per_class_recall = recall_sum / out->classes_with_images;
}

static void tally_free(zeroshot_tally *t) {
    free(t->class_total);
    free(t->class_hit);
    free(t->target_score);
    free(t->above);
}

static vt_status check_labels(const int *labels, size_t n, int n_classes, vt_error *err) {
    if (n_classes <= 0) return vt_fail(err, VT_ERR_ARGUMENT, "zero-shot evaluation needs at least one class");
    if (n && !labels) return vt_fail(err, VT_ERR_ARGUMENT, "zero-shot evaluation: no labels");
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return vt_fail(err, VT_ERR_ARGUMENT, "label %d of image %zu is not a class index in [0, %d)", labels[i], i,
                           n_classes);
    return VT_OK;
}

vt_status eval_zeroshot_features(const float *image_features, const int *labels, size_t n, const float *class_weights,
                                 int n_classes, int dim, zeroshot_metrics *out, vt_error *err) {
    if (!out || (n && !image_features) || !class_weights || dim <= 0)
        return vt_fail(err, VT_ERR_ARGUMENT, "eval_zeroshot_features: bad arguments");
    vt_status st = check_labels(labels, n, n_classes, err);
    if (st) return st;
    zeroshot_tally t;
    st = tally_init(&t, n_classes, n ? n : 1, err);
    if (!st) st = tally_add(&t, image_features, labels, n, class_weights, dim, err);
    if (!st) tally_finish(&t, out);
    tally_free(&t);
    return st;
}

static void report(const eval_options *opt, const char *what, size_t done, size_t total) {
    if (opt && opt->progress) opt->progress(opt->progress_user, what, done, total);
}

vt_status eval_zeroshot(const vt_model *model, const vt_tokenizer *tok, const char *const *image_paths,
                        const int *labels, size_t n, const char *const *classnames, int n_classes,
                        const char *const *templates, int n_templates, const eval_options *opt,
                        zeroshot_metrics *out, vt_error *err) {
    if (!model || !tok || !out || (n && !image_paths) || !classnames || !templates)
        return vt_fail(err, VT_ERR_ARGUMENT, "eval_zeroshot: bad arguments");
    if (n == 0) return vt_fail(err, VT_ERR_ARGUMENT, "zero-shot evaluation: no images");
    vt_status st = check_labels(labels, n, n_classes, err);
    if (st) return st;
    vt_model_info info;
    vt_model_get_info(model, &info);
    if (!info.has_text)
        return vt_fail(err, VT_ERR_MODEL, "%s has no text tower (image-only checkpoint): zero-shot needs one", info.name);
    int dim = info.embed_dim;
    size_t batch = opt && opt->batch > 0 ? (size_t)opt->batch : DEFAULT_IMAGE_BATCH;
    if (batch > n) batch = n;

    float *weights = malloc((size_t)n_classes * dim * sizeof(float));
    float *features = malloc(batch * dim * sizeof(float));
    zeroshot_tally t;
    st = tally_init(&t, n_classes, batch, err);
    if (!st && (!weights || !features)) st = vt_fail(err, VT_ERR_NOMEM, "out of memory for %d classes", n_classes);
    if (!st) report(opt, "classes", 0, (size_t)n_classes); /* stage starts: lets the caller time it */
    for (int c = 0; c < n_classes && !st; c += CLASSES_PER_CALL) {
        int count = n_classes - c < CLASSES_PER_CALL ? n_classes - c : CLASSES_PER_CALL;
        st = zeroshot_classifier(model, tok, classnames + c, count, templates, n_templates,
                                 weights + (size_t)c * dim, err);
        report(opt, "classes", (size_t)(c + count), (size_t)n_classes);
    }
    if (!st) report(opt, "images", 0, n);
    for (size_t i = 0; i < n && !st; i += batch) {
        size_t count = n - i < batch ? n - i : batch;
        st = vt_encode_image_files(model, image_paths + i, (int)count, 1, features, err);
        if (!st) st = tally_add(&t, features, labels + i, count, weights, dim, err);
        report(opt, "images", i + count, n);
    }
    if (!st) tally_finish(&t, out);
    tally_free(&t);
    free(weights);
    free(features);
    return st;
}
