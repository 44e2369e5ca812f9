/* libFuzzer target for the JSON parser: any input must parse or fail with a
 * message, and a parsed document must be fully walkable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/serial/json.h"

/* Visits every node (depth is bounded by the parser's limit). */
static size_t walk(const json_value *value) {
    size_t nodes = 1;
    if (value->type == JSON_STRING && !value->string) abort();
    if (value->type == JSON_ARRAY || value->type == JSON_OBJECT) {
        for (size_t i = 0; i < value->count; i++) {
            nodes += walk(&value->items[i]);
            if (value->type == JSON_OBJECT && json_get(value, value->keys[i]) == NULL) abort();
        }
    }
    return nodes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_error err = {0};
    json_value *doc = NULL;
    if (json_parse((const char *)data, size, &doc, &err) != VT_OK) {
        if (doc || err.message[0] == '\0') abort();
        return 0;
    }
    walk(doc);
    json_get_number(doc, "shape", 0);
    json_get_string(doc, "dtype", NULL);
    json_free(doc);
    return 0;
}
