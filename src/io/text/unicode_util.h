/* Unicode plumbing for the CLIP tokenizer: growable code-point and byte
 * strings, UTF-8 codecs with CPython's exact strictness (plus ftfy's
 * "utf-8-variants"), range-table look-ups, and the handful of Python str
 * semantics the tokenizer depends on (isspace, lower with Final_Sigma, NFC).
 *
 * The data tables are generated from the reference Python environment by
 * scripts/gen_tokenizer_tables.py into src/io/generated_tokenizer_tables.c and
 * declared at the end of this header. */
#ifndef VT_IO_UNICODE_UTIL_H
#define VT_IO_UNICODE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable strings ---------------------------------------------------- */

/* A Python-like str: a sequence of code points. Functions returning int give 0
 * on success and -1 when an allocation failed (the only way they can fail). */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} vt_u32str;

typedef struct {
    uint8_t *v;
    size_t n, cap;
} vt_bytes;

void vt_u32_free(vt_u32str *s);
int vt_u32_reserve(vt_u32str *s, size_t extra);
int vt_u32_push(vt_u32str *s, uint32_t c);
int vt_u32_append(vt_u32str *s, const uint32_t *src, size_t n);
/* Appends the code points of a NUL-terminated, known-valid UTF-8 string. */
int vt_u32_append_utf8(vt_u32str *s, const char *utf8);
bool vt_u32_equal(const uint32_t *a, size_t an, const uint32_t *b, size_t bn);
/* Replaces `dst`'s contents by `src`'s, freeing the old buffer (move). */
void vt_u32_move(vt_u32str *dst, vt_u32str *src);

void vt_bytes_free(vt_bytes *b);
int vt_bytes_push(vt_bytes *b, uint8_t byte);
int vt_bytes_append(vt_bytes *b, const uint8_t *src, size_t n);

/* ---- UTF-8 ----------------------------------------------------------------- */

/* Strict UTF-8 -> code points, rejecting exactly what CPython's decoder rejects
 * (overlongs, surrogates, > U+10FFFF, truncation). Returns 0, -1 on allocation
 * failure, or 1 on invalid input with the offending byte offset in *bad_offset. */
int vt_utf8_decode(const uint8_t *src, size_t n, vt_u32str *out, size_t *bad_offset);
/* The same check without decoding: true, or false with *bad_offset set. */
bool vt_utf8_valid(const uint8_t *src, size_t n, size_t *bad_offset);
/* ftfy.bad_codecs.utf8_variants: UTF-8 that also accepts CESU-8 surrogate
 * pairs and Java's C0 80 for U+0000, including the codec's quirks. Same
 * return convention as vt_utf8_decode. */
int vt_utf8_variants_decode(const uint8_t *src, size_t n, vt_u32str *out);
/* UTF-8 of one code point into out[0..4), returning its length (surrogates
 * are encoded as-is). */
size_t vt_utf8_encode_char(uint32_t c, uint8_t out[4]);
/* Appends the UTF-8 encoding of one code point. */
int vt_utf8_encode_cp(vt_bytes *b, uint32_t c);
int vt_utf8_encode(vt_bytes *b, const uint32_t *s, size_t n);

/* ---- table look-ups -------------------------------------------------------- */

typedef struct {
    uint32_t lo, hi; /* inclusive */
} vt_cp_range;

typedef struct {
    uint32_t cp;
    const char *utf8; /* replacement text */
} vt_cp_map;

typedef struct {
    const char *name;
    const char *utf8;
} vt_entity;

typedef struct {
    uint32_t lo, hi;
    uint8_t cls;
} vt_cp_class_range;

typedef struct {
    char letter;
    uint32_t cp;
} vt_ci_extra;

typedef struct {
    uint16_t cp;
    uint8_t byte;
} vt_charmap_entry;

typedef struct {
    uint32_t offset, count; /* into vt_gen_badness_class_ranges */
} vt_class_span;

/* One element of a fixed-shape regex alternative (see ftfy badness). */
enum { VT_ITEM_CLASS = 0, VT_ITEM_ANY_BUT_NEWLINE = 1, VT_ITEM_START = 2 };
typedef struct {
    uint8_t kind, optional;
    uint16_t cls;
} vt_pattern_item;
#define VT_PATTERN_MAX_ITEMS 8
typedef struct {
    uint8_t n;
    vt_pattern_item items[VT_PATTERN_MAX_ITEMS];
} vt_pattern_alt;

#define VT_NO_CHAR 0xFFFFFFFFu

bool vt_in_ranges(const vt_cp_range *r, size_t count, uint32_t c);
/* The entry for `c`, or NULL. `map` must be sorted by cp. */
const vt_cp_map *vt_find_cp_map(const vt_cp_map *map, size_t count, uint32_t c);
/* The entry whose name is exactly name[0..len), or NULL. */
const vt_entity *vt_find_entity(const vt_entity *table, size_t count, const char *name,
                                size_t len);

/* ---- Python str semantics -------------------------------------------------- */

bool vt_py_isspace(uint32_t c);
/* str.lower(): full lowercase mapping (U+0130 -> "i\u0307") with CPython's
 * Final_Sigma handling of U+03A3. Appends to `out`. */
int vt_py_lower(const uint32_t *s, size_t n, vt_u32str *out);
/* unicodedata.normalize('NFC', s) as CPython 3.11 (Unicode 14.0) computes it,
 * done with utf8proc; code points that Unicode 14 leaves unassigned are kept
 * inert even if the linked utf8proc knows them. Appends to `out`. */
int vt_nfc(const uint32_t *s, size_t n, vt_u32str *out);

/* ---- generated tables (src/io/generated_tokenizer_tables.c) --------------- */

#define VT_DECLARE_RANGES(name)            \
    extern const vt_cp_range name[];       \
    extern const size_t name##_count
#define VT_DECLARE_CP_MAP(name)            \
    extern const vt_cp_map name[];         \
    extern const size_t name##_count
#define VT_DECLARE_ENTITIES(name)          \
    extern const vt_entity name[];         \
    extern const size_t name##_count

extern const char vt_gen_python_unicode_version[];
VT_DECLARE_RANGES(vt_gen_py_space);
VT_DECLARE_RANGES(vt_gen_py_decimal);
VT_DECLARE_RANGES(vt_gen_py_case_ignorable);
VT_DECLARE_RANGES(vt_gen_py_cased);
VT_DECLARE_CP_MAP(vt_gen_py_lower);
VT_DECLARE_RANGES(vt_gen_py_unassigned);

/* open_clip pre-tokeniser classes; code points not listed are "other" */
enum { VT_TOKCLASS_NONE = 0, VT_TOKCLASS_LETTER = 1, VT_TOKCLASS_NUMBER = 2, VT_TOKCLASS_OTHER = 3 };
extern const vt_cp_class_range vt_gen_token_class[];
extern const size_t vt_gen_token_class_count;
extern const vt_ci_extra vt_gen_ci_extra[];
extern const size_t vt_gen_ci_extra_count;

#define VT_GEN_CHARMAP_COUNT 10
extern const char *const vt_gen_charmap_names[VT_GEN_CHARMAP_COUNT];
extern const uint32_t vt_gen_charmap_decode[VT_GEN_CHARMAP_COUNT][256];
extern const vt_charmap_entry vt_gen_charmap_encode[VT_GEN_CHARMAP_COUNT][256];
extern const uint32_t vt_gen_cp1252_strict[256];

VT_DECLARE_ENTITIES(vt_gen_ftfy_entities);
VT_DECLARE_ENTITIES(vt_gen_html5_entities);
VT_DECLARE_CP_MAP(vt_gen_html_invalid_charrefs);
VT_DECLARE_RANGES(vt_gen_html_invalid_codepoints);
VT_DECLARE_CP_MAP(vt_gen_ftfy_ligatures);
VT_DECLARE_CP_MAP(vt_gen_ftfy_width_map);

VT_DECLARE_RANGES(vt_gen_utf8_first_of_2);
VT_DECLARE_RANGES(vt_gen_utf8_first_of_3);
VT_DECLARE_RANGES(vt_gen_utf8_first_of_4);
VT_DECLARE_RANGES(vt_gen_utf8_continuation);
VT_DECLARE_RANGES(vt_gen_utf8_continuation_strict);

VT_DECLARE_RANGES(vt_gen_badness_class_ranges);
extern const vt_class_span vt_gen_badness_classes[];
extern const size_t vt_gen_badness_class_count;
extern const vt_pattern_alt vt_gen_badness_alts[];
extern const size_t vt_gen_badness_alt_count;
VT_DECLARE_RANGES(vt_gen_badness_starters);

#endif
