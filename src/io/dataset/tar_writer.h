/* POSIX ustar archives written atomically (core/atomic_file): the shards of
 * a WebDataset, read back by tar_reader.c, webdataset and GNU tar. Entries
 * are regular files with mode 0644, owner 0 and mtime 0, so the same input
 * gives byte-identical shards. */
#ifndef VT_IO_DATASET_TAR_WRITER_H
#define VT_IO_DATASET_TAR_WRITER_H

#include <stddef.h>

#include "core/atomic_file.h"

typedef struct {
    atomic_file file;
} tar_writer;

vt_status tar_writer_open(tar_writer *w, const char *path, vt_error *err);
/* One member; `name` at most 100 bytes (no ustar prefix split needed here). */
vt_status tar_writer_add(tar_writer *w, const char *name, const void *data, size_t size, vt_error *err);
/* Writes the end-of-archive blocks and renames the archive into place. */
vt_status tar_writer_commit(tar_writer *w, vt_error *err);
void tar_writer_discard(tar_writer *w);

#endif
