/* An evaluation set in CLIP_benchmark's `wds/` layout, so that local data
 * runs through its suite with no download (build_wds_dataset reads it):
 *
 *   OUT/SPLIT/nshards.txt, OUT/SPLIT/0.tar, 1.tar, ...
 *   OUT/classnames.txt, OUT/zeroshot_classification_templates.txt   (classification)
 *   OUT/dataset_type.txt = "retrieval"                               (retrieval)
 *
 * Each sample is KEY.<image extension> (the image file's own bytes, not
 * re-encoded) plus KEY.cls (the class index) or KEY.txt (its captions, one
 * per line). Templates are written with {c}, as CLIP_benchmark formats them.
 * Every file is written atomically; the same input gives identical files. */
#ifndef VT_EVAL_WDS_EXPORT_H
#define VT_EVAL_WDS_EXPORT_H

#include <stddef.h>

#include "eval/eval_data.h"

typedef struct {
    const char *out_dir;
    const char *split;       /* "test" */
    size_t shard_size;       /* samples per shard */
    /* progress: called after each sample (may be NULL) */
    void (*progress)(void *user, size_t done, size_t total);
    void *user;
} wds_export_options;

typedef struct {
    size_t samples, shards, captions;
} wds_export_stats;

vt_status wds_export_classification(const eval_zeroshot_inputs *in, const wds_export_options *opt,
                                    wds_export_stats *stats, vt_error *err);
/* Rows with the same image path become one sample with all their captions. */
vt_status wds_export_retrieval(const eval_dataset *set, const wds_export_options *opt, wds_export_stats *stats,
                               vt_error *err);

#endif
