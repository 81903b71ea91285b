/* plot.c - `nabla plot`: loss and accuracy curves from a `nabla train --metrics` file, drawn
 * with PLplot's C API into one PNG (two panels, ~1000x470, cairo's pngcairo device).
 *
 * The file (read by plot_metrics.c, its records described in plot_metrics.h) gives per epoch
 * the train loss and accuracy and, when the run had a validation set, the validation ones; a
 * finished run's end record gives the test loss and accuracy, measured once. Each panel draws
 * train and val as curves and the test figure as one point at the last epoch, labelled
 * "test (end)". Files from before the validation split have a per-epoch test curve instead,
 * labelled "test". A file with an error gives a message naming FILE:LINE and no PNG. The PNG
 * machinery (temporary file, checks, the one writer) is plot_png.c's. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tensor/fileio.h"
#include "tensor/fileread.h"
#include "plot.h"
#include "plot_metrics.h"

static int plot_file(const char *metrics_path, const char *png_path, char *summary, size_t cap);

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla plot METRICS.jsonl -o FILE.png\n"
               "\n"
               "Loss and accuracy curves per epoch from a `nabla train --metrics` file (JSON\n"
               "lines): train and validation curves, and the test loss and accuracy of the run's\n"
               "end record as one point at the last epoch, \"test (end)\". Files written before\n"
               "the validation split (per-epoch test_loss, test_acc) plot a \"test\" curve.\n"
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
            nb_cli_unknown_option("plot", k, usage);
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
    char summary[128] = "";
    int rc = plot_file(metrics, out, summary, sizeof summary);
    if (rc == 0) /* with -o -, standard output carries the PNG */
        fprintf(strcmp(out, "-") ? stdout : stderr, "plotted %s (%s)\n", out, summary);
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

static int plot_file(const char *metrics_path, const char *png_path, char *summary, size_t cap)
{
    (void)metrics_path, (void)summary, (void)cap;
    fprintf(stderr,
            "nabla plot: cannot write %s: this build has no PLplot support (install "
            "libplplot-dev)\n",
            png_path);
    return 1;
}

#else /* NABLA_HAVE_PLPLOT */

#include <math.h>

#include <plplot.h>

/* cmap0 entries (plot.h's palette): train blue, the held-out curve orange, the end-of-run test
 * point green. */
enum {
    COL_BG = NB_PLOT_COL_BG,
    COL_FG = NB_PLOT_COL_FG,
    COL_TRAIN = NB_PLOT_COL_BLUE,
    COL_HELD = NB_PLOT_COL_ORANGE,
    COL_TEST = NB_PLOT_COL_GREEN,
    COL_GRID = NB_PLOT_COL_GRID
};

#define DOT "#[0x25cf]"     /* a filled circle on every epoch */
#define DIAMOND "#[0x25c6]" /* the end-of-run test point */

/* One panel: the train curve and the held-out curve (y[1] NULL when the file has none) over n
 * epochs x, and the end-of-run test figure as one point (px, py) when point is set. win =
 * {xmin, xmax, ymin, ymax} in data coordinates. */
typedef struct panel {
    const double *x, *y[2];
    int n;
    const char *held; /* the held-out curve's label, "val" or "test" */
    bool point;
    double px, py;
    double win[4];
} panel;

/* The legend of p: train, the held-out curve, the test point, in the panel's corner pos. */
static void draw_legend(const panel *p, bool markers, PLINT pos)
{
    PLINT opt[3], text_colors[3], line_colors[3], line_styles[3], symbol_colors[3];
    PLINT symbol_numbers[3];
    PLFLT line_widths[3], symbol_scales[3];
    const char *text[3], *symbols[3];
    PLINT line_opt = PL_LEGEND_LINE | (markers ? PL_LEGEND_SYMBOL : 0);
    int k = 0;
    for (int c = 0; c < 3; c++) {
        if ((c == 1 && !p->y[1]) || (c == 2 && !p->point))
            continue;
        opt[k] = c < 2 ? line_opt : PL_LEGEND_SYMBOL;
        text[k] = c == 0 ? "train" : c == 1 ? p->held : "test (end)";
        text_colors[k] = COL_FG;
        line_colors[k] = symbol_colors[k] = c == 0 ? COL_TRAIN : c == 1 ? COL_HELD : COL_TEST;
        line_styles[k] = c == 1 ? 2 : 1;
        line_widths[k] = 2.0;
        symbol_scales[k] = c < 2 ? 0.65 : 1.0;
        symbol_numbers[k] = c < 2 ? 2 : 1;
        symbols[k] = c < 2 ? DOT : DIAMOND;
        k++;
    }
    PLFLT legend_w, legend_h;
    pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             pos | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.03, 0.04, 0.08, COL_BG, COL_FG, 1,
             0, 0, k, opt, 1.0, 0.9, 2.0, 0.0, text_colors, text, NULL, NULL, NULL, NULL,
             line_colors, line_styles, line_widths, symbol_colors, symbol_scales, symbol_numbers,
             symbols);
}

/* One panel at vp = {xmin, xmax, ymin, ymax} (page fractions): grid, frame, labels, curves,
 * the test point and the legend. */
static void draw_panel(const double vp[4], const panel *p, const char *ylabel, const char *title,
                       PLINT legend_pos)
{
    double x0 = p->win[0], x1 = p->win[1];
    /* whole epochs as ticks while there are few of them, automatic ticks after that */
    PLFLT xtick = x1 - x0 <= 12.0 ? 1.0 : 0.0;
    PLINT nxsub = xtick > 0 ? 1 : 0;

    plvpor(vp[0], vp[1], vp[2], vp[3]);
    plwind(x0, x1, p->win[2], p->win[3]);
    plcol0(COL_GRID);
    plwidth(1.0);
    plbox("g", xtick, nxsub, "g", 0.0, 0);
    plcol0(COL_FG);
    plbox("bcnst", xtick, nxsub, "bcnstv", 0.0, 0);
    pllab("epoch", ylabel, title);

    bool markers = p->n <= 40; /* dots on every epoch while they stay apart */
    for (int k = 0; k < 2; k++) {
        if (!p->y[k])
            continue;
        plcol0(k ? COL_HELD : COL_TRAIN);
        pllsty(k ? 2 : 1);
        plwidth(2.0);
        if (p->n > 1)
            plline(p->n, p->x, p->y[k]);
        if (markers || p->n == 1) {
            plschr(0.0, 0.55); /* the dot is a text glyph: its size follows the text height */
            plstring(p->n, p->x, p->y[k], DOT);
            plschr(0.0, 0.85);
        }
    }
    if (p->point) {
        plcol0(COL_TEST);
        plschr(0.0, 1.1);
        plstring(1, &p->px, &p->py, DIAMOND);
        plschr(0.0, 0.85);
    }
    pllsty(1);
    plwidth(1.0);
    draw_legend(p, markers || p->n == 1, legend_pos);
}

/* What the page's draw callback needs: two panels and two lines of title. */
typedef struct metrics_page {
    panel loss, acc;
    char title[2][640]; /* the file name (255), data set and layers (2 x 79), figures */
} metrics_page;

static int draw_metrics(void *vpage)
{
    const metrics_page *pg = vpage;
    static const double vp_loss[4] = {0.07, 0.48, 0.12, 0.80};
    static const double vp_acc[4] = {0.57, 0.98, 0.12, 0.80};
    draw_panel(vp_loss, &pg->loss, "loss", "Loss", PL_POSITION_TOP | PL_POSITION_RIGHT);
    draw_panel(vp_acc, &pg->acc, "accuracy (%)", "Accuracy",
               PL_POSITION_BOTTOM | PL_POSITION_RIGHT);

    /* the overall title, two lines across the top of the page */
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(0.0, 1.0, 0.0, 1.0);
    plcol0(COL_FG);
    plschr(0.0, 1.0);
    plmtex("t", -1.5, 0.5, 0.5, pg->title[0]);
    plschr(0.0, 0.85);
    plmtex("t", -3.4, 0.5, 0.5, pg->title[1]);
    return 0;
}

/* The data window of a panel: epochs padded by 3%, the values of v[0..nv) by 6% (a flat
 * range by min_half). -1 when a value is too large to plot. */
static int panel_window(panel *p, const double *v, int nv, double min_half)
{
    if (nb_cli_plot_range(p->x, NULL, p->n, 0.03, 1.0, &p->win[0], &p->win[1]) != 0)
        return -1;
    return nb_cli_plot_range(v, NULL, nv, 0.06, min_half, &p->win[2], &p->win[3]);
}

/* The two title lines: the file, data set and epochs; then the final figures. */
static void page_titles(metrics_page *pg, const nb_plot_metrics *m, const char *metrics_path,
                        const double *acc)
{
    int n = m->n;
    const char *base = strrchr(metrics_path, '/'), *held = nb_plot_metrics_held_name(m);
    char name[256], data[NB_PLOT_MAX_NAME + 16] = "", hidden[NB_PLOT_MAX_NAME + 16] = "";
    nb_cli_plot_text(name, sizeof name, base ? base + 1 : metrics_path);
    if (m->data[0]) {
        data[0] = ' ';
        nb_cli_plot_text(data + 1, sizeof data - 2, m->data);
        strcat(data, ",");
    }
    if (m->hidden[0]) {
        strcpy(hidden, ", hidden ");
        nb_cli_plot_text(hidden + 9, sizeof hidden - 9, m->hidden);
    }
    snprintf(pg->title[0], sizeof pg->title[0], "%s:%s %d epoch%s%s%s", name, data, n,
             n == 1 ? "" : "s", hidden,
             m->held == NB_HELD_VAL && !m->end_line ? " (no end record: run not finished)" : "");
    char *t = pg->title[1];
    size_t cap = sizeof pg->title[1];
    if (held) {
        int best = 0;
        for (int i = 1; i < n; i++)
            best = acc[n + i] > acc[n + best] ? i : best;
        snprintf(t, cap, "final %s loss %.4g, %s accuracy %.2f%% (best %.2f%% at epoch %g)", held,
                 m->col[NB_PM_HELD_LOSS][n - 1], held, acc[2 * n - 1], acc[n + best],
                 m->col[NB_PM_EPOCH][best]);
    } else {
        snprintf(t, cap, "final train loss %.4g, train accuracy %.2f%% (no validation set)",
                 m->col[NB_PM_TRAIN_LOSS][n - 1], acc[n - 1]);
    }
    if (m->end_test) {
        size_t used = strlen(t);
        snprintf(t + used, cap - used, "; test (end) loss %.4g, accuracy %.2f%%", m->test_loss,
                 100.0 * m->test_acc);
    }
}

/* Draws m into png_path. 0 ok, 1 after a message. */
static int render(const nb_plot_metrics *m, const char *metrics_path, const char *png_path)
{
    int n = m->n;
    bool held = m->held == NB_HELD_VAL || m->held == NB_HELD_TEST;
    /* acc: train and held-out accuracy in percent; vals: the values a window spans (the
     * curves', then the test point's) */
    double *acc = malloc((size_t)(4 * n + 1) * sizeof *acc), *vals = acc + 2 * n;
    if (!acc) {
        fprintf(stderr, "nabla plot: out of memory for %d epochs\n", n);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        acc[i] = 100.0 * m->col[NB_PM_TRAIN_ACC][i];
        acc[n + i] = held ? 100.0 * m->col[NB_PM_HELD_ACC][i] : acc[i];
    }
    metrics_page pg;
    memset(&pg, 0, sizeof pg);
    double last = m->col[NB_PM_EPOCH][n - 1];
    panel base = {m->col[NB_PM_EPOCH], {NULL, NULL}, n, nb_plot_metrics_held_name(m),
                  m->end_test,         last,         0, {0}};
    pg.loss = pg.acc = base;
    pg.loss.y[0] = m->col[NB_PM_TRAIN_LOSS];
    pg.loss.y[1] = held ? m->col[NB_PM_HELD_LOSS] : NULL;
    pg.loss.py = m->test_loss;
    pg.acc.y[0] = acc;
    pg.acc.y[1] = held ? acc + n : NULL;
    pg.acc.py = 100.0 * m->test_acc;

    int rc = 0;
    panel *panels[2] = {&pg.loss, &pg.acc};
    for (int k = 0; k < 2 && rc == 0; k++) {
        const panel *p = panels[k];
        int nv = 0;
        for (int c = 0; c < 2; c++)
            if (p->y[c])
                for (int i = 0; i < n; i++)
                    vals[nv++] = p->y[c][i];
        if (p->point)
            vals[nv++] = p->py;
        rc = panel_window(panels[k], vals, nv, k ? 0.5 : 0.05); /* flat: 0.05 loss, 0.5 points */
    }
    if (rc != 0) {
        fprintf(stderr, "nabla plot: %s: values too large to plot\n", metrics_path);
        free(acc);
        return 1;
    }
    page_titles(&pg, m, metrics_path, acc);
    rc = nb_cli_png_write("plot", png_path, 1000, 470, draw_metrics, &pg);
    free(acc);
    return rc;
}

/* Reads metrics_path and draws it into png_path; summary (cap bytes, may be NULL) gets what
 * was drawn. 0 ok, 1 after a message. */
static int plot_file(const char *metrics_path, const char *png_path, char *summary, size_t cap)
{
    nb_plot_metrics m;
    int rc = nb_plot_metrics_read(metrics_path, &m) != 0 ? 1 : render(&m, metrics_path, png_path);
    if (rc == 0 && summary) {
        const char *held = nb_plot_metrics_held_name(&m);
        snprintf(summary, cap, "%d epoch%s: train%s%s curves%s", m.n, m.n == 1 ? "" : "s",
                 held ? " and " : "", held ? held : "", m.end_test ? ", test (end) point" : "");
    }
    nb_plot_metrics_free(&m);
    return rc;
}

#endif /* NABLA_HAVE_PLPLOT */

int nb_cli_plot_metrics(const char *metrics_path, const char *png_path)
{
    return plot_file(metrics_path, png_path, NULL, 0);
}
