/* vitamin tokenize: CLIP token ids, one line per text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char TOKENIZE_HELP[] =
    "usage: vitamin tokenize [--context N] TEXT...\n"
    "\n"
    "Prints open_clip's token ids for each text on one line: [SOT] tokens [EOT],\n"
    "truncated to the context length with EOT kept last, zero padded.\n"
    "\n"
    "      --context N        context length (default 77)\n"
    "      --texts-from FILE  one text per line (\"-\" = stdin)\n"
    "      --no-pad           stop each line after EOT\n"
    "      --vocab PATH       BPE vocabulary .txt.gz (default: open_clip's, built into vitamin)\n";

int cmd_tokenize(int argc, char **argv) {
    cli_model_options mo = {0};
    cli_list texts = {0};
    const char *value;
    int context = 77, no_pad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", TOKENIZE_HELP);
            return CLI_OK;
        } else if (cli_int_option(argc, argv, &i, "--context", "-c", 1, 1 << 20, &context)) {
        } else if (cli_option(argc, argv, &i, "--vocab", NULL, &mo.vocab_path)) {
        } else if (cli_option(argc, argv, &i, "--texts-from", NULL, &value)) {
            if (!cli_add_lines("tokenize", &texts, value)) return CLI_FAIL;
        } else if (!strcmp(argv[i], "--no-pad")) {
            no_pad = 1;
        } else if (!strcmp(argv[i], "--")) {
            for (i++; i < argc; i++) cli_list_push(&texts, argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_errorf("tokenize", "unknown option '%s' (see 'vitamin tokenize --help')", argv[i]);
            return CLI_USAGE;
        } else {
            cli_list_push(&texts, argv[i]);
        }
    }
    if (!texts.count) { cli_errorf("tokenize", "no text given"); return CLI_USAGE; }
    vt_tokenizer *tok = cli_load_tokenizer("tokenize", &mo);
    if (!tok) { cli_list_free(&texts); return CLI_FAIL; }
    int32_t *ids = malloc((size_t)context * sizeof(int32_t));
    int rc = ids ? CLI_OK : CLI_FAIL;
    for (size_t t = 0; t < texts.count && rc == CLI_OK; t++) {
        vt_error err = {0};
        if (vt_tokenize(tok, texts.items[t], context, ids, &err)) {
            cli_error("tokenize", &err);
            rc = CLI_FAIL;
            break;
        }
        int n = context;
        if (no_pad)
            for (int i = 0; i < context; i++)
                if (ids[i] == 49407) { n = i + 1; break; }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    free(ids);
    vt_tokenizer_free(tok);
    cli_list_free(&texts);
    return rc;
}
