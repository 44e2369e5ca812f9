/* vitamin dataset fashion-mnist | export-wds: flags only; the builders are
 * the library's (io/dataset/fashion_mnist.h, eval/wds_export.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "eval/eval_data.h"
#include "eval/wds_export.h"
#include "io/dataset/fashion_mnist.h"

#define DEFAULT_SRC FASHION_MNIST_DEFAULT_SRC

static const char DATASET_HELP[] =
    "usage: vitamin dataset fashion-mnist [--src DIR] --out DIR\n"
    "       vitamin dataset export-wds --data DIR|TABLE --out DIR [options]\n"
    "\n"
    "Writes Fashion-MNIST as PNG files plus open_clip-style tables:\n"
    "  DIR/train/NNNNN.png, DIR/test/NNNNN.png (28x28 grayscale),\n"
    "  DIR/train.csv (filepath<TAB>title, captions from the class names),\n"
    "  DIR/test.csv (filepath<TAB>label), DIR/classnames.txt, DIR/templates.txt.\n"
    "Running it again only rewrites what is missing or different.\n"
    "\n"
    "      --src DIR   the IDX files (train-images-idx3-ubyte[.gz] ...; default\n"
    "                  " DEFAULT_SRC ", from Debian's dataset-fashion-mnist)\n"
    "      --out DIR   where to write the dataset\n"
    "\n"
    "export-wds: an evaluation set in CLIP_benchmark's wds/ layout, so that\n"
    "  `clip_benchmark eval --dataset wds/NAME --dataset_root DIR` (or\n"
    "  `python -m vitamin.clip_benchmark eval ...`) runs it with no download:\n"
    "  DIR/SPLIT/{0..N-1}.tar + nshards.txt, DIR/classnames.txt,\n"
    "  DIR/zeroshot_classification_templates.txt, DIR/dataset_type.txt. Images\n"
    "  are copied byte for byte (.jpg/.jpeg/.png/.webp).\n"
    "      --data DIR|TABLE   what `vitamin eval` reads: an ImageFolder, a classification\n"
    "                         table (with --classnames) or, with --task retrieval, an\n"
    "                         image-caption table (rows with one image path are one sample)\n"
    "      --task T           zeroshot (default) or retrieval\n"
    "      --classnames F     class names, one per line (a table needs them)\n"
    "      --templates F      prompt templates with {} or {c} (default: open_clip's 7)\n"
    "      --split NAME       split folder (default test)\n"
    "      --shard-size N     samples per tar shard (default 10000)\n"
    "      --csv-img-key K, --csv-label-key K, --csv-caption-key K, --csv-separator C\n"
    "                         table columns, as for `vitamin eval`\n";

typedef struct {
    const char *data, *out, *task, *classnames, *templates, *split;
    int shard_size;
    eval_csv_options csv;
} export_args;

static void export_progress(void *user, size_t done, size_t total) {
    if (done == total || done % 256 == 0) cli_progress("export-wds", done, total, *(double *)user);
}

static int export_wds(const export_args *a) {
    double started = cli_now();
    vt_error err = {0};
    wds_export_options opt = {a->out, a->split, (size_t)a->shard_size, export_progress, &started};
    wds_export_stats stats;
    vt_status st;
    if (!strcmp(a->task, "retrieval")) {
        struct stat sb;
        if (stat(a->data, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            cli_errorf("dataset", "%s is a directory: retrieval reads a CSV/TSV table of (image, caption) rows", a->data);
            return CLI_FAIL;
        }
        eval_dataset set = {0};
        st = eval_load_retrieval_csv(a->data, &a->csv, &set, &err);
        if (!st) st = wds_export_retrieval(&set, &opt, &stats, &err);
        eval_dataset_free(&set);
    } else {
        eval_zeroshot_inputs in;
        st = eval_load_zeroshot_inputs(a->data, a->classnames, a->templates, &a->csv, &in, &err);
        if (!st) st = wds_export_classification(&in, &opt, &stats, &err);
        eval_zeroshot_inputs_free(&in);
    }
    if (st) {
        cli_error("dataset", &err);
        return CLI_FAIL;
    }
    fprintf(stderr, "dataset: %zu samples%s in %zu shard%s under %s/%s (%.1f s)\n", stats.samples,
            stats.captions ? " (with their captions)" : "", stats.shards, stats.shards == 1 ? "" : "s", a->out, a->split,
            cli_now() - started);
    return CLI_OK;
}

static int fashion_mnist(const char *src, const char *out_dir) {
    double started = cli_now();
    vt_error err = {0};
    int train = 0, test = 0;
    if (fashion_mnist_write(src, out_dir, &train, &test, &err)) {
        cli_error("dataset", &err);
        return CLI_FAIL;
    }
    fprintf(stderr, "dataset: %d train + %d test images in %s (%.1f s)\n", train, test, out_dir, cli_now() - started);
    return CLI_OK;
}

int cmd_dataset(int argc, char **argv) {
    const char *src = NULL, *out_dir = NULL, *name = NULL, *value;
    export_args ex = {.task = "zeroshot", .split = "test", .shard_size = 10000};
    ex.csv.separator = '\t';
    int export_flag = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", DATASET_HELP);
            return CLI_OK;
        } else if (cli_option(argc, argv, &i, "--src", NULL, &src)) {
        } else if (cli_option(argc, argv, &i, "--out", "-o", &out_dir)) {
        } else if (cli_option(argc, argv, &i, "--data", NULL, &ex.data) ||
                   cli_option(argc, argv, &i, "--task", NULL, &ex.task) ||
                   cli_option(argc, argv, &i, "--classnames", NULL, &ex.classnames) ||
                   cli_option(argc, argv, &i, "--templates", NULL, &ex.templates) ||
                   cli_option(argc, argv, &i, "--split", NULL, &ex.split) ||
                   cli_int_option(argc, argv, &i, "--shard-size", NULL, 1, 1 << 30, &ex.shard_size) ||
                   cli_option(argc, argv, &i, "--csv-img-key", NULL, &ex.csv.img_key) ||
                   cli_option(argc, argv, &i, "--csv-label-key", NULL, &ex.csv.label_key) ||
                   cli_option(argc, argv, &i, "--csv-caption-key", NULL, &ex.csv.caption_key)) {
            export_flag = 1;
        } else if (cli_option(argc, argv, &i, "--csv-separator", NULL, &value)) {
            export_flag = 1;
            if (!cli_parse_separator(value, &ex.csv.separator)) {
                cli_errorf("dataset", "--csv-separator takes one ASCII character other than a quote, or 'tab'; got '%s'",
                           value);
                return CLI_USAGE;
            }
        } else if (argv[i][0] == '-') {
            cli_errorf("dataset", "unknown option '%s' (see 'vitamin dataset --help')", argv[i]);
            return CLI_USAGE;
        } else if (!name) {
            name = argv[i];
        } else {
            cli_errorf("dataset", "unexpected argument '%s'", argv[i]);
            return CLI_USAGE;
        }
    }
    int exporting = name && !strcmp(name, "export-wds");
    if (!name || (!exporting && strcmp(name, "fashion-mnist") != 0)) {
        cli_errorf("dataset", "%s%s%s; the commands are 'fashion-mnist' and 'export-wds' (see 'vitamin dataset --help')",
                   name ? "unknown dataset command '" : "no dataset command", name ? name : "", name ? "'" : "");
        return CLI_USAGE;
    }
    if (!out_dir) {
        cli_errorf("dataset", "no output directory; pass --out DIR");
        return CLI_USAGE;
    }
    if (!exporting) {
        if (export_flag) {
            cli_errorf("dataset", "--data, --task, --classnames, --templates, --split, --shard-size and --csv-* are "
                                  "for 'vitamin dataset export-wds'");
            return CLI_USAGE;
        }
        return fashion_mnist(src ? src : DEFAULT_SRC, out_dir);
    }
    if (src) {
        cli_errorf("dataset", "--src is for 'vitamin dataset fashion-mnist'; export-wds reads --data");
        return CLI_USAGE;
    }
    if (!ex.data) {
        cli_errorf("dataset", "export-wds: no input; give --data DIR (ImageFolder) or --data TABLE.csv");
        return CLI_USAGE;
    }
    if (strcmp(ex.task, "zeroshot") && strcmp(ex.task, "retrieval")) {
        cli_errorf("dataset", "--task is 'zeroshot' or 'retrieval', not '%s'", ex.task);
        return CLI_USAGE;
    }
    int retrieval = !strcmp(ex.task, "retrieval");
    if (retrieval && (ex.classnames || ex.templates || ex.csv.label_key)) {
        cli_errorf("dataset", "--classnames, --templates and --csv-label-key are for --task zeroshot");
        return CLI_USAGE;
    }
    if (!retrieval && ex.csv.caption_key) {
        cli_errorf("dataset", "--csv-caption-key is for --task retrieval");
        return CLI_USAGE;
    }
    ex.out = out_dir;
    return export_wds(&ex);
}
