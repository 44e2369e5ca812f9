/* Evaluation sets on disk (eval_data.h): ImageFolder trees, classification and
 * retrieval tables, and the one-per-line files for class names and templates. */
#include "eval/eval_data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "eval/zeroshot.h"
#include "core/grow.h"
#include "io/dataset/csv.h"
#include "io/text/unicode_util.h"

/* torchvision.datasets.folder.IMG_EXTENSIONS: what ImageFolder counts as an
 * image. Formats the decoder lacks (bmp, tiff, ...) then fail by name when
 * embedded, instead of silently changing which images are scored. */
static const char *const IMAGE_EXTENSIONS[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
/* Class directories are walked to this depth (symlink loops end here). */
enum { MAX_FOLDER_DEPTH = 32 };

typedef struct {
    char **items;
    size_t count, capacity;
} string_list;

static int list_push(string_list *list, char *owned) {
    if (!owned || !vt_grow_array((void **)&list->items, &list->capacity, list->count, sizeof *list->items)) {
        free(owned);
        return 0;
    }
    list->items[list->count++] = owned;
    return 1;
}

static void list_free(string_list *list) {
    for (size_t i = 0; i < list->count; i++) free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *path = malloc(a + b + 2);
    if (!path) return NULL;
    memcpy(path, dir, a);
    size_t at = a;
    if (a && dir[a - 1] != '/') path[at++] = '/';
    memcpy(path + at, name, b + 1);
    return path;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof IMAGE_EXTENSIONS / sizeof *IMAGE_EXTENSIONS; i++)
        if (!strcasecmp(dot, IMAGE_EXTENSIONS[i])) return 1;
    return 0;
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode); /* follows links, as os.walk(followlinks=True) */
}

/* The entries of `dir` (no . and ..), sorted byte-wise = Python's sorted() on
 * UTF-8 names. */
static vt_status sorted_entries(const char *dir, string_list *out, vt_error *err) {
    DIR *d = opendir(dir);
    if (!d) return vt_fail(err, VT_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
    struct dirent *e;
    vt_status st = VT_OK;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!list_push(out, strdup(e->d_name))) st = vt_fail(err, VT_ERR_NOMEM, "out of memory listing %s", dir);
    }
    closedir(d);
    if (!st && out->count) qsort(out->items, out->count, sizeof *out->items, compare_strings);
    return st;
}

/* Adds the images under `dir` (recursively) with label `label`. */
static vt_status collect_images(const char *dir, int label, int depth, string_list *paths, int **labels,
                                size_t *labels_cap, vt_error *err) {
    if (depth > MAX_FOLDER_DEPTH)
        return vt_fail(err, VT_ERR_FORMAT, "%s is nested more than %d directories deep (a symlink loop?)", dir,
                       MAX_FOLDER_DEPTH);
    string_list names = {0};
    vt_status st = sorted_entries(dir, &names, err);
    for (size_t i = 0; i < names.count && !st; i++) {
        char *path = join_path(dir, names.items[i]);
        if (!path) {
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory listing %s", dir);
        } else if (is_directory(path)) {
            st = collect_images(path, label, depth + 1, paths, labels, labels_cap, err);
            free(path);
        } else if (is_image_name(names.items[i])) {
            if (!vt_grow_array((void **)labels, labels_cap, paths->count, sizeof **labels) || !list_push(paths, path))
                st = vt_fail(err, VT_ERR_NOMEM, "out of memory listing %s", dir);
            else
                (*labels)[paths->count - 1] = label;
        } else {
            free(path);
        }
    }
    list_free(&names);
    return st;
}

vt_status eval_load_image_folder(const char *dir, eval_dataset *out, vt_error *err) {
    if (!out || !dir) return vt_fail(err, VT_ERR_ARGUMENT, "eval_load_image_folder: bad arguments");
    memset(out, 0, sizeof *out);
    string_list entries = {0}, classes = {0}, paths = {0};
    int *labels = NULL;
    size_t labels_cap = 0;
    vt_status st = sorted_entries(dir, &entries, err);
    for (size_t i = 0; i < entries.count && !st; i++) {
        char *path = join_path(dir, entries.items[i]);
        if (!path) st = vt_fail(err, VT_ERR_NOMEM, "out of memory listing %s", dir);
        else if (is_directory(path) && !list_push(&classes, strdup(entries.items[i])))
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory listing %s", dir);
        free(path);
    }
    if (!st && classes.count == 0)
        st = vt_fail(err, VT_ERR_FORMAT,
                     "%s has no class subdirectories: an ImageFolder holds one directory per class "
                     "(e.g. %s/cat/1.jpg); for a table of images give a .csv/.tsv file",
                     dir, dir);
    if (!st && classes.count > INT_MAX) st = vt_fail(err, VT_ERR_FORMAT, "%s: too many classes", dir);
    for (size_t c = 0; c < classes.count && !st; c++) {
        char *class_dir = join_path(dir, classes.items[c]);
        size_t before = paths.count;
        st = class_dir ? collect_images(class_dir, (int)c, 1, &paths, &labels, &labels_cap, err)
                       : vt_fail(err, VT_ERR_NOMEM, "out of memory");
        if (!st && paths.count == before) /* torchvision refuses this too */
            st = vt_fail(err, VT_ERR_FORMAT,
                         "class directory %s holds no images (.jpg, .jpeg, .png, .webp, ...); remove it or add images",
                         class_dir);
        free(class_dir);
    }
    list_free(&entries);
    if (st) {
        list_free(&classes);
        list_free(&paths);
        free(labels);
        return st;
    }
    out->n = paths.count;
    out->paths = paths.items;
    out->labels = labels;
    out->n_classes = (int)classes.count;
    out->classnames = classes.items;
    return VT_OK;
}

/* Builds out->paths from the image column, checking each file exists. */
static vt_status table_images(const char *path, const csv_table *t, int column, eval_dataset *out, vt_error *err) {
    out->paths = calloc(t->rows ? t->rows : 1, sizeof *out->paths);
    if (!out->paths) return vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu rows", t->rows);
    out->n = t->rows;
    for (size_t r = 0; r < t->rows; r++) {
        const char *cell = csv_cell(t, r, column);
        if (!cell[0]) return vt_fail(err, VT_ERR_FORMAT, "%s row %zu: empty image path", path, r + 1);
        out->paths[r] = csv_resolve_path(path, cell);
        if (!out->paths[r]) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
        struct stat st;
        if (stat(out->paths[r], &st) != 0)
            return vt_fail(err, VT_ERR_IO, "%s row %zu: image %s: %s (relative paths are tried from the working "
                           "directory, then from the table's directory)", path, r + 1, out->paths[r], strerror(errno));
    }
    return VT_OK;
}

static vt_status open_table(const char *path, const eval_csv_options *opt, csv_table *t, vt_error *err) {
    vt_status st = csv_read(path, opt && opt->separator ? opt->separator : '\t', t, err);
    if (!st && t->rows == 0) {
        csv_free(t);
        st = vt_fail(err, VT_ERR_FORMAT, "%s has a header but no rows", path);
    }
    return st;
}

/* A decimal integer, possibly with surrounding blanks (as pandas reads an int column). */
static int parse_index(const char *s, long *value) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno) return 0;
    while (*end == ' ' || *end == '\t') end++;
    if (*end) return 0;
    *value = v;
    return 1;
}

typedef struct {
    const char *name;
    int index;
} named_class;

static int compare_named(const void *a, const void *b) {
    const named_class *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->index - y->index;
}

vt_status eval_load_classification_csv(const char *path, const eval_csv_options *opt, const char *const *classnames,
                                       int n_classes, eval_dataset *out, vt_error *err) {
    if (!out || !path || n_classes <= 0 || !classnames)
        return vt_fail(err, VT_ERR_ARGUMENT, "a classification table needs the list of class names");
    memset(out, 0, sizeof *out);
    csv_table t;
    vt_status st = open_table(path, opt, &t, err);
    if (st) return st;
    int img_col = -1, label_col = -1;
    st = csv_require_column(&t, path, opt && opt->img_key ? opt->img_key : "filepath", "--csv-img-key", &img_col, err);
    if (!st)
        st = csv_require_column(&t, path, opt && opt->label_key ? opt->label_key : "label", "--csv-label-key",
                                &label_col, err);
    named_class *sorted = NULL;
    if (!st) st = table_images(path, &t, img_col, out, err);
    if (!st) {
        out->labels = malloc(t.rows * sizeof *out->labels);
        sorted = malloc((size_t)n_classes * sizeof *sorted);
        if (!out->labels || !sorted) st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        for (int c = 0; c < n_classes; c++) sorted[c] = (named_class){classnames[c], c};
        qsort(sorted, (size_t)n_classes, sizeof *sorted, compare_named);
    }
    for (size_t r = 0; r < t.rows && !st; r++) {
        const char *cell = csv_cell(&t, r, label_col);
        long index;
        if (parse_index(cell, &index)) {
            if (index < 0 || index >= n_classes)
                st = vt_fail(err, VT_ERR_FORMAT, "%s row %zu: label %ld is not a class index in [0, %d) (%d class names given)",
                             path, r + 1, index, n_classes, n_classes);
            else
                out->labels[r] = (int)index;
            continue;
        }
        const named_class *found = NULL;
        /* lower bound on the name alone: of equal names the lowest index wins */
        size_t lo = 0, hi = (size_t)n_classes;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(sorted[mid].name, cell) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo < (size_t)n_classes && !strcmp(sorted[lo].name, cell)) found = &sorted[lo];
        if (!found)
            st = vt_fail(err, VT_ERR_FORMAT,
                         "%s row %zu: label '%s' is neither a class index in [0, %d) nor one of the class names; "
                         "check the class names file",
                         path, r + 1, cell, n_classes);
        else
            out->labels[r] = found->index;
    }
    free(sorted);
    csv_free(&t);
    if (st) eval_dataset_free(out);
    return st;
}

vt_status eval_load_retrieval_csv(const char *path, const eval_csv_options *opt, eval_dataset *out, vt_error *err) {
    if (!out || !path) return vt_fail(err, VT_ERR_ARGUMENT, "eval_load_retrieval_csv: bad arguments");
    memset(out, 0, sizeof *out);
    csv_table t;
    vt_status st = open_table(path, opt, &t, err);
    if (st) return st;
    int img_col = -1, caption_col = -1;
    st = csv_require_column(&t, path, opt && opt->img_key ? opt->img_key : "filepath", "--csv-img-key", &img_col, err);
    if (!st)
        st = csv_require_column(&t, path, opt && opt->caption_key ? opt->caption_key : "title", "--csv-caption-key",
                                &caption_col, err);
    if (!st) st = table_images(path, &t, img_col, out, err);
    if (!st) {
        out->captions = calloc(t.rows, sizeof *out->captions);
        if (!out->captions) st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
    }
    for (size_t r = 0; r < t.rows && !st; r++)
        if (!(out->captions[r] = strdup(csv_cell(&t, r, caption_col)))) st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
    csv_free(&t);
    if (st) eval_dataset_free(out);
    return st;
}

void eval_dataset_free(eval_dataset *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) {
        if (set->paths) free(set->paths[i]);
        if (set->captions) free(set->captions[i]);
    }
    for (int c = 0; c < set->n_classes && set->classnames; c++) free(set->classnames[c]);
    free(set->paths);
    free(set->captions);
    free(set->labels);
    free(set->classnames);
    memset(set, 0, sizeof *set);
}

vt_status eval_read_lines(const char *path, const char *what, char ***lines, size_t *count, vt_error *err) {
    *lines = NULL;
    *count = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return vt_fail(err, VT_ERR_IO, "cannot open %s file %s: %s", what, path, strerror(errno));
    string_list list = {0};
    char *line = NULL;
    size_t cap = 0, number = 0;
    ssize_t len;
    vt_status st = VT_OK;
    while (!st && (len = getline(&line, &cap, f)) >= 0) {
        number++;
        size_t bad;
        if (memchr(line, '\0', (size_t)len)) {
            st = vt_fail(err, VT_ERR_FORMAT, "%s line %zu: NUL byte; the %s file must be UTF-8 text", path, number, what);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!vt_utf8_valid((const uint8_t *)line, (size_t)len, &bad))
            st = vt_fail(err, VT_ERR_VALUE, "%s line %zu: invalid UTF-8 (byte 0x%02x); save the %s file as UTF-8", path,
                         number, (unsigned char)line[bad], what);
        else if (len > 0 && !list_push(&list, strdup(line)))
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
    }
    if (!st && ferror(f)) st = vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (!st && list.count == 0) st = vt_fail(err, VT_ERR_FORMAT, "%s file %s has no lines", what, path);
    if (st) {
        list_free(&list);
        return st;
    }
    *lines = list.items;
    *count = list.count;
    return VT_OK;
}

void eval_free_lines(char **lines, size_t count) {
    for (size_t i = 0; i < count && lines; i++) free(lines[i]);
    free(lines);
}

vt_status eval_load_zeroshot_inputs(const char *data, const char *classnames_path, const char *templates_path,
                                    const eval_csv_options *csv, eval_zeroshot_inputs *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    vt_status st = VT_OK;
    if (classnames_path && (st = eval_read_lines(classnames_path, "class names", &out->classes, &out->n_classes, err)))
        goto fail;
    if (templates_path) {
        if ((st = eval_read_lines(templates_path, "templates", &out->templates, &out->n_templates, err))) goto fail;
        for (size_t t = 0; t < out->n_templates; t++)
            if (!strstr(out->templates[t], "{}") && !strstr(out->templates[t], "{c}")) {
                st = vt_fail(err, VT_ERR_VALUE, "%s line %zu: template '%s' has no {} (or {c}) where the class name goes",
                             templates_path, t + 1, out->templates[t]);
                goto fail;
            }
    } else {
        if (!(out->templates = calloc((size_t)ZEROSHOT_DEFAULT_TEMPLATE_COUNT, sizeof *out->templates))) goto nomem;
        out->n_templates = ZEROSHOT_DEFAULT_TEMPLATE_COUNT;
        for (int t = 0; t < ZEROSHOT_DEFAULT_TEMPLATE_COUNT; t++)
            if (!(out->templates[t] = strdup(ZEROSHOT_DEFAULT_TEMPLATES[t]))) goto nomem;
    }
    if (is_directory(data)) {
        if ((st = eval_load_image_folder(data, &out->set, err))) goto fail;
        if (out->classes && out->n_classes != (size_t)out->set.n_classes) {
            st = vt_fail(err, VT_ERR_VALUE, "%s lists %zu class names but %s has %d class directories", classnames_path,
                         out->n_classes, data, out->set.n_classes);
            goto fail;
        }
        if (!out->classes) { /* take over the directory names */
            out->classes = out->set.classnames;
            out->n_classes = (size_t)out->set.n_classes;
            out->set.classnames = NULL;
            out->set.n_classes = 0;
        }
    } else {
        if (!out->classes) {
            st = vt_fail(err, VT_ERR_ARGUMENT, "%s is a table: give its class names with --classnames F (one per line, "
                         "in class-index order)", data);
            goto fail;
        }
        if ((st = eval_load_classification_csv(data, csv, (const char *const *)out->classes, (int)out->n_classes,
                                               &out->set, err)))
            goto fail;
    }
    return VT_OK;
nomem:
    st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
fail:
    eval_zeroshot_inputs_free(out);
    return st;
}

void eval_zeroshot_inputs_free(eval_zeroshot_inputs *in) {
    eval_dataset_free(&in->set);
    eval_free_lines(in->classes, in->n_classes);
    eval_free_lines(in->templates, in->n_templates);
    memset(in, 0, sizeof *in);
}
