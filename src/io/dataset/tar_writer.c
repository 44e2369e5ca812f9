/* ustar writer (tar_writer.h). */
#include "io/dataset/tar_writer.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

enum { TAR_BLOCK = 512 };

vt_status tar_writer_open(tar_writer *w, const char *path, vt_error *err) {
    return atomic_file_open(&w->file, path, err);
}

static void octal(char *field, size_t width, unsigned long long value) {
    /* width - 1 digits, NUL-terminated, as GNU tar writes them */
    snprintf(field, width, "%0*llo", (int)(width - 1), value);
}

vt_status tar_writer_add(tar_writer *w, const char *name, const void *data, size_t size, vt_error *err) {
    size_t len = strlen(name);
    if (!len || len > 100) return vt_fail(err, VT_ERR_ARGUMENT, "tar member name '%s': 1..100 bytes", name);
    if ((unsigned long long)size >= 077777777777ULL)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "tar member %s: %zu bytes is over ustar's 8 GiB", name, size);
    unsigned char h[TAR_BLOCK];
    memset(h, 0, sizeof h);
    memcpy(h, name, len);
    octal((char *)h + 100, 8, 0644);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);  /* the checksum counts its own field as spaces */
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);  /* six digits, NUL, then the space kept */
    h[155] = ' ';
    static const unsigned char zeros[TAR_BLOCK];
    vt_status st = atomic_file_write(&w->file, h, sizeof h, err);
    if (!st && size) st = atomic_file_write(&w->file, data, size, err);
    if (!st && size % TAR_BLOCK) st = atomic_file_write(&w->file, zeros, TAR_BLOCK - size % TAR_BLOCK, err);
    return st;
}

vt_status tar_writer_commit(tar_writer *w, vt_error *err) {
    static const unsigned char end[2 * TAR_BLOCK];
    vt_status st = atomic_file_write(&w->file, end, sizeof end, err);
    return st ? st : atomic_file_commit(&w->file, err);
}

void tar_writer_discard(tar_writer *w) { atomic_file_discard(&w->file); }
