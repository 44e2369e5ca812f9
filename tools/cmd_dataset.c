/* vitamin dataset fashion-mnist: flags only; the builder is the library's
 * (io/fashion_mnist.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "io/dataset/fashion_mnist.h"

#define DEFAULT_SRC FASHION_MNIST_DEFAULT_SRC

static const char DATASET_HELP[] =
    "usage: vitamin dataset fashion-mnist [--src DIR] --out DIR\n"
    "\n"
    "Writes Fashion-MNIST as PNG files plus open_clip-style tables:\n"
    "  DIR/train/NNNNN.png, DIR/test/NNNNN.png (28x28 grayscale),\n"
    "  DIR/train.csv (filepath<TAB>title, captions from the class names),\n"
    "  DIR/test.csv (filepath<TAB>label), DIR/classnames.txt, DIR/templates.txt.\n"
    "Running it again only rewrites what is missing or different.\n"
    "\n"
    "      --src DIR   the IDX files (train-images-idx3-ubyte[.gz] ...; default\n"
    "                  " DEFAULT_SRC ", from Debian's dataset-fashion-mnist)\n"
    "      --out DIR   where to write the dataset\n";

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
    const char *src = DEFAULT_SRC, *out_dir = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", DATASET_HELP);
            return CLI_OK;
        } else if (cli_option(argc, argv, &i, "--src", NULL, &src)) {
        } else if (cli_option(argc, argv, &i, "--out", "-o", &out_dir)) {
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
    if (!name || strcmp(name, "fashion-mnist") != 0) {
        cli_errorf("dataset", "%s%s%s; the only dataset is 'fashion-mnist' (see 'vitamin dataset --help')",
                   name ? "unknown dataset '" : "no dataset named", name ? name : "", name ? "'" : "");
        return CLI_USAGE;
    }
    if (!out_dir) {
        cli_errorf("dataset", "no output directory; pass --out DIR");
        return CLI_USAGE;
    }
    return fashion_mnist(src, out_dir);
}
