/* libFuzzer target for the IDX reader (io/idx.c): any bytes must parse or
 * fail with a message; a parsed array's dimensions must match its size.
 * Seed corpus: tests/fuzz/corpus/idx/. */
#include <stdint.h>
#include <stdlib.h>

#include "io/dataset/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    idx_array a;
    vt_error err = {0};
    if (idx_parse(data, size, "fuzz.idx", &a, &err) != VT_OK) {
        if (!err.message[0] || a.data) __builtin_trap();
        return 0;
    }
    size_t count = 1;
    for (int d = 0; d < a.ndim; d++) count *= a.dims[d];
    if (count != a.count) __builtin_trap();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < a.count; i++) sink ^= a.data[i];
    idx_free(&a);
    return 0;
}
