/* open_clip's SimpleTokenizer (open_clip 3.3.0 src/open_clip/tokenizer.py)
 * in C: vocabulary loading, the pre-tokeniser regex, byte-level BPE and the
 * [SOT] ... [EOT] framing. Text cleaning lives in text_clean.c. */
#include "io/text/tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/file.h"
#include "io/text/text_clean.h"
#include "io/text/tokenizer_vocab.h"
#include "io/text/unicode_util.h"

/* merges[1 : 49152-256-2+1] in SimpleTokenizer.__init__ */
#define CLIP_MERGE_COUNT (49152 - 256 - 2)
#define NO_ID UINT32_MAX
/* Longest text accepted (512 MiB): keeps BPE positions far below NO_ID. */
#define MAX_TEXT_BYTES (UINT32_MAX / 8)

/* ========================================================================== */
/* hash maps                                                                  */
/* ========================================================================== */

/* vocabulary string -> id; strings live in the tokenizer's arena */
typedef struct {
    uint32_t offset, len, id;
} string_slot;

/* (left id, right id) -> merge rank and the id of the merged symbol */
typedef struct {
    uint64_t key; /* 0 = empty; else ((left << 32) | right) + 1 */
    uint32_t rank, merged;
} pair_slot;

struct clip_tokenizer {
    char *arena; /* every vocabulary string, back to back */
    size_t arena_len;
    string_slot *strings;
    size_t string_mask;
    pair_slot *pairs;
    size_t pair_mask;
    uint32_t byte_id[256];     /* byte -> id of its byte-level symbol */
    uint32_t byte_end_id[256]; /* byte -> id of the symbol + "</w>" */
    uint32_t sot_id, eot_id;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

static size_t table_size_for(size_t entries) {
    size_t size = 16;
    while (size < entries * 2) size *= 2;
    return size;
}

/* The slot holding `s`, or the empty slot where it would go. */
static string_slot *find_string_slot(const clip_tokenizer *tok, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & tok->string_mask;; i = (i + 1) & tok->string_mask) {
        string_slot *slot = &tok->strings[i];
        if (slot->id == NO_ID) return slot;
        if (slot->len == n && memcmp(tok->arena + slot->offset, s, n) == 0) return slot;
    }
}

static uint32_t lookup_string(const clip_tokenizer *tok, const char *s, size_t n) {
    return find_string_slot(tok, s, n)->id;
}

/* Python's dict(zip(vocab, range(len(vocab)))): a repeated string keeps the
 * last id. The string must already be in the arena at `offset`. */
static void insert_string(clip_tokenizer *tok, uint32_t offset, uint32_t len, uint32_t id) {
    string_slot *slot = find_string_slot(tok, tok->arena + offset, len);
    slot->offset = offset;
    slot->len = len;
    slot->id = id;
}

static pair_slot *find_pair_slot(const clip_tokenizer *tok, uint32_t left, uint32_t right) {
    uint64_t key = (((uint64_t)left << 32) | right) + 1;
    for (size_t i = hash_pair(key) & tok->pair_mask;; i = (i + 1) & tok->pair_mask) {
        pair_slot *slot = &tok->pairs[i];
        if (slot->key == 0 || slot->key == key) return slot;
    }
}

static const pair_slot *lookup_pair(const clip_tokenizer *tok, uint32_t left, uint32_t right) {
    const pair_slot *slot = find_pair_slot(tok, left, right);
    return slot->key ? slot : NULL;
}

/* ========================================================================== */
/* loading                                                                    */
/* ========================================================================== */

/* open_clip bytes_to_unicode(): printable bytes map to themselves, the other
 * 68 to U+0100.. in byte order; vocabulary ids follow that listing order. */
static void byte_level_alphabet(uint8_t order[256], uint32_t cp_of_byte[256]) {
    bool printable[256] = {false};
    int k = 0;
    for (int b = 0; b < 256; b++) {
        printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (printable[b]) {
            order[k++] = (uint8_t)b;
            cp_of_byte[b] = (uint32_t)b;
        }
    }
    uint32_t next = 256;
    for (int b = 0; b < 256; b++)
        if (!printable[b]) {
            order[k++] = (uint8_t)b;
            cp_of_byte[b] = next++;
        }
}

/* gzip bytes (or plain text) -> a malloc'd buffer of the text. `label` names the
 * source in messages (a path, or "<built into libvitamin>"). */
static vt_status gunzip(const unsigned char *gz, size_t gz_len, const char *label, char **data, size_t *len,
                        vt_error *err) {
    if (gz_len < 2 || gz[0] != 0x1f || gz[1] != 0x8b) { /* not gzip: plain text, as gzread reads it */
        *data = malloc(gz_len ? gz_len : 1);
        if (!*data) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading '%s'", label);
        memcpy(*data, gz, gz_len);
        *len = gz_len;
        return VT_OK;
    }
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading '%s'", label);
    size_t cap = 1 << 22, n = 0;
    char *buf = malloc(cap);
    s.next_in = (unsigned char *)gz;
    int rc = Z_OK;
    while (buf && rc != Z_STREAM_END) {
        if (n == cap) {
            char *bigger = cap < ((size_t)1 << 30) ? realloc(buf, cap * 2) : NULL;
            if (!bigger) break;
            buf = bigger;
            cap *= 2;
        }
        size_t in_left = gz_len - (size_t)(s.next_in - gz);
        s.avail_in = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
        s.next_out = (unsigned char *)buf + n;
        s.avail_out = (uInt)(cap - n);
        rc = inflate(&s, Z_NO_FLUSH);
        n = cap - s.avail_out;
        if (rc == Z_BUF_ERROR && s.avail_in == 0 && s.avail_out != 0) rc = Z_DATA_ERROR; /* truncated */
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            vt_status st = vt_fail(err, VT_ERR_FORMAT, "BPE vocabulary '%s' is not a valid gzip file (%s)", label,
                                   s.msg ? s.msg : "truncated or corrupt");
            inflateEnd(&s);
            free(buf);
            return st;
        }
    }
    inflateEnd(&s);
    if (!buf || rc != Z_STREAM_END) {
        free(buf);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory reading '%s'", label);
    }
    *data = buf;
    *len = n;
    return VT_OK;
}

/* Appends bytes to the arena; returns the offset or UINT32_MAX (no memory). */
static uint32_t arena_add(clip_tokenizer *tok, size_t *cap, const char *s, size_t n) {
    if (tok->arena_len + n > *cap) {
        size_t c = *cap ? *cap : 1 << 20;
        while (c < tok->arena_len + n) c *= 2;
        char *a = realloc(tok->arena, c);
        if (!a) return UINT32_MAX;
        tok->arena = a;
        *cap = c;
    }
    memcpy(tok->arena + tok->arena_len, s, n);
    uint32_t off = (uint32_t)tok->arena_len;
    tok->arena_len += n;
    return off;
}

/* A merge line: its whitespace-separated parts (Python str.split()). */
typedef struct {
    const char *part[3];
    size_t len[3];
    int count; /* 3 means "more than two" */
} merge_line;

/* Decodes one character of text already known to be valid UTF-8. */
static size_t decode_valid_utf8_char(const char *s, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    size_t len = u[0] < 0xE0 ? 2 : u[0] < 0xF0 ? 3 : 4;
    uint32_t c = u[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) c = (c << 6) | (u[i] & 0x3F);
    *cp = c;
    return len;
}

static void split_merge_line(const char *s, size_t n, merge_line *m) {
    m->count = 0;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = decode_valid_utf8_char(s + i, &cp);
        if (vt_py_isspace(cp)) {
            i += len;
            continue;
        }
        size_t start = i;
        while (i < n) {
            len = decode_valid_utf8_char(s + i, &cp);
            if (vt_py_isspace(cp)) break;
            i += len;
        }
        if (m->count < 3) {
            m->part[m->count] = s + start;
            m->len[m->count] = i - start;
            m->count++;
        }
    }
}

typedef struct {
    const char *start;
    size_t len;
} line_ref;

/* The vocabulary list of SimpleTokenizer.__init__, as (offset, length) pairs
 * into the tokenizer's arena, in id order. */
typedef struct {
    uint32_t offset[512 + CLIP_MERGE_COUNT + 2];
    uint32_t len[512 + CLIP_MERGE_COUNT + 2];
    size_t count;
    size_t arena_cap;
} vocab_list;

static int vocab_add(clip_tokenizer *tok, vocab_list *v, const char *s, size_t n) {
    uint32_t off = arena_add(tok, &v->arena_cap, s, n);
    if (off == UINT32_MAX) return -1;
    v->offset[v->count] = off;
    v->len[v->count++] = (uint32_t)n;
    return 0;
}

/* vocab = byte symbols + the same with "</w>" + ''.join(merge) for every
 * merge + ['<start_of_text>', '<end_of_text>'] */
static vt_status list_vocabulary(clip_tokenizer *tok, const line_ref *merges,
                                 const uint8_t order[256], const uint32_t cp_of_byte[256],
                                 vocab_list *v, const char *path, vt_error *err) {
    for (int with_end = 0; with_end < 2; with_end++)
        for (int k = 0; k < 256; k++) {
            char sym[8];
            size_t n = vt_utf8_encode_char(cp_of_byte[order[k]], (uint8_t *)sym);
            if (with_end) {
                memcpy(sym + n, "</w>", 4);
                n += 4;
            }
            if (vocab_add(tok, v, sym, n)) goto nomem;
        }
    for (size_t r = 0; r < CLIP_MERGE_COUNT; r++) {
        merge_line m;
        split_merge_line(merges[r].start, merges[r].len, &m);
        if (m.count > 2) /* never in the real file; Python would join them all */
            return vt_fail(err, VT_ERR_FORMAT,
                           "BPE vocabulary '%s': merge line %zu has more than two parts", path,
                           r + 1);
        char joined[256];
        size_t n = 0;
        for (int p = 0; p < m.count; p++) {
            if (n + m.len[p] > sizeof joined)
                return vt_fail(err, VT_ERR_FORMAT, "BPE vocabulary '%s': merge line %zu is too long",
                               path, r + 1);
            memcpy(joined + n, m.part[p], m.len[p]);
            n += m.len[p];
        }
        if (vocab_add(tok, v, joined, n)) goto nomem;
    }
    if (vocab_add(tok, v, "<start_of_text>", 15) || vocab_add(tok, v, "<end_of_text>", 13))
        goto nomem;
    return VT_OK;
nomem:
    return vt_fail(err, VT_ERR_NOMEM, "out of memory building the BPE vocabulary");
}

/* self.encoder = dict(zip(vocab, range(len(vocab)))): later duplicates win. */
static vt_status index_vocabulary(clip_tokenizer *tok, const vocab_list *v, vt_error *err) {
    tok->string_mask = table_size_for(v->count) - 1;
    tok->strings = malloc((tok->string_mask + 1) * sizeof *tok->strings);
    if (!tok->strings) return vt_fail(err, VT_ERR_NOMEM, "out of memory building the vocabulary");
    for (size_t i = 0; i <= tok->string_mask; i++) tok->strings[i].id = NO_ID;
    for (size_t i = 0; i < v->count; i++) insert_string(tok, v->offset[i], v->len[i], (uint32_t)i);
    return VT_OK;
}

/* The ids a word starts from: each byte's symbol, and for the last byte the
 * symbol + "</w>"; plus the special tokens. */
static void resolve_start_symbols(clip_tokenizer *tok, const uint32_t cp_of_byte[256]) {
    for (int b = 0; b < 256; b++) {
        char sym[8];
        size_t n = vt_utf8_encode_char(cp_of_byte[b], (uint8_t *)sym);
        tok->byte_id[b] = lookup_string(tok, sym, n);
        memcpy(sym + n, "</w>", 4);
        tok->byte_end_id[b] = lookup_string(tok, sym, n + 4);
    }
    tok->sot_id = lookup_string(tok, "<start_of_text>", 15);
    tok->eot_id = lookup_string(tok, "<end_of_text>", 13);
}

/* self.bpe_ranks = dict(zip(merges, range(len(merges)))), keyed by ids. A
 * pair whose parts are not vocabulary strings can never occur in a word
 * (every symbol is one), so it is left out. */
static vt_status index_merges(clip_tokenizer *tok, const line_ref *merges, const vocab_list *v,
                              vt_error *err) {
    tok->pair_mask = table_size_for(CLIP_MERGE_COUNT) - 1;
    tok->pairs = calloc(tok->pair_mask + 1, sizeof *tok->pairs);
    if (!tok->pairs) return vt_fail(err, VT_ERR_NOMEM, "out of memory building the merge table");
    for (size_t r = 0; r < CLIP_MERGE_COUNT; r++) {
        merge_line m;
        split_merge_line(merges[r].start, merges[r].len, &m);
        if (m.count != 2) continue;
        uint32_t left = lookup_string(tok, m.part[0], m.len[0]);
        uint32_t right = lookup_string(tok, m.part[1], m.len[1]);
        if (left == NO_ID || right == NO_ID) continue;
        pair_slot *slot = find_pair_slot(tok, left, right);
        slot->key = (((uint64_t)left << 32) | right) + 1;
        slot->rank = (uint32_t)r;
        slot->merged = lookup_string(tok, tok->arena + v->offset[512 + r], v->len[512 + r]);
    }
    return VT_OK;
}

/* Builds vocabulary and merge ranks exactly as SimpleTokenizer.__init__. */
static vt_status build_tables(clip_tokenizer *tok, const line_ref *merges, const char *path,
                              vt_error *err) {
    uint8_t order[256];
    uint32_t cp_of_byte[256];
    byte_level_alphabet(order, cp_of_byte);
    vocab_list *v = calloc(1, sizeof *v);
    if (!v) return vt_fail(err, VT_ERR_NOMEM, "out of memory building the BPE vocabulary");
    vt_status st = list_vocabulary(tok, merges, order, cp_of_byte, v, path, err);
    if (st == VT_OK) st = index_vocabulary(tok, v, err);
    if (st == VT_OK) {
        resolve_start_symbols(tok, cp_of_byte);
        st = index_merges(tok, merges, v, err);
    }
    free(v);
    return st;
}

/* Splits the decompressed file into lines and checks there are enough merges. */
static vt_status parse_vocab(clip_tokenizer *tok, const char *data, size_t len, const char *path,
                             vt_error *err) {
    size_t bad = 0;
    if (!vt_utf8_valid((const uint8_t *)data, len, &bad))
        return vt_fail(err, VT_ERR_FORMAT, "BPE vocabulary '%s' is not UTF-8 (byte offset %zu)",
                       path, bad);
    line_ref *lines = malloc(CLIP_MERGE_COUNT * sizeof *lines);
    if (!lines) return vt_fail(err, VT_ERR_NOMEM, "out of memory reading '%s'", path);
    const char *p = memchr(data, '\n', len); /* line 0 is the version header */
    size_t count = 0;
    while (p && count < CLIP_MERGE_COUNT) {
        const char *start = p + 1, *end = memchr(start, '\n', (size_t)(data + len - start));
        lines[count].start = start;
        lines[count].len = (size_t)((end ? end : data + len) - start);
        count++;
        p = end;
    }
    vt_status st;
    if (count < CLIP_MERGE_COUNT)
        st = vt_fail(err, VT_ERR_FORMAT,
                     "BPE vocabulary '%s' has %zu merge lines, expected at least %d (is it "
                     "open_clip's bpe_simple_vocab_16e6.txt.gz?)",
                     path, count, CLIP_MERGE_COUNT);
    else
        st = build_tables(tok, lines, path, err);
    free(lines);
    return st;
}

static vt_status load_from_gzip(const unsigned char *gz, size_t gz_len, const char *path, clip_tokenizer **out,
                                vt_error *err) {
    char *data = NULL;
    size_t len = 0;
    vt_status st = gunzip(gz, gz_len, path, &data, &len, err);
    if (st != VT_OK) return st;
    clip_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        free(data);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory loading '%s'", path);
    }
    st = parse_vocab(tok, data, len, path, err);
    free(data);
    if (st != VT_OK) {
        clip_tokenizer_free(tok);
        return st;
    }
    if (tok->sot_id != CLIP_SOT_ID || tok->eot_id != CLIP_EOT_ID) {
        clip_tokenizer_free(tok);
        return vt_fail(err, VT_ERR_FORMAT,
                       "BPE vocabulary '%s' gives <start_of_text> id %u, expected %d: not "
                       "open_clip's bpe_simple_vocab_16e6.txt.gz",
                       path, tok->sot_id, CLIP_SOT_ID);
    }
    *out = tok;
    return VT_OK;
}

static vt_status load_from_path(const char *path, clip_tokenizer **out, vt_error *err) {
    char *gz = NULL;
    size_t gz_len = 0;
    vt_status st = vt_read_file(path, (size_t)1 << 30, 0, &gz, &gz_len, err);
    if (st) vt_error_prefix(err, "BPE vocabulary: ");
    else st = load_from_gzip((const unsigned char *)gz, gz_len, path, out, err);
    free(gz);
    return st;
}

vt_status clip_tokenizer_load(const char *vocab_path, clip_tokenizer **out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "clip_tokenizer_load: out is NULL");
    *out = NULL;
    if (vocab_path) return load_from_path(vocab_path, out, err);
    const char *env = getenv("VITAMIN_BPE_VOCAB");
    if (env && *env) return load_from_path(env, out, err);
    return load_from_gzip(clip_bpe_vocab_gz, clip_bpe_vocab_gz_size(), "<built into libvitamin>", out, err);
}

void clip_tokenizer_free(clip_tokenizer *tok) {
    if (!tok) return;
    free(tok->arena);
    free(tok->strings);
    free(tok->pairs);
    free(tok);
}

/* ========================================================================== */
/* BPE (SimpleTokenizer.bpe)                                                  */
/* ========================================================================== */

/* Python repeatedly takes the lowest-ranked adjacent pair and merges all its
 * occurrences left to right in one pass. Here a min-heap ordered by (rank,
 * position) holds every adjacent pair ever formed; all entries of the lowest
 * rank are taken out as one batch (= one Python pass) and applied in position
 * order, skipping stale ones. O(n log n) for a word of n bytes. */
typedef struct {
    uint32_t rank, left; /* merge rank; node index of the pair's left symbol */
    uint32_t a, b;       /* the pair's symbols when it was formed */
    uint32_t merged;     /* the symbol they merge into */
} heap_entry;

typedef struct {
    heap_entry *v;
    size_t n, cap;
} pair_heap;

static bool heap_less(const heap_entry *x, const heap_entry *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static int heap_push(pair_heap *h, heap_entry e) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        heap_entry *v = realloc(h->v, cap * sizeof *v);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && heap_less(&e, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = e;
    return 0;
}

static heap_entry heap_pop(pair_heap *h) {
    heap_entry top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && heap_less(&h->v[c + 1], &h->v[c])) c++;
        if (!heap_less(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

typedef struct {
    uint32_t *sym; /* symbol id per node; NO_ID once merged away */
    uint32_t *next, *prev;
    size_t n;
} bpe_word;

static int push_pair_if_ranked(const clip_tokenizer *tok, const bpe_word *w, pair_heap *h,
                               uint32_t left) {
    uint32_t right = w->next[left];
    if (right == NO_ID) return 0;
    const pair_slot *p = lookup_pair(tok, w->sym[left], w->sym[right]);
    if (!p) return 0;
    return heap_push(h, (heap_entry){p->rank, left, w->sym[left], w->sym[right], p->merged});
}

static bool entry_still_valid(const bpe_word *w, const heap_entry *e) {
    uint32_t right = w->next[e->left];
    return w->sym[e->left] == e->a && right != NO_ID && w->sym[right] == e->b;
}

static int merge_pair(const clip_tokenizer *tok, bpe_word *w, pair_heap *h, const heap_entry *e) {
    uint32_t left = e->left, right = w->next[left];
    w->sym[left] = e->merged;
    w->sym[right] = NO_ID;
    w->next[left] = w->next[right];
    if (w->next[right] != NO_ID) w->prev[w->next[right]] = left;
    if (w->prev[left] != NO_ID && push_pair_if_ranked(tok, w, h, w->prev[left])) return -1;
    return push_pair_if_ranked(tok, w, h, left);
}

static int run_merges(const clip_tokenizer *tok, bpe_word *w) {
    pair_heap heap = {0}, batch = {0};
    int rc = 0;
    for (uint32_t i = 0; i + 1 < w->n && rc == 0; i++) rc = push_pair_if_ranked(tok, w, &heap, i);
    while (rc == 0 && heap.n) {
        uint32_t rank = heap.v[0].rank;
        batch.n = 0;
        while (rc == 0 && heap.n && heap.v[0].rank == rank) rc = heap_push(&batch, heap_pop(&heap));
        while (rc == 0 && batch.n) {
            heap_entry e = heap_pop(&batch); /* same rank: pops in position order */
            if (entry_still_valid(w, &e)) rc = merge_pair(tok, w, &heap, &e);
        }
    }
    free(heap.v);
    free(batch.v);
    return rc;
}

/* BPE of one pre-token's UTF-8 bytes; appends ids to `ids`. */
static int bpe_token(const clip_tokenizer *tok, const uint8_t *bytes, size_t n, vt_u32str *ids) {
    if (n == 1) return vt_u32_push(ids, tok->byte_end_id[bytes[0]]);
    bpe_word w = {malloc(n * sizeof(uint32_t)), malloc(n * sizeof(uint32_t)),
                  malloc(n * sizeof(uint32_t)), n};
    int rc = -1;
    if (!w.sym || !w.next || !w.prev) goto done;
    for (size_t i = 0; i < n; i++) {
        w.sym[i] = i + 1 < n ? tok->byte_id[bytes[i]] : tok->byte_end_id[bytes[i]];
        w.prev[i] = i ? (uint32_t)(i - 1) : NO_ID;
        w.next[i] = i + 1 < n ? (uint32_t)(i + 1) : NO_ID;
    }
    if (run_merges(tok, &w)) goto done;
    rc = 0;
    for (uint32_t i = 0; i != NO_ID && rc == 0; i = w.next[i]) rc = vt_u32_push(ids, w.sym[i]);
done:
    free(w.sym);
    free(w.next);
    free(w.prev);
    return rc;
}

/* ========================================================================== */
/* pre-tokeniser                                                              */
/* ========================================================================== */

/* open_clip's pattern, compiled with regex.IGNORECASE:
 *   <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * findall tries the alternatives in order at each position and skips a
 * character none of them matches (whitespace, and U+0345, which IGNORECASE
 * excludes from both [\p{L}] and its complement). */
static const char *const LITERAL_ALTERNATIVES[] = {
    "<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
};

static int token_class(uint32_t c) {
    size_t lo = 0, hi = vt_gen_token_class_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < vt_gen_token_class[mid].lo) hi = mid;
        else if (c > vt_gen_token_class[mid].hi) lo = mid + 1;
        else return vt_gen_token_class[mid].cls;
    }
    return VT_TOKCLASS_OTHER;
}

/* regex IGNORECASE equality of text char `c` with pattern char `p`. */
static bool matches_ignoring_case(uint32_t c, char p) {
    if (c == (uint8_t)p) return true;
    if (p < 'a' || p > 'z') return false;
    if (c == (uint32_t)(p - 'a' + 'A')) return true;
    for (size_t i = 0; i < vt_gen_ci_extra_count; i++)
        if (vt_gen_ci_extra[i].letter == p && vt_gen_ci_extra[i].cp == c) return true;
    return false;
}

static size_t literal_match_length(const uint32_t *s, size_t n, size_t pos) {
    for (size_t a = 0; a < sizeof LITERAL_ALTERNATIVES / sizeof *LITERAL_ALTERNATIVES; a++) {
        const char *lit = LITERAL_ALTERNATIVES[a];
        size_t len = strlen(lit), k = 0;
        if (n - pos < len) continue;
        while (k < len && matches_ignoring_case(s[pos + k], lit[k])) k++;
        if (k == len) return len;
    }
    return 0;
}

/* Finds the next pre-token at or after *pos; false at the end of the text. */
static bool next_pretoken(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end) {
    for (size_t i = *pos; i < n; i++) {
        size_t len = literal_match_length(s, n, i);
        int cls = len ? -1 : token_class(s[i]);
        if (cls == VT_TOKCLASS_NONE) continue;
        size_t j = i + (len ? len : 1);
        if (cls == VT_TOKCLASS_LETTER || cls == VT_TOKCLASS_OTHER)
            while (j < n && token_class(s[j]) == cls) j++;
        *start = i;
        *end = j;
        *pos = j;
        return true;
    }
    *pos = n;
    return false;
}

/* SimpleTokenizer.encode on cleaned text, stopping once `limit` ids exist
 * (later ids cannot reach the output). */
static int encode_clean_text(const clip_tokenizer *tok, const uint32_t *s, size_t n, size_t limit,
                             vt_u32str *ids) {
    vt_bytes bytes = {0};
    size_t pos = 0, start, end;
    int rc = 0;
    while (rc == 0 && ids->n < limit && next_pretoken(s, n, &pos, &start, &end)) {
        bytes.n = 0;
        if (vt_utf8_encode(&bytes, s + start, end - start)) {
            rc = -1;
            break;
        }
        /* the special tokens are pre-seeded in Python's bpe cache as themselves */
        uint32_t special = lookup_string(tok, (const char *)bytes.v, bytes.n);
        if (special == tok->sot_id || special == tok->eot_id)
            rc = vt_u32_push(ids, special);
        else
            rc = bpe_token(tok, bytes.v, bytes.n, ids);
    }
    vt_bytes_free(&bytes);
    return rc;
}

/* ========================================================================== */
/* public API                                                                 */
/* ========================================================================== */

/* SimpleTokenizer.__call__ framing: [SOT] + ids + [EOT], cut to the context
 * length with EOT written over the last slot, zero padded. */
static void frame_ids(const clip_tokenizer *tok, const vt_u32str *ids, int context_length,
                      int32_t *out) {
    size_t ctx = (size_t)context_length, total = ids->n + 2;
    memset(out, 0, ctx * sizeof *out);
    out[0] = (int32_t)tok->sot_id;
    for (size_t i = 0; i < ids->n && i + 1 < ctx; i++) out[i + 1] = (int32_t)ids->v[i];
    if (total <= ctx) out[total - 1] = (int32_t)tok->eot_id;
    else out[ctx - 1] = (int32_t)tok->eot_id;
}

vt_status clip_tokenize_n(const clip_tokenizer *tok, const char *text, size_t nbytes,
                          int context_length, int32_t *out_ids, vt_error *err) {
    if (!tok || (!text && nbytes) || !out_ids)
        return vt_fail(err, VT_ERR_ARGUMENT, "clip_tokenize: NULL tokenizer, text or output");
    if (context_length < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "clip_tokenize: context length %d, must be >= 1",
                       context_length);
    if (nbytes > MAX_TEXT_BYTES) /* BPE word positions are 32-bit */
        return vt_fail(err, VT_ERR_ARGUMENT, "clip_tokenize: text of %zu bytes, at most %u allowed",
                       nbytes, (unsigned)MAX_TEXT_BYTES);
    vt_u32str decoded = {0}, clean = {0}, ids = {0};
    size_t bad = 0;
    vt_status st = VT_OK;
    int rc = vt_utf8_decode((const uint8_t *)text, nbytes, &decoded, &bad);
    if (rc > 0) {
        st = vt_fail(err, VT_ERR_VALUE, "text is not valid UTF-8 (bad byte 0x%02X at byte offset %zu)",
                     (uint8_t)text[bad], bad);
        goto done;
    }
    if (rc == 0) rc = vt_clip_clean_lower(decoded.v, decoded.n, &clean);
    if (rc == 0) rc = encode_clean_text(tok, clean.v, clean.n, (size_t)context_length - 1, &ids);
    if (rc) {
        st = vt_fail(err, VT_ERR_NOMEM, "out of memory tokenizing %zu bytes of text", nbytes);
        goto done;
    }
    frame_ids(tok, &ids, context_length, out_ids);
done:
    vt_u32_free(&decoded);
    vt_u32_free(&clean);
    vt_u32_free(&ids);
    return st;
}

vt_status clip_tokenize(const clip_tokenizer *tok, const char *text, int context_length,
                        int32_t *out_ids, vt_error *err) {
    if (!text) return vt_fail(err, VT_ERR_ARGUMENT, "clip_tokenize: text is NULL");
    return clip_tokenize_n(tok, text, strlen(text), context_length, out_ids, err);
}
