/* Evaluation metrics as clip_benchmark computes them, for a model already in
 * memory: the CLI passes a loaded checkpoint, the trainer its live weights.
 *
 * Zero-shot classification: open_clip's template-ensembled classifier
 * (eval/zeroshot.h); top-1 / top-5 accuracy (top-k with k = min(5, classes),
 * as clip_benchmark does) and mean per-class recall (sklearn's
 * balanced_accuracy_score of the argmax: the mean, over the classes that have
 * images, of the fraction of their images predicted as that class).
 *
 * Retrieval: rows with the same image path are one image with several
 * captions. Text→image ("image retrieval" in clip_benchmark): a caption is a
 * hit at k if its image is among the k images most similar to it.
 * Image→text ("text retrieval"): an image is a hit at k if any of its captions
 * is among the k captions most similar to it.
 *
 * Ties: a candidate outranks the right answer only with a strictly higher
 * score (torch.topk's order among exact ties is unspecified anyway).
 *
 * Memory: images and texts are embedded `batch` at a time; zero-shot keeps
 * only per-class counts, retrieval keeps the embeddings (n x embed_dim floats
 * per side) and never the full score matrix. */
#ifndef VT_EVAL_EVAL_METRICS_H
#define VT_EVAL_EVAL_METRICS_H

#include <stddef.h>

#include "vitamin.h"

/* Progress report: `what` is "classes", "images" or "texts"; each stage is
 * reported once with done = 0 as it starts, then after every batch. */
typedef void (*eval_progress_fn)(void *user, const char *what, size_t done, size_t total);

typedef struct {
    int batch;                  /* inputs per encode call; 0: 32 images / 256 texts */
    eval_progress_fn progress;  /* may be NULL */
    void *progress_user;
} eval_options;

typedef struct {
    size_t n_images;
    int n_classes;
    int top5_k;                    /* the k of "top-5": min(5, n_classes) */
    size_t top1_correct, top5_correct;
    double top1, top5;             /* fractions of images, 0..1 */
    double mean_per_class_recall;  /* 0..1 */
    int classes_with_images;       /* the classes that mean is taken over */
} zeroshot_metrics;

enum { RETRIEVAL_KS = 3 };
extern const int RETRIEVAL_K[RETRIEVAL_KS]; /* 1, 5, 10 */

typedef struct {
    size_t n_images, n_texts;              /* distinct images, captions (= rows) */
    double image_to_text[RETRIEVAL_KS];    /* recall@1/5/10, fractions of images */
    double text_to_image[RETRIEVAL_KS];    /* recall@1/5/10, fractions of captions */
} retrieval_metrics;

/* labels[i] in [0, n_classes): the class of image_paths[i]. templates: with {}
 * or {c} (e.g. ZEROSHOT_DEFAULT_TEMPLATES). `opt` may be NULL. Image errors
 * name the file. */
vt_status eval_zeroshot(const vt_model *model, const vt_tokenizer *tok, const char *const *image_paths,
                        const int *labels, size_t n, const char *const *classnames, int n_classes,
                        const char *const *templates, int n_templates, const eval_options *opt,
                        zeroshot_metrics *out, vt_error *err);

/* The same from embeddings already computed: image_features [n, dim] and
 * class_weights [n_classes, dim] (zeroshot_classifier's output). */
vt_status eval_zeroshot_features(const float *image_features, const int *labels, size_t n,
                                 const float *class_weights, int n_classes, int dim, zeroshot_metrics *out,
                                 vt_error *err);

/* n rows of (image path, caption). */
vt_status eval_retrieval(const vt_model *model, const vt_tokenizer *tok, const char *const *image_paths,
                         const char *const *captions, size_t n, const eval_options *opt, retrieval_metrics *out,
                         vt_error *err);

/* The same from embeddings: image_features [n_images, dim], text_features
 * [n_texts, dim], text_image[t] = index of caption t's image. Every image
 * needs at least one caption. */
vt_status eval_retrieval_features(const float *image_features, size_t n_images, const float *text_features,
                                  const size_t *text_image, size_t n_texts, int dim, retrieval_metrics *out,
                                  vt_error *err);

#endif
