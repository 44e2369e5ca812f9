/* libFuzzer target for the checkpoint readers.
 *
 * Each input is used twice:
 *   1. as a whole file (torch zip, safetensors, anything) for ckpt_open_memory;
 *   2. if it starts like a pickle (PROTO opcode), as the data.pkl of a torch
 *      archive built here, with a valid CRC and ten 256-byte storages "0".."9".
 *      Without this, mutations of a pickle inside a zip would almost always die
 *      at the CRC check, and the pickle machine and tensor validation would
 *      hardly be fuzzed;
 *   3. the same pickle as the data.pkl of a TorchScript archive (the same
 *      archive plus a constants.pkl), so the module-object reader is fuzzed.
 * Every tensor of a loaded file is read to its last byte, so ASan catches any
 * view that the bounds checks let through. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/checkpoint/checkpoint.h"

#define STORAGE_COUNT 10
#define STORAGE_SIZE 256

typedef struct {
    uint8_t *data;
    size_t length;
} byte_buffer;

static void put(byte_buffer *b, const void *bytes, size_t n) {
    memcpy(b->data + b->length, bytes, n);
    b->length += n;
}

static void put_le(byte_buffer *b, uint64_t value, int n) {
    for (int i = 0; i < n; i++) b->data[b->length++] = (uint8_t)(value >> (8 * i));
}

/* A local header + data, and the matching central directory record. */
static void add_entry(byte_buffer *zip, byte_buffer *directory, const char *name, const uint8_t *data,
                      size_t size) {
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)size);
    size_t offset = zip->length, name_length = strlen(name);
    put_le(zip, 0x04034b50, 4);
    put_le(zip, 20, 2);
    put_le(zip, 0, 2);
    put_le(zip, 0, 2);
    put_le(zip, 0, 4);
    put_le(zip, crc, 4);
    put_le(zip, size, 4);
    put_le(zip, size, 4);
    put_le(zip, name_length, 2);
    put_le(zip, 0, 2);
    put(zip, name, name_length);
    put(zip, data, size);
    put_le(directory, 0x02014b50, 4);
    put_le(directory, 20, 2);
    put_le(directory, 20, 2);
    put_le(directory, 0, 2);
    put_le(directory, 0, 2);
    put_le(directory, 0, 4);
    put_le(directory, crc, 4);
    put_le(directory, size, 4);
    put_le(directory, size, 4);
    put_le(directory, name_length, 2);
    put_le(directory, 0, 2);
    put_le(directory, 0, 2);
    put_le(directory, 0, 2);
    put_le(directory, 0, 2);
    put_le(directory, 0, 4);
    put_le(directory, offset, 4);
    put(directory, name, name_length);
}

/* archive/data.pkl = pickle, archive/data/<k> = STORAGE_SIZE bytes of pattern,
 * and archive/constants.pkl if `torchscript`. */
static byte_buffer wrap_pickle(const uint8_t *pickle, size_t size, int torchscript) {
    size_t capacity = size + (STORAGE_COUNT + 2) * (STORAGE_SIZE + 200) + 64;
    byte_buffer zip = {malloc(capacity), 0}, directory = {malloc(capacity), 0};
    static uint8_t storage[STORAGE_SIZE];
    for (size_t i = 0; i < STORAGE_SIZE; i++) storage[i] = (uint8_t)(i * 37 + 11);
    add_entry(&zip, &directory, "archive/data.pkl", pickle, size);
    static const uint8_t EMPTY_TUPLE_PICKLE[] = {0x80, 0x02, ')', '.'};
    if (torchscript) add_entry(&zip, &directory, "archive/constants.pkl", EMPTY_TUPLE_PICKLE, sizeof EMPTY_TUPLE_PICKLE);
    for (int k = 0; k < STORAGE_COUNT; k++) {
        char name[32] = "archive/data/0";
        name[13] = (char)('0' + k);
        add_entry(&zip, &directory, name, storage, STORAGE_SIZE);
    }
    size_t directory_offset = zip.length;
    put(&zip, directory.data, directory.length);
    put_le(&zip, 0x06054b50, 4);
    put_le(&zip, 0, 4);
    put_le(&zip, STORAGE_COUNT + 1 + (torchscript != 0), 2);
    put_le(&zip, STORAGE_COUNT + 1 + (torchscript != 0), 2);
    put_le(&zip, directory.length, 4);
    put_le(&zip, directory_offset, 4);
    put_le(&zip, 0, 2);
    free(directory.data);
    return zip;
}

static volatile unsigned byte_sum; /* keeps the reads below from being optimised away */

/* Opens the bytes and touches every tensor byte; the result is irrelevant. */
static void open_and_read(const uint8_t *data, size_t size) {
    vt_error err = {0};
    ckpt_file *file = NULL;
    if (ckpt_open_memory(data, size, &file, &err) != VT_OK) {
        if (err.message[0] == '\0') abort(); /* every failure must explain itself */
        return;
    }
    for (size_t i = 0; i < ckpt_count(file); i++) {
        const ckpt_tensor *t = ckpt_at(file, i);
        size_t bytes = (size_t)t->numel * vt_dtype_size(t->dtype);
        for (size_t k = 0; k < bytes; k++) byte_sum += ((const uint8_t *)t->data)[k];
        if (ckpt_find(file, t->name) != t) abort(); /* names are unique and indexed */
        if ((uintptr_t)t->data % vt_dtype_size(t->dtype) != 0) abort();
    }
    ckpt_verify(file, &err);
    ckpt_close(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    open_and_read(data, size);
    if (size >= 2 && data[0] == 0x80 && size < (1u << 20)) {
        for (int torchscript = 0; torchscript < 2; torchscript++) {
            byte_buffer zip = wrap_pickle(data, size, torchscript);
            open_and_read(zip.data, zip.length);
            free(zip.data);
        }
    }
    return 0;
}
