/* Notes: things a load decided that the user should hear about but that are
 * not errors (a fallback to shape inference, a preprocessor_config.json that
 * disagrees with the model's transform). One line each; the CLI prints them to
 * stderr, the library exposes them in vt_model_info.notes. */
#ifndef VT_CORE_NOTES_H
#define VT_CORE_NOTES_H

#include <stddef.h>

typedef struct {
    char text[2048]; /* lines ending in '\n'; "" when there is nothing to say */
} vt_notes;

/* Appends one line (printf-style, no trailing newline needed). `notes` may be
 * NULL (the note is dropped). Full buffers keep their first lines. */
void vt_note(vt_notes *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
