/* WebDataset shards: tar files whose members are grouped into samples by key.
 *
 * A shard is indexed once (tar_index_shard): the headers are scanned, member
 * data is skipped by seeking, and every complete sample is recorded as the
 * offsets of its image and caption, so that samples can then be read in any
 * order with pread. Only the metadata is parsed; nothing is extracted.
 *
 * Tar dialects: POSIX ustar (name + prefix), GNU (long names in 'L' records,
 * base-256 sizes) and pax ('x' records: path, size). Only regular files
 * (types '0', '\0', '7') become sample members, as webdataset skips the rest.
 *
 * Grouping follows webdataset (tariterators.base_plus_ext + group_by_keys):
 * a member "dir/abc.d.jpg" has key "dir/abc" and suffix "d.jpg" (split at the
 * first dot of the basename, suffix lower-cased); members without a dot in the
 * basename are ignored; consecutive members with one key form a sample, and a
 * repeated suffix starts a new one. A sample is kept when it has a "txt"
 * caption and an image, open_clip's filter_no_caption_or_no_image; the image
 * is the first of jpg, png, jpeg, webp present (wds.rename's order). */
#ifndef VT_IO_TAR_READER_H
#define VT_IO_TAR_READER_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

typedef struct {
    uint64_t image_offset, image_size; /* member data in the shard file */
    uint64_t text_offset, text_size;
    uint32_t name_offset;              /* image member's name in tar_index.names */
} tar_sample;

typedef struct {
    tar_sample *samples;
    size_t count, capacity;
    char *names;                       /* NUL-separated member names */
    size_t names_size, names_capacity;
} tar_index;

/* Positional read from some tar image (a file, or memory for the fuzzer):
 * returns the bytes read (short only at end of file) or -1 on an I/O error. */
typedef long long (*tar_read_at)(void *context, uint64_t offset, void *buffer, size_t size);

/* Appends the samples of one tar image of `file_size` bytes to `index`;
 * `name` labels error messages. Fails for a corrupt header (bad checksum,
 * non-octal size), a member running past the end of the file ("truncated"),
 * or an I/O error; a tar without samples is not an error here. */
vt_status tar_index_append(tar_read_at read, void *context, uint64_t file_size, const char *name,
                           tar_index *index, vt_error *err);

/* Opens `path`, indexes it with tar_index_append, and fails if it holds no
 * sample. The file is closed again; samples are read later by offset. */
vt_status tar_index_shard(const char *path, tar_index *index, vt_error *err);

/* The image member's name of sample i (for messages and the decoder). */
static inline const char *tar_sample_name(const tar_index *index, size_t i) {
    return index->names + index->samples[i].name_offset;
}

void tar_index_free(tar_index *index);

#endif
