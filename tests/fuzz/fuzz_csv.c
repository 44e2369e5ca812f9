/* libFuzzer target for the CSV/TSV reader: any bytes must parse or fail with a
 * message; a parsed table must be rectangular, every cell a string no longer
 * than the input, and every header name findable. The first byte picks the
 * separator (one of tab , ; | space, else tab) so both open_clip spellings get exercised.
 *   make fuzz && build/fuzz/fuzz_csv -max_total_time=180 tests/fuzz/corpus/csv */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const char separators[] = {'\t', ',', ';', '|', ' '};
    char sep = memchr(separators, data[0], sizeof separators) ? (char)data[0] : '\t';
    csv_table table;
    vt_error err = {0};
    if (csv_parse((const char *)data + 1, size - 1, "fuzz.csv", sep, &table, &err) != VT_OK) {
        if (err.message[0] == '\0' || table.cells || table.header) abort();
        return 0;
    }
    if (table.columns < 1 || !table.header || !table.cells) abort();
    for (int c = 0; c < table.columns; c++) {
        if (strlen(table.header[c]) > size) abort();
        int found = csv_column(&table, table.header[c]);
        if (found < 0 || found > c) abort();
    }
    for (size_t r = 0; r < table.rows; r++)
        for (int c = 0; c < table.columns; c++)
            if (strlen(csv_cell(&table, r, c)) > size) abort();
    csv_free(&table);
    return 0;
}
