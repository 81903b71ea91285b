/* csv.c - a labelled data set from comma-separated text.
 *
 * One row per sample: numbers separated by ',', one column (label_col) holding the class id, the
 * others the features. No quoting, no comments. Lines end in \n or \r\n; the last one may lack its
 * end; blank lines (empty or only spaces/tabs) may follow the data but not interrupt it.
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
#include <sys/stat.h>

#include "nabla/dataset.h"
#include "../tensor/fileio.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

/* Longest field we convert (a double needs far fewer characters; longer is an error). */
#define CSV_MAX_FIELD 127

/* One line of the text without its line end. */
typedef struct csv_line {
    const char *p;
    size_t n;
} csv_line;

/* Returns the line starting at *pos (advancing *pos past its '\n') without '\r\n' / '\n'. */
static csv_line next_line(const char *buf, size_t len, size_t *pos)
{
    csv_line l = {buf + *pos, 0};
    const char *nl = memchr(buf + *pos, '\n', len - *pos);
    size_t end = nl ? (size_t)(nl - buf) : len;
    l.n = end - *pos;
    *pos = nl ? end + 1 : len;
    if (l.n > 0 && l.p[l.n - 1] == '\r')
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

/* Copies a field for a message, with non-printable bytes shown as '?' and long fields cut. */
static const char *shown(char *out, size_t cap, const char *s, size_t n)
{
    size_t keep = n <= cap - 1 ? n : cap - 4;
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (keep < n) {
        memcpy(out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
    return out;
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
                        line, col, shown(show, sizeof show, s, n), n, CSV_MAX_FIELD);
    char tmp[CSV_MAX_FIELD + 1];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n || end == tmp)
        return nb_error(NB_ERR_FORMAT, "line %zu, column %zu: '%s' is not a number", line, col,
                        shown(show, sizeof show, s, n));
    if (!isfinite(v))
        return nb_error(NB_ERR_FORMAT, "line %zu, column %zu: '%s' is not a finite number", line,
                        col, shown(show, sizeof show, s, n));
    *out = v;
    return NB_OK;
}

/* Pass 1: checks the line structure and counts fields and rows. */
static nb_status scan(const char *buf, size_t len, bool has_header, size_t *n_fields,
                      int64_t *n_rows)
{
    size_t pos = 0, lineno = 0, first_blank = 0, fields = 0;
    int64_t rows = 0;
    bool first = true;
    while (pos < len) {
        csv_line l = next_line(buf, len, &pos);
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
static nb_status convert(const char *buf, size_t len, bool has_header, size_t fields,
                         size_t label_at, float *X, int32_t *y, int64_t *max_label)
{
    size_t pos = 0, lineno = 0;
    int64_t row = 0;
    bool skip = has_header;
    *max_label = -1;
    while (pos < len) {
        csv_line l = next_line(buf, len, &pos);
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
            size_t start = at;
            while (at < l.n && l.p[at] != ',')
                at++;
            size_t a = start, b = at;
            while (a < b && is_blank_char(l.p[a]))
                a++;
            while (b > a && is_blank_char(l.p[b - 1]))
                b--;
            at++; /* past the ',' */
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
                                    lineno, c + 1, shown(show, sizeof show, l.p + a, b - a));
                if (v >= (double)NB_DATASET_MAX_CLASSES)
                    return nb_error(NB_ERR_FORMAT,
                                    "line %zu, column %zu: label '%s' is not below the limit of "
                                    "%" PRId64 " classes",
                                    lineno, c + 1, shown(show, sizeof show, l.p + a, b - a),
                                    NB_DATASET_MAX_CLASSES);
                y[row] = (int32_t)v;
                if (y[row] > *max_label)
                    *max_label = y[row];
            } else {
                nb_status st = parse_number(l.p + a, b - a, lineno, c + 1, "feature", &v);
                if (st != NB_OK)
                    return st;
                if (fabs(v) > FLT_MAX)
                    return nb_error(NB_ERR_FORMAT,
                                    "line %zu, column %zu: '%s' is out of the f32 range", lineno,
                                    c + 1, shown(show, sizeof show, l.p + a, b - a));
                *xr++ = (float)v;
            }
        }
        row++;
    }
    return NB_OK;
}

static nb_status parse_csv(const char *buf, size_t len, int label_col, bool has_header,
                           nb_dataset *out)
{
    size_t fields = 0;
    int64_t rows = 0;
    nb_status st = scan(buf, len, has_header, &fields, &rows);
    if (st != NB_OK)
        return st;
    if (label_col < -1 || (label_col >= 0 && (size_t)label_col >= fields))
        return nb_error(NB_ERR_ARG,
                        "label column %d is out of range for %zu columns (0-based; -1 = last)",
                        label_col, fields);
    size_t label_at = label_col == -1 ? fields - 1 : (size_t)label_col;
    int64_t sx[2] = {rows, (int64_t)fields - 1}, sy[1] = {rows};
    nb_tensor *X = nb_tensor_empty(NB_F32, 2, sx);
    nb_tensor *y = X ? nb_tensor_empty(NB_I32, 1, sy) : NULL;
    if (!X || !y) {
        nb_tensor_free(X);
        return nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
    }

    /* strtod in the C locale, so '.' is the decimal point whatever setlocale said. */
    locale_t c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t old = c_loc ? uselocale(c_loc) : (locale_t)0;
    int64_t max_label = -1;
    st = convert(buf, len, has_header, fields, label_at, X->data, y->data, &max_label);
    if (c_loc) {
        uselocale(old);
        freelocale(c_loc);
    }
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

nb_status nb_dataset_parse_csv(const char *buf, size_t len, int label_col, bool has_header,
                               nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "csv: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return nb_error(NB_ERR_ARG, "csv: buffer is NULL but length is %zu", len);
    nb_status st = parse_csv(buf ? buf : "", len, label_col, has_header, out);
    if (st != NB_OK)
        nb_error_prefix(st, "csv", NULL);
    return st;
}

/* Reads a whole regular file into a malloc'd buffer (bounded by the file's real size). */
static nb_status read_file(FILE *f, char **out, size_t *len)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return nb_error(NB_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return nb_error(NB_ERR_IO, "not a regular file");
    if (sb.st_size < 0 || (uintmax_t)sb.st_size >= (uintmax_t)SIZE_MAX)
        return nb_error(NB_ERR_IO, "file size %jd is not addressable", (intmax_t)sb.st_size);
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size > 0 ? size : 1);
    if (!buf)
        return nb_error(NB_ERR_NOMEM, "out of memory for the %zu-byte file", size);
    size_t got = size > 0 ? fread(buf, 1, size, f) : 0;
    if (got != size) {
        nb_status st = ferror(f) ? nb_error(NB_ERR_IO, "read error: %s", strerror(errno))
                                 : nb_error(NB_ERR_IO,
                                            "file shrank while it was being read "
                                            "(%zu of %zu bytes)",
                                            got, size);
        free(buf);
        return st;
    }
    if (fgetc(f) != EOF) {
        free(buf);
        return nb_error(NB_ERR_IO, "file grew while it was being read");
    }
    *out = buf;
    *len = size;
    return NB_OK;
}

nb_status nb_dataset_load_csv(const char *path, int label_col, bool has_header, nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "csv: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return nb_error(NB_ERR_ARG, "csv: load path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return nb_error(NB_ERR_IO, "csv: cannot open '%s': %s", path, strerror(e));
    }
    char *buf = NULL;
    size_t len = 0;
    nb_status st = read_file(f, &buf, &len);
    if (fclose(f) != 0 && st == NB_OK) {
        int e = errno;
        st = nb_error(NB_ERR_IO, "cannot close: %s", strerror(e));
    }
    if (st == NB_OK)
        st = parse_csv(buf, len, label_col, has_header, out);
    free(buf);
    if (st != NB_OK) {
        nb_error_prefix(st, "csv", path);
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
