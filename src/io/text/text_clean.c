/* open_clip's text cleaning (ftfy.fix_text + html.unescape + whitespace +
 * lower) ported to C; see text_clean.h. Every piece cites the Python function
 * it mirrors: ftfy 6.3.1 (ftfy/__init__.py, fixes.py, chardata.py,
 * badness.py, bad_codecs/), CPython 3.11 (html/__init__.py, str methods) and
 * open_clip 3.3.0 (tokenizer.py). Character data comes from the generated
 * tables (scripts/gen_tokenizer_tables.py). */
#include "io/text/text_clean.h"

#include <stdlib.h>
#include <string.h>

/* A fixer maps text to new text appended to `out` (0, or -1 when out of memory). */
typedef int (*vt_fixer)(const uint32_t *s, size_t n, vt_u32str *out);

/* Runs `fix` on *text and replaces *text by the result. */
static int apply_fixer(vt_fixer fix, vt_u32str *text) {
    vt_u32str out = {0};
    if (fix(text->v, text->n, &out)) {
        vt_u32_free(&out);
        return -1;
    }
    vt_u32_move(text, &out);
    return 0;
}

static bool is_ascii_alnum(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_ascii_digit(uint32_t c) {
    return c >= '0' && c <= '9';
}

static bool is_hex_digit(uint32_t c) {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint32_t hex_value(uint32_t c) {
    if (c <= '9') return c - '0';
    return (c | 0x20) - 'a' + 10;
}

static bool contains_cp(const uint32_t *s, size_t n, uint32_t c) {
    for (size_t i = 0; i < n; i++)
        if (s[i] == c) return true;
    return false;
}

/* Copies name[0..n) into buf as ASCII (for table look-ups); false if too long
 * or not ASCII, in which case no table entry can match. */
static bool ascii_name(const uint32_t *name, size_t n, char *buf, size_t bufsize) {
    if (n >= bufsize) return false;
    for (size_t i = 0; i < n; i++) {
        if (name[i] >= 0x80) return false;
        buf[i] = (char)name[i];
    }
    buf[n] = 0;
    return true;
}

/* ========================================================================== */
/* CPython html.unescape                                                      */
/* ========================================================================== */

/* Parses a run of digits in base 10 or 16, saturating above U+10FFFF (CPython
 * uses unbounded ints; every such value maps to U+FFFD anyway). */
static uint32_t parse_charref_number(const uint32_t *digits, size_t n, bool hex) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * (hex ? 16 : 10) + (hex ? hex_value(digits[i]) : digits[i] - '0');
        if (v > 0x110000) v = 0x110000;
    }
    return (uint32_t)v;
}

/* html._replace_charref for a numeric reference: the fix-ups HTML5 mandates. */
static int append_numeric_charref(uint32_t num, vt_u32str *out) {
    const vt_cp_map *fixed =
        vt_find_cp_map(vt_gen_html_invalid_charrefs, vt_gen_html_invalid_charrefs_count, num);
    if (fixed) return vt_u32_append_utf8(out, fixed->utf8);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return vt_u32_push(out, 0xFFFD);
    if (vt_in_ranges(vt_gen_html_invalid_codepoints, vt_gen_html_invalid_codepoints_count, num))
        return 0;
    return vt_u32_push(out, num);
}

/* Length of the html._charref match `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|
 * [^\t\n\f <&#;]{1,32};?)` at s[0] == '&', or 0. */
static size_t charref_match_length(const uint32_t *s, size_t n) {
    size_t i = 1;
    if (i < n && s[i] == '#') {
        if (i + 1 < n && is_ascii_digit(s[i + 1])) {
            i += 1;
            while (i < n && is_ascii_digit(s[i])) i++;
        } else if (i + 2 < n && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex_digit(s[i + 2])) {
            i += 2;
            while (i < n && is_hex_digit(s[i])) i++;
        } else
            return 0;
    } else {
        while (i < n && i <= 32 && !(s[i] == '\t' || s[i] == '\n' || s[i] == '\f' ||
                                     s[i] == ' ' || s[i] == '<' || s[i] == '&' ||
                                     s[i] == '#' || s[i] == ';'))
            i++;
        if (i == 1) return 0;
    }
    if (i < n && s[i] == ';') i++;
    return i;
}

/* html._replace_charref for a named reference `name` (without '&', maybe
 * ending in ';'): exact match, else the longest known prefix (of at least two
 * characters) followed by the rest, else unchanged. */
static int append_named_charref(const uint32_t *name, size_t n, vt_u32str *out) {
    char buf[40];
    /* lengths n, then n-1 down to 2 (no entity name is a single character) */
    for (size_t len = n; len >= 2; len--) {
        if (!ascii_name(name, len, buf, sizeof buf)) continue;
        const vt_entity *e = vt_find_entity(vt_gen_html5_entities, vt_gen_html5_entities_count,
                                            buf, len);
        if (e) {
            if (vt_u32_append_utf8(out, e->utf8)) return -1;
            return vt_u32_append(out, name + len, n - len);
        }
    }
    return vt_u32_push(out, '&') || vt_u32_append(out, name, n) ? -1 : 0;
}

/* html._replace_charref for the match s[0..len). */
static int append_charref(const uint32_t *s, size_t len, vt_u32str *out) {
    if (s[1] == '#') {
        bool hex = s[2] == 'x' || s[2] == 'X';
        size_t start = hex ? 3 : 2, end = len;
        if (s[end - 1] == ';') end--;
        return append_numeric_charref(parse_charref_number(s + start, end - start, hex), out);
    }
    return append_named_charref(s + 1, len - 1, out);
}

int vt_html_unescape(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] == '&' ? charref_match_length(s + i, n - i) : 0;
        if (len == 0) {
            if (vt_u32_push(out, s[i])) return -1;
            i++;
            continue;
        }
        if (append_charref(s + i, len, out)) return -1;
        i += len;
    }
    return 0;
}

/* ========================================================================== */
/* ftfy.fixes.unescape_html                                                   */
/* ========================================================================== */

/* Length of an HTML_ENTITY_RE match `&#?[0-9A-Za-z]{1,24};` at s[0] == '&',
 * or 0. Greedy-then-backtrack cannot find a shorter match: every shorter
 * alphanumeric run is followed by an alphanumeric, not ';'. */
static size_t ftfy_entity_match_length(const uint32_t *s, size_t n) {
    size_t i = 1;
    if (i < n && s[i] == '#') i++;
    size_t start = i;
    while (i < n && is_ascii_alnum(s[i]) && i - start < 25) i++;
    size_t run = i - start;
    if (run < 1 || run > 24 || i >= n || s[i] != ';') return 0;
    return i + 1;
}

/* ftfy.fixes._unescape_fixup: a known entity; or a numeric reference that
 * html.unescape decodes completely (its result must not contain ';', which
 * would mean only part of the reference was consumed); else unchanged. */
static int append_ftfy_entity(const uint32_t *m, size_t len, vt_u32str *out) {
    char buf[32];
    if (ascii_name(m, len, buf, sizeof buf)) {
        const vt_entity *e =
            vt_find_entity(vt_gen_ftfy_entities, vt_gen_ftfy_entities_count, buf, len);
        if (e) return vt_u32_append_utf8(out, e->utf8);
    }
    if (m[1] == '#') {
        vt_u32str decoded = {0};
        if (vt_html_unescape(m, len, &decoded)) {
            vt_u32_free(&decoded);
            return -1;
        }
        bool partial = contains_cp(decoded.v, decoded.n, ';');
        int rc = partial ? vt_u32_append(out, m, len) : vt_u32_append(out, decoded.v, decoded.n);
        vt_u32_free(&decoded);
        return rc;
    }
    return vt_u32_append(out, m, len);
}

static int ftfy_unescape_html(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] == '&' ? ftfy_entity_match_length(s + i, n - i) : 0;
        if (len == 0) {
            if (vt_u32_push(out, s[i])) return -1;
            i++;
            continue;
        }
        if (append_ftfy_entity(s + i, len, out)) return -1;
        i += len;
    }
    return 0;
}

/* ========================================================================== */
/* ftfy.badness.is_bad                                                        */
/* ========================================================================== */

static bool badness_class_has(uint16_t cls, uint32_t c) {
    const vt_class_span *span = &vt_gen_badness_classes[cls];
    return vt_in_ranges(vt_gen_badness_class_ranges + span->offset, span->count, c);
}

/* Does items[k..count) match s at pos? Each item is one character (or `^`);
 * an optional item is tried consumed first, then skipped, like `x?`. */
static bool badness_items_match(const vt_pattern_item *items, size_t k, size_t count,
                                const uint32_t *s, size_t n, size_t pos) {
    if (k == count) return true;
    const vt_pattern_item *it = &items[k];
    if (it->kind == VT_ITEM_START)
        return pos == 0 && badness_items_match(items, k + 1, count, s, n, pos);
    bool one = pos < n && (it->kind == VT_ITEM_ANY_BUT_NEWLINE ? s[pos] != '\n'
                                                               : badness_class_has(it->cls, s[pos]));
    if (one && badness_items_match(items, k + 1, count, s, n, pos + 1)) return true;
    return it->optional && badness_items_match(items, k + 1, count, s, n, pos);
}

/* BADNESS_RE.search(text) is true iff some alternative matches at some
 * position. Only positions whose character can start an alternative (or the
 * start of the string, for `^`) need trying. */
bool vt_ftfy_is_bad(const uint32_t *s, size_t n) {
    for (size_t pos = 0; pos < n; pos++) {
        if (pos > 0 && !vt_in_ranges(vt_gen_badness_starters, vt_gen_badness_starters_count, s[pos]))
            continue;
        for (size_t a = 0; a < vt_gen_badness_alt_count; a++) {
            const vt_pattern_alt *alt = &vt_gen_badness_alts[a];
            if (badness_items_match(alt->items, 0, alt->n, s, n, pos)) return true;
        }
    }
    return false;
}

/* ========================================================================== */
/* single-byte codecs (ftfy.chardata.CHARMAP_ENCODINGS, incl. sloppy ones)    */
/* ========================================================================== */

/* Indices into vt_gen_charmap_* (ftfy's CHARMAP_ENCODINGS order; the unit
 * test checks the names). */
enum {
    CHARMAP_LATIN1 = 0,
    CHARMAP_SLOPPY_WINDOWS_1252 = 1,
    CHARMAP_SLOPPY_FIRST = 1, /* sloppy-windows-1252 ... sloppy-windows-1257 */
    CHARMAP_SLOPPY_LAST = 6,
    CHARMAP_MACROMAN = 8,
};

/* The byte `c` encodes to, or -1. ASCII other than 0x1A encodes to itself in
 * every table (the generator checks this); the rest is a binary search. */
static int charmap_encode_char(int enc, uint32_t c) {
    if (c < 0x80 && vt_gen_charmap_decode[enc][c] == c) return (int)c;
    const vt_charmap_entry *t = vt_gen_charmap_encode[enc];
    size_t lo = 0, hi = 256;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < t[mid].cp) hi = mid;
        else if (c > t[mid].cp) lo = mid + 1;
        else return t[mid].byte;
    }
    return -1;
}

/* ftfy.chardata.possible_encoding */
static bool possible_encoding(const uint32_t *s, size_t n, int enc) {
    for (size_t i = 0; i < n; i++)
        if (charmap_encode_char(enc, s[i]) < 0) return false;
    return true;
}

static bool is_ascii_text(const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80) return false;
    return true;
}

/* str.encode(enc) for text that possible_encoding accepted. */
static int charmap_encode(const uint32_t *s, size_t n, int enc, vt_bytes *out) {
    for (size_t i = 0; i < n; i++)
        if (vt_bytes_push(out, (uint8_t)charmap_encode_char(enc, s[i]))) return -1;
    return 0;
}

/* ========================================================================== */
/* byte-level fixes inside fix_encoding (ftfy.fixes / chardata regexes)       */
/* ========================================================================== */

/* A byte class of up to four inclusive ranges, for the bytes regexes below. */
typedef struct {
    uint8_t count;
    uint8_t lo[4], hi[4];
} byte_class;

#define BC1(a, b) {1, {a}, {b}}
#define BC2(a, b, c, d) {2, {a, c}, {b, d}}
#define BC3(a, b, c, d, e, f) {3, {a, c, e}, {b, d, f}}
#define BC4(a, b, c, d, e, f, g, h) {4, {a, c, e, g}, {b, d, f, h}}

static bool byte_in(const byte_class *bc, uint8_t b) {
    for (int i = 0; i < bc->count; i++)
        if (b >= bc->lo[i] && b <= bc->hi[i]) return true;
    return false;
}

typedef struct {
    int len;
    byte_class at[6];
} byte_pattern;

/* Length of the first alternative of `alts` matching at s[pos], or 0
 * (Python's leftmost-alternative-wins semantics). */
static size_t byte_alternatives_match(const byte_pattern *alts, size_t count, const uint8_t *s,
                                      size_t n, size_t pos) {
    for (size_t a = 0; a < count; a++) {
        const byte_pattern *p = &alts[a];
        if (pos + (size_t)p->len > n) continue;
        int k = 0;
        while (k < p->len && byte_in(&p->at[k], s[pos + k])) k++;
        if (k == p->len) return (size_t)p->len;
    }
    return 0;
}

/* ftfy.chardata.ALTERED_UTF8_RE */
static const byte_pattern ALTERED_UTF8[] = {
    {2, {BC4(0xC2, 0xC3, 0xC5, 0xC5, 0xCE, 0xCE, 0xD0, 0xD0), BC1(' ', ' ')}},
    {2, {BC1(0xD9, 0xD9), BC1(' ', ' ')}}, /* (same alternative, fifth/sixth lead byte) */
    {3, {BC1(0xE2, 0xE3), BC1(' ', ' '), BC3(0x80, 0x84, 0x86, 0x9F, 0xA1, 0xBF)}},
    {3, {BC1(0xE0, 0xE3), BC3(0x80, 0x84, 0x86, 0x9F, 0xA1, 0xBF), BC1(' ', ' ')}},
    {4, {BC1(0xF0, 0xF0), BC1(' ', ' '), BC1(0x80, 0xBF), BC1(0x80, 0xBF)}},
    {4, {BC1(0xF0, 0xF0), BC1(0x80, 0xBF), BC1(' ', ' '), BC1(0x80, 0xBF)}},
    {4, {BC1(0xF0, 0xF0), BC1(0x80, 0xBF), BC1(0x80, 0xBF), BC1(' ', ' ')}},
};
#define ALTERED_UTF8_COUNT (sizeof ALTERED_UTF8 / sizeof ALTERED_UTF8[0])

static bool altered_utf8_search(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (byte_alternatives_match(ALTERED_UTF8, ALTERED_UTF8_COUNT, s, n, i)) return true;
    return false;
}

/* ftfy.fixes.A_GRAVE_WORD_RE: b"\xc3 (?! |quele|quela|quilo|s )" at pos. */
static bool a_grave_word_at(const uint8_t *s, size_t n, size_t pos) {
    if (pos + 2 > n || s[pos] != 0xC3 || s[pos + 1] != ' ') return false;
    static const char *const exceptions[] = {" ", "quele", "quela", "quilo", "s "};
    const uint8_t *rest = s + pos + 2;
    size_t left = n - pos - 2;
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++) {
        size_t len = strlen(exceptions[i]);
        if (left >= len && memcmp(rest, exceptions[i], len) == 0) return false;
    }
    return true;
}

/* ftfy.fixes.restore_byte_a0: first "Ã " as a word becomes "à " (C3 A0 20),
 * then every space inside an ALTERED_UTF8_RE match becomes A0. */
static int restore_byte_a0(const vt_bytes *in, vt_bytes *out) {
    vt_bytes tmp = {0};
    for (size_t i = 0; i < in->n;) {
        if (a_grave_word_at(in->v, in->n, i)) {
            static const uint8_t repl[] = {0xC3, 0xA0, ' '};
            if (vt_bytes_append(&tmp, repl, 3)) goto fail;
            i += 2;
        } else {
            if (vt_bytes_push(&tmp, in->v[i])) goto fail;
            i++;
        }
    }
    for (size_t i = 0; i < tmp.n;) {
        size_t len = byte_alternatives_match(ALTERED_UTF8, ALTERED_UTF8_COUNT, tmp.v, tmp.n, i);
        if (len == 0) len = 1;
        else
            for (size_t k = i; k < i + len; k++)
                if (tmp.v[k] == ' ') tmp.v[k] = 0xA0;
        if (vt_bytes_append(out, tmp.v + i, len)) goto fail;
        i += len;
    }
    vt_bytes_free(&tmp);
    return 0;
fail:
    vt_bytes_free(&tmp);
    return -1;
}

/* ftfy.chardata.LOSSY_UTF8_RE, alternative by alternative. */
static const byte_pattern LOSSY_UTF8[] = {
    {2, {BC1(0xC2, 0xDF), BC1(0x1A, 0x1A)}},
    {2, {BC1(0xC2, 0xC3), BC1('?', '?')}},
    {6, {BC1(0xED, 0xED), BC1(0xA0, 0xAF), BC2(0x1A, 0x1A, '?', '?'), BC1(0xED, 0xED),
         BC1(0xB0, 0xBF), BC3(0x1A, 0x1A, '?', '?', 0x80, 0xBF)}},
    {6, {BC1(0xED, 0xED), BC1(0xA0, 0xAF), BC3(0x1A, 0x1A, '?', '?', 0x80, 0xBF), BC1(0xED, 0xED),
         BC1(0xB0, 0xBF), BC2(0x1A, 0x1A, '?', '?')}},
    {3, {BC1(0xE0, 0xEF), BC2(0x1A, 0x1A, '?', '?'), BC2(0x1A, 0x1A, 0x80, 0xBF)}},
    {3, {BC1(0xE0, 0xEF), BC2(0x1A, 0x1A, 0x80, 0xBF), BC2(0x1A, 0x1A, '?', '?')}},
    {4, {BC1(0xF0, 0xF4), BC2(0x1A, 0x1A, '?', '?'), BC2(0x1A, 0x1A, 0x80, 0xBF),
         BC2(0x1A, 0x1A, 0x80, 0xBF)}},
    {4, {BC1(0xF0, 0xF4), BC2(0x1A, 0x1A, 0x80, 0xBF), BC2(0x1A, 0x1A, '?', '?'),
         BC2(0x1A, 0x1A, 0x80, 0xBF)}},
    {4, {BC1(0xF0, 0xF4), BC2(0x1A, 0x1A, 0x80, 0xBF), BC2(0x1A, 0x1A, 0x80, 0xBF),
         BC2(0x1A, 0x1A, '?', '?')}},
    {1, {BC1(0x1A, 0x1A)}},
};
#define LOSSY_UTF8_COUNT (sizeof LOSSY_UTF8 / sizeof LOSSY_UTF8[0])

/* ftfy.fixes.replace_lossy_sequences: each match becomes UTF-8 U+FFFD. */
static int replace_lossy_sequences(const vt_bytes *in, vt_bytes *out) {
    static const uint8_t replacement[] = {0xEF, 0xBF, 0xBD};
    for (size_t i = 0; i < in->n;) {
        size_t len = byte_alternatives_match(LOSSY_UTF8, LOSSY_UTF8_COUNT, in->v, in->n, i);
        int rc = len ? vt_bytes_append(out, replacement, 3) : vt_bytes_push(out, in->v[i]);
        if (rc) return -1;
        i += len ? len : 1;
    }
    return 0;
}

static bool has_byte(const vt_bytes *b, uint8_t x) {
    return b->n && memchr(b->v, x, b->n) != NULL;
}

/* ========================================================================== */
/* ftfy fix_encoding                                                          */
/* ========================================================================== */

/* decode_inconsistent_utf8 calls fix_encoding on ever shorter substrings; the
 * recursion is shallow in practice, this only bounds the stack. */
#define MAX_FIX_ENCODING_DEPTH 100

static int fix_encoding_at_depth(const uint32_t *s, size_t n, vt_u32str *out, int depth);

/* The body of the `for encoding in CHARMAP_ENCODINGS` loop of
 * ftfy._fix_encoding_one_step_and_explain for one encoding: re-encode, patch
 * the bytes (restore_byte_a0, replace_lossy_sequences), decode as UTF-8.
 * Returns 0 with the text in `out`, 1 if it does not decode, -1 on memory. */
static int try_charmap_as_utf8(const uint32_t *s, size_t n, int enc, vt_u32str *out) {
    vt_bytes bytes = {0}, patched = {0};
    int rc = -1;
    if (charmap_encode(s, n, enc, &bytes)) goto done;
    if (enc != CHARMAP_MACROMAN && altered_utf8_search(bytes.v, bytes.n)) {
        if (restore_byte_a0(&bytes, &patched)) goto done;
        vt_bytes_free(&bytes);
        bytes = patched;
        patched = (vt_bytes){0};
    }
    if (enc >= CHARMAP_SLOPPY_FIRST && enc <= CHARMAP_SLOPPY_LAST) {
        if (replace_lossy_sequences(&bytes, &patched)) goto done;
        vt_bytes_free(&bytes);
        bytes = patched;
        patched = (vt_bytes){0};
    }
    if (has_byte(&bytes, 0xED) || has_byte(&bytes, 0xC0)) {
        rc = vt_utf8_variants_decode(bytes.v, bytes.n, out);
    } else {
        size_t bad;
        rc = vt_utf8_decode(bytes.v, bytes.n, out, &bad);
    }
    if (rc == 1) out->n = 0;
done:
    vt_bytes_free(&bytes);
    vt_bytes_free(&patched);
    return rc;
}

/* Matches UTF8_DETECTOR_RE's `(first2 cont | first3 cont{2} | first4 cont{3})+`
 * at pos (after its lookbehind passed); returns the match end (pos if none).
 * Each repetition takes the first alternative that fits and the repetition
 * stops at the first position where none does. */
static size_t utf8_detector_match_end(const uint32_t *s, size_t n, size_t pos) {
#define CONT(i) vt_in_ranges(vt_gen_utf8_continuation, vt_gen_utf8_continuation_count, s[i])
    size_t p = pos;
    for (;;) {
        if (p + 1 < n && vt_in_ranges(vt_gen_utf8_first_of_2, vt_gen_utf8_first_of_2_count, s[p]) &&
            CONT(p + 1))
            p += 2;
        else if (p + 2 < n &&
                 vt_in_ranges(vt_gen_utf8_first_of_3, vt_gen_utf8_first_of_3_count, s[p]) &&
                 CONT(p + 1) && CONT(p + 2))
            p += 3;
        else if (p + 3 < n &&
                 vt_in_ranges(vt_gen_utf8_first_of_4, vt_gen_utf8_first_of_4_count, s[p]) &&
                 CONT(p + 1) && CONT(p + 2) && CONT(p + 3))
            p += 4;
        else
            return p;
    }
#undef CONT
}

/* ftfy.fixes.decode_inconsistent_utf8: every UTF8_DETECTOR_RE match that is
 * shorter than the whole text and is_bad gets fix_encoding on its own. */
static int decode_inconsistent_utf8(const uint32_t *s, size_t n, vt_u32str *out, int depth) {
    for (size_t i = 0; i < n;) {
        bool lookbehind_ok =
            i == 0 || !vt_in_ranges(vt_gen_utf8_continuation_strict,
                                    vt_gen_utf8_continuation_strict_count, s[i - 1]);
        size_t end = lookbehind_ok ? utf8_detector_match_end(s, n, i) : i;
        if (end == i) {
            if (vt_u32_push(out, s[i])) return -1;
            i++;
            continue;
        }
        size_t len = end - i;
        int rc;
        if (len < n && depth < MAX_FIX_ENCODING_DEPTH && vt_ftfy_is_bad(s + i, len))
            rc = fix_encoding_at_depth(s + i, len, out, depth + 1);
        else
            rc = vt_u32_append(out, s + i, len);
        if (rc) return -1;
        i = end;
    }
    return 0;
}

/* ftfy.fixes.fix_c1_controls: U+0080..U+009F read as sloppy windows-1252. */
static int fix_c1_controls(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c >= 0x80 && c <= 0x9F) c = vt_gen_charmap_decode[CHARMAP_SLOPPY_WINDOWS_1252][c];
        out->v[out->n++] = c;
    }
    return 0;
}

static bool has_c1_control(const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80 && s[i] <= 0x9F) return true;
    return false;
}

/* text.encode('latin-1').decode('windows-1252') with Python's strict cp1252;
 * returns 1 where that raises. */
static int latin1_as_windows1252(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = vt_gen_cp1252_strict[s[i] & 0xFF];
        if (c == VT_NO_CHAR) {
            out->n = 0;
            return 1;
        }
        out->v[out->n++] = c;
    }
    return 0;
}

/* ftfy._fix_encoding_one_step_and_explain; the result goes to `out` (a copy
 * of the input when nothing applies). */
static int fix_encoding_one_step(const uint32_t *s, size_t n, vt_u32str *out, int depth) {
    if (n == 0 || is_ascii_text(s, n) || !vt_ftfy_is_bad(s, n)) return vt_u32_append(out, s, n);

    bool latin1_possible = false;
    for (int enc = 0; enc < VT_GEN_CHARMAP_COUNT; enc++) {
        if (!possible_encoding(s, n, enc)) continue;
        if (enc == CHARMAP_LATIN1) latin1_possible = true;
        int rc = try_charmap_as_utf8(s, n, enc, out);
        if (rc <= 0) return rc;
    }

    int rc = decode_inconsistent_utf8(s, n, out, depth);
    if (rc) return rc;
    if (!vt_u32_equal(out->v, out->n, s, n)) return 0;
    out->n = 0;

    /* ftfy checks `"windows-1252" in possible_1byte_encodings`, which never
     * holds (the list names "sloppy-windows-1252"), so Latin-1 text is always
     * re-read as strict windows-1252 when that decodes and changes it. */
    if (latin1_possible) {
        rc = latin1_as_windows1252(s, n, out);
        if (rc < 0) return rc;
        if (rc == 0 && !vt_u32_equal(out->v, out->n, s, n)) return 0;
        out->n = 0;
    }
    if (has_c1_control(s, n)) return fix_c1_controls(s, n, out);
    return vt_u32_append(out, s, n);
}

/* ftfy.fix_encoding_and_explain: one step at a time until nothing changes.
 * Every effective step shortens or de-C1s the text, so this ends quickly. */
static int fix_encoding_at_depth(const uint32_t *s, size_t n, vt_u32str *out, int depth) {
    vt_u32str text = {0}, next = {0};
    if (vt_u32_append(&text, s, n)) return -1;
    for (;;) {
        next.n = 0;
        if (fix_encoding_one_step(text.v, text.n, &next, depth)) break;
        if (vt_u32_equal(next.v, next.n, text.v, text.n)) {
            int rc = vt_u32_append(out, text.v, text.n);
            vt_u32_free(&text);
            vt_u32_free(&next);
            return rc;
        }
        vt_u32str swap = text;
        text = next;
        next = swap;
    }
    vt_u32_free(&text);
    vt_u32_free(&next);
    return -1;
}

int vt_ftfy_fix_encoding(const uint32_t *s, size_t n, vt_u32str *out) {
    return fix_encoding_at_depth(s, n, out, 0);
}

/* ========================================================================== */
/* the character-level fixers of ftfy.fix_and_explain                          */
/* ========================================================================== */

/* str.translate with a {code point: replacement} table. */
static int translate(const uint32_t *s, size_t n, const vt_cp_map *map, size_t count,
                     uint32_t min_cp, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        const vt_cp_map *m = s[i] >= min_cp ? vt_find_cp_map(map, count, s[i]) : NULL;
        int rc = m ? vt_u32_append_utf8(out, m->utf8) : vt_u32_push(out, s[i]);
        if (rc) return -1;
    }
    return 0;
}

/* ftfy.fixes.fix_latin_ligatures */
static int fix_latin_ligatures(const uint32_t *s, size_t n, vt_u32str *out) {
    return translate(s, n, vt_gen_ftfy_ligatures, vt_gen_ftfy_ligatures_count, 0x100, out);
}

/* ftfy.fixes.fix_character_width */
static int fix_character_width(const uint32_t *s, size_t n, vt_u32str *out) {
    return translate(s, n, vt_gen_ftfy_width_map, vt_gen_ftfy_width_map_count, 0x3000, out);
}

/* ftfy.fixes.uncurl_quotes: SINGLE_QUOTE_RE [\u02bc\u2018-\u201b] -> ',
 * DOUBLE_QUOTE_RE [\u201c-\u201f] -> " */
static int uncurl_quotes(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        else if (c >= 0x201C && c <= 0x201F) c = '"';
        out->v[out->n++] = c;
    }
    return 0;
}

/* ftfy.fixes.fix_line_breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n */
static int fix_line_breaks(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        out->v[out->n++] = c;
    }
    return 0;
}

/* ftfy.fixes.fix_surrogates: pairs become the character they encode, lone
 * surrogates U+FFFD. (Input decoded from valid UTF-8 never has any; kept for
 * fidelity.) */
static int fix_surrogates(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
            c = 0x10000 + (c - 0xD800) * 0x400 + (s[i + 1] - 0xDC00);
            i++;
        } else if (c >= 0xD800 && c <= 0xDFFF)
            c = 0xFFFD;
        out->v[out->n++] = c;
    }
    return 0;
}

static bool is_python_decimal(uint32_t c) {
    if (c < 0x80) return is_ascii_digit(c);
    return vt_in_ranges(vt_gen_py_decimal, vt_gen_py_decimal_count, c);
}

/* ftfy.fixes.remove_terminal_escapes: ANSI_RE "\033\[((?:\d|;)*)([a-zA-Z])"
 * (\d is any Unicode decimal digit, as in Python's re). */
static int remove_terminal_escapes(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n;) {
        if (s[i] == 0x1B && i + 1 < n && s[i + 1] == '[') {
            size_t j = i + 2;
            while (j < n && (s[j] == ';' || is_python_decimal(s[j]))) j++;
            if (j < n && s[j] < 0x80 && ((s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z')) {
                i = j + 1;
                continue;
            }
        }
        out->v[out->n++] = s[i++];
    }
    return 0;
}

/* ftfy.chardata.CONTROL_CHARS */
static bool is_removed_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* ftfy.fixes.remove_control_chars */
static int remove_control_chars(const uint32_t *s, size_t n, vt_u32str *out) {
    if (vt_u32_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_removed_control(s[i])) out->v[out->n++] = s[i];
    return 0;
}

/* ========================================================================== */
/* ftfy.fix_and_explain / fix_text                                            */
/* ========================================================================== */

/* fix_and_explain repeats all fixers until the text stops changing; nested
 * entities ("&amp;amp;amp;...") peel one level per pass, so the number of
 * passes is unbounded in principle. To keep megabyte inputs from going
 * quadratic we stop after this much work (passes x segment length); no
 * realistic text comes near it (ftfy itself would take hours there). */
#define FIX_PASS_WORK_BUDGET ((size_t)1 << 26)
#define FIX_MIN_PASSES 64

/* ftfy.fix_and_explain on one segment, with its fixers in its order. */
static int fix_segment(const uint32_t *s, size_t n, bool unescape, vt_u32str *out) {
    static const vt_fixer after_encoding[] = {
        fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
        fix_line_breaks, fix_surrogates,      remove_terminal_escapes, remove_control_chars,
        vt_nfc,
    };
    size_t max_passes = FIX_PASS_WORK_BUDGET / (n + 1);
    if (max_passes < FIX_MIN_PASSES) max_passes = FIX_MIN_PASSES;

    vt_u32str text = {0}, orig = {0};
    if (vt_u32_append(&text, s, n)) return -1;
    for (size_t pass = 0; pass < max_passes; pass++) {
        orig.n = 0;
        if (vt_u32_append(&orig, text.v, text.n)) goto fail;
        if (unescape && apply_fixer(ftfy_unescape_html, &text)) goto fail;
        if (apply_fixer(vt_ftfy_fix_encoding, &text)) goto fail;
        for (size_t f = 0; f < sizeof after_encoding / sizeof after_encoding[0]; f++)
            if (apply_fixer(after_encoding[f], &text)) goto fail;
        if (vt_u32_equal(text.v, text.n, orig.v, orig.n)) break;
    }
    int rc = vt_u32_append(out, text.v, text.n);
    vt_u32_free(&text);
    vt_u32_free(&orig);
    return rc;
fail:
    vt_u32_free(&text);
    vt_u32_free(&orig);
    return -1;
}

/* ftfy.fix_text: fixes the text in segments that end after each "\n" (at most
 * max_decode_length = 1,000,000 code points each). With the default
 * unescape_html="auto", the first segment containing '<' switches HTML
 * unescaping off for itself and every later segment (fix_text rebinds its
 * config inside the loop). */
int vt_ftfy_fix_text(const uint32_t *s, size_t n, vt_u32str *out) {
    const size_t max_decode_length = 1000000;
    bool unescape = true;
    for (size_t pos = 0; pos < n;) {
        size_t end = pos;
        while (end < n && s[end] != '\n') end++;
        end = end < n ? end + 1 : n;
        if (end - pos > max_decode_length) end = pos + max_decode_length;
        if (unescape && contains_cp(s + pos, end - pos, '<')) unescape = false;
        if (fix_segment(s + pos, end - pos, unescape, out)) return -1;
        pos = end;
    }
    return 0;
}

/* ========================================================================== */
/* open_clip _clean_lower                                                     */
/* ========================================================================== */

/* " ".join(text.split()) - which also does the surrounding .strip()s. */
static int join_words(const uint32_t *s, size_t n, vt_u32str *out) {
    bool need_space = false;
    for (size_t i = 0; i < n;) {
        if (vt_py_isspace(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !vt_py_isspace(s[j])) j++;
        if (need_space && vt_u32_push(out, ' ')) return -1;
        if (vt_u32_append(out, s + i, j - i)) return -1;
        need_space = true;
        i = j;
    }
    return 0;
}

int vt_clip_clean_lower(const uint32_t *text, size_t n, vt_u32str *out) {
    vt_u32str a = {0}, b = {0};
    int rc = -1;
    if (vt_ftfy_fix_text(text, n, &a)) goto done;
    if (vt_html_unescape(a.v, a.n, &b)) goto done;
    a.n = 0;
    if (vt_html_unescape(b.v, b.n, &a)) goto done;
    b.n = 0;
    if (join_words(a.v, a.n, &b)) goto done;
    rc = vt_py_lower(b.v, b.n, out);
done:
    vt_u32_free(&a);
    vt_u32_free(&b);
    return rc;
}
