/* vitamin._core: the CPython extension over libvitamin (include/vitamin.h).
 *
 * Thin on purpose: every array arrives as a buffer (PEP 3118) that the Python
 * layer (vitamin/_model.py) has already shaped, typed and made contiguous, and
 * every result is written into a buffer that layer allocated (numpy), so this
 * file needs no numpy headers at build time and copies nothing. It checks
 * sizes again here — a wrong buffer is a Python exception, never a read past
 * its end — releases the GIL around all compute, and raises the C message.
 *
 * A Model may be used from several Python threads at once (vt_model is
 * read-only after load). close() while calls run marks it closed; the last
 * running call frees it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vitamin.h"

static PyObject *Error, *FileError, *InputError, *ModelError;

/* The exception for a C status: the file could not be read -> FileError (an
 * OSError); bad values, shapes, corrupt or unsupported files -> InputError (a
 * ValueError); a model name or configuration the library does not know ->
 * ModelError. */
static PyObject *raise_status(vt_status st, const vt_error *err) {
    PyObject *type = Error;
    switch (st) {
    case VT_ERR_IO: type = FileError; break;
    case VT_ERR_ARGUMENT: case VT_ERR_FORMAT: case VT_ERR_SHAPE: case VT_ERR_DTYPE: case VT_ERR_VALUE:
    case VT_ERR_UNSUPPORTED:
        type = InputError; break;
    case VT_ERR_MODEL: type = ModelError; break;
    case VT_ERR_NOMEM: return PyErr_NoMemory();
    default: break;
    }
    PyErr_SetString(type, err && err->message[0] ? err->message : vt_status_name(st));
    return NULL;
}

/* A writable or readable C-contiguous buffer of exactly `bytes` bytes. */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t bytes, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s buffer (numpy array)", what,
                     writable ? " writable" : "");
        return -1;
    }
    if (bytes >= 0 && view->len != bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer holds %zd bytes, expected %zd", what, view->len, bytes);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void set_threads(int threads) {
    /* OpenMP's thread count is per calling thread: set it in each call. */
    if (threads > 0) omp_set_num_threads(threads);
}

/* ------------------------------------------------------------- Model */

typedef struct {
    PyObject_HEAD
    vt_model *model;
    vt_model_info info;
    pthread_mutex_t lock;
    int busy;    /* calls running without the GIL */
    int closed;
} ModelObject;

/* Marks a call as running; fails on a closed model. */
static vt_model *model_enter(ModelObject *self) {
    pthread_mutex_lock(&self->lock);
    vt_model *m = self->closed ? NULL : self->model;
    if (m) self->busy++;
    pthread_mutex_unlock(&self->lock);
    if (!m) PyErr_SetString(PyExc_ValueError, "the model is closed");
    return m;
}

static void model_leave(ModelObject *self) {
    vt_model *to_free = NULL;
    pthread_mutex_lock(&self->lock);
    if (--self->busy == 0 && self->closed) {
        to_free = self->model;
        self->model = NULL;
    }
    pthread_mutex_unlock(&self->lock);
    vt_model_free(to_free);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"path", "model_name", "bf16", "image_size", "fallback_model_name", NULL};
    const char *path, *model_name = NULL, *fallback = NULL;
    int bf16 = 0, image_size = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zpiz", names, &path, &model_name, &bf16, &image_size, &fallback))
        return -1;
    if (self->model) {
        PyErr_SetString(PyExc_RuntimeError, "Model.__init__ called twice");
        return -1;
    }
    vt_load_options opt = {.model_name = model_name, .bf16 = bf16, .fallback_model_name = fallback,
                           .image_size = image_size};
    vt_error err = {0};
    vt_model *m = NULL;
    vt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = vt_model_load(path, &opt, &m, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st, &err);
        return -1;
    }
    self->model = m;
    vt_model_get_info(m, &self->info);
    return 0;
}

static PyObject *Model_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    ModelObject *self = (ModelObject *)type->tp_alloc(type, 0);
    if (self) pthread_mutex_init(&self->lock, NULL);
    return (PyObject *)self;
}

static void Model_dealloc(ModelObject *self) {
    /* No call can be running: each holds a reference to self. */
    vt_model_free(self->model);
    pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Model_close(ModelObject *self, PyObject *unused) {
    vt_model *to_free = NULL;
    pthread_mutex_lock(&self->lock);
    self->closed = 1;
    if (!self->busy) {
        to_free = self->model;
        self->model = NULL;
    }
    pthread_mutex_unlock(&self->lock);
    vt_model_free(to_free);
    Py_RETURN_NONE;
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    const vt_model_info *i = &self->info;
    return Py_BuildValue("{s:s,s:i,s:i,s:O,s:i,s:d,s:i,s:i,s:L,s:L,s:s,s:i,s:i}", "name", i->name, "image_size",
                         i->image_size, "embed_dim", i->embed_dim, "has_text", i->has_text ? Py_True : Py_False,
                         "context_length", i->context_length, "logit_scale", (double)i->logit_scale, "token_grid",
                         i->token_grid, "width", i->width, "image_params", i->image_params, "text_params",
                         i->text_params, "notes", self->closed ? "" : i->notes, "depth", i->depth, "patch_stride",
                         i->patch_stride);
}

static PyObject *Model_closed(ModelObject *self, void *unused) { return PyBool_FromLong(self->closed); }

/* The batch calls share one shape: (input, n, flag, out, threads), the input
 * and output sizes fixed per item by the model; only the C function differs. */
typedef vt_status (*batch_fn)(const vt_model *m, const void *in, int n, int flag, float *out, vt_error *err);

static vt_status call_encode_pixels(const vt_model *m, const void *in, int n, int flag, float *out, vt_error *err) {
    return vt_encode_pixels(m, in, n, flag, out, err);
}
static vt_status call_patch_features(const vt_model *m, const void *in, int n, int flag, float *out, vt_error *err) {
    return flag ? vt_patch_features_normed(m, in, n, out, err) : vt_patch_features(m, in, n, out, err);
}
static vt_status call_encode_tokens(const vt_model *m, const void *in, int n, int flag, float *out, vt_error *err) {
    return vt_encode_tokens(m, in, n, flag, out, err);
}
static vt_status call_dense(const vt_model *m, const void *in, int n, int flag, float *out, vt_error *err) {
    return vt_dense_embeddings(m, in, n, flag, out, err);
}

static PyObject *run_batch(ModelObject *self, PyObject *args, batch_fn fn, Py_ssize_t in_per_item,
                           Py_ssize_t out_floats_per_item, const char *in_name) {
    PyObject *in_obj, *out_obj;
    int n, flag, threads;
    if (!PyArg_ParseTuple(args, "OipOi", &in_obj, &n, &flag, &out_obj, &threads)) return NULL;
    if (n < 0) return PyErr_Format(PyExc_ValueError, "negative batch %d", n);
    vt_model *m = model_enter(self);
    if (!m) return NULL;
    Py_buffer in, out;
    if (get_buffer(in_obj, &in, 0, (Py_ssize_t)n * in_per_item, in_name) < 0) goto fail;
    if (get_buffer(out_obj, &out, 1, (Py_ssize_t)n * out_floats_per_item * 4, "out") < 0) {
        PyBuffer_Release(&in);
        goto fail;
    }
    vt_error err = {0};
    vt_status st;
    Py_BEGIN_ALLOW_THREADS
    set_threads(threads);
    st = fn(m, in.buf, n, flag, out.buf, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    model_leave(self);
    if (st) return raise_status(st, &err);
    Py_RETURN_NONE;
fail:
    model_leave(self);
    return NULL;
}

static Py_ssize_t pixel_bytes(const ModelObject *self) {
    return (Py_ssize_t)3 * self->info.image_size * self->info.image_size * 4;
}

/* encode_pixels(pixels float32 [n,3,S,S], n, normalize, out float32 [n, embed_dim], threads). */
static PyObject *Model_encode_pixels(ModelObject *self, PyObject *args) {
    return run_batch(self, args, call_encode_pixels, pixel_bytes(self), self->info.embed_dim, "pixels");
}

/* patch_features(pixels, n, normed, out [n, grid*grid, width], threads). */
static PyObject *Model_patch_features(ModelObject *self, PyObject *args) {
    Py_ssize_t g = self->info.token_grid;
    return run_batch(self, args, call_patch_features, pixel_bytes(self), g * g * self->info.width, "pixels");
}

/* encode_tokens(ids int32 [n, context], n, normalize, out [n, embed_dim], threads). */
static PyObject *Model_encode_tokens(ModelObject *self, PyObject *args) {
    if (!self->info.has_text && !self->closed)
        return PyErr_Format(ModelError, "%s has no text tower (an image-only checkpoint)", self->info.name);
    return run_batch(self, args, call_encode_tokens, (Py_ssize_t)self->info.context_length * 4, self->info.embed_dim,
                     "tokens");
}

/* dense(pixels, n, normalize, out [n, grid*grid, embed_dim], threads). */
static PyObject *Model_dense(ModelObject *self, PyObject *args) {
    Py_ssize_t g = self->info.token_grid;
    return run_batch(self, args, call_dense, pixel_bytes(self), g * g * self->info.embed_dim, "pixels");
}

/* layer_shape(layer, n) -> tuple: vt_image_layer_shape. */
static PyObject *Model_layer_shape(ModelObject *self, PyObject *args) {
    int layer, n;
    if (!PyArg_ParseTuple(args, "ii", &layer, &n)) return NULL;
    vt_model *m = model_enter(self);
    if (!m) return NULL;
    int ndim;
    int64_t shape[4];
    vt_error err = {0};
    vt_status st = vt_image_layer_shape(m, layer, n, &ndim, shape, &err);
    model_leave(self);
    if (st) return raise_status(st, &err);
    return ndim == 4 ? Py_BuildValue("(LLLL)", (long long)shape[0], (long long)shape[1], (long long)shape[2],
                                     (long long)shape[3])
                     : Py_BuildValue("(LLL)", (long long)shape[0], (long long)shape[1], (long long)shape[2]);
}

/* intermediates(pixels, n, layers: tuple[int], norms: tuple[bool], outs: tuple[buffer], threads). */
static PyObject *Model_intermediates(ModelObject *self, PyObject *args) {
    PyObject *in_obj, *layers_obj, *norms_obj, *outs_obj;
    int n, threads;
    if (!PyArg_ParseTuple(args, "OiO!O!O!i", &in_obj, &n, &PyTuple_Type, &layers_obj, &PyTuple_Type, &norms_obj,
                          &PyTuple_Type, &outs_obj, &threads))
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(layers_obj);
    if (n < 0 || PyTuple_GET_SIZE(outs_obj) != count || PyTuple_GET_SIZE(norms_obj) != count || count > 4096)
        return PyErr_Format(PyExc_ValueError, "intermediates: %zd layers, %zd outputs, batch %d", count,
                            PyTuple_GET_SIZE(outs_obj), n);
    vt_model *m = model_enter(self);
    if (!m) return NULL;
    PyObject *result = NULL;
    int *layers = PyMem_Calloc(count ? count : 1, sizeof *layers);
    int *norms = PyMem_Calloc(count ? count : 1, sizeof *norms);
    float **outs = PyMem_Calloc(count ? count : 1, sizeof *outs);
    Py_buffer *views = PyMem_Calloc(count ? count : 1, sizeof *views);
    Py_ssize_t got = 0;
    Py_buffer in = {0};
    int have_in = 0;
    if (!layers || !norms || !outs || !views) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t s = self->info.image_size;
    if (get_buffer(in_obj, &in, 0, (Py_ssize_t)n * 3 * s * s * 4, "pixels") < 0) goto done;
    have_in = 1;
    for (; got < count; got++) {
        layers[got] = (int)PyLong_AsLong(PyTuple_GET_ITEM(layers_obj, got));
        if (PyErr_Occurred()) goto done;
        if ((norms[got] = PyObject_IsTrue(PyTuple_GET_ITEM(norms_obj, got))) < 0) goto done;
        int ndim;
        int64_t shape[4];
        vt_error err = {0};
        vt_status st = vt_image_layer_shape(m, layers[got], n, &ndim, shape, &err);
        if (st) {
            raise_status(st, &err);
            goto done;
        }
        Py_ssize_t floats = 1;
        for (int d = 0; d < ndim; d++) floats *= shape[d];
        if (get_buffer(PyTuple_GET_ITEM(outs_obj, got), &views[got], 1, floats * 4, "out") < 0) goto done;
        outs[got] = views[got].buf;
    }
    vt_error err = {0};
    vt_status st;
    Py_BEGIN_ALLOW_THREADS
    set_threads(threads);
    st = vt_image_intermediates(m, in.buf, n, layers, norms, (int)count, outs, &err);
    Py_END_ALLOW_THREADS
    if (st) raise_status(st, &err);
    else result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t k = 0; k < got; k++) PyBuffer_Release(&views[k]);
    if (have_in) PyBuffer_Release(&in);
    PyMem_Free(layers);
    PyMem_Free(norms);
    PyMem_Free(outs);
    PyMem_Free(views);
    model_leave(self);
    return result;
}

/* dense_sliding(image [3,H,W], height, width, stride, normalize, out [H/p, W/p, E], threads). */
static PyObject *Model_dense_sliding(ModelObject *self, PyObject *args) {
    PyObject *in_obj, *out_obj;
    int h, w, stride, normalize, threads;
    if (!PyArg_ParseTuple(args, "OiiipOi", &in_obj, &h, &w, &stride, &normalize, &out_obj, &threads)) return NULL;
    if (h < 1 || w < 1 || (long long)h * w > (1LL << 28)) return PyErr_Format(PyExc_ValueError, "image of %dx%d", h, w);
    vt_model *m = model_enter(self);
    if (!m) return NULL;
    Py_buffer in, out;
    if (get_buffer(in_obj, &in, 0, (Py_ssize_t)3 * h * w * 4, "image") < 0) goto fail;
    if (get_buffer(out_obj, &out, 1, -1, "out") < 0) {
        PyBuffer_Release(&in);
        goto fail;
    }
    /* The token stride; a size that is not a multiple of it is refused by the
     * C call before it writes anything, with the rule in its message. */
    int p = self->info.patch_stride;
    Py_ssize_t expect = (Py_ssize_t)(h / p) * (w / p) * self->info.embed_dim * 4;
    vt_error err = {0};
    vt_status st = VT_OK;
    if (h % p == 0 && w % p == 0 && out.len != expect) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        PyErr_Format(PyExc_ValueError, "out: buffer of %zd bytes, expected %zd for a %dx%d grid", out.len, expect,
                     h / p, w / p);
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    set_threads(threads);
    st = vt_dense_embeddings_sliding(m, in.buf, h, w, stride, normalize, out.buf, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    model_leave(self);
    if (st) return raise_status(st, &err);
    Py_RETURN_NONE;
fail:
    model_leave(self);
    return NULL;
}

static PyMethodDef Model_methods[] = {
    {"close", (PyCFunction)Model_close, METH_NOARGS, "Frees the weights (after running calls finish)."},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "The loaded model's numbers as a dict."},
    {"encode_pixels", (PyCFunction)Model_encode_pixels, METH_VARARGS, "encode_pixels(pixels, n, normalize, out, threads)"},
    {"patch_features", (PyCFunction)Model_patch_features, METH_VARARGS, "patch_features(pixels, n, normed, out, threads)"},
    {"encode_tokens", (PyCFunction)Model_encode_tokens, METH_VARARGS, "encode_tokens(ids, n, normalize, out, threads)"},
    {"layer_shape", (PyCFunction)Model_layer_shape, METH_VARARGS, "layer_shape(layer, n) -> shape tuple"},
    {"intermediates", (PyCFunction)Model_intermediates, METH_VARARGS,
     "intermediates(pixels, n, layers: tuple, norm, outs: tuple, threads)"},
    {"dense", (PyCFunction)Model_dense, METH_VARARGS, "dense(pixels, n, normalize, out, threads)"},
    {"dense_sliding", (PyCFunction)Model_dense_sliding, METH_VARARGS,
     "dense_sliding(image, height, width, stride, normalize, out, threads)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"closed", (getter)Model_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vitamin._core.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Model(path, model_name=None, bf16=False, image_size=0, fallback_model_name=None): a loaded checkpoint",
    .tp_new = Model_new,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

/* --------------------------------------------------------- Tokenizer */

typedef struct {
    PyObject_HEAD
    vt_tokenizer *tokenizer;
} TokenizerObject;

static int Tokenizer_init(TokenizerObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"vocab_path", NULL};
    const char *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z", names, &path)) return -1;
    if (self->tokenizer) {
        PyErr_SetString(PyExc_RuntimeError, "Tokenizer.__init__ called twice");
        return -1;
    }
    vt_error err = {0};
    vt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = vt_tokenizer_load(path, &self->tokenizer, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st, &err);
        return -1;
    }
    return 0;
}

static void Tokenizer_dealloc(TokenizerObject *self) {
    vt_tokenizer_free(self->tokenizer);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* tokenize(texts: tuple[str], context_length, out int32 [n, context]). */
static PyObject *Tokenizer_tokenize(TokenizerObject *self, PyObject *args) {
    PyObject *texts, *out_obj;
    int context;
    if (!PyArg_ParseTuple(args, "O!iO", &PyTuple_Type, &texts, &context, &out_obj)) return NULL;
    if (context < 2 || context > 1 << 20) return PyErr_Format(PyExc_ValueError, "context_length %d outside 2..2^20", context);
    Py_ssize_t n = PyTuple_GET_SIZE(texts);
    const char **utf8 = PyMem_Malloc((n ? n : 1) * sizeof *utf8);
    if (!utf8) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(texts, i);
        if (!PyUnicode_Check(t)) {
            PyMem_Free(utf8);
            return PyErr_Format(PyExc_TypeError, "text %zd is %s, expected str", i, Py_TYPE(t)->tp_name);
        }
        Py_ssize_t len;
        utf8[i] = PyUnicode_AsUTF8AndSize(t, &len);
        if (!utf8[i]) {
            PyMem_Free(utf8);
            return NULL;
        }
        if ((Py_ssize_t)strlen(utf8[i]) != len) {
            PyMem_Free(utf8);
            return PyErr_Format(PyExc_ValueError, "text %zd contains a NUL character", i);
        }
    }
    Py_buffer out;
    if (get_buffer(out_obj, &out, 1, n * context * 4, "out") < 0) {
        PyMem_Free(utf8);
        return NULL;
    }
    vt_error err = {0};
    vt_status st = VT_OK;
    Py_ssize_t i = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; i < n; i++)
        if ((st = vt_tokenize(self->tokenizer, utf8[i], context, (int32_t *)out.buf + i * context, &err))) break;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyMem_Free(utf8);
    if (st) {
        char msg[sizeof err.message];
        snprintf(msg, sizeof msg, "text %zd: %s", i, err.message);
        memcpy(err.message, msg, sizeof msg);
        return raise_status(st, &err);
    }
    Py_RETURN_NONE;
}

static PyMethodDef Tokenizer_methods[] = {
    {"tokenize", (PyCFunction)Tokenizer_tokenize, METH_VARARGS, "tokenize(texts: tuple, context_length, out)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TokenizerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vitamin._core.Tokenizer",
    .tp_basicsize = sizeof(TokenizerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tokenizer(vocab_path=None): open_clip's CLIP BPE tokenizer",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tokenizer_init,
    .tp_dealloc = (destructor)Tokenizer_dealloc,
    .tp_methods = Tokenizer_methods,
};

/* ---------------------------------------------------- preprocessing */

/* One image to preprocess: a path, encoded bytes, or RGB8 pixels. */
typedef struct {
    vt_image_source source;
    Py_buffer data;
    int has_data;
    vt_status st;
    vt_error err;
} image_item;

/* preprocess(items, size, out, threads, crop): items a tuple of str (a path),
 * bytes-like (an encoded file) or (pixels, width, height) with uint8 RGB
 * pixels; out float32 [n, 3, size, size]; crop None for the eval transform,
 * or (seed, epoch, first_sample, scale_min, scale_max) for the training one
 * (item i is sample first_sample + i). Decodes in parallel. */
static PyObject *core_preprocess(PyObject *mod, PyObject *args) {
    PyObject *items, *out_obj, *crop_obj = Py_None;
    int size, threads;
    if (!PyArg_ParseTuple(args, "O!iOi|O", &PyTuple_Type, &items, &size, &out_obj, &threads, &crop_obj)) return NULL;
    if (size < 1 || size > 4096) return PyErr_Format(PyExc_ValueError, "image size %d outside 1..4096", size);
    vt_random_crop crop = {0};
    int train = crop_obj != Py_None;
    unsigned long long seed = 0;
    long long epoch = 0, first = 0;
    if (train && !PyArg_ParseTuple(crop_obj, "KLLff", &seed, &epoch, &first, &crop.scale_min, &crop.scale_max))
        return NULL;
    crop.seed = seed;
    crop.epoch = epoch;
    Py_ssize_t n = PyTuple_GET_SIZE(items), ready = 0;
    image_item *item = PyMem_Calloc(n ? n : 1, sizeof *item);
    if (!item) return PyErr_NoMemory();
    PyObject *result = NULL;
    for (; ready < n; ready++) {
        PyObject *it = PyTuple_GET_ITEM(items, ready);
        image_item *s = &item[ready];
        if (PyUnicode_Check(it)) {
            if (!(s->source.path = PyUnicode_AsUTF8(it))) goto done;
        } else if (PyTuple_Check(it)) {
            PyObject *px;
            if (!PyArg_ParseTuple(it, "Oii", &px, &s->source.width, &s->source.height)) goto done;
            if (s->source.width < 1 || s->source.height < 1 || (long long)s->source.width * s->source.height > (1LL << 28)) {
                PyErr_Format(PyExc_ValueError, "image %zd: size %dx%d", ready, s->source.width, s->source.height);
                goto done;
            }
            if (get_buffer(px, &s->data, 0, (Py_ssize_t)s->source.width * s->source.height * 3, "image pixels") < 0)
                goto done;
            s->has_data = 1;
            s->source.rgb = s->data.buf;
        } else {
            if (get_buffer(it, &s->data, 0, -1, "encoded image") < 0) goto done;
            s->has_data = 1;
            s->source.encoded = s->data.buf;
            s->source.encoded_length = s->data.len;
            if (!s->data.len) {
                PyErr_Format(PyExc_ValueError, "image %zd: empty bytes", ready);
                goto done;
            }
        }
    }
    Py_buffer out;
    if (get_buffer(out_obj, &out, 1, n * 3 * (Py_ssize_t)size * size * 4, "out") < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    set_threads(threads);
    size_t image_floats = (size_t)3 * size * size;
#pragma omp parallel for schedule(dynamic, 1)
    for (Py_ssize_t i = 0; i < n; i++) {
        image_item *s = &item[i];
        float *dst = (float *)out.buf + i * image_floats;
        if (train) {
            vt_random_crop c = crop;
            c.sample = first + i;
            s->st = vt_preprocess_image_train(&s->source, &c, size, dst, &s->err);
        } else {
            s->st = vt_preprocess_image(&s->source, size, dst, &s->err);
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    for (Py_ssize_t i = 0; i < n; i++)
        if (item[i].st) {
            vt_error e = item[i].err;
            char msg[sizeof e.message];
            snprintf(msg, sizeof msg, "image %zd: %s", i, item[i].err.message);
            memcpy(e.message, msg, sizeof msg);
            raise_status(item[i].st, &e);
            goto done;
        }
    result = Py_None;
    Py_INCREF(result);
done:
    for (Py_ssize_t i = 0; i < n; i++)  /* calloc'd: unset items have has_data 0 */
        if (item[i].has_data) PyBuffer_Release(&item[i].data);
    PyMem_Free(item);
    return result;
}

/* ----------------------------------------------------- architectures */

static PyObject *core_list_models(PyObject *mod, PyObject *unused) {
    int n = vt_model_count();
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *s = PyUnicode_FromString(vt_model_name(i));
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, s);
    }
    return list;
}

static PyObject *core_describe(PyObject *mod, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    vt_model_info i;
    vt_error err = {0};
    vt_status st = vt_model_describe(name, &i, &err);
    if (st) return raise_status(st, &err);
    return Py_BuildValue("{s:s,s:i,s:i,s:i,s:i,s:i,s:L,s:L}", "name", i.name, "image_size", i.image_size, "embed_dim",
                         i.embed_dim, "context_length", i.context_length, "token_grid", i.token_grid, "width",
                         i.width, "image_params", i.image_params, "text_params", i.text_params);
}

/* resolve(spec, offline, progress, revision) -> (path, model_name, repo). */
static PyObject *core_resolve(PyObject *mod, PyObject *args) {
    const char *spec, *revision = NULL;
    int offline = 0, progress = 0;
    if (!PyArg_ParseTuple(args, "s|ppz", &spec, &offline, &progress, &revision)) return NULL;
    vt_hub_options opt = {.offline = offline, .progress = progress, .revision = revision};
    vt_checkpoint_ref *ref = PyMem_Calloc(1, sizeof *ref);
    if (!ref) return PyErr_NoMemory();
    vt_error err = {0};
    vt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = vt_resolve_checkpoint(spec, &opt, ref, &err);
    Py_END_ALLOW_THREADS
    PyObject *r = st ? raise_status(st, &err) : Py_BuildValue("(sss)", ref->path, ref->model_name, ref->repo);
    PyMem_Free(ref);
    return r;
}

static PyMethodDef core_methods[] = {
    {"preprocess", core_preprocess, METH_VARARGS, "preprocess(items: tuple, size, out, threads, crop=None)"},
    {"list_models", core_list_models, METH_NOARGS, "The architectures' open_clip names."},
    {"describe", core_describe, METH_VARARGS, "describe(name) -> dict of an architecture's numbers"},
    {"resolve", core_resolve, METH_VARARGS, "resolve(spec, offline=False, progress=False, revision=None) -> (path, model_name, repo)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "vitamin._core", "The C engine (libvitamin) behind vitamin.", -1, core_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&TokenizerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m) return NULL;
    Error = PyErr_NewExceptionWithDoc("vitamin.Error", "An error the vitamin.c engine reported.", PyExc_RuntimeError, NULL);
    PyObject *file_bases = Error ? PyTuple_Pack(2, Error, PyExc_OSError) : NULL;
    PyObject *input_bases = Error ? PyTuple_Pack(2, Error, PyExc_ValueError) : NULL;
    FileError = file_bases ? PyErr_NewExceptionWithDoc("vitamin.FileError", "A file could not be read.", file_bases, NULL) : NULL;
    InputError = input_bases ? PyErr_NewExceptionWithDoc("vitamin.InputError",
                                                         "Input the engine refused: a corrupt or unsupported file, a bad shape or value.", input_bases, NULL) : NULL;
    ModelError = Error ? PyErr_NewExceptionWithDoc("vitamin.ModelError", "A model name or configuration the engine does not know.", Error, NULL) : NULL;
    Py_XDECREF(file_bases);
    Py_XDECREF(input_bases);
    if (!Error || !FileError || !InputError || !ModelError) goto fail;
    Py_INCREF(&ModelType);
    Py_INCREF(&TokenizerType);
    if (PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0 ||
        PyModule_AddObject(m, "Tokenizer", (PyObject *)&TokenizerType) < 0 ||
        PyModule_AddObjectRef(m, "Error", Error) < 0 || PyModule_AddObjectRef(m, "FileError", FileError) < 0 ||
        PyModule_AddObjectRef(m, "InputError", InputError) < 0 || PyModule_AddObjectRef(m, "ModelError", ModelError) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
