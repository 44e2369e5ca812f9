#include "core/notes.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void vt_note(vt_notes *notes, const char *fmt, ...) {
    if (!notes) return;
    size_t used = strlen(notes->text), room = sizeof notes->text - used;
    if (room < 2) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(notes->text + used, room - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        notes->text[used] = '\0';
        return;
    }
    used += (size_t)n < room - 1 ? (size_t)n : room - 2;
    notes->text[used++] = '\n';
    notes->text[used] = '\0';
}
