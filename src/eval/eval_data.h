/* Evaluation sets on disk, read the way open_clip / torchvision / clip_benchmark
 * read them, into the flat lists eval_metrics.h takes:
 *  - ImageFolder: one subdirectory per class, classes = sorted subdirectory
 *    names (index = position), images = files below each class directory
 *    (recursively) with torchvision's image extensions;
 *  - a classification CSV/TSV: an image column and a label column holding a
 *    class index 0..C-1 or a class name;
 *  - a retrieval CSV/TSV: image and caption columns, one row per pair.
 * Relative image paths in a table resolve as csv_resolve_path says. Every
 * image must exist: a missing one fails now, naming the file and row, rather
 * than after hours of embedding. */
#ifndef VT_EVAL_EVAL_DATA_H
#define VT_EVAL_EVAL_DATA_H

#include <stddef.h>

#include "vitamin.h"

typedef struct {
    size_t n;
    char **paths;        /* [n] image files */
    int *labels;         /* [n] class index (classification), else NULL */
    char **captions;     /* [n] (retrieval), else NULL */
    int n_classes;       /* ImageFolder: from the directory names */
    char **classnames;   /* ImageFolder: [n_classes] directory names, else NULL */
} eval_dataset;

typedef struct {
    char separator;            /* '\t' in open_clip */
    const char *img_key;       /* "filepath" */
    const char *label_key;     /* "label" */
    const char *caption_key;   /* "title" */
} eval_csv_options;

vt_status eval_load_image_folder(const char *dir, eval_dataset *out, vt_error *err);

/* classnames: [n_classes], for labels given by name (and to bound indices). */
vt_status eval_load_classification_csv(const char *path, const eval_csv_options *opt, const char *const *classnames,
                                       int n_classes, eval_dataset *out, vt_error *err);

vt_status eval_load_retrieval_csv(const char *path, const eval_csv_options *opt, eval_dataset *out, vt_error *err);

void eval_dataset_free(eval_dataset *set);

/* Everything zero-shot classification reads, as `vitamin eval zeroshot` (and
 * `vitamin dataset export-wds`) read it: an ImageFolder directory (class
 * names from its subdirectories unless `classnames_path` is given, then
 * their counts must agree) or a classification table (class names
 * required), and the templates file (each line with {} or {c}; NULL:
 * open_clip's default templates). */
typedef struct {
    eval_dataset set;
    char **classes;
    size_t n_classes;
    char **templates;
    size_t n_templates;
} eval_zeroshot_inputs;

vt_status eval_load_zeroshot_inputs(const char *data, const char *classnames_path, const char *templates_path,
                                    const eval_csv_options *csv, eval_zeroshot_inputs *out, vt_error *err);
void eval_zeroshot_inputs_free(eval_zeroshot_inputs *in);

/* Non-empty lines of a UTF-8 text file (class names, templates), without
 * their line ends. Fails naming the file and line for invalid UTF-8 or NUL;
 * `what` ("class names") says what the file was for. */
vt_status eval_read_lines(const char *path, const char *what, char ***lines, size_t *count, vt_error *err);
void eval_free_lines(char **lines, size_t count);

#endif
