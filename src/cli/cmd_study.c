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
 * The "naive" and "stable" columns emulate computing IN a format: every operation's result is
 * rounded to it (f16/bf16 through f32, which is exact for these formats' values apart from
 * double rounding at ties). nabla's fused op is the real kernel (nb_xent_forward/backward):
 * f16/bf16 logits are read as such and the arithmetic runs in f32. */
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

const char *const study_prec_names[ST_NPREC] = {"f16", "bf16", "f32", "f64"};
const char *const study_method_names[SM_NMETH] = {"naive", "stable", "fused"};
static const nb_dtype prec_dtype[ST_NPREC] = {NB_F16, NB_BF16, NB_F32, NB_F64};

/* x rounded to precision p */
static double rnd(int p, double x)
{
    switch (p) {
    case ST_F16: return (double)nb_f16_to_f32(nb_f32_to_f16((float)x));
    case ST_BF16: return (double)nb_bf16_to_f32(nb_f32_to_bf16((float)x));
    case ST_F32: return (double)(float)x;
    default: return x;
    }
}

/* The truth for one row of stored logits z[V], target y, label smoothing a (long double,
 * max-shifted): L = (1-a)(lse - z_y) + (a/V) sum_j (lse - z_j), g_j = p_j - T_j. */
static long double truth_row(const double *z, int V, int y, double a, long double *g)
{
    long double m = z[0], s = 0.0L, L = 0.0L;
    for (int j = 1; j < V; j++)
        m = z[j] > m ? z[j] : m;
    for (int j = 0; j < V; j++)
        s += expl((long double)z[j] - m);
    long double lse = m + logl(s);
    for (int j = 0; j < V; j++) {
        long double T = (j == y ? 1.0L - a : 0.0L) + (long double)a / V;
        L += T * (lse - z[j]);
        if (g)
            g[j] = expl((long double)z[j] - lse) - T;
    }
    return L;
}

/* naive softmax-then-log computed in precision p; g[V] gets p - onehot */
static double naive_in(int p, const double *z, int V, int y, double *g)
{
    double e[64], s = 0.0;
    for (int j = 0; j < V; j++) {
        e[j] = rnd(p, exp(z[j]));
        s = rnd(p, s + e[j]);
    }
    double L = 0.0;
    for (int j = 0; j < V; j++) {
        double pj = rnd(p, e[j] / s);
        if (j == y)
            L = -rnd(p, log(pj));
        g[j] = rnd(p, pj - (j == y ? 1.0 : 0.0));
    }
    return L;
}

/* stable log-softmax (max shift, log-sum-exp) computed in precision p, then NLL */
static double stable_in(int p, const double *z, int V, int y, double *g)
{
    double m = z[0], d[64], s = 0.0;
    for (int j = 1; j < V; j++)
        m = fmax(m, z[j]);
    for (int j = 0; j < V; j++) {
        d[j] = rnd(p, z[j] - m);
        s = rnd(p, s + rnd(p, exp(d[j])));
    }
    double ls = rnd(p, log(s)), L = 0.0;
    for (int j = 0; j < V; j++) {
        double lsm = rnd(p, d[j] - ls);
        if (j == y)
            L = -lsm;
        g[j] = rnd(p, rnd(p, exp(lsm)) - (j == y ? 1.0 : 0.0));
    }
    return L;
}

/* nabla's fused op on one row stored as dtype t; sum reduction (the row's loss) and its
 * gradient. ignore/mask none. */
static nb_status fused_row(nb_dtype t, const double *z, int V, int y, double a, double *L,
                           double *g)
{
    int64_t sz[2] = {1, V}, st[1] = {1};
    nb_tensor *Z = nb_tensor_zeros(t, 2, sz), *Y = nb_tensor_zeros(NB_I64, 1, st);
    nb_tensor *loss = nb_tensor_zeros(nb_dtype_compute(t), 0, NULL);
    nb_tensor *G = nb_tensor_zeros(nb_dtype_compute(t), 2, sz);
    nb_status s = Z && Y && loss && G ? NB_OK : nb_last_status();
    if (s == NB_OK) {
        for (int j = 0; j < V; j++)
            nb_tensor_set(Z, j, z[j]);
        nb_tensor_set(Y, 0, y);
        nb_xent_opts o = nb_xent_defaults();
        o.reduction = NB_REDUCTION_SUM;
        o.label_smoothing = a;
        s = nb_xent_forward(Z, Y, &o, loss, NULL, NULL);
        if (s == NB_OK)
            s = nb_xent_backward(G, Z, Y, &o, NULL, NULL);
        if (s == NB_OK) {
            *L = nb_tensor_get(loss, 0);
            for (int j = 0; j < V; j++)
                g[j] = nb_tensor_get(G, j);
        }
    }
    nb_tensor_free(Z);
    nb_tensor_free(Y);
    nb_tensor_free(loss);
    nb_tensor_free(G);
    return s;
}

/* ---- precision sweep ---- */

/* the row: V = 8 base logits times the scale, target class 3 (not the largest) */
#define SW_V 8
#define SW_Y 3
static const double sweep_base[SW_V] = {0.3, -1.2, 2.0, 0.7, -0.4, 1.1, -2.0, 0.0};

static nb_status measure_precision(study_precision *d)
{
    for (int k = 0; k < ST_NSCALES; k++) {
        d->scale[k] = pow(10.0, k);
        for (int p = 0; p < ST_NPREC; p++) {
            double z[SW_V], g[SW_V];
            long double gt[SW_V];
            bool representable = true;
            for (int j = 0; j < SW_V; j++) {
                z[j] = rnd(p, d->scale[k] * sweep_base[j]);
                representable &= isfinite(z[j]);
            }
            if (!representable) {
                d->truth[p][k] = NAN;
                for (int m = 0; m < SM_NMETH; m++)
                    d->loss_err[p][m][k] = d->grad_err[p][m][k] = d->loss[p][m][k] = NAN;
                continue;
            }
            long double Lt = truth_row(z, SW_V, SW_Y, 0.0, gt);
            d->truth[p][k] = (double)Lt;
            for (int m = 0; m < SM_NMETH; m++) {
                double L;
                if (m == SM_NAIVE)
                    L = naive_in(p, z, SW_V, SW_Y, g);
                else if (m == SM_STABLE)
                    L = stable_in(p, z, SW_V, SW_Y, g);
                else if (fused_row(prec_dtype[p], z, SW_V, SW_Y, 0.0, &L, g) != NB_OK)
                    return nb_last_status();
                double ge = 0.0;
                bool finite = isfinite(L);
                for (int j = 0; j < SW_V; j++) {
                    finite &= isfinite(g[j]);
                    ge = fmax(ge, (double)fabsl((long double)g[j] - gt[j]));
                }
                d->loss[p][m][k] = L;
                d->loss_err[p][m][k] =
                    finite ? (double)(fabsl((long double)L - Lt) / fabsl(Lt)) : INFINITY;
                d->grad_err[p][m][k] = finite ? ge : INFINITY;
            }
        }
    }
    return NB_OK;
}

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
    printf("precision sweep: one row of %d logits = scale * [", SW_V);
    for (int j = 0; j < SW_V; j++)
        printf("%s%g", j ? ", " : "", sweep_base[j]);
    printf("], target class %d\n", SW_Y);
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

/* ---- pitfalls ---- */

/* The padded batch of the padding and averaging pitfalls: B = 2 sequences, T = 4, V = 4,
 * lengths 4 and 1. A real token at position t has target class 1 + t % 3 and logits 0 except
 * 1 + t at the target; a padded position has logits 0 and the pad id 0 as its target. */
#define PB 2
#define PT 4
#define PV 4
static const int pad_len[PB] = {4, 1};

static void padded_batch(double *z, int64_t *y, bool mask_pads)
{
    for (int b = 0; b < PB; b++)
        for (int t = 0; t < PT; t++) {
            int n = b * PT + t;
            bool real = t < pad_len[b];
            int cls = real ? 1 + t % 3 : 0;
            for (int j = 0; j < PV; j++)
                z[n * PV + j] = real && j == cls ? 1.0 + t : 0.0;
            y[n] = real || !mask_pads ? cls : -100;
        }
}

/* per-token losses of the padded batch with nabla's kernel (reduction none; -100 = padding) */
static nb_status batch_losses(bool mask_pads, double *rows, double *mean)
{
    int64_t sz[3] = {PB, PT, PV}, sy[2] = {PB, PT};
    nb_tensor *Z = nb_tensor_zeros(NB_F64, 3, sz), *Y = nb_tensor_zeros(NB_I64, 2, sy);
    nb_tensor *L = nb_tensor_zeros(NB_F64, 2, sy), *M = nb_tensor_zeros(NB_F64, 0, NULL);
    nb_status s = Z && Y && L && M ? NB_OK : nb_last_status();
    if (s == NB_OK) {
        padded_batch(Z->data, Y->data, mask_pads);
        nb_xent_opts o = nb_xent_defaults();
        o.reduction = NB_REDUCTION_NONE;
        s = nb_xent_forward(Z, Y, &o, L, NULL, NULL);
        o.reduction = NB_REDUCTION_MEAN;
        if (s == NB_OK)
            s = nb_xent_forward(Z, Y, &o, M, NULL, NULL);
        if (s == NB_OK) {
            memcpy(rows, L->data, sizeof(double) * PB * PT);
            *mean = nb_tensor_get(M, 0);
        }
    }
    nb_tensor_free(Z);
    nb_tensor_free(Y);
    nb_tensor_free(L);
    nb_tensor_free(M);
    return s;
}

#define FP16_V 4096

static nb_status measure_pitfalls(study_pitfall *pf)
{
    double g[64];
    long double gt[64];
    /* 1. naive softmax overflows */
    {
        double z[3] = {1000, 1001, 1002};
        study_pitfall *p = &pf[0];
        p->name = "softmax-overflow";
        p->bug = "softmax = exp(z) / sum exp(z), unshifted";
        p->input = "f32 z = [1000, 1001, 1002], target 2";
        p->cure = "shift by max z: log-sum-exp";
        p->bug_value = naive_in(ST_F32, z, 3, 2, g);
        p->truth = (double)truth_row(z, 3, 2, 0.0, gt);
        nb_status s = fused_row(NB_F32, z, 3, 2, 0.0, &p->nabla_value, g);
        if (s != NB_OK)
            return s;
    }
    /* 2. log of a probability that underflowed: even a max-shifted softmax underflows */
    {
        double z[2] = {0, -120};
        study_pitfall *p = &pf[1];
        p->name = "log-of-underflow";
        p->bug = "log(softmax(z)) with a max-shifted softmax";
        p->input = "f32 z = [0, -120], target 1";
        p->cure = "log_softmax = z - lse(z), never log(p)";
        double e1 = rnd(ST_F32, exp(-120.0)), s = rnd(ST_F32, 1.0 + e1);
        p->bug_value = -rnd(ST_F32, log(rnd(ST_F32, e1 / s)));
        p->truth = (double)truth_row(z, 2, 1, 0.0, gt);
        nb_status st = fused_row(NB_F32, z, 2, 1, 0.0, &p->nabla_value, g);
        if (st != NB_OK)
            return st;
    }
    /* 3 and 4: the padded batch */
    {
        double rows_all[PB * PT], rows_masked[PB * PT], mean_all, mean_masked;
        nb_status s = batch_losses(false, rows_all, &mean_all);
        if (s == NB_OK)
            s = batch_losses(true, rows_masked, &mean_masked);
        if (s != NB_OK)
            return s;
        /* the truth, by the closed form: token at position t loses log(e^(1+t) + 3) - (1+t) */
        long double tok = 0.0L;
        int n_tok = 0;
        for (int b = 0; b < PB; b++) {
            for (int t = 0; t < pad_len[b]; t++) {
                tok += logl(expl(1.0L + t) + 3.0L) - (1.0L + t);
                n_tok++;
            }
        }
        study_pitfall *p = &pf[2];
        p->name = "padding-not-masked";
        p->bug = "mean over every position, pads counted as class 0";
        p->input = "2 sequences of lengths 4 and 1 padded to 4, V = 4";
        p->cure = "ignore_index or a mask; divide by real tokens";
        p->bug_value = mean_all;
        p->nabla_value = mean_masked;
        p->truth = (double)(tok / n_tok);
        p = &pf[3];
        p->name = "per-sequence-mean";
        p->bug = "mean of per-sequence means";
        p->input = "the same batch (lengths 4 and 1)";
        p->cure = "one mean over all real tokens";
        double per_seq = 0.0;
        for (int b = 0; b < PB; b++) {
            double sb = 0.0;
            for (int t = 0; t < pad_len[b]; t++)
                sb += rows_masked[b * PT + t];
            per_seq += sb / pad_len[b] / PB;
        }
        p->bug_value = per_seq;
        p->nabla_value = mean_masked;
        p->truth = (double)(tok / n_tok);
    }
    /* 5. the loss in fp16 without promotion */
    {
        study_pitfall *p = &pf[4];
        p->name = "fp16-no-promotion";
        p->bug = "stable log-softmax with every op in fp16";
        p->input = "f16 z ~ U(-2, 2) seed 5, V = 4096, target 0";
        p->cure = "read fp16, compute in fp32 (f64 sums)";
        double *z = malloc(sizeof(double) * FP16_V);
        if (!z)
            return nb_error(NB_ERR_NOMEM, "out of memory");
        nb_rng r;
        nb_rng_seed(&r, 5);
        for (int j = 0; j < FP16_V; j++)
            z[j] = rnd(ST_F16, -2.0 + 4.0 * nb_rng_uniform(&r));
        /* stable in f16, loss only (the gradient buffer of 64 is for the small rows) */
        double m = z[0], s = 0.0;
        for (int j = 1; j < FP16_V; j++)
            m = fmax(m, z[j]);
        for (int j = 0; j < FP16_V; j++)
            s = rnd(ST_F16, s + rnd(ST_F16, exp(rnd(ST_F16, z[j] - m))));
        p->bug_value = -rnd(ST_F16, rnd(ST_F16, z[0] - m) - rnd(ST_F16, log(s)));
        p->truth = (double)truth_row(z, FP16_V, 0, 0.0, NULL);
        double *gg = malloc(sizeof(double) * FP16_V);
        nb_status st = gg ? fused_row(NB_F16, z, FP16_V, 0, 0.0, &p->nabla_value, gg)
                          : nb_error(NB_ERR_NOMEM, "out of memory");
        free(gg);
        free(z);
        if (st != NB_OK)
            return st;
    }
    return NB_OK;
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

/* ---- gradient picture ---- */

static const double grad_z[ST_GV] = {1.5, -0.3, 0.8, 2.6, 0.1, -1.2, 0.4, 1.9, -0.7, 0.0};

static nb_status measure_gradient(study_gradient *d)
{
    d->V = ST_GV;
    d->y = 7;
    d->smoothing = 0.1;
    memcpy(d->z, grad_z, sizeof grad_z);
    int64_t sz[2] = {1, ST_GV};
    nb_tensor zt, pt;
    nb_tensor_view(&zt, NB_F64, 2, sz, d->z);
    nb_tensor_view(&pt, NB_F64, 2, sz, d->p);
    nb_status s = nb_softmax_rows(&zt, &pt);
    for (int k = 0; k < 2 && s == NB_OK; k++) {
        double a = k ? d->smoothing : 0.0, L;
        for (int j = 0; j < ST_GV; j++)
            d->target[k][j] = (j == d->y ? 1.0 - a : 0.0) + a / ST_GV;
        s = fused_row(NB_F64, d->z, ST_GV, d->y, a, &L, d->dz[k]);
    }
    return s;
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
        if (!d || measure_precision(d) != NB_OK) {
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
        if (measure_pitfalls(pf) != NB_OK) {
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
        if (measure_gradient(&d) != NB_OK) {
            fprintf(stderr, "nabla study: gradient: %s\n", nb_last_error());
            return 1;
        }
        print_gradient(&d);
        rc |= write_outputs(dir, png, "gradient", fill_gradient_tsv, &d, plot_gradient);
    }
    return rc;
}
