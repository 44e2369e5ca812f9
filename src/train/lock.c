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

#include <stdlib.h>
#include <string.h>

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* "blocks.12.attn..." → 12 (after the prefix), or -1. */
static int index_after(const char *s, const char *prefix) {
    if (!starts_with(s, prefix)) return -1;
    char *end;
    long v = strtol(s + strlen(prefix), &end, 10);
    return end != s + strlen(prefix) && *end == '.' ? (int)v : -1;
}

/* timm's sort key of a trunk parameter (name without "visual.trunk."),
 * flattened to an int: stem 0, block i → 1+i, "norm" → the last block's key
 * (MATCH_PREV_GROUP), anything unmatched → depth+1. */
static int image_group_key(const char *n, int depth) {
    static const char *const stem[] = {"cls_token", "reg_token", "pos_embed", "patch_embed", "norm_pre"};
    for (size_t i = 0; i < sizeof stem / sizeof *stem; i++)
        if (starts_with(n, stem[i])) return 0;
    int b = index_after(n, "blocks.");
    if (b >= 0) return 1 + b;
    if (starts_with(n, "norm")) return depth;
    return depth + 1;
}

static const char TRUNK[] = "visual.trunk.";

static void lock_image(const train_params *p, unsigned char *frozen, int unlocked) {
    int depth = p->cfg.depth, nkeys = depth + 2;
    /* group_with_matcher numbers the keys that occur, in sorted order. */
    int *lid = calloc((size_t)nkeys, sizeof *lid);
    if (!lid) abort();
    for (int i = 0; i < p->count; i++)
        if (starts_with(p->params[i].name, TRUNK)) lid[image_group_key(p->params[i].name + strlen(TRUNK), depth)] = 1;
    int max_lid = -1;
    for (int k = 0; k < nkeys; k++) lid[k] = lid[k] ? ++max_lid : -1;
    for (int i = 0; i < p->count; i++) {
        const char *n = p->params[i].name;
        if (!starts_with(n, TRUNK)) continue;
        frozen[i] = !unlocked || lid[image_group_key(n + strlen(TRUNK), depth)] <= max_lid - unlocked;
    }
    free(lid);
}

/* Index of a text tensor's group (see the list above), or -1 for a name
 * lock_text_tower does not touch. */
static int text_group(const char *n, int layers) {
    if (starts_with(n, "text.token_embedding.") || !strcmp(n, "text.positional_embedding")) return 0;
    int b = index_after(n, "text.transformer.resblocks.");
    if (b >= 0) return 1 + b; /* the last block, 1 + (L-1), shares group L with ln_final */
    if (starts_with(n, "text.ln_final.")) return layers;
    if (!strcmp(n, "text.text_projection")) return layers + 1;
    return -1;
}

static void lock_text(const train_params *p, unsigned char *frozen, int unlocked) {
    int layers = p->cfg.text_layers, groups = layers + 2;
    int first_unlocked = groups - (unlocked < groups ? unlocked : groups);
    for (int i = 0; i < p->count; i++) {
        int g = text_group(p->params[i].name, layers);
        if (g >= 0) frozen[i] = g < first_unlocked;
    }
}

void train_lock_apply(const train_params *p, unsigned char *frozen, int lock_image_tower, int image_unlocked_groups,
                      int lock_text_tower, int text_unlocked_layers) {
    memset(frozen, 0, (size_t)p->count);
    if (lock_image_tower) lock_image(p, frozen, image_unlocked_groups);
    if (lock_text_tower) lock_text(p, frozen, text_unlocked_layers);
}
