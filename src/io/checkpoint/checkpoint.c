/* Checkpoint files as a table of named tensors (see checkpoint.h): opening and
 * mapping the file, format detection, the name index, and the PyTorch zip
 * format (the safetensors format lives in safetensors.c).
 *
 * A torch.save archive holds `<prefix>/data.pkl`, a pickle whose tensors are
 * _rebuild_tensor_v2(storage, offset, size, stride, ...) calls and whose
 * storages are persistent ids naming `<prefix>/data/<key>` entries. Each tensor
 * is checked to lie inside its storage entry; contiguous ones point into the
 * mapping, strided views (e.g. a saved transpose) are gathered into an owned
 * contiguous buffer. */
#include "io/checkpoint/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/float16.h"
#include "io/checkpoint/pickle_reader.h"
#include "io/checkpoint/zip_reader.h"

struct ckpt_file {
    ckpt_format format;
    char *label;
    void *mapping;               /* mmap of the file (ckpt_open), else NULL */
    size_t mapping_size;
    const uint8_t *bytes;        /* the file's bytes (mapping or caller buffer) */
    size_t size;
    ckpt_tensor *tensors;        /* file order */
    size_t count, capacity;
    size_t *by_name;             /* indices into tensors, sorted by name */
    void **owned;                /* malloc'd buffers freed on close */
    size_t owned_count, owned_capacity;
};

/* Stands in for the data of tensors with no elements, so data is never NULL. */
static const uint64_t EMPTY_TENSOR_DATA[1];

/* ---------------------------------------------------------------- dtypes */

const char *vt_dtype_name(vt_dtype dtype) {
    switch (dtype) {
    case VT_DTYPE_F32: return "F32";
    case VT_DTYPE_F16: return "F16";
    case VT_DTYPE_BF16: return "BF16";
    case VT_DTYPE_F64: return "F64";
    case VT_DTYPE_I64: return "I64";
    case VT_DTYPE_I32: return "I32";
    case VT_DTYPE_I16: return "I16";
    case VT_DTYPE_I8: return "I8";
    case VT_DTYPE_U8: return "U8";
    case VT_DTYPE_BOOL: return "BOOL";
    }
    return "?";
}

size_t vt_dtype_size(vt_dtype dtype) {
    switch (dtype) {
    case VT_DTYPE_F64:
    case VT_DTYPE_I64: return 8;
    case VT_DTYPE_F32:
    case VT_DTYPE_I32: return 4;
    case VT_DTYPE_F16:
    case VT_DTYPE_BF16:
    case VT_DTYPE_I16: return 2;
    case VT_DTYPE_I8:
    case VT_DTYPE_U8:
    case VT_DTYPE_BOOL: return 1;
    }
    return 0;
}

int ckpt_shape_size(vt_dtype dtype, int ndim, const int64_t *shape, int64_t *numel, size_t *bytes) {
    int64_t product = 1;
    size_t element_size = vt_dtype_size(dtype);
    if (ndim < 0 || ndim > CKPT_MAX_DIMS || !element_size) return 0;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(product, shape[i], &product)) return 0;
    if ((uint64_t)product > SIZE_MAX / element_size) return 0;
    *numel = product;
    *bytes = (size_t)product * element_size;
    return 1;
}

/* ---------------------------------------------------------------- the table */

const char *ckpt_label(const ckpt_file *file) { return file->label; }
ckpt_format ckpt_get_format(const ckpt_file *file) { return file->format; }
size_t ckpt_count(const ckpt_file *file) { return file ? file->count : 0; }

const ckpt_tensor *ckpt_at(const ckpt_file *file, size_t index) {
    return file && index < file->count ? &file->tensors[index] : NULL;
}

vt_status ckpt_adopt_buffer(ckpt_file *file, void *buffer, vt_error *err) {
    if (file->owned_count == file->owned_capacity) {
        size_t capacity = file->owned_capacity ? file->owned_capacity * 2 : 16;
        void **bigger = realloc(file->owned, capacity * sizeof *bigger);
        if (!bigger) {
            free(buffer);
            return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
        }
        file->owned = bigger;
        file->owned_capacity = capacity;
    }
    file->owned[file->owned_count++] = buffer;
    return VT_OK;
}

/* Returns `data` itself when it is aligned for its dtype, else an owned copy. */
static vt_status aligned_data(ckpt_file *file, const void *data, size_t bytes, size_t element_size,
                              const void **out, vt_error *err) {
    *out = data;
    if (bytes == 0) {
        *out = EMPTY_TENSOR_DATA;
        return VT_OK;
    }
    if ((uintptr_t)data % element_size == 0) return VT_OK;
    void *copy = malloc(bytes); /* malloc alignment covers every dtype */
    if (!copy) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory copying a misaligned tensor", file->label);
    memcpy(copy, data, bytes);
    *out = copy;
    return ckpt_adopt_buffer(file, copy, err);
}

vt_status ckpt_add_tensor(ckpt_file *file, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                          const void *data, vt_error *err) {
    ckpt_tensor tensor = {.dtype = dtype, .ndim = ndim};
    size_t bytes;
    if (!ckpt_shape_size(dtype, ndim, shape, &tensor.numel, &bytes))
        return vt_fail(err, VT_ERR_FORMAT, "%s: tensor '%s' has an invalid or too large shape", file->label, name);
    memcpy(tensor.shape, shape, (size_t)ndim * sizeof *shape);
    vt_status status = aligned_data(file, data, bytes, vt_dtype_size(dtype), &tensor.data, err);
    if (status != VT_OK) return status;
    if (file->count == file->capacity) {
        size_t capacity = file->capacity ? file->capacity * 2 : 64;
        ckpt_tensor *bigger = realloc(file->tensors, capacity * sizeof *bigger);
        if (!bigger) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
        file->tensors = bigger;
        file->capacity = capacity;
    }
    if (!(tensor.name = strdup(name))) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
    file->tensors[file->count++] = tensor;
    return VT_OK;
}

/* qsort has no context argument: sort pointers-to-tensors (names reachable)
 * and convert to indices afterwards. */
static int compare_tensor_names(const void *a, const void *b) {
    return strcmp((*(const ckpt_tensor *const *)a)->name, (*(const ckpt_tensor *const *)b)->name);
}

static vt_status build_name_index(ckpt_file *file, vt_error *err) {
    const ckpt_tensor **sorted = malloc((file->count ? file->count : 1) * sizeof *sorted);
    file->by_name = malloc((file->count ? file->count : 1) * sizeof *file->by_name);
    if (!sorted || !file->by_name) {
        free(sorted);
        return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
    }
    for (size_t i = 0; i < file->count; i++) sorted[i] = &file->tensors[i];
    qsort(sorted, file->count, sizeof *sorted, compare_tensor_names);
    vt_status status = VT_OK;
    for (size_t i = 0; i < file->count; i++) {
        file->by_name[i] = (size_t)(sorted[i] - file->tensors);
        if (i > 0 && strcmp(sorted[i]->name, sorted[i - 1]->name) == 0 && status == VT_OK)
            status = vt_fail(err, VT_ERR_FORMAT, "%s: tensor name '%s' appears twice", file->label, sorted[i]->name);
    }
    free(sorted);
    return status;
}

vt_status ckpt_replace_tensors(ckpt_file *file, const ckpt_tensor *tensors, size_t count, vt_error *err) {
    ckpt_tensor *table = calloc(count ? count : 1, sizeof *table);
    if (!table) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
    for (size_t i = 0; i < count; i++) {
        table[i] = tensors[i];
        if (!(table[i].name = strdup(tensors[i].name))) {
            for (size_t j = 0; j < i; j++) free(table[j].name);
            free(table);
            return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
        }
    }
    for (size_t i = 0; i < file->count; i++) free(file->tensors[i].name);
    free(file->tensors);
    free(file->by_name);
    file->by_name = NULL;
    file->tensors = table;
    file->count = file->capacity = count;
    return build_name_index(file, err);
}

const ckpt_tensor *ckpt_find(const ckpt_file *file, const char *name) {
    if (!file || !name) return NULL;
    size_t low = 0, high = file->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        const ckpt_tensor *tensor = &file->tensors[file->by_name[middle]];
        int order = strcmp(tensor->name, name);
        if (order == 0) return tensor;
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return NULL;
}

void ckpt_close(ckpt_file *file) {
    if (!file) return;
    for (size_t i = 0; i < file->count; i++) free(file->tensors[i].name);
    for (size_t i = 0; i < file->owned_count; i++) free(file->owned[i]);
    free(file->tensors);
    free(file->by_name);
    free(file->owned);
    if (file->mapping) munmap(file->mapping, file->mapping_size);
    free(file->label);
    free(file);
}

/* ---------------------------------------------------------------- torch zip: tensors */

/* Everything needed while turning pickled tensors into table entries. */
typedef struct {
    ckpt_file *file;
    zip_archive zip;
    char *prefix;               /* archive directory, e.g. "archive" or "model" */
    const uint8_t **inflated;   /* per zip entry: inflated bytes of DEFLATE storages */
    int torchscript;            /* a torch.jit.save archive: data.pkl holds the module objects */
    size_t copy_budget;         /* bytes strided views may still be expanded into */
} torch_loader;

/* A stride-0 view (torch.expand) of a few bytes can claim gigabytes; copies of
 * strided views are limited to what a real file of this size can justify. */
#define STRIDED_COPY_BASE ((size_t)256 << 20)

/* The bytes of storage `key` (`<prefix>/data/<key>`). */
static vt_status storage_bytes(torch_loader *loader, const char *tensor_name, const char *key,
                               const uint8_t **data, size_t *size, vt_error *err) {
    size_t length = strlen(loader->prefix) + strlen(key) + 8;
    char *entry_name = malloc(length);
    if (!entry_name) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", loader->file->label);
    snprintf(entry_name, length, "%s/data/%s", loader->prefix, key);
    const zip_entry *entry = zip_find(&loader->zip, entry_name);
    vt_status status = VT_OK;
    if (!entry)
        status = vt_fail(err, VT_ERR_FORMAT, "%s: tensor '%s' needs storage entry '%s', which is missing from the archive",
                         loader->file->label, tensor_name, entry_name);
    free(entry_name);
    if (status != VT_OK) return status;
    size_t index = (size_t)(entry - loader->zip.entries);
    if (loader->inflated[index]) { /* a DEFLATE storage shared by several tensors */
        *data = loader->inflated[index];
        *size = (size_t)entry->uncompressed_size;
        return VT_OK;
    }
    void *owned = NULL;
    status = zip_entry_bytes(&loader->zip, entry, data, size, &owned, err);
    if (status == VT_OK && owned) {
        status = ckpt_adopt_buffer(loader->file, owned, err);
        loader->inflated[index] = owned;
    }
    return status;
}

/* Offset of the last element a strided tensor touches, in elements; 0 on overflow
 * or negative values (which torch never writes). */
static int last_element_index(const pk_tensor *t, int64_t *last) {
    int64_t index = t->storage_offset;
    if (index < 0) return 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t span;
        if (t->stride[i] < 0 || __builtin_mul_overflow(t->shape[i] - 1, t->stride[i], &span) ||
            __builtin_add_overflow(index, span, &index))
            return 0;
    }
    *last = index;
    return 1;
}

static int is_row_major(const pk_tensor *t) {
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expected) return 0; /* size-1 dims may have any stride */
        expected *= t->shape[i];
    }
    return 1;
}

/* Copies a strided view into contiguous row-major order, odometer style; a
 * unit-stride last dimension (e.g. a column slice) is copied a row at a time. */
static void gather_strided(const pk_tensor *t, const uint8_t *storage, size_t element_size, int64_t numel,
                           uint8_t *out) {
    int outer_dims = t->ndim;
    int64_t run = 1;
    if (t->ndim > 0 && t->stride[t->ndim - 1] == 1) {
        run = t->shape[t->ndim - 1];
        outer_dims = t->ndim - 1;
    }
    int64_t index[CKPT_MAX_DIMS] = {0};
    int64_t source = t->storage_offset;
    for (int64_t n = 0; n < numel; n += run) {
        memcpy(out + (size_t)n * element_size, storage + (size_t)source * element_size, (size_t)run * element_size);
        for (int d = outer_dims - 1; d >= 0; d--) {
            if (++index[d] < t->shape[d]) {
                source += t->stride[d];
                break;
            }
            source -= t->stride[d] * (t->shape[d] - 1); /* bounded by last_element_index */
            index[d] = 0;
        }
    }
}

/* Checks the tensor against its storage and returns its contiguous data. */
static vt_status tensor_data(torch_loader *loader, const char *name, const pk_tensor *t, int64_t numel,
                             size_t bytes, const void **data, vt_error *err) {
    const char *label = loader->file->label;
    const pk_storage *storage = t->storage;
    size_t element_size = vt_dtype_size(storage->dtype);
    const uint8_t *entry = NULL;
    size_t entry_size = 0;
    vt_status status = storage_bytes(loader, name, storage->key, &entry, &entry_size, err);
    if (status != VT_OK) return status;
    if (storage->numel > entry_size / element_size)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: tensor '%s': storage '%s' claims %" PRIu64 " elements of %zu bytes but the archive "
                       "entry holds %zu bytes (file truncated?)",
                       label, name, storage->key, storage->numel, element_size, entry_size);
    *data = EMPTY_TENSOR_DATA;
    if (numel == 0) return VT_OK;
    int64_t last;
    if (!last_element_index(t, &last) || (uint64_t)last >= storage->numel)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: tensor '%s' (element offset %" PRId64 ", %d dims with the strides saved) reaches past "
                       "the end of its storage '%s', which holds %" PRIu64 " elements of %zu bytes (corrupt file?)",
                       label, name, t->storage_offset, t->ndim, storage->key, storage->numel, element_size);
    const uint8_t *first = entry + (size_t)t->storage_offset * element_size;
    if (is_row_major(t)) {
        *data = first;
        return VT_OK;
    }
    if (bytes > loader->copy_budget)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: tensor '%s' is a strided view whose contiguous copy needs %zu bytes, more than a "
                       "%zu-byte file can justify; re-save it with .contiguous()",
                       label, name, bytes, loader->file->size);
    loader->copy_budget -= bytes;
    uint8_t *copy = malloc(bytes);
    if (!copy) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory copying strided tensor '%s'", label, name);
    gather_strided(t, entry, element_size, numel, copy);
    *data = copy;
    return ckpt_adopt_buffer(loader->file, copy, err);
}

/* Adds one (name, tensor) item of the state dict. */
static vt_status add_pickled_tensor(torch_loader *loader, const pk_value *key, const pk_tensor *t, vt_error *err) {
    const char *label = loader->file->label;
    if (memchr(key->text, '\0', key->length))
        return vt_fail(err, VT_ERR_FORMAT, "%s: a tensor name contains a NUL byte", label);
    const char *name = key->text;
    int64_t numel;
    size_t bytes;
    if (!ckpt_shape_size(t->storage->dtype, t->ndim, t->shape, &numel, &bytes))
        return vt_fail(err, VT_ERR_FORMAT, "%s: tensor '%s' has a negative or too large shape", label, name);
    const void *data = NULL;
    vt_status status = tensor_data(loader, name, t, numel, bytes, &data, err);
    if (status != VT_OK) return status;
    return ckpt_add_tensor(loader->file, name, t->storage->dtype, t->ndim, t->shape, data, err);
}

/* The state dict: the top-level dict, or the dict under "state_dict" / "model". */
static vt_status select_state_dict(const ckpt_file *file, const pk_value *root, const pk_value **out, vt_error *err) {
    if (!root || root->kind != PK_DICT)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: the pickled object is not a dict of tensors (save model.state_dict(), not the model "
                       "or a single tensor)",
                       file->label);
    const char *wrappers[] = {"state_dict", "model"};
    for (size_t i = 0; i < sizeof wrappers / sizeof *wrappers; i++) {
        const pk_value *inner = pk_dict_get(root, wrappers[i]);
        if (inner && inner->kind == PK_DICT) {
            *out = inner;
            return VT_OK;
        }
    }
    *out = root;
    return VT_OK;
}

/* A TorchScript archive's module tree (pickle_reader.h PK_OBJECT): every
 * tensor attribute under its dotted path, which is the name
 * module.state_dict() gives it ("visual.conv1.weight"). The pickle's memo can
 * alias objects, so depth and the number of visits are bounded. */
enum { TS_MAX_DEPTH = 64, TS_MAX_NAME = 1024 };
#define TS_MAX_VISITS ((size_t)1 << 20)

typedef struct {
    const pk_value *object;
    size_t prefix_length; /* of the path buffer, including the trailing '.' */
    size_t next;          /* next attribute to visit */
} ts_frame;

static vt_status add_module_tree(torch_loader *loader, const pk_value *root, vt_error *err) {
    const char *label = loader->file->label;
    ts_frame stack[TS_MAX_DEPTH];
    char path[TS_MAX_NAME + 1];
    int depth = 0;
    size_t visits = 0;
    stack[depth++] = (ts_frame){root, 0, 0};
    while (depth > 0) {
        ts_frame *f = &stack[depth - 1];
        const pk_value *attrs = f->object->attrs;
        if (!attrs || f->next >= attrs->count) {
            depth--;
            continue;
        }
        const pk_value *key = attrs->keys[f->next], *value = attrs->items[f->next];
        f->next++;
        if (++visits > TS_MAX_VISITS)
            return vt_fail(err, VT_ERR_FORMAT, "%s: the TorchScript module tree has over %zu attributes (aliased "
                           "objects?)", label, TS_MAX_VISITS);
        if (key->kind != PK_STRING || (value->kind != PK_TENSOR && value->kind != PK_OBJECT)) continue;
        if (memchr(key->text, '\0', key->length) || f->prefix_length + key->length + 1 > TS_MAX_NAME)
            return vt_fail(err, VT_ERR_FORMAT, "%s: a TorchScript attribute path is longer than %d bytes or holds "
                           "a NUL", label, TS_MAX_NAME);
        memcpy(path + f->prefix_length, key->text, key->length);
        path[f->prefix_length + key->length] = '\0';
        if (value->kind == PK_TENSOR) {
            pk_value name = {.kind = PK_STRING, .text = path, .length = f->prefix_length + key->length};
            vt_status status = add_pickled_tensor(loader, &name, value->tensor, err);
            if (status != VT_OK) return status;
            continue;
        }
        if (depth == TS_MAX_DEPTH)
            return vt_fail(err, VT_ERR_FORMAT, "%s: TorchScript modules nest deeper than %d (a cycle?)", label,
                           TS_MAX_DEPTH);
        path[f->prefix_length + key->length] = '.';
        stack[depth] = (ts_frame){value, f->prefix_length + key->length + 1, 0};
        depth++;
    }
    return VT_OK;
}

static vt_status add_state_dict(torch_loader *loader, const pk_value *root, vt_error *err) {
    if (loader->torchscript) {
        if (!root || root->kind != PK_OBJECT)
            return vt_fail(err, VT_ERR_FORMAT, "%s: a TorchScript archive whose data.pkl holds no module object",
                           loader->file->label);
        return add_module_tree(loader, root, err);
    }
    const pk_value *state_dict = NULL;
    vt_status status = select_state_dict(loader->file, root, &state_dict, err);
    for (size_t i = 0; status == VT_OK && i < state_dict->count; i++) {
        const pk_value *key = state_dict->keys[i], *value = state_dict->items[i];
        if (key->kind != PK_STRING || value->kind != PK_TENSOR) continue; /* epochs, configs, ... */
        status = add_pickled_tensor(loader, key, value->tensor, err);
    }
    return status;
}

/* ---------------------------------------------------------------- torch zip: archive */

/* Finds `<prefix>/data.pkl` with a one-level prefix and remembers the prefix. */
static vt_status find_pickle_entry(torch_loader *loader, const zip_entry **out, vt_error *err) {
    const char *label = loader->file->label;
    for (size_t i = 0; i < loader->zip.count; i++) {
        const char *name = loader->zip.entries[i].name;
        const char *slash = strchr(name, '/');
        if (!slash || slash == name || strcmp(slash, "/data.pkl") != 0) continue;
        loader->prefix = strndup(name, (size_t)(slash - name));
        if (!loader->prefix) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", label);
        *out = &loader->zip.entries[i];
        return VT_OK;
    }
    return vt_fail(err, VT_ERR_FORMAT,
                   "%s: zip archive without '<name>/data.pkl': not a PyTorch checkpoint written by torch.save",
                   label);
}

/* Refuses archives whose storages we would misread. */
static vt_status check_archive_kind(torch_loader *loader, vt_error *err) {
    const char *label = loader->file->label;
    size_t length = strlen(loader->prefix) + 32;
    char *name = malloc(length);
    if (!name) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", label);
    snprintf(name, length, "%s/constants.pkl", loader->prefix);
    int is_torchscript = zip_find(&loader->zip, name) != NULL;
    snprintf(name, length, "%s/byteorder", loader->prefix);
    const zip_entry *byteorder = zip_find(&loader->zip, name);
    free(name);
    loader->torchscript = is_torchscript;
    if (byteorder && byteorder->method == ZIP_METHOD_STORED && byteorder->uncompressed_size == 3 &&
        memcmp(loader->zip.bytes + byteorder->data_offset, "big", 3) == 0)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: saved on a big-endian machine; re-save it on a little-endian one or as safetensors",
                       label);
    return VT_OK;
}

/* Reads data.pkl (checking its CRC: a flipped bit there would misplace tensors). */
static vt_status load_pickle(torch_loader *loader, const zip_entry *entry, pickle_document **doc,
                             const pk_value **root, vt_error *err) {
    const uint8_t *bytes = NULL;
    size_t size = 0;
    void *owned = NULL;
    vt_status status = zip_entry_bytes(&loader->zip, entry, &bytes, &size, &owned, err);
    if (status == VT_OK && !owned) status = zip_entry_verify(&loader->zip, entry, err);
    if (status == VT_OK) {
        size_t length = strlen(loader->file->label) + strlen(entry->name) + 4;
        char *label = malloc(length);
        if (!label) {
            free(owned);
            return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", loader->file->label);
        }
        snprintf(label, length, "%s: %s", loader->file->label, entry->name);
        status = loader->torchscript ? pickle_load_torchscript(bytes, size, label, doc, root, err)
                                     : pickle_load(bytes, size, label, doc, root, err);
        free(label);
    }
    free(owned);
    return status;
}

static vt_status parse_torch_zip(ckpt_file *file, vt_error *err) {
    torch_loader loader = {.file = file};
    loader.copy_budget = file->size > (SIZE_MAX - STRIDED_COPY_BASE) / 2 ? SIZE_MAX : STRIDED_COPY_BASE + 2 * file->size;
    pickle_document *doc = NULL;
    const pk_value *root = NULL;
    const zip_entry *pickle_entry = NULL;
    vt_status status = zip_open(&loader.zip, file->bytes, file->size, file->label, err);
    if (status == VT_OK) status = find_pickle_entry(&loader, &pickle_entry, err);
    if (status == VT_OK) status = check_archive_kind(&loader, err);
    if (status == VT_OK) status = load_pickle(&loader, pickle_entry, &doc, &root, err);
    if (status == VT_OK) {
        loader.inflated = calloc(loader.zip.count ? loader.zip.count : 1, sizeof *loader.inflated);
        status = loader.inflated ? add_state_dict(&loader, root, err)
                                 : vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", file->label);
    }
    if (loader.torchscript) file->format = CKPT_FORMAT_TORCHSCRIPT;
    pickle_free(doc);
    free(loader.inflated);
    free(loader.prefix);
    zip_close(&loader.zip);
    return status;
}

/* ---------------------------------------------------------------- opening */

static int starts_with(const uint8_t *bytes, size_t size, const char *prefix, size_t prefix_size) {
    return size >= prefix_size && memcmp(bytes, prefix, prefix_size) == 0;
}

/* torch.save(..., _use_new_zipfile_serialization=False) pickles a magic number
 * first: LONG1 0x1950a86a20f9469cfc6c. */
static int is_legacy_torch(const uint8_t *bytes, size_t size) {
    static const char legacy_magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
    return starts_with(bytes, size, legacy_magic, sizeof legacy_magic - 1);
}

/* Explains files that are recognisably something else (checked after
 * safetensors, whose first bytes are an arbitrary length). */
static vt_status reject_other_formats(const ckpt_file *file, vt_error *err) {
    const uint8_t *b = file->bytes;
    size_t n = file->size;
    if (n >= 2 && b[0] == 0x80 && b[1] <= 5)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: a bare pickle file, not a torch.save zip archive; re-save with torch.save(obj, path) "
                       "or convert to safetensors",
                       file->label);
    if (starts_with(b, n, "version https://git-lfs", 23))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: a Git LFS pointer, not the weights themselves; fetch them with `git lfs pull`",
                       file->label);
    if (starts_with(b, n, "\x1f\x8b", 2))
        return vt_fail(err, VT_ERR_FORMAT, "%s: a gzip-compressed file; decompress it first", file->label);
    if (starts_with(b, n, "<!DOCTYPE", 9) || starts_with(b, n, "<html", 5))
        return vt_fail(err, VT_ERR_FORMAT, "%s: an HTML page, not a checkpoint (failed download?)", file->label);
    return VT_OK;
}

/* safetensors: an 8-byte little-endian header length, then a JSON object. */
static int looks_like_safetensors(const uint8_t *bytes, size_t size) { return size > 8 && bytes[8] == '{'; }

static vt_status parse_image(ckpt_file *file, vt_error *err) {
    const uint8_t *b = file->bytes;
    vt_status status;
    if (starts_with(b, file->size, "PK\x03\x04", 4) || starts_with(b, file->size, "PK\x05\x06", 4)) {
        file->format = CKPT_FORMAT_TORCH_ZIP;
        status = parse_torch_zip(file, err);
    } else if (is_legacy_torch(b, file->size)) {
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: legacy (pre-1.6) torch.save format; re-save with torch.save(obj, path) from "
                       "torch >= 1.6 or convert to safetensors",
                       file->label);
    } else if (looks_like_safetensors(b, file->size)) {
        file->format = CKPT_FORMAT_SAFETENSORS;
        status = safetensors_parse(file, b, file->size, err);
    } else if ((status = reject_other_formats(file, err)) != VT_OK) {
        return status;
    } else {
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: not a checkpoint (%zu bytes): expected a PyTorch zip archive written by torch.save or "
                       "a safetensors file",
                       file->label, file->size);
    }
    return status != VT_OK ? status : build_name_index(file, err);
}

static ckpt_file *new_file(const char *label) {
    ckpt_file *file = calloc(1, sizeof *file);
    if (file && !(file->label = strdup(label))) {
        free(file);
        file = NULL;
    }
    return file;
}

vt_status ckpt_open_memory(const void *bytes, size_t size, ckpt_file **out, vt_error *err) {
    *out = NULL;
    if (!bytes && size) return vt_fail(err, VT_ERR_ARGUMENT, "ckpt_open_memory: NULL buffer");
    ckpt_file *file = new_file("<memory>");
    if (!file) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    file->bytes = bytes;
    file->size = size;
    vt_status status = parse_image(file, err);
    if (status != VT_OK) {
        ckpt_close(file);
        return status;
    }
    *out = file;
    return VT_OK;
}

vt_status ckpt_from_tensors(const char *label, const ckpt_tensor *tensors, size_t count, ckpt_file **out,
                            vt_error *err) {
    *out = NULL;
    ckpt_file *file = new_file(label ? label : "<memory>");
    if (!file) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    file->format = CKPT_FORMAT_SAFETENSORS;
    vt_status status = VT_OK;
    for (size_t i = 0; i < count && status == VT_OK; i++)
        status = ckpt_add_tensor(file, tensors[i].name, tensors[i].dtype, tensors[i].ndim, tensors[i].shape,
                                 tensors[i].data, err);
    if (status == VT_OK) status = build_name_index(file, err);
    if (status != VT_OK) {
        ckpt_close(file);
        return status;
    }
    *out = file;
    return VT_OK;
}

/* Maps `path` read-only into file->mapping. */
static vt_status map_file(ckpt_file *file, const char *path, vt_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) return vt_fail(err, VT_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    struct stat info;
    vt_status status = VT_OK;
    if (fstat(fd, &info) != 0)
        status = vt_fail(err, VT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(info.st_mode))
        status = vt_fail(err, VT_ERR_IO, "%s is not a regular file", path);
    else if (info.st_size == 0)
        status = vt_fail(err, VT_ERR_FORMAT, "%s: empty file (0 bytes), not a checkpoint", path);
    else if ((uint64_t)info.st_size > SIZE_MAX)
        status = vt_fail(err, VT_ERR_UNSUPPORTED, "%s: too large to map", path);
    if (status == VT_OK) {
        void *mapping = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapping == MAP_FAILED) {
            status = vt_fail(err, VT_ERR_IO, "cannot map %s (%lld bytes): %s", path, (long long)info.st_size,
                             strerror(errno));
        } else {
            file->mapping = mapping;
            file->mapping_size = (size_t)info.st_size;
            file->bytes = mapping;
            file->size = file->mapping_size;
        }
    }
    close(fd);
    return status;
}

float ckpt_element_f32(const ckpt_tensor *t, int64_t i) {
    const unsigned char *p = t->data;
    uint16_t h;
    switch (t->dtype) {
    case VT_DTYPE_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case VT_DTYPE_F64: { double v; memcpy(&v, p + 8 * i, 8); return (float)v; }
    case VT_DTYPE_F16: memcpy(&h, p + 2 * i, 2); return vt_f16_to_f32(h);
    case VT_DTYPE_BF16: memcpy(&h, p + 2 * i, 2); return vt_bf16_to_f32(h);
    default: return 0.0f;
    }
}

void ckpt_release_pages(const ckpt_file *file) {
    if (file && file->mapping) madvise(file->mapping, file->mapping_size, MADV_DONTNEED);
}

void ckpt_release_range(const ckpt_file *file, const void *data, size_t bytes) {
    if (!file || !file->mapping) return;
    uintptr_t base = (uintptr_t)file->mapping, lo = (uintptr_t)data, hi = lo + bytes;
    if (lo < base || hi > base + file->mapping_size) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    lo = (lo + page - 1) & ~(page - 1);
    hi &= ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

vt_status ckpt_open(const char *path, ckpt_file **out, vt_error *err) {
    *out = NULL;
    if (!path) return vt_fail(err, VT_ERR_ARGUMENT, "ckpt_open: NULL path");
    ckpt_file *file = new_file(path);
    if (!file) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    vt_status status = map_file(file, path, err);
    if (status == VT_OK) status = parse_image(file, err);
    if (status != VT_OK) {
        ckpt_close(file);
        return status;
    }
    *out = file;
    return VT_OK;
}

vt_status ckpt_verify(const ckpt_file *file, vt_error *err) {
    if (file->format == CKPT_FORMAT_SAFETENSORS) return VT_OK;
    zip_archive zip;
    vt_status status = zip_open(&zip, file->bytes, file->size, file->label, err);
    for (size_t i = 0; status == VT_OK && i < zip.count; i++) status = zip_entry_verify(&zip, &zip.entries[i], err);
    zip_close(&zip);
    return status;
}
