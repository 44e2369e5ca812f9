/* vitamin similarity: the image × text cosine-similarity matrix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval/zeroshot.h"

static const char SIMILARITY_HELP[] =
    "usage: vitamin similarity -m MODEL --image PATH... --text STRING... [--softmax]\n"
    "\n"
    "Prints one row per image and one column per text: cosine similarity of the\n"
    "normalised embeddings, or with --softmax the probabilities over the texts\n"
    "(softmax of logit_scale * cosine, as open_clip's CLIP forward computes them).\n"
    "\n"
    "  -i, --image PATH       image file, directory or glob (repeatable)\n"
    "      --text STRING      text (repeatable)\n"
    "      --texts-from FILE  one text per line\n"
    "      --softmax          print probabilities instead of cosines\n";

int cmd_similarity(int argc, char **argv) {
    cli_model_options mo = {0};
    cli_list images = {0}, texts = {0};
    const char *value;
    int softmax = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", SIMILARITY_HELP, CLI_MODEL_OPTIONS_HELP);
            return CLI_OK;
        } else if (cli_model_option(argc, argv, &i, &mo)) {
        } else if (cli_option(argc, argv, &i, "--image", "-i", &value)) {
            if (!cli_add_images("similarity", &images, value)) return CLI_FAIL;
        } else if (cli_option(argc, argv, &i, "--text", NULL, &value)) {
            cli_list_push(&texts, value);
        } else if (cli_option(argc, argv, &i, "--texts-from", NULL, &value)) {
            if (!cli_add_lines("similarity", &texts, value)) return CLI_FAIL;
        } else if (!strcmp(argv[i], "--softmax")) {
            softmax = 1;
        } else {
            cli_errorf("similarity", "unknown option '%s' (see 'vitamin similarity --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!images.count || !texts.count) { cli_errorf("similarity", "need at least one --image and one --text"); return CLI_USAGE; }
    int rc = CLI_FAIL;
    vt_tokenizer *tok = NULL;
    float *img = NULL, *txt = NULL, *out = NULL;
    vt_model *model = cli_load_model("similarity", &mo);
    if (!model || !(tok = cli_load_tokenizer("similarity", &mo))) goto done;
    vt_model_info info;
    vt_model_get_info(model, &info);
    if (!info.has_text) { cli_errorf("similarity", "%s has no text tower", info.name); goto done; }
    int e = info.embed_dim, ni = (int)images.count, nt = (int)texts.count;
    img = malloc((size_t)ni * e * sizeof(float));
    txt = malloc((size_t)nt * e * sizeof(float));
    out = malloc((size_t)ni * nt * sizeof(float));
    vt_error err = {0};
    if (!img || !txt || !out) { cli_errorf("similarity", "out of memory"); goto done; }
    if (vt_encode_image_files(model, (const char *const *)images.items, ni, 1, img, &err) ||
        vt_encode_texts(model, tok, (const char *const *)texts.items, nt, 1, txt, &err)) {
        cli_error("similarity", &err);
        goto done;
    }
    if (softmax) {
        zeroshot_probabilities(img, ni, txt, nt, e, info.logit_scale, out);
    } else {
        for (int i = 0; i < ni; i++)
            for (int t = 0; t < nt; t++) {
                double dot = 0;
                for (int j = 0; j < e; j++) dot += (double)img[(size_t)i * e + j] * txt[(size_t)t * e + j];
                out[(size_t)i * nt + t] = (float)dot;
            }
    }
    printf("image");
    for (int t = 0; t < nt; t++) printf("\t%s", texts.items[t]);
    printf("\n");
    for (int i = 0; i < ni; i++) {
        printf("%s", images.items[i]);
        for (int t = 0; t < nt; t++) printf("\t%.6f", out[(size_t)i * nt + t]);
        printf("\n");
    }
    rc = CLI_OK;
done:
    free(img); free(txt); free(out);
    vt_tokenizer_free(tok);
    vt_model_free(model);
    cli_list_free(&images); cli_list_free(&texts);
    return rc;
}
