/* plot_metrics.c - reads a `nabla train --metrics` file (JSON lines: config, epoch and end
 * records, see plot_metrics.h) into columns for `nabla plot`.
 *
 * Every line is parsed on its own and must be one JSON object; its kind is told by a key
 * ("epoch", "end", "config"), and a line of another kind is skipped. Only what is drawn is
 * checked strictly: the epoch, the train and held-out loss and accuracy, the end record's
 * test figures. Errors name FILE:LINE and stop the reading; nothing is drawn from a file with
 * an error. The file is read through a bounded line buffer, never whole into memory. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "plot_metrics.h"
#include "tensor/fileread.h"

/* Where the reading is, for messages. */
typedef struct reader {
    const char *path;
    long lineno;
    long held_line; /* the line of the first epoch, which fixed m->held */
    bool have_config;
    nb_plot_metrics *m;
} reader;

/* Prints "nabla plot: PATH:LINE: <message>" and returns -1. */
static int fail(const reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nabla plot: %s:%ld: ", r->path, r->lineno);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

void nb_plot_metrics_free(nb_plot_metrics *m)
{
    for (int c = 0; c < NB_PM_NCOLS; c++)
        free(m->col[c]);
    memset(m, 0, sizeof *m);
}

const char *nb_plot_metrics_held_name(const nb_plot_metrics *m)
{
    return m->held == NB_HELD_VAL ? "val" : m->held == NB_HELD_TEST ? "test" : NULL;
}

static int push_row(nb_plot_metrics *m, const double row[NB_PM_NCOLS])
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        for (int c = 0; c < NB_PM_NCOLS; c++) {
            double *p = realloc(m->col[c], (size_t)cap * sizeof *p);
            if (!p)
                return -1;
            m->col[c] = p;
        }
        m->cap = cap;
    }
    for (int c = 0; c < NB_PM_NCOLS; c++)
        m->col[c][m->n] = row[c];
    m->n++;
    return 0;
}

/* obj[key] as a finite number into *out: 1 found, 0 absent (and not required), -1 error. */
static int get_number(const reader *r, const cJSON *obj, const char *key, bool required,
                      double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return required ? fail(r, "missing key \"%s\"", key) : 0;
    if (!cJSON_IsNumber(v))
        return fail(r, "\"%s\" is not a number", key);
    if (!isfinite(v->valuedouble))
        return fail(r, "\"%s\" is not finite", key);
    *out = v->valuedouble;
    return 1;
}

/* The pair PREFIX_loss, PREFIX_acc: 1 both read, 0 neither present, -1 error (one of them
 * missing, or not a finite number). */
static int get_pair(const reader *r, const cJSON *obj, const char *prefix, double *loss,
                    double *acc)
{
    char kl[32], ka[32];
    snprintf(kl, sizeof kl, "%s_loss", prefix);
    snprintf(ka, sizeof ka, "%s_acc", prefix);
    if (!cJSON_HasObjectItem(obj, kl) && !cJSON_HasObjectItem(obj, ka))
        return 0;
    if (get_number(r, obj, kl, true, loss) < 0 || get_number(r, obj, ka, true, acc) < 0)
        return -1;
    return 1;
}

static const char *held_keys(nb_held_kind k)
{
    return k == NB_HELD_VAL    ? "val_loss and val_acc"
           : k == NB_HELD_TEST ? "test_loss and test_acc"
                               : "no held-out keys (val_loss, val_acc)";
}

/* An epoch record: the epoch, train_loss, train_acc, and one held-out pair (val_* or, in old
 * files, test_*) or none, the same in every epoch of the file. */
static int read_epoch(reader *r, const cJSON *obj)
{
    nb_plot_metrics *m = r->m;
    static const char *const keys[3] = {"epoch", "train_loss", "train_acc"};
    double row[NB_PM_NCOLS] = {0}, tl = 0, ta = 0;
    for (int c = 0; c < 3; c++)
        if (get_number(r, obj, keys[c], true, &row[c]) < 0)
            return -1;
    int val = get_pair(r, obj, "val", &row[NB_PM_HELD_LOSS], &row[NB_PM_HELD_ACC]);
    int test = val < 0 ? -1 : get_pair(r, obj, "test", &tl, &ta);
    if (val < 0 || test < 0)
        return -1;
    if (val && test)
        return fail(r,
                    "epoch %g has both val_loss/val_acc and test_loss/test_acc (an epoch has "
                    "one held-out curve; the test figures belong in the end record)",
                    row[0]);
    if (test) {
        row[NB_PM_HELD_LOSS] = tl;
        row[NB_PM_HELD_ACC] = ta;
    }
    nb_held_kind kind = val ? NB_HELD_VAL : test ? NB_HELD_TEST : NB_HELD_NONE;
    if (m->end_line)
        return fail(r, "epoch %g after the end record of line %ld (two runs in one file?)", row[0],
                    m->end_line);
    if (m->n > 0 && !(row[0] > m->col[NB_PM_EPOCH][m->n - 1]))
        return fail(r, "epoch %g after epoch %g: epochs must increase (two runs in one file?)",
                    row[0], m->col[NB_PM_EPOCH][m->n - 1]);
    if (m->held == NB_HELD_UNSET) {
        m->held = kind;
        r->held_line = r->lineno;
    } else if (kind != m->held) {
        return fail(r, "epoch %g has %s, but the first epoch (line %ld) has %s", row[0],
                    held_keys(kind), r->held_line, held_keys(m->held));
    }
    if (m->n >= NB_PLOT_MAX_EPOCHS)
        return fail(r, "more than %d epochs", NB_PLOT_MAX_EPOCHS);
    if (push_row(m, row) != 0)
        return fail(r, "out of memory for %d epochs", m->n + 1);
    return 0;
}

/* The end record: {"end": true, "epochs_done", "best_epoch", "test_loss", "test_acc"}, each
 * figure optional (a run without a test set has no test_*), once per file. */
static int read_end(reader *r, const cJSON *obj, const cJSON *end)
{
    nb_plot_metrics *m = r->m;
    if (!cJSON_IsTrue(end))
        return fail(r, "\"end\" is not true (the end record is {\"end\": true, ...})");
    if (m->end_line)
        return fail(r, "a second end record (the first is on line %ld)", m->end_line);
    int t = get_pair(r, obj, "test", &m->test_loss, &m->test_acc);
    if (t < 0 || get_number(r, obj, "best_epoch", false, &m->best_epoch) < 0 ||
        get_number(r, obj, "epochs_done", false, &m->epochs_done) < 0)
        return -1;
    m->end_test = t == 1;
    m->end_line = r->lineno;
    return 0;
}

static void config_string(char *out, const cJSON *config, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsString(v) && v->valuestring)
        snprintf(out, NB_PLOT_MAX_NAME, "%s", v->valuestring);
}

/* The config record: the first one names the data set and the layers; later ones are
 * skipped. */
static int read_config(reader *r, const cJSON *config)
{
    if (!cJSON_IsObject(config))
        return fail(r, "\"config\" is not an object");
    if (r->have_config)
        return 0;
    r->have_config = true;
    config_string(r->m->data, config, "data");
    config_string(r->m->hidden, config, "hidden");
    return 0;
}

static int is_blank(const char *s, const char *end)
{
    for (; s < end; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* One line (len bytes, may hold NULs): one JSON object, read by its kind. 0 ok, -1 after a
 * message. */
static int parse_line(reader *r, const char *line, size_t len)
{
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!obj) {
        long col = end && end >= line ? (long)(end - line) + 1 : 1;
        return fail(r, "not valid JSON (column %ld)", col);
    }
    int rc = 0;
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(obj, "end");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(obj, "config");
    if (!is_blank(end, line + len))
        rc = fail(r,
                  "unexpected text after the JSON object (column %ld); expected one object "
                  "per line",
                  (long)(end - line) + 1);
    else if (!cJSON_IsObject(obj))
        rc = fail(r, "expected a JSON object (an epoch, config or end record)");
    else if (cJSON_HasObjectItem(obj, "epoch"))
        rc = read_epoch(r, obj);
    else if (done)
        rc = read_end(r, obj, done);
    else if (config)
        rc = read_config(r, config);
    else if (cJSON_HasObjectItem(obj, "train_loss") || cJSON_HasObjectItem(obj, "train_acc"))
        rc = fail(r, "missing key \"epoch\"");
    /* else another kind of record: skipped */
    cJSON_Delete(obj);
    return rc;
}

/* Reads the next line of f (its '\n' included) into buf[0..cap). Returns the length, 0 at the
 * end of the file, -1 for a line longer than the buffer (the rest of it is not read). */
static long read_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        if (n == cap)
            return -1;
        buf[n++] = (char)c;
        if (c == '\n')
            break;
    }
    return (long)n;
}

/* Parses every non-blank line of f into r->m. 0 ok, -1 after a message. */
static int read_lines(reader *r, FILE *f, char *line)
{
    char lim[32];
    long len;
    size_t total = 0;
    errno = 0;
    while ((len = read_line(f, line, NB_PLOT_MAX_LINE)) != 0) {
        r->lineno++;
        if (len < 0)
            return fail(r,
                        "line %ld longer than %d bytes (a metrics line is one JSON object of a "
                        "few hundred bytes)",
                        r->lineno, NB_PLOT_MAX_LINE);
        total += (size_t)len;
        if (total > NB_PLOT_MAX_FILE) /* it grew while we read it */
            return fail(r, "file grew past the limit of %s while being read",
                        nb_bytes_str(lim, sizeof lim, NB_PLOT_MAX_FILE));
        if (!is_blank(line, line + len) && parse_line(r, line, (size_t)len) != 0)
            return -1;
    }
    if (ferror(f)) {
        fprintf(stderr, "nabla plot: error reading %s: %s\n", r->path, strerror(errno));
        return -1;
    }
    return 0;
}

int nb_plot_metrics_read(const char *path, nb_plot_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->best_epoch = m->epochs_done = -1;
    size_t size = 0;
    FILE *f = nb_open_regular(path, "nabla plot", &size);
    if (!f) {
        fprintf(stderr, "%s\n", nb_last_error());
        return -1;
    }
    char have[32], lim[32];
    char *line = NULL;
    int rc = -1;
    if (size > NB_PLOT_MAX_FILE) {
        fprintf(stderr, "nabla plot: '%s': file is %s, limit %s for a metrics file\n", path,
                nb_bytes_str(have, sizeof have, size),
                nb_bytes_str(lim, sizeof lim, NB_PLOT_MAX_FILE));
    } else if (!(line = malloc(NB_PLOT_MAX_LINE))) {
        fprintf(stderr, "nabla plot: out of memory for a %d-byte line buffer\n", NB_PLOT_MAX_LINE);
    } else {
        reader r = {path, 0, 0, false, m};
        rc = read_lines(&r, f, line);
        if (rc == 0 && m->n == 0) {
            fprintf(stderr, "nabla plot: %s: no epochs (no line with an \"epoch\" key)\n", path);
            rc = -1;
        }
    }
    free(line);
    fclose(f); /* read-only: nothing to lose */
    return rc;
}
