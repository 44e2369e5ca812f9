/* Nothing is lost on a kill: every file the library writes (embeddings,
 * checkpoints, configs, datasets) goes through here. */
#ifndef VT_CORE_ATOMIC_FILE_H
#define VT_CORE_ATOMIC_FILE_H

#include <stddef.h>

#include "vitamin.h"

/* Atomic file output: bytes go to "<path>.tmp.<pid>", which is fsync'ed, renamed
 * over `path`, and the directory fsync'ed, so a reader sees either the old file
 * or the complete new one, never a torn one. Any failing call removes the
 * temporary file and reports why (a full disk is named as such); later calls on
 * the same atomic_file then fail too, so callers may simply return the status.
 * Not for two threads of one process writing the same path at once. */
typedef struct {
    int fd;            /* -1 once closed */
    int skip_sync;     /* set by atomic_file_write_all(durable = 0) */
    char *path;
    char *temp_path;
} atomic_file;

vt_status atomic_file_open(atomic_file *file, const char *path, vt_error *err);
vt_status atomic_file_write(atomic_file *file, const void *data, size_t size, vt_error *err);
vt_status atomic_file_commit(atomic_file *file, vt_error *err);
/* Abandons the file (removes the temporary). Safe to call after any outcome. */
void atomic_file_discard(atomic_file *file);

/* The whole of `size` bytes at `path`, atomically; unchanged (not rewritten)
 * when the file already holds exactly these bytes. `durable` = 0 skips the
 * fsyncs (still all-or-nothing after a kill, not after a power loss): for
 * writers of many small files that sync the file system once at the end. */
vt_status atomic_file_write_all(const char *path, const void *data, size_t size, int durable, vt_error *err);

#endif
