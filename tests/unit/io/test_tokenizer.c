/* Unit tests of the CLIP tokenizer (src/io/tokenizer.c, text_clean.c,
 * unicode_util.c). Expected ids come from open_clip 3.3.0's SimpleTokenizer;
 * the exhaustive comparison is tests/reference/test_tokenizer_parity.py.
 * The vocabulary is the copy built into the library (override with
 * $VITAMIN_BPE_VOCAB). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "io/text/text_clean.h"
#include "io/text/tokenizer.h"
#include "io/text/unicode_util.h"
#include "unit.h"

#define CTX 77

/* NULL: $VITAMIN_BPE_VOCAB if set, else the built-in copy, which this test
 * thereby covers too. */
static const char *vocab_path(void) { return NULL; }

/* Tokenizes `text` and checks the framed ids: SOT, `ids`, EOT, zeros. */
static void check_ids(const clip_tokenizer *tok, const char *text, const int32_t *ids, int n) {
    int32_t out[CTX];
    vt_error err = {0};
    CHECK(clip_tokenize(tok, text, CTX, out, &err) == VT_OK);
    CHECK(out[0] == CLIP_SOT_ID);
    int same = 1;
    for (int i = 0; i < n; i++) same &= out[1 + i] == ids[i];
    if (!same) fprintf(stderr, "  ids differ for \"%s\"\n", text);
    CHECK(same);
    CHECK(out[n + 1] == CLIP_EOT_ID);
    int zeros = 1;
    for (int i = n + 2; i < CTX; i++) zeros &= out[i] == 0;
    CHECK(zeros);
}

static void test_known_ids(const clip_tokenizer *tok) {
    check_ids(tok, "a photo of a cat", (const int32_t[]){320, 1125, 539, 320, 2368}, 5);
    check_ids(tok, "Hello, World! It's 2024.",
              (const int32_t[]){3306, 267, 1002, 256, 585, 568, 273, 271, 273, 275, 269}, 11);
    check_ids(tok, "", NULL, 0);
    /* mojibake repaired by ftfy: "été à paris" */
    check_ids(tok, "\xc3\x83\xc2\xa9t\xc3\x83\xc2\xa9 \xc3\x83\xc2\xa0 Paris",
              (const int32_t[]){3459, 39694, 21259, 3445}, 4);
    /* Greek capitals with the final-sigma rule: "οδυσσευς" */
    check_ids(tok, "\xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3",
              (const int32_t[]){138, 123, 138, 112, 139, 227, 139, 225, 139, 225, 138, 113, 139,
                                227, 139, 480},
              16);
    /* U+0130 lowers to "i\u0307" */
    check_ids(tok, "\xc4\xb0stanbul", (const int32_t[]){328, 16384, 11231}, 3);
    /* entities unescaped by ftfy and twice more by html.unescape */
    check_ids(tok, "&amp;lt;b&amp;gt;", (const int32_t[]){283, 321, 285}, 3);
    /* literal special-token strings become the special ids */
    check_ids(tok, "<start_of_text>x<end_of_text>", (const int32_t[]){49406, 343, 49407}, 3);
    /* contraction in mixed case, ligature */
    check_ids(tok, "we'RE \xef\xac\x81ne", (const int32_t[]){649, 982, 3797}, 3);
    /* emoji with skin tone, CJK */
    check_ids(tok, "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xe6\x97\xa5\xe6\x9c\xac",
              (const int32_t[]){43722, 39121, 19277, 361}, 4);
    /* fullwidth letters and ideographic space */
    check_ids(tok, "\xef\xbc\xac\xef\xbc\xaf\xef\xbc\xb5\xef\xbc\xa4\xe3\x80\x80\xef\xbc\xae"
                   "\xef\xbc\xaf\xef\xbc\xa9\xef\xbc\xb3\xef\xbc\xa5\xef\xbc\xb3",
              (const int32_t[]){7464, 31575}, 2);
}

static void test_truncation(const clip_tokenizer *tok) {
    char text[401];
    for (int i = 0; i < 100; i++) memcpy(text + 4 * i, "the ", 4);
    text[400] = 0;
    int32_t out[CTX];
    vt_error err = {0};
    CHECK(clip_tokenize(tok, text, CTX, out, &err) == VT_OK);
    CHECK(out[0] == CLIP_SOT_ID);
    int body = 1;
    for (int i = 1; i < CTX - 1; i++) body &= out[i] == 518;
    CHECK(body);
    CHECK(out[CTX - 1] == CLIP_EOT_ID);

    /* exactly 75 ids fit without truncation; 76 do not */
    char fits[151];
    for (int i = 0; i < 75; i++) memcpy(fits + 2 * i, "x ", 2);
    fits[150] = 0;
    CHECK(clip_tokenize(tok, fits, CTX, out, &err) == VT_OK);
    CHECK(out[75] == 343 && out[76] == CLIP_EOT_ID);
    char over[153];
    for (int i = 0; i < 76; i++) memcpy(over + 2 * i, "x ", 2);
    over[152] = 0;
    CHECK(clip_tokenize(tok, over, CTX, out, &err) == VT_OK);
    CHECK(out[75] == 343 && out[76] == CLIP_EOT_ID);
}

static void test_short_contexts(const clip_tokenizer *tok) {
    const char *texts[3] = {"", "a", "a photo of a cat"};
    const int32_t expect1[3][1] = {{49407}, {49407}, {49407}};
    const int32_t expect2[3][2] = {{49406, 49407}, {49406, 49407}, {49406, 49407}};
    const int32_t expect5[3][5] = {{49406, 49407, 0, 0, 0},
                                   {49406, 320, 49407, 0, 0},
                                   {49406, 320, 1125, 539, 49407}};
    vt_error err = {0};
    for (int t = 0; t < 3; t++) {
        int32_t out[5];
        CHECK(clip_tokenize(tok, texts[t], 1, out, &err) == VT_OK);
        CHECK(memcmp(out, expect1[t], sizeof expect1[t]) == 0);
        CHECK(clip_tokenize(tok, texts[t], 2, out, &err) == VT_OK);
        CHECK(memcmp(out, expect2[t], sizeof expect2[t]) == 0);
        CHECK(clip_tokenize(tok, texts[t], 5, out, &err) == VT_OK);
        CHECK(memcmp(out, expect5[t], sizeof expect5[t]) == 0);
    }
}

static void test_invalid_input(const clip_tokenizer *tok) {
    int32_t out[CTX];
    vt_error err = {0};
    CHECK(clip_tokenize(tok, "abc\xff", CTX, out, &err) == VT_ERR_VALUE);
    CHECK(strstr(err.message, "byte offset 3") != NULL);
    CHECK(clip_tokenize(tok, "caf\xc3\xa9 \xe2\x82", CTX, out, &err) == VT_ERR_VALUE);
    CHECK(strstr(err.message, "byte offset 6") != NULL);
    CHECK(clip_tokenize(tok, "\xed\xa0\x80", CTX, out, &err) == VT_ERR_VALUE); /* surrogate */
    CHECK(clip_tokenize(tok, "\xc0\x80", CTX, out, &err) == VT_ERR_VALUE);     /* overlong */
    CHECK(clip_tokenize(tok, "\xf4\x90\x80\x80", CTX, out, &err) == VT_ERR_VALUE);
    CHECK(clip_tokenize(tok, "ok", 0, out, &err) == VT_ERR_ARGUMENT);
    CHECK(clip_tokenize(tok, NULL, CTX, out, &err) == VT_ERR_ARGUMENT);
    CHECK(clip_tokenize(NULL, "ok", CTX, out, &err) == VT_ERR_ARGUMENT);
    CHECK(clip_tokenize(tok, "ok", CTX, NULL, &err) == VT_ERR_ARGUMENT);
    /* an embedded NUL is a control character ftfy removes */
    CHECK(clip_tokenize_n(tok, "a\0b", 3, CTX, out, &err) == VT_OK);
    int32_t ab[CTX];
    CHECK(clip_tokenize(tok, "ab", CTX, ab, &err) == VT_OK);
    CHECK(memcmp(out, ab, sizeof ab) == 0);
}

static void test_load_errors(void) {
    clip_tokenizer *tok = NULL;
    vt_error err = {0};
    CHECK(clip_tokenizer_load("/nonexistent/vocab.txt.gz", &tok, &err) == VT_ERR_IO);
    CHECK(tok == NULL);
    CHECK(strstr(err.message, "/nonexistent/vocab.txt.gz") != NULL);

    char path[] = "/tmp/vt_test_vocab_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char junk[] = "#version: 0.2\ni n\nt h\n";
        CHECK(write(fd, junk, sizeof junk - 1) == (ssize_t)(sizeof junk - 1));
        close(fd);
        CHECK(clip_tokenizer_load(path, &tok, &err) == VT_ERR_FORMAT);
        CHECK(strstr(err.message, "merge lines") != NULL);
        unlink(path);
    }

    const char *saved = getenv("VITAMIN_BPE_VOCAB");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("VITAMIN_BPE_VOCAB", "/nonexistent/env_vocab.txt.gz", 1);
    /* A set $VITAMIN_BPE_VOCAB is used, never silently replaced by the built-in copy. */
    CHECK(clip_tokenizer_load(NULL, &tok, &err) == VT_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/env_vocab.txt.gz") != NULL);
    /* Unset: the built-in copy, with no file anywhere. */
    unsetenv("VITAMIN_BPE_VOCAB");
    CHECK(clip_tokenizer_load(NULL, &tok, &err) == VT_OK);
    if (tok) {
        check_ids(tok, "a photo of a cat", (const int32_t[]){320, 1125, 539, 320, 2368}, 5);
        clip_tokenizer_free(tok);
    }
    if (copy) setenv("VITAMIN_BPE_VOCAB", copy, 1);
    free(copy);
}

/* Cleaning pieces on their own, against values from ftfy / CPython. */
static int clean_equals(int (*fn)(const uint32_t *, size_t, vt_u32str *), const char *in,
                        const char *expected) {
    vt_u32str a = {0}, b = {0}, want = {0};
    int ok = vt_u32_append_utf8(&a, in) == 0 && fn(a.v, a.n, &b) == 0 &&
             vt_u32_append_utf8(&want, expected) == 0 && vt_u32_equal(b.v, b.n, want.v, want.n);
    if (!ok) fprintf(stderr, "  cleaning \"%s\" did not give \"%s\"\n", in, expected);
    vt_u32_free(&a);
    vt_u32_free(&b);
    vt_u32_free(&want);
    return ok;
}

static void test_cleaning_pieces(void) {
    CHECK(clean_equals(vt_ftfy_fix_text, "s\xc3\x83\xc2\xb3", "s\xc3\xb3"));                 /* sÃ³ */
    CHECK(clean_equals(vt_ftfy_fix_text, "voil\xc3\x83 le travail", "voil\xc3\xa0 le travail"));
    CHECK(clean_equals(vt_ftfy_fix_text, "\xc3\xa2\xc5\x93\xe2\x80\x9d No problems",
                       "\xe2\x9c\x94 No problems"));
    CHECK(clean_equals(vt_ftfy_fix_text, "P&EACUTE;REZ &lt;", "P\xc3\x89REZ <"));
    CHECK(clean_equals(vt_ftfy_fix_text, "&lt; <b>", "&lt; <b>")); /* '<' switches it off */
    CHECK(clean_equals(vt_ftfy_fix_text, "\x1b[36;44mblue\x1b[0m", "blue"));
    CHECK(clean_equals(vt_html_unescape, "&notit; &amp &#x41; &#0;", "\xc2\xacit; & A \xef\xbf\xbd"));
    CHECK(clean_equals(vt_clip_clean_lower, "  A\xce\xa3 \xce\xa3 \n\tB ", "a\xcf\x82 \xcf\x83 b"));
    CHECK(clean_equals(vt_nfc, "e\xcc\x81 A\xcc\x8a", "\xc3\xa9 \xc3\x85"));
    /* canonical reordering of marks: dot below (220) before acute (230) */
    CHECK(clean_equals(vt_nfc, "q\xcc\x81\xcc\xa3", "q\xcc\xa3\xcc\x81"));
}

typedef struct {
    const clip_tokenizer *tok;
    int ok;
} thread_job;

static void *tokenize_many(void *arg) {
    thread_job *job = arg;
    const char *texts[3] = {"a photo of a cat", "\xc3\x83\xc2\xa9t\xc3\x83\xc2\xa9", "dog"};
    const int32_t first[3] = {320, 3459, 1929};
    job->ok = 1;
    for (int i = 0; i < 300; i++) {
        int32_t out[CTX];
        vt_error err = {0};
        job->ok &= clip_tokenize(job->tok, texts[i % 3], CTX, out, &err) == VT_OK &&
                   out[1] == first[i % 3];
    }
    return NULL;
}

static void test_threads(const clip_tokenizer *tok) {
    pthread_t threads[4];
    thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){tok, 0};
        CHECK(pthread_create(&threads[t], NULL, tokenize_many, &jobs[t]) == 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        CHECK(jobs[t].ok);
    }
}

int main(void) {
    /* the generated tables are CPython 3.11's Unicode 14; utf8proc must not be older */
    CHECK(strcmp(vt_gen_python_unicode_version, "14.0.0") == 0);
    CHECK(strcmp(utf8proc_unicode_version(), "14.0.0") >= 0);
    /* text_clean.c indexes ftfy's CHARMAP_ENCODINGS by position */
    CHECK(strcmp(vt_gen_charmap_names[0], "latin-1") == 0);
    CHECK(strcmp(vt_gen_charmap_names[1], "sloppy-windows-1252") == 0);
    CHECK(strcmp(vt_gen_charmap_names[6], "sloppy-windows-1257") == 0);
    CHECK(strcmp(vt_gen_charmap_names[7], "iso-8859-2") == 0);
    CHECK(strcmp(vt_gen_charmap_names[8], "macroman") == 0);

    clip_tokenizer *tok = NULL;
    vt_error err = {0};
    if (clip_tokenizer_load(vocab_path(), &tok, &err) != VT_OK) {
        fprintf(stderr, "cannot load the vocabulary: %s\n", err.message);
        CHECK(0);
        return unit_summary("tokenizer");
    }
    test_known_ids(tok);
    test_truncation(tok);
    test_short_contexts(tok);
    test_invalid_input(tok);
    test_cleaning_pieces();
    test_threads(tok);
    clip_tokenizer_free(tok);
    test_load_errors();
    return unit_summary("tokenizer");
}
