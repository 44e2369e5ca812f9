/* A small JSON DOM parser (RFC 8259): enough for safetensors headers and
 * open_clip / Hugging Face config files. Depth- and size-limited so that hostile
 * input cannot exhaust the stack. */
#ifndef VT_IO_JSON_H
#define VT_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int boolean;
    double number;
    char *string;        /* JSON_STRING: UTF-8, NUL-terminated (embedded NUL rejected) */
    size_t count;        /* JSON_ARRAY / JSON_OBJECT: number of items */
    json_value *items;   /* array items, or object values */
    char **keys;         /* JSON_OBJECT: keys parallel to items */
};

/* Parses `text` (length `size`, need not be NUL-terminated). */
vt_status json_parse(const char *text, size_t size, json_value **out, vt_error *err);
void json_free(json_value *value);

const json_value *json_get(const json_value *object, const char *key); /* NULL if absent or not an object */
/* Convenience lookups; return `fallback` when absent or of another type. */
double json_get_number(const json_value *object, const char *key, double fallback);
const char *json_get_string(const json_value *object, const char *key, const char *fallback);

#endif
