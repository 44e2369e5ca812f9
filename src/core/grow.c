#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>

int vt_grow_array(void **array, size_t *capacity, size_t needed, size_t element) {
    if (needed < *capacity) return 1;
    size_t wanted = *capacity ? *capacity : 8;
    while (wanted <= needed) {
        if (wanted > SIZE_MAX / 2) return 0;
        wanted *= 2;
    }
    if (element && wanted > SIZE_MAX / element) return 0;
    void *bigger = realloc(*array, wanted * element);
    if (!bigger) return 0;
    *array = bigger;
    *capacity = wanted;
    return 1;
}
