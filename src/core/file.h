/* Reading a small file whole (configs, refs, vocabularies): one place for the
 * size limit, the errno message and the "absent is not an error" case. */
#ifndef VT_CORE_FILE_H
#define VT_CORE_FILE_H

#include <stddef.h>

#include "vitamin.h"

/* *text = malloc'd contents plus a NUL (not counted in *size). A missing file
 * gives VT_OK with *text = NULL when `missing_ok`, else VT_ERR_IO. Files over
 * `max_bytes` are VT_ERR_FORMAT ("larger than ..."). */
vt_status vt_read_file(const char *path, size_t max_bytes, int missing_ok, char **text, size_t *size, vt_error *err);

/* mkdir -p: `path` and every missing parent; fails if it exists as a non-directory. */
vt_status vt_make_dirs(const char *path, vt_error *err);

#endif
