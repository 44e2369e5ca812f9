/* Scratch memory for forward passes, reused across calls. Allocating (and
 * page-faulting in) hundreds of MB per call cost a fifth of the run time, so a
 * model keeps the blocks its callers used in a small pool: a call takes one big
 * enough (or allocates it), runs, and gives it back. The pool is the only
 * mutable part of a loaded model and is guarded by its own lock, so concurrent
 * callers each get their own block. */
#ifndef VT_MODEL_SCRATCH_POOL_H
#define VT_MODEL_SCRATCH_POOL_H

#include <pthread.h>
#include <stddef.h>

#define SCRATCH_POOL_SLOTS 8

typedef struct {
    pthread_mutex_t lock;
    float *blocks[SCRATCH_POOL_SLOTS];
    size_t floats[SCRATCH_POOL_SLOTS];
} scratch_pool;

void scratch_pool_init(scratch_pool *pool);
void scratch_pool_destroy(scratch_pool *pool);
/* A 64-byte aligned block of at least `floats` floats, or NULL if out of memory. */
float *scratch_pool_take(scratch_pool *pool, size_t floats, size_t *got_floats);
/* Returns a block from scratch_pool_take (freed if the pool is full). */
void scratch_pool_give(scratch_pool *pool, float *block, size_t floats);

#endif
