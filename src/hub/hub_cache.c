/* Hub names and the Hugging Face cache layout (see hub.h). */
#include "hub/hub.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "model/config.h"

const char *const HUB_CONFIG_FILES[3] = {"open_clip_config.json", "config.json", "preprocessor_config.json"};
const char *const HUB_WEIGHT_FILES[4] = {"open_clip_model.safetensors", "open_clip_pytorch_model.bin",
                                         "model.safetensors", "pytorch_model.bin"};

int hub_is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n])) return 0;
    return n == 40;
}

int hub_parse_ref(const char *text, size_t size, char commit[41]) {
    while (size && isspace((unsigned char)text[size - 1])) size--;
    if (size != 40) return 0;
    memcpy(commit, text, 40);
    commit[40] = '\0';
    return hub_is_commit(commit);
}

/* The hub's rules for a repo id part: letters, digits, '-', '_', '.', no
 * leading '.' or '-', no "--" or ".." (which would also break the cache's
 * models--org--name folder names), at most 96 characters. */
static int valid_id_part(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.')) return 0;
        if (i && (c == '-' || c == '.') && s[i - 1] == c) return 0;
    }
    return 1;
}

static int valid_revision(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= 200 || s[0] == '/' || s[0] == '.' || strstr(s, "..") || strstr(s, "//")) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr("-_./", s[i]))) return 0;
    return s[n - 1] != '/';
}

int hub_parse_spec(const char *spec, hub_spec *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->revision, sizeof out->revision, "main");
    if (!spec || !*spec) return 0;
    int explicit_hub = !strncasecmp(spec, "hf-hub:", 7);
    const char *s = explicit_hub ? spec + 7 : spec;
    const char *slash = strchr(s, '/');
    if (!slash) {
        /* A released model's open_clip name (or its repo's short name). */
        vt_model_config cfg;
        if (explicit_hub || vt_config_lookup(s, &cfg, NULL) || !cfg.hf_repo[0]) return explicit_hub ? -1 : 0;
        snprintf(out->repo, sizeof out->repo, "%s", cfg.hf_repo);
        snprintf(out->model_name, sizeof out->model_name, "%s", cfg.name);
        return 1;
    }
    const char *at = strchr(slash, '@');
    size_t org_len = (size_t)(slash - s), name_len = at ? (size_t)(at - slash - 1) : strlen(slash + 1);
    if (!valid_id_part(s, org_len) || !valid_id_part(slash + 1, name_len)) return -1;
    snprintf(out->repo, sizeof out->repo, "%.*s/%.*s", (int)org_len, s, (int)name_len, slash + 1);
    if (at) {
        if (!valid_revision(at + 1)) return -1;
        snprintf(out->revision, sizeof out->revision, "%s", at + 1);
    }
    vt_model_config cfg;
    if (!vt_config_lookup(out->repo, &cfg, NULL) && !strcasecmp(cfg.hf_repo, out->repo))
        snprintf(out->model_name, sizeof out->model_name, "%s", cfg.name);
    return 1;
}

static const char *nonempty_env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

vt_status hub_cache_dir(char *out, size_t size, vt_error *err) {
    const char *v;
    int n;
    if ((v = nonempty_env("HF_HUB_CACHE")) || (v = nonempty_env("HUGGINGFACE_HUB_CACHE")))
        n = snprintf(out, size, "%s", v);
    else if ((v = nonempty_env("HF_HOME")))
        n = snprintf(out, size, "%s/hub", v);
    else if ((v = nonempty_env("XDG_CACHE_HOME")))
        n = snprintf(out, size, "%s/huggingface/hub", v);
    else if ((v = nonempty_env("HOME")))
        n = snprintf(out, size, "%s/.cache/huggingface/hub", v);
    else
        return vt_fail(err, VT_ERR_ARGUMENT, "no Hugging Face cache folder: set HF_HUB_CACHE (or HF_HOME or HOME)");
    if (n < 0 || (size_t)n >= size) return vt_fail(err, VT_ERR_ARGUMENT, "Hugging Face cache path is too long");
    return VT_OK;
}

void hub_repo_dir(const char *cache, const char *repo, char *out, size_t size) {
    const char *slash = strchr(repo, '/');
    snprintf(out, size, "%s/models--%.*s--%s", cache, (int)(slash - repo), repo, slash + 1);
}

int hub_offline_from_env(void) {
    const char *v = getenv("HF_HUB_OFFLINE");
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

/* refs/<revision> -> commit; *found = 0 if the file is missing. */
static vt_status read_ref(const char *repo_dir, const char *revision, char commit[41], int *found, vt_error *err) {
    *found = 0;
    if (hub_is_commit(revision)) {
        snprintf(commit, 41, "%.40s", revision);
        *found = 1;
        return VT_OK;
    }
    char path[4608];
    snprintf(path, sizeof path, "%.4300s/refs/%.250s", repo_dir, revision);
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT || errno == ENOTDIR ? VT_OK : vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    char text[128];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    if (!hub_parse_ref(text, n, commit))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s does not hold a commit hash (40 hex digits): the cache is damaged; delete %s and download "
                       "the model again (vitamin pull)", path, repo_dir);
    *found = 1;
    return VT_OK;
}

vt_status hub_cache_find(const char *cache, const hub_spec *spec, char *path, size_t path_size, int *found,
                         vt_error *err) {
    *found = 0;
    char repo_dir[4352], commit[41];
    hub_repo_dir(cache, spec->repo, repo_dir, sizeof repo_dir);
    int have_ref;
    vt_status st = read_ref(repo_dir, spec->revision, commit, &have_ref, err);
    if (st || !have_ref) return st;
    for (size_t i = 0; i < sizeof HUB_WEIGHT_FILES / sizeof *HUB_WEIGHT_FILES; i++) {
        char file[4608];
        snprintf(file, sizeof file, "%s/snapshots/%s/%s", repo_dir, commit, HUB_WEIGHT_FILES[i]);
        struct stat link, target;
        if (lstat(file, &link)) continue;
        if (stat(file, &target)) {
            char dest[4096] = "?";
            ssize_t n = readlink(file, dest, sizeof dest - 1);
            if (n >= 0) dest[n] = '\0';
            return vt_fail(err, VT_ERR_IO,
                           "broken Hugging Face cache: %s links to %s, which does not exist (an interrupted download "
                           "or a deleted blob); delete %s and run 'vitamin pull %s' again",
                           file, dest, repo_dir, spec->repo);
        }
        if (!S_ISREG(target.st_mode))
            return vt_fail(err, VT_ERR_IO, "broken Hugging Face cache: %s is not a file", file);
        if ((size_t)snprintf(path, path_size, "%s", file) >= path_size)
            return vt_fail(err, VT_ERR_ARGUMENT, "cache path too long: %s", file);
        *found = 1;
        return VT_OK;
    }
    return VT_OK;
}

/* ------------------------------------------------------------ public API */

/* A directory stands for the checkpoint inside it. */
static vt_status checkpoint_in_directory(const char *dir, vt_checkpoint_ref *out, vt_error *err) {
    for (size_t i = 0; i < sizeof HUB_WEIGHT_FILES / sizeof *HUB_WEIGHT_FILES; i++) {
        snprintf(out->path, sizeof out->path, "%s/%s", dir, HUB_WEIGHT_FILES[i]);
        if (!access(out->path, R_OK)) return VT_OK;
    }
    return vt_fail(err, VT_ERR_IO,
                   "%s: directory holds no open_clip_model.safetensors, open_clip_pytorch_model.bin, "
                   "model.safetensors or pytorch_model.bin", dir);
}

/* Paths that can only be paths: absolute, ./ ../ ~, several '/', a file extension. */
static int looks_like_path(const char *spec) {
    if (!strncasecmp(spec, "hf-hub:", 7)) return 0;
    const char *slash = strchr(spec, '/'), *dot = strrchr(spec, '.');
    if (spec[0] == '/' || spec[0] == '.' || spec[0] == '~' || (slash && strchr(slash + 1, '/'))) return 1;
    static const char *const EXT[] = {".bin", ".pt", ".pth", ".safetensors", ".ckpt"};
    for (size_t i = 0; dot && i < sizeof EXT / sizeof *EXT; i++)
        if (!strcasecmp(dot, EXT[i])) return 1;
    return 0;
}

static vt_status resolve(const char *spec, const vt_hub_options *options, int force_pull, vt_checkpoint_ref *out,
                         vt_error *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return vt_fail(err, VT_ERR_ARGUMENT, "no checkpoint or model name given");
    struct stat st;
    if (!force_pull && !stat(spec, &st)) {
        if (S_ISDIR(st.st_mode)) return checkpoint_in_directory(spec, out, err);
        if ((size_t)snprintf(out->path, sizeof out->path, "%s", spec) >= sizeof out->path)
            return vt_fail(err, VT_ERR_ARGUMENT, "path too long: %.64s...", spec);
        return VT_OK;
    }
    hub_spec hs;
    int kind = looks_like_path(spec) ? -1 : hub_parse_spec(spec, &hs);
    if (kind < 0)
        return vt_fail(err, VT_ERR_IO,
                       "%s: no such file or directory (nor a hub repo id, which reads hf-hub:ORG/NAME[@REVISION] "
                       "with letters, digits, '-', '_' and '.')", spec);
    if (kind == 0) {
        vt_model_config cfg;
        if (!vt_config_lookup(spec, &cfg, NULL))
            return vt_fail(err, VT_ERR_ARGUMENT,
                           "%s: no such file or directory, and model %s has no released weights; pass -m PATH to a "
                           "checkpoint (with --model-name %s if it has no config beside it)", spec, cfg.name, cfg.name);
        return vt_fail(err, VT_ERR_ARGUMENT,
                       "%s: no such file or directory, nor a model name or hub repo (run 'vitamin pull --list' for "
                       "the released models)", spec);
    }
    if (options && options->revision && *options->revision) {
        if (!valid_revision(options->revision))
            return vt_fail(err, VT_ERR_ARGUMENT, "invalid revision '%s'", options->revision);
        snprintf(hs.revision, sizeof hs.revision, "%s", options->revision);
    }
    snprintf(out->repo, sizeof out->repo, "%s", hs.repo);
    snprintf(out->model_name, sizeof out->model_name, "%s", hs.model_name);
    char cache[4096];
    vt_status s = hub_cache_dir(cache, sizeof cache, err);
    int found = 0;
    if (!s && !force_pull) s = hub_cache_find(cache, &hs, out->path, sizeof out->path, &found, err);
    if (s || found) return s;
    if ((options && options->offline) || hub_offline_from_env())
        return vt_fail(err, VT_ERR_IO,
                       "%s (revision %s) is not in the Hugging Face cache %s, and downloads are off (--offline or "
                       "HF_HUB_OFFLINE=1). Fetch it where there is a network, with 'vitamin pull %s' or "
                       "'huggingface-cli download %s config.json preprocessor_config.json pytorch_model.bin', and "
                       "copy the cache folder here; or pass -m PATH to the checkpoint file",
                       hs.repo, hs.revision, cache, hs.repo, hs.repo);
    char commit[41];
    s = hub_download_repo(cache, &hs, options, commit, err);
    if (!s) {
        hub_spec at_commit = hs;
        snprintf(at_commit.revision, sizeof at_commit.revision, "%s", commit);
        s = hub_cache_find(cache, &at_commit, out->path, sizeof out->path, &found, err);
        if (!s && !found)
            s = vt_fail(err, VT_ERR_IO, "%s: downloaded, but no weights file appeared in the cache %s", hs.repo, cache);
        out->downloaded = 1;
    }
    return s;
}

vt_status vt_resolve_checkpoint(const char *spec, const vt_hub_options *options, vt_checkpoint_ref *out,
                                vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "vt_resolve_checkpoint: out is NULL");
    return resolve(spec, options, 0, out, err);
}

vt_status vt_hub_pull(const char *spec, const vt_hub_options *options, vt_checkpoint_ref *out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "vt_hub_pull: out is NULL");
    if ((options && options->offline) || hub_offline_from_env())
        return vt_fail(err, VT_ERR_ARGUMENT, "vitamin pull needs the network, but downloads are off (--offline or "
                                             "HF_HUB_OFFLINE=1)");
    return resolve(spec, options, 1, out, err);
}
