/* open_clip's default CLIP tokenizer (SimpleTokenizer), token for token:
 * ftfy.fix_text -> html unescape (twice) -> whitespace collapse -> lower-case ->
 * the CLIP pre-tokeniser regex -> byte-level BPE with the vocabulary open_clip
 * ships (bpe_simple_vocab_16e6.txt.gz) -> [SOT] ids [EOT], truncated to the
 * context length with EOT kept last, zero padded.
 *
 * Parity: identical ids to open_clip 3.3.0 (ftfy 6.3.1, regex, CPython 3.11 /
 * Unicode 14.0) - checked on >10,000 generated strings by
 * tests/reference/test_tokenizer_parity.py. Unicode data comes from tables
 * generated out of that Python (scripts/gen_tokenizer_tables.py); only NFC is
 * computed by utf8proc, with code points Unicode 14 leaves unassigned kept
 * inert, so a newer utf8proc gives the same results. Deliberate differences:
 *   - input is UTF-8 bytes; invalid UTF-8 is VT_ERR_VALUE (Python takes str);
 *   - context_length 0 is an error (open_clip silently uses 77);
 *   - ftfy's fix-until-stable loop is capped at max(64, 2^26 / segment length)
 *     passes and decode_inconsistent_utf8's recursion at depth 100, so
 *     adversarial megabyte inputs (e.g. "&amp;amp;amp;..." nested a million
 *     deep, which ftfy itself would take hours on) stay fast; results differ
 *     only beyond those bounds;
 *   - texts over 512 MiB are rejected (VT_ERR_ARGUMENT). */
#ifndef VT_IO_TOKENIZER_H
#define VT_IO_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "vitamin.h"

#define CLIP_SOT_ID 49406
#define CLIP_EOT_ID 49407
#define CLIP_VOCAB_SIZE 49408

typedef struct clip_tokenizer clip_tokenizer;

/* `vocab_path` may be NULL: then $VITAMIN_BPE_VOCAB if set, else the copy
 * built into the library (io/tokenizer_vocab.h). */
vt_status clip_tokenizer_load(const char *vocab_path, clip_tokenizer **out, vt_error *err);
void clip_tokenizer_free(clip_tokenizer *tok);

/* Tokenizes one UTF-8 string into exactly `context_length` ids. Invalid UTF-8
 * is an error (VT_ERR_VALUE), not silently replaced. Thread-safe. */
vt_status clip_tokenize(const clip_tokenizer *tok, const char *text, int context_length,
                        int32_t *out_ids, vt_error *err);

/* The same for text of explicit length `nbytes` (may contain U+0000, which the
 * cleaning removes as a control character). context_length must be >= 1
 * (open_clip would silently replace 0 by 77; here it is VT_ERR_ARGUMENT). */
vt_status clip_tokenize_n(const clip_tokenizer *tok, const char *text, size_t nbytes,
                          int context_length, int32_t *out_ids, vt_error *err);

#endif
