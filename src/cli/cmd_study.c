/* cmd_study.c - `nabla study`: measured, reproducible demonstrations of where cross-entropy
 * breaks and how the fused op avoids it. Each prints a table, and with --out DIR writes
 * DIR/NAME.tsv (every number) and DIR/NAME.png.
 *
 *   precision  loss and gradient error of naive softmax-then-log, stable log-softmax and
 *              nabla's fused op, in f16, bf16, f32 and f64, over logit scales 1 .. 1e38,
 *              against a long-double truth computed from the logits as stored;
 *   pitfalls   the classic bugs, each measured on a concrete input beside nabla's result;
 *   gradient   one row's p, target and dL/dz, without and with label smoothing.
 *
 * The measurements are in study_measure.c, the PNGs in study_plot.c. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tensor/fileio.h"
#include "cli.h"
#include "study.h"

static void fmt_err(char *buf, size_t n, double e)
{
    if (isnan(e))
        snprintf(buf, n, "n/a");
    else if (isinf(e))
        snprintf(buf, n, "NOT FINITE");
    else
        snprintf(buf, n, "%.1e", e);
}

/* first scale where the loss error exceeds 1e-2 or the result is not finite */
static const char *breaks_at(const study_precision *d, int p, int m, char *buf, size_t n)
{
    for (int k = 0; k < ST_NSCALES; k++) {
        double e = d->loss_err[p][m][k];
        if (isnan(e)) {
            snprintf(buf, n, "logits overflow %s at 1e%d", study_prec_names[p], k);
            return buf;
        }
        if (!(e <= 1e-2)) {
            snprintf(buf, n, "1e%d (%s)", k, isinf(e) ? "not finite" : "error > 1e-2");
            return buf;
        }
    }
    snprintf(buf, n, "never (up to 1e38)");
    return buf;
}

static void print_precision(const study_precision *d)
{
    static const int cols[] = {0, 1, 2, 3, 4, 5, 8, 16, 30, 38};
    int nc = (int)(sizeof cols / sizeof cols[0]);
    printf("precision sweep: one row of %d logits = scale * [", ST_SWEEP_V);
    for (int j = 0; j < ST_SWEEP_V; j++)
        printf("%s%g", j ? ", " : "", study_sweep_base[j]);
    printf("], target class %d\n", ST_SWEEP_Y);
    printf("truth: long double from the logits as stored in each format; naive/stable: every "
           "operation rounded to the format; fused: nabla's kernel (f16/bf16 read, f32 math)\n");
    for (int table = 0; table < 2; table++) {
        printf("\n%s\n", table == 0 ? "loss relative error |L - L*| / L*"
                                    : "gradient max abs error max_j |g_j - g*_j|");
        printf("%-5s %-7s", "dtype", "method");
        for (int c = 0; c < nc; c++) {
            char h[16];
            snprintf(h, sizeof h, "1e%d", cols[c]);
            printf(" %10s", h);
        }
        printf("%s\n", table == 0 ? "  breaks at" : "");
        for (int p = 0; p < ST_NPREC; p++)
            for (int m = 0; m < SM_NMETH; m++) {
                printf("%-5s %-7s", study_prec_names[p], study_method_names[m]);
                for (int c = 0; c < nc; c++) {
                    char b[24];
                    fmt_err(b, sizeof b,
                            table == 0 ? d->loss_err[p][m][cols[c]] : d->grad_err[p][m][cols[c]]);
                    printf(" %10s", b);
                }
                char br[64];
                if (table == 0)
                    printf("  %s", breaks_at(d, p, m, br, sizeof br));
                printf("\n");
            }
    }
}

static bool fill_precision_tsv(FILE *f, void *ctx)
{
    const study_precision *d = ctx;
    fprintf(f, "dtype\tmethod\tscale\tloss\ttruth\tloss_rel_err\tgrad_max_abs_err\n");
    for (int p = 0; p < ST_NPREC; p++)
        for (int m = 0; m < SM_NMETH; m++)
            for (int k = 0; k < ST_NSCALES; k++)
                fprintf(f, "%s\t%s\t1e%d\t%.17g\t%.17g\t%.6g\t%.6g\n", study_prec_names[p],
                        study_method_names[m], k, d->loss[p][m][k], d->truth[p][k],
                        d->loss_err[p][m][k], d->grad_err[p][m][k]);
    return !ferror(f);
}

static double rel_err(double v, double truth)
{
    return isfinite(v) ? fabs(v - truth) / fabs(truth) : INFINITY;
}

static void print_pitfalls(const study_pitfall *pf, int n)
{
    printf("pitfalls: each bug measured on a concrete input, beside nabla's result on the same "
           "input (truth: long double / closed form)\n\n");
    printf("%-19s %-50s %-50s %-36s %-46s %s\n", "pitfall", "the bug", "input",
           "symptom (measured)", "cure", "nabla");
    for (int i = 0; i < n; i++) {
        const study_pitfall *p = &pf[i];
        char sym[96], nab[96];
        if (!isfinite(p->bug_value))
            snprintf(sym, sizeof sym, "loss = %g (true %.6g)", p->bug_value, p->truth);
        else if (i == 2 || i == 3)
            snprintf(sym, sizeof sym, "loss %.6f, off by %+.6f", p->bug_value,
                     p->bug_value - p->truth);
        else
            snprintf(sym, sizeof sym, "loss %.6f, rel err %.1e", p->bug_value,
                     rel_err(p->bug_value, p->truth));
        snprintf(nab, sizeof nab, "%.6f (rel err %.1e)", p->nabla_value,
                 rel_err(p->nabla_value, p->truth));
        printf("%-19s %-50s %-50s %-36s %-46s %s\n", p->name, p->bug, p->input, sym, p->cure, nab);
    }
}

static bool fill_pitfalls_tsv(FILE *f, void *ctx)
{
    const study_pitfall *pf = ctx;
    fprintf(f, "pitfall\tbug_value\tnabla_value\ttruth\tbug_minus_truth\tbug_rel_err\t"
               "nabla_rel_err\n");
    for (int i = 0; i < ST_NPITFALLS; i++)
        fprintf(f, "%s\t%.17g\t%.17g\t%.17g\t%.17g\t%.6g\t%.6g\n", pf[i].name, pf[i].bug_value,
                pf[i].nabla_value, pf[i].truth, pf[i].bug_value - pf[i].truth,
                rel_err(pf[i].bug_value, pf[i].truth), rel_err(pf[i].nabla_value, pf[i].truth));
    return !ferror(f);
}

static void print_gradient(const study_gradient *d)
{
    printf("gradient picture: one row of %d logits, target class %d; label smoothing a = 0 and "
           "a = %g\ndL/dz = p - target (sum reduction): the kernel's values\n\n",
           d->V, d->y, d->smoothing);
    printf("%5s %8s %12s %12s %14s %12s %14s\n", "class", "z", "p", "target a=0", "dL/dz a=0",
           "target a>0", "dL/dz a>0");
    for (int j = 0; j < d->V; j++)
        printf("%5d %8.3f %12.8f %12.8f %14.8f %12.8f %14.8f%s\n", j, d->z[j], d->p[j],
               d->target[0][j], d->dz[0][j], d->target[1][j], d->dz[1][j],
               j == d->y ? "  <- target" : "");
}

static bool fill_gradient_tsv(FILE *f, void *ctx)
{
    const study_gradient *d = ctx;
    fprintf(f, "class\tz\tp\ttarget_a0\tdz_a0\ttarget_smoothed\tdz_smoothed\n");
    for (int j = 0; j < d->V; j++)
        fprintf(f, "%d\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\n", j, d->z[j], d->p[j],
                d->target[0][j], d->dz[0][j], d->target[1][j], d->dz[1][j]);
    return !ferror(f);
}

/* ---- the command ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla study precision|pitfalls|gradient|all [--out DIR] [--no-png]\n"
               "\n"
               "Measured demonstrations of cross-entropy's numerical pitfalls (see\n"
               "docs/studying-the-gradient.md). Each prints a table.\n"
               "  precision   naive / stable / fused loss and gradient error in f16, bf16, f32,\n"
               "              f64 over logit scales 1 .. 1e38, against a long-double truth\n"
               "  pitfalls    the classic bugs measured on concrete inputs, beside nabla\n"
               "  gradient    one row's p, target and dL/dz, without and with label smoothing\n"
               "  all         the three\n"
               "  --out DIR   also write DIR/NAME.tsv (every number) and DIR/NAME.png\n"
               "              (DIR is created if it does not exist; its parent must)\n"
               "  --no-png    with --out, write the tables only\n"
               "Exit status: 0 ok, 1 a file could not be written, 2 usage.\n");
}

/* writes DIR/NAME.EXT; 0 ok, 1 after a message */
static int out_path(const char *dir, const char *name, const char *ext, char *buf, size_t n)
{
    if ((size_t)snprintf(buf, n, "%s/%s.%s", dir, name, ext) >= n) {
        fprintf(stderr, "nabla study: --out %s: path too long (limit %zu bytes)\n", dir, n - 16);
        return 1;
    }
    return 0;
}

static int write_tsv(const char *dir, const char *name, bool (*fill)(FILE *, void *), void *ctx)
{
    char path[4096];
    if (out_path(dir, name, "tsv", path, sizeof path))
        return 1;
    if (nb_write_atomically(path, "nabla study", fill, ctx) != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    printf("wrote %s\n", path);
    return 0;
}

typedef int (*plot_fn)(const char *png, const void *d);

static int plot_precision(const char *png, const void *d)
{
    return nb_study_plot_precision(png, d);
}
static int plot_pitfalls(const char *png, const void *d)
{
    return nb_study_plot_pitfalls(png, d, ST_NPITFALLS);
}
static int plot_gradient(const char *png, const void *d)
{
    return nb_study_plot_gradient(png, d);
}

static int write_outputs(const char *dir, bool png, const char *name, bool (*fill)(FILE *, void *),
                         void *d, plot_fn plot)
{
    if (!dir)
        return 0;
    if (write_tsv(dir, name, fill, d))
        return 1;
    if (!png)
        return 0;
    char path[4096];
    if (out_path(dir, name, "png", path, sizeof path) || plot(path, d))
        return 1;
    printf("wrote %s\n", path);
    return 0;
}

int nb_cmd_study(int argc, char **argv)
{
    const char *what = NULL, *dir = NULL;
    bool png = true;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(k, "--out")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "nabla study: --out needs a directory\n");
                return 2;
            }
            dir = argv[++i];
        } else if (!strcmp(k, "--no-png")) {
            png = false;
        } else if (k[0] != '-' && !what) {
            what = k;
        } else {
            fprintf(stderr, "nabla study: unknown or extra argument '%s'\n", k);
            usage(stderr);
            return 2;
        }
    }
    bool all = what && !strcmp(what, "all");
    bool do_prec = all || (what && !strcmp(what, "precision"));
    bool do_pit = all || (what && !strcmp(what, "pitfalls"));
    bool do_grad = all || (what && !strcmp(what, "gradient"));
    if (!do_prec && !do_pit && !do_grad) {
        if (what)
            fprintf(stderr,
                    "nabla study: unknown study '%s' (precision, pitfalls, gradient, all)\n", what);
        else
            fprintf(stderr, "nabla study: which study? precision, pitfalls, gradient or all\n");
        usage(stderr);
        return 2;
    }
    if (dir && mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "nabla study: --out %s: cannot create the directory: %s\n", dir,
                strerror(errno));
        return 1;
    }
    int rc = 0;
    if (do_prec) {
        study_precision *d = calloc(1, sizeof *d);
        if (!d || study_measure_precision(d) != NB_OK) {
            fprintf(stderr, "nabla study: precision: %s\n", d ? nb_last_error() : "out of memory");
            free(d);
            return 1;
        }
        print_precision(d);
        rc |= write_outputs(dir, png, "precision", fill_precision_tsv, d, plot_precision);
        free(d);
        if (do_pit || do_grad)
            printf("\n");
    }
    if (do_pit) {
        study_pitfall pf[ST_NPITFALLS];
        memset(pf, 0, sizeof pf);
        if (study_measure_pitfalls(pf) != NB_OK) {
            fprintf(stderr, "nabla study: pitfalls: %s\n", nb_last_error());
            return 1;
        }
        print_pitfalls(pf, ST_NPITFALLS);
        rc |= write_outputs(dir, png, "pitfalls", fill_pitfalls_tsv, pf, plot_pitfalls);
        if (do_grad)
            printf("\n");
    }
    if (do_grad) {
        study_gradient d;
        memset(&d, 0, sizeof d);
        if (study_measure_gradient(&d) != NB_OK) {
            fprintf(stderr, "nabla study: gradient: %s\n", nb_last_error());
            return 1;
        }
        print_gradient(&d);
        rc |= write_outputs(dir, png, "gradient", fill_gradient_tsv, &d, plot_gradient);
    }
    return rc;
}
