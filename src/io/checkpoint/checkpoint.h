/* A checkpoint as a flat table of named tensors, whatever the file format.
 *
 * Formats (detected from the first bytes, never from the extension):
 *   - safetensors (8-byte little-endian header length + JSON header + data),
 *     memory-mapped: tensor data points into the mapping, no copy;
 *   - PyTorch zip archives written by torch.save (>= 1.6): the pickle in
 *     `<archive>/data.pkl` is read by a pickle *reader* that executes nothing and
 *     accepts only an allow-list of globals; storages `<archive>/data/<key>` are
 *     memory-mapped (torch stores them uncompressed);
 *   - TorchScript archives written by torch.jit.save (OpenAI's CLIP releases):
 *     the same zip layout, with data.pkl holding the module objects; their
 *     tensor attributes are read under their state_dict() names, with the
 *     same allow-list and no code run (pickle_reader.h);
 *   - (legacy non-zip torch.save files are rejected with a message saying how to
 *     re-save them).
 * Wrappers: if the top-level object is a dict holding a dict under "state_dict"
 * (or "model"), that inner dict is the state dict. Non-tensor values (epoch
 * numbers, strings, optimizer state that is not a tensor) are skipped.
 * Key names are returned exactly as stored: stripping "module." or adding
 * "text." is the model loader's job (src/model/weights.c).
 */
#ifndef VT_IO_CHECKPOINT_H
#define VT_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

typedef enum {
    VT_DTYPE_F32 = 0,
    VT_DTYPE_F16,
    VT_DTYPE_BF16,
    VT_DTYPE_F64,
    VT_DTYPE_I64,
    VT_DTYPE_I32,
    VT_DTYPE_I16,
    VT_DTYPE_I8,
    VT_DTYPE_U8,
    VT_DTYPE_BOOL,
} vt_dtype;

const char *vt_dtype_name(vt_dtype dtype);
size_t vt_dtype_size(vt_dtype dtype);

#define CKPT_MAX_DIMS 8

typedef struct {
    char *name;                     /* NUL-terminated key, e.g. "visual.head.proj.weight" */
    vt_dtype dtype;
    int ndim;                       /* 0 for a scalar such as logit_scale */
    int64_t shape[CKPT_MAX_DIMS];
    int64_t numel;                  /* product of shape (1 for ndim 0) */
    const void *data;               /* contiguous, row-major, little-endian; numel elements */
} ckpt_tensor;

/* TORCHSCRIPT: a torch.jit.save zip (OpenAI's CLIP releases); its tensors are
 * the module tree's attributes, named as module.state_dict() names them. */
typedef enum { CKPT_FORMAT_SAFETENSORS, CKPT_FORMAT_TORCH_ZIP, CKPT_FORMAT_TORCHSCRIPT } ckpt_format;

typedef struct ckpt_file ckpt_file;

/* Opens and indexes a checkpoint. Every tensor's byte range is checked against
 * the file size, so a truncated file fails here and never later. */
vt_status ckpt_open(const char *path, ckpt_file **out, vt_error *err);
/* Same, from a caller-owned buffer that must outlive the ckpt_file (fuzzing, tests). */
vt_status ckpt_open_memory(const void *bytes, size_t size, ckpt_file **out, vt_error *err);
/* A checkpoint over tensors that already live in memory (the trainer's weights,
 * for evaluating them with the inference engine). The data pointers are used in
 * place and must outlive the ckpt_file. */
vt_status ckpt_from_tensors(const char *label, const ckpt_tensor *tensors, size_t count, ckpt_file **out,
                            vt_error *err);
void ckpt_close(ckpt_file *file);

/* Drops the resident pages of a memory-mapped checkpoint (madvise DONTNEED).
 * Tensor data pointers stay valid: the pages are read again from the file when
 * touched. A loader calls this once it has copied what it packs, so resident
 * memory holds one copy of the weights, not two. No-op for in-memory files. */
void ckpt_release_pages(const ckpt_file *file);
/* The same for the whole pages inside [data, data + bytes), if they belong to the mapping. */
void ckpt_release_range(const ckpt_file *file, const void *data, size_t bytes);

ckpt_format ckpt_get_format(const ckpt_file *file);
size_t ckpt_count(const ckpt_file *file);
const ckpt_tensor *ckpt_at(const ckpt_file *file, size_t index);   /* file order */
const ckpt_tensor *ckpt_find(const ckpt_file *file, const char *name); /* NULL if absent */

/* Re-reads every stored checksum (the CRC-32 of each entry of a torch zip
 * archive; safetensors files have none, so they always pass). Touches every
 * byte of the file, so it costs a full read: an explicit step, not part of open. */
vt_status ckpt_verify(const ckpt_file *file, vt_error *err);

/* Element i of a floating-point tensor (F32, F16, BF16, F64) as float; 0 for
 * other dtypes (callers check the dtype first). */
float ckpt_element_f32(const ckpt_tensor *tensor, int64_t i);

/* Writes a safetensors file atomically (temp file, fsync, rename). `metadata`
 * may be NULL or a NULL-terminated list of key, value, key, value, ... strings
 * stored under "__metadata__". */
vt_status safetensors_write(const char *path, const ckpt_tensor *tensors, size_t count,
                            const char *const *metadata, vt_error *err);

/* ---- Internal to src/io: how the format readers fill a ckpt_file. ---- */

/* The file name used in messages ("model.bin", or "<memory>"). */
const char *ckpt_label(const ckpt_file *file);
/* Appends a tensor. `data` (numel * element size bytes, row-major) must live as
 * long as `file`: a pointer into the mapping, or a buffer handed over with
 * ckpt_adopt_buffer. Data not aligned to its element size is copied into an
 * aligned buffer, so users may read it as `const float *` and so on. */
vt_status ckpt_add_tensor(ckpt_file *file, const char *name, vt_dtype dtype, int ndim,
                          const int64_t *shape, const void *data, vt_error *err);
/* Makes `file` free `buffer` (malloc'd) when it is closed. On failure the
 * buffer is freed at once. */
vt_status ckpt_adopt_buffer(ckpt_file *file, void *buffer, vt_error *err);
/* Replaces the whole table (a layout translation, model/hf_clip.c). Names are
 * copied; each tensor's data must live as long as `file`: its own pointers,
 * or buffers handed over with ckpt_adopt_buffer. */
vt_status ckpt_replace_tensors(ckpt_file *file, const ckpt_tensor *tensors, size_t count, vt_error *err);
/* Multiplies the dims of `shape` into *numel and *bytes (numel * element size);
 * 0 if a dim is negative or the product overflows. */
int ckpt_shape_size(vt_dtype dtype, int ndim, const int64_t *shape, int64_t *numel, size_t *bytes);
/* Reads a safetensors image into `file` (safetensors.c). */
vt_status safetensors_parse(ckpt_file *file, const uint8_t *bytes, size_t size, vt_error *err);

#endif
