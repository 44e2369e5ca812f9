/* libFuzzer target for the image layer: decode any bytes as JPEG / PNG / WebP,
 * and run open_clip's eval transform at S = 32 on whatever decodes.
 *
 * The pixel limit is lowered to FUZZ_MAX_PIXELS so that a 12-byte header
 * claiming a 13000 x 13000 image costs the fuzzer a refusal, not half a
 * gigabyte; the full-size limit itself is covered by the unit and reference
 * tests. Seed corpus: tests/fuzz/corpus/image/ (one tiny file per mode). */
#include <stddef.h>
#include <stdint.h>

#include "io/image/image.h"

#define FUZZ_MAX_PIXELS (1LL << 20)
#define FUZZ_CROP_SIZE 32

static const float OPENAI_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float OPENAI_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decoded_image image;
    vt_error err;
    if (image_decode_memory_limited(data, size, FUZZ_MAX_PIXELS, &image, &err) != VT_OK) return 0;
    float tensor[3 * FUZZ_CROP_SIZE * FUZZ_CROP_SIZE];
    if (image_preprocess_clip(&image, FUZZ_CROP_SIZE, OPENAI_MEAN, OPENAI_STD, tensor, &err) !=
        VT_OK)
        __builtin_trap(); /* a decoded image must always preprocess */
    image_free(&image);
    return 0;
}
