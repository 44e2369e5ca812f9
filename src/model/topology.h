/* One topology per architecture: the ViTamin image tower as a list of blocks
 * with every number a block needs (channels, stride, shortcut, map sizes),
 * computed once from the config. The schema (tensor shapes), the inference
 * binder and tower, the training tower and the FLOP count all read it instead
 * of re-deriving the stage plan (timm models/vitamin.py MbConvStages: stage s
 * has stage_depths[s] MbConvLNBlocks, the first with stride 2 and, when the
 * width changes, a pooled 1x1 shortcut). */
#ifndef VT_MODEL_TOPOLOGY_H
#define VT_MODEL_TOPOLOGY_H

#include "model/config.h"

#define VT_MAX_MBCONV 16

typedef struct {
    int stage, index;      /* its place in timm's stages.<stage>.<index> */
    int cin, cout, mid;    /* mid = 4 · cout, the expanded width */
    int stride;            /* 2 for a stage's first block, else 1 */
    int has_expand;        /* pooled shortcut followed by a 1×1 conv (stride 2 and cin != cout) */
    int h_in, h_out;       /* square map sizes before and after */
} topo_mbconv;

typedef struct {
    int image_size;
    int stem_width, stem_out;   /* stem: 3×3/2 conv (3 → C0), LN+GELU, 3×3 conv; map stem_out² */
    topo_mbconv mbconv[VT_MAX_MBCONV];
    int mbconv_count;
    int stage_end[2];           /* one past the last block of each stage */
    int pool_channels, pool_in; /* StridedConv: LN + 3×3/2 conv of the last stage's map (pool_in²) */
    int grid, tokens;           /* tokens = grid², width `width` each */
    int width, depth, heads, mlp_hidden, mlp_glu;
} image_topology;

/* Fills `t` from `c`; 0 on success, -1 if the config has more MBConv blocks
 * than VT_MAX_MBCONV (vt_config_validate refuses such configs). */
int image_topology_build(const vt_model_config *c, image_topology *t);

#endif
