/* Multi-head scaled-dot-product attention over a packed qkv projection, as timm's
 * Attention and open_clip's text Attention compute it:
 *   qkv [B, T, 3D]: columns 0..D-1 = q, D..2D-1 = k, 2D..3D-1 = v, head h at
 *   h*hd .. h*hd+hd-1 inside each; out [B, T, D] with heads concatenated.
 *   out_h = softmax(q_h k_hᵀ · hd^-0.5 [+ causal mask]) v_h.
 * The score matrix of one (batch, head) pair is materialised (T ≤ 576 here). */
#ifndef VT_KERNELS_ATTENTION_H
#define VT_KERNELS_ATTENTION_H

#include <stddef.h>

#include "kernels/cpu.h"

/* Scratch floats one thread needs for a sequence length T and head dim hd. */
size_t attention_scratch_floats(int t, int hd);

/* `scratch` holds threads * attention_scratch_floats(t, hd) floats (64-byte
 * aligned), where threads = omp_get_max_threads() of the caller. probs
 * [B, heads, T, T] receives the softmax (0 where masked) for training's
 * backward, or is NULL (inference). One (batch, head) pair is one task, so
 * the result is the same for any thread count. */
void attention_forward(vt_isa isa, float *out, float *probs, const float *qkv, int batch, int t, int width,
                       int heads, int causal, float *scratch);

#endif
