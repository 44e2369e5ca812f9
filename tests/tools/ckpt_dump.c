/* ckpt_dump: prints a checkpoint's tensors for the Python tests.
 *
 *   ckpt_dump FILE                  one line per tensor, in file order:
 *                                   name TAB dtype TAB d0,d1,... TAB sum TAB first
 *                                   (sum and first value as doubles, %.17g;
 *                                   an empty shape for 0-d, "nan" first for no elements)
 *   ckpt_dump --verify FILE         also checks every stored CRC-32 first
 *   ckpt_dump --raw FILE NAME OUT   writes the raw contiguous bytes of one tensor
 *
 * Exits 1 with the library's message on stderr on any failure. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/checkpoint/checkpoint.h"

/* Converts element i of any dtype to double (f16/bf16 expanded exactly). */
static double element_as_double(const ckpt_tensor *t, int64_t i) {
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * vt_dtype_size(t->dtype);
    switch (t->dtype) {
    case VT_DTYPE_F32: { float v; memcpy(&v, p, 4); return v; }
    case VT_DTYPE_F64: { double v; memcpy(&v, p, 8); return v; }
    case VT_DTYPE_BF16: {
        unsigned int bits = (unsigned int)(p[0] | p[1] << 8) << 16;
        float v;
        memcpy(&v, &bits, 4);
        return v;
    }
    case VT_DTYPE_F16: {
        unsigned int h = (unsigned int)(p[0] | p[1] << 8);
        int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
        double magnitude = exponent == 0    ? ldexp(mantissa, -24)
                           : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                            : ldexp(mantissa + 1024, exponent - 25);
        return (h & 0x8000) ? -magnitude : magnitude;
    }
    case VT_DTYPE_I64: { long long v; memcpy(&v, p, 8); return (double)v; }
    case VT_DTYPE_I32: { int v; memcpy(&v, p, 4); return v; }
    case VT_DTYPE_I16: { short v; memcpy(&v, p, 2); return v; }
    case VT_DTYPE_I8: return (signed char)p[0];
    case VT_DTYPE_U8:
    case VT_DTYPE_BOOL: return p[0];
    }
    return NAN;
}

static void print_tensor(const ckpt_tensor *t) {
    double sum = 0;
    for (int64_t i = 0; i < t->numel; i++) sum += element_as_double(t, i);
    printf("%s\t%s\t", t->name, vt_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
    printf("\t%.17g\t%.17g\n", sum, t->numel ? element_as_double(t, 0) : NAN);
}

static int write_raw(const ckpt_file *file, const char *name, const char *out_path) {
    const ckpt_tensor *t = ckpt_find(file, name);
    if (!t) {
        fprintf(stderr, "ckpt_dump: no tensor named '%s'\n", name);
        return 1;
    }
    FILE *out = fopen(out_path, "wb");
    size_t bytes = (size_t)t->numel * vt_dtype_size(t->dtype);
    if (!out || fwrite(t->data, 1, bytes, out) != bytes || fclose(out) != 0) {
        fprintf(stderr, "ckpt_dump: cannot write %s\n", out_path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int raw = argc == 5 && strcmp(argv[1], "--raw") == 0;
    int verify = argc == 3 && strcmp(argv[1], "--verify") == 0;
    if (!raw && !verify && argc != 2) {
        fprintf(stderr, "usage: ckpt_dump [--verify] FILE | ckpt_dump --raw FILE NAME OUT.bin\n");
        return 2;
    }
    const char *path = argc == 2 ? argv[1] : argv[2];
    vt_error err = {0};
    ckpt_file *file;
    if (ckpt_open(path, &file, &err) != VT_OK || (verify && ckpt_verify(file, &err) != VT_OK)) {
        fprintf(stderr, "ckpt_dump: %s\n", err.message);
        return 1;
    }
    int status = 0;
    if (raw) {
        status = write_raw(file, argv[3], argv[4]);
    } else {
        for (size_t i = 0; i < ckpt_count(file); i++) print_tensor(ckpt_at(file, i));
    }
    ckpt_close(file);
    return status;
}
