/* PNG encoding (libpng) into a growing memory buffer: the dataset builders
 * write their images with it. */
#ifndef VT_IO_IMAGE_ENCODE_H
#define VT_IO_IMAGE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *bytes;   /* the encoded file; reused by the next encode; free() it when done */
    size_t size, capacity;
    int failed;
} png_memory;

/* Encodes a width x height 8-bit grayscale image (rows tightly packed) into
 * *out, replacing what it held; returns 0 on failure (out of memory). */
int png_encode_gray(const uint8_t *pixels, int width, int height, png_memory *out);

#endif
