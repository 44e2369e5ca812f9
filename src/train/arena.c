/* See arena.h. */
#include "train/arena.h"

#include <stdlib.h>
#include <string.h>

void *train_arena_bytes(train_arena *a, size_t bytes) {
    if (a->count == a->capacity) {
        int capacity = a->capacity ? 2 * a->capacity : 256;
        void **grown = realloc(a->blocks, (size_t)capacity * sizeof *grown);
        if (!grown) return NULL;
        a->blocks = grown;
        a->capacity = capacity;
    }
    void *p = aligned_alloc(64, ((bytes ? bytes : 1) + 63) & ~(size_t)63);
    if (p) a->blocks[a->count++] = p;
    return p;
}

float *train_arena_floats(train_arena *a, size_t n) { return train_arena_bytes(a, n * sizeof(float)); }

void train_arena_free(train_arena *a) {
    for (int i = 0; i < a->count; i++) free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}
