/* Shard specification expansion (see shard_list.h). Expansion works on the
 * raw (still escaped) text and removes backslash escapes only from the final
 * names, so a literal "\{" survives any number of nesting levels. */
#include "io/dataset/shard_list.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"

static vt_status push_owned(shard_list *list, char *s, vt_error *err) {
    if (!s) return vt_fail(err, VT_ERR_NOMEM, "out of memory expanding shard names");
    if (list->count >= SHARD_LIST_MAX) {
        free(s);
        return vt_fail(err, VT_ERR_ARGUMENT, "shard specification expands to more than %d names; check the brace ranges",
                       SHARD_LIST_MAX);
    }
    if (!vt_grow_array((void **)&list->paths, &list->capacity, list->count, sizeof *list->paths)) {
        free(s);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory expanding shard names");
    }
    list->paths[list->count++] = s;
    return VT_OK;
}

static char *concat3(const char *a, size_t na, const char *b, size_t nb, const char *c, size_t nc) {
    char *s = malloc(na + nb + nc + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc);
    s[na + nb + nc] = '\0';
    return s;
}

/* Index of the '}' closing the '{' at s[open], or -1. */
static long matching_brace(const char *s, size_t n, size_t open) {
    int depth = 0;
    for (size_t i = open; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
        } else if (s[i] == '{') {
            depth++;
        } else if (s[i] == '}' && --depth == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* Parses an optionally signed decimal integer filling s[0..n). */
static int parse_int(const char *s, size_t n, long long *v) {
    size_t i = 0;
    int negative = 0;
    if (i < n && s[i] == '-') negative = 1, i++;
    if (i == n || n - i > 15) return 0;
    long long x = 0;
    for (; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = negative ? -x : x;
    return 1;
}

/* braceexpand's padding rule: a bound like "007" or "-07" (but not "0" / "-0")
 * zero-pads every number to the longer bound's width. */
static int padded_bound(const char *s, size_t n) {
    if ((n == 1 && s[0] == '0') || (n == 2 && !strncmp(s, "-0", 2))) return 0;
    return s[0] == '0' || (n > 1 && !strncmp(s, "-0", 2));
}

/* "{A..B}" or "{A..B..STEP}" with integer or single-letter bounds: writes the
 * items into `items`; returns 0 if `content` is not a range. */
static int try_range(const char *content, size_t n, shard_list *items, vt_status *st, vt_error *err) {
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (content[i] == '.' && content[i + 1] == '.') {
            dots = content + i;
            break;
        }
    if (!dots) return 0;
    size_t left_n = (size_t)(dots - content);
    const char *right = dots + 2, *end = content + n;
    const char *dots2 = NULL;
    for (const char *p = right; p + 1 < end; p++)
        if (p[0] == '.' && p[1] == '.') {
            dots2 = p;
            break;
        }
    size_t right_n = (size_t)((dots2 ? dots2 : end) - right);
    long long step = 1;
    if (dots2 && (!parse_int(dots2 + 2, (size_t)(end - dots2 - 2), &step))) return 0;
    if (step < 0) step = -step;
    if (step == 0) step = 1;

    long long a, b;
    int letters = 0, width = 0;
    if (parse_int(content, left_n, &a) && parse_int(right, right_n, &b)) {
        if (padded_bound(content, left_n) || padded_bound(right, right_n))
            width = (int)(left_n > right_n ? left_n : right_n);
    } else if (left_n == 1 && right_n == 1 && isalpha((unsigned char)content[0]) &&
               isalpha((unsigned char)right[0])) {
        a = (unsigned char)content[0];
        b = (unsigned char)right[0];
        letters = 1;
    } else {
        return 0;
    }
    long long direction = a <= b ? 1 : -1;
    for (long long v = a; direction > 0 ? v <= b : v >= b; v += direction * step) {
        char buf[40];
        if (letters) snprintf(buf, sizeof buf, "%c", (char)v);
        else snprintf(buf, sizeof buf, "%0*lld", width, v);
        if ((*st = push_owned(items, strdup(buf), err)) != VT_OK) return 1;
    }
    return 1;
}

/* Splits `content` at its top-level unescaped commas; 0 if there are none. */
static int try_list(const char *content, size_t n, shard_list *items, vt_status *st, vt_error *err) {
    int depth = 0, commas = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && *st == VT_OK; i++) {
        if (i < n && content[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (i < n && content[i] == '{') depth++;
        else if (i < n && content[i] == '}') depth--;
        else if (i == n || (content[i] == ',' && depth == 0)) {
            if (i < n) commas++;
            if (i == n && commas == 0) return 0;
            *st = push_owned(items, strndup(content + start, i - start), err);
            start = i + 1;
        }
    }
    return 1;
}

static vt_status expand_raw(const char *s, size_t n, shard_list *out, vt_error *err);

/* Expands every item (itself possibly holding braces) between prefix and each
 * expansion of the rest. */
static vt_status combine(const char *prefix, size_t prefix_n, const shard_list *items, const char *rest,
                         size_t rest_n, shard_list *out, vt_error *err) {
    shard_list tails = {0};
    vt_status st = expand_raw(rest, rest_n, &tails, err);
    for (size_t i = 0; st == VT_OK && i < items->count; i++) {
        shard_list middles = {0};
        st = expand_raw(items->paths[i], strlen(items->paths[i]), &middles, err);
        for (size_t m = 0; st == VT_OK && m < middles.count; m++)
            for (size_t t = 0; st == VT_OK && t < tails.count; t++)
                st = push_owned(out, concat3(prefix, prefix_n, middles.paths[m], strlen(middles.paths[m]),
                                             tails.paths[t], strlen(tails.paths[t])),
                                err);
        shard_list_free(&middles);
    }
    shard_list_free(&tails);
    return st;
}

static vt_status expand_raw(const char *s, size_t n, shard_list *out, vt_error *err) {
    size_t open = 0;
    for (; open < n; open++) {
        if (s[open] == '\\' && open + 1 < n) open++;
        else if (s[open] == '{') break;
        else if (s[open] == '}')
            return vt_fail(err, VT_ERR_ARGUMENT, "unbalanced '}' in shard specification '%.*s'", (int)n, s);
    }
    if (open == n) return push_owned(out, strndup(s, n), err);
    long close = matching_brace(s, n, open);
    if (close < 0) return vt_fail(err, VT_ERR_ARGUMENT, "unbalanced '{' in shard specification '%.*s'", (int)n, s);

    const char *content = s + open + 1;
    size_t content_n = (size_t)close - open - 1;
    shard_list items = {0};
    vt_status st = VT_OK;
    if (!try_range(content, content_n, &items, &st, err) && st == VT_OK &&
        !try_list(content, content_n, &items, &st, err) && st == VT_OK)
        /* Not a range or list: the braces stay, escaped so they are not re-read. */
        st = push_owned(&items, concat3("\\{", 2, content, content_n, "\\}", 2), err);
    if (st == VT_OK) st = combine(s, open, &items, s + close + 1, n - (size_t)close - 1, out, err);
    shard_list_free(&items);
    return st;
}

static void unescape(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) r++;
        *w++ = *r;
    }
    *w = '\0';
}

vt_status shard_list_expand(const char *spec, shard_list *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return vt_fail(err, VT_ERR_ARGUMENT, "empty shard specification");
    vt_status st = VT_OK;
    const char *part = spec;
    while (st == VT_OK) {
        const char *sep = strstr(part, "::");
        size_t n = sep ? (size_t)(sep - part) : strlen(part);
        if (n == 0) st = vt_fail(err, VT_ERR_ARGUMENT, "empty entry in shard specification '%s' (between '::')", spec);
        else st = expand_raw(part, n, out, err);
        if (!sep) break;
        part = sep + 2;
    }
    if (st != VT_OK) {
        shard_list_free(out);
        return st;
    }
    for (size_t i = 0; i < out->count; i++) unescape(out->paths[i]);
    return VT_OK;
}

void shard_list_free(shard_list *list) {
    if (!list) return;
    for (size_t i = 0; i < list->count; i++) free(list->paths[i]);
    free(list->paths);
    memset(list, 0, sizeof *list);
}
