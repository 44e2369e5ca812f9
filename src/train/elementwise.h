/* The training towers' elementwise loops run in parallel chunks above a size
 * where the fork pays: serial, they left the other threads spinning. Chunks
 * are fixed and every element is computed alone, so any thread count gives
 * the same bits. One rule for every tower file. */
#ifndef VT_TRAIN_ELEMENTWISE_H
#define VT_TRAIN_ELEMENTWISE_H

#include <omp.h>
#include <stddef.h>

enum { EW_CHUNK = 1 << 14 };

static inline int ew_parallel(size_t n) { return n >= 2 * EW_CHUNK && !omp_in_parallel(); }

/* out = a + b, or a + b ⊙ gamma (gamma per column of `w`) when gamma is not
 * NULL; out may alias a. */
void ew_add_scaled(float *out, const float *a, const float *b, const float *gamma, size_t rows, int w);

#endif
