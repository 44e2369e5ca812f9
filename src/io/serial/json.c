/* A strict RFC 8259 JSON parser building the DOM declared in json.h.
 *
 * Hostile input is expected (safetensors headers come from downloaded files), so:
 * nesting is limited to JSON_MAX_DEPTH (the recursion is bounded by it), input
 * size to JSON_MAX_SIZE, strings must be valid UTF-8 without NUL (raw or as
 * \u0000), \uXXXX surrogate pairs are combined and lone surrogates rejected, and
 * numbers are checked against the JSON grammar before strtod sees a bounded,
 * NUL-terminated copy (parsed in the "C" locale, whatever the caller's locale).
 * Errors give the line and column of the offending byte. */
#include "io/serial/json.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"

#define JSON_MAX_DEPTH 64
#define JSON_MAX_SIZE ((size_t)1 << 30)

typedef struct {
    const char *start;   /* first byte of the text (for line/column in messages) */
    const char *pos;     /* next unread byte */
    const char *end;
    int depth;
    locale_t c_locale;   /* created on the first number; strtod must not follow LC_NUMERIC */
    vt_error *err;
} json_parser;

static vt_status parse_value(json_parser *p, json_value *out);

/* ---------------------------------------------------------------- errors */

/* Fails with "JSON: <what> at line L column C". */
static vt_status parse_error(json_parser *p, const char *at, const char *what) {
    size_t line = 1, column = 1;
    for (const char *c = p->start; c < at && c < p->end; c++) {
        if (*c == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    return vt_fail(p->err, VT_ERR_FORMAT, "JSON: %s at line %zu column %zu", what, line, column);
}

/* ---------------------------------------------------------------- memory */

static void free_contents(json_value *value) {
    if (value->type == JSON_STRING) free(value->string);
    if (value->type == JSON_ARRAY || value->type == JSON_OBJECT) {
        for (size_t i = 0; i < value->count; i++) {
            free_contents(&value->items[i]);
            if (value->keys) free(value->keys[i]);
        }
        free(value->items);
        free(value->keys);
    }
    memset(value, 0, sizeof *value);
}

void json_free(json_value *value) {
    if (!value) return;
    free_contents(value);
    free(value);
}

/* ---------------------------------------------------------------- lexing */

static void skip_whitespace(json_parser *p) {
    while (p->pos < p->end &&
           (*p->pos == ' ' || *p->pos == '\t' || *p->pos == '\n' || *p->pos == '\r'))
        p->pos++;
}

static int consume_literal(json_parser *p, const char *literal) {
    size_t n = strlen(literal);
    if ((size_t)(p->end - p->pos) < n || memcmp(p->pos, literal, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u"; returns -1 if malformed. */
static long read_hex4(const char *at, const char *end) {
    if (end - at < 4) return -1;
    long code = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(at[i]);
        if (digit < 0) return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* Length of the valid UTF-8 sequence starting at `s` (1..4), or 0 if invalid
 * (overlong forms, surrogates, code points above U+10FFFF, truncation). */
static size_t utf8_sequence_length(const unsigned char *s, const unsigned char *end) {
    unsigned char lead = s[0];
    size_t length;
    unsigned char low = 0x80, high = 0xBF; /* allowed range of the second byte */
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) low = 0xA0;  /* overlong */
        if (lead == 0xED) high = 0x9F; /* UTF-16 surrogates */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) low = 0x90;  /* overlong */
        if (lead == 0xF4) high = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - s) < length) return 0;
    if (s[1] < low || s[1] > high) return 0;
    for (size_t i = 2; i < length; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return length;
}

static size_t utf8_encode(unsigned long code, char *out) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* Decodes the escape at p->pos (just after the backslash) into `out`; returns the
 * number of bytes written (0 on error, already reported). */
static size_t decode_escape(json_parser *p, char *out, vt_status *status) {
    const char *escape_start = p->pos - 1;
    char c = *p->pos++;
    switch (c) {
    case '"': out[0] = '"'; return 1;
    case '\\': out[0] = '\\'; return 1;
    case '/': out[0] = '/'; return 1;
    case 'b': out[0] = '\b'; return 1;
    case 'f': out[0] = '\f'; return 1;
    case 'n': out[0] = '\n'; return 1;
    case 'r': out[0] = '\r'; return 1;
    case 't': out[0] = '\t'; return 1;
    case 'u': break;
    default:
        *status = parse_error(p, escape_start, "invalid escape sequence in string");
        return 0;
    }
    long code = read_hex4(p->pos, p->end);
    if (code < 0) {
        *status = parse_error(p, escape_start, "\\u must be followed by 4 hex digits");
        return 0;
    }
    p->pos += 4;
    if (code >= 0xDC00 && code <= 0xDFFF) {
        *status = parse_error(p, escape_start, "lone low surrogate \\u escape in string");
        return 0;
    }
    if (code >= 0xD800 && code <= 0xDBFF) {
        long low = (p->end - p->pos >= 6 && p->pos[0] == '\\' && p->pos[1] == 'u')
                       ? read_hex4(p->pos + 2, p->end)
                       : -1;
        if (low < 0xDC00 || low > 0xDFFF) {
            *status = parse_error(p, escape_start,
                                  "high surrogate \\u escape not followed by a low surrogate");
            return 0;
        }
        p->pos += 6;
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code == 0) {
        *status = parse_error(p, escape_start, "\\u0000 (NUL) is not allowed in strings");
        return 0;
    }
    return utf8_encode((unsigned long)code, out);
}

/* Parses a string starting at the opening quote into a malloc'd UTF-8 copy. */
static vt_status parse_string(json_parser *p, char **out) {
    const char *open_quote = p->pos++;
    /* Decoded text is never longer than the source (escapes shrink), so one
     * allocation of the raw span suffices. Find the closing quote first. */
    const char *scan = p->pos;
    while (scan < p->end && *scan != '"') scan += (*scan == '\\' && scan + 1 < p->end) ? 2 : 1;
    if (scan >= p->end) return parse_error(p, open_quote, "unterminated string");
    char *text = malloc((size_t)(scan - p->pos) + 1);
    if (!text) return vt_fail(p->err, VT_ERR_NOMEM, "JSON: out of memory for a string");
    size_t length = 0;
    vt_status status = VT_OK;
    while (p->pos < scan) {
        unsigned char c = (unsigned char)*p->pos;
        if (c == '\\') {
            p->pos++;
            size_t n = decode_escape(p, text + length, &status);
            if (!n) break;
            length += n;
        } else if (c < 0x20) {
            status = parse_error(p, p->pos, c ? "unescaped control character in string"
                                              : "NUL byte in string");
            break;
        } else {
            size_t n = utf8_sequence_length((const unsigned char *)p->pos,
                                            (const unsigned char *)scan);
            if (!n) {
                status = parse_error(p, p->pos, "invalid UTF-8 in string");
                break;
            }
            memcpy(text + length, p->pos, n);
            length += n;
            p->pos += n;
        }
    }
    if (status != VT_OK) {
        free(text);
        return status;
    }
    /* A surrogate pair escape may have read past `scan` only if the closing quote
     * we found was escaped, which the scan above rules out. */
    p->pos = scan + 1;
    text[length] = '\0';
    *out = text;
    return VT_OK;
}

/* Length of the JSON number grammar match at p->pos, or 0 if none:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static size_t match_number(const char *s, const char *end) {
    const char *c = s;
#define DIGIT_AT(x) ((x) < end && *(x) >= '0' && *(x) <= '9')
    if (c < end && *c == '-') c++;
    if (c < end && *c == '0') {
        c++;
    } else if (DIGIT_AT(c)) {
        while (DIGIT_AT(c)) c++;
    } else {
        return 0;
    }
    if (c < end && *c == '.') {
        c++;
        if (!DIGIT_AT(c)) return 0;
        while (DIGIT_AT(c)) c++;
    }
    if (c < end && (*c == 'e' || *c == 'E')) {
        c++;
        if (c < end && (*c == '+' || *c == '-')) c++;
        if (!DIGIT_AT(c)) return 0;
        while (DIGIT_AT(c)) c++;
    }
#undef DIGIT_AT
    return (size_t)(c - s);
}

static vt_status parse_number(json_parser *p, double *out) {
    size_t length = match_number(p->pos, p->end);
    if (!length) return parse_error(p, p->pos, "invalid number");
    char small[128];
    char *copy = length < sizeof small ? small : malloc(length + 1);
    if (!copy) return vt_fail(p->err, VT_ERR_NOMEM, "JSON: out of memory for a number");
    memcpy(copy, p->pos, length);
    copy[length] = '\0';
    if (!p->c_locale) p->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    *out = p->c_locale ? strtod_l(copy, NULL, p->c_locale) : strtod(copy, NULL);
    if (copy != small) free(copy);
    p->pos += length;
    return VT_OK;
}

/* ---------------------------------------------------------------- containers */

static vt_status parse_array(json_parser *p, json_value *out) {
    const char *open = p->pos++;
    json_value *items = NULL;
    size_t count = 0, capacity = 0;
    vt_status status = VT_OK;
    skip_whitespace(p);
    if (p->pos < p->end && *p->pos == ']') {
        p->pos++;
        goto done;
    }
    for (;;) {
        if (!vt_grow_array((void **)&items, &capacity, count, sizeof *items)) {
            status = vt_fail(p->err, VT_ERR_NOMEM, "JSON: out of memory for an array");
            break;
        }
        status = parse_value(p, &items[count]);
        if (status != VT_OK) {
            free_contents(&items[count]); /* a nested container keeps its partial items */
            break;
        }
        count++;
        skip_whitespace(p);
        if (p->pos < p->end && *p->pos == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->end && *p->pos == ']') {
            p->pos++;
            break;
        }
        status = parse_error(p, p->pos >= p->end ? open : p->pos,
                             p->pos >= p->end ? "unterminated array"
                                              : "expected ',' or ']' in array");
        break;
    }
done:
    out->type = JSON_ARRAY;
    out->items = items;
    out->count = count;
    return status;
}

static vt_status parse_object(json_parser *p, json_value *out) {
    const char *open = p->pos++;
    json_value *items = NULL;
    char **keys = NULL;
    size_t count = 0, capacity = 0, key_capacity = 0;
    vt_status status = VT_OK;
    skip_whitespace(p);
    if (p->pos < p->end && *p->pos == '}') {
        p->pos++;
        goto done;
    }
    for (;;) {
        if (!vt_grow_array((void **)&items, &capacity, count, sizeof *items) ||
            !vt_grow_array((void **)&keys, &key_capacity, count, sizeof *keys)) {
            status = vt_fail(p->err, VT_ERR_NOMEM, "JSON: out of memory for an object");
            break;
        }
        skip_whitespace(p);
        if (p->pos >= p->end || *p->pos != '"') {
            status = parse_error(p, p->pos >= p->end ? open : p->pos,
                                 p->pos >= p->end ? "unterminated object"
                                                  : "expected a string key in object");
            break;
        }
        status = parse_string(p, &keys[count]);
        if (status != VT_OK) break;
        skip_whitespace(p);
        if (p->pos >= p->end || *p->pos != ':') {
            free(keys[count]);
            status = parse_error(p, p->pos, "expected ':' after object key");
            break;
        }
        p->pos++;
        status = parse_value(p, &items[count]);
        if (status != VT_OK) {
            free_contents(&items[count]);
            free(keys[count]);
            break;
        }
        count++;
        skip_whitespace(p);
        if (p->pos < p->end && *p->pos == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->end && *p->pos == '}') {
            p->pos++;
            break;
        }
        status = parse_error(p, p->pos >= p->end ? open : p->pos,
                             p->pos >= p->end ? "unterminated object"
                                              : "expected ',' or '}' in object");
        break;
    }
done:
    out->type = JSON_OBJECT;
    out->items = items;
    out->keys = keys;
    out->count = count;
    return status;
}

/* ---------------------------------------------------------------- values */

static vt_status parse_value(json_parser *p, json_value *out) {
    memset(out, 0, sizeof *out);
    skip_whitespace(p);
    if (p->pos >= p->end) return parse_error(p, p->pos, "unexpected end of input, expected a value");
    vt_status status;
    switch (*p->pos) {
    case '{':
    case '[':
        if (++p->depth > JSON_MAX_DEPTH) {
            return vt_fail(p->err, VT_ERR_FORMAT, "JSON: nesting deeper than %d levels",
                           JSON_MAX_DEPTH);
        }
        status = *p->pos == '{' ? parse_object(p, out) : parse_array(p, out);
        p->depth--;
        return status;
    case '"':
        out->type = JSON_STRING;
        return parse_string(p, &out->string);
    case 't':
    case 'f':
    case 'n':
        if (consume_literal(p, "true")) {
            out->type = JSON_BOOL;
            out->boolean = 1;
        } else if (consume_literal(p, "false")) {
            out->type = JSON_BOOL;
        } else if (consume_literal(p, "null")) {
            out->type = JSON_NULL;
        } else {
            return parse_error(p, p->pos, "invalid literal (expected true, false or null)");
        }
        return VT_OK;
    default:
        out->type = JSON_NUMBER;
        return parse_number(p, &out->number);
    }
}

vt_status json_parse(const char *text, size_t size, json_value **out, vt_error *err) {
    if (!out || (!text && size)) return vt_fail(err, VT_ERR_ARGUMENT, "json_parse: NULL argument");
    *out = NULL;
    if (size > JSON_MAX_SIZE)
        return vt_fail(err, VT_ERR_UNSUPPORTED, "JSON: document of %zu bytes exceeds the %zu-byte limit",
                       size, JSON_MAX_SIZE);
    json_parser p = {.start = text, .pos = text, .end = text + size, .err = err};
    json_value *root = calloc(1, sizeof *root);
    if (!root) return vt_fail(err, VT_ERR_NOMEM, "JSON: out of memory");
    vt_status status = parse_value(&p, root);
    if (status == VT_OK) {
        skip_whitespace(&p);
        if (p.pos != p.end) status = parse_error(&p, p.pos, "unexpected data after the JSON value");
    }
    if (p.c_locale) freelocale(p.c_locale);
    if (status != VT_OK) {
        json_free(root);
        return status;
    }
    *out = root;
    return VT_OK;
}

/* ---------------------------------------------------------------- lookups */

const json_value *json_get(const json_value *object, const char *key) {
    if (!object || !key || object->type != JSON_OBJECT) return NULL;
    /* The last duplicate wins, as in Python's json module. */
    for (size_t i = object->count; i-- > 0;)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}

double json_get_number(const json_value *object, const char *key, double fallback) {
    const json_value *value = json_get(object, key);
    return value && value->type == JSON_NUMBER ? value->number : fallback;
}

const char *json_get_string(const json_value *object, const char *key, const char *fallback) {
    const json_value *value = json_get(object, key);
    return value && value->type == JSON_STRING ? value->string : fallback;
}
