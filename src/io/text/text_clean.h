/* Text cleaning for the CLIP tokenizer, reproducing open_clip's default
 * `_clean_lower` exactly:
 *
 *     whitespace_clean(basic_clean(text)).lower()
 *     basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
 *     whitespace_clean(t) = " ".join(t.split()).strip()
 *
 * ftfy.fix_text (ftfy 6.3.1, default TextFixerConfig) is ported rule by rule;
 * each function below names the ftfy / CPython function it mirrors.
 *
 * All functions work on code-point strings, return 0 on success and -1 when
 * memory ran out, and append their result to `out`. */
#ifndef VT_IO_TEXT_CLEAN_H
#define VT_IO_TEXT_CLEAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/text/unicode_util.h"

/* open_clip tokenizer.py: _clean_lower. */
int vt_clip_clean_lower(const uint32_t *text, size_t n, vt_u32str *out);

/* ftfy.fix_text(text) with the default configuration. */
int vt_ftfy_fix_text(const uint32_t *text, size_t n, vt_u32str *out);

/* ftfy.fix_encoding(text): the mojibake-repair loop on its own. */
int vt_ftfy_fix_encoding(const uint32_t *text, size_t n, vt_u32str *out);

/* ftfy.badness.is_bad: does the text contain a likely-mojibake sequence? */
bool vt_ftfy_is_bad(const uint32_t *text, size_t n);

/* CPython html.unescape. */
int vt_html_unescape(const uint32_t *text, size_t n, vt_u32str *out);

#endif
