/* libFuzzer target for what loading reads beside a checkpoint and from the
 * hub cache: config.json (open_clip's and the authors' formats),
 * preprocessor_config.json, -m specs (hf-hub:ORG/NAME@REV, model names) and
 * refs/<revision> files. Every input must be accepted or refused with a
 * message; an accepted config must validate, an accepted spec must be safe to
 * put in a path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "model/config_json.h"
#include "model/config_resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    vt_error err = {0};
    vt_notes notes = {{0}};
    vt_model_config cfg;
    int found = 0;
    vt_status st = config_parse_json("config.json", text, size, &cfg, &found, &notes, &err);
    if (st && !err.message[0]) abort();
    if (!st && found && vt_config_validate(&cfg, NULL)) abort();
    if (!st && found && (cfg.image_size < 16 || cfg.width <= 0 || cfg.embed_dim <= 0)) abort();
    if (notes.text[sizeof notes.text - 1] != '\0') abort();

    vt_model_config s;
    if (vt_config_lookup("ViTamin-S", &s, NULL)) abort();
    err.message[0] = '\0';
    if (config_check_preprocessor("preprocessor_config.json", text, size, &s, &notes, &err) && !err.message[0])
        abort();

    char *spec = malloc(size + 1);
    if (!spec) return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    hub_spec hs;
    if (hub_parse_spec(spec, &hs) == 1) {
        const char *slash = strchr(hs.repo, '/');
        if (!slash || strchr(slash + 1, '/') || strstr(hs.repo, "..") || strstr(hs.revision, "..") ||
            hs.repo[0] == '.' || hs.revision[0] == '/')
            abort(); /* would escape the cache folder */
    }
    char commit[41];
    if (hub_parse_ref(text, size, commit) && !hub_is_commit(commit)) abort();
    free(spec);
    return 0;
}
