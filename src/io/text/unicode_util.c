/* Unicode plumbing for the CLIP tokenizer; see unicode_util.h. */
#include "io/text/unicode_util.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- growable strings ---------------------------------------------------- */

void vt_u32_free(vt_u32str *s) {
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int vt_u32_reserve(vt_u32str *s, size_t extra) {
    if (extra <= s->cap - s->n) return 0;
    if (extra > SIZE_MAX / 8 - s->n) return -1;
    size_t cap = s->cap ? s->cap : 16;
    while (cap - s->n < extra) cap *= 2;
    uint32_t *v = realloc(s->v, cap * sizeof *v);
    if (!v) return -1;
    s->v = v;
    s->cap = cap;
    return 0;
}

int vt_u32_push(vt_u32str *s, uint32_t c) {
    if (s->n == s->cap && vt_u32_reserve(s, 1)) return -1;
    s->v[s->n++] = c;
    return 0;
}

int vt_u32_append(vt_u32str *s, const uint32_t *src, size_t n) {
    if (n == 0) return 0;
    if (vt_u32_reserve(s, n)) return -1;
    memcpy(s->v + s->n, src, n * sizeof *src);
    s->n += n;
    return 0;
}

int vt_u32_append_utf8(vt_u32str *s, const char *utf8) {
    size_t ignored;
    return vt_utf8_decode((const uint8_t *)utf8, strlen(utf8), s, &ignored) ? -1 : 0;
}

bool vt_u32_equal(const uint32_t *a, size_t an, const uint32_t *b, size_t bn) {
    return an == bn && (an == 0 || memcmp(a, b, an * sizeof *a) == 0);
}

void vt_u32_move(vt_u32str *dst, vt_u32str *src) {
    free(dst->v);
    *dst = *src;
    src->v = NULL;
    src->n = src->cap = 0;
}

void vt_bytes_free(vt_bytes *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

static int bytes_reserve(vt_bytes *b, size_t extra) {
    if (extra <= b->cap - b->n) return 0;
    if (extra > SIZE_MAX / 4 - b->n) return -1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n < extra) cap *= 2;
    uint8_t *v = realloc(b->v, cap);
    if (!v) return -1;
    b->v = v;
    b->cap = cap;
    return 0;
}

int vt_bytes_push(vt_bytes *b, uint8_t byte) {
    if (b->n == b->cap && bytes_reserve(b, 1)) return -1;
    b->v[b->n++] = byte;
    return 0;
}

int vt_bytes_append(vt_bytes *b, const uint8_t *src, size_t n) {
    if (n == 0) return 0;
    if (bytes_reserve(b, n)) return -1;
    memcpy(b->v + b->n, src, n);
    b->n += n;
    return 0;
}

/* ---- UTF-8 ----------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at src[0..n), or 0 when it is not
 * one (Unicode Table 3-7, which is what CPython's decoder enforces). Writes
 * the code point to *cp. */
static size_t utf8_sequence(const uint8_t *src, size_t n, uint32_t *cp) {
    uint8_t b0 = src[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len || src[1] < lo || src[1] > hi) return 0;
    uint32_t c = b0 & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((src[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (src[i] & 0x3F);
    }
    *cp = c;
    return len;
}

bool vt_utf8_valid(const uint8_t *src, size_t n, size_t *bad_offset) {
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t len = utf8_sequence(src + i, n - i, &c);
        if (len == 0) {
            *bad_offset = i;
            return false;
        }
        i += len;
    }
    return true;
}

int vt_utf8_decode(const uint8_t *src, size_t n, vt_u32str *out, size_t *bad_offset) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t len = utf8_sequence(src + i, n - i, &c);
        if (len == 0) {
            *bad_offset = i;
            return 1;
        }
        out->v[out->n++] = c;
        i += len;
    }
    return 0;
}

/* Python's bytes-regex `$`: at the end, or just before a final b"\n". */
static bool at_dollar(const uint8_t *s, size_t n, size_t pos) {
    return pos == n || (pos == n - 1 && s[pos] == '\n');
}

/* `(\xc0(\x80|$))` at pos: ftfy's Java-style NULL_EXPR. */
static bool null_expr_at(const uint8_t *s, size_t n, size_t pos) {
    return s[pos] == 0xC0 && ((pos + 1 < n && s[pos + 1] == 0x80) || at_dollar(s, n, pos + 1));
}

/* One element `([lo-hi]|$)` of ftfy's CESU8_EXPR / SURROGATE_EXPR: consumes a
 * byte in range, else matches `$` without consuming. */
static bool byte_or_dollar(const uint8_t *s, size_t n, size_t *pos, uint8_t lo, uint8_t hi) {
    if (*pos < n && s[*pos] >= lo && s[*pos] <= hi) {
        (*pos)++;
        return true;
    }
    return at_dollar(s, n, *pos);
}

/* CESU8_EXPR: \xed([\xa0-\xaf]|$)([\x80-\xbf]|$)(\xed|$)([\xb0-\xbf]|$)([\x80-\xbf]|$) */
static bool cesu8_expr_at(const uint8_t *s, size_t n, size_t pos) {
    if (s[pos] != 0xED) return false;
    size_t p = pos + 1;
    return byte_or_dollar(s, n, &p, 0xA0, 0xAF) && byte_or_dollar(s, n, &p, 0x80, 0xBF) &&
           byte_or_dollar(s, n, &p, 0xED, 0xED) && byte_or_dollar(s, n, &p, 0xB0, 0xBF) &&
           byte_or_dollar(s, n, &p, 0x80, 0xBF);
}

/* SURROGATE_EXPR: \xed([\xa0-\xbf]|$)([\x80-\xbf]|$) */
static bool surrogate_expr_at(const uint8_t *s, size_t n, size_t pos) {
    if (s[pos] != 0xED) return false;
    size_t p = pos + 1;
    return byte_or_dollar(s, n, &p, 0xA0, 0xBF) && byte_or_dollar(s, n, &p, 0x80, 0xBF);
}

static bool special_bytes_at(const uint8_t *s, size_t n, size_t pos) {
    return null_expr_at(s, n, pos) || cesu8_expr_at(s, n, pos) || surrogate_expr_at(s, n, pos);
}

/* Strict decode of s[0..n) appended to out: 0, -1 (memory) or 1 (invalid). */
static int decode_strict_piece(const uint8_t *s, size_t n, vt_u32str *out) {
    size_t ignored;
    return vt_utf8_decode(s, n, out, &ignored);
}

/* Mirrors ftfy.bad_codecs.utf8_variants.IncrementalDecoder._buffer_decode with
 * final=True and errors='strict': standard UTF-8 up to each "special" byte
 * position, then a Java NUL (2 bytes), a CESU-8 pair (6 bytes) or - when the
 * 0xED sequence is not CESU-8 - three bytes handed to the standard decoder
 * with final=False (which, for three bytes, either decodes one character or
 * raises). */
int vt_utf8_variants_decode(const uint8_t *s, size_t n, vt_u32str *out) {
    size_t pos = 0;
    while (pos < n) {
        size_t special = pos;
        while (special < n && !special_bytes_at(s, n, special)) special++;
        if (special > pos) {
            int rc = decode_strict_piece(s + pos, special - pos, out);
            if (rc) return rc;
            pos = special;
            continue;
        }
        const uint8_t *in = s + pos;
        size_t len = n - pos;
        if (in[0] == 0xC0) {
            if (len < 2) return 1; /* the superclass raises on a lone C0 */
            if (vt_u32_push(out, 0)) return -1;
            pos += 2;
        } else if (len < 6) {
            return decode_strict_piece(in, len, out) ? 1 : 0;
        } else if (cesu8_expr_at(in, len, 0)) {
            uint32_t cp = ((uint32_t)(in[1] & 0x0F) << 16) + ((uint32_t)(in[2] & 0x3F) << 10) +
                          ((uint32_t)(in[4] & 0x0F) << 6) + (in[5] & 0x3F) + 0x10000;
            if (vt_u32_push(out, cp)) return -1;
            pos += 6;
        } else {
            int rc = decode_strict_piece(in, 3, out);
            if (rc) return rc;
            pos += 3;
        }
    }
    return 0;
}

size_t vt_utf8_encode_char(uint32_t c, uint8_t out[4]) {
    if (c < 0x80) {
        out[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (uint8_t)(0xC0 | (c >> 6));
        out[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (c >> 12));
        out[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (c >> 18));
    out[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

int vt_utf8_encode_cp(vt_bytes *b, uint32_t c) {
    uint8_t buf[4];
    return vt_bytes_append(b, buf, vt_utf8_encode_char(c, buf));
}

int vt_utf8_encode(vt_bytes *b, const uint32_t *s, size_t n) {
    if (bytes_reserve(b, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (vt_utf8_encode_cp(b, s[i])) return -1;
    return 0;
}

/* ---- table look-ups -------------------------------------------------------- */

bool vt_in_ranges(const vt_cp_range *r, size_t count, uint32_t c) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[mid].lo) hi = mid;
        else if (c > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

const vt_cp_map *vt_find_cp_map(const vt_cp_map *map, size_t count, uint32_t c) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < map[mid].cp) hi = mid;
        else if (c > map[mid].cp) lo = mid + 1;
        else return &map[mid];
    }
    return NULL;
}

/* strcmp-ordering of name[0..len) against a NUL-terminated string. */
static int compare_name(const char *name, size_t len, const char *key) {
    size_t klen = strlen(key);
    int c = memcmp(name, key, len < klen ? len : klen);
    if (c) return c;
    return len < klen ? -1 : len > klen;
}

const vt_entity *vt_find_entity(const vt_entity *table, size_t count, const char *name,
                                size_t len) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_name(name, len, table[mid].name);
        if (c < 0) hi = mid;
        else if (c > 0) lo = mid + 1;
        else return &table[mid];
    }
    return NULL;
}

/* ---- Python str semantics -------------------------------------------------- */

bool vt_py_isspace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return vt_in_ranges(vt_gen_py_space, vt_gen_py_space_count, c);
}

static bool py_case_ignorable(uint32_t c) {
    return vt_in_ranges(vt_gen_py_case_ignorable, vt_gen_py_case_ignorable_count, c);
}

static bool py_cased(uint32_t c) {
    return vt_in_ranges(vt_gen_py_cased, vt_gen_py_cased_count, c);
}

/* CPython unicodeobject.c handle_capital_sigma: U+03A3 lowers to final sigma
 * when preceded by a cased letter (skipping case-ignorables) and not followed
 * by one. Each scan stops at the nearest non-ignorable character, so over a
 * whole string the scans stay linear. */
static uint32_t lower_capital_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && py_case_ignorable(s[j - 1])) j--;
    bool final_sigma = j > 0 && py_cased(s[j - 1]);
    if (final_sigma && i + 1 < n) {
        size_t k = i + 1;
        while (k < n && py_case_ignorable(s[k])) k++;
        final_sigma = k == n || !py_cased(s[k]);
    }
    return final_sigma ? 0x3C2 : 0x3C3;
}

int vt_py_lower(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c < 0x80) {
            if (vt_u32_push(out, (c >= 'A' && c <= 'Z') ? c + 32 : c)) return -1;
        } else if (c == 0x3A3) {
            if (vt_u32_push(out, lower_capital_sigma(s, n, i))) return -1;
        } else {
            const vt_cp_map *m = vt_find_cp_map(vt_gen_py_lower, vt_gen_py_lower_count, c);
            int rc = m ? vt_u32_append_utf8(out, m->utf8) : vt_u32_push(out, c);
            if (rc) return -1;
        }
    }
    return 0;
}

/* ---- NFC ------------------------------------------------------------------- */

static int ccc_of(int32_t c) {
    return utf8proc_get_property(c)->combining_class;
}

/* Canonical ordering (a stable sort by combining class of every run of
 * non-starters). A merge sort, so long runs of combining marks cost
 * O(n log n) rather than the insertion sort's O(n^2). */
static void sort_run_by_ccc(int32_t *run, int *keys, size_t n, int32_t *tmp, int *tmpkeys) {
    if (n < 2) return;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            int32_t c = run[i];
            int k = keys[i];
            size_t j = i;
            for (; j > 0 && keys[j - 1] > k; j--) {
                run[j] = run[j - 1];
                keys[j] = keys[j - 1];
            }
            run[j] = c;
            keys[j] = k;
        }
        return;
    }
    size_t half = n / 2;
    sort_run_by_ccc(run, keys, half, tmp, tmpkeys);
    sort_run_by_ccc(run + half, keys + half, n - half, tmp, tmpkeys);
    size_t a = 0, b = half, o = 0;
    while (a < half && b < n) {
        if (keys[b] < keys[a]) {
            tmp[o] = run[b];
            tmpkeys[o++] = keys[b++];
        } else {
            tmp[o] = run[a];
            tmpkeys[o++] = keys[a++];
        }
    }
    while (a < half) {
        tmp[o] = run[a];
        tmpkeys[o++] = keys[a++];
    }
    while (b < n) {
        tmp[o] = run[b];
        tmpkeys[o++] = keys[b++];
    }
    memcpy(run, tmp, n * sizeof *run);
    memcpy(keys, tmpkeys, n * sizeof *keys);
}

static int canonical_order(int32_t *buf, size_t n) {
    int *keys = malloc((n ? n : 1) * sizeof *keys);
    int *tmpkeys = malloc((n ? n : 1) * sizeof *tmpkeys);
    int32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!keys || !tmpkeys || !tmp) {
        free(keys);
        free(tmpkeys);
        free(tmp);
        return -1;
    }
    for (size_t i = 0; i < n; i++) keys[i] = ccc_of(buf[i]);
    for (size_t i = 0; i < n;) {
        if (keys[i] == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && keys[j] != 0) j++;
        sort_run_by_ccc(buf + i, keys + i, j - i, tmp, tmpkeys);
        i = j;
    }
    free(keys);
    free(tmpkeys);
    free(tmp);
    return 0;
}

/* NFC of a piece that contains no inert code point: canonical decomposition
 * (utf8proc_decompose_char, which also splits Hangul), our canonical ordering,
 * then utf8proc's canonical composition (UTF8PROC_STABLE makes it honour the
 * composition exclusions, as utf8proc_NFC does). */
static int nfc_piece(const uint32_t *s, size_t n, vt_u32str *out) {
    const utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    size_t cap = n * 4 + 4, len = 0; /* a canonical decomposition is at most 4 long */
    int32_t *buf = malloc(cap * sizeof *buf);
    if (!buf) return -1;
    for (size_t i = 0; i < n; i++) {
        int boundclass = UTF8PROC_BOUNDCLASS_START;
        utf8proc_ssize_t k =
            utf8proc_decompose_char((int32_t)s[i], buf + len, (utf8proc_ssize_t)(cap - len), opts,
                                    &boundclass);
        if (k < 0 || (size_t)k > cap - len) { /* cannot happen for valid code points */
            free(buf);
            return -1;
        }
        len += (size_t)k;
    }
    if (canonical_order(buf, len)) {
        free(buf);
        return -1;
    }
    utf8proc_ssize_t m = utf8proc_normalize_utf32(buf, (utf8proc_ssize_t)len, opts);
    int rc = m < 0 ? -1 : vt_u32_reserve(out, (size_t)m);
    if (rc == 0)
        for (utf8proc_ssize_t i = 0; i < m; i++) out->v[out->n++] = (uint32_t)buf[i];
    free(buf);
    return rc;
}

/* Every code point below U+0300 is NFC-stable and a starter that composes
 * with nothing before it, so such a run can be copied unchanged. */
static bool trivially_nfc(uint32_t c) {
    return c < 0x300;
}

/* Unicode 14 (CPython 3.11) does not know code points the linked utf8proc may
 * have assigned since; CPython treats them as starters without decomposition
 * or compositions, so NFC never reaches across them. */
static bool inert_for_python(uint32_t c) {
    return c >= 0x300 && vt_in_ranges(vt_gen_py_unassigned, vt_gen_py_unassigned_count, c);
}

int vt_nfc(const uint32_t *s, size_t n, vt_u32str *out) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && trivially_nfc(s[j])) j++;
        /* a trivially-NFC char followed by a combining mark may compose with
         * it, so the last one joins the non-trivial piece */
        if (j < n && j > i && !inert_for_python(s[j])) j--;
        if (vt_u32_append(out, s + i, j - i)) return -1;
        i = j;
        if (i >= n) break;
        if (inert_for_python(s[i])) {
            if (vt_u32_push(out, s[i])) return -1;
            i++;
            continue;
        }
        /* a piece runs to the next inert code point, or to a trivially-NFC
         * starter that is followed by another one (nothing can combine across
         * that boundary) */
        j = i + 1;
        while (j < n && !inert_for_python(s[j]) &&
               !(trivially_nfc(s[j]) && (j + 1 >= n || trivially_nfc(s[j + 1]))))
            j++;
        if (nfc_piece(s + i, j - i, out)) return -1;
        i = j;
    }
    return 0;
}
