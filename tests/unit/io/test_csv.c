/* Unit tests for src/io/csv.c: pandas.read_csv's tokenizer rules for the
 * options open_clip uses (separator, header, '"' quoting), the rejections
 * the header promises (each naming the file and line), column look-up and
 * path resolution. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/dataset/csv.h"
#include "unit.h"

static int parse(const char *text, char sep, csv_table *t, vt_error *err) {
    return csv_parse(text, strlen(text), "t.csv", sep, t, err) == VT_OK;
}

/* Checks row `r` against `expected` (one string per column). */
static int row_is(const csv_table *t, size_t r, const char *const *expected) {
    if (r >= t->rows) return 0;
    for (int c = 0; c < t->columns; c++)
        if (strcmp(csv_cell(t, r, c), expected[c]) != 0) {
            fprintf(stderr, "row %zu col %d: '%s' != '%s'\n", r, c, csv_cell(t, r, c), expected[c]);
            return 0;
        }
    return 1;
}

static void test_basic_tsv(void) {
    csv_table t;
    vt_error err = {0};
    CHECK(parse("filepath\ttitle\na.jpg\ta cat\nb.png\ta, dog\n", '\t', &t, &err));
    CHECK(t.columns == 2 && t.rows == 2);
    CHECK(strcmp(t.header[0], "filepath") == 0 && strcmp(t.header[1], "title") == 0);
    CHECK(row_is(&t, 0, (const char *[]){"a.jpg", "a cat"}));
    CHECK(row_is(&t, 1, (const char *[]){"b.png", "a, dog"})); /* ',' is data in a TSV */
    CHECK(csv_column(&t, "title") == 1 && csv_column(&t, "Title") == -1 && csv_column(&t, "") == -1);
    csv_free(&t);
    CHECK(t.cells == NULL && t.header == NULL && t.rows == 0);
    csv_free(&t); /* twice is harmless */
}

static void test_quoting(void) {
    csv_table t;
    vt_error err = {0};
    /* Separators, newlines (LF and CRLF) and "" inside quotes; a quote elsewhere is literal;
     * text after a closing quote is appended, as pandas does. */
    CHECK(parse("a,b,c\n\"x,y\",\"line1\nline2\",\"say \"\"hi\"\"\"\n"
                "ab\"c,\"q\"rest,\"\"\n"
                "\"crlf\r\ninside\",,\"\"\"\"\n",
                ',', &t, &err));
    CHECK(t.columns == 3 && t.rows == 3);
    CHECK(row_is(&t, 0, (const char *[]){"x,y", "line1\nline2", "say \"hi\""}));
    CHECK(row_is(&t, 1, (const char *[]){"ab\"c", "qrest", ""}));
    CHECK(row_is(&t, 2, (const char *[]){"crlf\r\ninside", "", "\""}));
    csv_free(&t);

    /* A quoted header. */
    CHECK(parse("\"file path\"\t\"ti\ttle\"\nx\ty\n", '\t', &t, &err));
    CHECK(t.columns == 2 && strcmp(t.header[0], "file path") == 0 && strcmp(t.header[1], "ti\ttle") == 0);
    CHECK(row_is(&t, 0, (const char *[]){"x", "y"}));
    csv_free(&t);
}

static void test_lines(void) {
    csv_table t;
    vt_error err = {0};
    /* BOM, CRLF, lone CR, blank and whitespace-only lines, no final newline. */
    CHECK(parse("\xEF\xBB\xBF\n\na,b\r\n1,2\r\n\r\n   \n\t\n3,4\r5,6", ',', &t, &err));
    CHECK(t.columns == 2 && t.rows == 3 && strcmp(t.header[0], "a") == 0);
    CHECK(row_is(&t, 0, (const char *[]){"1", "2"}));
    CHECK(row_is(&t, 1, (const char *[]){"3", "4"}));
    CHECK(row_is(&t, 2, (const char *[]){"5", "6"}));
    csv_free(&t);

    /* Missing trailing fields read as ""; a trailing separator opens an empty field;
     * leading spaces are data (skipinitialspace=False). */
    CHECK(parse("a\tb\tc\n1\n \t2\t\n4\t5\t6", '\t', &t, &err));
    CHECK(t.rows == 3);
    CHECK(row_is(&t, 0, (const char *[]){"1", "", ""}));
    CHECK(row_is(&t, 1, (const char *[]){" ", "2", ""}));
    CHECK(row_is(&t, 2, (const char *[]){"4", "5", "6"}));
    csv_free(&t);

    /* Header only: zero rows. */
    CHECK(parse("only\n", ',', &t, &err));
    CHECK(t.columns == 1 && t.rows == 0);
    csv_free(&t);
}

/* Parsing must fail with `status` and a message containing each of the fragments. */
static void check_rejects(const char *text, size_t size, vt_status status, const char *frag1, const char *frag2) {
    csv_table t;
    vt_error err = {0};
    vt_status st = csv_parse(text, size, "bad.tsv", '\t', &t, &err);
    CHECK(st == status);
    CHECK(strstr(err.message, "bad.tsv") != NULL);
    CHECK(frag1 == NULL || strstr(err.message, frag1) != NULL);
    CHECK(frag2 == NULL || strstr(err.message, frag2) != NULL);
    if (st == VT_OK) csv_free(&t);
    CHECK(t.cells == NULL && t.header == NULL);
    if (st != status || (frag1 && !strstr(err.message, frag1))) fprintf(stderr, "  got: %s\n", err.message);
}

static void test_rejects(void) {
    check_rejects("", 0, VT_ERR_FORMAT, "empty", "header");
    check_rejects("\n \n\r\n", 5, VT_ERR_FORMAT, "empty", NULL);
    check_rejects("a\tb\n1\t2\n3\t4\t5\n", 14, VT_ERR_FORMAT, "line 3", "3 fields");
    check_rejects("a\tb\n1\t\"open\nstill open\n", 23, VT_ERR_FORMAT, "line 2", "never ends");
    check_rejects("a\tb\nx\t\xff\n", 8, VT_ERR_VALUE, "line 2", "UTF-8");
    check_rejects("a\tb\n\nx\t\xc3\n", 9, VT_ERR_VALUE, "line 3", "UTF-8");          /* truncated sequence */
    check_rejects("a\tb\nx\t\xed\xa0\x80\n", 10, VT_ERR_VALUE, "line 2", "UTF-8");   /* surrogate */
    check_rejects("a\tb\nx\ty\0z\n", 10, VT_ERR_FORMAT, "line 2", "NUL");

    csv_table t;
    vt_error err = {0};
    CHECK(csv_parse("a,b", 3, "t", '"', &t, &err) == VT_ERR_ARGUMENT);
    CHECK(csv_parse("a,b", 3, "t", '\n', &t, &err) == VT_ERR_ARGUMENT);
    CHECK(csv_read("/nonexistent/table.csv", ',', &t, &err) == VT_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/table.csv") != NULL);
    CHECK(csv_read("/tmp", ',', &t, &err) == VT_ERR_IO && strstr(err.message, "directory") != NULL);
}

static void test_require_column(void) {
    csv_table t;
    vt_error err = {0};
    CHECK(parse("filepath,caption\nx,y\n", ',', &t, &err));
    int idx = -7;
    CHECK(csv_require_column(&t, "t.csv", "caption", "--csv-caption-key", &idx, &err) == VT_OK && idx == 1);
    idx = -7;
    CHECK(csv_require_column(&t, "t.csv", "title", "--csv-caption-key", &idx, &err) != VT_OK && idx == -7);
    CHECK(strstr(err.message, "t.csv has no column 'title' (columns: filepath, caption); choose one with --csv-caption-key") != NULL);
    csv_free(&t);
}

static void test_read_and_resolve(void) {
    char dir[] = "/tmp/vt_csv_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp failed");
        return;
    }
    char table[256], image[256];
    snprintf(table, sizeof table, "%s/list.tsv", dir);
    snprintf(image, sizeof image, "%s/img.png", dir);
    FILE *f = fopen(table, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs("filepath\ttitle\nimg.png\tcap\n", f);
    fclose(f);
    f = fopen(image, "wb");
    if (f) fclose(f);

    csv_table t;
    vt_error err = {0};
    CHECK(csv_read(table, '\t', &t, &err) == VT_OK && t.rows == 1);
    /* Not found from the working directory: resolved beside the table. */
    char *resolved = csv_resolve_path(table, t.rows ? csv_cell(&t, 0, 0) : "img.png");
    CHECK(resolved && strcmp(resolved, image) == 0);
    free(resolved);
    csv_free(&t);

    resolved = csv_resolve_path(table, "/abs/x.jpg"); /* absolute: as given */
    CHECK(resolved && strcmp(resolved, "/abs/x.jpg") == 0);
    free(resolved);
    resolved = csv_resolve_path("list.tsv", "x.jpg"); /* table in the working directory */
    CHECK(resolved && strcmp(resolved, "x.jpg") == 0);
    free(resolved);
    /* Found relative to the working directory: as given (open_clip's behaviour). */
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(dir) == 0) {
        resolved = csv_resolve_path("/elsewhere/list.tsv", "img.png");
        CHECK(resolved && strcmp(resolved, "img.png") == 0);
        free(resolved);
        CHECK(chdir(cwd) == 0);
    }
    remove(image);
    remove(table);
    rmdir(dir);
}

int main(void) {
    test_basic_tsv();
    test_quoting();
    test_lines();
    test_rejects();
    test_require_column();
    test_read_and_resolve();
    return unit_summary("test_csv");
}
