/* csv.c - a labelled data set from comma-separated text.
 *
 * One row per sample: numbers separated by ',', one column (label_col) holding the class id, the
 * others the features. No quoting, no comments. Lines end in \n or \r\n, or in \r alone (old Mac
 * text: a \r and no \n anywhere); the last one may lack its
 * end; blank lines (empty or only spaces/tabs) may follow the data but not interrupt it. A UTF-8
 * byte-order mark at the start is skipped. Line 1 is a header when asked, or in AUTO mode when
 * none of its fields is a number; otherwise it is data like every other line.
 *
 * Two passes over the bytes. The first finds the lines, checks that every one has the field
 * count of the first line, and counts the rows, so the tensors it then allocates are bounded by
 * the text itself (every field costs at least one byte). The second converts the numbers. Numbers
 * are read by strtod in the "C" locale (the decimal point is always '.', whatever the program's
 * locale is), must be finite, and features must fit in f32.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/dataset.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "nabla/status.h"
#include "nabla/tensor.h"
#include "csv_internal.h"
#include "data_internal.h"

/* Parses one trimmed field as a finite double, or fails naming the line and column (1-based). */
static nb_status parse_number(const char *s, size_t n, size_t line, size_t col, const char *role,
                              double *out)
{
    char show[48];
    if (n == 0)
        return nb_error(NB_ERR_FORMAT, "line %zu, column %zu: empty %s field", line, col, role);
    if (n > CSV_MAX_FIELD)
        return nb_error(NB_ERR_FORMAT,
                        "line %zu, column %zu: '%s' is not a number (%zu "
                        "characters, at most %d)",
                        line, col, nb_printable(show, sizeof show, s, n), n, CSV_MAX_FIELD);
    char tmp[CSV_MAX_FIELD + 1];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n || end == tmp)
        return nb_error(NB_ERR_FORMAT, "line %zu, column %zu: '%s' is not a number", line, col,
                        nb_printable(show, sizeof show, s, n));
    if (!isfinite(v))
        return nb_error(NB_ERR_FORMAT, "line %zu, column %zu: '%s' is not a finite number", line,
                        col, nb_printable(show, sizeof show, s, n));
    *out = v;
    return NB_OK;
}

/* Pass 1: checks the line structure and counts fields and rows. */
static nb_status scan(const char *buf, size_t len, const csv_plan *p, size_t *n_fields,
                      int64_t *n_rows)
{
    size_t pos = 0, lineno = p->line0, first_blank = 0, fields = 0, first_line = 0;
    int64_t rows = 0;
    bool first = true, skip = p->skip_first;
    while (pos < len) {
        csv_line l = nb_csv_next_line(buf, len, &pos, p->eol);
        lineno++;
        if (nb_csv_line_is_blank(l)) {
            if (first_blank == 0)
                first_blank = lineno;
            continue;
        }
        if (first_blank != 0)
            return nb_error(NB_ERR_FORMAT,
                            "line %zu is blank (blank lines are allowed only after the data)",
                            first_blank);
        size_t f = nb_csv_count_fields(l);
        if (skip && p->first_counts) { /* a count line: its own field count */
            skip = false;
            continue;
        }
        if (first) {
            fields = f;
            first = false;
            first_line = lineno;
            if (f < 2)
                return nb_error(NB_ERR_FORMAT,
                                "line %zu has 1 field; a row needs a label and at least one "
                                "feature",
                                lineno);
            if (skip) {
                skip = false;
                continue;
            }
        } else if (f != fields && rows == 1 && !p->skip_first) {
            return nb_error(NB_ERR_FORMAT,
                            "line %zu has %zu fields, expected %zu as on line %zu; if line %zu is "
                            "not data, skip it (--skip-rows %zu, nb_csv_options.skip_rows)",
                            lineno, f, fields, first_line, first_line, first_line);
        } else if (f != fields) {
            return nb_error(NB_ERR_FORMAT, "line %zu has %zu fields, expected %zu", lineno, f,
                            fields);
        }
        rows++;
    }
    if (rows == 0)
        return nb_error(NB_ERR_FORMAT, "no data rows (%zu lines%s)", lineno,
                        p->first_counts ? ", the first one a count line"
                        : p->skip_first ? ", the first one a header"
                                        : "");
    *n_fields = fields;
    *n_rows = rows;
    return NB_OK;
}

/* Pass 2: converts every field. X is [rows, fields - 1], y [rows]. */
static nb_status convert(const char *buf, size_t len, const csv_plan *p, size_t fields,
                         size_t label_at, float *X, int32_t *y, size_t *max_line)
{
    size_t pos = 0, lineno = p->line0;
    int64_t row = 0;
    bool skip = p->skip_first;
    int64_t max_label = -1;
    while (pos < len) {
        csv_line l = nb_csv_next_line(buf, len, &pos, p->eol);
        lineno++;
        if (nb_csv_line_is_blank(l))
            continue; /* only trailing ones remain after scan() */
        if (skip) {
            skip = false;
            continue;
        }
        float *xr = X + (size_t)row * (fields - 1);
        size_t at = 0;
        for (size_t c = 0; c < fields; c++) {
            size_t a, b;
            nb_csv_field_bounds(l, &at, &a, &b);
            double v;
            char show[48];
            if (c == label_at) {
                nb_status st = parse_number(l.p + a, b - a, lineno, c + 1, "label", &v);
                if (st != NB_OK)
                    return st;
                if (v < 0 || v != floor(v))
                    return nb_error(NB_ERR_FORMAT,
                                    "line %zu, column %zu: label '%s' is not a non-negative "
                                    "integer",
                                    lineno, c + 1, nb_printable(show, sizeof show, l.p + a, b - a));
                if (v >= (double)NB_DATASET_MAX_CLASSES)
                    return nb_error(NB_ERR_FORMAT,
                                    "line %zu, column %zu: label '%s' is not below the limit of "
                                    "%" PRId64 " classes",
                                    lineno, c + 1, nb_printable(show, sizeof show, l.p + a, b - a),
                                    NB_DATASET_MAX_CLASSES);
                y[row] = (int32_t)v;
                if (y[row] > max_label) {
                    max_label = y[row];
                    *max_line = lineno;
                }
            } else {
                nb_status st = parse_number(l.p + a, b - a, lineno, c + 1, "feature", &v);
                if (st != NB_OK)
                    return st;
                if (fabs(v) > FLT_MAX)
                    return nb_error(NB_ERR_FORMAT,
                                    "line %zu, column %zu: '%s' is out of the f32 range", lineno,
                                    c + 1, nb_printable(show, sizeof show, l.p + a, b - a));
                *xr++ = (float)v;
            }
        }
        row++;
    }
    return NB_OK;
}

/* What the options and the first line make of the text: lines skipped, a count line (its class
 * names into *names), a header (and the label column named in it). */
static nb_status plan_csv(const char **buf, size_t *len, const nb_csv_options *o, csv_plan *p,
                          int *label_col, int64_t counts[2], char ***names, int64_t *n_names)
{
    memset(p, 0, sizeof *p);
    p->eol = nb_csv_line_end_of(*buf, *len);
    size_t pos = 0;
    for (int64_t i = 0; i < o->skip_rows && pos < *len; i++, p->line0++)
        (void)nb_csv_next_line(*buf, *len, &pos, p->eol);
    *buf += pos;
    *len -= pos;
    bool more;
    csv_line l = nb_csv_first_line(*buf, *len, p->eol, &more);
    size_t line1 = p->line0 + 1;
    *label_col = o->label_col;
    if (o->header != NB_CSV_HEADER_YES && more &&
        nb_csv_is_counts_line(l, &counts[0], &counts[1])) {
        p->skip_first = p->first_counts = true;
        if (o->label_name)
            return nb_error(NB_ERR_ARG,
                            "label column '%s' is named but line %zu is a count line (rows, "
                            "features, class names), not a header; give the label column by index",
                            o->label_name, line1);
        return nb_csv_line_names(l, 2, names, n_names);
    }
    p->skip_first =
        o->header == NB_CSV_HEADER_YES ||
        (o->header == NB_CSV_HEADER_AUTO && nb_csv_first_line_is_header(*buf, *len, p->eol));
    if (!o->label_name)
        return NB_OK;
    if (!p->skip_first) {
        char show[64];
        return nb_error(
            NB_ERR_ARG, "label column '%s' is named but line %zu ('%s') is not a header (%s)",
            o->label_name, line1, nb_printable(show, sizeof show, l.p, l.n),
            o->header == NB_CSV_HEADER_NO ? "header: no" : "some of its fields are numbers");
    }
    return nb_csv_find_label_name(l, line1, o->label_name, label_col);
}

/* A count line's promises (rows, features) against the data, and its class names against the
 * labels: n_classes becomes the number of names. */
static nb_status check_counts(const csv_plan *p, const int64_t counts[2], int64_t rows,
                              size_t fields, int64_t n_names, int64_t max_label, size_t max_line,
                              size_t label_at)
{
    if (counts[0] != rows || counts[1] != (int64_t)fields - 1)
        return nb_error(NB_ERR_FORMAT,
                        "line %zu reads as a count line (%" PRId64 " rows, %" PRId64
                        " features, then class names) but %" PRId64 " rows of %zu features "
                        "follow; if line %zu is not data, skip it (--skip-rows %zu, "
                        "nb_csv_options.skip_rows)",
                        p->line0 + 1, counts[0], counts[1], rows, fields - 1, p->line0 + 1,
                        p->line0 + 1);
    if (max_label >= n_names)
        return nb_error(NB_ERR_RANGE,
                        "line %zu, column %zu: label %" PRId64 " has no class name (line %zu "
                        "names %" PRId64 " classes)",
                        max_line, label_at + 1, max_label, p->line0 + 1, n_names);
    return NB_OK;
}

/* The rows as X [rows, fields - 1] and y [rows], and the class count they imply. */
static nb_status read_rows(const char *buf, size_t len, const csv_plan *p, int label_col,
                           nb_dataset *out, int64_t *rows, size_t *fields, size_t *label_at,
                           int64_t *max_label, size_t *max_line)
{
    nb_status st = scan(buf, len, p, fields, rows);
    if (st == NB_OK && (label_col < -1 || (label_col >= 0 && (size_t)label_col >= *fields)))
        st = nb_error(NB_ERR_ARG,
                      "label column %d is out of range for %zu columns (0-based; -1 = last)",
                      label_col, *fields);
    *label_at = label_col == -1 ? *fields - 1 : (size_t)label_col;
    if (st == NB_OK) {
        int64_t sx[2] = {*rows, (int64_t)*fields - 1}, sy[1] = {*rows};
        if ((st = nb_tensor_new(NB_F32, 2, sx, &out->X)) == NB_OK)
            st = nb_tensor_new(NB_I32, 1, sy, &out->y);
    }
    if (st == NB_OK)
        st = convert(buf, len, p, *fields, *label_at, out->X->data, out->y->data, max_line);
    bool sparse = false;
    int64_t max_at, distinct;
    if (st == NB_OK)
        st = nb_labels_class_check(out->y->data, *rows, &sparse, max_label, &max_at, &distinct);
    if (st == NB_OK && sparse)
        st = nb_error(NB_ERR_RANGE,
                      "line %zu, column %zu: label %" PRId64 " implies %" PRId64
                      " classes but only %" PRId64 " distinct labels occur (labels are class ids "
                      "0..K-1; above %d classes at least half of them must occur)",
                      *max_line, *label_at + 1, *max_label, *max_label + 1, distinct,
                      NB_DATASET_SPARSE_CLASSES);
    return st;
}

static nb_status check_options(const nb_csv_options *o)
{
    if (!o)
        return nb_error(NB_ERR_ARG, "options are NULL");
    if (o->header != NB_CSV_HEADER_NO && o->header != NB_CSV_HEADER_YES &&
        o->header != NB_CSV_HEADER_AUTO)
        return nb_error(NB_ERR_ARG, "header mode %d is not NO (0), YES (1) or AUTO (2)",
                        (int)o->header);
    if (o->skip_rows < 0)
        return nb_error(NB_ERR_ARG, "skip_rows %" PRId64 " is negative", o->skip_rows);
    if (o->label_name && (!o->label_name[0] || strlen(o->label_name) > CSV_MAX_FIELD))
        return nb_error(NB_ERR_ARG, "label column name of %zu characters is not in 1..%d",
                        strlen(o->label_name), CSV_MAX_FIELD);
    if (!o->label_name && o->label_col < -1)
        return nb_error(NB_ERR_ARG, "label column %d is out of range (0-based; -1 = last)",
                        o->label_col);
    return NB_OK;
}

static nb_status parse_csv(const char *buf, size_t len, const nb_csv_options *o, nb_dataset *out)
{
    nb_status st = check_options(o);
    if (st != NB_OK)
        return st;
    /* A UTF-8 byte-order mark (spreadsheets write one) is not part of the first value. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    /* strtod in the C locale, so '.' is the decimal point whatever setlocale said. */
    locale_t c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t old = c_loc ? uselocale(c_loc) : (locale_t)0;
    csv_plan p;
    int label_col = -1;
    int64_t counts[2] = {0, 0}, n_names = 0, rows = 0, max_label = -1;
    char **names = NULL;
    size_t fields = 0, label_at = 0, max_line = 0;
    st = plan_csv(&buf, &len, o, &p, &label_col, counts, &names, &n_names);
    if (st == NB_OK)
        st = read_rows(buf, len, &p, label_col, out, &rows, &fields, &label_at, &max_label,
                       &max_line);
    if (c_loc) {
        uselocale(old);
        freelocale(c_loc);
    }
    if (st == NB_OK && p.first_counts)
        st = check_counts(&p, counts, rows, fields, n_names, max_label, max_line, label_at);
    if (st == NB_OK) {
        out->n_classes = p.first_counts ? n_names : max_label + 1;
        out->input_scale = 1.0;
        out->input_shift = 0.0;
        snprintf(out->name, sizeof out->name, "csv");
        if (names)
            st = nb_dataset_set_class_names(out, (const char *const *)names, n_names);
    }
    nb_dataset_free_names_(names, n_names);
    if (st != NB_OK)
        nb_dataset_free(out);
    return st;
}

nb_status nb_dataset_parse_csv_opts(const char *buf, size_t len, const nb_csv_options *opt,
                                    nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "csv: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return nb_error(NB_ERR_ARG, "csv: buffer is NULL but length is %zu", len);
    nb_status st = parse_csv(buf ? buf : "", len, opt, out);
    if (st != NB_OK)
        nb_error_prefix(st, "csv", NULL);
    return st;
}

nb_status nb_dataset_parse_csv(const char *buf, size_t len, int label_col, nb_csv_header header,
                               nb_dataset *out)
{
    nb_csv_options o = {label_col, NULL, header, 0};
    return nb_dataset_parse_csv_opts(buf, len, &o, out);
}

typedef struct csv_load {
    const nb_csv_options *opt;
    nb_dataset *out;
} csv_load;

static nb_status load_file(FILE *f, size_t size, void *ctx)
{
    const csv_load *l = ctx;
    unsigned char *buf;
    nb_status st = nb_read_rest(f, size, NULL, 0, "file", &buf);
    if (st != NB_OK)
        return st;
    st = parse_csv((const char *)buf, size, l->opt, l->out);
    free(buf);
    return st;
}

nb_status nb_dataset_load_csv_opts(const char *path, const nb_csv_options *opt, nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "csv: output data set is NULL");
    memset(out, 0, sizeof *out);
    csv_load l = {opt, out};
    nb_status st = nb_read_file(path, "csv", true, load_file, &l);
    if (st != NB_OK) {
        nb_dataset_free(out);
        return st;
    }
    /* Name the set after the file: its base name without the extension. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n == 0)
        n = strlen(base);
    if (n >= sizeof out->name)
        n = sizeof out->name - 1;
    memcpy(out->name, base, n);
    out->name[n] = '\0';
    return NB_OK;
}

nb_status nb_dataset_load_csv(const char *path, int label_col, nb_csv_header header,
                              nb_dataset *out)
{
    nb_csv_options o = {label_col, NULL, header, 0};
    return nb_dataset_load_csv_opts(path, &o, out);
}
