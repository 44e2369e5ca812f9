/* vitamin classify: zero-shot classification with template ensembling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval/zeroshot.h"

static const char CLASSIFY_HELP[] =
    "usage: vitamin classify -m MODEL --labels \"cat,dog,...\" [options] IMAGE...\n"
    "\n"
    "Zero-shot classification as open_clip does it: each label is filled into every\n"
    "template, the text embeddings are averaged per label, and the image-label\n"
    "cosine similarities times the model's logit scale go through a softmax.\n"
    "\n"
    "      --labels LIST      comma-separated class names\n"
    "      --labels-file F    one class name per line\n"
    "      --templates F      one template per line with {} for the class name\n"
    "                         (default: open_clip's 7 simple ImageNet templates)\n"
    "      --top K            labels to print per image (default 5)\n"
    "      --json             one JSON object per image instead of text\n"
    "      --images-from FILE one image path per line\n";

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

int cmd_classify(int argc, char **argv) {
    cli_model_options mo = {0};
    cli_list labels = {0}, templates = {0}, images = {0};
    const char *value;
    int top = 5, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", CLASSIFY_HELP, CLI_MODEL_OPTIONS_HELP);
            return CLI_OK;
        } else if (cli_model_option(argc, argv, &i, &mo)) {
        } else if (cli_option(argc, argv, &i, "--labels", NULL, &value)) {
            cli_add_csv(&labels, value);
        } else if (cli_option(argc, argv, &i, "--labels-file", NULL, &value)) {
            if (!cli_add_lines("classify", &labels, value)) return CLI_FAIL;
        } else if (cli_option(argc, argv, &i, "--templates", NULL, &value)) {
            if (!cli_add_lines("classify", &templates, value)) return CLI_FAIL;
        } else if (cli_int_option(argc, argv, &i, "--top", "-k", 1, 1000000, &top)) {
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (cli_option(argc, argv, &i, "--images-from", NULL, &value)) {
            if (!cli_add_lines("classify", &images, value)) return CLI_FAIL;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_errorf("classify", "unknown option '%s' (see 'vitamin classify --help')", argv[i]);
            return CLI_USAGE;
        } else if (!cli_add_images("classify", &images, argv[i])) {
            return CLI_FAIL;
        }
    }
    if (!labels.count) { cli_errorf("classify", "no labels: give --labels \"a,b,c\" or --labels-file F"); return CLI_USAGE; }
    if (!images.count) { cli_errorf("classify", "no images given"); return CLI_USAGE; }
    if (!templates.count)
        for (int t = 0; t < ZEROSHOT_DEFAULT_TEMPLATE_COUNT; t++) cli_list_push(&templates, ZEROSHOT_DEFAULT_TEMPLATES[t]);

    int rc = CLI_FAIL;
    vt_tokenizer *tok = NULL;
    float *weights = NULL, *feats = NULL, *probs = NULL;
    vt_model *model = cli_load_model("classify", &mo);
    if (!model || !(tok = cli_load_tokenizer("classify", &mo))) goto done;
    vt_model_info info;
    vt_model_get_info(model, &info);
    if (!info.has_text) { cli_errorf("classify", "%s has no text tower (image-only checkpoint)", info.name); goto done; }
    int nc = (int)labels.count, e = info.embed_dim;
    weights = malloc((size_t)nc * e * sizeof(float));
    feats = malloc(images.count * e * sizeof(float));
    probs = malloc(images.count * nc * sizeof(float));
    vt_error err = {0};
    if (!weights || !feats || !probs) { cli_errorf("classify", "out of memory"); goto done; }
    if (zeroshot_classifier(model, tok, (const char *const *)labels.items, nc, (const char *const *)templates.items,
                            (int)templates.count, weights, &err) ||
        vt_encode_image_files(model, (const char *const *)images.items, (int)images.count, 1, feats, &err)) {
        cli_error("classify", &err);
        goto done;
    }
    zeroshot_probabilities(feats, (int)images.count, weights, nc, e, info.logit_scale, probs);
    if (top > nc) top = nc;
    int *order = malloc((size_t)nc * sizeof(int));
    if (!order) { cli_errorf("classify", "out of memory"); goto done; }
    for (size_t i = 0; i < images.count; i++) {
        const float *p = probs + i * nc;
        for (int c = 0; c < nc; c++) order[c] = c;
        for (int a = 0; a < top; a++) /* partial selection sort: top is small */
            for (int b = a + 1; b < nc; b++)
                if (p[order[b]] > p[order[a]]) { int t = order[a]; order[a] = order[b]; order[b] = t; }
        if (json) {
            printf("{\"image\": ");
            print_json_string(images.items[i]);
            printf(", \"top\": [");
            for (int a = 0; a < top; a++) {
                printf(a ? ", {\"label\": " : "{\"label\": ");
                print_json_string(labels.items[order[a]]);
                printf(", \"probability\": %.6f}", p[order[a]]);
            }
            printf("]}\n");
        } else {
            printf("%s\n", images.items[i]);
            for (int a = 0; a < top; a++) printf("  %6.2f%%  %s\n", 100.0 * p[order[a]], labels.items[order[a]]);
        }
    }
    free(order);
    rc = CLI_OK;
done:
    free(weights); free(feats); free(probs);
    vt_tokenizer_free(tok);
    vt_model_free(model);
    cli_list_free(&labels); cli_list_free(&templates); cli_list_free(&images);
    return rc;
}
