#include "model/scratch_pool.h"

#include <stdlib.h>

void scratch_pool_init(scratch_pool *pool) {
    pthread_mutex_init(&pool->lock, NULL);
    for (int i = 0; i < SCRATCH_POOL_SLOTS; i++) {
        pool->blocks[i] = NULL;
        pool->floats[i] = 0;
    }
}

void scratch_pool_destroy(scratch_pool *pool) {
    for (int i = 0; i < SCRATCH_POOL_SLOTS; i++) free(pool->blocks[i]);
    pthread_mutex_destroy(&pool->lock);
}

float *scratch_pool_take(scratch_pool *pool, size_t floats, size_t *got_floats) {
    pthread_mutex_lock(&pool->lock);
    /* The smallest pooled block that fits. */
    int best = -1;
    for (int i = 0; i < SCRATCH_POOL_SLOTS; i++)
        if (pool->blocks[i] && pool->floats[i] >= floats && (best < 0 || pool->floats[i] < pool->floats[best])) best = i;
    float *block = NULL;
    if (best >= 0) {
        block = pool->blocks[best];
        *got_floats = pool->floats[best];
        pool->blocks[best] = NULL;
        pool->floats[best] = 0;
    }
    pthread_mutex_unlock(&pool->lock);
    if (block) return block;
    *got_floats = floats;
    return aligned_alloc(64, (floats * sizeof(float) + 63) & ~(size_t)63);
}

void scratch_pool_give(scratch_pool *pool, float *block, size_t floats) {
    if (!block) return;
    pthread_mutex_lock(&pool->lock);
    int slot = -1;
    for (int i = 0; i < SCRATCH_POOL_SLOTS && slot < 0; i++)
        if (!pool->blocks[i]) slot = i;
    if (slot < 0) { /* full: replace the smallest block if this one is bigger */
        slot = 0;
        for (int i = 1; i < SCRATCH_POOL_SLOTS; i++)
            if (pool->floats[i] < pool->floats[slot]) slot = i;
        if (pool->floats[slot] >= floats) {
            pthread_mutex_unlock(&pool->lock);
            free(block);
            return;
        }
        free(pool->blocks[slot]);
    }
    pool->blocks[slot] = block;
    pool->floats[slot] = floats;
    pthread_mutex_unlock(&pool->lock);
}
