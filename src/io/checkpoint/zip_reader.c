/* ZIP central-directory reader (see zip_reader.h).
 *
 * Layout reminder (APPNOTE 6.3.x), all little-endian:
 *   [local header + data]...  [central directory]  [ZIP64 EOCD][ZIP64 locator]  EOCD
 * The end-of-central-directory record (EOCD) is found by scanning back from the
 * end over at most its 22 bytes plus a 65535-byte comment. When any of its
 * fields is saturated (0xFFFF / 0xFFFFFFFF), or a ZIP64 locator sits right before
 * it, the ZIP64 record holds the real values; likewise per entry, saturated
 * sizes and offsets live in the "zip64 extended information" extra field.
 * Nothing read from the file is trusted: every offset + length is checked
 * against the buffer before use, with overflow-safe arithmetic. */
#include "io/checkpoint/zip_reader.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"

#define SIG_LOCAL_HEADER 0x04034b50u
#define SIG_CENTRAL_HEADER 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOCATOR 0x07064b50u
#define EOCD_SIZE 22
#define EOCD64_SIZE 56
#define EOCD64_LOCATOR_SIZE 20
#define CENTRAL_HEADER_SIZE 46
#define LOCAL_HEADER_SIZE 30
#define EXTRA_ZIP64 0x0001
#define FLAG_ENCRYPTED 0x0001
#define SATURATED16 0xFFFFu
#define SATURATED32 0xFFFFFFFFu
/* DEFLATE cannot expand more than ~1032:1, so a larger claimed ratio is a lie
 * (and would make us allocate memory the data cannot fill). */
#define DEFLATE_MAX_RATIO 1032u

static uint16_t read_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t read_le64(const uint8_t *p) {
    return (uint64_t)read_le32(p) | (uint64_t)read_le32(p + 4) << 32;
}

/* True if [offset, offset + length) lies inside a buffer of `size` bytes. */
static int range_fits(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

/* ---------------------------------------------------------------- end records */

typedef struct {
    uint64_t entry_count;
    uint64_t directory_offset;
    uint64_t directory_size;
    uint64_t directory_end_limit; /* the directory must end before this offset */
} directory_location;

static int64_t find_eocd(const uint8_t *bytes, size_t size) {
    if (size < EOCD_SIZE) return -1;
    size_t lowest = size - EOCD_SIZE > 65535 ? size - EOCD_SIZE - 65535 : 0;
    for (size_t pos = size - EOCD_SIZE + 1; pos-- > lowest;) {
        /* The comment length must reach exactly to the end of the file; this
         * rejects signatures that happen to appear inside a comment. */
        if (read_le32(bytes + pos) == SIG_EOCD && pos + EOCD_SIZE + read_le16(bytes + pos + 20) == size)
            return (int64_t)pos;
    }
    return -1;
}

static vt_status read_eocd64(const zip_archive *zip, size_t locator_pos, directory_location *where,
                             vt_error *err) {
    const uint8_t *locator = zip->bytes + locator_pos;
    uint64_t record_offset = read_le64(locator + 8);
    if (read_le32(locator + 4) != 0 || read_le32(locator + 16) > 1)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: multi-disk (split) ZIP archives are not supported",
                       zip->label);
    if (!range_fits(record_offset, EOCD64_SIZE, locator_pos))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP64 end-of-central-directory record offset %llu is outside the file "
                       "(file truncated or corrupt?)",
                       zip->label, (unsigned long long)record_offset);
    const uint8_t *record = zip->bytes + record_offset;
    if (read_le32(record) != SIG_EOCD64)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: no ZIP64 end-of-central-directory record at offset %llu (corrupt archive?)",
                       zip->label, (unsigned long long)record_offset);
    if (read_le32(record + 16) != 0 || read_le32(record + 20) != 0)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: multi-disk (split) ZIP archives are not supported",
                       zip->label);
    where->entry_count = read_le64(record + 32);
    where->directory_size = read_le64(record + 40);
    where->directory_offset = read_le64(record + 48);
    where->directory_end_limit = record_offset;
    return VT_OK;
}

static vt_status locate_directory(const zip_archive *zip, directory_location *where, vt_error *err) {
    int64_t found = find_eocd(zip->bytes, zip->size);
    if (found < 0)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP end-of-central-directory record not found in %zu bytes "
                       "(file truncated, or not a zip archive)",
                       zip->label, zip->size);
    size_t eocd_pos = (size_t)found;
    const uint8_t *eocd = zip->bytes + eocd_pos;
    if (eocd_pos >= EOCD64_LOCATOR_SIZE &&
        read_le32(zip->bytes + eocd_pos - EOCD64_LOCATOR_SIZE) == SIG_EOCD64_LOCATOR)
        return read_eocd64(zip, eocd_pos - EOCD64_LOCATOR_SIZE, where, err);
    uint16_t this_disk = read_le16(eocd + 4), directory_disk = read_le16(eocd + 6);
    if (this_disk != 0 || directory_disk != 0)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: multi-disk (split) ZIP archives are not supported",
                       zip->label);
    where->entry_count = read_le16(eocd + 10);
    where->directory_size = read_le32(eocd + 12);
    where->directory_offset = read_le32(eocd + 16);
    where->directory_end_limit = eocd_pos;
    if (where->entry_count == SATURATED16 || where->directory_size == SATURATED32 ||
        where->directory_offset == SATURATED32)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP end record says ZIP64 but the ZIP64 locator is missing (corrupt archive?)",
                       zip->label);
    return VT_OK;
}

/* ---------------------------------------------------------------- entries */

/* Replaces saturated 32-bit fields by the 64-bit values of the zip64 extra
 * field, which lists only the saturated ones, in this fixed order. */
static vt_status apply_zip64_extra(const zip_archive *zip, const uint8_t *extra, size_t extra_length,
                                   uint64_t *uncompressed, uint64_t *compressed,
                                   uint64_t *local_offset, const char *name, vt_error *err) {
    int need_uncompressed = *uncompressed == SATURATED32, need_compressed = *compressed == SATURATED32,
        need_offset = *local_offset == SATURATED32;
    if (!need_uncompressed && !need_compressed && !need_offset) return VT_OK;
    size_t pos = 0;
    while (pos + 4 <= extra_length) {
        uint16_t id = read_le16(extra + pos), length = read_le16(extra + pos + 2);
        const uint8_t *field = extra + pos + 4;
        if (length > extra_length - pos - 4) break;
        if (id == EXTRA_ZIP64) {
            size_t needed = 8u * (size_t)(need_uncompressed + need_compressed + need_offset);
            if (length < needed) break;
            if (need_uncompressed) {
                *uncompressed = read_le64(field);
                field += 8;
            }
            if (need_compressed) {
                *compressed = read_le64(field);
                field += 8;
            }
            if (need_offset) *local_offset = read_le64(field);
            return VT_OK;
        }
        pos += 4u + length;
    }
    return vt_fail(err, VT_ERR_FORMAT,
                   "%s: ZIP entry '%s' needs a zip64 extra field with its 64-bit sizes/offset, "
                   "but none (or a short one) is present (corrupt archive?)",
                   zip->label, name);
}

/* Finds where the entry's bytes start, from its local header. */
static vt_status resolve_data_offset(const zip_archive *zip, zip_entry *entry, uint64_t local_offset,
                                     vt_error *err) {
    if (!range_fits(local_offset, LOCAL_HEADER_SIZE, zip->size) ||
        read_le32(zip->bytes + local_offset) != SIG_LOCAL_HEADER)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP entry '%s': no local header at offset %llu (file truncated or corrupt?)",
                       zip->label, entry->name, (unsigned long long)local_offset);
    const uint8_t *local = zip->bytes + local_offset;
    uint64_t data_offset = local_offset + LOCAL_HEADER_SIZE + read_le16(local + 26) + read_le16(local + 28);
    if (!range_fits(data_offset, entry->compressed_size, zip->size))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP entry '%s' needs %llu bytes at offset %llu but the file has %zu bytes "
                       "(file truncated?)",
                       zip->label, entry->name, (unsigned long long)entry->compressed_size,
                       (unsigned long long)data_offset, zip->size);
    entry->data_offset = data_offset;
    return VT_OK;
}

/* Parses the central header at *pos (inside [*pos, directory_end)) into `entry`
 * and advances *pos past it. */
static vt_status read_central_header(const zip_archive *zip, uint64_t *pos, uint64_t directory_end,
                                     zip_entry *entry, vt_error *err) {
    if (!range_fits(*pos, CENTRAL_HEADER_SIZE, directory_end) ||
        read_le32(zip->bytes + *pos) != SIG_CENTRAL_HEADER)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP central directory entry expected at offset %llu (corrupt archive?)",
                       zip->label, (unsigned long long)*pos);
    const uint8_t *header = zip->bytes + *pos;
    uint16_t flags = read_le16(header + 8);
    size_t name_length = read_le16(header + 28), extra_length = read_le16(header + 30),
           comment_length = read_le16(header + 32);
    uint64_t record_size = CENTRAL_HEADER_SIZE + name_length + extra_length + comment_length;
    if (!range_fits(*pos, record_size, directory_end))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP central directory entry at offset %llu runs past the directory",
                       zip->label, (unsigned long long)*pos);
    const char *raw_name = (const char *)header + CENTRAL_HEADER_SIZE;
    if (memchr(raw_name, '\0', name_length))
        return vt_fail(err, VT_ERR_FORMAT, "%s: ZIP entry name at offset %llu contains a NUL byte",
                       zip->label, (unsigned long long)*pos);
    entry->name = malloc(name_length + 1);
    if (!entry->name) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", zip->label);
    memcpy(entry->name, raw_name, name_length);
    entry->name[name_length] = '\0';
    if (flags & FLAG_ENCRYPTED)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "%s: ZIP entry '%s' is encrypted", zip->label, entry->name);
    entry->method = read_le16(header + 10);
    entry->crc32 = read_le32(header + 16);
    entry->compressed_size = read_le32(header + 20);
    entry->uncompressed_size = read_le32(header + 24);
    uint64_t local_offset = read_le32(header + 42);
    vt_status status = apply_zip64_extra(zip, header + CENTRAL_HEADER_SIZE + name_length, extra_length,
                                         &entry->uncompressed_size, &entry->compressed_size,
                                         &local_offset, entry->name, err);
    if (status != VT_OK) return status;
    if (entry->method == ZIP_METHOD_STORED && entry->compressed_size != entry->uncompressed_size)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: stored ZIP entry '%s' has compressed size %llu != uncompressed size %llu",
                       zip->label, entry->name, (unsigned long long)entry->compressed_size,
                       (unsigned long long)entry->uncompressed_size);
    *pos += record_size;
    return resolve_data_offset(zip, entry, local_offset, err);
}

static int compare_entry_names(const void *a, const void *b) {
    const zip_entry *left = *(const zip_entry *const *)a, *right = *(const zip_entry *const *)b;
    int order = strcmp(left->name, right->name);
    if (order) return order;
    return left < right ? -1 : left > right; /* ties keep directory order */
}

static vt_status read_directory(zip_archive *zip, const directory_location *where, vt_error *err) {
    if (!range_fits(where->directory_offset, where->directory_size, where->directory_end_limit))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP central directory (%llu bytes at offset %llu) lies outside the file "
                       "(file truncated or corrupt?)",
                       zip->label, (unsigned long long)where->directory_size,
                       (unsigned long long)where->directory_offset);
    /* Each header takes at least 46 bytes: this bounds the allocation below by
     * the file size, whatever the claimed count. */
    if (where->entry_count > where->directory_size / CENTRAL_HEADER_SIZE)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP end record claims %llu entries but the central directory has only "
                       "%llu bytes (corrupt archive?)",
                       zip->label, (unsigned long long)where->entry_count,
                       (unsigned long long)where->directory_size);
    size_t count = (size_t)where->entry_count;
    zip->entries = calloc(count ? count : 1, sizeof *zip->entries);
    zip->by_name = malloc((count ? count : 1) * sizeof *zip->by_name);
    if (!zip->entries || !zip->by_name) return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory", zip->label);
    uint64_t pos = where->directory_offset, end = where->directory_offset + where->directory_size;
    for (size_t i = 0; i < count; i++) {
        zip->count = i + 1; /* so zip_close frees a partially read entry */
        vt_status status = read_central_header(zip, &pos, end, &zip->entries[i], err);
        if (status != VT_OK) return status;
        zip->by_name[i] = &zip->entries[i];
    }
    qsort(zip->by_name, count, sizeof *zip->by_name, compare_entry_names);
    return VT_OK;
}

vt_status zip_open(zip_archive *zip, const void *bytes, size_t size, const char *label, vt_error *err) {
    memset(zip, 0, sizeof *zip);
    zip->bytes = bytes;
    zip->size = size;
    zip->label = label ? label : "<zip>";
    if (!bytes && size) return vt_fail(err, VT_ERR_ARGUMENT, "zip_open: NULL buffer");
    directory_location where = {0};
    vt_status status = locate_directory(zip, &where, err);
    if (status == VT_OK) status = read_directory(zip, &where, err);
    if (status != VT_OK) zip_close(zip);
    return status;
}

void zip_close(zip_archive *zip) {
    if (!zip) return;
    for (size_t i = 0; i < zip->count; i++) free(zip->entries[i].name);
    free(zip->entries);
    free(zip->by_name);
    memset(zip, 0, sizeof *zip);
}

const zip_entry *zip_find(const zip_archive *zip, const char *name) {
    /* Lower bound, then step to the last duplicate: like Python's zipfile, a
     * later entry with the same name wins. */
    size_t low = 0, high = zip->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (strcmp(zip->by_name[middle]->name, name) < 0)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == zip->count || strcmp(zip->by_name[low]->name, name) != 0) return NULL;
    while (low + 1 < zip->count && strcmp(zip->by_name[low + 1]->name, name) == 0) low++;
    return zip->by_name[low];
}

/* ---------------------------------------------------------------- data */

static uint32_t crc32_of(const uint8_t *data, uint64_t size) {
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), data, (z_size_t)size);
}

static vt_status check_crc(const zip_archive *zip, const zip_entry *entry, const uint8_t *data,
                           vt_error *err) {
    uint32_t actual = crc32_of(data, entry->uncompressed_size);
    if (actual != entry->crc32)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP entry '%s' is corrupt: CRC-32 is %08x, the directory says %08x",
                       zip->label, entry->name, actual, entry->crc32);
    return VT_OK;
}

/* Inflates a raw DEFLATE stream of known output size into `out`. */
static vt_status inflate_exactly(const zip_archive *zip, const zip_entry *entry, uint8_t *out,
                                 vt_error *err) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK)
        return vt_fail(err, VT_ERR_NOMEM, "%s: zlib inflateInit failed", zip->label);
    const uint8_t *in = zip->bytes + entry->data_offset;
    uint64_t in_left = entry->compressed_size, out_left = entry->uncompressed_size;
    int result = Z_OK;
    stream.next_out = out;
    while (result == Z_OK) {
        /* zlib counts in uInt: feed buffers over 4 GiB in pieces. */
        if (stream.avail_in == 0 && in_left) {
            stream.next_in = (Bytef *)in;
            stream.avail_in = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
            in += stream.avail_in;
            in_left -= stream.avail_in;
        }
        if (stream.avail_out == 0 && out_left) {
            stream.avail_out = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
            out_left -= stream.avail_out;
        }
        result = inflate(&stream, Z_NO_FLUSH);
        if (result == Z_BUF_ERROR && (stream.avail_in || in_left) && (stream.avail_out || out_left))
            result = Z_OK; /* no progress possible this round only */
    }
    int complete = result == Z_STREAM_END && stream.avail_out == 0 && out_left == 0;
    inflateEnd(&stream);
    if (!complete)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP entry '%s': DEFLATE data is corrupt or does not inflate to the %llu "
                       "bytes the directory says",
                       zip->label, entry->name, (unsigned long long)entry->uncompressed_size);
    return check_crc(zip, entry, out, err);
}

vt_status zip_entry_bytes(const zip_archive *zip, const zip_entry *entry, const uint8_t **data,
                          size_t *size, void **owned, vt_error *err) {
    *data = NULL;
    *size = 0;
    *owned = NULL;
    if (entry->method == ZIP_METHOD_STORED) {
        *data = zip->bytes + entry->data_offset;
        *size = (size_t)entry->uncompressed_size;
        return VT_OK;
    }
    if (entry->method != ZIP_METHOD_DEFLATE)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: ZIP entry '%s' uses compression method %u; only stored (0) and deflate "
                       "(8) are supported",
                       zip->label, entry->name, entry->method);
    if (entry->uncompressed_size / DEFLATE_MAX_RATIO > entry->compressed_size + 1 ||
        entry->uncompressed_size > SIZE_MAX - 1)
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: ZIP entry '%s' claims %llu bytes from %llu compressed bytes, more than "
                       "DEFLATE can produce (corrupt archive?)",
                       zip->label, entry->name, (unsigned long long)entry->uncompressed_size,
                       (unsigned long long)entry->compressed_size);
    uint8_t *buffer = malloc(entry->uncompressed_size ? (size_t)entry->uncompressed_size : 1);
    if (!buffer)
        return vt_fail(err, VT_ERR_NOMEM, "%s: out of memory inflating ZIP entry '%s' (%llu bytes)",
                       zip->label, entry->name, (unsigned long long)entry->uncompressed_size);
    vt_status status = inflate_exactly(zip, entry, buffer, err);
    if (status != VT_OK) {
        free(buffer);
        return status;
    }
    *data = buffer;
    *size = (size_t)entry->uncompressed_size;
    *owned = buffer;
    return VT_OK;
}

vt_status zip_entry_verify(const zip_archive *zip, const zip_entry *entry, vt_error *err) {
    const uint8_t *data = NULL;
    size_t size = 0;
    void *owned = NULL;
    vt_status status = zip_entry_bytes(zip, entry, &data, &size, &owned, err);
    if (status != VT_OK) return status;
    if (!owned) status = check_crc(zip, entry, data, err); /* inflating already checked it */
    free(owned);
    return status;
}
