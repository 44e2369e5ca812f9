/* JSON text output (see json_write.h). */
#include "io/serial/json_write.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(json_writer *w, size_t extra) {
    if (w->failed) return 0;
    if (w->length + extra + 1 <= w->capacity) return 1;
    size_t cap = w->capacity ? w->capacity : 256;
    while (cap < w->length + extra + 1) {
        if (cap > ((size_t)-1) / 2) { w->failed = 1; return 0; }
        cap *= 2;
    }
    char *grown = realloc(w->text, cap);
    if (!grown) { w->failed = 1; return 0; }
    w->text = grown;
    w->capacity = cap;
    return 1;
}

static void append(json_writer *w, const char *bytes, size_t n) {
    if (!reserve(w, n)) return;
    memcpy(w->text + w->length, bytes, n);
    w->length += n;
    w->text[w->length] = '\0';
}

void json_write_raw(json_writer *w, const char *text) { append(w, text, strlen(text)); }

void json_write_format(json_writer *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { w->failed = 1; return; }
    if (!reserve(w, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(w->text + w->length, (size_t)n + 1, fmt, ap);
    va_end(ap);
    w->length += (size_t)n;
}

void json_write_string(json_writer *w, const char *s) {
    append(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': append(w, "\\\"", 2); break;
        case '\\': append(w, "\\\\", 2); break;
        case '\n': append(w, "\\n", 2); break;
        case '\r': append(w, "\\r", 2); break;
        case '\t': append(w, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                append(w, esc, 6);
            } else {
                append(w, (const char *)p, 1);
            }
        }
    }
    append(w, "\"", 1);
}

void json_write_double(json_writer *w, double x) {
    if (!isfinite(x)) json_write_raw(w, "null");
    else if (x == floor(x) && fabs(x) < 9007199254740992.0 && !(x == 0 && signbit(x)))
        json_write_format(w, "%.0f", x); /* integers stay integers: 3, not 3.0000000000000000 */
    else json_write_format(w, "%.17g", x);
}

void json_write_value(json_writer *w, const json_value *v) {
    switch (v->type) {
    case JSON_NULL: json_write_raw(w, "null"); break;
    case JSON_BOOL: json_write_raw(w, v->boolean ? "true" : "false"); break;
    case JSON_NUMBER: json_write_double(w, v->number); break;
    case JSON_STRING: json_write_string(w, v->string); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        json_write_raw(w, v->type == JSON_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->count; i++) {
            if (i) json_write_raw(w, ", ");
            if (v->type == JSON_OBJECT) {
                json_write_string(w, v->keys[i]);
                json_write_raw(w, ": ");
            }
            json_write_value(w, &v->items[i]);
        }
        json_write_raw(w, v->type == JSON_ARRAY ? "]" : "}");
        break;
    }
}

void json_writer_free(json_writer *w) {
    free(w->text);
    memset(w, 0, sizeof *w);
}
