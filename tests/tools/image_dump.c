/* image_dump [--size S] FILE OUT_PREFIX
 *
 * Runs the decoder and open_clip's eval transform on FILE and writes
 *   OUT_PREFIX.u8   the S x S x 3 uint8 RGB crop (HWC, raw bytes)
 *   OUT_PREFIX.f32  the 3 x S x S float32 normalised tensor (CHW, host order)
 * with open_clip's OPENAI mean/std; prints "MODE WIDTH HEIGHT" of the decoded
 * image (Pillow's mode name). On error prints the message and exits 1.
 * Driven by tests/reference/test_image_preprocess.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image/image.h"


static int usage(void) {
    fprintf(stderr, "usage: image_dump [--size S] FILE OUT_PREFIX\n");
    return 2;
}

static int write_file(const char *prefix, const char *suffix, const void *data, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "image_dump: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int size = 224, arg = 1;
    if (argc > 2 && strcmp(argv[1], "--size") == 0) {
        size = atoi(argv[2]);
        arg = 3;
    }
    if (argc - arg != 2 || size < 1) return usage();
    const char *path = argv[arg], *prefix = argv[arg + 1];

    vt_error err = {0};
    decoded_image image;
    if (image_decode_file(path, &image, &err) != VT_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    printf("%s %d %d\n", image_mode_name(image.mode), image.width, image.height);

    size_t plane = (size_t)size * size;
    uint8_t *rgb = malloc(plane * 3);
    float *chw = malloc(plane * 3 * sizeof(float));
    int rc = 1;
    if (!rgb || !chw) {
        fprintf(stderr, "image_dump: out of memory\n");
    } else if (image_resize_crop_rgb8(&image, size, rgb, &err) != VT_OK ||
               image_preprocess_clip(&image, size, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, chw, &err) != VT_OK) {
        fprintf(stderr, "%s\n", err.message);
    } else {
        rc = write_file(prefix, ".u8", rgb, plane * 3) ||
             write_file(prefix, ".f32", chw, plane * 3 * sizeof(float));
    }
    free(rgb);
    free(chw);
    image_free(&image);
    return rc;
}
