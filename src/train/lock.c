/* open_clip's lock rules (train/lock.h), reproduced from the sources pinned in
 * .venv (open_clip 3.3.0, timm 1.0.31).
 *
 * Image (open_clip/timm_model.py TimmModel.lock, lines 105-131): with 0
 * unlocked groups every trunk parameter is frozen. Otherwise timm's
 * group_parameters(trunk, trunk.group_matcher()) numbers the trunk's layer
 * groups 0..max and groups 0..max-N are frozen. ViTamin's trunk is a timm
 * VisionTransformer, whose matcher (timm/models/vision_transformer.py
 * 1015-1018) is
 *     stem   = r'^cls_token|reg_token|pos_embed|patch_embed|norm_pre'
 *     blocks = [(r'^blocks\.(\d+)', None), (r'^norm', (99999,))]
 * and group_with_matcher (timm/models/_manipulate.py 81-131) sorts the keys
 * (0,) < (1, i) < (1, 99999) < (inf,): unmatched names (fc_norm: "^norm" does
 * not match it) get inf, i.e. a group of their own after the last block, and
 * (1, 99999) ("norm", absent with fc_norm) joins the last block's group.
 * So for ViTamin: group 0 = pos_embed + the whole hybrid patch_embed (stem,
 * MBConv stages, StridedConv), groups 1..D = blocks 0..D-1, group D+1 =
 * fc_norm. The head (visual.head, outside the trunk) is never frozen.
 *
 * Text (open_clip/transformer.py lock_text_tower, lines 1360-1455): freeze
 * token_embedding, positional_embedding, transformer, ln_final and
 * text_projection; with N > 0 unlocked layers, unlock the last min(N, G) of
 * the G = L+2 groups
 *     [token_embedding, positional_embedding], resblocks 0 .. resblocks L-2,
 *     [resblocks L-1, ln_final], [text_projection]. */
#include "train/lock.h"

#include <string.h>

/* The groups themselves are numbered in the schema (model/schema.c) exactly as
 * derived above: image 0 = stem, 1 + i = block i, depth + 1 = fc_norm;
 * text 0 = embeddings, 1 + i = resblock i (the last with ln_final),
 * layers + 1 = text_projection; -1 = never locked (the head, logit_scale). */
void train_lock_apply(const train_params *p, unsigned char *frozen, int lock_image_tower, int image_unlocked_groups,
                      int lock_text_tower, int text_unlocked_layers) {
    memset(frozen, 0, (size_t)p->count);
    int image_max = p->schema.image_lock_groups - 1, text_groups = p->schema.text_lock_groups;
    int first_text_unlocked = text_groups - (text_unlocked_layers < text_groups ? text_unlocked_layers : text_groups);
    for (int i = 0; i < p->count; i++) {
        const schema_tensor *t = &p->schema.tensors[i];
        if (t->lock_group < 0) continue;
        if (t->tower == SCHEMA_IMAGE && lock_image_tower)
            frozen[i] = !image_unlocked_groups || t->lock_group <= image_max - image_unlocked_groups;
        else if (t->tower == SCHEMA_TEXT && lock_text_tower)
            frozen[i] = t->lock_group < first_text_unlocked;
    }
}
