/* The `vitamin` command-line tool: dispatches to one file per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"embed", cmd_embed, "image and text embeddings into a .npy matrix"},
    {"classify", cmd_classify, "zero-shot classification of images against text labels"},
    {"similarity", cmd_similarity, "print the image x text similarity matrix"},
    {"tokenize", cmd_tokenize, "print CLIP token ids of texts"},
    {"info", cmd_info, "model family table, or details of one checkpoint"},
    {"pull", cmd_pull, "download released weights into the Hugging Face cache (--list: the models)"},
    {"convert", cmd_convert, "rewrite a checkpoint as open_clip safetensors (fp32/fp16/bf16)"},
    {"train", cmd_train, "contrastive training / fine-tuning of a ViTamin CLIP model"},
    {"eval", cmd_eval, "zero-shot classification and retrieval metrics on a labelled set"},
    {"dataset", cmd_dataset, "prepare a demo image-caption dataset (Fashion-MNIST)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: vitamin <command> [options]   (vitamin <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-11s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\nExamples (weights of the Hugging Face repo jienengchen/ViTamin-L-384px):\n"
               "  vitamin classify -m ViTamin-L-384 --labels \"cat,dog,car\" photo.jpg     # cache, or download\n"
               "  vitamin classify -m ViTamin-L-384px/pytorch_model.bin --labels \"cat,dog\" photo.jpg\n");
}

int main(int argc, char **argv) {
    /* Training runs decode threads beside the OpenMP compute threads; libgomp's
     * default spin-waiting at barriers then steals their cores (measured: 2-4x
     * slower steps on 2 cores). libgomp reads OMP_WAIT_POLICY when it loads,
     * so set it and restart once, unless the user chose a policy. */
    if (argc >= 2 && !strcmp(argv[1], "train") && !getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        execv("/proc/self/exe", argv);
        /* exec failed (no /proc): carry on with the default policy */
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vitamin: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
