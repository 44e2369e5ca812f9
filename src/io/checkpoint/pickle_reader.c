/* The allow-listed pickle machine (see pickle_reader.h).
 *
 * Semantics follow CPython's pickle.Unpickler (Lib/pickle.py): a value stack, a
 * mark stack (MARK starts a new frame; popping below the top mark is an
 * underflow), and a memo. Values are heap objects shared by pointer, because the
 * memo makes aliasing observable (torch memoizes the state dict, then fills it
 * with SETITEMS). Every value is registered in the document and freed with it;
 * nothing is freed earlier, so aliasing can never dangle. Each opcode creates at
 * most one value and consumes at least one input byte, so memory grows with the
 * pickle's size; a byte budget (PK_BUDGET_*) bounds that growth, and the stack,
 * mark and memo sizes have explicit caps on top. */
#include "io/checkpoint/pickle_reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"

#define PK_MAX_STACK ((size_t)1 << 22)
#define PK_MAX_MARKS ((size_t)1 << 16)
#define PK_MAX_MEMO ((size_t)1 << 24)
#define PK_MAX_PROTOCOL 5
/* Memory the values of one pickle may take: a generous multiple of its size
 * (torch state dicts need under 10x), so no input can make us allocate far
 * more than it weighs. */
#define PK_BUDGET_BASE ((size_t)64 << 20)
#define PK_BUDGET_PER_BYTE 32

struct pickle_document {
    pk_value **values; /* every value created, for freeing */
    size_t count, capacity;
};

typedef struct {
    const uint8_t *bytes;
    size_t size, pos;
    size_t opcode_pos;          /* offset of the opcode being run, for messages */
    uint8_t opcode;
    const char *label;
    pickle_document *doc;
    pk_value **stack;
    size_t depth, stack_capacity;
    size_t *marks;              /* stack depth at each MARK */
    size_t mark_count, mark_capacity;
    pk_value **memo;            /* sparse, indexed by memo key */
    size_t memo_capacity, memo_filled;
    size_t budget_left;         /* bytes values may still take */
    int over_budget;
    /* Immutable values are shared, as CPython does, so that a run of NONE or
     * BININT1 opcodes costs no memory. */
    pk_value *none, *booleans[2], *small_ints[256];
    int torchscript;            /* __torch__.* classes allowed as plain objects */
    vt_error *err;
} pk_machine;

/* ---------------------------------------------------------------- errors */

/* Fails with "<label>: pickle opcode 0xNN at byte N: <message>". */
static vt_status __attribute__((format(printf, 3, 4)))
machine_fail(pk_machine *m, vt_status status, const char *fmt, ...) {
    char message[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return vt_fail(m->err, status, "%s: pickle opcode 0x%02x at byte %zu: %s", m->label, m->opcode,
                   m->opcode_pos, message);
}

static vt_status out_of_memory(pk_machine *m) {
    if (m->over_budget)
        return machine_fail(m, VT_ERR_FORMAT,
                            "unpickling needs more than %zu MiB for a %zu-byte pickle (corrupt or hostile data?)",
                            (PK_BUDGET_BASE + PK_BUDGET_PER_BYTE * m->size) >> 20, m->size);
    return vt_fail(m->err, VT_ERR_NOMEM, "%s: out of memory reading the pickle", m->label);
}

/* Takes `bytes` from the memory budget; 0 once it is spent. */
static int charge(pk_machine *m, size_t bytes) {
    if (bytes > m->budget_left) {
        m->over_budget = 1;
        return 0;
    }
    m->budget_left -= bytes;
    return 1;
}

/* ---------------------------------------------------------------- values */

static pk_value *new_value(pk_machine *m, pk_kind kind) {
    pickle_document *doc = m->doc;
    if (!charge(m, sizeof(pk_value) + 2 * sizeof(pk_value *)) ||
        !vt_grow_array((void **)&doc->values, &doc->capacity, doc->count, sizeof *doc->values))
        return NULL;
    pk_value *value = calloc(1, sizeof *value);
    if (!value) return NULL;
    value->kind = kind;
    doc->values[doc->count++] = value;
    return value;
}

/* Appends `item` (and `key` for dicts) to a container value. */
static int append_item(pk_machine *m, pk_value *container, pk_value *key, pk_value *item) {
    if (!charge(m, (container->kind == PK_DICT ? 2 : 1) * 2 * sizeof(pk_value *))) return 0;
    size_t capacity = container->capacity;
    if (!vt_grow_array((void **)&container->items, &capacity, container->count, sizeof *container->items))
        return 0;
    if (container->kind == PK_DICT) {
        size_t key_capacity = container->capacity;
        if (!vt_grow_array((void **)&container->keys, &key_capacity, container->count,
                        sizeof *container->keys))
            return 0;
        container->keys[container->count] = key;
    }
    container->capacity = capacity;
    container->items[container->count++] = item;
    return 1;
}

static int is_string(const pk_value *value, const char *text) {
    return value && value->kind == PK_STRING && value->length == strlen(text) &&
           memcmp(value->text, text, value->length) == 0;
}

const pk_value *pk_dict_get(const pk_value *dict, const char *key) {
    if (!dict || dict->kind != PK_DICT) return NULL;
    for (size_t i = dict->count; i-- > 0;)
        if (is_string(dict->keys[i], key)) return dict->items[i];
    return NULL;
}

static void free_value(pk_value *value) {
    switch (value->kind) {
    case PK_STRING:
    case PK_BYTES: free(value->text); break;
    case PK_TUPLE:
    case PK_LIST:
    case PK_DICT:
        free(value->items);
        free(value->keys);
        break;
    case PK_TENSOR: free(value->tensor); break;
    case PK_GLOBAL:
    case PK_OBJECT: free(value->class_name); break;
    default: break;
    }
    free(value);
}

void pickle_free(pickle_document *doc) {
    if (!doc) return;
    for (size_t i = 0; i < doc->count; i++) free_value(doc->values[i]);
    free(doc->values);
    free(doc);
}

/* ---------------------------------------------------------------- input */

/* Returns the next `n` bytes, or NULL (error reported) if the pickle ends first. */
static const uint8_t *take(pk_machine *m, uint64_t n, vt_status *status) {
    if (n > m->size - m->pos) {
        *status = machine_fail(m, VT_ERR_FORMAT,
                               "needs %llu more bytes but the pickle has %zu left (truncated or corrupt)",
                               (unsigned long long)n, m->size - m->pos);
        return NULL;
    }
    const uint8_t *at = m->bytes + m->pos;
    m->pos += (size_t)n;
    return at;
}

static uint64_t read_unsigned_le(const uint8_t *p, int n) {
    uint64_t value = 0;
    for (int i = n - 1; i >= 0; i--) value = value << 8 | p[i];
    return value;
}

/* Reads an n-byte little-endian unsigned operand. */
static vt_status take_unsigned(pk_machine *m, int n, uint64_t *out) {
    vt_status status = VT_OK;
    const uint8_t *p = take(m, (uint64_t)n, &status);
    if (p) *out = read_unsigned_le(p, n);
    return status;
}

/* Reads a '\n'-terminated text operand (GLOBAL, INT, LONG). */
static vt_status take_line(pk_machine *m, const char **line, size_t *length) {
    const uint8_t *start = m->bytes + m->pos;
    const uint8_t *newline = memchr(start, '\n', m->size - m->pos);
    if (!newline) return machine_fail(m, VT_ERR_FORMAT, "text operand has no terminating newline");
    *line = (const char *)start;
    *length = (size_t)(newline - start);
    m->pos += *length + 1;
    return VT_OK;
}

/* ---------------------------------------------------------------- stack */

static size_t frame_base(const pk_machine *m) { return m->mark_count ? m->marks[m->mark_count - 1] : 0; }

static vt_status push(pk_machine *m, pk_value *value) {
    if (!value) return out_of_memory(m);
    if (m->depth >= PK_MAX_STACK)
        return machine_fail(m, VT_ERR_UNSUPPORTED, "value stack deeper than %zu entries", PK_MAX_STACK);
    if (!vt_grow_array((void **)&m->stack, &m->stack_capacity, m->depth, sizeof *m->stack))
        return out_of_memory(m);
    m->stack[m->depth++] = value;
    return VT_OK;
}

static vt_status pop(pk_machine *m, pk_value **out) {
    if (m->depth <= frame_base(m)) return machine_fail(m, VT_ERR_FORMAT, "stack underflow");
    *out = m->stack[--m->depth];
    return VT_OK;
}

static vt_status peek(pk_machine *m, pk_value **out) {
    if (m->depth <= frame_base(m)) return machine_fail(m, VT_ERR_FORMAT, "stack underflow");
    *out = m->stack[m->depth - 1];
    return VT_OK;
}

static vt_status push_mark(pk_machine *m) {
    if (m->mark_count >= PK_MAX_MARKS)
        return machine_fail(m, VT_ERR_UNSUPPORTED, "more than %zu nested MARKs", PK_MAX_MARKS);
    if (!vt_grow_array((void **)&m->marks, &m->mark_capacity, m->mark_count, sizeof *m->marks))
        return out_of_memory(m);
    m->marks[m->mark_count++] = m->depth;
    return VT_OK;
}

/* Ends the current MARK frame: its items are stack[*base .. m->depth) until
 * the caller truncates the stack to *base. */
static vt_status pop_mark(pk_machine *m, size_t *base) {
    if (!m->mark_count) return machine_fail(m, VT_ERR_FORMAT, "no MARK to pop to");
    *base = m->marks[--m->mark_count];
    return VT_OK;
}

/* ---------------------------------------------------------------- memo */

static vt_status memo_put(pk_machine *m, uint64_t key) {
    pk_value *top = NULL;
    vt_status status = peek(m, &top);
    if (status != VT_OK) return status;
    /* Python memoizes with consecutive keys, each costing an opcode, so a key
     * beyond the pickle's length is never legitimate (and would cost memory). */
    if (key >= PK_MAX_MEMO || key >= m->size)
        return machine_fail(m, VT_ERR_FORMAT, "memo key %llu out of range", (unsigned long long)key);
    if (key >= m->memo_capacity) {
        size_t old = m->memo_capacity;
        if (!vt_grow_array((void **)&m->memo, &m->memo_capacity, (size_t)key, sizeof *m->memo))
            return out_of_memory(m);
        memset(m->memo + old, 0, (m->memo_capacity - old) * sizeof *m->memo);
    }
    if (!m->memo[key]) m->memo_filled++;
    m->memo[key] = top;
    return VT_OK;
}

static vt_status memo_get(pk_machine *m, uint64_t key) {
    if (key >= m->memo_capacity || !m->memo[key])
        return machine_fail(m, VT_ERR_FORMAT, "memo key %llu was never stored", (unsigned long long)key);
    return push(m, m->memo[key]);
}

/* ---------------------------------------------------------------- scalars */

/* A shared immutable value, created on first use. */
static pk_value *shared_value(pk_machine *m, pk_value **slot, pk_kind kind, int64_t integer) {
    if (!*slot && (*slot = new_value(m, kind))) (*slot)->integer = integer;
    return *slot;
}

static vt_status push_int(pk_machine *m, int64_t integer) {
    if (integer >= 0 && integer < 256) return push(m, shared_value(m, &m->small_ints[integer], PK_INT, integer));
    pk_value *value = new_value(m, PK_INT);
    if (value) value->integer = integer;
    return push(m, value);
}

static vt_status push_bool(pk_machine *m, int truth) {
    return push(m, shared_value(m, &m->booleans[truth != 0], PK_BOOL, truth != 0));
}

/* LONG1 / LONG4: little-endian two's complement of n bytes; we keep int64. */
static vt_status push_long(pk_machine *m, uint64_t n) {
    if (n > 8)
        return machine_fail(m, VT_ERR_UNSUPPORTED, "integer of %llu bytes does not fit in 64 bits",
                            (unsigned long long)n);
    vt_status status = VT_OK;
    const uint8_t *p = take(m, n, &status);
    if (!p) return status;
    uint64_t bits = read_unsigned_le(p, (int)n);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) bits |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return push_int(m, (int64_t)bits);
}

/* Protocol-0 INT ("I123\n", "I01\n" = True, "I00\n" = False) and LONG ("L123L\n"). */
static vt_status push_text_int(pk_machine *m, int is_long) {
    const char *line = NULL;
    size_t length = 0;
    vt_status status = take_line(m, &line, &length);
    if (status != VT_OK) return status;
    if (!is_long && length == 2 && line[0] == '0' && (line[1] == '0' || line[1] == '1'))
        return push_bool(m, line[1] == '1');
    if (is_long && length > 0 && line[length - 1] == 'L') length--;
    char digits[32];
    if (length == 0 || length >= sizeof digits)
        return machine_fail(m, VT_ERR_UNSUPPORTED, "text integer of %zu characters not supported", length);
    memcpy(digits, line, length);
    digits[length] = '\0';
    char *end;
    errno = 0;
    long long integer = strtoll(digits, &end, 10);
    if (errno || *end != '\0')
        return machine_fail(m, VT_ERR_FORMAT, "malformed or out-of-range text integer '%s'", digits);
    return push_int(m, integer);
}

static vt_status push_binfloat(pk_machine *m) {
    vt_status status = VT_OK;
    const uint8_t *p = take(m, 8, &status);
    if (!p) return status;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = bits << 8 | p[i]; /* big-endian */
    pk_value *value = new_value(m, PK_FLOAT);
    if (value) memcpy(&value->real, &bits, sizeof bits);
    return push(m, value);
}

/* A string or bytes operand of `length` bytes, copied and NUL-terminated. */
static vt_status push_text(pk_machine *m, pk_kind kind, uint64_t length) {
    vt_status status = VT_OK;
    const uint8_t *p = take(m, length, &status);
    if (!p) return status;
    pk_value *value = new_value(m, kind);
    if (!value || !charge(m, (size_t)length + 1) || !(value->text = malloc((size_t)length + 1)))
        return out_of_memory(m);
    memcpy(value->text, p, (size_t)length);
    value->text[length] = '\0';
    value->length = (size_t)length;
    return push(m, value);
}

/* Reads an n-byte length operand, then the text. */
static vt_status push_sized_text(pk_machine *m, pk_kind kind, int length_bytes) {
    uint64_t length = 0;
    vt_status status = take_unsigned(m, length_bytes, &length);
    if (status != VT_OK) return status;
    if (length_bytes == 4 && kind == PK_STRING && m->opcode == 'T' && (length & 0x80000000u))
        return machine_fail(m, VT_ERR_FORMAT, "negative BINSTRING length");
    return push_text(m, kind, length);
}

/* ---------------------------------------------------------------- containers */

/* Moves stack[base..depth) into a new container of `kind` (dict: key, value pairs). */
static vt_status collect_into(pk_machine *m, pk_value *container, size_t base) {
    if (!container) return out_of_memory(m);
    if (container->kind == PK_DICT && (m->depth - base) % 2)
        return machine_fail(m, VT_ERR_FORMAT, "odd number of items for a dict");
    for (size_t i = base; i < m->depth; i += container->kind == PK_DICT ? 2 : 1) {
        int ok = container->kind == PK_DICT ? append_item(m, container, m->stack[i], m->stack[i + 1])
                                            : append_item(m, container, NULL, m->stack[i]);
        if (!ok) return out_of_memory(m);
    }
    m->depth = base;
    return VT_OK;
}

/* TUPLE, LIST, DICT: everything since the last MARK. */
static vt_status build_from_mark(pk_machine *m, pk_kind kind) {
    size_t base = 0;
    vt_status status = pop_mark(m, &base);
    if (status != VT_OK) return status;
    pk_value *container = new_value(m, kind);
    status = collect_into(m, container, base);
    return status != VT_OK ? status : push(m, container);
}

/* TUPLE1/2/3: the top n items. */
static vt_status build_small_tuple(pk_machine *m, size_t n) {
    if (m->depth - frame_base(m) < n) return machine_fail(m, VT_ERR_FORMAT, "stack underflow");
    pk_value *tuple = new_value(m, PK_TUPLE);
    vt_status status = collect_into(m, tuple, m->depth - n);
    return status != VT_OK ? status : push(m, tuple);
}

/* APPEND(S) / SETITEM(S): items from `base` go into the container just below. */
static vt_status add_to_container(pk_machine *m, size_t base, pk_kind expected) {
    if (base == 0 || base <= frame_base(m))
        return machine_fail(m, VT_ERR_FORMAT, "stack underflow (no container to add to)");
    pk_value *container = m->stack[base - 1];
    if (container->kind != expected)
        return machine_fail(m, VT_ERR_FORMAT, "%s target is not a %s",
                            expected == PK_DICT ? "SETITEM(S)" : "APPEND(S)",
                            expected == PK_DICT ? "dict" : "list");
    return collect_into(m, container, base);
}

static vt_status add_since_mark(pk_machine *m, pk_kind expected) {
    size_t base = 0;
    vt_status status = pop_mark(m, &base);
    return status != VT_OK ? status : add_to_container(m, base, expected);
}

static vt_status add_top_items(pk_machine *m, size_t n, pk_kind expected) {
    if (m->depth - frame_base(m) < n) return machine_fail(m, VT_ERR_FORMAT, "stack underflow");
    return add_to_container(m, m->depth - n, expected);
}

/* ---------------------------------------------------------------- globals */

typedef struct {
    const char *module, *name;
    pk_global global;
    vt_dtype dtype;
} allowed_global;

static const allowed_global ALLOWED_GLOBALS[] = {
    {"collections", "OrderedDict", PK_GLOBAL_ORDERED_DICT, VT_DTYPE_F32},
    {"torch._utils", "_rebuild_tensor_v2", PK_GLOBAL_REBUILD_TENSOR_V2, VT_DTYPE_F32},
    {"torch._utils", "_rebuild_parameter", PK_GLOBAL_REBUILD_PARAMETER, VT_DTYPE_F32},
    {"torch._utils", "_rebuild_parameter_with_state", PK_GLOBAL_REBUILD_PARAMETER_WITH_STATE, VT_DTYPE_F32},
    {"torch", "FloatStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_F32},
    {"torch", "HalfStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_F16},
    {"torch", "BFloat16Storage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_BF16},
    {"torch", "DoubleStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_F64},
    {"torch", "LongStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_I64},
    {"torch", "IntStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_I32},
    {"torch", "ShortStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_I16},
    {"torch", "CharStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_I8},
    {"torch", "ByteStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_U8},
    {"torch", "BoolStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_BOOL},
    /* Written for a bare untyped storage; its elements are bytes. */
    {"torch", "UntypedStorage", PK_GLOBAL_STORAGE_TYPE, VT_DTYPE_U8},
};

static int text_equals(const char *text, size_t length, const char *expected) {
    return length == strlen(expected) && memcmp(text, expected, length) == 0;
}

static vt_status push_global(pk_machine *m, const char *module, size_t module_length, const char *name,
                             size_t name_length) {
    for (size_t i = 0; i < sizeof ALLOWED_GLOBALS / sizeof *ALLOWED_GLOBALS; i++) {
        const allowed_global *allowed = &ALLOWED_GLOBALS[i];
        if (text_equals(module, module_length, allowed->module) &&
            text_equals(name, name_length, allowed->name)) {
            pk_value *value = new_value(m, PK_GLOBAL);
            if (value) {
                value->global = allowed->global;
                value->storage_type = allowed->dtype;
            }
            return push(m, value);
        }
    }
    if (m->torchscript && module_length >= 9 && !memcmp(module, "__torch__", 9) &&
        (module_length == 9 || module[9] == '.')) {
        /* A scripted module's class: only its name is kept (for messages). */
        pk_value *value = new_value(m, PK_GLOBAL);
        if (!value || !charge(m, module_length + name_length + 2) ||
            !(value->class_name = malloc(module_length + name_length + 2)))
            return out_of_memory(m);
        value->global = PK_GLOBAL_TORCHSCRIPT_CLASS;
        snprintf(value->class_name, module_length + name_length + 2, "%.*s.%.*s", (int)module_length, module,
                 (int)name_length, name);
        return push(m, value);
    }
    int printable_module = module_length > 200 ? 200 : (int)module_length;
    int printable_name = name_length > 200 ? 200 : (int)name_length;
    if (text_equals(module, module_length, "torch") && name_length > 7 &&
        memcmp(name + name_length - 7, "Storage", 7) == 0)
        return machine_fail(m, VT_ERR_UNSUPPORTED,
                            "tensor storage type 'torch.%.*s' is not supported (supported: Float, Half, "
                            "BFloat16, Double, Long, Int, Short, Char, Byte and Bool storages)",
                            printable_name, name);
    return machine_fail(m, VT_ERR_UNSUPPORTED,
                        "pickle global '%.*s.%.*s' is not allowed; vitamin.c only reads tensors "
                        "(state dicts of OrderedDict / _rebuild_tensor_v2 / _rebuild_parameter)",
                        printable_module, module, printable_name, name);
}

/* GLOBAL: "module\nname\n" operands. */
static vt_status run_global(pk_machine *m) {
    const char *module = NULL, *name = NULL;
    size_t module_length = 0, name_length = 0;
    vt_status status = take_line(m, &module, &module_length);
    if (status == VT_OK) status = take_line(m, &name, &name_length);
    return status != VT_OK ? status : push_global(m, module, module_length, name, name_length);
}

/* STACK_GLOBAL: module and name strings on the stack. */
static vt_status run_stack_global(pk_machine *m) {
    pk_value *name = NULL, *module = NULL;
    vt_status status = pop(m, &name);
    if (status == VT_OK) status = pop(m, &module);
    if (status != VT_OK) return status;
    if (name->kind != PK_STRING || module->kind != PK_STRING)
        return machine_fail(m, VT_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    return push_global(m, module->text, module->length, name->text, name->length);
}

/* ---------------------------------------------------------------- calls */

static int is_sequence(const pk_value *value) {
    return value && (value->kind == PK_TUPLE || value->kind == PK_LIST);
}

/* Fills one int64 vector (size or stride) from a tuple of ints. */
static vt_status read_int_tuple(pk_machine *m, const pk_value *tuple, int64_t *out, const char *what) {
    for (size_t i = 0; i < tuple->count; i++) {
        if (tuple->items[i]->kind != PK_INT)
            return machine_fail(m, VT_ERR_FORMAT, "_rebuild_tensor_v2: %s[%zu] is not an integer", what, i);
        out[i] = tuple->items[i]->integer;
    }
    return VT_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) -> a tensor description. Values are range-checked
 * later, where the tensor's name is known. */
static vt_status rebuild_tensor(pk_machine *m, const pk_value *args) {
    if (args->count != 6 && args->count != 7)
        return machine_fail(m, VT_ERR_FORMAT, "_rebuild_tensor_v2 expects 6 or 7 arguments, got %zu",
                            args->count);
    const pk_value *storage = args->items[0], *offset = args->items[1], *size = args->items[2],
                   *stride = args->items[3];
    if (storage->kind != PK_STORAGE || offset->kind != PK_INT || !is_sequence(size) || !is_sequence(stride))
        return machine_fail(m, VT_ERR_FORMAT,
                            "_rebuild_tensor_v2 expects (storage, int, size tuple, stride tuple, ...)");
    if (size->count != stride->count)
        return machine_fail(m, VT_ERR_FORMAT, "_rebuild_tensor_v2: %zu sizes but %zu strides",
                            size->count, stride->count);
    if (size->count > CKPT_MAX_DIMS)
        return machine_fail(m, VT_ERR_UNSUPPORTED, "tensor with %zu dimensions; at most %d are supported",
                            size->count, CKPT_MAX_DIMS);
    pk_value *tensor = new_value(m, PK_TENSOR);
    if (!tensor || !(tensor->tensor = calloc(1, sizeof *tensor->tensor))) return out_of_memory(m);
    tensor->tensor->storage = &storage->storage;
    tensor->tensor->storage_offset = offset->integer;
    tensor->tensor->ndim = (int)size->count;
    vt_status status = read_int_tuple(m, size, tensor->tensor->shape, "size");
    if (status == VT_OK) status = read_int_tuple(m, stride, tensor->tensor->stride, "stride");
    return status != VT_OK ? status : push(m, tensor);
}

/* OrderedDict() or OrderedDict([(key, value), ...]). */
static vt_status make_ordered_dict(pk_machine *m, const pk_value *args) {
    pk_value *dict = new_value(m, PK_DICT);
    if (!dict) return out_of_memory(m);
    if (args->count > 1 || (args->count == 1 && !is_sequence(args->items[0])))
        return machine_fail(m, VT_ERR_FORMAT, "OrderedDict expects no arguments or a list of pairs");
    const pk_value *pairs = args->count ? args->items[0] : NULL;
    for (size_t i = 0; pairs && i < pairs->count; i++) {
        const pk_value *pair = pairs->items[i];
        if (!is_sequence(pair) || pair->count != 2)
            return machine_fail(m, VT_ERR_FORMAT, "OrderedDict item %zu is not a (key, value) pair", i);
        if (!append_item(m, dict, pair->items[0], pair->items[1])) return out_of_memory(m);
    }
    return push(m, dict);
}

/* _rebuild_parameter(data, requires_grad, hooks[, state]) -> data. */
static vt_status rebuild_parameter(pk_machine *m, const pk_value *args, size_t expected_count) {
    if (args->count != expected_count || args->items[0]->kind != PK_TENSOR)
        return machine_fail(m, VT_ERR_FORMAT, "_rebuild_parameter expects (tensor, requires_grad, hooks%s)",
                            expected_count == 4 ? ", state" : "");
    return push(m, args->items[0]);
}

/* REDUCE and NEWOBJ: call an allow-listed global with an argument tuple. */
static vt_status call_global(pk_machine *m, int is_newobj) {
    pk_value *args = NULL, *callable = NULL;
    vt_status status = pop(m, &args);
    if (status == VT_OK) status = pop(m, &callable);
    if (status != VT_OK) return status;
    if (args->kind != PK_TUPLE) return machine_fail(m, VT_ERR_FORMAT, "call arguments are not a tuple");
    if (callable->kind != PK_GLOBAL) return machine_fail(m, VT_ERR_FORMAT, "call target is not a global");
    if (callable->global == PK_GLOBAL_TORCHSCRIPT_CLASS) {
        /* torch.jit.save writes `cls.__new__(cls)` (NEWOBJ, no arguments), then BUILD. */
        if (!is_newobj || args->count)
            return machine_fail(m, VT_ERR_UNSUPPORTED,
                                "'%.200s' is constructed with arguments; vitamin.c runs no TorchScript code",
                                callable->class_name);
        pk_value *object = new_value(m, PK_OBJECT);
        if (!object || !charge(m, strlen(callable->class_name) + 1) ||
            !(object->class_name = strdup(callable->class_name)))
            return out_of_memory(m);
        return push(m, object);
    }
    if (is_newobj && callable->global != PK_GLOBAL_ORDERED_DICT)
        return machine_fail(m, VT_ERR_UNSUPPORTED, "NEWOBJ is only supported for OrderedDict");
    switch (callable->global) {
    case PK_GLOBAL_TORCHSCRIPT_CLASS: break;
    case PK_GLOBAL_ORDERED_DICT: return make_ordered_dict(m, is_newobj ? &(pk_value){.kind = PK_TUPLE} : args);
    case PK_GLOBAL_REBUILD_TENSOR_V2: return rebuild_tensor(m, args);
    case PK_GLOBAL_REBUILD_PARAMETER: return rebuild_parameter(m, args, 3);
    case PK_GLOBAL_REBUILD_PARAMETER_WITH_STATE: return rebuild_parameter(m, args, 4);
    case PK_GLOBAL_STORAGE_TYPE: break;
    }
    return machine_fail(m, VT_ERR_UNSUPPORTED, "calling a storage type is not supported");
}

/* BINPERSID with torch's id ('storage', storage_type, key, location, numel). */
static vt_status load_persistent(pk_machine *m) {
    pk_value *id = NULL;
    vt_status status = pop(m, &id);
    if (status != VT_OK) return status;
    if (id->kind != PK_TUPLE || id->count != 5 || !is_string(id->items[0], "storage") ||
        id->items[1]->kind != PK_GLOBAL || id->items[1]->global != PK_GLOBAL_STORAGE_TYPE ||
        id->items[2]->kind != PK_STRING || id->items[4]->kind != PK_INT || id->items[4]->integer < 0)
        return machine_fail(m, VT_ERR_FORMAT,
                            "persistent id is not ('storage', <storage type>, key, location, numel)");
    const pk_value *key = id->items[2];
    if (key->length == 0 || memchr(key->text, '\0', key->length))
        return machine_fail(m, VT_ERR_FORMAT, "storage key is empty or contains a NUL byte");
    pk_value *storage = new_value(m, PK_STORAGE);
    if (!storage) return out_of_memory(m);
    storage->storage.dtype = id->items[1]->storage_type;
    storage->storage.key = key->text;
    storage->storage.numel = (uint64_t)id->items[4]->integer;
    return push(m, storage);
}

/* BUILD: sets an object's state. Dicts get attribute state (a module's
 * state_dict carries `_metadata`), which we do not need: drop it. */
static vt_status run_build(pk_machine *m) {
    pk_value *state = NULL, *target = NULL;
    vt_status status = pop(m, &state);
    if (status == VT_OK) status = peek(m, &target);
    if (status != VT_OK || target->kind != PK_OBJECT) return status;
    /* A TorchScript module's state is its attribute dict; anything else came
     * from a __getstate__ that only the class's own __setstate__ (code in the
     * archive) could interpret. */
    if (state->kind != PK_DICT)
        return machine_fail(m, VT_ERR_UNSUPPORTED,
                            "TorchScript object '%.200s' restores its state with its own __setstate__ code; "
                            "vitamin.c runs no code from an archive: save model.state_dict() with torch.save instead",
                            target->class_name);
    if (target->attrs) return machine_fail(m, VT_ERR_FORMAT, "TorchScript object '%.200s' is built twice",
                                           target->class_name);
    target->attrs = state;
    return VT_OK;
}

/* ---------------------------------------------------------------- dispatch */

static const char *unsupported_opcode_name(uint8_t opcode) {
    switch (opcode) {
    case 'P': return "PERSID";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'F': return "FLOAT";
    case 'p': return "PUT";
    case 'g': return "GET";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    }
    return NULL;
}

/* Runs one opcode; sets *done at STOP. */
static vt_status step(pk_machine *m, pk_value **result, int *done) {
    uint64_t operand = 0;
    vt_status status = VT_OK;
    pk_value *value = NULL;
    size_t base = 0;
    switch (m->opcode) {
    case 0x80: /* PROTO */
        status = take_unsigned(m, 1, &operand);
        if (status == VT_OK && operand > PK_MAX_PROTOCOL)
            return machine_fail(m, VT_ERR_UNSUPPORTED, "pickle protocol %llu (at most %d supported)",
                                (unsigned long long)operand, PK_MAX_PROTOCOL);
        return status;
    case 0x95: /* FRAME: a length hint; the frame's opcodes follow inline. */
        status = take_unsigned(m, 8, &operand);
        if (status == VT_OK && operand > m->size - m->pos)
            return machine_fail(m, VT_ERR_FORMAT, "frame of %llu bytes runs past the end of the pickle",
                                (unsigned long long)operand);
        return status;
    case '.': /* STOP */
        status = pop(m, result);
        *done = status == VT_OK;
        return status;
    case '(': return push_mark(m);
    case '0': /* POP: an empty frame pops the mark itself, as CPython does */
        if (m->depth > frame_base(m)) return pop(m, &value);
        return pop_mark(m, &base);
    case '1': /* POP_MARK */
        status = pop_mark(m, &base);
        if (status == VT_OK) m->depth = base;
        return status;
    case '2': /* DUP */
        status = peek(m, &value);
        return status != VT_OK ? status : push(m, value);
    case '}': return push(m, new_value(m, PK_DICT));
    case ']': return push(m, new_value(m, PK_LIST));
    case ')': return push(m, new_value(m, PK_TUPLE));
    case 't': return build_from_mark(m, PK_TUPLE);
    case 'l': return build_from_mark(m, PK_LIST);
    case 'd': return build_from_mark(m, PK_DICT);
    case 0x85: return build_small_tuple(m, 1);
    case 0x86: return build_small_tuple(m, 2);
    case 0x87: return build_small_tuple(m, 3);
    case 's': return add_top_items(m, 2, PK_DICT);   /* SETITEM */
    case 'u': return add_since_mark(m, PK_DICT);     /* SETITEMS */
    case 'a': return add_top_items(m, 1, PK_LIST);   /* APPEND */
    case 'e': return add_since_mark(m, PK_LIST);     /* APPENDS */
    case 'q': /* BINPUT */
    case 'r': /* LONG_BINPUT */
        status = take_unsigned(m, m->opcode == 'q' ? 1 : 4, &operand);
        return status != VT_OK ? status : memo_put(m, operand);
    case 0x94: return memo_put(m, m->memo_filled); /* MEMOIZE */
    case 'h': /* BINGET */
    case 'j': /* LONG_BINGET */
        status = take_unsigned(m, m->opcode == 'h' ? 1 : 4, &operand);
        return status != VT_OK ? status : memo_get(m, operand);
    case 'J': /* BININT: signed 32-bit */
        status = take_unsigned(m, 4, &operand);
        return status != VT_OK ? status : push_int(m, (int32_t)(uint32_t)operand);
    case 'K': /* BININT1 */
    case 'M': /* BININT2 */
        status = take_unsigned(m, m->opcode == 'K' ? 1 : 2, &operand);
        return status != VT_OK ? status : push_int(m, (int64_t)operand);
    case 0x8a: /* LONG1 */
    case 0x8b: /* LONG4 */
        status = take_unsigned(m, m->opcode == 0x8a ? 1 : 4, &operand);
        return status != VT_OK ? status : push_long(m, operand);
    case 'I': return push_text_int(m, 0);
    case 'L': return push_text_int(m, 1);
    case 'G': return push_binfloat(m);
    case 'N': return push(m, shared_value(m, &m->none, PK_NONE, 0));
    case 0x88: return push_bool(m, 1); /* NEWTRUE */
    case 0x89: return push_bool(m, 0); /* NEWFALSE */
    case 'X': return push_sized_text(m, PK_STRING, 4);  /* BINUNICODE */
    case 0x8c: return push_sized_text(m, PK_STRING, 1); /* SHORT_BINUNICODE */
    case 0x8d: return push_sized_text(m, PK_STRING, 8); /* BINUNICODE8 */
    case 'T': return push_sized_text(m, PK_STRING, 4);  /* BINSTRING */
    case 'U': return push_sized_text(m, PK_STRING, 1);  /* SHORT_BINSTRING */
    case 'B': return push_sized_text(m, PK_BYTES, 4);   /* BINBYTES */
    case 'C': return push_sized_text(m, PK_BYTES, 1);   /* SHORT_BINBYTES */
    case 0x8e: return push_sized_text(m, PK_BYTES, 8);  /* BINBYTES8 */
    case 'c': return run_global(m);
    case 0x93: return run_stack_global(m);
    case 'R': return call_global(m, 0);    /* REDUCE */
    case 0x81: return call_global(m, 1);   /* NEWOBJ */
    case 'b': return run_build(m);
    case 'Q': return load_persistent(m);   /* BINPERSID */
    }
    const char *name = unsupported_opcode_name(m->opcode);
    if (name) return machine_fail(m, VT_ERR_UNSUPPORTED, "opcode %s is not supported in checkpoints", name);
    return machine_fail(m, VT_ERR_FORMAT, "unknown pickle opcode (corrupt data?)");
}

static vt_status run(pk_machine *m, pk_value **result) {
    int done = 0;
    while (!done) {
        if (m->pos >= m->size)
            return vt_fail(m->err, VT_ERR_FORMAT,
                           "%s: pickle ends after %zu bytes without a STOP opcode (truncated?)", m->label,
                           m->size);
        m->opcode_pos = m->pos;
        m->opcode = m->bytes[m->pos++];
        vt_status status = step(m, result, &done);
        if (status != VT_OK) return status;
    }
    return VT_OK;
}

static vt_status load_pickle_mode(const uint8_t *bytes, size_t size, const char *label, int torchscript,
                                   pickle_document **out, const pk_value **root, vt_error *err);

vt_status pickle_load(const uint8_t *bytes, size_t size, const char *label, pickle_document **out,
                      const pk_value **root, vt_error *err) {
    return load_pickle_mode(bytes, size, label, 0, out, root, err);
}

vt_status pickle_load_torchscript(const uint8_t *bytes, size_t size, const char *label, pickle_document **out,
                                  const pk_value **root, vt_error *err) {
    return load_pickle_mode(bytes, size, label, 1, out, root, err);
}

static vt_status load_pickle_mode(const uint8_t *bytes, size_t size, const char *label, int torchscript,
                                  pickle_document **out, const pk_value **root, vt_error *err) {
    *out = NULL;
    *root = NULL;
    if (!bytes && size) return vt_fail(err, VT_ERR_ARGUMENT, "pickle_load: NULL buffer");
    pickle_document *doc = calloc(1, sizeof *doc);
    if (!doc) return vt_fail(err, VT_ERR_NOMEM, "out of memory");
    pk_machine m = {.bytes = bytes, .size = size, .label = label ? label : "<pickle>", .doc = doc, .err = err,
                   .torchscript = torchscript};
    m.budget_left = size > (SIZE_MAX - PK_BUDGET_BASE) / PK_BUDGET_PER_BYTE ? SIZE_MAX
                                                                             : PK_BUDGET_BASE + PK_BUDGET_PER_BYTE * size;
    pk_value *result = NULL;
    vt_status status = run(&m, &result);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (status != VT_OK) {
        pickle_free(doc);
        return status;
    }
    *out = doc;
    *root = result;
    return VT_OK;
}
