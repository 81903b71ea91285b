/* csv_lines.c - lines and fields of CSV text, and what its first line is (a header, a count
 * line, the label column's name), for the reader in csv.c. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/fileread.h"
#include "csv_internal.h"
#include "data_internal.h"
#include "nabla/status.h"

/* The line end of the text: '\r' for old Mac text (a '\r' and no '\n' anywhere), else '\n' (with
 * an optional '\r' before it; a '\r' elsewhere is then an error in its field). */
char nb_csv_line_end_of(const char *buf, size_t len)
{
    return !memchr(buf, '\n', len) && memchr(buf, '\r', len) ? '\r' : '\n';
}

/* Returns the line starting at *pos (advancing *pos past its end `eol`) without the line end
 * ('\r\n' or '\n' when eol is '\n', '\r' when eol is '\r'). */
csv_line nb_csv_next_line(const char *buf, size_t len, size_t *pos, char eol)
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

static bool nb_csv_is_blank_char(char c)
{
    return c == ' ' || c == '\t';
}

bool nb_csv_line_is_blank(csv_line l)
{
    for (size_t i = 0; i < l.n; i++)
        if (!nb_csv_is_blank_char(l.p[i]))
            return false;
    return true;
}

size_t nb_csv_count_fields(csv_line l)
{
    size_t n = 1;
    for (size_t i = 0; i < l.n; i++)
        n += l.p[i] == ',';
    return n;
}

/* Splits a line's field c (0-based) out, trimmed of spaces and tabs: [*a, *b). */
void nb_csv_field_bounds(csv_line l, size_t *at, size_t *a, size_t *b)
{
    size_t start = *at;
    while (*at < l.n && l.p[*at] != ',')
        (*at)++;
    *a = start;
    *b = *at;
    while (*a < *b && nb_csv_is_blank_char(l.p[*a]))
        (*a)++;
    while (*b > *a && nb_csv_is_blank_char(l.p[*b - 1]))
        (*b)--;
    (*at)++; /* past the ',' */
}

/* Whether the text s[0..n) is a number to strtod (all of it). */
bool nb_csv_is_number(const char *s, size_t n)
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
bool nb_csv_first_line_is_header(const char *buf, size_t len, char eol)
{
    size_t pos = 0;
    while (pos < len) {
        csv_line l = nb_csv_next_line(buf, len, &pos, eol);
        if (nb_csv_line_is_blank(l))
            continue; /* scan() reports a leading blank line */
        size_t at = 0, a, b, fields = nb_csv_count_fields(l);
        for (size_t c = 0; c < fields; c++) {
            nb_csv_field_bounds(l, &at, &a, &b);
            if (nb_csv_is_number(l.p + a, b - a))
                return false;
        }
        return true;
    }
    return false;
}

/* The first line of the text (after skipped lines), or an empty one; *more says whether a
 * non-blank line follows it. */
csv_line nb_csv_first_line(const char *buf, size_t len, char eol, bool *more)
{
    size_t pos = 0;
    csv_line l = nb_csv_next_line(buf, len, &pos, eol);
    *more = false;
    while (pos < len && !*more)
        *more = !nb_csv_line_is_blank(nb_csv_next_line(buf, len, &pos, eol));
    return l;
}

/* A field of only decimal digits (at most 18) as a non-negative integer. */
bool nb_csv_is_count(const char *s, size_t n, int64_t *v)
{
    if (n == 0 || n > 18)
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* scikit-learn's count line (its data sets' CSV files, e.g. wine_data.csv's
 * "178,13,class_0,class_1,class_2"): the row count, the feature count, then at least one class
 * name, none of them a number; only when lines follow it. */
bool nb_csv_is_counts_line(csv_line l, int64_t *n, int64_t *d)
{
    size_t fields = nb_csv_count_fields(l), at = 0, a, b;
    if (fields < 3)
        return false;
    for (size_t c = 0; c < fields; c++) {
        nb_csv_field_bounds(l, &at, &a, &b);
        if (c == 0 && !nb_csv_is_count(l.p + a, b - a, n))
            return false;
        if (c == 1 && !nb_csv_is_count(l.p + a, b - a, d))
            return false;
        if (c >= 2 && (a == b || nb_csv_is_number(l.p + a, b - a)))
            return false;
    }
    return true;
}

/* The fields of line l from column `from` on as n new strings (*names; free with
 * nb_dataset_free_names_). */
nb_status nb_csv_line_names(csv_line l, size_t from, char ***names, int64_t *n)
{
    size_t fields = nb_csv_count_fields(l), at = 0, a, b;
    *n = (int64_t)(fields - from);
    *names = calloc(fields - from, sizeof **names);
    if (!*names)
        return nb_error(NB_ERR_NOMEM, "out of memory for %zu class names", fields - from);
    for (size_t c = 0; c < fields; c++) {
        nb_csv_field_bounds(l, &at, &a, &b);
        if (c >= from && !(((*names)[c - from] = strndup(l.p + a, b - a)))) {
            nb_dataset_free_names_(*names, *n);
            *names = NULL;
            return nb_error(NB_ERR_NOMEM, "out of memory for a class name");
        }
    }
    return NB_OK;
}

/* The 0-based column of the header field equal to `name` (trimmed), once and only once. */
nb_status nb_csv_find_label_name(csv_line l, size_t lineno, const char *name, int *col)
{
    size_t fields = nb_csv_count_fields(l), at = 0, a, b, want = strlen(name);
    char show[96];
    *col = -1;
    for (size_t c = 0; c < fields; c++) {
        nb_csv_field_bounds(l, &at, &a, &b);
        if (b - a != want || memcmp(l.p + a, name, want) != 0)
            continue;
        if (*col >= 0)
            return nb_error(NB_ERR_FORMAT,
                            "line %zu: the label column '%s' is named twice (columns %d and %zu)",
                            lineno, name, *col + 1, c + 1);
        *col = (int)c;
    }
    if (*col < 0)
        return nb_error(NB_ERR_ARG, "line %zu: no column is named '%s' (the header: '%s')", lineno,
                        name, nb_printable(show, sizeof show, l.p, l.n));
    return NB_OK;
}
