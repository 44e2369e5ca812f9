/* libFuzzer target for WebDataset shard indexing (io/tar_reader.c): any bytes
 * must index or fail with a message, and every indexed sample must lie
 * inside the input (the loader later preads exactly those ranges). The first
 * input byte also drives a crop box through the training augmentation, so
 * that a shard's image reaching augment_resized_crop is covered too.
 * Seed corpus: tests/fuzz/corpus/tar/ (ustar, GNU long name, pax path,
 * truncated, repeated keys). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/image/image.h"
#include "io/dataset/tar_reader.h"
#include "train/augment.h"
#include "train/data.h"

typedef struct {
    const uint8_t *data;
    size_t size;
} memory_tar;

static long long read_memory(void *context, uint64_t offset, void *buffer, size_t size) {
    const memory_tar *m = context;
    if (offset >= m->size) return 0;
    size_t n = m->size - (size_t)offset < size ? m->size - (size_t)offset : size;
    memcpy(buffer, m->data + offset, n);
    return (long long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    memory_tar m = {data, size};
    tar_index index = {0};
    vt_error err = {0};
    if (tar_index_append(read_memory, &m, size, "fuzz.tar", &index, &err) != VT_OK) {
        if (!err.message[0]) __builtin_trap();
        tar_index_free(&index);
        return 0;
    }
    for (size_t i = 0; i < index.count; i++) {
        const tar_sample *s = &index.samples[i];
        if (s->image_offset > size || s->image_size > size - s->image_offset || s->text_offset > size ||
            s->text_size > size - s->text_offset || s->name_offset >= index.names_size)
            __builtin_trap();
        (void)strlen(tar_sample_name(&index, i));
        decoded_image image;
        if (image_decode_memory_limited(data + s->image_offset, (size_t)s->image_size, 1 << 16, &image, &err) ==
            VT_OK) {
            crop_box box;
            data_crop_params(size, 0, (int64_t)i, image.width, image.height, 0.08f, 1.0f, &box.top, &box.left,
                             &box.height, &box.width);
            float out[3 * 8 * 8];
            if (augment_resized_crop(&image, box, 8, data[0] & 1, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, out, &err) !=
                VT_OK)
                __builtin_trap(); /* a valid box on a decoded image must always augment */
            image_free(&image);
        }
    }
    tar_index_free(&index);
    return 0;
}
