/* study_measure.c - the measurements of `nabla study` (cmd_study.c prints them, study_plot.c
 * draws them): the precision sweep, the pitfalls and the gradient picture.
 *
 * The "naive" and "stable" formulations emulate computing IN a format: every operation's result
 * is rounded to it (f16/bf16 through f32, which is exact for these formats' values apart from
 * double rounding at ties). nabla's fused op is the real kernel (nb_xent_forward/backward):
 * f16/bf16 logits are read as such and the arithmetic runs in f32. The truth is computed in long
 * double, max-shifted, from the logits as stored. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "study.h"

const double study_sweep_base[ST_SWEEP_V] = {0.3, -1.2, 2.0, 0.7, -0.4, 1.1, -2.0, 0.0};

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

nb_status study_measure_precision(study_precision *d)
{
    for (int k = 0; k < ST_NSCALES; k++) {
        d->scale[k] = pow(10.0, k);
        for (int p = 0; p < ST_NPREC; p++) {
            double z[ST_SWEEP_V], g[ST_SWEEP_V];
            long double gt[ST_SWEEP_V];
            bool representable = true;
            for (int j = 0; j < ST_SWEEP_V; j++) {
                z[j] = rnd(p, d->scale[k] * study_sweep_base[j]);
                representable &= isfinite(z[j]);
            }
            if (!representable) {
                d->truth[p][k] = NAN;
                for (int m = 0; m < SM_NMETH; m++)
                    d->loss_err[p][m][k] = d->grad_err[p][m][k] = d->loss[p][m][k] = NAN;
                continue;
            }
            long double Lt = truth_row(z, ST_SWEEP_V, ST_SWEEP_Y, 0.0, gt);
            d->truth[p][k] = (double)Lt;
            for (int m = 0; m < SM_NMETH; m++) {
                double L;
                if (m == SM_NAIVE)
                    L = naive_in(p, z, ST_SWEEP_V, ST_SWEEP_Y, g);
                else if (m == SM_STABLE)
                    L = stable_in(p, z, ST_SWEEP_V, ST_SWEEP_Y, g);
                else if (fused_row(prec_dtype[p], z, ST_SWEEP_V, ST_SWEEP_Y, 0.0, &L, g) != NB_OK)
                    return nb_last_status();
                double ge = 0.0;
                bool finite = isfinite(L);
                for (int j = 0; j < ST_SWEEP_V; j++) {
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

nb_status study_measure_pitfalls(study_pitfall *pf)
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

/* ---- gradient picture ---- */

static const double grad_z[ST_GV] = {1.5, -0.3, 0.8, 2.6, 0.1, -1.2, 0.4, 1.9, -0.7, 0.0};

nb_status study_measure_gradient(study_gradient *d)
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
