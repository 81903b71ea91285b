/* test_csv_options.c - nb_dataset_parse_csv_opts / nb_dataset_load_csv_opts: the label column by
 * header name, skip_rows, and scikit-learn's count line ("N,D,class names", as its wine_data.csv
 * begins) read as class names or refused naming the line; every message names line, column,
 * value and limit. Expected values are worked out by hand from the texts below. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla.h"

static nb_csv_options opts(int label_col, const char *label_name, nb_csv_header header,
                           int64_t skip)
{
    nb_csv_options o = {label_col, label_name, header, skip};
    return o;
}

static void parse_ok(const char *text, nb_csv_options o, nb_dataset *ds)
{
    if (nb_dataset_parse_csv_opts(text, strlen(text), &o, ds) != NB_OK)
        fail_msg("parse failed: %s", nb_last_error());
}

static void parse_fails(const char *text, nb_csv_options o, nb_status want, const char *needle)
{
    nb_dataset ds;
    nb_status st = nb_dataset_parse_csv_opts(text, strlen(text), &o, &ds);
    if (st != want || !strstr(nb_last_error(), needle))
        fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, nb_last_error(),
                 needle);
    assert_null(ds.X);
    assert_null(ds.class_names);
}

static void expect_rows(const nb_dataset *ds, int64_t n, int64_t d, const float *x,
                        const int32_t *y)
{
    assert_int_equal(ds->X->shape[0], n);
    assert_int_equal(ds->X->shape[1], d);
    for (int64_t i = 0; i < n * d; i++)
        assert_true(((const float *)ds->X->data)[i] == x[i]);
    assert_memory_equal(ds->y->data, y, sizeof *y * (size_t)n);
}

static void test_count_line(void **state)
{
    (void)state;
    /* the wine form: 3 rows, 2 features, three class names; labels 0..1 only */
    const char *text = "3,2,class_0,class_1,class_2\n1,2,0\n3,4,1\n5,6,0\n";
    nb_dataset ds;
    parse_ok(text, opts(-1, NULL, NB_CSV_HEADER_AUTO, 0), &ds);
    static const float x[6] = {1, 2, 3, 4, 5, 6};
    static const int32_t y[3] = {0, 1, 0};
    expect_rows(&ds, 3, 2, x, y);
    assert_int_equal(ds.n_classes, 3); /* the names, not max label + 1 */
    assert_non_null(ds.class_names);
    assert_string_equal(ds.class_names[0], "class_0");
    assert_string_equal(ds.class_names[2], "class_2");
    nb_dataset_free(&ds);
    /* header NO reads it the same (a count line is not data) */
    parse_ok(text, opts(-1, NULL, NB_CSV_HEADER_NO, 0), &ds);
    assert_int_equal(ds.n_classes, 3);
    nb_dataset_free(&ds);
    /* skipped, it is just gone: no names, n_classes = max label + 1 */
    parse_ok(text, opts(-1, NULL, NB_CSV_HEADER_AUTO, 1), &ds);
    expect_rows(&ds, 3, 2, x, y);
    assert_int_equal(ds.n_classes, 2);
    assert_null(ds.class_names);
    nb_dataset_free(&ds);
    /* the same field count as the data (iris: 150,4,setosa,versicolor,virginica) */
    parse_ok("2,4,a,b,c\n1,2,3,4,2\n5,6,7,8,0\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 0), &ds);
    assert_int_equal(ds.n_classes, 3);
    assert_int_equal(ds.X->shape[1], 4);
    nb_dataset_free(&ds);
}

static void test_count_line_refused(void **state)
{
    (void)state;
    parse_fails("4,2,a,b\n1,2,0\n3,4,1\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 0), NB_ERR_FORMAT,
                "line 1 reads as a count line (4 rows, 2 features, then class names) but 2 rows "
                "of 2 features follow; if line 1 is not data, skip it (--skip-rows 1");
    parse_fails("2,5,a,b\n1,2,0\n3,4,1\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 0), NB_ERR_FORMAT,
                "(2 rows, 5 features, then class names) but 2 rows of 2 features");
    parse_fails("2,1,a\n1,0\n1,1\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 0), NB_ERR_RANGE,
                "line 3, column 2: label 1 has no class name (line 1 names 1 classes)");
    /* after skipped lines the count line's number is its number in the file */
    parse_fails("# export\n9,2,a,b\n1,2,0\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 1), NB_ERR_FORMAT,
                "line 2 reads as a count line");
    /* a header YES line is a header, never a count line: its field count must match */
    parse_fails("2,2,a,b\n1,2,0\n3,4,1\n", opts(-1, NULL, NB_CSV_HEADER_YES, 0), NB_ERR_FORMAT,
                "line 2 has 3 fields, expected 4");
    /* a lone line is data, not a count line */
    parse_fails("1,2,abc\n", opts(-1, NULL, NB_CSV_HEADER_NO, 0), NB_ERR_FORMAT,
                "line 1, column 3: 'abc' is not a number");
}

static void test_label_name(void **state)
{
    (void)state;
    nb_dataset ds;
    const char *text = "species, x ,y\n0,1,2\n1,3,4\n2,5,6\n";
    parse_ok(text, opts(-1, "species", NB_CSV_HEADER_AUTO, 0), &ds);
    static const float x[6] = {1, 2, 3, 4, 5, 6};
    static const int32_t y[3] = {0, 1, 2};
    expect_rows(&ds, 3, 2, x, y);
    assert_null(ds.class_names); /* a header's label column name is not a class name */
    nb_dataset_free(&ds);
    /* trimmed names; label_col is ignored when a name is given */
    parse_ok(text, opts(0, "x", NB_CSV_HEADER_YES, 0), &ds);
    static const float x2[6] = {0, 2, 1, 4, 2, 6};
    static const int32_t y2[3] = {1, 3, 5};
    expect_rows(&ds, 3, 2, x2, y2);
    nb_dataset_free(&ds);
    parse_fails(text, opts(-1, "Species", NB_CSV_HEADER_AUTO, 0), NB_ERR_ARG,
                "line 1: no column is named 'Species' (the header: 'species, x ,y')");
    parse_fails("a,b,a\n1,2,0\n", opts(-1, "a", NB_CSV_HEADER_YES, 0), NB_ERR_FORMAT,
                "line 1: the label column 'a' is named twice (columns 1 and 3)");
    parse_fails(text, opts(-1, "species", NB_CSV_HEADER_NO, 0), NB_ERR_ARG,
                "label column 'species' is named but line 1 ('species, x ,y') is not a header "
                "(header: no)");
    parse_fails("1,2,0\n3,4,1\n", opts(-1, "y", NB_CSV_HEADER_AUTO, 0), NB_ERR_ARG,
                "line 1 ('1,2,0') is not a header (some of its fields are numbers)");
    parse_fails("3,2,a,b\n1,2,0\n", opts(-1, "a", NB_CSV_HEADER_AUTO, 0), NB_ERR_ARG,
                "is a count line");
}

static void test_skip_rows(void **state)
{
    (void)state;
    nb_dataset ds;
    /* two lines of anything skipped unread; line numbers still count them */
    parse_ok("junk, \"x\nmore\n1,2,0\n3,4,1\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 2), &ds);
    static const float x[4] = {1, 2, 3, 4};
    static const int32_t y[2] = {0, 1};
    expect_rows(&ds, 2, 2, x, y);
    nb_dataset_free(&ds);
    parse_fails("junk\nmore\n1,2,0\n1,x,1\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 2), NB_ERR_FORMAT,
                "line 4, column 2: 'x' is not a number");
    /* skip then a header named by the label */
    parse_ok("# made by hand\nx,y,label\n1,2,0\n3,4,1\n", opts(-1, "label", NB_CSV_HEADER_AUTO, 1),
             &ds);
    expect_rows(&ds, 2, 2, x, y);
    nb_dataset_free(&ds);
    parse_fails("1,2,0\n", opts(-1, NULL, NB_CSV_HEADER_AUTO, 5), NB_ERR_FORMAT, "no data rows");
    /* line 1 not data, without the count form: the hint names line 1 and skip_rows */
    parse_fails("1,2,3,4,5\n1,2,0\n", opts(-1, NULL, NB_CSV_HEADER_NO, 0), NB_ERR_FORMAT,
                "line 2 has 3 fields, expected 5 as on line 1; if line 1 is not data, skip it "
                "(--skip-rows 1");
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/nabla_test_csv_options_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "2,1,no,yes\n0.5,1\n-1,0\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    nb_csv_options o = NB_CSV_OPTIONS_DEFAULT;
    nb_dataset ds;
    assert_int_equal(nb_dataset_load_csv_opts(path, &o, &ds), NB_OK);
    assert_int_equal(ds.n_classes, 2);
    assert_string_equal(ds.class_names[1], "yes");
    nb_dataset_free(&ds);
    /* the old call reads the count line too */
    assert_int_equal(nb_dataset_load_csv(path, -1, NB_CSV_HEADER_AUTO, &ds), NB_OK);
    assert_string_equal(ds.class_names[0], "no");
    nb_dataset_free(&ds);
    o.skip_rows = 1;
    o.label_col = 0;
    assert_int_equal(nb_dataset_load_csv_opts(path, &o, &ds), NB_ERR_FORMAT);
    if (!strstr(nb_last_error(), path) ||
        !strstr(nb_last_error(), "line 2, column 1: label '0.5' is not a non-negative integer"))
        fail_msg("message '%s'", nb_last_error());
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_line), cmocka_unit_test(test_count_line_refused),
        cmocka_unit_test(test_label_name), cmocka_unit_test(test_skip_rows),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
