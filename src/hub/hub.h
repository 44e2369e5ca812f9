/* Checkpoints by name: the Hugging Face hub cache, read and written in
 * huggingface_hub's layout, and downloads into it (include/vitamin.h,
 * vt_resolve_checkpoint / vt_hub_pull). The cache layout, as huggingface_hub's
 * file_download.py writes it:
 *   <cache>/models--<org>--<name>/blobs/<etag>             the file's bytes
 *   <cache>/models--<org>--<name>/snapshots/<commit>/<file> -> ../../blobs/<etag>
 *   <cache>/models--<org>--<name>/refs/<revision>           the commit, as text
 * hub_cache.c reads it; hub_download.c fetches into it (libcurl). */
#ifndef VT_HUB_HUB_H
#define VT_HUB_HUB_H

#include <stddef.h>

#include "vitamin.h"

/* The files a repo is fetched for, in the order they are tried: configs are
 * optional, the first weights file the hub has is taken (open_clip tries
 * safetensors first too). */
extern const char *const HUB_CONFIG_FILES[3];
extern const char *const HUB_WEIGHT_FILES[4];

typedef struct {
    char repo[256];       /* "org/name" */
    char revision[256];   /* "main", a branch, tag or 40-hex commit */
    char model_name[64];  /* the family member it stands for, "" if none */
} hub_spec;

/* "hf-hub:ORG/NAME[@REV]", "ORG/NAME[@REV]" or a released model's name ->
 * *out; 1 if `spec` names a repo, 0 if not, -1 if it looks like one but is
 * malformed (characters the hub does not allow, "..", too long). */
int hub_parse_spec(const char *spec, hub_spec *out);

/* A refs/<revision> file's text -> the 40-hex commit; 0 if it is not one. */
int hub_parse_ref(const char *text, size_t size, char commit[41]);
int hub_is_commit(const char *s);

/* The cache folder ($HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub,
 * $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub). */
vt_status hub_cache_dir(char *out, size_t size, vt_error *err);
void hub_repo_dir(const char *cache, const char *repo, char *out, size_t size);

/* The cached snapshot of `spec`: *found = 1 and `path` = its weights file.
 * A snapshot link that points nowhere is an error saying how to repair it. */
vt_status hub_cache_find(const char *cache, const hub_spec *spec, char *path, size_t path_size, int *found,
                         vt_error *err);

/* $HF_HUB_OFFLINE set to 1/true/yes/on. */
int hub_offline_from_env(void);

/* Fetches the repo's files into the cache; sets `commit`. */
vt_status hub_download_repo(const char *cache, const hub_spec *spec, const vt_hub_options *options, char commit[41],
                            vt_error *err);

#endif
