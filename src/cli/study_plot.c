/* study_plot.c - the PNGs of `nabla study`, drawn with PLplot through nb_cli_png_write (plot.c),
 * which owns the checks, the temporary file and the rename. Without PLplot every function says
 * so (through nb_cli_png_write's stub) and returns 1. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot.h"
#include "study.h"

#ifndef NABLA_HAVE_PLPLOT

static int no_draw(void *ctx)
{
    (void)ctx;
    return 1;
}
int nb_study_plot_precision(const char *png, const study_precision *d)
{
    (void)d;
    return nb_cli_png_write("study", png, 0, 0, no_draw, NULL);
}
int nb_study_plot_pitfalls(const char *png, const study_pitfall *p, int n)
{
    (void)p, (void)n;
    return nb_cli_png_write("study", png, 0, 0, no_draw, NULL);
}
int nb_study_plot_gradient(const char *png, const study_gradient *d)
{
    (void)d;
    return nb_cli_png_write("study", png, 0, 0, no_draw, NULL);
}

#else

#include <plplot.h>

#define LOG_FLOOR -18.0 /* errors of 0 (or below 1e-18) are drawn here */
#define LOG_BROKEN 1.5  /* not finite: drawn at the top, in the "not finite" band */

static double log_err(double e)
{
    if (isnan(e))
        return NAN; /* not representable: a gap */
    if (isinf(e))
        return LOG_BROKEN;
    return e > 0 ? fmax(log10(e), LOG_FLOOR) : LOG_FLOOR;
}

static void frame(const double vp[4], const double win[4], const char *xl, const char *yl,
                  const char *title, const char *xopt, const char *yopt)
{
    plvpor(vp[0], vp[1], vp[2], vp[3]);
    plwind(win[0], win[1], win[2], win[3]);
    plcol0(NB_PLOT_COL_GRID);
    plwidth(1.0);
    plbox("g", 0.0, 0, "g", 0.0, 0);
    plcol0(NB_PLOT_COL_FG);
    plbox(xopt, 0.0, 0, yopt, 0.0, 0);
    pllab(xl, yl, title);
}

/* a polyline through the finite points of y, broken at NaN */
static void broken_line(const double *x, const double *y, int n)
{
    int start = 0;
    while (start < n) {
        while (start < n && isnan(y[start]))
            start++;
        int end = start;
        while (end < n && !isnan(y[end]))
            end++;
        if (end - start >= 2)
            plline(end - start, x + start, y + start);
        else if (end - start == 1)
            plstring(1, x + start, y + start, "#[0x25cf]");
        start = end;
    }
}

static const PLINT method_col[SM_NMETH] = {NB_PLOT_COL_RED, NB_PLOT_COL_ORANGE, NB_PLOT_COL_GREEN};

static int draw_precision(void *ctx)
{
    const study_precision *d = ctx;
    static const double vps[ST_NPREC][4] = {{0.10, 0.48, 0.54, 0.84},
                                            {0.59, 0.97, 0.54, 0.84},
                                            {0.10, 0.48, 0.09, 0.39},
                                            {0.59, 0.97, 0.09, 0.39}};
    const double win[4] = {0.0, 38.0, LOG_FLOOR - 0.5, LOG_BROKEN + 2.2};
    double x[ST_NSCALES], y[ST_NSCALES];
    for (int k = 0; k < ST_NSCALES; k++)
        x[k] = log10(d->scale[k]);
    for (int p = 0; p < ST_NPREC; p++) {
        char title[96];
        snprintf(title, sizeof title, "%s logits", study_prec_names[p]);
        frame(vps[p], win, "log#d10#u(logit scale)", "log#d10#u(error)", title, "bcnst", "bcnstv");
        /* the "not finite" band */
        plcol0(NB_PLOT_COL_GREY);
        plptex(1.0, LOG_BROKEN + 0.8, 1.0, 0.0, 0.0, "not finite");
        for (int k = 0; k < ST_NSCALES; k++)
            if (isnan(d->truth[p][k])) {
                char note[96];
                snprintf(note, sizeof note, "%s cannot hold these logits", study_prec_names[p]);
                plptex((k + 38.0) / 2.0, -8.0, 1.0, 0.0, 0.5, note);
                break;
            }
        pllsty(2);
        double bx[2] = {0.0, 38.0}, by[2] = {1.0, 1.0};
        plline(2, bx, by);
        pllsty(1);
        for (int m = 0; m < SM_NMETH; m++) {
            plcol0(method_col[m]);
            for (int kind = 0; kind < 2; kind++) {
                for (int k = 0; k < ST_NSCALES; k++)
                    y[k] = log_err(kind == 0 ? d->loss_err[p][m][k] : d->grad_err[p][m][k]);
                pllsty(kind == 0 ? 1 : 3);
                plwidth(kind == 0 ? 2.0 : 1.5);
                broken_line(x, y, ST_NSCALES);
            }
        }
        pllsty(1);
        plwidth(1.0);
    }
    /* legend, once, in the first panel */
    plvpor(vps[0][0], vps[0][1], vps[0][2], vps[0][3]);
    plwind(win[0], win[1], win[2], win[3]);
    PLINT opt[SM_NMETH], tc[SM_NMETH], lc[SM_NMETH], ls[SM_NMETH];
    PLFLT lw[SM_NMETH];
    const char *text[SM_NMETH];
    for (int m = 0; m < SM_NMETH; m++) {
        opt[m] = PL_LEGEND_LINE;
        tc[m] = NB_PLOT_COL_FG;
        lc[m] = method_col[m];
        ls[m] = 1;
        lw[m] = 2.0;
        text[m] = study_method_names[m];
    }
    PLFLT lwid, lhei;
    pllegend(&lwid, &lhei, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_RIGHT | PL_POSITION_BOTTOM | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT,
             0.02, 0.03, 0.08, NB_PLOT_COL_BG, NB_PLOT_COL_FG, 1, 0, 0, SM_NMETH, opt, 1.0, 0.8,
             2.0, 0.0, tc, text, NULL, NULL, NULL, NULL, lc, ls, lw, NULL, NULL, NULL, NULL);
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(0.0, 1.0, 0.0, 1.0);
    plcol0(NB_PLOT_COL_FG);
    plschr(0.0, 1.0);
    plmtex("t", -1.4, 0.5, 0.5, "Cross-entropy error against logit scale (truth: long double)");
    plschr(0.0, 0.8);
    plmtex("t", -3.2, 0.5, 0.5,
           "solid: loss relative error; dotted: gradient max abs error; bottom line: exact");
    return 0;
}

int nb_study_plot_precision(const char *png, const study_precision *d)
{
    return nb_cli_png_write("study", png, 1100, 850, draw_precision, (void *)d);
}

/* a bar from 0 to h centred at x, width w */
static void bar(double x, double w, double base, double h, PLINT col)
{
    double bx[4] = {x - w / 2, x + w / 2, x + w / 2, x - w / 2};
    double by[4] = {base, base, h, h};
    plcol0(col);
    plfill(4, bx, by);
    plcol0(NB_PLOT_COL_FG);
    plwidth(0.5);
    double ox[5] = {bx[0], bx[1], bx[2], bx[3], bx[0]}, oy[5] = {by[0], by[1], by[2], by[3], by[0]};
    plline(5, ox, oy);
    plwidth(1.0);
}

typedef struct pit_ctx {
    const study_pitfall *p;
    int n;
} pit_ctx;

static int draw_pitfalls(void *vctx)
{
    const pit_ctx *c = vctx;
    const double vp[4] = {0.08, 0.97, 0.22, 0.88};
    const double win[4] = {0.0, (double)c->n, LOG_FLOOR, LOG_BROKEN + 4.5};
    frame(vp, win, "", "log#d10#u(relative error against the truth)", "", "bc", "bcnstv");
    for (int i = 0; i < c->n; i++) {
        const study_pitfall *p = &c->p[i];
        double eb =
            isfinite(p->bug_value) ? fabs(p->bug_value - p->truth) / fabs(p->truth) : INFINITY;
        double en = fabs(p->nabla_value - p->truth) / fabs(p->truth);
        double hb = log_err(eb), hn = log_err(en);
        bar(i + 0.3, 0.35, LOG_FLOOR, hb, NB_PLOT_COL_RED);
        bar(i + 0.7, 0.35, LOG_FLOOR, hn, NB_PLOT_COL_GREEN);
        plcol0(NB_PLOT_COL_FG);
        char v[48];
        if (isfinite(eb))
            snprintf(v, sizeof v, "%.0e", eb);
        else
            snprintf(v, sizeof v, "%s", isnan(p->bug_value) ? "nan" : "inf");
        plschr(0.0, 0.7);
        plptex(i + 0.3, hb + 0.4, 1.0, 0.0, 0.5, v);
        snprintf(v, sizeof v, "%.0e", en);
        plptex(i + 0.7, hn + 0.4, 1.0, 0.0, 0.5, v);
        plschr(0.0, 0.85);
        char name[64];
        nb_cli_plot_text(name, sizeof name, p->name);
        plmtex("b", 1.5, (i + 0.5) / c->n, 0.5, name);
    }
    PLINT opt[2] = {PL_LEGEND_COLOR_BOX, PL_LEGEND_COLOR_BOX};
    PLINT tc[2] = {NB_PLOT_COL_FG, NB_PLOT_COL_FG};
    PLINT bc[2] = {NB_PLOT_COL_RED, NB_PLOT_COL_GREEN}, bp[2] = {0, 0};
    PLFLT bs[2] = {0.8, 0.8}, bw[2] = {1.0, 1.0};
    const char *text[2] = {"the bug", "nabla"};
    PLFLT lwid, lhei;
    pllegend(&lwid, &lhei, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_RIGHT | PL_POSITION_TOP | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.02,
             0.03, 0.06, NB_PLOT_COL_BG, NB_PLOT_COL_FG, 1, 1, 2, 2, opt, 1.0, 0.8, 2.0, 0.0, tc,
             text, bc, bp, bs, bw, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(0.0, 1.0, 0.0, 1.0);
    plschr(0.0, 1.0);
    plmtex("t", -1.5, 0.5, 0.5,
           "Cross-entropy pitfalls: error of the buggy computation and of nabla on the same input");
    return 0;
}

int nb_study_plot_pitfalls(const char *png, const study_pitfall *p, int n)
{
    pit_ctx c = {p, n};
    return nb_cli_png_write("study", png, 1000, 500, draw_pitfalls, &c);
}

static int draw_gradient(void *ctx)
{
    const study_gradient *d = ctx;
    const char *names[3] = {"p = softmax(z)", "target", "dL/dz"};
    const PLINT cols[3] = {NB_PLOT_COL_BLUE, NB_PLOT_COL_ORANGE, NB_PLOT_COL_GREEN};
    for (int row = 0; row < 2; row++)
        for (int k = 0; k < 3; k++) {
            const double *v = k == 0 ? d->p : k == 1 ? d->target[row] : d->dz[row];
            double lo = 0.0, hi = 0.0;
            for (int j = 0; j < d->V; j++)
                lo = fmin(lo, v[j]), hi = fmax(hi, v[j]);
            if (nb_cli_plot_range(v, NULL, d->V, 0.08, 0.05, &lo, &hi) != 0)
                return 1;
            lo = fmin(lo, 0.0);
            hi = fmax(hi, 0.0);
            double vp[4] = {0.05 + k * 0.325, 0.05 + k * 0.325 + 0.27, row ? 0.09 : 0.55,
                            row ? 0.37 : 0.83};
            double win[4] = {-0.5, d->V - 0.5, lo, hi};
            char title[96];
            snprintf(title, sizeof title, "%s%s", names[k], row ? " (a = 0.1)" : " (a = 0)");
            frame(vp, win, "class", "", title, "bcnst", "bcnstv");
            for (int j = 0; j < d->V; j++)
                bar(j, 0.7, 0.0, v[j], j == d->y ? NB_PLOT_COL_RED : cols[k]);
            double zx[2] = {-0.5, d->V - 0.5}, zy[2] = {0.0, 0.0};
            plcol0(NB_PLOT_COL_FG);
            plline(2, zx, zy);
        }
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(0.0, 1.0, 0.0, 1.0);
    plcol0(NB_PLOT_COL_FG);
    plschr(0.0, 1.0);
    char t[160];
    snprintf(t, sizeof t,
             "%d classes, target class %d (red): dL/dz = p - target, a = label smoothing", d->V,
             d->y);
    plmtex("t", -1.5, 0.5, 0.5, t);
    return 0;
}

int nb_study_plot_gradient(const char *png, const study_gradient *d)
{
    return nb_cli_png_write("study", png, 1200, 760, draw_gradient, (void *)d);
}

#endif
