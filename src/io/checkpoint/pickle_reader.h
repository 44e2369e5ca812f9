/* A pickle *reader* for PyTorch checkpoints: a small stack machine that
 * understands the opcodes torch.save emits (protocols 2 to 5) and builds plain
 * values (None, bool, int, float, str, bytes, tuple, list, dict) plus tensor
 * descriptions. It executes nothing: GLOBAL / STACK_GLOBAL accept only an
 * allow-list (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter[_with_state], the torch.*Storage types), and
 * REDUCE / NEWOBJ only interpret those. Anything else fails with
 * VT_ERR_UNSUPPORTED naming the global. A TorchScript archive's data.pkl
 * (torch.jit.save) is read with `torchscript` set: its `__torch__.*` module
 * classes become plain objects (PK_OBJECT: the class name and the attribute
 * dict BUILD gives them); no class is looked up and none of the archive's
 * code runs, and a class that restores itself with its own __setstate__
 * (state that is no attribute dict) is refused. Stack, memo and sizes are bounded and
 * the machine is iterative, so hostile input cannot exhaust memory or stack. */
#ifndef VT_IO_PICKLE_READER_H
#define VT_IO_PICKLE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "io/checkpoint/checkpoint.h"
#include "vitamin.h"

typedef enum {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STRING,   /* str (and protocol-2 BINSTRING) */
    PK_BYTES,
    PK_TUPLE,
    PK_LIST,
    PK_DICT,
    PK_GLOBAL,   /* an allow-listed callable or storage type */
    PK_STORAGE,  /* a storage named by BINPERSID: dtype + archive key */
    PK_TENSOR,   /* _rebuild_tensor_v2(...) */
    PK_OBJECT,   /* a TorchScript module object: class name + attribute dict */
} pk_kind;

typedef enum {
    PK_GLOBAL_ORDERED_DICT,
    PK_GLOBAL_REBUILD_TENSOR_V2,
    PK_GLOBAL_REBUILD_PARAMETER,
    PK_GLOBAL_REBUILD_PARAMETER_WITH_STATE,
    PK_GLOBAL_STORAGE_TYPE,   /* torch.FloatStorage etc.; element type in pk_value.storage_type */
    PK_GLOBAL_TORCHSCRIPT_CLASS, /* `__torch__.<qualified name>` (torchscript mode only); name in class_name */
} pk_global;

typedef struct pk_value pk_value;

/* A storage named by a persistent id: `<archive>/data/<key>`, `numel` elements. */
typedef struct {
    vt_dtype dtype;
    const char *key;          /* NUL-free */
    uint64_t numel;
} pk_storage;

typedef struct {
    const pk_storage *storage;
    int64_t storage_offset;   /* in elements; shape, stride and offset are not range-checked here: */
                              /* the caller checks them where it knows the tensor's name */
    int ndim;
    int64_t shape[CKPT_MAX_DIMS];
    int64_t stride[CKPT_MAX_DIMS]; /* in elements */
} pk_tensor;

/* Kept small (a union) because hostile pickles can create one per input byte. */
struct pk_value {
    pk_kind kind;
    union {
        int64_t integer;              /* PK_BOOL (0/1), PK_INT */
        double real;                  /* PK_FLOAT */
        struct {                      /* PK_STRING, PK_BYTES */
            char *text;               /* NUL-terminated copy (may also hold NULs) */
            size_t length;            /* bytes, excluding the terminator */
        };
        struct {                      /* PK_TUPLE, PK_LIST, PK_DICT */
            pk_value **items;         /* items; dict values */
            pk_value **keys;          /* dict keys, parallel to items, insertion order */
            size_t count, capacity;
        };
        struct {                      /* PK_GLOBAL, PK_OBJECT */
            pk_global global;
            vt_dtype storage_type;    /* element type of PK_GLOBAL_STORAGE_TYPE */
            char *class_name;         /* TorchScript class (owned), else NULL */
            pk_value *attrs;          /* PK_OBJECT: its attribute dict once built (PK_DICT), else NULL */
        };
        pk_storage storage;           /* PK_STORAGE */
        pk_tensor *tensor;            /* PK_TENSOR */
    };
};

typedef struct pickle_document pickle_document;

/* Runs the pickle in `bytes` (not retained). `label` names it in messages
 * ("model.bin: data.pkl"). On success *root is the unpickled object, owned by
 * *out. */
vt_status pickle_load(const uint8_t *bytes, size_t size, const char *label, pickle_document **out,
                      const pk_value **root, vt_error *err);
/* The same for a TorchScript archive's data.pkl (torchscript mode, above). */
vt_status pickle_load_torchscript(const uint8_t *bytes, size_t size, const char *label, pickle_document **out,
                                  const pk_value **root, vt_error *err);
void pickle_free(pickle_document *doc);

/* Value under a string key of a PK_DICT (the last one if repeated), or NULL. */
const pk_value *pk_dict_get(const pk_value *dict, const char *key);

#endif
