/* csv_internal.h - the line and field machinery of the CSV reader (csv_lines.c), shared with
 * its row parser (csv.c). Not installed. */
#ifndef NABLA_CSV_INTERNAL_H
#define NABLA_CSV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/status.h"

/* Longest field we convert (a double needs far fewer characters; longer is an error). */
#define CSV_MAX_FIELD 127

/* One line of the text without its line end. */
typedef struct csv_line {
    const char *p;
    size_t n;
} csv_line;

/* How the lines of a text are read: its line end, how many lines were skipped before it (so
 * messages count lines from the file's start), and what its first line is. */
typedef struct csv_plan {
    char eol;
    size_t line0;      /* lines skipped before the text (skip_rows) */
    bool skip_first;   /* the first line is a header or a count line, not data */
    bool first_counts; /* ... a count line ("N,D,names"): its field count is its own */
} csv_plan;

/* The line end of the text: '\r' for old Mac text (a '\r' and no '\n' anywhere), else '\n' (with
 * an optional '\r' before it; a '\r' elsewhere is then an error in its field). */
char nb_csv_line_end_of(const char *buf, size_t len);
/* Returns the line starting at *pos (advancing *pos past its end `eol`) without the line end
 * ('\r\n' or '\n' when eol is '\n', '\r' when eol is '\r'). */
csv_line nb_csv_next_line(const char *buf, size_t len, size_t *pos, char eol);
bool nb_csv_line_is_blank(csv_line l);
size_t nb_csv_count_fields(csv_line l);
/* Splits a line's field c (0-based) out, trimmed of spaces and tabs: [*a, *b). */
void nb_csv_field_bounds(csv_line l, size_t *at, size_t *a, size_t *b);
/* Whether the text s[0..n) is a number to strtod (all of it). */
bool nb_csv_is_number(const char *s, size_t n);
/* AUTO header rule: the first non-blank line is a header when none of its fields is a number. */
bool nb_csv_first_line_is_header(const char *buf, size_t len, char eol);
/* The first line of the text (after skipped lines), or an empty one; *more says whether a
 * non-blank line follows it. */
csv_line nb_csv_first_line(const char *buf, size_t len, char eol, bool *more);
/* A field of only decimal digits (at most 18) as a non-negative integer. */
bool nb_csv_is_count(const char *s, size_t n, int64_t *v);
/* scikit-learn's count line (its data sets' CSV files, e.g. wine_data.csv's
 * "178,13,class_0,class_1,class_2"): the row count, the feature count, then at least one class
 * name, none of them a number; only when lines follow it. */
bool nb_csv_is_counts_line(csv_line l, int64_t *n, int64_t *d);
/* The fields of line l from column `from` on as n new strings (*names; free with
 * nb_dataset_free_names_). */
nb_status nb_csv_line_names(csv_line l, size_t from, char ***names, int64_t *n);
/* The 0-based column of the header field equal to `name` (trimmed), once and only once. */
nb_status nb_csv_find_label_name(csv_line l, size_t lineno, const char *name, int *col);

#endif
