/* vitamin.c — ViTamin CLIP inference in C.
 *
 * Public API. Everything a caller needs: load a model (open_clip checkpoint in
 * PyTorch .bin or safetensors form), tokenize text, encode images and texts into
 * L2-normalised embeddings. All functions that can fail return a vt_status and,
 * when `err` is non-NULL, fill it with a message that names the file, tensor or
 * argument and says what was expected.
 *
 * Thread safety: no global mutable state. A loaded vt_model is read-only after
 * vt_model_load; any number of threads may call the encode functions on the same
 * model at once (each call uses its own scratch memory).
 */
#ifndef VITAMIN_H
#define VITAMIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VT_OK = 0,
    VT_ERR_ARGUMENT,     /* bad argument from the caller (NULL, negative size, ...) */
    VT_ERR_IO,           /* file missing, unreadable, disk full */
    VT_ERR_FORMAT,       /* file exists but is not what it claims (truncated, corrupt) */
    VT_ERR_UNSUPPORTED,  /* valid file using a feature we do not implement */
    VT_ERR_SHAPE,        /* tensor shape or count does not match the model */
    VT_ERR_DTYPE,        /* tensor dtype not usable */
    VT_ERR_MODEL,        /* unknown model name or inconsistent configuration */
    VT_ERR_NOMEM,        /* allocation failed */
    VT_ERR_VALUE,        /* non-finite weights, invalid UTF-8, ... */
} vt_status;

/* Caller-owned error report. */
typedef struct {
    vt_status status;
    char message[1024];
} vt_error;

const char *vt_status_name(vt_status status);

#ifdef __cplusplus
}
#endif
#endif /* VITAMIN_H */
