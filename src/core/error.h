/* Error reporting shared by every layer: a status code plus a message that tells
 * the user what was wrong and, where possible, how to fix it. */
#ifndef VT_CORE_ERROR_H
#define VT_CORE_ERROR_H

#include "vitamin.h"

/* Fills `err` (if non-NULL) with printf-style text and returns `status`, so a
 * failing path can be written as `return vt_fail(err, VT_ERR_IO, "...", ...);`. */
vt_status vt_fail(vt_error *err, vt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context ("loading model.bin: ") to an existing message. */
void vt_error_prefix(vt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
