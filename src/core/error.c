#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *vt_status_name(vt_status status) {
    switch (status) {
    case VT_OK: return "ok";
    case VT_ERR_ARGUMENT: return "invalid argument";
    case VT_ERR_IO: return "I/O error";
    case VT_ERR_FORMAT: return "malformed file";
    case VT_ERR_UNSUPPORTED: return "unsupported";
    case VT_ERR_SHAPE: return "shape mismatch";
    case VT_ERR_DTYPE: return "dtype mismatch";
    case VT_ERR_MODEL: return "model error";
    case VT_ERR_NOMEM: return "out of memory";
    case VT_ERR_VALUE: return "invalid value";
    }
    return "unknown error";
}

vt_status vt_fail(vt_error *err, vt_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void vt_error_prefix(vt_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[sizeof err->message];
    size_t plen = strlen(prefix), mlen = strlen(err->message);
    if (plen > sizeof joined - 1) plen = sizeof joined - 1;
    if (mlen > sizeof joined - 1 - plen) mlen = sizeof joined - 1 - plen; /* keep the tail short, not the prefix */
    memcpy(joined, prefix, plen);
    memcpy(joined + plen, err->message, mlen);
    joined[plen + mlen] = '\0';
    memcpy(err->message, joined, plen + mlen + 1);
}
