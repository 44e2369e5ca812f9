/* libFuzzer target for the CLIP tokenizer: arbitrary bytes go through
 * clip_tokenize (as a NUL-terminated string) and clip_tokenize_n (raw, NULs
 * included). Either the text is rejected as invalid UTF-8 (VT_ERR_VALUE) or
 * the ids must be well framed: SOT first, every id in the vocabulary, the
 * last non-zero id EOT.
 *
 * The vocabulary is loaded once, from $VITAMIN_BPE_VOCAB or
 * share/bpe_simple_vocab_16e6.txt.gz relative to the working directory.
 * Build (see Makefile `fuzz`) and run e.g.:
 *   build/fuzz/fuzz_tokenizer -max_total_time=180 tests/fuzz/corpus/tokenizer */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/text/tokenizer.h"

static const clip_tokenizer *tokenizer(void) {
    static clip_tokenizer *tok;
    if (!tok) {
        const char *path = getenv("VITAMIN_BPE_VOCAB");
        vt_error err = {0};
        if (clip_tokenizer_load(path && *path ? path : "share/bpe_simple_vocab_16e6.txt.gz", &tok,
                                &err) != VT_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.message);
            abort();
        }
    }
    return tok;
}

/* SOT first (EOT alone for context 1); ids in range; the last non-zero id is
 * EOT and only padding zeros follow it. (EOT can also occur earlier: the text
 * may contain the literal string "<end_of_text>".) */
static void check_framing(const int32_t *ids, int context) {
    if (ids[0] != (context == 1 ? CLIP_EOT_ID : CLIP_SOT_ID)) abort();
    for (int i = 0; i < context; i++)
        if (ids[i] < 0 || ids[i] >= CLIP_VOCAB_SIZE) abort();
    int last = context - 1;
    while (last > 0 && ids[last] == 0) last--;
    if (ids[last] != CLIP_EOT_ID) abort();
}

static void run_one(const char *text, size_t n, int as_c_string, int context) {
    int32_t ids[77];
    vt_error err = {0};
    vt_status st = as_c_string ? clip_tokenize(tokenizer(), text, context, ids, &err)
                               : clip_tokenize_n(tokenizer(), text, n, context, ids, &err);
    if (st == VT_OK) check_framing(ids, context);
    else if (st != VT_ERR_VALUE || strstr(err.message, "byte offset") == NULL) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    int context = size && data[0] % 16 == 0 ? 1 + data[size - 1] % 8 : 77;
    run_one(text, size, 1, context);
    run_one(text, size, 0, 77);
    free(text);
    return 0;
}
