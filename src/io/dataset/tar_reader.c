/* WebDataset shard indexing (see tar_reader.h): scans tar headers, seeks over
 * member data, groups members into samples the way webdataset does. */
#include "io/dataset/tar_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/grow.h"

#define TAR_BLOCK 512
/* Long-name ('L') and pax ('x') records hold one path or a few keywords;
 * anything larger is not a real archive, and reading it would only cost memory. */
#define TAR_MAX_META_RECORD (1u << 20)

/* ------------------------------------------------------------------------- */
/* Header fields                                                              */
/* ------------------------------------------------------------------------- */

/* A numeric header field: octal digits (leading spaces, then NUL or space
 * terminated), or GNU base-256 when the top bit of the first byte is set.
 * Returns 0 for a malformed field or a value that needs more than 63 bits. */
static int parse_number(const uint8_t *field, size_t width, uint64_t *value) {
    uint64_t v = 0;
    if (field[0] & 0x80) {
        if (field[0] != 0x80) return 0; /* negative, or too large for us */
        for (size_t i = 1; i < width; i++) {
            if (v >> 55) return 0;
            v = (v << 8) | field[i];
        }
        *value = v;
        return 1;
    }
    size_t i = 0;
    while (i < width && field[i] == ' ') i++;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++) {
        if (v >> 60) return 0;
        v = v * 8 + (uint64_t)(field[i] - '0');
    }
    /* Python's tarfile (nti) accepts an all-NUL or all-space field as 0. */
    for (; i < width; i++)
        if (field[i] != ' ' && field[i] != '\0') return 0;
    *value = v;
    return 1;
}

/* The header checksum: the sum of all 512 bytes with the checksum field read
 * as spaces. Old tars summed signed chars, so either sum is accepted (as
 * Python's tarfile does). */
static int checksum_ok(const uint8_t *block) {
    uint64_t stored;
    if (!parse_number(block + 148, 8, &stored)) return 0;
    long long unsigned_sum = 0, signed_sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) {
        int in_field = i >= 148 && i < 156;
        unsigned char b = in_field ? ' ' : block[i];
        unsigned_sum += b;
        signed_sum += (signed char)b;
    }
    return (long long)stored == unsigned_sum || (long long)stored == signed_sum;
}

static int all_zero(const uint8_t *block) {
    for (int i = 0; i < TAR_BLOCK; i++)
        if (block[i]) return 0;
    return 1;
}

/* Copies a NUL-padded field (not necessarily terminated) into out. */
static size_t field_string(const uint8_t *field, size_t width, char *out) {
    size_t n = 0;
    while (n < width && field[n]) n++;
    memcpy(out, field, n);
    out[n] = '\0';
    return n;
}

/* ------------------------------------------------------------------------- */
/* Sample grouping (webdataset's base_plus_ext + group_by_keys)               */
/* ------------------------------------------------------------------------- */

enum { IMG_JPG, IMG_PNG, IMG_JPEG, IMG_WEBP, IMG_KINDS };
static const char *const IMAGE_SUFFIXES[IMG_KINDS] = {"jpg", "png", "jpeg", "webp"};

typedef struct {
    uint64_t offset, size;
    char *name;
    int present;
} member_ref;

typedef struct {
    char *key;                 /* NULL: no open sample */
    char **suffixes;           /* every suffix seen in this sample */
    size_t suffix_count, suffix_capacity;
    member_ref images[IMG_KINDS];
    member_ref text;
} sample_group;

static void group_clear(sample_group *g) {
    free(g->key);
    g->key = NULL;
    for (size_t i = 0; i < g->suffix_count; i++) free(g->suffixes[i]);
    g->suffix_count = 0;
    for (int k = 0; k < IMG_KINDS; k++) {
        free(g->images[k].name);
        g->images[k] = (member_ref){0};
    }
    free(g->text.name);
    g->text = (member_ref){0};
}

static void group_free(sample_group *g) {
    group_clear(g);
    free(g->suffixes);
}

/* webdataset's base_plus_ext regex, ^((?:.*[/]|)[^.]+)[.]([^/]*)$, as explicit rules: the dot
 * must be in the basename; normally it is the basename's first dot, but a
 * basename starting with a dot borrows the last directory (if it has no dot):
 * "d/.x.jpg" has key "d/" and suffix "x.jpg". Returns 0 for no match. */
static int split_key(const char *name, size_t *key_len, const char **suffix) {
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strchr(base, '.');
    if (!dot) return 0;
    if (dot == base) {
        if (!slash) return 0; /* ".x.jpg": [^.]+ has nothing to match */
        const char *dir_start = slash;
        while (dir_start > name && dir_start[-1] != '/') dir_start--;
        for (const char *p = dir_start; p < slash; p++)
            if (*p == '.') return 0;
    }
    *key_len = (size_t)(dot - name);
    *suffix = dot + 1;
    return 1;
}

/* webdataset skips "__key__"-style metadata members at the top level. */
static int is_meta_member(const char *name) {
    size_t n = strlen(name);
    return !strchr(name, '/') && n >= 4 && !strncmp(name, "__", 2) && !strcmp(name + n - 2, "__");
}

static vt_status push_name(tar_index *index, const char *name, uint32_t *offset, vt_error *err) {
    size_t n = strlen(name) + 1;
    if (index->names_size + n > UINT32_MAX)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "more than 4 GiB of member names in one shard");
    if (!vt_grow_array((void **)&index->names, &index->names_capacity, index->names_size + n - 1, 1))
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for tar member names");
    memcpy(index->names + index->names_size, name, n);
    *offset = (uint32_t)index->names_size;
    index->names_size += n;
    return VT_OK;
}

/* Ends the open sample: kept if it has a caption and an image. */
static vt_status group_flush(sample_group *g, tar_index *index, vt_error *err) {
    vt_status st = VT_OK;
    const member_ref *image = NULL;
    for (int k = 0; k < IMG_KINDS && !image; k++)
        if (g->images[k].present) image = &g->images[k];
    if (g->key && image && g->text.present) {
        tar_sample s = {image->offset, image->size, g->text.offset, g->text.size, 0};
        st = push_name(index, image->name, &s.name_offset, err);
        if (st == VT_OK && !vt_grow_array((void **)&index->samples, &index->capacity, index->count,
                                          sizeof *index->samples))
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory indexing tar samples");
        if (st == VT_OK) index->samples[index->count++] = s;
    }
    group_clear(g);
    return st;
}

static int group_has_suffix(const sample_group *g, const char *suffix) {
    for (size_t i = 0; i < g->suffix_count; i++)
        if (!strcmp(g->suffixes[i], suffix)) return 1;
    return 0;
}

static vt_status set_member(member_ref *ref, const char *name, uint64_t offset, uint64_t size,
                            vt_error *err) {
    char *copy = strdup(name);
    if (!copy) return vt_fail(err, VT_ERR_NOMEM, "out of memory indexing tar members");
    free(ref->name);
    *ref = (member_ref){offset, size, copy, 1};
    return VT_OK;
}

/* One regular member: starts a new sample on a new key or a repeated suffix. */
static vt_status group_add(sample_group *g, tar_index *index, const char *name, uint64_t offset,
                           uint64_t size, vt_error *err) {
    size_t key_len;
    const char *raw_suffix;
    if (is_meta_member(name) || !split_key(name, &key_len, &raw_suffix)) return VT_OK;
    char *suffix = strdup(raw_suffix);
    if (!suffix) return vt_fail(err, VT_ERR_NOMEM, "out of memory indexing tar members");
    for (char *p = suffix; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');

    vt_status st = VT_OK;
    int same_key = g->key && strlen(g->key) == key_len && !strncmp(g->key, name, key_len);
    if (!same_key || group_has_suffix(g, suffix)) {
        st = group_flush(g, index, err);
        if (st == VT_OK && !(g->key = strndup(name, key_len)))
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory indexing tar members");
    }
    if (st == VT_OK && !vt_grow_array((void **)&g->suffixes, &g->suffix_capacity, g->suffix_count,
                                      sizeof *g->suffixes))
        st = vt_fail(err, VT_ERR_NOMEM, "out of memory indexing tar members");
    if (st != VT_OK) {
        free(suffix);
        return st;
    }
    g->suffixes[g->suffix_count++] = suffix;
    if (!strcmp(suffix, "txt")) return set_member(&g->text, name, offset, size, err);
    for (int k = 0; k < IMG_KINDS; k++)
        if (!strcmp(suffix, IMAGE_SUFFIXES[k])) return set_member(&g->images[k], name, offset, size, err);
    return VT_OK;
}

/* ------------------------------------------------------------------------- */
/* Header scan                                                                */
/* ------------------------------------------------------------------------- */

typedef struct {
    tar_read_at read;
    void *context;
    uint64_t file_size;
    const char *label;
} tar_source;

static vt_status read_exact(const tar_source *src, uint64_t offset, void *buffer, size_t size,
                            vt_error *err) {
    long long got = src->read(src->context, offset, buffer, size);
    if (got < 0)
        return vt_fail(err, VT_ERR_IO, "%s: read error at byte %llu: %s", src->label,
                       (unsigned long long)offset, strerror(errno));
    if ((size_t)got != size)
        return vt_fail(err, VT_ERR_FORMAT, "%s: truncated tar (ends inside the data at byte %llu)",
                       src->label, (unsigned long long)(offset + (uint64_t)got));
    return VT_OK;
}

/* Reads a metadata record's data as a NUL-terminated string (malloc'd). */
static vt_status read_record(const tar_source *src, uint64_t offset, uint64_t size, char **out,
                             vt_error *err) {
    if (size > TAR_MAX_META_RECORD)
        return vt_fail(err, VT_ERR_FORMAT, "%s: %llu-byte long-name/pax record at byte %llu (at most %u allowed)",
                       src->label, (unsigned long long)size, (unsigned long long)offset, TAR_MAX_META_RECORD);
    char *data = malloc((size_t)size + 1);
    if (!data) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading a tar record");
    vt_status st = read_exact(src, offset, data, (size_t)size, err);
    if (st != VT_OK) {
        free(data);
        return st;
    }
    data[size] = '\0';
    *out = data;
    return VT_OK;
}

/* Pax extended header records "LEN key=value\n": takes path and size. A
 * malformed record ends the parse (Python's tarfile raises; we keep what we
 * have, since neither key is required). */
static void parse_pax(const char *data, size_t size, char **path, uint64_t *pax_size, int *has_size) {
    size_t pos = 0;
    while (pos < size) {
        size_t len = 0, i = pos;
        while (i < size && data[i] >= '0' && data[i] <= '9') {
            len = len * 10 + (size_t)(data[i++] - '0');
            if (len > size) return;
        }
        if (i >= size || data[i] != ' ' || len == 0 || len > size - pos) return;
        const char *rec = data + i + 1, *end = data + pos + len; /* end points at the '\n' */
        if (end <= rec || end[-1] != '\n') return;
        const char *eq = memchr(rec, '=', (size_t)(end - 1 - rec));
        if (eq) {
            size_t key_len = (size_t)(eq - rec), value_len = (size_t)(end - 1 - eq - 1);
            if (key_len == 4 && !memcmp(rec, "path", 4)) {
                char *copy = strndup(eq + 1, value_len);
                if (copy) {
                    free(*path);
                    *path = copy;
                }
            } else if (key_len == 4 && !memcmp(rec, "size", 4)) {
                uint64_t v = 0;
                int ok = value_len > 0 && value_len < 19;
                for (size_t k = 0; ok && k < value_len; k++) {
                    char c = eq[1 + k];
                    if (c < '0' || c > '9') ok = 0;
                    else v = v * 10 + (uint64_t)(c - '0');
                }
                if (ok) {
                    *pax_size = v;
                    *has_size = 1;
                }
            }
        }
        pos += len;
    }
}

vt_status tar_index_append(tar_read_at read, void *context, uint64_t file_size, const char *name,
                           tar_index *index, vt_error *err) {
    tar_source src = {read, context, file_size, name ? name : "tar"};
    sample_group group = {0};
    char *long_name = NULL; /* from a GNU 'L' or pax 'x' record, for the next member */
    uint64_t pax_size = 0;
    int has_pax_size = 0;
    vt_status st = VT_OK;
    uint64_t offset = 0;
    uint8_t block[TAR_BLOCK];
    char member_name[256 + 1 + 155 + 1];

    while (st == VT_OK && offset < file_size) {
        if (file_size - offset < TAR_BLOCK) {
            st = vt_fail(err, VT_ERR_FORMAT, "%s: truncated tar (%llu stray bytes after the last member at byte %llu)",
                         src.label, (unsigned long long)(file_size - offset), (unsigned long long)offset);
            break;
        }
        if ((st = read_exact(&src, offset, block, TAR_BLOCK, err)) != VT_OK) break;
        if (all_zero(block)) break; /* end-of-archive marker */
        if (!checksum_ok(block)) {
            st = vt_fail(err, VT_ERR_FORMAT, "%s: not a tar file, or corrupt: bad header checksum at byte %llu",
                         src.label, (unsigned long long)offset);
            break;
        }
        uint64_t size;
        if (!parse_number(block + 124, 12, &size)) {
            st = vt_fail(err, VT_ERR_FORMAT, "%s: corrupt tar header at byte %llu (size field is not a number)",
                         src.label, (unsigned long long)offset);
            break;
        }
        char type = (char)block[156];
        int regular = type == '0' || type == '\0' || type == '7';
        if (regular && has_pax_size) size = pax_size;
        uint64_t data_offset = offset + TAR_BLOCK;
        if (size > file_size - data_offset) {
            field_string(block, 100, member_name);
            st = vt_fail(err, VT_ERR_FORMAT,
                         "%s: truncated tar: member '%s' needs %llu bytes at byte %llu but the file has %llu; "
                         "re-create or re-download the shard",
                         src.label, long_name ? long_name : member_name, (unsigned long long)size,
                         (unsigned long long)data_offset, (unsigned long long)file_size);
            break;
        }
        if (type == 'L' || type == 'x') {
            char *record = NULL;
            if ((st = read_record(&src, data_offset, size, &record, err)) != VT_OK) break;
            if (type == 'L') {
                free(long_name);
                long_name = record; /* NUL-terminated at its first NUL */
            } else {
                parse_pax(record, (size_t)size, &long_name, &pax_size, &has_pax_size);
                free(record);
            }
        } else if (type == 'K' || type == 'g') {
            /* long link name / global pax header: nothing we use */
        } else {
            if (regular) {
                const char *member = long_name;
                if (!member) {
                    /* ustar: prefix "/" name (Python's tarfile applies a
                     * non-empty prefix for every non-GNU record type). */
                    char prefix[156], base[101];
                    size_t prefix_len = field_string(block + 345, 155, prefix);
                    field_string(block, 100, base);
                    if (prefix_len) snprintf(member_name, sizeof member_name, "%s/%s", prefix, base);
                    else snprintf(member_name, sizeof member_name, "%s", base);
                    member = member_name;
                }
                size_t len = strlen(member);
                /* V7 tars mark directories as regular files named "dir/". */
                if (len && member[len - 1] != '/') st = group_add(&group, index, member, data_offset, size, err);
            }
            free(long_name);
            long_name = NULL;
            has_pax_size = 0;
        }
        uint64_t padded = size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
        offset = data_offset + padded;
    }
    if (st == VT_OK) st = group_flush(&group, index, err);
    group_free(&group);
    free(long_name);
    return st;
}

/* ------------------------------------------------------------------------- */
/* Files                                                                      */
/* ------------------------------------------------------------------------- */

static long long read_file_at(void *context, uint64_t offset, void *buffer, size_t size) {
    int fd = *(int *)context;
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, (char *)buffer + done, size - done, (off_t)(offset + done));
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return (long long)done;
}

vt_status tar_index_shard(const char *path, tar_index *index, vt_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vt_fail(err, VT_ERR_IO, "cannot open shard %s: %s; check the --train-data path and brace range",
                       path, strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        return vt_fail(err, VT_ERR_IO, "shard %s is not a regular file", path);
    }
    size_t before = index->count;
    vt_status st = tar_index_append(read_file_at, &fd, (uint64_t)info.st_size, path, index, err);
    close(fd);
    if (st == VT_OK && index->count == before)
        st = vt_fail(err, VT_ERR_FORMAT,
                     "shard %s holds no samples: a sample is a .txt caption plus a .jpg/.png/.jpeg/.webp "
                     "image sharing one key (e.g. 000001.txt + 000001.jpg)",
                     path);
    return st;
}

void tar_index_free(tar_index *index) {
    if (!index) return;
    free(index->samples);
    free(index->names);
    memset(index, 0, sizeof *index);
}
