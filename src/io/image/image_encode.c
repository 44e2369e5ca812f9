/* PNG encoding into memory (see image_encode.h). */
#include "io/image/image_encode.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

static void png_write_memory(png_structp png, png_bytep data, png_size_t length) {
    png_memory *m = png_get_io_ptr(png);
    if (m->failed) return;
    if (!vt_grow_array((void **)&m->bytes, &m->capacity, m->size + length, 1)) {
        m->failed = 1;
        return;
    }
    memcpy(m->bytes + m->size, data, length);
    m->size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

/* Encodes a width x height 8-bit grayscale image; returns 0 on failure. */
int png_encode_gray(const uint8_t *pixels, int width, int height, png_memory *out) {
    out->size = 0;
    out->failed = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return 0;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        return 0;
    }
    png_set_write_fn(png, out, png_write_memory, png_flush_memory);
    /* Fastest deflate: these 28x28 images barely compress either way, and a
     * 70,000-image run spends most of its time here. */
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return !out->failed;
}
