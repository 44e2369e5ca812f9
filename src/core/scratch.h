/* Grow-only scratch buffers (the training ops, training's GEMM driver).
 *
 * A training step calls each op dozens of times with the same sizes. Taking
 * fresh memory per call costs more than the op's own work on the big maps:
 * glibc serves blocks over its mmap threshold with mmap, and every page of a
 * fresh mapping is faulted and zeroed by the kernel again. A buffer that only
 * grows is allocated during the first step and reused afterwards.
 *
 * Declare one `static _Thread_local vt_scratch` per use: each thread that
 * calls the op (e.g. inside another op's parallel region) then has its own,
 * so no locking is needed. The contents are undefined on return. */
#ifndef VT_CORE_SCRATCH_H
#define VT_CORE_SCRATCH_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    void *data;
    size_t cap; /* bytes */
} vt_scratch;

/* At least `bytes` bytes, 64-byte aligned; aborts when out of memory (a kernel
 * has nothing sensible to return). */
static inline void *vt_scratch_get(vt_scratch *s, size_t bytes) {
    if (s->cap < bytes || !s->data) {
        free(s->data);
        /* A quarter of headroom: sizes that creep up (split-k partials,
         * the last band) regrow less often. */
        size_t cap = ((bytes ? bytes + bytes / 4 : 64) + 63) & ~(size_t)63;
        s->data = aligned_alloc(64, cap);
        if (!s->data) {
            fprintf(stderr, "vitamin: out of memory for %zu bytes of scratch\n", cap);
            abort();
        }
        s->cap = cap;
    }
    return s->data;
}

#endif
