/* vitamin pull: download released weights into the Hugging Face cache. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "model/config.h"

static const char PULL_HELP[] =
    "usage: vitamin pull NAME... [--revision REV]\n"
    "       vitamin pull --list\n"
    "\n"
    "Downloads a model's config.json, preprocessor_config.json and weights into the\n"
    "Hugging Face cache, in huggingface_hub's layout, so that open_clip, huggingface-cli\n"
    "and vitamin share one copy; '-m NAME' in any command then finds it with no network.\n"
    "Any command downloads a missing model the same way on first use, unless --offline\n"
    "or HF_HUB_OFFLINE=1. Interrupted downloads resume; each large file is checked\n"
    "against the sha256 the hub publishes before it enters the cache.\n"
    "\n"
    "NAME: a released model (ViTamin-L-384; see --list), hf-hub:ORG/REPO or ORG/REPO,\n"
    "optionally with @REVISION.\n"
    "\n"
    "  --list           the released ViTamin models, their repos and download sizes\n"
    "  --revision REV   branch, tag or commit (default main)\n"
    "\n"
    "Environment: HF_ENDPOINT (default the public hub), HF_TOKEN (sent as a bearer\n"
    "token; also read from $HF_HOME/token), HF_HUB_CACHE / HF_HOME (cache location),\n"
    "HF_HUB_OFFLINE=1 (no network).\n";

static void list_released(void) {
    printf("%-16s %-30s %10s  %s\n", "model", "repo", "download", "use as");
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *c = vt_config_at(i);
        if (!c->hf_repo[0]) continue;
        /* pytorch_model.bin is the fp32 state dict: 4 bytes a parameter (+ logit_scale). */
        double gb = (double)(vt_config_image_params(c) + vt_config_text_params(c) + 1) * 4 / 1e9;
        char size[32];
        if (gb < 1) snprintf(size, sizeof size, "%.0f MB", gb * 1e3);
        else snprintf(size, sizeof size, "%.2f GB", gb);
        printf("%-16s %-30s %10s  -m %s\n", c->name, c->hf_repo, size, c->name);
    }
}

int cmd_pull(int argc, char **argv) {
    const char *revision = NULL;
    cli_list names = {0};
    int list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", PULL_HELP);
            cli_list_free(&names);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--list")) {
            list = 1;
        } else if (cli_option(argc, argv, &i, "--revision", NULL, &revision)) {
        } else if (argv[i][0] == '-') {
            cli_errorf("pull", "unknown option '%s' (see 'vitamin pull --help')", argv[i]);
            cli_list_free(&names);
            return CLI_USAGE;
        } else {
            cli_list_push(&names, argv[i]);
        }
    }
    if (list) {
        list_released();
        cli_list_free(&names);
        return CLI_OK;
    }
    if (!names.count) {
        cli_errorf("pull", "give a model name or repo (see 'vitamin pull --list')");
        return CLI_USAGE;
    }
    int status = CLI_OK;
    for (size_t i = 0; i < names.count && status == CLI_OK; i++) {
        vt_hub_options ho = {.progress = cli_progress_enabled(), .revision = revision};
        vt_checkpoint_ref ref;
        vt_error err = {0};
        if (vt_hub_pull(names.items[i], &ho, &ref, &err)) {
            cli_error("pull", &err);
            status = CLI_FAIL;
        } else {
            printf("%s\n", ref.path);
        }
    }
    cli_list_free(&names);
    return status;
}
