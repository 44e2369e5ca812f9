/* Read-only ZIP archive reader over a memory buffer (usually an mmap of the
 * file). Enough for PyTorch's torch.save archives: the central directory
 * (ZIP64 included, for checkpoints over 4 GiB), STORED entries returned as
 * pointers into the buffer, DEFLATE entries inflated into an owned buffer. Every
 * offset and size read from the file is bounds-checked against the buffer. */
#ifndef VT_IO_ZIP_READER_H
#define VT_IO_ZIP_READER_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

enum { ZIP_METHOD_STORED = 0, ZIP_METHOD_DEFLATE = 8 };

typedef struct {
    char *name;                 /* NUL-terminated path inside the archive */
    uint16_t method;            /* ZIP_METHOD_* */
    uint32_t crc32;
    uint64_t compressed_size;   /* bytes at data_offset */
    uint64_t uncompressed_size;
    uint64_t data_offset;       /* start of the entry's bytes in the buffer */
} zip_entry;

typedef struct {
    const uint8_t *bytes;       /* the whole archive (not owned) */
    size_t size;
    zip_entry *entries;         /* central directory order */
    size_t count;
    const zip_entry **by_name;  /* entries sorted by name (ties in directory order), for zip_find */
    const char *label;          /* file name used in messages (not owned) */
} zip_archive;

/* Reads the central directory and every local header. `label` names the archive
 * in error messages and must outlive `zip`. On failure `zip` holds nothing. */
vt_status zip_open(zip_archive *zip, const void *bytes, size_t size, const char *label,
                   vt_error *err);
void zip_close(zip_archive *zip);

const zip_entry *zip_find(const zip_archive *zip, const char *name); /* NULL if absent */

/* The uncompressed bytes of an entry. STORED: *data points into the archive and
 * *owned is NULL. DEFLATE: the entry is inflated into a malloc'd buffer returned
 * in both *data and *owned (the caller frees *owned) and its CRC-32 is checked. */
vt_status zip_entry_bytes(const zip_archive *zip, const zip_entry *entry, const uint8_t **data,
                          size_t *size, void **owned, vt_error *err);

/* Checks an entry's CRC-32 against the central directory. */
vt_status zip_entry_verify(const zip_archive *zip, const zip_entry *entry, vt_error *err);

#endif
