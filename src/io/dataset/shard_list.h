/* open_clip's --train-data shard specifications: "a.tar", "dir/shard-{000..009}.tar",
 * "x-{0..3}.tar::y-{a,b}.tar" — several specs joined with "::", each
 * brace-expanded like Python's braceexpand (webdataset's expand_urls):
 *   {a,b,c}      alternatives (nested braces allowed)
 *   {3..12}      integer ranges, either direction, optional step {0..10..2};
 *                zero-padded to the longer bound when a bound has a leading
 *                zero ("{000..009}" gives 000 .. 009)
 *   {a..e}       single-letter ranges
 *   \{ \} \,     literal characters
 * A brace group that is neither a range nor a list (e.g. "{x}") stays literal.
 * Unbalanced braces are an error. */
#ifndef VT_IO_SHARD_LIST_H
#define VT_IO_SHARD_LIST_H

#include <stddef.h>

#include "vitamin.h"

/* Expanding to more names than this is refused (a typo like {0..99999999}). */
#define SHARD_LIST_MAX 1000000

typedef struct {
    char **paths;
    size_t count, capacity;
} shard_list;

vt_status shard_list_expand(const char *spec, shard_list *out, vt_error *err);
void shard_list_free(shard_list *list);

#endif
