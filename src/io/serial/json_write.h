/* Building JSON text (the writing half of json.h): a growable buffer with
 * escaped strings, doubles that read back bit-exact, and a serialiser for
 * parsed values, so a JSON object taken in can be written out again. */
#ifndef VT_IO_JSON_WRITE_H
#define VT_IO_JSON_WRITE_H

#include <stddef.h>

#include "io/serial/json.h"

/* Zero-initialise. An allocation failure sets `failed` and makes every later
 * call a no-op, so callers check once at the end. `text` is NUL-terminated. */
typedef struct {
    char *text;
    size_t length, capacity;
    int failed;
} json_writer;

void json_write_raw(json_writer *w, const char *text);
void json_write_format(json_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A quoted string with the escapes RFC 8259 requires (UTF-8 passes through). */
void json_write_string(json_writer *w, const char *s);
/* %.17g (reads back to the same double); null for NaN and infinities, which
 * JSON cannot hold. */
void json_write_double(json_writer *w, double x);
/* Any parsed value, compactly; numbers as json_write_double. */
void json_write_value(json_writer *w, const json_value *v);
void json_writer_free(json_writer *w);

#endif
