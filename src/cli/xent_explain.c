/* xent_explain.c - `nabla xent --explain [ROWS]` and `nabla xent --naive`.
 *
 * Both compare nabla's fused kernels with a per-row reference computed here in double from
 * the same logits (read exactly: f16/bf16/f32 values are exact in double), with the max shift:
 *
 *   m = max_j z_j,  log s = log sum_j exp(z_j - m),  lse = m + log s,  p_j = exp(z_j - lse)
 *   T_j = the row's effective target: (1-a) w_y [j = y] + (a/V) w_j for a class target y
 *         (smoothing a, class weights w, 1 if none), w_j ((1-a) t_j + a/V) for soft targets t
 *   L_n = sum_j T_j (lse - z_j) + zc lse^2
 *   dL/dz_j = scale * (p_j sum_k T_k - T_j + 2 zc lse p_j)
 *
 * scale = 1/W for the mean (W = the weighted real-token count or --normaliser), 1 for sum and
 * none. With sum_k T_k = 1 (no weights) this is the familiar scale * (p - target).
 *
 * --naive puts the textbook softmax-then-log, computed in the logits' compute precision
 * (f32 for f16/bf16/f32, f64 for f64), beside the reference and flags every row where it is not
 * finite or where it is finite but wrong: relative error of the row loss, or of the row's
 * unscaled gradient against its largest entry, above the tolerance, both with a floor of 1e-3
 * in the denominator (as nb_gradcheck) so a loss of 1e-9 rounding to 0 is not "wrong". */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "xent_explain.h"

#define EXPLAIN_MAX_ROWS 64    /* rows --explain prints */
#define EXPLAIN_MAX_CLASSES 20 /* classes per row shown in full; above, the top ones */
#define NAIVE_SHOW_FLAGGED 100
#define NAIVE_SHOW_OK 10
#define REL_FLOOR 1e-3

static int parse_rows(const char *spec, int64_t N, int64_t *rows, int *n_rows);

int nb_xent_explain_parse(int argc, char **argv, int *i, nb_xent_explain_args *a)
{
    const char *k = argv[*i];
    if (!strcmp(k, "--explain")) {
        a->explain = true;
        if (*i + 1 < argc && argv[*i + 1][0] >= '0' && argv[*i + 1][0] <= '9') {
            /* the syntax and the count now (usage error); the range once the rows are known */
            int64_t rows[EXPLAIN_MAX_ROWS];
            int n;
            a->rows = argv[++*i];
            if (parse_rows(a->rows, -1, rows, &n) != 0)
                return -1;
        }
        return 1;
    }
    if (!strcmp(k, "--naive")) {
        a->naive = true;
        return 1;
    }
    if (!strcmp(k, "--naive-tol")) {
        double d;
        if (*i + 1 >= argc) {
            fprintf(stderr, "nabla xent: --naive-tol needs a value\n");
            return -1;
        }
        if (!nb_cli_parse_double("xent", k, argv[++*i], &d))
            return -1;
        if (!(d > 0.0 && d < 1.0)) {
            fprintf(stderr, "nabla xent: --naive-tol %s outside (0, 1)\n", argv[*i]);
            return -1;
        }
        a->naive = true;
        a->naive_tol = d;
        return 1;
    }
    return 0;
}

/* ---- the per-row reference, in double ---- */

typedef struct row_ref {
    bool keep;
    int64_t y; /* class target (-1 for soft) */
    double m, log_s, lse;
    double target_term; /* (1-a) w_y (lse - z_y), hard targets */
    double smooth_term; /* (a/V) sum_c w_c (lse - z_c), hard targets */
    double zloss_term;  /* zc lse^2 */
    double L, sumT;
} row_ref;

typedef struct ctx {
    const nb_tensor *z, *t;
    const nb_xent_opts *o;
    bool soft;
    int64_t N, V;
    double scale, W;
} ctx;

static bool row_keeps(const ctx *c, int64_t n)
{
    if (c->o->mask && nb_tensor_get(c->o->mask, n) == 0.0)
        return false;
    return c->soft || (int64_t)nb_tensor_get(c->t, n) != c->o->ignore_index;
}

/* fills r, p[V] and T[V] for row n; dz[V] (may be NULL) gets the scaled gradient */
static void ref_row(const ctx *c, int64_t n, row_ref *r, double *p, double *T, double *dz)
{
    const nb_xent_opts *o = c->o;
    int64_t V = c->V;
    double a = o->label_smoothing;
    memset(r, 0, sizeof *r);
    r->keep = row_keeps(c, n);
    r->y = c->soft ? -1 : (int64_t)nb_tensor_get(c->t, n);
    double m = -INFINITY;
    for (int64_t j = 0; j < V; j++)
        m = fmax(m, nb_tensor_get(c->z, n * V + j));
    double s = 0.0;
    for (int64_t j = 0; j < V; j++)
        s += exp(nb_tensor_get(c->z, n * V + j) - m);
    r->m = m;
    r->log_s = log(s);
    r->lse = m + r->log_s;
    for (int64_t j = 0; j < V; j++) {
        double zj = nb_tensor_get(c->z, n * V + j);
        double wj = o->weight ? nb_tensor_get(o->weight, j) : 1.0;
        p[j] = exp(zj - r->lse);
        if (c->soft)
            T[j] = wj * ((1.0 - a) * nb_tensor_get(c->t, n * V + j) + a / (double)V);
        else
            T[j] = (a / (double)V) * wj;
        r->smooth_term += (a / (double)V) * wj * (r->lse - zj);
    }
    if (!c->soft && r->keep) {
        double wy = o->weight ? nb_tensor_get(o->weight, r->y) : 1.0;
        T[r->y] += (1.0 - a) * wy;
        r->target_term = (1.0 - a) * wy * (r->lse - nb_tensor_get(c->z, n * V + r->y));
    }
    for (int64_t j = 0; j < V; j++) {
        r->sumT += T[j];
        if (c->soft)
            r->L += T[j] * (r->lse - nb_tensor_get(c->z, n * V + j));
    }
    r->zloss_term = o->z_loss * r->lse * r->lse;
    if (!c->soft)
        r->L = r->target_term + r->smooth_term;
    r->L += r->zloss_term;
    if (!r->keep)
        r->L = 0.0;
    if (dz)
        for (int64_t j = 0; j < V; j++)
            dz[j] = r->keep ? c->scale * (p[j] * r->sumT - T[j] + 2.0 * o->z_loss * r->lse * p[j])
                            : 0.0;
}

/* The textbook computation in the compute precision (f32 unless the logits are f64), one row:
 * softmax = exp(z) / sum exp(z) unshifted, log p = log(softmax). Returns the row loss; dz[V]
 * gets the gradient (scaled) built from the naive p. */
static double naive_row(const ctx *c, int64_t n, int64_t y, double *dz)
{
    const nb_xent_opts *o = c->o;
    int64_t V = c->V;
    bool f64 = c->z->dtype == NB_F64;
    double a = o->label_smoothing, sum = 0.0, L = 0.0, Wc = 0.0;
    float sumf = 0.0f;
    for (int64_t j = 0; j < V; j++) {
        double zj = nb_tensor_get(c->z, n * V + j);
        if (f64)
            sum += exp(zj);
        else
            sumf += expf((float)zj);
    }
    if (!f64)
        sum = sumf;
    double wy = o->weight ? nb_tensor_get(o->weight, y) : 1.0;
    for (int64_t j = 0; j < V; j++) {
        double zj = nb_tensor_get(c->z, n * V + j), p, lp;
        double wj = o->weight ? nb_tensor_get(o->weight, j) : 1.0;
        Wc += wj;
        if (f64) {
            p = exp(zj) / sum;
            lp = log(p);
        } else {
            p = expf((float)zj) / (float)sum;
            lp = logf((float)p);
        }
        L -= a / (double)V * wj * lp;
        if (j == y)
            L -= (1.0 - a) * wy * lp;
    }
    double lse = f64 ? log(sum) : (double)logf((float)sum);
    L += o->z_loss * lse * lse;
    for (int64_t j = 0; j < V; j++) {
        double zj = nb_tensor_get(c->z, n * V + j);
        double p = f64 ? exp(zj) / sum : (double)(expf((float)zj) / (float)sum);
        double wj = o->weight ? nb_tensor_get(o->weight, j) : 1.0;
        dz[j] = c->scale * (p * ((1.0 - a) * wy + a / (double)V * Wc + 2.0 * o->z_loss * lse) -
                            a / (double)V * wj - (j == y ? (1.0 - a) * wy : 0.0));
    }
    return L;
}

/* relative error of a row: the loss, and the unscaled gradient against its largest entry */
static double row_rel_err(const ctx *c, double L, double Lref, const double *dz, const double *dref)
{
    double e = fabs(L - Lref) / fmax(fabs(Lref), REL_FLOOR);
    double gmax = 0.0, dmax = 0.0;
    for (int64_t j = 0; j < c->V; j++) {
        gmax = fmax(gmax, fabs(dref[j]));
        double d = fabs(dz[j] - dref[j]);
        dmax = isnan(d) || d > dmax ? d : dmax;
    }
    double s = c->scale > 0 ? c->scale : 1.0;
    double eg = (dmax / s) / fmax(gmax / s, REL_FLOOR);
    if (isnan(e) || isnan(eg))
        return INFINITY;
    return fmax(e, eg);
}

/* ---- --explain ---- */

/* "0,3,5-7" -> the row indices in the order given, each < N (N < 0: not checked yet), at most
 * EXPLAIN_MAX_ROWS of them */
static int parse_rows(const char *spec, int64_t N, int64_t *rows, int *n_rows)
{
    *n_rows = 0;
    const char *s = spec;
    while (*s) {
        char *end;
        errno = 0;
        long long lo = strtoll(s, &end, 10), hi;
        if (end == s || lo < 0 || errno == ERANGE)
            goto bad;
        hi = lo;
        s = end;
        if (*s == '-') {
            hi = strtoll(s + 1, &end, 10);
            if (end == s + 1 || hi < lo || errno == ERANGE)
                goto bad;
            s = end;
        }
        if (*s == ',')
            s++;
        else if (*s)
            goto bad;
        if (N >= 0 && hi >= N) {
            fprintf(stderr, "nabla xent: --explain %s: row %lld out of range for %lld rows\n", spec,
                    hi, (long long)N);
            return -1;
        }
        if (hi - lo >= (long long)(EXPLAIN_MAX_ROWS - *n_rows)) { /* lo >= 0: no overflow */
            fprintf(stderr, "nabla xent: --explain %s: more than %d rows\n", spec,
                    EXPLAIN_MAX_ROWS);
            return -1;
        }
        for (long long r = lo; r <= hi; r++)
            rows[(*n_rows)++] = r;
    }
    if (*n_rows == 0)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "nabla xent: --explain '%s': expected row numbers and ranges like 0,3,5-7\n",
            spec);
    return -1;
}

static void explain_row(const ctx *c, int64_t n, const nb_tensor *fused_loss,
                        const nb_tensor *fused_grad, double *p, double *T, double *dz)
{
    int64_t V = c->V;
    row_ref r;
    ref_row(c, n, &r, p, T, dz);
    printf("\nrow %lld", (long long)n);
    if (!r.keep) {
        printf(": padding (%s): contributes nothing; dL/dz = 0 (fused: loss %.9g)\n",
               c->o->mask && nb_tensor_get(c->o->mask, n) == 0.0 ? "mask 0" : "ignore_index",
               nb_tensor_get(fused_loss, n));
        return;
    }
    if (c->soft)
        printf(": soft target (probabilities)\n");
    else
        printf(": target class %lld\n", (long long)r.y);
    printf("  m = max z = %.9g   log s = log sum exp(z - m) = %.9g   lse = m + log s = %.9g\n", r.m,
           r.log_s, r.lse);
    if (c->soft)
        printf("  L = sum_j T_j (lse - z_j) = %.9g", r.L - r.zloss_term);
    else
        printf("  loss terms: (1-a) w_y (lse - z_y) = %.9g   (a/V) sum_c w_c (lse - z_c) = %.9g",
               r.target_term, r.smooth_term);
    if (c->o->z_loss > 0)
        printf("   z-loss zc lse^2 = %.9g", r.zloss_term);
    printf("\n  row loss L = %.12g   (fused kernel: %.12g)\n", r.L, nb_tensor_get(fused_loss, n));
    printf("  scale = %.9g (%s)   sum_j T_j = %.9g\n", c->scale,
           c->o->reduction == NB_REDUCTION_MEAN  ? "1/W of the mean"
           : c->o->reduction == NB_REDUCTION_SUM ? "sum"
                                                 : "none: gradient of the sum of row losses",
           r.sumT);
    /* which classes: all of them, or the target and the most probable ones */
    int64_t shown[EXPLAIN_MAX_CLASSES];
    int n_shown = 0;
    if (V <= EXPLAIN_MAX_CLASSES) {
        for (int64_t j = 0; j < V; j++)
            shown[n_shown++] = j;
    } else {
        if (!c->soft)
            shown[n_shown++] = r.y;
        while (n_shown < EXPLAIN_MAX_CLASSES / 2) { /* next most probable not yet shown */
            int64_t best = -1;
            for (int64_t j = 0; j < V; j++) {
                bool seen = false;
                for (int k = 0; k < n_shown; k++)
                    seen |= shown[k] == j;
                if (!seen && (best < 0 || p[j] > p[best]))
                    best = j;
            }
            shown[n_shown++] = best;
        }
    }
    printf("  %8s %16s %16s %16s %18s %18s\n", "class", "z", "p = softmax(z)", "target T", "dL/dz",
           "fused dL/dz");
    for (int k = 0; k < n_shown; k++) {
        int64_t j = shown[k];
        printf("  %8lld %16.9g %16.9g %16.9g %18.10g %18.10g%s\n", (long long)j,
               nb_tensor_get(c->z, n * V + j), p[j], T[j], dz[j],
               nb_tensor_get(fused_grad, n * V + j), !c->soft && j == r.y ? "  <- target" : "");
    }
    if (n_shown < V)
        printf("  (%lld of %lld classes shown: the target and the most probable)\n",
               (long long)n_shown, (long long)V);
}

/* ---- --naive ---- */

static int run_naive(const ctx *c, double tol, const nb_tensor *fused_loss,
                     const nb_tensor *fused_grad, double *p, double *T, double *dref, double *dz)
{
    int64_t V = c->V, not_finite = 0, wrong = 0, shown = 0, real = 0;
    double max_diff = 0.0, fused_err = 0.0;
    printf("naive softmax-then-log in %s against the f64 reference (tolerance %.1e)\n",
           c->z->dtype == NB_F64 ? "f64" : "f32", tol);
    printf("%8s %20s %20s %20s %11s\n", "row", "reference (f64)", "fused", "naive log(softmax)",
           "naive err");
    for (int64_t n = 0; n < c->N; n++) {
        if (!row_keeps(c, n))
            continue;
        real++;
        row_ref r;
        ref_row(c, n, &r, p, T, dref);
        double Lf = nb_tensor_get(fused_loss, n);
        for (int64_t j = 0; j < V; j++)
            dz[j] = nb_tensor_get(fused_grad, n * V + j);
        fused_err = fmax(fused_err, row_rel_err(c, Lf, r.L, dz, dref));
        double Ln = naive_row(c, n, r.y, dz);
        bool finite = isfinite(Ln);
        for (int64_t j = 0; j < V && finite; j++)
            finite = isfinite(dz[j]);
        double err = finite ? row_rel_err(c, Ln, r.L, dz, dref) : INFINITY;
        bool bad_wrong = finite && err > tol;
        not_finite += !finite;
        wrong += bad_wrong;
        if (finite)
            for (int64_t j = 0; j < V; j++)
                max_diff = fmax(max_diff, fabs(dz[j] - nb_tensor_get(fused_grad, n * V + j)));
        bool flagged = !finite || bad_wrong;
        if ((flagged && shown < NAIVE_SHOW_FLAGGED) || (!flagged && real <= NAIVE_SHOW_OK)) {
            printf("%8lld %20.12g %20.12g %20.12g %11.3e%s\n", (long long)n, r.L, Lf, Ln, err,
                   !finite     ? "  <- naive is not finite"
                   : bad_wrong ? "  <- naive is finite but wrong"
                               : "");
            shown += flagged;
        }
    }
    if (not_finite + wrong > shown)
        printf("... (%lld more flagged rows not shown)\n", (long long)(not_finite + wrong - shown));
    printf("real rows: %lld\n", (long long)real);
    printf("naive rows not finite: %lld\n", (long long)not_finite);
    printf("naive rows finite but wrong (rel err > %.1e): %lld\n", tol, (long long)wrong);
    printf("largest |grad fused - grad naive| over finite naive rows: %.6g\n", max_diff);
    printf("fused kernel's largest row rel err against the f64 reference: %.3e\n", fused_err);
    return 0;
}

int nb_xent_explain_run(const nb_xent_explain_args *a, const nb_tensor *z, const nb_tensor *t,
                        const nb_xent_opts *o, const nb_xent_stats *st)
{
    if (!a->explain && !a->naive)
        return 0;
    ctx c = {z, t, o, nb_dtype_is_float(t->dtype), 0, 0, 1.0, 0.0};
    if (c.soft && a->naive) {
        fprintf(stderr, "nabla xent: --naive needs integer class targets, not probabilities\n");
        return 1;
    }
    if (z->ndim < 1 || z->shape[z->ndim - 1] == 0)
        return 0; /* nothing to explain (validation already accepted it) */
    c.V = z->shape[z->ndim - 1];
    c.N = z->numel / c.V;
    c.W = o->normaliser > 0 ? o->normaliser : st->weight_sum;
    if (o->reduction == NB_REDUCTION_MEAN)
        c.scale = c.W != 0.0 ? 1.0 / c.W : 0.0;
    int rc = 1;
    nb_dtype ct = nb_dtype_compute(z->dtype);
    nb_xent_opts ro = *o;
    ro.reduction = NB_REDUCTION_NONE;
    ro.stats = NULL;
    nb_tensor *rows = nb_tensor_zeros(ct, z->ndim - 1, z->shape);
    nb_tensor *grad = nb_tensor_zeros(ct, z->ndim, z->shape);
    double *buf = malloc(sizeof(double) * 4 * (size_t)c.V);
    int64_t *list = malloc(sizeof(int64_t) * EXPLAIN_MAX_ROWS);
    if (!rows || !grad || !buf || !list) {
        fprintf(stderr, "nabla xent: out of memory for V = %lld\n", (long long)c.V);
        goto out;
    }
    nb_status s = c.soft ? nb_xent_soft_forward(z, t, &ro, rows, NULL, NULL)
                         : nb_xent_forward(z, t, &ro, rows, NULL, NULL);
    if (s == NB_OK)
        s = c.soft ? nb_xent_soft_backward(grad, z, t, o, NULL, NULL)
                   : nb_xent_backward(grad, z, t, o, NULL, NULL);
    if (s != NB_OK) {
        fprintf(stderr, "nabla xent: %s\n", nb_last_error());
        goto out;
    }
    double *p = buf, *T = buf + c.V, *d1 = buf + 2 * c.V, *d2 = buf + 3 * c.V;
    if (a->explain) {
        int n_rows = 0;
        if (a->rows) {
            if (parse_rows(a->rows, c.N, list, &n_rows) != 0)
                goto out;
        } else {
            for (int64_t r = 0; r < c.N && r < 3; r++)
                list[n_rows++] = r;
        }
        printf("explain: %lld rows x %lld classes, %s logits; reference computed in f64\n",
               (long long)c.N, (long long)c.V, nb_dtype_name(z->dtype));
        printf("  L = sum_j T_j (lse - z_j) + zc lse^2,  dL/dz = scale (p sum_j T_j - T + 2 zc "
               "lse p)\n");
        printf("  a = %g, z-loss zc = %g, weights %s, W = %.9g\n", o->label_smoothing, o->z_loss,
               o->weight ? "given" : "none (1)", c.W);
        for (int k = 0; k < n_rows; k++)
            explain_row(&c, list[k], rows, grad, p, T, d1);
        printf("\n");
    }
    if (a->naive) {
        double tol = a->naive_tol > 0 ? a->naive_tol : (z->dtype == NB_F64 ? 1e-9 : 1e-4);
        run_naive(&c, tol, rows, grad, p, T, d1, d2);
    }
    rc = 0;
out:
    nb_tensor_free(rows);
    nb_tensor_free(grad);
    free(buf);
    free(list);
    return rc;
}
