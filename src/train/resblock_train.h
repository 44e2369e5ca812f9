/* open_clip's ResidualAttentionBlock (transformer.py) for training, shared
 * by the text tower (causal, GELU or QuickGELU) and the ViT image tower
 * (unmasked, optional LayerScale): the training twin of model/resblock.c.
 *
 *   x_mid = x + ls_1 · out_proj(attn(in_proj(ln_1(x))))
 *   out   = x_mid + ls_2 · c_proj(act(c_fc(ln_2(x_mid))))
 *
 * Saved per block (or in one shared set with recompute): LN1 out + stats,
 * qkv, attention out + probs, x_mid, LN2 out + stats, c_fc out (pre-act),
 * and with LayerScale the two branches before their scale (ao, mo), which
 * the gammas' gradients need. */
#ifndef VT_TRAIN_RESBLOCK_TRAIN_H
#define VT_TRAIN_RESBLOCK_TRAIN_H

#include "model/schema.h"
#include "train/arena.h"
#include "train/clip_train.h"

typedef struct {
    int width, heads, hidden; /* hidden: c_fc's width (int(width · mlp_ratio)) */
    int act;                  /* kernels/activation.h vt_act: GELU or QuickGELU */
    int causal;               /* text: position i attends to j <= i */
    int layer_scale;          /* ls_1 / ls_2 present (ls_init_value) */
} resblock_shape;

typedef struct {
    float *ln1, *m1, *r1, *qkv, *att, *probs, *ao, *x_mid, *ln2, *m2, *r2, *f, *mo;
} resblock_acts;

typedef struct {
    train_tensor ln1_w, ln1_b, in_w, in_b, out_w, out_b, ls1, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b, ls2;
    const resblock_acts *a;
} resblock_train;

/* The tensors of block `layer` (its kinds `k`); ls1 / ls2 only with LayerScale. */
void resblock_train_bind(const clip_trainer *tr, const resblock_kinds *k, int layer, const resblock_shape *s,
                         resblock_train *b);
/* 1 if any of the block's tensors has a gradient. */
int resblock_train_has_grad(const resblock_train *b);
/* One set of saved activations for `batch` sequences of `t` tokens; 0 when out of memory. */
int resblock_acts_alloc(train_arena *arena, resblock_acts *a, const resblock_shape *s, size_t batch, size_t t);
/* Floats each of the three temporaries the forward and backward take must hold. */
size_t resblock_temp_floats(const resblock_shape *s, size_t batch, size_t t);

/* From x [batch·t, width]: the activations into b->a and, when `out` is not
 * NULL, the block's output into out (the backward's recompute passes NULL and
 * stops where nothing more is saved). t0, t1: temporaries. */
void resblock_train_forward(const resblock_shape *s, const resblock_train *b, const float *x, float *out, int batch,
                            int t, float *t0, float *t1);
/* dx [batch·t, width]: the gradient at the block's output on entry, at its
 * input x on return (+= parameter gradients). t0..t2: temporaries. */
void resblock_train_backward(const resblock_shape *s, const resblock_train *b, const float *x, float *dx, int batch,
                             int t, float *t0, float *t1, float *t2);

#endif
