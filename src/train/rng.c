/* Counter-based splitmix64 streams (see rng.h). */
#include "train/rng.h"

#include <math.h>

/* splitmix64's increment: the odd integer closest to 2^64 / golden ratio. */
#define RNG_GAMMA 0x9E3779B97F4A7C15ull

uint64_t rng_mix64(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t rng_key2(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b) {
    /* Each field goes through a full mix before the next is added, so
     * (a, b) = (1, 0) and (0, 1) give unrelated keys. */
    uint64_t h = rng_mix64(seed + RNG_GAMMA);
    h = rng_mix64(h ^ (domain + RNG_GAMMA));
    h = rng_mix64(h ^ (a + 2 * RNG_GAMMA));
    return rng_mix64(h ^ (b + 3 * RNG_GAMMA));
}

uint64_t rng_key(uint64_t seed, uint64_t domain, uint64_t index) { return rng_key2(seed, domain, index, 0); }

uint64_t rng_bits(uint64_t key, uint64_t i) { return rng_mix64(key + (i + 1) * RNG_GAMMA); }

static double bits_to_unit(uint64_t bits) { return (double)(bits >> 11) * 0x1.0p-53; }

double rng_uniform(uint64_t key, uint64_t i) { return bits_to_unit(rng_bits(key, i)); }

double rng_normal(uint64_t key, uint64_t i) {
    uint64_t normal_key = rng_mix64(key ^ 0x6e6f726dULL /* "norm" */);
    /* 1 - u is in (0, 1], so the log is finite. */
    double u1 = 1.0 - bits_to_unit(rng_bits(normal_key, 2 * i));
    double u2 = bits_to_unit(rng_bits(normal_key, 2 * i + 1));
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

rng_stream rng_stream_for(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b) {
    rng_stream stream = {rng_key2(seed, domain, a, b), 0};
    return stream;
}

uint64_t rng_stream_u64(rng_stream *stream) { return rng_bits(stream->key, stream->counter++); }

double rng_stream_double(rng_stream *stream) { return bits_to_unit(rng_stream_u64(stream)); }

float rng_stream_float(rng_stream *stream) { return (float)(rng_stream_u64(stream) >> 40) * 0x1.0p-24f; }

uint64_t rng_stream_below(rng_stream *stream, uint64_t n) {
    if (n == 0) return 0;
    /* Lemire, "Fast random integer generation in an interval" (2019): the high
     * half of x·n is uniform once the low half's biased region is rejected. */
    unsigned __int128 m = (unsigned __int128)rng_stream_u64(stream) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = (unsigned __int128)rng_stream_u64(stream) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void rng_drop_path_scales(float *keep, int n, float rate, uint64_t key, int64_t first_sample, int which) {
    for (int i = 0; i < n; i++) {
        if (rate <= 0.0f) {
            keep[i] = 1.0f;
            continue;
        }
        double u = rng_uniform(key, (uint64_t)(first_sample + i) * 2 + (uint64_t)which);
        keep[i] = u < 1.0 - rate ? 1.0f / (1.0f - rate) : 0.0f;
    }
}
