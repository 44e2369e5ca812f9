/* CSV / TSV reader following pandas.read_csv's C tokenizer (the engine
 * open_clip's CsvDataset uses) for the options open_clip passes: a given
 * separator, header row, '"' quoting with "" as an escaped quote,
 * skip_blank_lines. Where pandas would be lenient in ways that only hide
 * mistakes (an extra field turned into an index column) we fail instead.
 *
 * Details that follow the pandas tokenizer:
 *  - a quote opens a quoted field only as the field's first byte; elsewhere it
 *    is an ordinary character (ab"c stays ab"c);
 *  - after a closing quote, further bytes up to the separator are appended
 *    ("ab"c gives abc);
 *  - \n, \r\n and a lone \r end a record; inside quotes they are kept;
 *  - lines holding only spaces/tabs (other than the separator) are skipped,
 *    like empty lines.
 * Duplicate or empty header names are kept as written (pandas renames them
 * "x.1" / "Unnamed: i"; a lookup of the first occurrence agrees either way). */
#include "io/dataset/csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/grow.h"
#include "io/text/unicode_util.h"

typedef struct {
    const char *data;
    size_t size, pos;
    size_t line;          /* 1-based line of `pos` */
    char sep;
    const char *name;     /* the file, for messages */
    /* All field text, NUL-terminated one after another; offset 0 holds the
     * "" used for missing trailing fields. */
    char *text;
    size_t text_len, text_cap;
    size_t *fields;       /* offset of each field's text: header first, then rows */
    size_t n_fields, fields_cap;
    vt_error *err;
} csv_parser;

static const char *separator_name(char sep) {
    switch (sep) {
    case '\t': return "tab";
    case ',': return "','";
    case ';': return "';'";
    case '|': return "'|'";
    case ' ': return "space";
    default: return "the separator";
    }
}

static vt_status out_of_memory(csv_parser *p) {
    return vt_fail(p->err, VT_ERR_NOMEM, "out of memory reading %s (%zu bytes)", p->name, p->size);
}

static int append_text(csv_parser *p, const char *bytes, size_t n) {
    if (!vt_grow_array((void **)&p->text, &p->text_cap, p->text_len + n, 1)) return 0;
    memcpy(p->text + p->text_len, bytes, n);
    p->text_len += n;
    return 1;
}

static int start_field(csv_parser *p) {
    if (!vt_grow_array((void **)&p->fields, &p->fields_cap, p->n_fields, sizeof *p->fields)) return 0;
    p->fields[p->n_fields++] = p->text_len;
    return 1;
}

static int is_line_end(char c) { return c == '\n' || c == '\r'; }

/* Consumes one line terminator (\n, \r\n or \r) at pos. */
static void eat_line_end(csv_parser *p) {
    if (p->data[p->pos] == '\r' && p->pos + 1 < p->size && p->data[p->pos + 1] == '\n') p->pos++;
    p->pos++;
    p->line++;
}

/* Skips empty and whitespace-only lines; returns 0 at end of input. */
static int skip_blank_lines(csv_parser *p) {
    while (p->pos < p->size) {
        size_t j = p->pos;
        while (j < p->size && (p->data[j] == ' ' || p->data[j] == '\t') && p->data[j] != p->sep) j++;
        if (j == p->size) {
            p->pos = j;
            return 0;
        }
        if (!is_line_end(p->data[j])) return 1;
        p->pos = j;
        eat_line_end(p);
    }
    return 0;
}

/* Reads one field's text (quoted or not) up to, not including, the separator
 * or line end that follows it. */
static vt_status read_field(csv_parser *p) {
    if (!start_field(p)) return out_of_memory(p);
    if (p->pos < p->size && p->data[p->pos] == '"') {
        size_t opened_line = p->line;
        p->pos++;
        for (;;) {
            if (p->pos >= p->size)
                return vt_fail(p->err, VT_ERR_FORMAT,
                               "%s line %zu: a quoted field starting here never ends (missing closing '\"'; "
                               "a quote inside a quoted field is written \"\")",
                               p->name, opened_line);
            char c = p->data[p->pos];
            if (c == '"') {
                if (p->pos + 1 < p->size && p->data[p->pos + 1] == '"') {
                    if (!append_text(p, "\"", 1)) return out_of_memory(p);
                    p->pos += 2;
                    continue;
                }
                p->pos++;
                break;
            }
            if (c == '\n' || (c == '\r' && !(p->pos + 1 < p->size && p->data[p->pos + 1] == '\n'))) p->line++;
            if (!append_text(p, &c, 1)) return out_of_memory(p);
            p->pos++;
        }
    }
    /* Unquoted text, or what follows a closing quote: quotes are literal here. */
    size_t start = p->pos;
    while (p->pos < p->size && p->data[p->pos] != p->sep && !is_line_end(p->data[p->pos])) p->pos++;
    if (!append_text(p, p->data + start, p->pos - start) || !append_text(p, "", 1)) return out_of_memory(p);
    return VT_OK;
}

/* Reads one record starting at a non-blank line; returns its field count. */
static vt_status read_record(csv_parser *p, size_t *n_fields) {
    *n_fields = 0;
    for (;;) {
        vt_status st = read_field(p);
        if (st) return st;
        ++*n_fields;
        if (p->pos >= p->size) return VT_OK;
        if (p->data[p->pos] == p->sep) {
            p->pos++;
            continue; /* a separator at the end of the line or input still opens an (empty) field */
        }
        eat_line_end(p);
        return VT_OK;
    }
}

/* Rejects NUL bytes and invalid UTF-8 (pandas decodes the file as UTF-8 first). */
static vt_status check_encoding(csv_parser *p) {
    size_t bad = 0;
    const char *nul = memchr(p->data, '\0', p->size);
    int utf8_ok = vt_utf8_valid((const uint8_t *)p->data, nul ? (size_t)(nul - p->data) : p->size, &bad);
    if (utf8_ok && !nul) return VT_OK;
    size_t at = utf8_ok ? (size_t)(nul - p->data) : bad, line = 1;
    for (size_t i = 0; i < at; i++)
        if (p->data[i] == '\n' || (p->data[i] == '\r' && !(i + 1 < p->size && p->data[i + 1] == '\n'))) line++;
    if (utf8_ok)
        return vt_fail(p->err, VT_ERR_FORMAT, "%s line %zu: NUL byte (offset %zu); this is not a text table", p->name,
                       line, at);
    return vt_fail(p->err, VT_ERR_VALUE, "%s line %zu: invalid UTF-8 (byte 0x%02x at offset %zu); save the table as UTF-8",
                   p->name, line, (unsigned char)p->data[at], at);
}

/* Moves the parsed text into the two blocks csv_table owns: header pointers +
 * header text, and cell pointers + cell text. */
static vt_status build_table(csv_parser *p, int columns, size_t rows, csv_table *out) {
    size_t header_text = p->fields[columns - 1] + strlen(p->text + p->fields[columns - 1]) + 1;
    char **header = malloc((size_t)columns * sizeof *header + header_text);
    if (!header) return out_of_memory(p);
    char *htext = (char *)(header + columns);
    memcpy(htext, p->text, header_text);
    for (int c = 0; c < columns; c++) header[c] = htext + p->fields[c];

    size_t n_cells = rows * (size_t)columns, cell_text = 1 + (p->text_len - header_text);
    char **cells = malloc(n_cells * sizeof *cells + cell_text);
    if (!cells) {
        free(header);
        return out_of_memory(p);
    }
    char *ctext = (char *)(cells + n_cells);
    ctext[0] = '\0';
    memcpy(ctext + 1, p->text + header_text, p->text_len - header_text);
    for (size_t k = 0; k < n_cells; k++) {
        size_t off = p->fields[(size_t)columns + k];
        cells[k] = off == 0 ? ctext : ctext + 1 + (off - header_text);
    }
    out->columns = columns;
    out->header = header;
    out->rows = rows;
    out->cells = cells;
    return VT_OK;
}

vt_status csv_parse(const char *data, size_t size, const char *name, char separator, csv_table *out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "csv_parse: no output table");
    memset(out, 0, sizeof *out);
    if (!name) name = "table";
    if (separator == '"' || separator == '\n' || separator == '\r' || separator == '\0' || (unsigned char)separator >= 0x80)
        return vt_fail(err, VT_ERR_ARGUMENT, "the CSV separator must be one ASCII character other than a quote or line end");
    if (!data && size) return vt_fail(err, VT_ERR_ARGUMENT, "csv_parse: no data");
    csv_parser p = {.data = data, .size = size, .line = 1, .sep = separator, .name = name, .err = err};
    vt_status st = check_encoding(&p);
    if (st) return st;
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    if (!append_text(&p, "", 1)) return out_of_memory(&p); /* offset 0: the shared "" */

    size_t columns = 0, rows = 0;
    if (!skip_blank_lines(&p)) {
        st = vt_fail(err, VT_ERR_FORMAT, "%s is empty: expected a header row of column names separated by %s", name,
                     separator_name(separator));
    } else {
        st = read_record(&p, &columns);
        if (!st && columns > 1000000) st = vt_fail(err, VT_ERR_FORMAT, "%s: %zu columns in the header is not a table", name, columns);
    }
    while (!st && skip_blank_lines(&p)) {
        size_t record_line = p.line, n = 0;
        st = read_record(&p, &n);
        if (st) break;
        if (n > columns) {
            st = vt_fail(err, VT_ERR_FORMAT,
                         "%s line %zu: %zu fields but the header has %zu; fields containing the separator (%s) "
                         "must be in double quotes",
                         name, record_line, n, columns, separator_name(separator));
            break;
        }
        for (; n < columns; n++) { /* missing trailing fields: "" (NaN in pandas) */
            if (!start_field(&p)) {
                st = out_of_memory(&p);
                break;
            }
            p.fields[p.n_fields - 1] = 0;
        }
        rows++;
    }
    if (!st) st = build_table(&p, (int)columns, rows, out);
    free(p.text);
    free(p.fields);
    return st;
}

vt_status csv_read(const char *path, char separator, csv_table *out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "csv_read: no output table");
    memset(out, 0, sizeof *out);
    if (!path) return vt_fail(err, VT_ERR_ARGUMENT, "csv_read: no path");
    struct stat info;
    if (stat(path, &info) != 0) return vt_fail(err, VT_ERR_IO, "cannot open table %s: %s", path, strerror(errno));
    if (S_ISDIR(info.st_mode)) return vt_fail(err, VT_ERR_IO, "%s is a directory, not a CSV/TSV table", path);
    FILE *f = fopen(path, "rb");
    if (!f) return vt_fail(err, VT_ERR_IO, "cannot open table %s: %s", path, strerror(errno));
    char *data = NULL;
    size_t size = 0, cap = 0;
    vt_status st = VT_OK;
    for (;;) { /* read to EOF: works for pipes too, whatever stat said */
        if (!vt_grow_array((void **)&data, &cap, size + 65536, 1)) {
            st = vt_fail(err, VT_ERR_NOMEM, "out of memory reading %s", path);
            break;
        }
        size_t got = fread(data + size, 1, cap - size, f);
        size += got;
        if (got == 0) {
            if (ferror(f)) st = vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!st) st = csv_parse(data, size, path, separator, out, err);
    free(data);
    return st;
}

void csv_free(csv_table *table) {
    if (!table) return;
    free(table->header); /* each block holds its pointers and their text */
    free(table->cells);
    memset(table, 0, sizeof *table);
}

int csv_column(const csv_table *table, const char *name) {
    if (!table || !name) return -1;
    for (int c = 0; c < table->columns; c++)
        if (strcmp(table->header[c], name) == 0) return c;
    return -1;
}

vt_status csv_require_column(const csv_table *table, const char *path, const char *name, const char *flag, int *index,
                             vt_error *err) {
    int c = csv_column(table, name);
    if (c >= 0) {
        *index = c;
        return VT_OK;
    }
    char list[600];
    size_t used = 0;
    list[0] = '\0';
    for (int k = 0; k < table->columns && used < sizeof list - 1; k++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", table->header[k]);
        if (n < 0) break;
        used += (size_t)n;
    }
    if (used >= sizeof list - 1) strcpy(list + sizeof list - 5, "...");
    return vt_fail(err, VT_ERR_FORMAT, "%s has no column '%s' (columns: %s); choose one with %s", path, name, list,
                   flag ? flag : "the matching option");
}

char *csv_resolve_path(const char *table_path, const char *cell) {
    if (!cell) return NULL;
    struct stat info;
    if (cell[0] == '/' || cell[0] == '\0' || stat(cell, &info) == 0 || !table_path) return strdup(cell);
    const char *slash = strrchr(table_path, '/');
    if (!slash) return strdup(cell); /* the table is in the working directory */
    size_t dir_len = (size_t)(slash - table_path) + 1;
    char *joined = malloc(dir_len + strlen(cell) + 1);
    if (!joined) return NULL;
    memcpy(joined, table_path, dir_len);
    strcpy(joined + dir_len, cell);
    return joined;
}
