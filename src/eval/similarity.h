/* All-pairs dot products between two sets of embeddings, computed block by
 * block so that a retrieval set of N texts x M images never needs the full
 * N x M score matrix in memory. */
#ifndef VT_EVAL_SIMILARITY_H
#define VT_EVAL_SIMILARITY_H

#include <stddef.h>

#include "vitamin.h"

/* Called once per block with scores[i * nb + j] = a[a0 + i] · b[b0 + j]. */
typedef void (*similarity_visit)(void *user, size_t a0, size_t na, size_t b0, size_t nb, const float *scores);

/* a: [na, dim], b: [nb, dim], row-major. Visits every (a, b) pair exactly once
 * (blocks in an unspecified order, from the calling thread). */
vt_status similarity_blocks(const float *a, size_t na, const float *b, size_t nb, int dim, similarity_visit visit,
                            void *user, vt_error *err);

#endif
