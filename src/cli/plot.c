/* plot.c - `nabla plot`: loss and accuracy curves from a `nabla train --metrics` file, drawn
 * with PLplot's C API into one PNG (two panels, ~1000x450, cairo's pngcairo device).
 *
 * The metrics file is JSON lines, one object per epoch:
 *   {"epoch": 1, "train_loss": .., "train_acc": .., "test_loss": .., "test_acc": ..,
 *    "train_seconds": .., "lr": ..}
 * Every key must be present and a finite number; a bad line is reported as FILE:LINE and no
 * PNG is written. The PNG is drawn into a private temporary file, checked (PNG signature,
 * IEND trailer) and only then written to the target by the one writer (tensor/fileio.h).
 *
 * PLplot keeps global state: every plinit() is paired with a plend(), and an exit handler
 * removes the temporary file if PLplot decides to exit() the process on a fatal error.
 * Without PLplot (NABLA_HAVE_PLPLOT undefined) plotting reports that it is not built in. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tensor/fileio.h"
#include "tensor/fileread.h"
#include "plot.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nabla plot METRICS.jsonl -o FILE.png\n"
            "\n"
            "Loss and accuracy curves (train and test) per epoch from a `nabla train --metrics`\n"
            "file, one JSON object per line with the keys epoch, train_loss, train_acc,\n"
            "test_loss, test_acc, train_seconds, lr.\n"
            "  -o, --output FILE.png   where to write the plot (replaced only on success)\n"
            "Exit status: 0 ok, 1 bad input (message on stderr, no PNG written), 2 usage.\n"
#ifndef NABLA_HAVE_PLPLOT
            "(this build has no PLplot support: install libplplot-dev and rebuild)\n"
#endif
    );
}

int nb_cmd_plot(int argc, char **argv)
{
    const char *metrics = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(k, "-o") || !strcmp(k, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "nabla plot: %s needs a value\n", k);
                usage(stderr);
                return 2;
            }
            out = argv[++i];
        } else if (k[0] == '-' && k[1] != '\0') {
            fprintf(stderr, "nabla plot: unknown option '%s'\n", k);
            usage(stderr);
            return 2;
        } else if (!metrics) {
            metrics = k;
        } else {
            fprintf(stderr, "nabla plot: more than one metrics file ('%s' and '%s')\n", metrics, k);
            usage(stderr);
            return 2;
        }
    }
    if (!metrics || !out || !*metrics || !*out) {
        fprintf(stderr, "nabla plot: need a metrics file and -o FILE.png\n");
        usage(stderr);
        return 2;
    }
    if (nb_cli_check_plot_output(metrics, out) != 0)
        return 1;
    int rc = nb_cli_plot_metrics(metrics, out);
    if (rc == 0) /* with -o -, standard output carries the PNG */
        fprintf(strcmp(out, "-") ? stdout : stderr, "plotted %s\n", out);
    return rc;
}

int nb_cli_check_plot_output(const char *metrics_path, const char *png_path)
{
    if (nb_output_check(png_path, "nabla plot -o") != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    if (metrics_path && nb_output_same_file(png_path, metrics_path)) {
        fprintf(stderr,
                "nabla plot: -o '%s' is the same file as the metrics file '%s'; writing it would "
                "destroy the input (choose another output file)\n",
                png_path, metrics_path);
        return 1;
    }
    return 0;
}

#ifndef NABLA_HAVE_PLPLOT

int nb_cli_plot_metrics(const char *metrics_path, const char *png_path)
{
    (void)metrics_path;
    fprintf(stderr,
            "nabla plot: cannot write %s: this build has no PLplot support (install "
            "libplplot-dev)\n",
            png_path);
    return 1;
}

int nb_cli_png_write(const char *cmd, const char *png_path, int width, int height,
                     int (*draw)(void *ctx), void *ctx)
{
    (void)width, (void)height, (void)draw, (void)ctx;
    fprintf(stderr,
            "nabla %s: cannot write %s: this build has no PLplot support (install "
            "libplplot-dev)\n",
            cmd, png_path);
    return 1;
}

#else /* NABLA_HAVE_PLPLOT */

#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include <cJSON.h>
#include <plplot.h>

/* ---- reading the metrics file ---- */

enum { M_EPOCH, M_TRAIN_LOSS, M_TRAIN_ACC, M_TEST_LOSS, M_TEST_ACC, M_SECONDS, M_LR, M_NCOLS };
static const char *const metric_keys[M_NCOLS] = {
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "train_seconds", "lr"};

#define NB_PLOT_MAX_EPOCHS 10000000          /* far beyond any run; keeps counts inside PLINT */
#define NB_PLOT_MAX_LINE 65536               /* bytes per line; a real one is ~200 */
#define NB_PLOT_MAX_FILE ((size_t)256000000) /* bytes per metrics file (256 MB) */

/* One column per key, n rows (epochs). Owned by the struct; free with metrics_free. */
typedef struct metrics {
    int n, cap;
    double *col[M_NCOLS];
} metrics;

static void metrics_free(metrics *m)
{
    for (int c = 0; c < M_NCOLS; c++)
        free(m->col[c]);
    memset(m, 0, sizeof *m);
}

static int metrics_push(metrics *m, const double row[M_NCOLS])
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        for (int c = 0; c < M_NCOLS; c++) {
            double *p = realloc(m->col[c], (size_t)cap * sizeof *p);
            if (!p)
                return -1;
            m->col[c] = p;
        }
        m->cap = cap;
    }
    for (int c = 0; c < M_NCOLS; c++)
        m->col[c][m->n] = row[c];
    m->n++;
    return 0;
}

static int is_blank(const char *s, const char *end)
{
    for (; s < end; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* Parses one line (len bytes, may hold NULs) into row; on error prints FILE:LINE: why. */
static int parse_line(const char *path, long lineno, const char *line, size_t len,
                      double row[M_NCOLS])
{
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!obj) {
        long col = end && end >= line ? (long)(end - line) + 1 : 1;
        fprintf(stderr, "nabla plot: %s:%ld: not valid JSON (column %ld)\n", path, lineno, col);
        return -1;
    }
    int rc = 0;
    if (!is_blank(end, line + len)) {
        fprintf(stderr,
                "nabla plot: %s:%ld: unexpected text after the JSON object (column %ld); "
                "expected one object per line\n",
                path, lineno, (long)(end - line) + 1);
        rc = -1;
    } else if (!cJSON_IsObject(obj)) {
        fprintf(stderr, "nabla plot: %s:%ld: expected a JSON object, one per epoch\n", path,
                lineno);
        rc = -1;
    }
    for (int c = 0; c < M_NCOLS && rc == 0; c++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, metric_keys[c]);
        if (!v) {
            fprintf(stderr, "nabla plot: %s:%ld: missing key \"%s\"\n", path, lineno,
                    metric_keys[c]);
            rc = -1;
        } else if (!cJSON_IsNumber(v)) {
            fprintf(stderr, "nabla plot: %s:%ld: \"%s\" is not a number\n", path, lineno,
                    metric_keys[c]);
            rc = -1;
        } else if (!isfinite(v->valuedouble)) {
            fprintf(stderr, "nabla plot: %s:%ld: \"%s\" is not finite\n", path, lineno,
                    metric_keys[c]);
            rc = -1;
        } else {
            row[c] = v->valuedouble;
        }
    }
    cJSON_Delete(obj);
    return rc;
}

/* Reads the next line of f (its '\n' included) into buf[0..cap), which holds at most
 * NB_PLOT_MAX_LINE bytes. Returns the length, 0 at the end of the file, -1 for a line longer
 * than the buffer (the rest of it is not read). */
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

/* Reads every non-blank line of path into m (zeroed by the caller). 0 ok, -1 after a message.
 * Bounded: the file must be a regular file of at most NB_PLOT_MAX_FILE bytes (a FIFO or device
 * is refused at open, without blocking) and no line may exceed NB_PLOT_MAX_LINE bytes. */
static int read_metrics(const char *path, metrics *m)
{
    size_t size = 0;
    FILE *f = nb_open_regular(path, "nabla plot", &size);
    if (!f) {
        fprintf(stderr, "%s\n", nb_last_error());
        return -1;
    }
    char have[32], lim[32];
    if (size > NB_PLOT_MAX_FILE) {
        fprintf(stderr, "nabla plot: '%s': file is %s, limit %s for a metrics file\n", path,
                nb_bytes_str(have, sizeof have, size),
                nb_bytes_str(lim, sizeof lim, NB_PLOT_MAX_FILE));
        fclose(f); /* read-only: nothing to lose */
        return -1;
    }
    char *line = malloc(NB_PLOT_MAX_LINE);
    if (!line) {
        fprintf(stderr, "nabla plot: out of memory for a %d-byte line buffer\n", NB_PLOT_MAX_LINE);
        fclose(f);
        return -1;
    }
    long len;
    long lineno = 0;
    size_t total = 0;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (len = read_line(f, line, NB_PLOT_MAX_LINE)) != 0) {
        lineno++;
        if (len < 0) {
            fprintf(stderr,
                    "nabla plot: %s:%ld: line %ld longer than %d bytes (a metrics line is one "
                    "JSON object of a few hundred bytes)\n",
                    path, lineno, lineno, NB_PLOT_MAX_LINE);
            rc = -1;
            break;
        }
        total += (size_t)len;
        if (total > NB_PLOT_MAX_FILE) { /* it grew while we read it */
            fprintf(stderr, "nabla plot: '%s': file grew past the limit of %s while being read\n",
                    path, nb_bytes_str(lim, sizeof lim, NB_PLOT_MAX_FILE));
            rc = -1;
            break;
        }
        if (is_blank(line, line + len))
            continue;
        double row[M_NCOLS];
        if (parse_line(path, lineno, line, (size_t)len, row) != 0) {
            rc = -1;
        } else if (m->n >= NB_PLOT_MAX_EPOCHS) {
            fprintf(stderr, "nabla plot: %s:%ld: more than %d epochs\n", path, lineno,
                    NB_PLOT_MAX_EPOCHS);
            rc = -1;
        } else if (metrics_push(m, row) != 0) {
            fprintf(stderr, "nabla plot: %s:%ld: out of memory\n", path, lineno);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "nabla plot: error reading %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && m->n == 0) {
        fprintf(stderr, "nabla plot: %s: no epochs (no JSON lines in the file)\n", path);
        rc = -1;
    }
    free(line);
    fclose(f); /* read-only: nothing to lose */
    return rc;
}

/* ---- drawing ---- */

/* cmap0 entries, set before plinit (0 is the page background). */
enum {
    COL_BG = NB_PLOT_COL_BG,
    COL_FG = NB_PLOT_COL_FG,
    COL_TRAIN = NB_PLOT_COL_BLUE,
    COL_TEST = NB_PLOT_COL_ORANGE,
    COL_GRID = NB_PLOT_COL_GRID,
    COL_N = 16
};

/* [lo, hi] of a and b together, widened by frac of the span on each side; a flat range (one
 * epoch, or a constant curve) is widened to at least +-min_half so PLplot gets a real window.
 * Returns -1 when the window is not finite (values near DBL_MAX). */
int nb_cli_plot_range(const double *a, const double *b, int n, double frac, double min_half,
                      double *lo, double *hi)
{
    double l = a[0], h = a[0];
    for (int i = 0; i < n; i++) {
        l = fmin(l, fmin(a[i], b ? b[i] : a[i]));
        h = fmax(h, fmax(a[i], b ? b[i] : a[i]));
    }
    double span = h - l;
    if (!(span > 1e-12 * fmax(1.0, fmax(fabs(l), fabs(h))))) {
        double half = fmax(0.1 * fabs(l), min_half);
        l -= half;
        h += half;
    } else {
        l -= frac * span;
        h += frac * span;
    }
    *lo = l;
    *hi = h;
    return isfinite(l) && isfinite(h) && h > l ? 0 : -1;
}

/* One panel: grid, frame, labels, the train and test curves and their legend. x, ytr, yte
 * have n points; vp = {xmin, xmax, ymin, ymax} of the viewport in page fractions, win the
 * same in data coordinates. */
static void draw_panel(const double vp[4], const double win[4], const double *x, const double *ytr,
                       const double *yte, int n, const char *ylabel, const char *title,
                       PLINT legend_pos)
{
    double x0 = win[0], x1 = win[1], y0 = win[2], y1 = win[3];
    /* whole epochs as ticks while there are few of them, automatic ticks after that */
    PLFLT xtick = x1 - x0 <= 12.0 ? 1.0 : 0.0;
    PLINT nxsub = xtick > 0 ? 1 : 0;

    plvpor(vp[0], vp[1], vp[2], vp[3]);
    plwind(x0, x1, y0, y1);
    plcol0(COL_GRID);
    plwidth(1.0);
    plbox("g", xtick, nxsub, "g", 0.0, 0);
    plcol0(COL_FG);
    plbox("bcnst", xtick, nxsub, "bcnstv", 0.0, 0);
    pllab("epoch", ylabel, title);

    int markers = n <= 40; /* dots on every epoch while they stay apart */
    const double *ys[2] = {ytr, yte};
    const PLINT colors[2] = {COL_TRAIN, COL_TEST}, styles[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        plcol0(colors[k]);
        pllsty(styles[k]);
        plwidth(2.0);
        if (n > 1)
            plline(n, x, ys[k]);
        if (markers || n == 1) {
            plschr(0.0, 0.55); /* the dot is a text glyph: its size follows the text height */
            plstring(n, x, ys[k], "#[0x25cf]");
            plschr(0.0, 0.85);
        }
    }
    pllsty(1);
    plwidth(1.0);

    PLINT opt = PL_LEGEND_LINE | ((markers || n == 1) ? PL_LEGEND_SYMBOL : 0);
    PLINT opt_array[2] = {opt, opt};
    const char *text[2] = {"train", "test"};
    PLINT text_colors[2] = {COL_FG, COL_FG};
    PLINT line_colors[2] = {COL_TRAIN, COL_TEST};
    PLINT line_styles[2] = {1, 2};
    PLFLT line_widths[2] = {2.0, 2.0};
    PLINT symbol_colors[2] = {COL_TRAIN, COL_TEST};
    PLFLT symbol_scales[2] = {0.65, 0.65};
    PLINT symbol_numbers[2] = {2, 2};
    const char *symbols[2] = {"#[0x25cf]", "#[0x25cf]"};
    PLFLT legend_w, legend_h;
    pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             legend_pos | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.03, 0.04, 0.08, COL_BG,
             COL_FG, 1, 0, 0, 2, opt_array, 1.0, 0.9, 2.0, 0.0, text_colors, text, NULL, NULL, NULL,
             NULL, line_colors, line_styles, line_widths, symbol_colors, symbol_scales,
             symbol_numbers, symbols);
}

/* Copies s into out (cap bytes) for PLplot text: '#' is PLplot's escape character, so it is
 * doubled; bytes outside printable ASCII become '?' so a file name cannot upset the fonts. */
void nb_cli_plot_text(char *out, size_t cap, const char *s)
{
    size_t j = 0;
    for (; *s && j + 3 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '#')
            out[j++] = '#';
        out[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[j] = '\0';
}

/* ---- writing the PNG ---- */

static const char *plot_tmp_path;     /* the temporary file while PLplot is initialised */
static const char *plot_cmd = "plot"; /* the subcommand, for messages */

/* PLplot calls this from plexit() before it calls plend() and exit(): drop the half-written
 * temporary file so a fatal PLplot error never leaves a PNG behind. */
static int on_plplot_exit(const char *msg)
{
    fprintf(stderr, "nabla %s: PLplot failed: %s\n", plot_cmd, msg);
    if (plot_tmp_path)
        remove(plot_tmp_path);
    return 1;
}

static int have_pngcairo(void)
{
    enum { MAXDEV = 128 };
    const char *menus[MAXDEV], *names[MAXDEV];
    const char **pm = menus, **pn = names;
    int ndev = MAXDEV, found = 0;
    plgDevs(&pm, &pn, &ndev);
    for (int i = 0; i < ndev; i++)
        if (names[i] && !strcmp(names[i], "pngcairo"))
            found = 1;
    return found;
}

/* 1 if path holds a whole PNG: the 8-byte signature at the start, the IEND chunk at the end. */
static int png_complete(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    unsigned char head[8], tail[12];
    FILE *f = nb_open_regular(path, "nabla plot", NULL);
    if (!f)
        return 0;
    int ok = fread(head, 1, 8, f) == 8 && !memcmp(head, sig, 8) && fseek(f, -12, SEEK_END) == 0 &&
             fread(tail, 1, 12, f) == 12 && !memcmp(tail, iend, 12);
    fclose(f); /* read-only */
    return ok;
}

/* What the metrics page's draw callback needs. */
typedef struct metrics_page {
    const metrics *m;
    const double *acc;
    double win_loss[4], win_acc[4];
    const char *title;
} metrics_page;

static int draw_metrics(void *vpage);

/* Draws m into png_path. 0 ok, 1 after a message. */
static int render(const metrics *m, const char *metrics_path, const char *png_path)
{
    int n = m->n;
    double *acc = malloc((size_t)n * 2 * sizeof *acc); /* train, test accuracy in percent */
    if (!acc) {
        fprintf(stderr, "nabla plot: out of memory for %d epochs\n", n);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        acc[i] = 100.0 * m->col[M_TRAIN_ACC][i];
        acc[n + i] = 100.0 * m->col[M_TEST_ACC][i];
    }
    const char *base = strrchr(metrics_path, '/');
    char name[256], title[400];
    nb_cli_plot_text(name, sizeof name, base ? base + 1 : metrics_path);
    /* data windows: epochs padded by 3%, values by 6% (flat ranges by 0.05 loss, 0.5 points) */
    double win_loss[4], win_acc[4];
    if (nb_cli_plot_range(m->col[M_EPOCH], NULL, n, 0.03, 1.0, &win_loss[0], &win_loss[1]) != 0 ||
        nb_cli_plot_range(m->col[M_TRAIN_LOSS], m->col[M_TEST_LOSS], n, 0.06, 0.05, &win_loss[2],
                          &win_loss[3]) != 0 ||
        nb_cli_plot_range(acc, acc + n, n, 0.06, 0.5, &win_acc[2], &win_acc[3]) != 0) {
        fprintf(stderr, "nabla plot: %s: values too large to plot\n", metrics_path);
        free(acc);
        return 1;
    }
    win_acc[0] = win_loss[0];
    win_acc[1] = win_loss[1];
    double best = acc[n];
    for (int i = 0; i < n; i++)
        best = fmax(best, acc[n + i]);
    snprintf(title, sizeof title,
             "%s: %d epoch%s, final test loss %.4g, test accuracy %.2f%% (best %.2f%%)", name, n,
             n == 1 ? "" : "s", m->col[M_TEST_LOSS][n - 1], acc[2 * n - 1], best);

    metrics_page page = {m, acc, {0}, {0}, title};
    memcpy(page.win_loss, win_loss, sizeof win_loss);
    memcpy(page.win_acc, win_acc, sizeof win_acc);
    int rc = nb_cli_png_write("plot", png_path, 1000, 450, draw_metrics, &page);
    free(acc);
    return rc;
}

static int draw_metrics(void *vpage)
{
    const metrics_page *pg = vpage;
    const metrics *m = pg->m;
    const double *acc = pg->acc;
    int n = m->n;
    static const double vp_loss[4] = {0.07, 0.48, 0.12, 0.84};
    static const double vp_acc[4] = {0.57, 0.98, 0.12, 0.84};
    draw_panel(vp_loss, pg->win_loss, m->col[M_EPOCH], m->col[M_TRAIN_LOSS], m->col[M_TEST_LOSS], n,
               "loss", "Loss", PL_POSITION_TOP | PL_POSITION_RIGHT);
    draw_panel(vp_acc, pg->win_acc, m->col[M_EPOCH], acc, acc + n, n, "accuracy (%)", "Accuracy",
               PL_POSITION_BOTTOM | PL_POSITION_RIGHT);

    /* the overall title, across the top of the page */
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(0.0, 1.0, 0.0, 1.0);
    plcol0(COL_FG);
    plschr(0.0, 1.0);
    plmtex("t", -1.6, 0.5, 0.5, pg->title);

    return 0;
}

int nb_cli_plot_metrics(const char *metrics_path, const char *png_path)
{
    metrics m;
    memset(&m, 0, sizeof m);
    if (read_metrics(metrics_path, &m) != 0) {
        metrics_free(&m);
        return 1;
    }
    int rc = render(&m, metrics_path, png_path);
    metrics_free(&m);
    return rc;
}

/* Colours, set before plinit so the page background is white: black text, then the series
 * colours of plot.h, light grey grid. */
static void set_palette(void)
{
    plscmap0n(COL_N);
    plscol0(NB_PLOT_COL_BG, 255, 255, 255);
    plscol0(NB_PLOT_COL_FG, 0, 0, 0);
    plscol0(NB_PLOT_COL_BLUE, 31, 119, 180);
    plscol0(NB_PLOT_COL_ORANGE, 230, 110, 0);
    plscol0(NB_PLOT_COL_GRID, 225, 225, 225);
    plscol0(NB_PLOT_COL_GREEN, 44, 160, 44);
    plscol0(NB_PLOT_COL_RED, 214, 39, 40);
    plscol0(NB_PLOT_COL_PURPLE, 148, 103, 189);
    plscol0(NB_PLOT_COL_GREY, 127, 127, 127);
}

/* A whole PNG in memory, from the temporary file to the target */
typedef struct png_bytes {
    unsigned char *data;
    size_t n;
} png_bytes;

static bool fill_png(FILE *f, void *ctx)
{
    const png_bytes *p = ctx;
    return fwrite(p->data, 1, p->n, f) == p->n;
}

/* Reads the rendered PNG (a page of 1000x450 is well under the 64 MB cap). 0 ok, -1 after a
 * message. */
static int read_png(const char *cmd, const char *path, png_bytes *p)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (!f || n < 0 || n > (64L << 20) || fseek(f, 0, SEEK_SET) != 0 ||
        !(p->data = malloc(n > 0 ? (size_t)n : 1)) ||
        fread(p->data, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "nabla %s: cannot read back the rendered PNG %s (%ld bytes): %s\n", cmd,
                path, n, errno ? strerror(errno) : "too large");
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f); /* read-only */
    p->n = (size_t)n;
    return 0;
}

int nb_cli_png_write(const char *cmd, const char *png_path, int width, int height,
                     int (*draw)(void *ctx), void *ctx)
{
    /* PLplot writes by file name: it draws into a private temporary file (mkstemp, in
     * $TMPDIR), which is checked and then handed to the one writer, so the PNG reaches any
     * kind of target (a file replaced atomically, a symlink's target, a device, "-"). */
    const char *tdir = getenv("TMPDIR");
    if (!tdir || !*tdir)
        tdir = "/tmp";
    size_t cap = strlen(tdir) + 64;
    char *tmp = malloc(cap);
    if (!tmp) {
        fprintf(stderr, "nabla %s: out of memory\n", cmd);
        return 1;
    }
    snprintf(tmp, cap, "%s/.nabla-plot.tmp.%ld.XXXXXX", tdir, (long)getpid());

    int rc = 1, fd = -1;
    png_bytes png = {NULL, 0};
    plot_cmd = cmd;
    /* Refuse before plinit what would make PLplot prompt on stdin (no such device) or retry
     * and exit() (an output file it cannot open). */
    plsexit(on_plplot_exit);
    int have_device = have_pngcairo();
    plend(); /* plgDevs loaded PLplot's driver table: release it */
    if (!have_device) {
        fprintf(stderr,
                "nabla %s: cannot write %s: PLplot has no pngcairo device (install "
                "plplot-driver-cairo)\n",
                cmd, png_path);
    } else if ((fd = mkstemp(tmp)) < 0) {
        fprintf(stderr, "nabla %s: cannot write %s: cannot create a temporary file in %s: %s\n",
                cmd, png_path, tdir, strerror(errno));
    } else if (close(fd) != 0) {
        fprintf(stderr, "nabla %s: cannot write %s (as %s): %s\n", cmd, png_path, tmp,
                strerror(errno));
        remove(tmp);
    } else {
        plot_tmp_path = tmp;
        plsdev("pngcairo");
        plsfnam(tmp);
        plspage(0.0, 0.0, width, height, 0, 0);
        set_palette();
        plinit();
        pladv(0);
        plschr(0.0, 0.85);
        int drawn = draw(ctx);
        plend(); /* writes the page to tmp and resets PLplot's global state */
        plot_tmp_path = NULL;
        if (drawn != 0) {
            remove(tmp);
        } else if (!png_complete(tmp)) {
            fprintf(stderr, "nabla %s: PLplot did not write a complete PNG to %s (disk full?)\n",
                    cmd, tmp);
            remove(tmp);
        } else if (read_png(cmd, tmp, &png) != 0) {
            remove(tmp);
        } else {
            remove(tmp);
            char who[64];
            snprintf(who, sizeof who, "nabla %s", cmd);
            if (nb_write_atomically(png_path, who, fill_png, &png) != NB_OK)
                fprintf(stderr, "%s\n", nb_last_error());
            else
                rc = 0;
        }
    }
    free(png.data);
    plsexit(NULL);
    plot_cmd = "plot";
    free(tmp);
    return rc;
}

#endif /* NABLA_HAVE_PLPLOT */
