/* safetensors reader and writer.
 *
 * Layout: u64 little-endian N, then N bytes of JSON
 *   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * then the data region; offsets are relative to the start of the data region.
 * The reader checks every tensor's [begin, end) against the data region and
 * against numel * element size; tensor data points into the caller's buffer.
 * The writer follows the Python library: tensors ordered by dtype width (widest
 * first, keeping every tensor aligned) then name, header padded with spaces to a
 * multiple of 8 bytes, and the file written atomically. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/checkpoint/checkpoint.h"
#include "io/serial/json.h"
#include "core/atomic_file.h"

#define SAFETENSORS_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define JSON_MAX_EXACT_INTEGER 9007199254740992.0 /* 2^53 */

typedef struct {
    const char *name;
    vt_dtype dtype;
} dtype_name;

static const dtype_name DTYPE_NAMES[] = {
    {"F32", VT_DTYPE_F32}, {"F16", VT_DTYPE_F16}, {"BF16", VT_DTYPE_BF16}, {"F64", VT_DTYPE_F64},
    {"I64", VT_DTYPE_I64}, {"I32", VT_DTYPE_I32}, {"I16", VT_DTYPE_I16},   {"I8", VT_DTYPE_I8},
    {"U8", VT_DTYPE_U8},   {"BOOL", VT_DTYPE_BOOL},
};

/* ---------------------------------------------------------------- reading */

static int parse_dtype(const char *text, vt_dtype *out) {
    for (size_t i = 0; i < sizeof DTYPE_NAMES / sizeof *DTYPE_NAMES; i++) {
        if (strcmp(DTYPE_NAMES[i].name, text) == 0) {
            *out = DTYPE_NAMES[i].dtype;
            return 1;
        }
    }
    return 0;
}

/* A JSON number that is an exact non-negative integer. */
static int json_to_count(const json_value *value, uint64_t *out) {
    if (!value || value->type != JSON_NUMBER) return 0;
    double number = value->number;
    if (!(number >= 0 && number <= JSON_MAX_EXACT_INTEGER) || number != (double)(uint64_t)number) return 0;
    *out = (uint64_t)number;
    return 1;
}

typedef struct {
    vt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_DIMS];
    uint64_t begin, end;
} tensor_entry;

/* Reads {"dtype", "shape", "data_offsets"} of tensor `name`. */
static vt_status read_tensor_entry(const char *label, const char *name, const json_value *info,
                                   tensor_entry *entry, vt_error *err) {
    const char *dtype = json_get_string(info, "dtype", NULL);
    const json_value *shape = json_get(info, "shape"), *offsets = json_get(info, "data_offsets");
    if (!dtype || !shape || shape->type != JSON_ARRAY || !offsets || offsets->type != JSON_ARRAY)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: safetensors entry '%s' needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)",
                       label, name);
    if (!parse_dtype(dtype, &entry->dtype))
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has dtype %.32s; supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL",
                       label, name, dtype);
    if (shape->count > CKPT_MAX_DIMS)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions; at most %d are supported",
                       label, name, shape->count, CKPT_MAX_DIMS);
    entry->ndim = (int)shape->count;
    for (size_t i = 0; i < shape->count; i++) {
        uint64_t dim;
        if (!json_to_count(&shape->items[i], &dim))
            return vt_fail(err, VT_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", label,
                           name, i);
        entry->shape[i] = (int64_t)dim;
    }
    if (offsets->count != 2 || !json_to_count(&offsets->items[0], &entry->begin) ||
        !json_to_count(&offsets->items[1], &entry->end))
        return vt_fail(err, VT_ERR_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                       label, name);
    return VT_OK;
}

/* Checks the entry's byte range against its shape and the data region. */
static vt_status check_tensor_range(const char *label, const char *name, const tensor_entry *entry,
                                    size_t data_size, vt_error *err) {
    int64_t numel;
    size_t bytes;
    if (!ckpt_shape_size(entry->dtype, entry->ndim, entry->shape, &numel, &bytes))
        return vt_fail(err, VT_ERR_FORMAT, "%s: tensor '%s' has a shape too large to address", label, name);
    if (entry->begin > entry->end || entry->end > data_size)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] fall outside the %zu-byte data "
                       "region (file truncated or corrupt?)",
                       label, name, entry->begin, entry->end, data_size);
    if (entry->end - entry->begin != bytes)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: tensor '%s' of %" PRId64 " %s elements needs %zu bytes but its data_offsets span %" PRIu64,
                       label, name, numel, vt_dtype_name(entry->dtype), bytes, entry->end - entry->begin);
    return VT_OK;
}

static vt_status add_tensors(ckpt_file *file, const json_value *header, const uint8_t *data, size_t data_size,
                             vt_error *err) {
    const char *label = ckpt_label(file);
    for (size_t i = 0; i < header->count; i++) {
        const char *name = header->keys[i];
        if (strcmp(name, "__metadata__") == 0) continue;
        tensor_entry entry;
        vt_status status = read_tensor_entry(label, name, &header->items[i], &entry, err);
        if (status == VT_OK) status = check_tensor_range(label, name, &entry, data_size, err);
        if (status == VT_OK)
            status = ckpt_add_tensor(file, name, entry.dtype, entry.ndim, entry.shape, data + entry.begin, err);
        if (status != VT_OK) return status;
    }
    return VT_OK;
}

vt_status safetensors_parse(ckpt_file *file, const uint8_t *bytes, size_t size, vt_error *err) {
    const char *label = ckpt_label(file);
    if (size < 8) return vt_fail(err, VT_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", label, size);
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = header_length << 8 | bytes[i];
    if (header_length > SAFETENSORS_MAX_HEADER)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: safetensors header length %" PRIu64 " exceeds the 100 MB limit (corrupt file?)", label,
                       header_length);
    if (header_length > size - 8)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: safetensors header needs %" PRIu64 " bytes but the file has only %zu after the length "
                       "(file truncated?)",
                       label, header_length, size - 8);
    json_value *header;
    vt_status status = json_parse((const char *)bytes + 8, (size_t)header_length, &header, err);
    if (status != VT_OK) {
        vt_error_prefix(err, "%s: safetensors header: ", label);
        return status;
    }
    if (header->type != JSON_OBJECT)
        status = vt_fail(err, VT_ERR_FORMAT, "%s: safetensors header is not a JSON object", label);
    size_t data_start = 8 + (size_t)header_length;
    if (status == VT_OK) status = add_tensors(file, header, bytes + data_start, size - data_start, err);
    json_free(header);
    return status;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    char *text;
    size_t length, capacity;
    int failed; /* out of memory at some point */
} text_buffer;

static void append_bytes(text_buffer *buffer, const char *bytes, size_t length) {
    if (buffer->failed) return;
    if (buffer->length + length + 1 > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity < buffer->length + length + 1) capacity *= 2;
        char *bigger = realloc(buffer->text, capacity);
        if (!bigger) {
            buffer->failed = 1;
            return;
        }
        buffer->text = bigger;
        buffer->capacity = capacity;
    }
    memcpy(buffer->text + buffer->length, bytes, length);
    buffer->length += length;
    buffer->text[buffer->length] = '\0';
}

static void append_text(text_buffer *buffer, const char *text) { append_bytes(buffer, text, strlen(text)); }

/* Appends a JSON string literal (quotes, escapes; bytes >= 0x80 pass through
 * and are validated when the header is re-parsed). */
static void append_json_string(text_buffer *buffer, const char *text) {
    append_text(buffer, "\"");
    for (const char *c = text; *c; c++) {
        char escaped[8];
        if (*c == '"' || *c == '\\') {
            snprintf(escaped, sizeof escaped, "\\%c", *c);
            append_text(buffer, escaped);
        } else if ((unsigned char)*c < 0x20) {
            snprintf(escaped, sizeof escaped, "\\u%04x", (unsigned char)*c);
            append_text(buffer, escaped);
        } else {
            append_bytes(buffer, c, 1);
        }
    }
    append_text(buffer, "\"");
}

/* Widest dtypes first, in the order of the Rust library's Dtype enum (reversed). */
static int dtype_rank(vt_dtype dtype) {
    static const vt_dtype order[] = {VT_DTYPE_I64, VT_DTYPE_F64, VT_DTYPE_F32, VT_DTYPE_I32, VT_DTYPE_BF16,
                                     VT_DTYPE_F16, VT_DTYPE_I16, VT_DTYPE_I8,  VT_DTYPE_U8,  VT_DTYPE_BOOL};
    for (int i = 0; i < (int)(sizeof order / sizeof *order); i++)
        if (order[i] == dtype) return i;
    return 99;
}

static int compare_for_layout(const void *a, const void *b) {
    const ckpt_tensor *left = *(const ckpt_tensor *const *)a, *right = *(const ckpt_tensor *const *)b;
    int order = dtype_rank(left->dtype) - dtype_rank(right->dtype);
    return order ? order : strcmp(left->name, right->name);
}

static int compare_names(const void *a, const void *b) {
    return strcmp((*(const ckpt_tensor *const *)a)->name, (*(const ckpt_tensor *const *)b)->name);
}

static vt_status validate_tensor(const char *path, const ckpt_tensor *tensor, size_t *bytes, vt_error *err) {
    int64_t numel;
    if (!tensor->name) return vt_fail(err, VT_ERR_ARGUMENT, "safetensors_write %s: a tensor has no name", path);
    if (!vt_dtype_size(tensor->dtype) || !ckpt_shape_size(tensor->dtype, tensor->ndim, tensor->shape, &numel, bytes))
        return vt_fail(err, VT_ERR_ARGUMENT, "safetensors_write %s: tensor '%s' has an invalid dtype or shape", path,
                       tensor->name);
    if (numel != tensor->numel)
        return vt_fail(err, VT_ERR_ARGUMENT,
                       "safetensors_write %s: tensor '%s' has numel %" PRId64 " but its shape holds %" PRId64, path,
                       tensor->name, tensor->numel, numel);
    if (*bytes && !tensor->data)
        return vt_fail(err, VT_ERR_ARGUMENT, "safetensors_write %s: tensor '%s' has no data", path, tensor->name);
    return VT_OK;
}

/* Validates every tensor and returns pointers in layout order. */
static vt_status plan_layout(const char *path, const ckpt_tensor *tensors, size_t count,
                             const ckpt_tensor ***layout, vt_error *err) {
    const ckpt_tensor **order = malloc((count ? count : 1) * sizeof *order);
    if (!order) return vt_fail(err, VT_ERR_NOMEM, "out of memory writing %s", path);
    vt_status status = VT_OK;
    for (size_t i = 0; status == VT_OK && i < count; i++) {
        size_t bytes;
        order[i] = &tensors[i];
        status = validate_tensor(path, &tensors[i], &bytes, err);
    }
    if (status == VT_OK) {
        qsort(order, count, sizeof *order, compare_names);
        for (size_t i = 1; status == VT_OK && i < count; i++)
            if (strcmp(order[i]->name, order[i - 1]->name) == 0)
                status = vt_fail(err, VT_ERR_ARGUMENT, "safetensors_write %s: tensor name '%s' appears twice", path,
                                 order[i]->name);
        qsort(order, count, sizeof *order, compare_for_layout);
    }
    if (status != VT_OK) {
        free(order);
        return status;
    }
    *layout = order;
    return VT_OK;
}

static vt_status append_metadata(text_buffer *header, const char *path, const char *const *metadata, vt_error *err) {
    if (!metadata || !metadata[0]) return VT_OK;
    append_text(header, "\"__metadata__\":{");
    for (size_t i = 0; metadata[i]; i += 2) {
        if (!metadata[i + 1])
            return vt_fail(err, VT_ERR_ARGUMENT, "safetensors_write %s: metadata key '%s' has no value", path,
                           metadata[i]);
        if (i) append_text(header, ",");
        append_json_string(header, metadata[i]);
        append_text(header, ":");
        append_json_string(header, metadata[i + 1]);
    }
    append_text(header, "},");
    return VT_OK;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static vt_status build_header(const char *path, const ckpt_tensor *const *layout, size_t count,
                              const char *const *metadata, text_buffer *header, vt_error *err) {
    append_text(header, "{");
    vt_status status = append_metadata(header, path, metadata, err);
    uint64_t offset = 0;
    for (size_t i = 0; status == VT_OK && i < count; i++) {
        const ckpt_tensor *tensor = layout[i];
        char number[48];
        append_json_string(header, tensor->name);
        append_text(header, ":{\"dtype\":\"");
        append_text(header, vt_dtype_name(tensor->dtype));
        append_text(header, "\",\"shape\":[");
        for (int d = 0; d < tensor->ndim; d++) {
            snprintf(number, sizeof number, "%s%" PRId64, d ? "," : "", tensor->shape[d]);
            append_text(header, number);
        }
        uint64_t bytes = (uint64_t)tensor->numel * vt_dtype_size(tensor->dtype);
        snprintf(number, sizeof number, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + bytes);
        append_text(header, number);
        offset += bytes;
        if (i + 1 < count) append_text(header, ",");
    }
    if (status == VT_OK && header->length > 1 && header->text[header->length - 1] == ',')
        header->text[--header->length] = '\0'; /* metadata only: drop its trailing comma */
    append_text(header, "}");
    while (status == VT_OK && header->length % 8) append_text(header, " ");
    if (status == VT_OK && header->failed) status = vt_fail(err, VT_ERR_NOMEM, "out of memory writing %s", path);
    if (status == VT_OK) { /* names must be valid UTF-8 for any reader: re-parse to make sure */
        json_value *check;
        status = json_parse(header->text, header->length, &check, err);
        if (status != VT_OK)
            vt_error_prefix(err, "safetensors_write %s: tensor names or metadata are not valid UTF-8 text: ", path);
        json_free(check);
    }
    return status;
}

static vt_status write_file(const char *path, const text_buffer *header, const ckpt_tensor *const *layout,
                            size_t count, vt_error *err) {
    uint8_t length_bytes[8];
    for (int i = 0; i < 8; i++) length_bytes[i] = (uint8_t)((uint64_t)header->length >> (8 * i));
    atomic_file file;
    vt_status status = atomic_file_open(&file, path, err);
    if (status == VT_OK) status = atomic_file_write(&file, length_bytes, sizeof length_bytes, err);
    if (status == VT_OK) status = atomic_file_write(&file, header->text, header->length, err);
    for (size_t i = 0; status == VT_OK && i < count; i++)
        status = atomic_file_write(&file, layout[i]->data, (size_t)layout[i]->numel * vt_dtype_size(layout[i]->dtype),
                                   err);
    if (status == VT_OK) status = atomic_file_commit(&file, err);
    return status;
}

vt_status safetensors_write(const char *path, const ckpt_tensor *tensors, size_t count, const char *const *metadata,
                            vt_error *err) {
    if (!path || (count && !tensors)) return vt_fail(err, VT_ERR_ARGUMENT, "safetensors_write: NULL argument");
    const ckpt_tensor **layout = NULL;
    text_buffer header = {0};
    vt_status status = plan_layout(path, tensors, count, &layout, err);
    if (status == VT_OK) status = build_header(path, layout, count, metadata, &header, err);
    if (status == VT_OK) status = write_file(path, &header, layout, count, err);
    free(layout);
    free(header.text);
    return status;
}
