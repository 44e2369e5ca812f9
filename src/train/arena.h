/* The training towers' activation memory: every buffer of a tower state is
 * allocated once, at creation, 64-byte aligned, and freed together. */
#ifndef VT_TRAIN_ARENA_H
#define VT_TRAIN_ARENA_H

#include <stddef.h>

typedef struct {
    void **blocks;
    int count, capacity;
} train_arena;

/* NULL when out of memory (the arena stays valid). */
void *train_arena_bytes(train_arena *a, size_t bytes);
float *train_arena_floats(train_arena *a, size_t n);
void train_arena_free(train_arena *a);

#endif
