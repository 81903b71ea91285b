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
#include "data_internal.h"

/* Longest field we convert (a double needs far fewer characters; longer is an error). */
#define CSV_MAX_FIELD 127

/* One line of the text without its line end. */
typedef struct csv_line {
    const char *p;
    size_t n;
} csv_line;

/* The line end of the text: '\r' for old Mac text (a '\r' and no '\n' anywhere), else '\n' (with
 * an optional '\r' before it; a '\r' elsewhere is then an error in its field). */
static char line_end_of(const char *buf, size_t len)
{
    return !memchr(buf, '\n', len) && memchr(buf, '\r', len) ? '\r' : '\n';
}

/* Returns the line starting at *pos (advancing *pos past its end `eol`) without the line end
 * ('\r\n' or '\n' when eol is '\n', '\r' when eol is '\r'). */
static csv_line next_line(const char *buf, size_t len, size_t *pos, char eol)
{
    csv_line l = {buf + *pos, 0};
    const char *nl = memchr(buf + *pos, eol, len - *pos);
    size_t end = nl ? (size_t)(nl - buf) : len;
    l.n = end - *pos;
    *pos = nl ? end + 1 : len;
    if (eol == '\n' && l.n > 0 && l.p[l.n - 1] == '\r')
        l.n--;
    return l;
}

static bool is_blank_char(char c)
{
    return c == ' ' || c == '\t';
}

static bool line_is_blank(csv_line l)
{
    for (size_t i = 0; i < l.n; i++)
        if (!is_blank_char(l.p[i]))
            return false;
    return true;
}

static size_t count_fields(csv_line l)
{
    size_t n = 1;
    for (size_t i = 0; i < l.n; i++)
        n += l.p[i] == ',';
    return n;
}

/* Splits a line's field c (0-based) out, trimmed of spaces and tabs: [*a, *b). */
static void field_bounds(csv_line l, size_t *at, size_t *a, size_t *b)
{
    size_t start = *at;
    while (*at < l.n && l.p[*at] != ',')
        (*at)++;
    *a = start;
    *b = *at;
    while (*a < *b && is_blank_char(l.p[*a]))
        (*a)++;
    while (*b > *a && is_blank_char(l.p[*b - 1]))
        (*b)--;
    (*at)++; /* past the ',' */
}

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
static nb_status scan(const char *buf, size_t len, char eol, bool has_header, size_t *n_fields,
                      int64_t *n_rows)
{
    size_t pos = 0, lineno = 0, first_blank = 0, fields = 0;
    int64_t rows = 0;
    bool first = true;
    while (pos < len) {
        csv_line l = next_line(buf, len, &pos, eol);
        lineno++;
        if (line_is_blank(l)) {
            if (first_blank == 0)
                first_blank = lineno;
            continue;
        }
        if (first_blank != 0)
            return nb_error(NB_ERR_FORMAT,
                            "line %zu is blank (blank lines are allowed only after the data)",
                            first_blank);
        size_t f = count_fields(l);
        if (first) {
            fields = f;
            first = false;
            if (f < 2)
                return nb_error(NB_ERR_FORMAT,
                                "line %zu has 1 field; a row needs a label and at least one "
                                "feature",
                                lineno);
            if (has_header)
                continue;
        } else if (f != fields) {
            return nb_error(NB_ERR_FORMAT, "line %zu has %zu fields, expected %zu", lineno, f,
                            fields);
        }
        rows++;
    }
    if (rows == 0)
        return nb_error(NB_ERR_FORMAT, "no data rows (%zu lines%s)", lineno,
                        has_header ? ", the first one a header" : "");
    *n_fields = fields;
    *n_rows = rows;
    return NB_OK;
}

/* Pass 2: converts every field. X is [rows, fields - 1], y [rows]. */
static nb_status convert(const char *buf, size_t len, char eol, bool has_header, size_t fields,
                         size_t label_at, float *X, int32_t *y, size_t *max_line)
{
    size_t pos = 0, lineno = 0;
    int64_t row = 0;
    bool skip = has_header;
    int64_t max_label = -1;
    while (pos < len) {
        csv_line l = next_line(buf, len, &pos, eol);
        lineno++;
        if (line_is_blank(l))
            continue; /* only trailing ones remain after scan() */
        if (skip) {
            skip = false;
            continue;
        }
        float *xr = X + (size_t)row * (fields - 1);
        size_t at = 0;
        for (size_t c = 0; c < fields; c++) {
            size_t a, b;
            field_bounds(l, &at, &a, &b);
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

/* Whether the text s[0..n) is a number to strtod (all of it). */
static bool is_number(const char *s, size_t n)
{
    if (n == 0 || n > CSV_MAX_FIELD)
        return false;
    char tmp[CSV_MAX_FIELD + 1];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    (void)strtod(tmp, &end);
    return end == tmp + n;
}

/* AUTO header rule: the first non-blank line is a header when none of its fields is a number. */
static bool first_line_is_header(const char *buf, size_t len, char eol)
{
    size_t pos = 0;
    while (pos < len) {
        csv_line l = next_line(buf, len, &pos, eol);
        if (line_is_blank(l))
            continue; /* scan() reports a leading blank line */
        size_t at = 0, a, b, fields = count_fields(l);
        for (size_t c = 0; c < fields; c++) {
            field_bounds(l, &at, &a, &b);
            if (is_number(l.p + a, b - a))
                return false;
        }
        return true;
    }
    return false;
}

static nb_status parse_csv(const char *buf, size_t len, int label_col, nb_csv_header header,
                           nb_dataset *out)
{
    if (header != NB_CSV_HEADER_NO && header != NB_CSV_HEADER_YES && header != NB_CSV_HEADER_AUTO)
        return nb_error(NB_ERR_ARG, "header mode %d is not NO (0), YES (1) or AUTO (2)",
                        (int)header);
    /* A UTF-8 byte-order mark (spreadsheets write one) is not part of the first value. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    /* strtod in the C locale, so '.' is the decimal point whatever setlocale said. */
    locale_t c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t old = c_loc ? uselocale(c_loc) : (locale_t)0;
    nb_status st = NB_OK;
    char eol = line_end_of(buf, len);
    bool has_header = header == NB_CSV_HEADER_YES ||
                      (header == NB_CSV_HEADER_AUTO && first_line_is_header(buf, len, eol));
    size_t fields = 0;
    int64_t rows = 0;
    st = scan(buf, len, eol, has_header, &fields, &rows);
    if (st == NB_OK && (label_col < -1 || (label_col >= 0 && (size_t)label_col >= fields)))
        st = nb_error(NB_ERR_ARG,
                      "label column %d is out of range for %zu columns (0-based; -1 = last)",
                      label_col, fields);
    nb_tensor *X = NULL, *y = NULL;
    size_t label_at = label_col == -1 ? fields - 1 : (size_t)label_col;
    if (st == NB_OK) {
        int64_t sx[2] = {rows, (int64_t)fields - 1}, sy[1] = {rows};
        if ((st = nb_tensor_new(NB_F32, 2, sx, &X)) == NB_OK)
            st = nb_tensor_new(NB_I32, 1, sy, &y);
    }
    size_t max_line = 0;
    if (st == NB_OK)
        st = convert(buf, len, eol, has_header, fields, label_at, X->data, y->data, &max_line);
    if (c_loc) {
        uselocale(old);
        freelocale(c_loc);
    }
    bool sparse = false;
    int64_t max_label = -1, max_at, distinct;
    if (st == NB_OK)
        st = nb_labels_class_check(y->data, rows, &sparse, &max_label, &max_at, &distinct);
    if (st == NB_OK && sparse)
        st = nb_error(NB_ERR_RANGE,
                      "line %zu, column %zu: label %" PRId64 " implies %" PRId64
                      " classes but only %" PRId64 " distinct labels occur (labels are class ids "
                      "0..K-1; above %d classes at least half of them must occur)",
                      max_line, label_at + 1, max_label, max_label + 1, distinct,
                      NB_DATASET_SPARSE_CLASSES);
    if (st != NB_OK) {
        nb_tensor_free(X);
        nb_tensor_free(y);
        return st;
    }
    out->X = X;
    out->y = y;
    out->n_classes = max_label + 1;
    out->input_scale = 1.0;
    out->input_shift = 0.0;
    snprintf(out->name, sizeof out->name, "csv");
    return NB_OK;
}

nb_status nb_dataset_parse_csv(const char *buf, size_t len, int label_col, nb_csv_header header,
                               nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "csv: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return nb_error(NB_ERR_ARG, "csv: buffer is NULL but length is %zu", len);
    nb_status st = parse_csv(buf ? buf : "", len, label_col, header, out);
    if (st != NB_OK)
        nb_error_prefix(st, "csv", NULL);
    return st;
}

typedef struct csv_load {
    int label_col;
    nb_csv_header header;
    nb_dataset *out;
} csv_load;

static nb_status load_file(FILE *f, size_t size, void *ctx)
{
    const csv_load *l = ctx;
    unsigned char *buf;
    nb_status st = nb_read_rest(f, size, NULL, 0, "file", &buf);
    if (st != NB_OK)
        return st;
    st = parse_csv((const char *)buf, size, l->label_col, l->header, l->out);
    free(buf);
    return st;
}

nb_status nb_dataset_load_csv(const char *path, int label_col, nb_csv_header header,
                              nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "csv: output data set is NULL");
    memset(out, 0, sizeof *out);
    csv_load l = {label_col, header, out};
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
