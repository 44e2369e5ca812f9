/* Where training samples come from, behind one interface for the loader:
 * a CSV/TSV table (open_clip's CsvDataset) or WebDataset tar shards. A sample
 * is addressed by its index (table row, or tar sample in shard order) and can
 * be read from any thread in any order. */
#ifndef VT_TRAIN_DATA_SOURCE_H
#define VT_TRAIN_DATA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "io/image/image.h"
#include "train/data.h"

typedef struct data_source data_source;

/* Opens options->train_data: a path ending in .csv/.tsv is a table (needs
 * csv_img_key / csv_caption_key columns), one ending in .tar a shard spec
 * (see io/shard_list.h). Fails naming what is missing. */
vt_status data_source_open(const data_options *options, data_source **out, vt_error *err);
int64_t data_source_count(const data_source *source);

/* 1 when images must be converted to RGB before augmentation (tar input:
 * webdataset's "pilrgb" decode), 0 when they keep their mode (CSV). */
int data_source_rgb_first(const data_source *source);

/* Reads sample `index`: the decoded image and its caption (malloc'd, with
 * its length, as stored: it may hold bytes that are not UTF-8). On failure
 * the message names the file (and member). Thread-safe. */
vt_status data_source_read(const data_source *source, int64_t index, decoded_image *image, char **caption,
                           size_t *caption_len, vt_error *err);

/* A label for sample `index` in messages: the image path or "shard: member". */
void data_source_describe(const data_source *source, int64_t index, char *out, size_t size);

void data_source_close(data_source *source);

#endif
