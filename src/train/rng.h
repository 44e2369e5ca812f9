/* Counter-based random numbers for training: every draw is a pure function of
 * (key, draw number), and a key a pure function of (seed, domain, indices), so
 * a result never depends on which thread or rank computes it, in which order,
 * or how many draws other decisions made.
 *
 * Stateless form (random access, e.g. one value per tensor element):
 *   uint64_t key = rng_key(seed, RNG_DOMAIN_INIT, tensor_index);
 *   double u = rng_uniform(key, i);   // [0, 1)
 *   double z = rng_normal(key, i);    // N(0, 1)
 * Sequential form (a decision that takes a variable number of draws):
 *   rng_stream s = rng_stream_for(seed, RNG_DOMAIN_CROP, epoch, sample_index);
 *   float f = rng_stream_float(&s);          // [0, 1), 24 bits
 *   uint64_t k = rng_stream_below(&s, n);    // 0 .. n-1, unbiased
 *
 * Draw i of a key is splitmix64's output for state key + (i+1)·γ (Steele et
 * al., "Fast splittable pseudorandom number generators", 2014); keys hash
 * their fields with the same finaliser. Statistically fine for shuffling,
 * augmentation, dropout and initialisation; not for cryptography.
 *
 * Domains keep the streams of different decisions apart (the crop of sample 7
 * in epoch 2 must not reuse the numbers of the epoch-2 shuffle). They are
 * arbitrary 64-bit tags; never change an existing one, or every run's
 * numbers change. */
#ifndef VT_TRAIN_RNG_H
#define VT_TRAIN_RNG_H

#include <stdint.h>

#define RNG_DOMAIN_INIT 0x696e6974ULL      /* "init": parameter initialisation, per tensor */
#define RNG_DOMAIN_SHUFFLE 0x73687566ULL   /* "shuf": epoch permutation, (epoch, 0) */
#define RNG_DOMAIN_CROP 0x63726f70ULL      /* "crop": RandomResizedCrop, (epoch, sample index) */
#define RNG_DOMAIN_DROP_PATH 0x64707468ULL /* "dpth": stochastic depth, (step, layer) */
#define RNG_DOMAIN_PATCH_DROPOUT 0x70647270ULL /* "pdrp": a ViT's patch dropout, (step, sample) */

/* splitmix64's output function: a bijective avalanche mix of 64 bits. */
uint64_t rng_mix64(uint64_t x);

/* The key of decision (domain, index) under `seed`; rng_key2 for decisions
 * named by two numbers. rng_key(s, d, i) == rng_key2(s, d, i, 0). */
uint64_t rng_key(uint64_t seed, uint64_t domain, uint64_t index);
uint64_t rng_key2(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b);

/* Draw i of `key`: 64 random bits, uniform [0, 1) with 53 bits, or a standard
 * normal (Box-Muller on the uniforms of draws 2·i' and 2·i'+1 of a derived
 * key, so rng_normal and rng_uniform of one key are independent). */
uint64_t rng_bits(uint64_t key, uint64_t i);
double rng_uniform(uint64_t key, uint64_t i);
double rng_normal(uint64_t key, uint64_t i);

/* A key with a draw counter, for decisions that take draws one after another. */
typedef struct {
    uint64_t key;
    uint64_t counter; /* draws made so far */
} rng_stream;

rng_stream rng_stream_for(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b);
uint64_t rng_stream_u64(rng_stream *stream);
/* [0, 1) with 53 random bits. */
double rng_stream_double(rng_stream *stream);
/* [0, 1) with 24 random bits, exact in float (the resolution of torch's float32 uniform_). */
float rng_stream_float(rng_stream *stream);
/* Uniform integer in [0, n) without modulo bias (Lemire's multiply-and-reject);
 * n = 0 gives 0. */
uint64_t rng_stream_below(rng_stream *stream, uint64_t n);

/* timm DropPath's per-sample scales for samples first_sample .. + n − 1 of a
 * step: bernoulli(1 − rate) / (1 − rate), i.e. 0 or 1/(1 − rate), from draw
 * 2·sample + which of `key` (which: 0 or 1, a block's two residuals); all 1
 * at rate 0. */
void rng_drop_path_scales(float *keep, int n, float rate, uint64_t key, int64_t first_sample, int which);

#endif
