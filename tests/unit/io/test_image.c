/* Unit tests for the image layer: Pillow's resampling on small known arrays
 * (expected values produced by Pillow 13's Image.resize), the torchvision
 * resize/crop geometry, decoding of tiny embedded files and the error paths.
 * Whole-image parity with open_clip lives in
 * tests/reference/test_image_preprocess.py. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/image/image.h"
#include "io/image/pillow_resample.h"
#include "unit.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const float OPENAI_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float OPENAI_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* ------------------------------------------------------------------------- */
/* Resampling                                                                 */
/* ------------------------------------------------------------------------- */

static void test_bicubic_kernel(void) {
    CHECK_NEAR(pillow_bicubic_filter(0.0), 1.0, 0);
    CHECK_NEAR(pillow_bicubic_filter(1.0), 0.0, 0);
    CHECK_NEAR(pillow_bicubic_filter(-2.0), 0.0, 0);
    CHECK_NEAR(pillow_bicubic_filter(0.5), 0.5625, 1e-15);
    CHECK_NEAR(pillow_bicubic_filter(-1.5), -0.0625, 1e-15);
    CHECK_NEAR(pillow_bicubic_filter(3.0), 0.0, 0);
}

/* Full-size resize of a small buffer; returns 1 if it matches `expected`. */
static int resize_matches(resample_image in, int out_w, int out_h, int nearest,
                          const void *expected, size_t expected_bytes) {
    uint8_t out_pixels[512];
    resample_image out = {0};
    out.pixels = out_pixels;
    resample_window window = {0, 0, out_w, out_h};
    vt_error err = {0};
    vt_status st = nearest ? pillow_resize_nearest(&in, out_w, out_h, window, &out, &err)
                           : pillow_resize_bicubic(&in, out_w, out_h, window, &out, &err);
    if (st != VT_OK) {
        fprintf(stderr, "resize failed: %s\n", err.message);
        return 0;
    }
    return memcmp(out_pixels, expected, expected_bytes) == 0;
}

static void test_bicubic_gray_row(void) {
    uint8_t row[] = {0, 255, 0, 255, 100};
    resample_image in = {5, 1, 1, RESAMPLE_U8, row};
    /* Image.fromarray(row).resize((3, 1), BICUBIC): shrinking, antialiased */
    const uint8_t shrink[] = {106, 122, 164};
    CHECK(resize_matches(in, 3, 1, 0, shrink, sizeof shrink));
    /* ... (8, 1): enlarging, with clipped overshoot */
    const uint8_t grow[] = {0, 114, 252, 59, 56, 249, 174, 89};
    CHECK(resize_matches(in, 8, 1, 0, grow, sizeof grow));
    /* the same row as a column: the vertical pass alone */
    resample_image column = {1, 5, 1, RESAMPLE_U8, row};
    CHECK(resize_matches(column, 1, 8, 0, grow, sizeof grow));
}

static void test_bicubic_rgb_both_axes(void) {
    uint8_t rgb[36];
    for (int i = 0; i < 36; i++) rgb[i] = (uint8_t)(i * 23 % 256);
    resample_image in = {4, 3, 3, RESAMPLE_U8, rgb};
    const uint8_t to_3x2[] = {19, 42, 65, 110, 133, 159, 200, 231, 179,
                              47, 70, 93, 138, 167, 193, 228, 125, 73};
    CHECK(resize_matches(in, 3, 2, 0, to_3x2, sizeof to_3x2));
    const uint8_t to_2x5[] = {38, 61, 84, 165, 188, 220, 46, 69, 96, 173,
                              201, 178, 60, 83, 116, 187, 210, 115, 74, 103,
                              130, 201, 147, 124, 82, 115, 138, 209, 105, 137};
    CHECK(resize_matches(in, 2, 5, 0, to_2x5, sizeof to_2x5));

    /* A window of the 2x5 result equals the same pixels of the full result. */
    uint8_t window_pixels[2 * 3];
    resample_image out = {0};
    out.pixels = window_pixels;
    resample_window window = {1, 2, 1, 2};
    CHECK(pillow_resize_bicubic(&in, 2, 5, window, &out, NULL) == VT_OK);
    CHECK(memcmp(window_pixels, to_2x5 + (2 * 2 + 1) * 3, 3) == 0);
    CHECK(memcmp(window_pixels + 3, to_2x5 + (3 * 2 + 1) * 3, 3) == 0);
}

static void test_bicubic_16_and_32_bit(void) {
    /* I;16 uses double weights and saturates to 0..65535 */
    uint16_t gray16[] = {0, 0, 65535, 65535, 0, 0, 300, 20};
    resample_image in16 = {8, 1, 1, RESAMPLE_U16, gray16};
    const uint16_t grown16[] = {0, 0, 1402, 45132, 65535, 65535, 32768, 0, 0, 104, 299, 140, 0};
    CHECK(resize_matches(in16, 13, 1, 0, grown16, sizeof grown16));

    /* I keeps negative and large values */
    int32_t gray32[] = {-1000, 5, 70000, -3, 123456, 0};
    resample_image in32 = {6, 1, 1, RESAMPLE_I32, gray32};
    const int32_t shrunk32[] = {-3485, 38350, 52050, 47977};
    CHECK(resize_matches(in32, 4, 1, 0, shrunk32, sizeof shrunk32));
    const int32_t grown32[] = {-1066, -4644, 9299, 65637, 31657, 12236, 114929, 65359, -8122};
    CHECK(resize_matches(in32, 9, 1, 0, grown32, sizeof grown32));
}

static void test_nearest_accumulates_like_pillow(void) {
    /* 2 -> 7: (3 + 0.5) * 2/7 is exactly 1.0, but Pillow's accumulated
     * position is 0.999..., so output pixel 3 takes source pixel 0. */
    uint8_t row[] = {0, 1};
    resample_image in = {2, 1, 1, RESAMPLE_U8, row};
    const uint8_t expected[] = {0, 0, 0, 0, 1, 1, 1};
    CHECK(resize_matches(in, 7, 1, 1, expected, sizeof expected));
}

static void test_resample_rejects_bad_windows(void) {
    uint8_t pixel = 7, out_pixels[16];
    resample_image in = {1, 1, 1, RESAMPLE_U8, &pixel};
    resample_image out = {0};
    out.pixels = out_pixels;
    vt_error err = {0};
    resample_window outside = {2, 0, 3, 3};
    CHECK(pillow_resize_bicubic(&in, 4, 4, outside, &out, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "window") != NULL);
    resample_window empty = {0, 0, 0, 1};
    CHECK(pillow_resize_nearest(&in, 4, 4, empty, &out, &err) == VT_ERR_ARGUMENT);
    resample_window ok = {0, 0, 1, 1};
    CHECK(pillow_resize_bicubic(&in, 0, 4, ok, &out, &err) == VT_ERR_ARGUMENT);
}

/* ------------------------------------------------------------------------- */
/* Geometry                                                                   */
/* ------------------------------------------------------------------------- */

static void test_resize_crop_plan(void) {
    /* width, height, S -> torchvision's resized size and crop offsets */
    static const int cases[][7] = {
        {640, 427, 224, 335, 224, 56, 0},     /* round(55.5) = 56 (even) */
        {224, 227, 224, 224, 227, 0, 2},      /* round(1.5) = 2 */
        {224, 225, 224, 224, 225, 0, 0},      /* round(0.5) = 0 */
        {224, 229, 224, 224, 229, 0, 2},      /* round(2.5) = 2 */
        {451, 300, 224, 336, 224, 56, 0},
        {3, 10000, 224, 224, 746666, 0, 373221},
        {1, 1, 384, 384, 384, 0, 0},
        {500, 500, 336, 336, 336, 0, 0},
        {1000, 3, 256, 85333, 256, 42538, 0},
        {227, 224, 224, 227, 224, 2, 0},
        {333, 221, 224, 337, 224, 56, 0},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        image_crop_plan plan;
        CHECK(image_plan_resize_crop(cases[i][0], cases[i][1], cases[i][2], &plan, NULL) == VT_OK);
        CHECK(plan.resized_width == cases[i][3]);
        CHECK(plan.resized_height == cases[i][4]);
        CHECK(plan.crop_left == cases[i][5]);
        CHECK(plan.crop_top == cases[i][6]);
    }
    image_crop_plan plan;
    vt_error err = {0};
    CHECK(image_plan_resize_crop(10, 10, 0, &plan, &err) == VT_ERR_ARGUMENT);
    CHECK(image_plan_resize_crop(0, 10, 224, &plan, &err) == VT_ERR_ARGUMENT);
    CHECK(image_plan_resize_crop(1, 65500, 65500, &plan, &err) == VT_ERR_UNSUPPORTED);
}

/* ------------------------------------------------------------------------- */
/* Decoding tiny files                                                        */
/* ------------------------------------------------------------------------- */

/* Image.fromarray(3x2 RGB).save(PNG) */
static const uint8_t tiny_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0x12,
    0x16, 0xf1, 0x4d, 0x00, 0x00, 0x00, 0x18, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
    0xcf, 0xc0, 0xc0, 0x00, 0xc1, 0x5c, 0x22, 0x72, 0x27, 0x52, 0x8c, 0xfe, 0xff, 0xff, 0x0f,
    0x00, 0x3c, 0x19, 0x07, 0x95, 0xef, 0xc2, 0xc6, 0xd8, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
static const uint8_t tiny_png_pixels[] = {255, 0, 0, 0, 255, 0, 0, 0, 255,
                                          10, 20, 30, 200, 100, 50, 255, 255, 255};

/* The same pixels with alpha 128, saved as lossless WebP */
static const uint8_t tiny_webp[] = {
    0x52, 0x49, 0x46, 0x46, 0x42, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38,
    0x4c, 0x36, 0x00, 0x00, 0x00, 0x2f, 0x02, 0x40, 0x00, 0x10, 0x2f, 0x40, 0x90, 0x6d, 0xb3,
    0x41, 0xdc, 0xeb, 0xfe, 0x32, 0xd3, 0x20, 0x93, 0xb6, 0xc9, 0x5f, 0xff, 0x76, 0x66, 0x6d,
    0x64, 0xd2, 0x36, 0xad, 0x87, 0xfd, 0xf3, 0xaf, 0xb2, 0x03, 0x18, 0x68, 0xe4, 0x91, 0xac,
    0xfb, 0x06, 0x04, 0x02, 0x94, 0xb1, 0xe2, 0x81, 0x6d, 0x22, 0xfa, 0x1f, 0xe3, 0x05};

static void test_decode_tiny_png(void) {
    decoded_image image;
    vt_error err = {0};
    CHECK(image_decode_memory(tiny_png, sizeof tiny_png, &image, &err) == VT_OK);
    CHECK(image.mode == IMAGE_MODE_RGB && image.width == 3 && image.height == 2);
    CHECK(image.channels == 3 && image.bytes_per_channel == 1);
    CHECK(image.pixels && memcmp(image.pixels, tiny_png_pixels, sizeof tiny_png_pixels) == 0);
    image_free(&image);
    CHECK(image.pixels == NULL);
}

static void test_decode_tiny_webp(void) {
    decoded_image image;
    vt_error err = {0};
    CHECK(image_decode_memory(tiny_webp, sizeof tiny_webp, &image, &err) == VT_OK);
    CHECK(image.mode == IMAGE_MODE_RGBA && image.width == 3 && image.height == 2);
    for (int i = 0; i < 6 && image.pixels; i++) {
        CHECK(memcmp(image.pixels + 4 * i, tiny_png_pixels + 3 * i, 3) == 0);
        CHECK(image.pixels[4 * i + 3] == 128);
    }
    image_free(&image);
}

/* ------------------------------------------------------------------------- */
/* The whole transform                                                        */
/* ------------------------------------------------------------------------- */

static void test_preprocess_one_pixel(void) {
    /* open_clip.transform.image_transform(2, is_train=False) on a red 1x1 image */
    const uint8_t red[] = {255, 0, 0};
    float chw[12];
    vt_error err = {0};
    CHECK(image_preprocess_rgb8(red, 1, 1, 2, OPENAI_MEAN, OPENAI_STD, chw, &err) == VT_OK);
    const float expected[3] = {1.9303361177444458f, -1.7520971298217773f, -1.480219841003418f};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) CHECK(chw[c * 4 + i] == expected[c]);
}

static void test_preprocess_decoded_equals_rgb8(void) {
    decoded_image image;
    CHECK(image_decode_memory(tiny_png, sizeof tiny_png, &image, NULL) == VT_OK);
    float from_image[3 * 5 * 5], from_rgb[3 * 5 * 5];
    CHECK(image_preprocess_clip(&image, 5, OPENAI_MEAN, OPENAI_STD, from_image, NULL) == VT_OK);
    CHECK(image_preprocess_rgb8(tiny_png_pixels, 3, 2, 5, OPENAI_MEAN, OPENAI_STD, from_rgb,
                                NULL) == VT_OK);
    CHECK(memcmp(from_image, from_rgb, sizeof from_rgb) == 0);
    image_free(&image);
}

static void test_alpha_is_premultiplied_for_the_resize(void) {
    /* 2x1 RGBA: an opaque red pixel beside a transparent green one. Pillow
     * resizes in RGBa, so the transparent green contributes nothing and the
     * result is red (then alpha is dropped by convert("RGB")). */
    uint8_t rgba[] = {255, 0, 0, 255, 0, 255, 0, 0};
    decoded_image image = {0};
    image.width = 2;
    image.height = 1;
    image.mode = IMAGE_MODE_RGBA;
    image.channels = 4;
    image.bytes_per_channel = 1;
    image.pixels = rgba;
    uint8_t out[2 * 2 * 3];
    CHECK(image_resize_crop_rgb8(&image, 2, out, NULL) == VT_OK);
    for (int i = 0; i < 4; i++) CHECK(out[3 * i + 1] == 0);
}

/* ------------------------------------------------------------------------- */
/* Error paths                                                                */
/* ------------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_decode_errors(void) {
    decoded_image image;
    vt_error err = {0};
    CHECK(image_decode_memory(tiny_png, 0, &image, &err) == VT_ERR_FORMAT);
    CHECK(strstr(err.message, "empty") != NULL);

    const uint8_t junk[] = "this is not an image at all";
    CHECK(image_decode_memory(junk, sizeof junk, &image, &err) == VT_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "not a JPEG, PNG or WebP image") != NULL);

    const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    CHECK(image_decode_memory(gif, sizeof gif, &image, &err) == VT_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "GIF") != NULL);

    /* Like Pillow, a PNG cut before its last row is truncated; one cut after
     * the last row's data (zlib checksum, CRC or IEND missing) still decodes.
     * In tiny_png the row data ends after byte 60 (Pillow agrees). */
    for (size_t cut = 1; cut < sizeof tiny_png; cut++) {
        vt_status st = image_decode_memory(tiny_png, cut, &image, &err);
        if (cut < 8) {
            CHECK(st == VT_ERR_UNSUPPORTED); /* not even a whole signature */
        } else if (cut < 60) {
            CHECK(st == VT_ERR_FORMAT);
            CHECK(image.pixels == NULL);
        } else {
            CHECK(st == VT_OK);
            if (st != VT_OK) continue;
            CHECK(memcmp(image.pixels, tiny_png_pixels, sizeof tiny_png_pixels) == 0);
            image_free(&image);
        }
    }
    for (size_t cut = 1; cut < sizeof tiny_webp; cut += 5) {
        vt_status st = image_decode_memory(tiny_webp, cut, &image, &err);
        CHECK(st == VT_ERR_FORMAT || st == VT_ERR_UNSUPPORTED);
    }
    const uint8_t jpeg_start[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F'};
    CHECK(image_decode_memory(jpeg_start, sizeof jpeg_start, &image, &err) == VT_ERR_FORMAT);
    CHECK(strstr(err.message, "JPEG") != NULL && strstr(err.message, "truncated") != NULL);

    /* A PNG header claiming 100000 x 100000 is refused before any allocation */
    uint8_t bomb[sizeof tiny_png];
    memcpy(bomb, tiny_png, sizeof bomb);
    put_be32(bomb + 16, 100000);
    put_be32(bomb + 20, 100000);
    put_be32(bomb + 29, (uint32_t)crc32(0, bomb + 12, 17));
    CHECK(image_decode_memory(bomb, sizeof bomb, &image, &err) == VT_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "100000x100000") != NULL);
    /* ... and a tighter caller limit applies to ordinary sizes too */
    CHECK(image_decode_memory_limited(tiny_png, sizeof tiny_png, 5, &image, &err) ==
          VT_ERR_UNSUPPORTED);

    CHECK(image_decode_file("/nonexistent/picture.png", &image, &err) == VT_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/picture.png") != NULL);
    CHECK(image_decode_file("/", &image, &err) == VT_ERR_IO);
    image_free(NULL);
}

static void test_preprocess_errors(void) {
    uint8_t rgb[3] = {1, 2, 3};
    float out[3 * 4];
    vt_error err = {0};
    const float zero_std[3] = {0.2f, 0.0f, 0.2f};
    CHECK(image_preprocess_rgb8(rgb, 1, 1, 2, OPENAI_MEAN, zero_std, out, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "std") != NULL);
    CHECK(image_preprocess_rgb8(rgb, 1, 1, 0, OPENAI_MEAN, OPENAI_STD, out, &err) ==
          VT_ERR_ARGUMENT);
    CHECK(image_preprocess_rgb8(NULL, 1, 1, 2, OPENAI_MEAN, OPENAI_STD, out, &err) ==
          VT_ERR_ARGUMENT);
    CHECK(image_preprocess_rgb8(rgb, 0, 1, 2, OPENAI_MEAN, OPENAI_STD, out, &err) ==
          VT_ERR_ARGUMENT);

    decoded_image wrong = {0};
    wrong.width = wrong.height = 1;
    wrong.mode = IMAGE_MODE_RGBA;
    wrong.channels = 3; /* RGBA needs 4 */
    wrong.bytes_per_channel = 1;
    wrong.pixels = rgb;
    uint8_t crop[12];
    CHECK(image_resize_crop_rgb8(&wrong, 2, crop, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "RGBA") != NULL);
}

int main(void) {
    test_bicubic_kernel();
    test_bicubic_gray_row();
    test_bicubic_rgb_both_axes();
    test_bicubic_16_and_32_bit();
    test_nearest_accumulates_like_pillow();
    test_resample_rejects_bad_windows();
    test_resize_crop_plan();
    test_decode_tiny_png();
    test_decode_tiny_webp();
    test_preprocess_one_pixel();
    test_preprocess_decoded_equals_rgb8();
    test_alpha_is_premultiplied_for_the_resize();
    test_decode_errors();
    test_preprocess_errors();
    return unit_summary("image");
}
