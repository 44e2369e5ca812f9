/* Unit tests for src/io/json.c: the grammar, string escapes and UTF-8 rules,
 * limits, lookups, and that every rejection comes with a located message. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/serial/json.h"
#include "unit.h"

/* Parses a NUL-terminated literal; returns the DOM or NULL. */
static json_value *parse(const char *text, vt_error *err) {
    json_value *value = NULL;
    if (json_parse(text, strlen(text), &value, err) != VT_OK) return NULL;
    return value;
}

static int rejects(const char *text) {
    vt_error err = {0};
    json_value *value = parse(text, &err);
    json_free(value);
    return value == NULL && err.status == VT_ERR_FORMAT && strstr(err.message, "JSON:") != NULL;
}

static void test_values(void) {
    vt_error err = {0};
    json_value *doc = parse(" {\"a\": [1, -2.5, 3e2, 0, -0.125E-1], \"b\": true, \"c\": false,\n"
                            "  \"d\": null, \"e\": \"text\", \"f\": {}, \"g\": []} ",
                            &err);
    CHECK(doc != NULL);
    if (!doc) return;
    CHECK(doc->type == JSON_OBJECT && doc->count == 7);
    const json_value *a = json_get(doc, "a");
    CHECK(a && a->type == JSON_ARRAY && a->count == 5);
    if (a && a->count == 5) {
        CHECK_NEAR(a->items[0].number, 1, 0);
        CHECK_NEAR(a->items[1].number, -2.5, 0);
        CHECK_NEAR(a->items[2].number, 300, 0);
        CHECK_NEAR(a->items[3].number, 0, 0);
        CHECK_NEAR(a->items[4].number, -0.0125, 1e-18);
    }
    CHECK(json_get(doc, "b")->type == JSON_BOOL && json_get(doc, "b")->boolean == 1);
    CHECK(json_get(doc, "c")->type == JSON_BOOL && json_get(doc, "c")->boolean == 0);
    CHECK(json_get(doc, "d")->type == JSON_NULL);
    CHECK(strcmp(json_get_string(doc, "e", "x"), "text") == 0);
    CHECK(json_get(doc, "f")->type == JSON_OBJECT && json_get(doc, "f")->count == 0);
    CHECK(json_get(doc, "g")->type == JSON_ARRAY && json_get(doc, "g")->count == 0);
    CHECK(json_get(doc, "missing") == NULL);
    CHECK(json_get(json_get(doc, "a"), "x") == NULL); /* not an object */
    CHECK_NEAR(json_get_number(doc, "e", 7), 7, 0);     /* wrong type: fallback */
    CHECK(strcmp(json_get_string(doc, "a", "fb"), "fb") == 0);
    json_free(doc);

    doc = parse("{\"k\": 1, \"k\": 2}", &err); /* duplicates: the last wins, as in Python */
    CHECK(doc && json_get_number(doc, "k", 0) == 2);
    json_free(doc);

    doc = parse("42", &err);
    CHECK(doc && doc->type == JSON_NUMBER && doc->number == 42);
    json_free(doc);

    /* The buffer need not be NUL-terminated: only `size` bytes are read. */
    json_value *partial = NULL;
    CHECK(json_parse("123", 2, &partial, &err) == VT_OK && partial && partial->number == 12);
    json_free(partial);
    json_free(NULL);
}

static void test_strings(void) {
    vt_error err = {0};
    json_value *doc = parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", \"\\ud83d\\ude00\", "
                            "\"caf\xc3\xa9 \xf0\x9f\x98\x80\", \"\"]",
                            &err);
    CHECK(doc != NULL);
    if (!doc) return;
    CHECK(strcmp(doc->items[0].string, "a\"b\\c/d\b\f\n\r\t") == 0);
    CHECK(strcmp(doc->items[1].string, "\xc3\xa9\xe2\x82\xac") == 0);
    CHECK(strcmp(doc->items[2].string, "\xf0\x9f\x98\x80") == 0);
    CHECK(strcmp(doc->items[3].string, "caf\xc3\xa9 \xf0\x9f\x98\x80") == 0);
    CHECK(strcmp(doc->items[4].string, "") == 0);
    json_free(doc);

    CHECK(rejects("\"\\ud83d\""));          /* lone high surrogate */
    CHECK(rejects("\"\\ud83d\\u0041\""));   /* high surrogate + non-low */
    CHECK(rejects("\"\\ude00\""));          /* lone low surrogate */
    CHECK(rejects("\"\\u0000\""));          /* NUL by escape */
    CHECK(rejects("\"\\u12\""));            /* short \u */
    CHECK(rejects("\"\\x41\""));            /* unknown escape */
    CHECK(rejects("\"tab\there\""));        /* raw control character */
    CHECK(rejects("\"\xc0\x80\""));         /* overlong NUL */
    CHECK(rejects("\"\xe0\x80\xaf\""));     /* overlong '/' */
    CHECK(rejects("\"\xed\xa0\x80\""));     /* UTF-8 encoded surrogate */
    CHECK(rejects("\"\xf4\x90\x80\x80\"")); /* above U+10FFFF */
    CHECK(rejects("\"\xf5\x80\x80\x80\""));
    CHECK(rejects("\"\xc3\""));             /* truncated sequence */
    CHECK(rejects("\"\x80\""));             /* stray continuation byte */
    CHECK(rejects("\"abc"));                /* unterminated */
    CHECK(rejects("\"abc\\"));

    /* Raw NUL inside a string (length-delimited input). */
    json_value *value = NULL;
    CHECK(json_parse("\"a\0b\"", 5, &value, &err) == VT_ERR_FORMAT && value == NULL);
}

static void test_grammar_errors(void) {
    const char *bad[] = {"", "   ", "01", "1.", ".5", "+1", "-", "1e", "1e+", "--1", "0x10", "NaN", "Infinity",
                         "tru", "nul", "[1,]", "[,1]", "[1 2]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
                         "{\"a\" 1}", "[", "{", "[1", "{\"a\":1", "1 2", "{} x", "'a'", "[1]]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rejected = rejects(bad[i]);
        if (!rejected) fprintf(stderr, "accepted invalid JSON: '%s'\n", bad[i]);
        CHECK(rejected);
    }
}

static void test_messages_have_positions(void) {
    vt_error err = {0};
    CHECK(parse("{\n  \"a\": 1,\n  \"b\" 2\n}", &err) == NULL);
    CHECK(strstr(err.message, "line 3") != NULL);
    CHECK(strstr(err.message, "column 7") != NULL);
}

static void test_depth_limit(void) {
    char deep[200];
    vt_error err = {0};
    for (int depth = 64; depth <= 65; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        json_value *doc = parse(deep, &err);
        CHECK((doc != NULL) == (depth == 64));
        json_free(doc);
    }
    CHECK(strstr(err.message, "nesting deeper than 64") != NULL);
    /* A long, deep and unbalanced input must fail fast, not recurse forever. */
    size_t n = 1 << 20;
    char *huge = malloc(n);
    memset(huge, '[', n);
    json_value *doc = NULL;
    CHECK(json_parse(huge, n, &doc, &err) == VT_ERR_FORMAT && doc == NULL);
    free(huge);
}

static void test_numbers_ignore_locale(void) {
    /* strtod would read "1.5" as 1 in a locale with a decimal comma. */
    const char *locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8"};
    for (size_t i = 0; i < sizeof locales / sizeof *locales; i++)
        if (setlocale(LC_NUMERIC, locales[i])) break;
    vt_error err = {0};
    json_value *doc = parse("[1.5, 2.25e1, 123456789012345678901234567890.5]", &err);
    CHECK(doc && doc->items[0].number == 1.5 && doc->items[1].number == 22.5);
    CHECK(doc && doc->items[2].number > 1.2e29 && doc->items[2].number < 1.3e29);
    json_free(doc);
    setlocale(LC_NUMERIC, "C");
}

static void test_partial_containers_are_freed(void) {
    /* Failures deep inside nested containers must not leak (ASan/LSan checks). */
    CHECK(rejects("{\"a\": [1, 2, {\"b\": [3, \"x\", tru]}]}"));
    CHECK(rejects("[[1, 2], [3, [4, \"\\ud800\"]]]"));
    CHECK(rejects("{\"a\": {\"b\": {\"c\": 1,}}}"));
}

int main(void) {
    test_values();
    test_strings();
    test_grammar_errors();
    test_messages_have_positions();
    test_depth_limit();
    test_numbers_ignore_locale();
    test_partial_containers_are_freed();
    return unit_summary("test_json");
}
