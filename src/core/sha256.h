/* SHA-256 (FIPS 180-4), for checking downloads against the Hugging Face
 * hub's LFS object ids. Streaming: init, update any number of times, final. */
#ifndef VT_CORE_SHA256_H
#define VT_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t length;      /* bytes hashed so far */
    unsigned char block[64];
    size_t used;          /* bytes waiting in block */
} vt_sha256;

void vt_sha256_init(vt_sha256 *h);
void vt_sha256_update(vt_sha256 *h, const void *data, size_t size);
/* Writes the digest as 64 lowercase hex digits plus NUL. */
void vt_sha256_final_hex(vt_sha256 *h, char hex[65]);

#endif
