/* What -m accepts (src/hub/hub_cache.c): repo ids, revisions and released
 * model names, and everything that must not become a cache path; refs files;
 * the cache folder from the environment. */
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "unit.h"

static int parses(const char *spec, const char *repo, const char *rev, const char *model) {
    hub_spec s;
    if (hub_parse_spec(spec, &s) != 1) return 0;
    return !strcmp(s.repo, repo) && !strcmp(s.revision, rev) && !strcmp(s.model_name, model);
}

int main(void) {
    CHECK(parses("hf-hub:jienengchen/ViTamin-L-384px", "jienengchen/ViTamin-L-384px", "main", "ViTamin-L-384"));
    CHECK(parses("jienengchen/ViTamin-S@v1.0", "jienengchen/ViTamin-S", "v1.0", "ViTamin-S"));
    CHECK(parses("ViTamin-XL-384", "jienengchen/ViTamin-XL-384px", "main", "ViTamin-XL-384"));
    CHECK(parses("vitamin-l2-384", "jienengchen/ViTamin-L2-384px", "main", "ViTamin-L2-384"));
    CHECK(parses("hf-hub:laion/CLIP-ViT-B-32@refs/pr/1", "laion/CLIP-ViT-B-32", "refs/pr/1", ""));
    hub_spec s;
    const char *refused[] = {"hf-hub:../x", "hf-hub:a/../b", "hf-hub:org/.name", "hf-hub:org--x/y", "hf-hub:org/y@../z",
                             "hf-hub:org/y@/abs", "hf-hub:org/y@a//b", "hf-hub:org/na me", "hf-hub:", "hf-hub:ViTamin-S",
                             "hf-hub:-org/x", "hf-hub:org/x@"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        int kind = hub_parse_spec(refused[i], &s);
        if (kind != -1) fprintf(stderr, "  %s parsed as %d\n", refused[i], kind);
        CHECK(kind == -1);
    }
    CHECK(hub_parse_spec("ViTamin-Tiny", &s) == 0);      /* a model without released weights */
    CHECK(hub_parse_spec("ViTamin-C64-N4", &s) == 0);
    CHECK(hub_parse_spec("no-such-model", &s) == 0);
    char commit[41];
    CHECK(hub_parse_ref("0123456789abcdef0123456789abcdef01234567\n", 41, commit) && !strcmp(commit, "0123456789abcdef0123456789abcdef01234567"));
    CHECK(!hub_parse_ref("0123456789ABCDEF0123456789abcdef01234567", 40, commit)); /* the hub writes lowercase */
    CHECK(!hub_parse_ref("../../../etc/passwd", 19, commit));
    CHECK(!hub_parse_ref("0123456789abcdef0123456789abcdef0123456", 39, commit));
    char dir[4096];
    setenv("HF_HUB_CACHE", "/c/hub", 1);
    CHECK(hub_cache_dir(dir, sizeof dir, NULL) == VT_OK && !strcmp(dir, "/c/hub"));
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");
    setenv("HF_HOME", "/h", 1);
    CHECK(hub_cache_dir(dir, sizeof dir, NULL) == VT_OK && !strcmp(dir, "/h/hub"));
    unsetenv("HF_HOME");
    setenv("XDG_CACHE_HOME", "/x", 1);
    CHECK(hub_cache_dir(dir, sizeof dir, NULL) == VT_OK && !strcmp(dir, "/x/huggingface/hub"));
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    CHECK(hub_cache_dir(dir, sizeof dir, NULL) == VT_OK && !strcmp(dir, "/home/u/.cache/huggingface/hub"));
    hub_repo_dir("/c", "jienengchen/ViTamin-S", dir, sizeof dir);
    CHECK(!strcmp(dir, "/c/models--jienengchen--ViTamin-S"));
    setenv("HF_HUB_OFFLINE", "TRUE", 1);
    CHECK(hub_offline_from_env());
    setenv("HF_HUB_OFFLINE", "0", 1);
    CHECK(!hub_offline_from_env());
    return unit_summary("hub_names");
}
