/* Test helper: tokenizes many strings in one run, for the Python parity test.
 *
 *   tokenize_file [--context N] [--clean] [--vocab PATH] INPUT
 *
 * INPUT (or "-" for stdin) has one string per line, written as the hex digits
 * of its UTF-8 bytes (so any string, newlines and invalid UTF-8 included, fits
 * on a line; an empty line is the empty string). For each input line one
 * output line: the context-length ids separated by spaces, or
 * "ERROR <message>". With --clean the line is instead the hex of the UTF-8 of
 * the cleaned text (open_clip's _clean_lower), for debugging mismatches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/text/text_clean.h"
#include "io/text/tokenizer.h"
#include "io/text/unicode_util.h"

typedef struct {
    int context;
    int clean_only;
    const char *vocab;
    const char *input;
} options;

static int usage(void) {
    fprintf(stderr, "usage: tokenize_file [--context N] [--clean] [--vocab PATH] INPUT|-\n");
    return 2;
}

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){77, 0, NULL, NULL};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--context") == 0 && i + 1 < argc) o->context = atoi(argv[++i]);
        else if (strcmp(argv[i], "--vocab") == 0 && i + 1 < argc) o->vocab = argv[++i];
        else if (strcmp(argv[i], "--clean") == 0) o->clean_only = 1;
        else if (!o->input) o->input = argv[i];
        else return -1;
    }
    return o->input ? 0 : -1;
}

static int hex_digit(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes the hex line in place; returns the byte count or -1. */
static long decode_hex_line(char *line, size_t len) {
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (len % 2) return -1;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit((unsigned char)line[i]), lo = hex_digit((unsigned char)line[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        line[i / 2] = (char)(hi * 16 + lo);
    }
    return (long)(len / 2);
}

static void print_ids(FILE *out, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) fprintf(out, i ? " %d" : "%d", ids[i]);
    fputc('\n', out);
}

static void print_clean_text(FILE *out, const char *text, size_t n) {
    vt_u32str decoded = {0}, clean = {0};
    vt_bytes utf8 = {0};
    size_t bad = 0;
    int rc = vt_utf8_decode((const uint8_t *)text, n, &decoded, &bad);
    if (rc > 0) fprintf(out, "ERROR invalid UTF-8 at byte offset %zu\n", bad);
    else if (rc < 0 || vt_clip_clean_lower(decoded.v, decoded.n, &clean) ||
             vt_utf8_encode(&utf8, clean.v, clean.n))
        fprintf(out, "ERROR out of memory\n");
    else {
        for (size_t i = 0; i < utf8.n; i++) fprintf(out, "%02x", utf8.v[i]);
        fputc('\n', out);
    }
    vt_u32_free(&decoded);
    vt_u32_free(&clean);
    vt_bytes_free(&utf8);
}

int main(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o) || o.context < 1) return usage();
    FILE *in = strcmp(o.input, "-") == 0 ? stdin : fopen(o.input, "rb");
    if (!in) {
        fprintf(stderr, "tokenize_file: cannot open %s\n", o.input);
        return 1;
    }
    vt_error err = {0};
    clip_tokenizer *tok = NULL;
    if (!o.clean_only && clip_tokenizer_load(o.vocab, &tok, &err) != VT_OK) {
        fprintf(stderr, "tokenize_file: %s\n", err.message);
        return 1;
    }
    int32_t *ids = malloc((size_t)o.context * sizeof *ids);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while (ids && (got = getline(&line, &cap, in)) >= 0) {
        long n = decode_hex_line(line, (size_t)got);
        if (n < 0) fprintf(stdout, "ERROR input line is not hex\n");
        else if (o.clean_only) print_clean_text(stdout, line, (size_t)n);
        else if (clip_tokenize_n(tok, line, (size_t)n, o.context, ids, &err) == VT_OK)
            print_ids(stdout, ids, o.context);
        else
            fprintf(stdout, "ERROR %s\n", err.message);
    }
    free(line);
    free(ids);
    clip_tokenizer_free(tok);
    if (in != stdin) fclose(in);
    return 0;
}
