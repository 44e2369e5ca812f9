/* Resolves a config.json (and a preprocessor_config.json) the way loading
 * does, without weights, and prints what it picked: the fixture tests of the
 * released repos' config files run this. Usage:
 *   config_resolve CONFIG.json [PREPROCESSOR_CONFIG.json]
 * Prints "found=0" or "name=... timm=... image=... embed=... text=W/H/L ctx=...
 * image_params=N",
 * then one "note: ..." line per note; exits 1 with the error on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_json.h"
#include "model/config_resolve.h"

static char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *size = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: config_resolve CONFIG.json [PREPROCESSOR_CONFIG.json]\n");
        return 2;
    }
    vt_model_config cfg;
    vt_notes notes = {{0}};
    vt_error err = {0};
    int found = 0;
    if (config_read_json(argv[1], &cfg, &found, &notes, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (found && argc > 2) {
        size_t size = 0;
        char *text = slurp(argv[2], &size);
        if (!text) {
            fprintf(stderr, "cannot read %s\n", argv[2]);
            return 1;
        }
        vt_status st = config_check_preprocessor(argv[2], text, size, &cfg, &notes, &err);
        free(text);
        if (st) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    if (!found) printf("found=0\n");
    else
        printf("name=%s timm=%s repo=%s image=%d preprocess=%d embed=%d width=%d depth=%d text=%d/%d/%d ctx=%d "
               "image_params=%lld\n",
               cfg.name, cfg.timm_name, cfg.hf_repo[0] ? cfg.hf_repo : "-", cfg.image_size,
               cfg.open_clip_preprocess_size, cfg.embed_dim, cfg.width, cfg.depth, cfg.text_width, cfg.text_heads,
               cfg.text_layers, cfg.context_length, (long long)vt_config_image_params(&cfg));
    for (char *line = notes.text; *line;) {
        char *end = strchr(line, '\n');
        printf("note: %.*s\n", (int)(end - line), line);
        line = end + 1;
    }
    return 0;
}
