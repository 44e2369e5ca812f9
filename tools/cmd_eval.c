/* vitamin eval zeroshot | retrieval: clip_benchmark-style metrics of a
 * checkpoint on an ImageFolder tree or a CSV/TSV table (src/eval/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "eval/eval_data.h"
#include "eval/eval_metrics.h"
#include "eval/zeroshot.h"
#include "io/serial/json_write.h"
#include "core/atomic_file.h"

static const char EVAL_HELP[] =
    "usage: vitamin eval zeroshot  -m MODEL --data DIR|TABLE [--classnames F] [--templates F] [options]\n"
    "       vitamin eval retrieval -m MODEL --data TABLE [options]\n"
    "\n"
    "Evaluation metrics computed as clip_benchmark does.\n"
    "\n"
    "zeroshot: zero-shot classification with open_clip's template-ensembled classifier;\n"
    "  prints top-1 and top-5 accuracy (top-k with k = min(5, classes)) and the mean\n"
    "  per-class recall (balanced accuracy).\n"
    "      --data DIR         ImageFolder: one subdirectory per class; sorted directory\n"
    "                         names give the class indices\n"
    "      --data TABLE       CSV/TSV with an image column and a label column (a class\n"
    "                         index 0..C-1 or a class name from --classnames)\n"
    "      --classnames F     class names, one per line, in class-index order (required\n"
    "                         for a table; default for a directory: its subdirectory names)\n"
    "      --templates F      prompt templates, one per line, with {} or {c} for the class\n"
    "                         name (default: open_clip's 7 simple ImageNet templates)\n"
    "      --csv-label-key K  label column (default: label)\n"
    "\n"
    "retrieval: image-text retrieval recall@1/5/10 in both directions; rows with the\n"
    "  same image path are one image with several captions. image->text: an image is\n"
    "  a hit if any of its captions is in its top k; text->image: a caption is a hit\n"
    "  if its image is in its top k.\n"
    "      --data TABLE       CSV/TSV with image and caption columns\n"
    "      --csv-caption-key K  caption column (default: title)\n"
    "\n"
    "common:\n"
    "      --csv-img-key K    image path column (default: filepath); relative paths are\n"
    "                         tried from the working directory, then the table's directory\n"
    "      --csv-separator C  field separator: one character, or 'tab' (default: tab, as\n"
    "                         open_clip)\n"
    "      --json FILE        also write the metrics as JSON (clip_benchmark's key names);\n"
    "                         '-' prints only the JSON, on stdout\n";

typedef struct {
    const char *task;         /* "zeroshot" | "retrieval" */
    const char *data;
    const char *classnames;
    const char *templates;
    const char *json;
    eval_csv_options csv;
    cli_model_options model;
} eval_args;

/* Progress through cli_progress, restarting the rate at each stage. */
typedef struct {
    const char *stage;
    double started;
} progress_state;

static void show_progress(void *user, const char *what, size_t done, size_t total) {
    progress_state *p = user;
    if (p->stage != what) {
        p->stage = what;
        p->started = cli_now();
    }
    char label[64];
    snprintf(label, sizeof label, "eval: %s", what);
    cli_progress(label, done, total, p->started);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Returns CLI_OK, or the exit code to stop with (-1: --help printed). */
static int parse_args(int argc, char **argv, eval_args *a) {
    const char *value;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", EVAL_HELP, CLI_MODEL_OPTIONS_HELP);
            return -1;
        } else if (cli_model_option(argc, argv, &i, &a->model)) {
        } else if (cli_option(argc, argv, &i, "--data", NULL, &a->data)) {
        } else if (cli_option(argc, argv, &i, "--classnames", NULL, &a->classnames)) {
        } else if (cli_option(argc, argv, &i, "--templates", NULL, &a->templates)) {
        } else if (cli_option(argc, argv, &i, "--json", NULL, &a->json)) {
        } else if (cli_option(argc, argv, &i, "--csv-img-key", NULL, &a->csv.img_key)) {
        } else if (cli_option(argc, argv, &i, "--csv-label-key", NULL, &a->csv.label_key)) {
        } else if (cli_option(argc, argv, &i, "--csv-caption-key", NULL, &a->csv.caption_key)) {
        } else if (cli_option(argc, argv, &i, "--csv-separator", NULL, &value)) {
            if (!cli_parse_separator(value, &a->csv.separator)) {
                cli_errorf("eval", "--csv-separator takes one ASCII character other than a quote, or 'tab'; got '%s'", value);
                return CLI_USAGE;
            }
        } else {
            cli_errorf("eval", "unexpected argument '%s' (see 'vitamin eval --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!a->data) {
        cli_errorf("eval", "no evaluation set: give --data DIR (ImageFolder) or --data TABLE.csv");
        return CLI_USAGE;
    }
    int is_zeroshot = !strcmp(a->task, "zeroshot");
    if (!is_zeroshot && (a->classnames || a->templates || a->csv.label_key)) {
        cli_errorf("eval", "--classnames, --templates and --csv-label-key are for 'vitamin eval zeroshot'");
        return CLI_USAGE;
    }
    if (is_zeroshot && a->csv.caption_key) {
        cli_errorf("eval", "--csv-caption-key is for 'vitamin eval retrieval'");
        return CLI_USAGE;
    }
    if (is_zeroshot && !is_dir(a->data) && !a->classnames) {
        cli_errorf("eval", "%s is a table: give its class names with --classnames F (one per line, in class-index "
                           "order)", a->data);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Writes the JSON text to `path` atomically, or to stdout for "-". */
static int write_json(const json_writer *w, const char *path) {
    if (w->failed) {
        cli_errorf("eval", "out of memory building the JSON output");
        return 0;
    }
    if (!strcmp(path, "-")) {
        printf("%s\n", w->text);
        return 1;
    }
    atomic_file f;
    vt_error err = {0};
    if (atomic_file_open(&f, path, &err) || atomic_file_write(&f, w->text, w->length, &err) ||
        atomic_file_write(&f, "\n", 1, &err) || atomic_file_commit(&f, &err)) {
        atomic_file_discard(&f);
        cli_error("eval", &err);
        return 0;
    }
    return 1;
}

static void json_header(json_writer *w, const eval_args *a, const char *task) {
    json_write_raw(w, "{\"task\": ");
    json_write_string(w, task);
    json_write_raw(w, ", \"dataset\": ");
    json_write_string(w, a->data);
    json_write_raw(w, ", \"model\": ");
    json_write_string(w, a->model.model_path ? a->model.model_path : getenv("VITAMIN_MODEL") ? getenv("VITAMIN_MODEL") : "");
}

static void json_metric(json_writer *w, const char *key, double value, int first) {
    json_write_raw(w, first ? "" : ", ");
    json_write_string(w, key);
    json_write_raw(w, ": ");
    json_write_double(w, value);
}

/* The model and tokenizer, loaded after the data so that a bad table fails in
 * a second, not after the weights. */
typedef struct {
    vt_model *model;
    vt_tokenizer *tok;
    progress_state progress;
    eval_options opt;
} loaded_model;

static int load_model(const eval_args *a, loaded_model *m) {
    memset(m, 0, sizeof *m);
    m->model = cli_load_model("eval", &a->model);
    if (!m->model || !(m->tok = cli_load_tokenizer("eval", &a->model))) return 0;
    m->opt = (eval_options){a->model.batch, show_progress, &m->progress};
    return 1;
}

static void free_model(loaded_model *m) {
    vt_tokenizer_free(m->tok);
    vt_model_free(m->model);
}

static int run_zeroshot(const eval_args *a) {
    eval_zeroshot_inputs in = {0};
    int rc = CLI_FAIL;
    loaded_model lm = {0};
    zeroshot_metrics m;
    vt_error err = {0};
    if (eval_load_zeroshot_inputs(a->data, a->classnames, a->templates, &a->csv, &in, &err)) {
        cli_error("eval", &err);
        goto done;
    }
    size_t n_templates = in.n_templates;
    if (!load_model(a, &lm)) goto done;
    if (eval_zeroshot(lm.model, lm.tok, (const char *const *)in.set.paths, in.set.labels, in.set.n,
                      (const char *const *)in.classes, (int)in.n_classes, (const char *const *)in.templates,
                      (int)in.n_templates, &lm.opt, &m, &err)) {
        cli_error("eval", &err);
        goto done;
    }
    if (!a->json || strcmp(a->json, "-")) {
        printf("zero-shot classification: %zu images, %d classes, %zu templates\n", m.n_images, m.n_classes, n_templates);
        printf("  top-1 accuracy          %7.2f%%  (%zu/%zu)\n", 100 * m.top1, m.top1_correct, m.n_images);
        printf("  top-%d accuracy          %7.2f%%  (%zu/%zu)%s\n", m.top5_k, 100 * m.top5, m.top5_correct, m.n_images,
               m.top5_k < 5 ? "  (fewer than 5 classes)" : "");
        printf("  mean per-class recall   %7.2f%%  (over %d classes with images)\n", 100 * m.mean_per_class_recall,
               m.classes_with_images);
    }
    if (a->json) {
        json_writer w = {0};
        json_header(&w, a, "zeroshot_classification");
        json_write_format(&w, ", \"n_images\": %zu, \"n_classes\": %d, \"n_templates\": %zu, \"metrics\": {", m.n_images,
                          m.n_classes, n_templates);
        json_metric(&w, "acc1", m.top1, 1);
        json_metric(&w, "acc5", m.top5, 0);
        json_metric(&w, "mean_per_class_recall", m.mean_per_class_recall, 0);
        json_write_raw(&w, "}}");
        int ok = write_json(&w, a->json);
        json_writer_free(&w);
        if (!ok) goto done;
    }
    rc = CLI_OK;
done:
    free_model(&lm);
    eval_zeroshot_inputs_free(&in);
    return rc;
}

static int run_retrieval(const eval_args *a) {
    eval_dataset set = {0};
    vt_error err = {0};
    retrieval_metrics m;
    if (is_dir(a->data)) {
        cli_errorf("eval", "%s is a directory: retrieval reads a CSV/TSV table of (image, caption) rows", a->data);
        return CLI_FAIL;
    }
    if (eval_load_retrieval_csv(a->data, &a->csv, &set, &err)) {
        cli_error("eval", &err);
        return CLI_FAIL;
    }
    loaded_model lm;
    int ok = load_model(a, &lm);
    if (ok && eval_retrieval(lm.model, lm.tok, (const char *const *)set.paths, (const char *const *)set.captions, set.n,
                             &lm.opt, &m, &err)) {
        cli_error("eval", &err);
        ok = 0;
    }
    free_model(&lm);
    eval_dataset_free(&set);
    if (!ok) return CLI_FAIL;
    if (!a->json || strcmp(a->json, "-")) {
        printf("retrieval: %zu images, %zu captions\n", m.n_images, m.n_texts);
        printf("  image -> text  ");
        for (int k = 0; k < RETRIEVAL_KS; k++) printf("  R@%-2d %7.2f%%", RETRIEVAL_K[k], 100 * m.image_to_text[k]);
        printf("\n  text -> image  ");
        for (int k = 0; k < RETRIEVAL_KS; k++) printf("  R@%-2d %7.2f%%", RETRIEVAL_K[k], 100 * m.text_to_image[k]);
        printf("\n");
    }
    if (a->json) {
        json_writer w = {0};
        json_header(&w, a, "zeroshot_retrieval");
        json_write_format(&w, ", \"n_images\": %zu, \"n_texts\": %zu, \"metrics\": {", m.n_images, m.n_texts);
        for (int k = 0; k < RETRIEVAL_KS; k++) {
            char key[64];
            /* clip_benchmark: "image retrieval" = text -> image, "text retrieval" = image -> text */
            snprintf(key, sizeof key, "image_retrieval_recall@%d", RETRIEVAL_K[k]);
            json_metric(&w, key, m.text_to_image[k], k == 0);
            snprintf(key, sizeof key, "text_retrieval_recall@%d", RETRIEVAL_K[k]);
            json_metric(&w, key, m.image_to_text[k], 0);
        }
        json_write_raw(&w, "}}");
        ok = write_json(&w, a->json);
        json_writer_free(&w);
        if (!ok) return CLI_FAIL;
    }
    return CLI_OK;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "%s", EVAL_HELP);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("%s%s", EVAL_HELP, CLI_MODEL_OPTIONS_HELP);
        return CLI_OK;
    }
    if (strcmp(argv[1], "zeroshot") && strcmp(argv[1], "retrieval")) {
        cli_errorf("eval", "unknown task '%s': use 'vitamin eval zeroshot' or 'vitamin eval retrieval'", argv[1]);
        return CLI_USAGE;
    }
    eval_args a = {.task = argv[1]};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    return !strcmp(a.task, "zeroshot") ? run_zeroshot(&a) : run_retrieval(&a);
}
