/* Amortised growth of a malloc'd array, shared by the file parsers. */
#ifndef VT_CORE_GROW_H
#define VT_CORE_GROW_H

#include <stddef.h>

/* Grows *array (of `element`-byte items, *capacity of them) so that index
 * `needed` fits, doubling. Returns 0 (array untouched) if memory runs out or
 * the size would overflow. */
int vt_grow_array(void **array, size_t *capacity, size_t needed, size_t element);

#endif
