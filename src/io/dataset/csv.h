/* CSV / TSV tables as open_clip's CsvDataset reads them (pandas.read_csv with
 * sep=..., a header row): fields split on the separator, double-quoted fields
 * may hold separators, newlines and "" for a quote, CRLF or LF line ends, a
 * UTF-8 BOM is ignored, empty lines are skipped. */
#ifndef VT_IO_CSV_H
#define VT_IO_CSV_H

#include <stddef.h>

#include "vitamin.h"

typedef struct {
    int columns;
    char **header;     /* [columns] */
    size_t rows;       /* data rows (header excluded) */
    char **cells;      /* [rows * columns], row-major; missing trailing fields are "" */
} csv_table;

/* Reads the whole file. Fails with a message naming the file and line for
 * unterminated quotes, rows with MORE fields than the header, invalid UTF-8,
 * or an empty file (no header). */
vt_status csv_read(const char *path, char separator, csv_table *out, vt_error *err);
/* The same on bytes already in memory; `name` stands for the file in messages. */
vt_status csv_parse(const char *data, size_t size, const char *name, char separator, csv_table *out,
                    vt_error *err);
void csv_free(csv_table *table);

/* Column index by exact header name, or -1. */
int csv_column(const csv_table *table, const char *name);
/* Fails with "<path> has no column 'X' (columns: a, b, c); choose one with <flag>". */
vt_status csv_require_column(const csv_table *table, const char *path, const char *name, const char *flag,
                             int *index, vt_error *err);
static inline const char *csv_cell(const csv_table *t, size_t row, int col) {
    return t->cells[row * (size_t)t->columns + (size_t)col];
}

/* Resolves an image path from a table: absolute paths as given; a relative
 * path as given if it exists relative to the working directory (open_clip's
 * behaviour), otherwise relative to the directory of `table_path`. Writes a
 * malloc'd string. */
char *csv_resolve_path(const char *table_path, const char *cell);

#endif
