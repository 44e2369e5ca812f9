/* Unit tests for the checkpoint layer: safetensors read/write, the torch zip +
 * pickle reader (archives assembled here byte by byte, so every corner — ZIP64,
 * DEFLATE, strided views, shared storages, hostile pickles — is reachable
 * without torch), .npy files, and the rule that every malformed input (each
 * truncation, each flipped byte) fails with a message instead of crashing. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "io/checkpoint/checkpoint.h"
#include "io/serial/npy.h"
#include "io/checkpoint/zip_reader.h"
#include "unit.h"

/* ================================================================ byte buffers */

typedef struct {
    uint8_t *data;
    size_t length, capacity;
} buffer;

static void put_bytes(buffer *b, const void *bytes, size_t n) {
    if (b->length + n > b->capacity) {
        b->capacity = (b->length + n) * 2 + 64;
        b->data = realloc(b->data, b->capacity);
    }
    if (n) memcpy(b->data + b->length, bytes, n);
    b->length += n;
}
static void put_u8(buffer *b, unsigned v) {
    uint8_t byte = (uint8_t)v;
    put_bytes(b, &byte, 1);
}
static void put_le(buffer *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) put_u8(b, (unsigned)(v >> (8 * i)) & 0xFF);
}
static void put_text(buffer *b, const char *text) { put_bytes(b, text, strlen(text)); }

/* ================================================================ pickle assembly */

typedef struct {
    buffer out;
    int protocol; /* 2: GLOBAL/BINUNICODE/BINPUT like torch's default; 4: STACK_GLOBAL/MEMOIZE/FRAME */
    unsigned memo;
} pickler;

static void pk_memoize(pickler *p) {
    if (p->protocol >= 4) {
        put_u8(&p->out, 0x94);
    } else {
        put_u8(&p->out, 'r');
        put_le(&p->out, p->memo, 4);
    }
    p->memo++;
}
static void pk_string(pickler *p, const char *text) {
    size_t n = strlen(text);
    if (p->protocol >= 4 && n < 256) {
        put_u8(&p->out, 0x8c);
        put_u8(&p->out, (unsigned)n);
    } else {
        put_u8(&p->out, 'X');
        put_le(&p->out, n, 4);
    }
    put_bytes(&p->out, text, n);
    pk_memoize(p);
}
static void pk_global(pickler *p, const char *module, const char *name) {
    if (p->protocol >= 4) {
        pk_string(p, module);
        pk_string(p, name);
        put_u8(&p->out, 0x93);
    } else {
        put_u8(&p->out, 'c');
        put_text(&p->out, module);
        put_u8(&p->out, '\n');
        put_text(&p->out, name);
        put_u8(&p->out, '\n');
    }
    pk_memoize(p);
}
static void pk_int(pickler *p, int64_t v) {
    if (v >= 0 && v < 256) {
        put_u8(&p->out, 'K');
        put_u8(&p->out, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put_u8(&p->out, 'J');
        put_le(&p->out, (uint64_t)v, 4);
    } else {
        put_u8(&p->out, 0x8a);
        put_u8(&p->out, 8);
        put_le(&p->out, (uint64_t)v, 8);
    }
}
static void pk_op(pickler *p, unsigned op) { put_u8(&p->out, op); }
static void pk_begin(pickler *p, int protocol) {
    memset(p, 0, sizeof *p);
    p->protocol = protocol;
    pk_op(p, 0x80);
    put_u8(&p->out, (unsigned)protocol);
    if (protocol >= 4) { /* a FRAME header, as pickle writes; its length is only a hint */
        pk_op(p, 0x95);
        put_le(&p->out, 0, 8);
    }
}
static void pk_empty_ordered_dict(pickler *p) {
    pk_global(p, "collections", "OrderedDict");
    pk_op(p, ')');
    pk_op(p, 'R');
    pk_memoize(p);
}

typedef struct {
    const char *name;
    const char *storage_type; /* "FloatStorage", ... */
    const char *key;
    int64_t storage_numel;
    int64_t offset;
    int ndim;
    int64_t shape[4], stride[4];
    int parameter; /* wrap in _rebuild_parameter */
} tensor_spec;

static void pk_tensor(pickler *p, const tensor_spec *t) {
    if (t->parameter) pk_global(p, "torch._utils", "_rebuild_parameter");
    pk_global(p, "torch._utils", "_rebuild_tensor_v2");
    pk_op(p, '(');
    pk_op(p, '(');
    pk_string(p, "storage");
    pk_global(p, "torch", t->storage_type);
    pk_string(p, t->key);
    pk_string(p, "cpu");
    pk_int(p, t->storage_numel);
    pk_op(p, 't');
    pk_op(p, 'Q');
    pk_int(p, t->offset);
    pk_op(p, '(');
    for (int d = 0; d < t->ndim; d++) pk_int(p, t->shape[d]);
    pk_op(p, 't');
    pk_op(p, '(');
    for (int d = 0; d < t->ndim; d++) pk_int(p, t->stride[d]);
    pk_op(p, 't');
    pk_op(p, 0x89);
    pk_empty_ordered_dict(p);
    pk_op(p, 't');
    pk_op(p, 'R');
    pk_memoize(p);
    if (t->parameter) {
        pk_op(p, 0x88);
        pk_empty_ordered_dict(p);
        pk_op(p, 0x87);
        pk_op(p, 'R');
        pk_memoize(p);
    }
}

/* OrderedDict of the tensors, plus a module-style `_metadata` BUILD state. */
static void pk_state_dict(pickler *p, const tensor_spec *tensors, size_t count) {
    pk_empty_ordered_dict(p);
    pk_op(p, '(');
    for (size_t i = 0; i < count; i++) {
        pk_string(p, tensors[i].name);
        pk_tensor(p, &tensors[i]);
    }
    pk_op(p, 'u');
    pk_op(p, '}');
    pk_string(p, "_metadata");
    pk_empty_ordered_dict(p);
    pk_op(p, 's');
    pk_op(p, 'b');
}

/* ================================================================ zip assembly */

typedef struct {
    const char *name;
    const void *data;
    size_t size;
    int deflate;
} zip_item;

static void deflate_raw(const void *data, size_t size, buffer *out) {
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    uLong bound = deflateBound(&s, (uLong)size);
    out->data = malloc(bound);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)size;
    s.next_out = out->data;
    s.avail_out = (uInt)bound;
    deflate(&s, Z_FINISH);
    out->length = s.total_out;
    deflateEnd(&s);
}

/* Writes a zip like torch's writer: stored entries with data 64-byte aligned via
 * local extra padding. `zip64` uses ZIP64 records and extra fields throughout. */
static buffer make_zip(const zip_item *items, size_t count, int zip64, size_t misalign) {
    buffer zip = {0}, directory = {0};
    for (size_t i = 0; i < count; i++) {
        buffer packed = {0};
        const void *payload = items[i].data;
        size_t payload_size = items[i].size;
        if (items[i].deflate) {
            deflate_raw(items[i].data, items[i].size, &packed);
            payload = packed.data;
            payload_size = packed.length;
        }
        uint32_t crc = (uint32_t)crc32(0, items[i].data, (uInt)items[i].size);
        size_t offset = zip.length, name_length = strlen(items[i].name);
        size_t unpadded = offset + 30 + name_length + 4;
        size_t padding = (64 - unpadded % 64) % 64 + misalign;
        put_le(&zip, 0x04034b50, 4);
        put_le(&zip, 20, 2);
        put_le(&zip, 0, 2);
        put_le(&zip, items[i].deflate ? 8 : 0, 2);
        put_le(&zip, 0, 4);
        put_le(&zip, crc, 4);
        put_le(&zip, payload_size, 4);
        put_le(&zip, items[i].size, 4);
        put_le(&zip, name_length, 2);
        put_le(&zip, 4 + padding, 2);
        put_text(&zip, items[i].name);
        put_le(&zip, 0x4246, 2); /* "FB" padding field, as torch writes */
        put_le(&zip, padding, 2);
        for (size_t k = 0; k < padding; k++) put_u8(&zip, 'Z');
        put_bytes(&zip, payload, payload_size);

        put_le(&directory, 0x02014b50, 4);
        put_le(&directory, 45, 2);
        put_le(&directory, 45, 2);
        put_le(&directory, 0, 2);
        put_le(&directory, items[i].deflate ? 8 : 0, 2);
        put_le(&directory, 0, 4);
        put_le(&directory, crc, 4);
        put_le(&directory, zip64 ? 0xFFFFFFFFu : payload_size, 4);
        put_le(&directory, zip64 ? 0xFFFFFFFFu : items[i].size, 4);
        put_le(&directory, name_length, 2);
        put_le(&directory, zip64 ? 4 + 24 : 0, 2);
        put_le(&directory, 0, 2);
        put_le(&directory, 0, 2);
        put_le(&directory, 0, 2);
        put_le(&directory, 0, 4);
        put_le(&directory, zip64 ? 0xFFFFFFFFu : offset, 4);
        put_text(&directory, items[i].name);
        if (zip64) {
            put_le(&directory, 1, 2);
            put_le(&directory, 24, 2);
            put_le(&directory, items[i].size, 8);
            put_le(&directory, payload_size, 8);
            put_le(&directory, offset, 8);
        }
        free(packed.data);
    }
    size_t directory_offset = zip.length;
    put_bytes(&zip, directory.data, directory.length);
    if (zip64) {
        size_t record_offset = zip.length;
        put_le(&zip, 0x06064b50, 4);
        put_le(&zip, 44, 8);
        put_le(&zip, 45, 2);
        put_le(&zip, 45, 2);
        put_le(&zip, 0, 4);
        put_le(&zip, 0, 4);
        put_le(&zip, count, 8);
        put_le(&zip, count, 8);
        put_le(&zip, directory.length, 8);
        put_le(&zip, directory_offset, 8);
        put_le(&zip, 0x07064b50, 4);
        put_le(&zip, 0, 4);
        put_le(&zip, record_offset, 8);
        put_le(&zip, 1, 4);
    }
    put_le(&zip, 0x06054b50, 4);
    put_le(&zip, 0, 2);
    put_le(&zip, 0, 2);
    put_le(&zip, zip64 ? 0xFFFF : count, 2);
    put_le(&zip, zip64 ? 0xFFFF : count, 2);
    put_le(&zip, zip64 ? 0xFFFFFFFFu : directory.length, 4);
    put_le(&zip, zip64 ? 0xFFFFFFFFu : directory_offset, 4);
    put_le(&zip, 0, 2);
    free(directory.data);
    return zip;
}

/* ================================================================ fixtures */

static const float STORAGE0[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* shared by several tensors */
static const uint16_t STORAGE1[3] = {0x3F80, 0x4000, 0xBF80}; /* bf16 1, 2, -1 */
static const int64_t STORAGE2[1] = {-5};

/* The reference state dict: views into shared storage "0", a transpose, a
 * scalar, a parameter, an empty tensor, a bf16 and an int64 tensor. */
static const tensor_spec REFERENCE[] = {
    {"rows", "FloatStorage", "0", 8, 0, 2, {2, 3}, {3, 1}, 0},
    {"tail", "FloatStorage", "0", 8, 6, 1, {2}, {1}, 0},
    {"transposed", "FloatStorage", "0", 8, 0, 2, {3, 2}, {1, 3}, 0},
    {"scalar", "FloatStorage", "0", 8, 7, 0, {0}, {0}, 0},
    {"param", "BFloat16Storage", "1", 3, 0, 1, {3}, {1}, 1},
    {"empty", "FloatStorage", "0", 8, 0, 2, {0, 4}, {4, 1}, 0},
    {"count", "LongStorage", "2", 1, 0, 1, {1}, {1}, 0},
};
#define REFERENCE_COUNT (sizeof REFERENCE / sizeof *REFERENCE)

static buffer reference_pickle(int protocol) {
    pickler p;
    pk_begin(&p, protocol);
    pk_state_dict(&p, REFERENCE, REFERENCE_COUNT);
    pk_op(&p, '.');
    return p.out;
}

/* A torch-style archive around `pickle` with the three reference storages. */
static buffer torch_zip(const buffer *pickle, int zip64, int deflate, size_t misalign) {
    zip_item items[] = {
        {"archive/data.pkl", pickle->data, pickle->length, deflate},
        {"archive/byteorder", "little", 6, 0},
        {"archive/data/0", STORAGE0, sizeof STORAGE0, deflate},
        {"archive/data/1", STORAGE1, sizeof STORAGE1, 0},
        {"archive/data/2", STORAGE2, sizeof STORAGE2, 0},
        {"archive/version", "3\n", 2, 0},
    };
    return make_zip(items, sizeof items / sizeof *items, zip64, misalign);
}

static float f32_at(const ckpt_tensor *t, int64_t i) {
    float v;
    memcpy(&v, (const char *)t->data + i * 4, 4);
    return v;
}

/* Checks a loaded reference state dict, value by value. */
static void check_reference(const ckpt_file *file) {
    CHECK(ckpt_get_format(file) == CKPT_FORMAT_TORCH_ZIP);
    CHECK(ckpt_count(file) == REFERENCE_COUNT);
    for (size_t i = 0; i < ckpt_count(file) && i < REFERENCE_COUNT; i++)
        CHECK(strcmp(ckpt_at(file, i)->name, REFERENCE[i].name) == 0); /* file order */
    const ckpt_tensor *rows = ckpt_find(file, "rows"), *tail = ckpt_find(file, "tail"),
                      *transposed = ckpt_find(file, "transposed"), *scalar = ckpt_find(file, "scalar"),
                      *param = ckpt_find(file, "param"), *empty = ckpt_find(file, "empty"),
                      *count = ckpt_find(file, "count");
    CHECK(rows && tail && transposed && scalar && param && empty && count);
    if (!(rows && tail && transposed && scalar && param && empty && count)) return;
    CHECK(rows->dtype == VT_DTYPE_F32 && rows->ndim == 2 && rows->shape[0] == 2 && rows->shape[1] == 3);
    CHECK(rows->numel == 6 && f32_at(rows, 5) == 5);
    CHECK(tail->numel == 2 && f32_at(tail, 0) == 6 && f32_at(tail, 1) == 7);
    static const float transposed_values[6] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++) CHECK(f32_at(transposed, i) == transposed_values[i]);
    CHECK(scalar->ndim == 0 && scalar->numel == 1 && f32_at(scalar, 0) == 7);
    CHECK(param->dtype == VT_DTYPE_BF16 && param->numel == 3 && memcmp(param->data, STORAGE1, 6) == 0);
    CHECK(empty->numel == 0 && empty->ndim == 2 && empty->shape[0] == 0 && empty->data != NULL);
    CHECK(count->dtype == VT_DTYPE_I64 && *(const int64_t *)count->data == -5);
    for (size_t i = 0; i < ckpt_count(file); i++) {
        const ckpt_tensor *t = ckpt_at(file, i);
        CHECK((uintptr_t)t->data % vt_dtype_size(t->dtype) == 0);
    }
    CHECK(ckpt_find(file, "missing") == NULL);
}

/* Opens bytes that must fail with `status` and a message containing `needle`. */
static void expect_failure(const void *bytes, size_t size, vt_status status, const char *needle) {
    vt_error err = {0};
    ckpt_file *file = NULL;
    vt_status got = ckpt_open_memory(bytes, size, &file, &err);
    CHECK(got == status);
    CHECK(file == NULL);
    if (needle && !strstr(err.message, needle)) {
        fprintf(stderr, "  message '%s' lacks '%s'\n", err.message, needle);
        CHECK(!"message names the problem");
    }
    if (got != status) fprintf(stderr, "  status %d (%s), expected %d\n", got, err.message, status);
    ckpt_close(file);
}

/* ================================================================ torch zip tests */

static void test_torch_zip_variants(void) {
    for (int protocol = 2; protocol <= 4; protocol += 2) {
        for (int variant = 0; variant < 4; variant++) {
            buffer pickle = reference_pickle(protocol);
            int zip64 = variant & 1, deflate = variant >> 1 & 1;
            buffer zip = torch_zip(&pickle, zip64, deflate, 0);
            vt_error err = {0};
            ckpt_file *file = NULL;
            CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
            if (!file) fprintf(stderr, "protocol %d variant %d: %s\n", protocol, variant, err.message);
            if (file) {
                check_reference(file);
                CHECK(ckpt_verify(file, &err) == VT_OK);
            }
            ckpt_close(file);
            free(pickle.data);
            free(zip.data);
        }
    }
}

static void test_misaligned_storage_is_copied(void) {
    buffer pickle = reference_pickle(2);
    buffer zip = torch_zip(&pickle, 0, 0, 1); /* every entry's data at 64k + 1 */
    ckpt_file *file = NULL;
    vt_error err = {0};
    CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
    if (file) check_reference(file);
    ckpt_close(file);
    free(pickle.data);
    free(zip.data);
}

static void test_wrapper_and_skipped_items(void) {
    pickler p;
    pk_begin(&p, 2);
    pk_op(&p, '}');
    pk_op(&p, '(');
    pk_string(&p, "epoch");
    pk_int(&p, 3);
    pk_string(&p, "state_dict");
    pk_empty_ordered_dict(&p);
    pk_op(&p, '(');
    pk_int(&p, 12); /* a non-string key: skipped */
    pk_tensor(&p, &REFERENCE[0]);
    pk_string(&p, "note"); /* a non-tensor value: skipped */
    pk_string(&p, "hello");
    pk_string(&p, "rows");
    pk_tensor(&p, &REFERENCE[0]);
    pk_op(&p, 'u');
    pk_op(&p, 'u');
    pk_op(&p, '.');
    buffer zip = torch_zip(&p.out, 0, 0, 0);
    ckpt_file *file = NULL;
    vt_error err = {0};
    CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
    CHECK(ckpt_count(file) == 1 && ckpt_find(file, "rows") != NULL);
    ckpt_close(file);
    free(p.out.data);
    free(zip.data);
}

/* Builds an archive whose pickle is `pickle` and expects failure. */
static void expect_pickle_failure(pickler *p, vt_status status, const char *needle) {
    buffer zip = torch_zip(&p->out, 0, 0, 0);
    expect_failure(zip.data, zip.length, status, needle);
    free(zip.data);
    free(p->out.data);
}

static void test_hostile_pickles(void) {
    pickler p;
    /* The classic: os.system("...") via GLOBAL + REDUCE. */
    pk_begin(&p, 2);
    pk_global(&p, "os", "system");
    pk_string(&p, "echo pwned");
    pk_op(&p, 0x85);
    pk_op(&p, 'R');
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_UNSUPPORTED, "pickle global 'os.system' is not allowed");
    /* The same through STACK_GLOBAL. */
    pk_begin(&p, 4);
    pk_global(&p, "builtins", "eval");
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_UNSUPPORTED, "'builtins.eval' is not allowed");
    /* A storage type we cannot represent. */
    tensor_spec complex_tensor = REFERENCE[0];
    complex_tensor.storage_type = "ComplexFloatStorage";
    pk_begin(&p, 2);
    pk_state_dict(&p, &complex_tensor, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_UNSUPPORTED, "torch.ComplexFloatStorage");
    /* No STOP. */
    pk_begin(&p, 2);
    pk_op(&p, '}');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "without a STOP");
    /* Stack underflow, memo misuse, oversized integers, unknown opcodes. */
#define PICKLE_CASE(bytes, status, needle) {bytes, sizeof(bytes) - 1, status, needle}
    static const struct {
        const char *bytes;
        size_t size;
        vt_status status;
        const char *needle;
    } cases[] = {
        PICKLE_CASE("\x80\x02.", VT_ERR_FORMAT, "stack underflow"),
        PICKLE_CASE("\x80\x02(R.", VT_ERR_FORMAT, "stack underflow"),
        PICKLE_CASE("\x80\x02h\x05.", VT_ERR_FORMAT, "memo key 5 was never stored"),
        PICKLE_CASE("\x80\x02}r\xff\xff\xff\x7f.", VT_ERR_FORMAT, "memo key"),
        PICKLE_CASE("\x80\x02\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01.", VT_ERR_UNSUPPORTED, "64 bits"),
        PICKLE_CASE("\x80\x02\xff.", VT_ERR_FORMAT, "unknown pickle opcode"),
        PICKLE_CASE("\x80\x02\x8f.", VT_ERR_UNSUPPORTED, "EMPTY_SET"),
        PICKLE_CASE("\x80\x09}.", VT_ERR_UNSUPPORTED, "protocol 9"),
        PICKLE_CASE("\x80\x02X\xff\xff\xff\xff", VT_ERR_FORMAT, "needs 4294967295 more bytes"),
        PICKLE_CASE("\x80\x02" "csubprocess\nPopen\n.", VT_ERR_UNSUPPORTED, "'subprocess.Popen' is not allowed"),
        PICKLE_CASE("\x80\x02" "ctorch\nload", VT_ERR_FORMAT, "no terminating newline"),
        PICKLE_CASE("\x80\x02" "1.", VT_ERR_FORMAT, "no MARK"),
        PICKLE_CASE("\x80\x02}K\x01s.", VT_ERR_FORMAT, "stack underflow"),
        PICKLE_CASE("\x80\x02]K\x01K\x02s.", VT_ERR_FORMAT, "not a dict"),
        PICKLE_CASE("\x80\x02(K\x01K\x02K\x03" "d.", VT_ERR_FORMAT, "odd number"),
        PICKLE_CASE("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R.", VT_ERR_FORMAT, "list of pairs"),
        PICKLE_CASE("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n)R.", VT_ERR_FORMAT, "6 or 7 arguments"),
        PICKLE_CASE("\x80\x02(X\x07\x00\x00\x00storageK\x01tQ.", VT_ERR_FORMAT, "persistent id"),
        PICKLE_CASE("\x80\x02K\x01.", VT_ERR_FORMAT, "not a dict of tensors"),
        PICKLE_CASE("\x80\x02(((((0000011111.", VT_ERR_FORMAT, "no MARK"),
    };
#undef PICKLE_CASE
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memset(&p, 0, sizeof p);
        put_bytes(&p.out, cases[i].bytes, cases[i].size);
        expect_pickle_failure(&p, cases[i].status, cases[i].needle);
    }
    /* Values cost memory while opcodes cost bytes: 3M EMPTY_LISTs exceed the budget. */
    memset(&p, 0, sizeof p);
    put_text(&p.out, "\x80\x02");
    for (int i = 0; i < 3000000; i++) put_u8(&p.out, ']');
    put_u8(&p.out, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "unpickling needs more than");
}

static void test_tensor_range_errors(void) {
    pickler p;
    /* A view reaching one element past its storage. */
    tensor_spec beyond = {"visual.trunk.pos_embed", "FloatStorage", "0", 8, 3, 2, {2, 3}, {3, 1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &beyond, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "tensor 'visual.trunk.pos_embed' (element offset 3");
    /* A storage claiming more elements than its entry holds. */
    tensor_spec greedy = {"w", "FloatStorage", "0", 9, 0, 1, {2}, {1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &greedy, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "claims 9 elements");
    /* A missing storage entry. */
    tensor_spec orphan = {"w", "FloatStorage", "77", 1, 0, 1, {1}, {1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &orphan, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "'archive/data/77', which is missing");
    /* Negative sizes, negative strides, negative offsets, overflowing shapes. */
    tensor_spec negative = {"w", "FloatStorage", "0", 8, 0, 1, {-1}, {1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &negative, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "tensor 'w'");
    tensor_spec backwards = {"w", "FloatStorage", "0", 8, 7, 1, {2}, {-1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &backwards, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "tensor 'w'");
    tensor_spec huge = {"w", "FloatStorage", "0", 8, 0, 2, {INT64_MAX / 2, 4}, {4, 1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &huge, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "tensor 'w'");
    tensor_spec far = {"w", "FloatStorage", "0", 8, INT64_MAX - 1, 1, {2}, {1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &far, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "tensor 'w'");
    /* Size-1 dims may carry any stride (torch does that), even a huge one. */
    tensor_spec odd_stride = {"w", "FloatStorage", "0", 8, 0, 2, {1, 4}, {INT64_MAX, 2}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &odd_stride, 1);
    pk_op(&p, '.');
    buffer zip = torch_zip(&p.out, 0, 0, 0);
    ckpt_file *file = NULL;
    vt_error err = {0};
    CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
    if (file) {
        const ckpt_tensor *w = ckpt_find(file, "w");
        CHECK(w && w->numel == 4 && f32_at(w, 0) == 0 && f32_at(w, 3) == 6);
    }
    ckpt_close(file);
    free(zip.data);
    free(p.out.data);
    /* A stride-0 view claiming far more than the file holds is refused, not copied. */
    tensor_spec expanded = {"w", "FloatStorage", "0", 8, 0, 2, {1 << 20, 1 << 10}, {0, 0}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &expanded, 1);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_UNSUPPORTED, "re-save it with .contiguous()");
    tensor_spec small_expand = {"w", "FloatStorage", "0", 8, 2, 2, {3, 2}, {0, 1}, 0};
    pk_begin(&p, 2);
    pk_state_dict(&p, &small_expand, 1);
    pk_op(&p, '.');
    zip = torch_zip(&p.out, 0, 0, 0);
    CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
    if (file) {
        const ckpt_tensor *w = ckpt_find(file, "w");
        static const float repeated[6] = {2, 3, 2, 3, 2, 3};
        CHECK(w && w->numel == 6 && memcmp(w->data, repeated, sizeof repeated) == 0);
    }
    ckpt_close(file);
    free(zip.data);
    free(p.out.data);
    /* Duplicate names cannot be told apart: refused. */
    tensor_spec twice[2] = {REFERENCE[0], REFERENCE[0]};
    pk_begin(&p, 2);
    pk_state_dict(&p, twice, 2);
    pk_op(&p, '.');
    expect_pickle_failure(&p, VT_ERR_FORMAT, "appears twice");
}

static void test_archive_errors(void) {
    buffer pickle = reference_pickle(2);
    /* No data.pkl. */
    zip_item plain[] = {{"readme.txt", "hi", 2, 0}};
    buffer zip = make_zip(plain, 1, 0, 0);
    expect_failure(zip.data, zip.length, VT_ERR_FORMAT, "data.pkl");
    free(zip.data);
    /* TorchScript (constants.pkl) whose data.pkl is a state dict, not a module. */
    zip_item script[] = {{"m/data.pkl", pickle.data, pickle.length, 0}, {"m/constants.pkl", "x", 1, 0}};
    zip = make_zip(script, 2, 0, 0);
    expect_failure(zip.data, zip.length, VT_ERR_FORMAT, "no module object");
    free(zip.data);
    /* Big-endian storages. */
    zip_item big[] = {{"m/data.pkl", pickle.data, pickle.length, 0}, {"m/byteorder", "big", 3, 0}};
    zip = make_zip(big, 2, 0, 0);
    expect_failure(zip.data, zip.length, VT_ERR_UNSUPPORTED, "big-endian");
    free(zip.data);
    /* A flipped bit in data.pkl is caught by its CRC. */
    zip = torch_zip(&pickle, 0, 0, 0);
    size_t pickle_start = 64; /* make_zip aligns the first entry's data to 64 */
    CHECK(memcmp(zip.data + pickle_start, pickle.data, pickle.length) == 0);
    zip.data[pickle_start + 40] ^= 0x01;
    expect_failure(zip.data, zip.length, VT_ERR_FORMAT, "CRC-32");
    zip.data[pickle_start + 40] ^= 0x01;
    /* A flipped bit in a storage passes open (no full read) but not ckpt_verify. */
    zip_archive archive;
    vt_error err = {0};
    CHECK(zip_open(&archive, zip.data, zip.length, "t", &err) == VT_OK);
    const zip_entry *storage = zip_find(&archive, "archive/data/0");
    CHECK(storage != NULL);
    size_t storage_offset = storage ? (size_t)storage->data_offset : 0;
    zip_close(&archive);
    zip.data[storage_offset] ^= 0x40;
    ckpt_file *file = NULL;
    CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
    CHECK(file && ckpt_verify(file, &err) == VT_ERR_FORMAT && strstr(err.message, "archive/data/0"));
    ckpt_close(file);
    free(zip.data);
    /* A deflate entry claiming an impossible expansion (a zip bomb's lie). */
    zip_item bomb[] = {{"a/data.pkl", pickle.data, pickle.length, 1}};
    zip = make_zip(bomb, 1, 0, 0);
    /* Patch the central directory's uncompressed size (offset 24 in the header). */
    uint8_t *central = zip.data + zip.length - 22 - (46 + strlen("a/data.pkl"));
    CHECK(central[0] == 0x50 && central[1] == 0x4b && central[2] == 1 && central[3] == 2);
    central[24] = 0xFF;
    central[25] = 0xFF;
    central[26] = 0xFF;
    central[27] = 0x7F;
    expect_failure(zip.data, zip.length, VT_ERR_FORMAT, "more than DEFLATE can produce");
    central[10] = 12; /* bzip2 */
    expect_failure(zip.data, zip.length, VT_ERR_UNSUPPORTED, "compression method 12");
    central[10] = 8;
    central[8] |= 1; /* encrypted */
    expect_failure(zip.data, zip.length, VT_ERR_UNSUPPORTED, "encrypted");
    free(zip.data);
    /* Directory claims more entries than it can hold / lies outside the file. */
    zip = torch_zip(&pickle, 0, 0, 0);
    uint8_t *eocd = zip.data + zip.length - 22;
    eocd[10] = 0xF0;
    eocd[8] = 0xF0;
    expect_failure(zip.data, zip.length, VT_ERR_FORMAT, "claims");
    eocd[10] = 6;
    eocd[8] = 6;
    eocd[16] ^= 0x80;
    expect_failure(zip.data, zip.length, VT_ERR_FORMAT, "central directory");
    free(zip.data);
    free(pickle.data);
}

/* ================================================================ TorchScript */

/* A TorchScript archive (torch.jit.save's layout) around `pickle`. */
static buffer torchscript_zip(const buffer *pickle) {
    zip_item items[] = {
        {"ts/data.pkl", pickle->data, pickle->length, 0},
        {"ts/constants.pkl", "\x80\x02).", 4, 0},
        {"ts/code/__torch__/m.py", "def forward(self): ...\n", 23, 0},
        {"ts/data/0", STORAGE0, sizeof STORAGE0, 0},
        {"ts/data/1", STORAGE1, sizeof STORAGE1, 0},
        {"ts/data/2", STORAGE2, sizeof STORAGE2, 0},
    };
    return make_zip(items, sizeof items / sizeof *items, 0, 0);
}

/* `cls.__new__(cls)` as torch.jit.save writes it. */
static void pk_new_object(pickler *p, const char *cls) {
    pk_global(p, "__torch__.model", cls);
    pk_op(p, ')');
    pk_op(p, 0x81);
    pk_memoize(p);
}

static void expect_torchscript_failure(pickler *p, vt_status status, const char *needle) {
    buffer zip = torchscript_zip(&p->out);
    expect_failure(zip.data, zip.length, status, needle);
    free(zip.data);
    free(p->out.data);
}

static void test_torchscript_archives(void) {
    /* A module with a parameter, a submodule holding a tensor, and non-tensor
     * attributes (training flag, None, an int): tensors under their dotted paths. */
    pickler p;
    pk_begin(&p, 2);
    pk_new_object(&p, "CLIP");
    pk_op(&p, '}');
    pk_op(&p, '(');
    pk_string(&p, "training");
    pk_op(&p, 0x89);
    pk_string(&p, "proj");
    pk_tensor(&p, &REFERENCE[0]);
    pk_string(&p, "visual");
    pk_new_object(&p, "Visual");
    pk_op(&p, '}');
    pk_op(&p, '(');
    pk_string(&p, "conv1");
    pk_tensor(&p, &REFERENCE[4]);
    pk_string(&p, "hook");
    pk_op(&p, 'N');
    pk_op(&p, 'u');
    pk_op(&p, 'b');
    pk_string(&p, "vocab_size");
    pk_int(&p, 49408);
    pk_op(&p, 'u');
    pk_op(&p, 'b');
    pk_op(&p, '.');
    buffer zip = torchscript_zip(&p.out);
    ckpt_file *file = NULL;
    vt_error err = {0};
    CHECK(ckpt_open_memory(zip.data, zip.length, &file, &err) == VT_OK);
    CHECK(file && ckpt_get_format(file) == CKPT_FORMAT_TORCHSCRIPT && ckpt_count(file) == 2);
    const ckpt_tensor *proj = file ? ckpt_find(file, "proj") : NULL, *conv = file ? ckpt_find(file, "visual.conv1") : NULL;
    CHECK(proj && proj->ndim == 2 && f32_at(proj, 5) == 5.0f);
    CHECK(conv && conv->dtype == VT_DTYPE_BF16 && conv->numel == 3);
    CHECK(file && ckpt_verify(file, &err) == VT_OK);
    ckpt_close(file);
    free(zip.data);
    /* The same module classes in a plain torch.save archive stay refused. */
    pickler q;
    pk_begin(&q, 2);
    q.out.length = 0;
    put_bytes(&q.out, p.out.data, p.out.length);
    expect_pickle_failure(&q, VT_ERR_UNSUPPORTED, "'__torch__.model.CLIP' is not allowed");
    free(p.out.data);

    /* A module that contains itself (the memo makes cycles): bounded, not a hang. */
    pk_begin(&p, 2);
    pk_new_object(&p, "Loop"); /* memo 0: the GLOBAL, 1: the object */
    pk_op(&p, '}');
    pk_string(&p, "again");
    pk_op(&p, 'h');
    put_u8(&p.out, 1);
    pk_op(&p, 's');
    pk_op(&p, 'b');
    pk_op(&p, '.');
    expect_torchscript_failure(&p, VT_ERR_FORMAT, "nest deeper");

    /* __getstate__ state (a tuple) needs the class's own __setstate__ code. */
    pk_begin(&p, 2);
    pk_new_object(&p, "Stateful");
    pk_tensor(&p, &REFERENCE[0]);
    pk_op(&p, 0x85);
    pk_op(&p, 'b');
    pk_op(&p, '.');
    expect_torchscript_failure(&p, VT_ERR_UNSUPPORTED, "__setstate__");

    /* A TorchScript class called with arguments, and a foreign global. */
    pk_begin(&p, 2);
    pk_global(&p, "__torch__.model", "CLIP");
    pk_int(&p, 1);
    pk_op(&p, 0x85);
    pk_op(&p, 'R');
    pk_op(&p, '.');
    expect_torchscript_failure(&p, VT_ERR_UNSUPPORTED, "with arguments");
    pk_begin(&p, 2);
    pk_global(&p, "__torchx__", "CLIP");
    pk_op(&p, '.');
    expect_torchscript_failure(&p, VT_ERR_UNSUPPORTED, "not allowed");
    pk_begin(&p, 2);
    pk_global(&p, "os", "system");
    pk_string(&p, "true");
    pk_op(&p, 0x85);
    pk_op(&p, 'R');
    pk_op(&p, '.');
    expect_torchscript_failure(&p, VT_ERR_UNSUPPORTED, "'os.system' is not allowed");
}

/* Every proper prefix of a valid file must fail cleanly; every single-byte
 * corruption must either fail cleanly or load (ASan watches the reads). */
static void test_truncation_and_corruption(const uint8_t *bytes, size_t size, const char *what) {
    size_t unexpected = 0;
    for (size_t cut = 0; cut < size; cut++) {
        vt_error err = {0};
        ckpt_file *file = NULL;
        vt_status status = ckpt_open_memory(bytes, cut, &file, &err);
        if (status == VT_OK || err.message[0] == '\0') unexpected++;
        ckpt_close(file);
    }
    if (unexpected) fprintf(stderr, "%s: %zu truncations accepted or silent\n", what, unexpected);
    CHECK(unexpected == 0);
    uint8_t *copy = malloc(size);
    size_t loaded = 0, silent = 0;
    for (size_t at = 0; at < size; at++) {
        for (int flip = 0; flip < 2; flip++) {
            memcpy(copy, bytes, size);
            copy[at] ^= flip ? 0xFF : 0x01;
            vt_error err = {0};
            ckpt_file *file = NULL;
            vt_status status = ckpt_open_memory(copy, size, &file, &err);
            if (status == VT_OK) {
                loaded++;
                double sum = 0; /* touch every byte of every tensor */
                for (size_t i = 0; i < ckpt_count(file); i++) {
                    const ckpt_tensor *t = ckpt_at(file, i);
                    for (size_t k = 0; k < (size_t)t->numel * vt_dtype_size(t->dtype); k++)
                        sum += ((const uint8_t *)t->data)[k];
                }
                CHECK(sum >= 0);
            } else if (err.message[0] == '\0') {
                silent++;
            }
            ckpt_close(file);
        }
    }
    CHECK(silent == 0);
    CHECK(loaded < 2 * size);
    free(copy);
}

static void test_fuzzish_torch_zip(void) {
    buffer pickle = reference_pickle(2);
    buffer zip = torch_zip(&pickle, 0, 0, 0);
    test_truncation_and_corruption(zip.data, zip.length, "torch zip");
    free(zip.data);
    zip = torch_zip(&pickle, 1, 1, 0);
    test_truncation_and_corruption(zip.data, zip.length, "torch zip64+deflate");
    free(zip.data);
    free(pickle.data);
}

/* ================================================================ safetensors */

static char temp_dir[64];

/* "<temp_dir>/<name>" in a static buffer, valid until the next call. */
static char *temp_path(const char *name) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

static size_t files_in_temp_dir(void) {
    DIR *dir = opendir(temp_dir);
    size_t count = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        if (e->d_name[0] != '.') count++;
    if (dir) closedir(dir);
    return count;
}

static void remove_temp_files(void) {
    DIR *dir = opendir(temp_dir);
    char path[512]; /* not temp_path(): callers may still hold its buffer */
    for (struct dirent *e; dir && (e = readdir(dir));) {
        snprintf(path, sizeof path, "%s/%s", temp_dir, e->d_name);
        if (e->d_name[0] != '.') unlink(path);
    }
    if (dir) closedir(dir);
}

static buffer read_file(const char *path) {
    buffer b = {0};
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    for (size_t n; f && (n = fread(chunk, 1, sizeof chunk, f)) > 0;) put_bytes(&b, chunk, n);
    if (f) fclose(f);
    return b;
}

static void test_safetensors_roundtrip(void) {
    static const float weights[6] = {1, -2, 3.5f, 4, 5, 6};
    static const uint16_t half[3] = {0x3C00, 0x4000, 0xC000};
    static const int64_t step = 42;
    static const uint8_t flags[4] = {1, 0, 1, 1};
    ckpt_tensor tensors[] = {
        {"b.half", VT_DTYPE_F16, 1, {3}, 3, half},
        {"a.weight", VT_DTYPE_F32, 2, {2, 3}, 6, weights},
        {"step", VT_DTYPE_I64, 0, {0}, 1, &step},
        {"mask", VT_DTYPE_BOOL, 2, {2, 2}, 4, flags},
        {"nothing", VT_DTYPE_F32, 2, {0, 5}, 0, NULL},
        {"quote\"and\\slash \xc3\xa9", VT_DTYPE_U8, 1, {4}, 4, flags},
    };
    const char *metadata[] = {"format", "pt", "note", "line\nbreak", NULL};
    vt_error err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s", temp_path("model.safetensors"));
    CHECK(safetensors_write(path, tensors, 6, metadata, &err) == VT_OK);
    CHECK(files_in_temp_dir() == 1); /* no temporary left behind */
    buffer bytes = read_file(path);
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = header_length << 8 | bytes.data[i];
    CHECK(header_length % 8 == 0);
    const char *expected_start = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"line\\u000abreak\"}";
    CHECK(memcmp(bytes.data + 8, expected_start, strlen(expected_start)) == 0);
    free(bytes.data);

    ckpt_file *file = NULL;
    CHECK(ckpt_open(path, &file, &err) == VT_OK);
    if (!file) return;
    CHECK(ckpt_get_format(file) == CKPT_FORMAT_SAFETENSORS);
    CHECK(ckpt_count(file) == 6);
    /* Layout order: widest dtype first, then by name. */
    CHECK(strcmp(ckpt_at(file, 0)->name, "step") == 0);
    CHECK(strcmp(ckpt_at(file, 1)->name, "a.weight") == 0);
    for (size_t i = 0; i < 6; i++) {
        const ckpt_tensor *got = ckpt_find(file, tensors[i].name);
        CHECK(got != NULL);
        if (!got) continue;
        CHECK(got->dtype == tensors[i].dtype && got->ndim == tensors[i].ndim && got->numel == tensors[i].numel);
        for (int d = 0; d < got->ndim; d++) CHECK(got->shape[d] == tensors[i].shape[d]);
        if (got->numel) CHECK(memcmp(got->data, tensors[i].data, (size_t)got->numel * vt_dtype_size(got->dtype)) == 0);
        CHECK((uintptr_t)got->data % vt_dtype_size(got->dtype) == 0);
    }
    /* Rewriting the file while it is mapped replaces it atomically. */
    CHECK(safetensors_write(path, tensors, 1, NULL, &err) == VT_OK);
    CHECK(memcmp(ckpt_find(file, "a.weight")->data, weights, sizeof weights) == 0);
    ckpt_close(file);
    CHECK(ckpt_open(path, &file, &err) == VT_OK && ckpt_count(file) == 1);
    ckpt_close(file);

    /* A file of no tensors at all is valid. */
    CHECK(safetensors_write(path, NULL, 0, NULL, &err) == VT_OK);
    CHECK(ckpt_open(path, &file, &err) == VT_OK && ckpt_count(file) == 0);
    ckpt_close(file);

    bytes = read_file(path);
    test_truncation_and_corruption(bytes.data, bytes.length, "empty safetensors");
    free(bytes.data);
    CHECK(safetensors_write(path, tensors, 6, metadata, &err) == VT_OK);
    bytes = read_file(path);
    test_truncation_and_corruption(bytes.data, bytes.length, "safetensors");
    free(bytes.data);
    remove_temp_files();
}

static void test_safetensors_write_errors(void) {
    static const float one = 1;
    vt_error err = {0};
    ckpt_tensor t = {"x", VT_DTYPE_F32, 1, {1}, 1, &one};
    ckpt_tensor twice[2] = {t, t};
    CHECK(safetensors_write(temp_path("dup.safetensors"), twice, 2, NULL, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "appears twice") != NULL);
    ckpt_tensor bad_name = t;
    bad_name.name = "bad\xff";
    CHECK(safetensors_write(temp_path("utf8.safetensors"), &bad_name, 1, NULL, &err) != VT_OK);
    CHECK(strstr(err.message, "UTF-8") != NULL);
    ckpt_tensor bad_numel = t;
    bad_numel.numel = 2;
    CHECK(safetensors_write(temp_path("numel.safetensors"), &bad_numel, 1, NULL, &err) == VT_ERR_ARGUMENT);
    const char *odd_metadata[] = {"key", NULL};
    CHECK(safetensors_write(temp_path("meta.safetensors"), &t, 1, odd_metadata, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "'key' has no value") != NULL);
    CHECK(safetensors_write("/nonexistent-dir/x.safetensors", &t, 1, NULL, &err) == VT_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent-dir/x.safetensors") != NULL);
    CHECK(files_in_temp_dir() == 0); /* nothing half-written anywhere */
    remove_temp_files();
}

/* Builds a safetensors image from a header literal and `data_size` data bytes. */
static buffer make_safetensors(const char *header, size_t data_size) {
    buffer b = {0};
    put_le(&b, strlen(header), 8);
    put_text(&b, header);
    for (size_t i = 0; i < data_size; i++) put_u8(&b, (unsigned)i);
    return b;
}

static void test_safetensors_read_errors(void) {
    struct {
        const char *header;
        size_t data;
        vt_status status;
        const char *needle;
    } cases[] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, VT_ERR_FORMAT, "outside the 4-byte"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, VT_ERR_FORMAT, "tensor 'w'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, VT_ERR_FORMAT, "needs 12 bytes"},
        {"{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, VT_ERR_UNSUPPORTED, "F8_E4M3"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, VT_ERR_FORMAT, "shape[0]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,0]}}", 0, VT_ERR_FORMAT, "shape[0]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, VT_ERR_FORMAT, "data_offsets"},
        {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, VT_ERR_FORMAT, "needs \"dtype\""},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, VT_ERR_UNSUPPORTED,
         "9 dimensions"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         VT_ERR_FORMAT, "too large"},
        {"{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, VT_ERR_FORMAT, "appears twice"},
        {"{\"w\": [1, 2}", 0, VT_ERR_FORMAT, "safetensors header: JSON"},
        {"{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}} x", 1, VT_ERR_FORMAT, "after the JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buffer b = make_safetensors(cases[i].header, cases[i].data);
        expect_failure(b.data, b.length, cases[i].status, cases[i].needle);
        free(b.data);
    }
    /* Header length beyond the file, and beyond the 100 MB sanity limit. */
    buffer b = make_safetensors("{}", 0);
    b.data[0] = 200;
    expect_failure(b.data, b.length, VT_ERR_FORMAT, "truncated");
    b.data[0] = 0;
    b.data[4] = 1;
    expect_failure(b.data, b.length, VT_ERR_FORMAT, "100 MB");
    free(b.data);
    /* A tensor at an odd offset is copied so that its data is aligned. */
    b = make_safetensors("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}",
                         5);
    ckpt_file *file = NULL;
    vt_error err = {0};
    CHECK(ckpt_open_memory(b.data, b.length, &file, &err) == VT_OK);
    const ckpt_tensor *w = file ? ckpt_find(file, "w") : NULL;
    CHECK(w && (uintptr_t)w->data % 4 == 0 && memcmp(w->data, b.data + b.length - 4, 4) == 0);
    ckpt_close(file);
    free(b.data);
}

/* ================================================================ other formats */

static void test_format_detection(void) {
    expect_failure("", 0, VT_ERR_FORMAT, "not a checkpoint");
    expect_failure("hello world, this is text", 25, VT_ERR_FORMAT, "not a checkpoint");
    expect_failure("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e", 15, VT_ERR_UNSUPPORTED,
                   "re-save with torch.save(obj, path) from torch >= 1.6 or convert to safetensors");
    expect_failure("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}.", 13, VT_ERR_UNSUPPORTED, "bare pickle");
    const char *lfs = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n";
    expect_failure(lfs, strlen(lfs), VT_ERR_FORMAT, "git lfs pull");
    expect_failure("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8, VT_ERR_FORMAT, "gzip");
    expect_failure("<!DOCTYPE html><html></html>", 28, VT_ERR_FORMAT, "HTML");
    expect_failure("PK\x03\x04truncated", 13, VT_ERR_FORMAT, "end-of-central-directory");

    vt_error err = {0};
    ckpt_file *file = NULL;
    CHECK(ckpt_open(temp_path("does-not-exist.bin"), &file, &err) == VT_ERR_IO && file == NULL);
    CHECK(strstr(err.message, "does-not-exist.bin") != NULL);
    CHECK(ckpt_open(temp_dir, &file, &err) == VT_ERR_IO && strstr(err.message, "not a regular file"));
    FILE *empty = fopen(temp_path("empty.bin"), "wb");
    if (empty) fclose(empty);
    CHECK(ckpt_open(temp_path("empty.bin"), &file, &err) == VT_ERR_FORMAT && strstr(err.message, "empty"));
    CHECK(mkfifo(temp_path("fifo"), 0600) == 0);
    CHECK(ckpt_open(temp_path("fifo"), &file, &err) == VT_ERR_IO); /* must not block */
    remove_temp_files();
    CHECK(strcmp(vt_dtype_name(VT_DTYPE_BF16), "BF16") == 0 && vt_dtype_size(VT_DTYPE_BF16) == 2);
    CHECK(strcmp(vt_dtype_name((vt_dtype)99), "?") == 0 && vt_dtype_size((vt_dtype)99) == 0);
}

/* ================================================================ npy */

/* Overwrites the first `old` in the first `limit` bytes with `new` (same length). */
static void patch_text(buffer *b, size_t limit, const char *old, const char *new) {
    uint8_t *at = memmem(b->data, limit, old, strlen(old));
    CHECK(at != NULL);
    if (at) memcpy(at, new, strlen(new));
}

static void test_npy(void) {
    const float values[6] = {1, 2, 3, 4, 5, 6.5f};
    vt_error err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s", temp_path("x.npy"));
    CHECK(npy_write_f32(path, 2, 3, values, &err) == VT_OK);
    buffer bytes = read_file(path);
    CHECK(bytes.length == 128 + 24);
    CHECK(bytes.length > 128 && bytes.data[127] == '\n' && memcmp(bytes.data, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK(memmem(bytes.data, 128, "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58) != NULL);
    float *data = NULL;
    int64_t rows = 0, cols = 0;
    CHECK(npy_read_f32(path, &data, &rows, &cols, &err) == VT_OK);
    CHECK(rows == 2 && cols == 3 && data && memcmp(data, values, sizeof values) == 0);
    free(data);

    /* Fortran order is transposed into C order. */
    buffer fortran = {0};
    put_bytes(&fortran, bytes.data, bytes.length);
    patch_text(&fortran, 128, "False", "True ");
    const float column_major[6] = {1, 4, 2, 5, 3, 6.5f};
    memcpy(fortran.data + 128, column_major, sizeof column_major);
    FILE *f = fopen(temp_path("f.npy"), "wb");
    fwrite(fortran.data, 1, fortran.length, f);
    fclose(f);
    CHECK(npy_read_f32(temp_path("f.npy"), &data, &rows, &cols, &err) == VT_OK);
    CHECK(data && memcmp(data, values, sizeof values) == 0);
    free(data);
    free(fortran.data);

    /* Other dtypes and truncation are refused with a reason. */
    patch_text(&bytes, 128, "<f4", "<f8");
    f = fopen(temp_path("d.npy"), "wb");
    fwrite(bytes.data, 1, bytes.length, f);
    fclose(f);
    CHECK(npy_read_f32(temp_path("d.npy"), &data, &rows, &cols, &err) == VT_ERR_DTYPE && strstr(err.message, "<f8"));
    f = fopen(temp_path("t.npy"), "wb");
    fwrite(bytes.data, 1, bytes.length - 1, f);
    fclose(f);
    patch_text(&bytes, 128, "<f8", "<f4");
    CHECK(npy_read_f32(temp_path("t.npy"), &data, &rows, &cols, &err) == VT_ERR_DTYPE);
    f = fopen(temp_path("t.npy"), "wb");
    fwrite(bytes.data, 1, bytes.length - 1, f);
    fclose(f);
    CHECK(npy_read_f32(temp_path("t.npy"), &data, &rows, &cols, &err) == VT_ERR_FORMAT &&
          strstr(err.message, "truncated"));
    free(bytes.data);
    CHECK(npy_read_f32(temp_path("missing.npy"), &data, &rows, &cols, &err) == VT_ERR_IO);

    /* A write that runs out of room fails, names the path and leaves nothing behind. */
    remove_temp_files();
    struct rlimit old_limit, small_limit;
    getrlimit(RLIMIT_FSIZE, &old_limit);
    small_limit = old_limit;
    small_limit.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN); /* get EFBIG from write() instead of a signal */
    setrlimit(RLIMIT_FSIZE, &small_limit);
    float *big = calloc(4096, sizeof *big);
    CHECK(npy_write_f32(path, 64, 64, big, &err) == VT_ERR_IO);
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(strstr(err.message, "x.npy") != NULL);
    CHECK(files_in_temp_dir() == 0);
    free(big);
    CHECK(npy_write_f32(path, -1, 3, values, &err) == VT_ERR_ARGUMENT);
}

int main(void) {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/vt_ckpt_test.XXXXXX");
    if (!mkdtemp(temp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_torch_zip_variants();
    test_misaligned_storage_is_copied();
    test_wrapper_and_skipped_items();
    test_hostile_pickles();
    test_tensor_range_errors();
    test_archive_errors();
    test_torchscript_archives();
    test_fuzzish_torch_zip();
    test_safetensors_roundtrip();
    test_safetensors_write_errors();
    test_safetensors_read_errors();
    test_format_detection();
    test_npy();
    remove_temp_files();
    rmdir(temp_dir);
    return unit_summary("test_checkpoint");
}
