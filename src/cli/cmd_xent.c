/* cmd_xent.c - `nabla xent`: the fused cross-entropy on .npy files, for studying the loss and
 * its gradient; `--naive` puts the textbook log(softmax) beside it. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data/npy_write.h"
#include "tensor/fileio.h"
#include "nabla.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: nabla xent --logits L.npy --targets T.npy [options]\n"
        "\n"
        "Fused cross-entropy from logits (stable log-sum-exp; gradient = softmax - target).\n"
        "  --logits L.npy          <f2/<f4/<f8, shape [N,V] or [B,T,V]\n"
        "  --targets T.npy         <i4/<i8 class ids shaped like the logits without V, or\n"
        "                          float probabilities shaped like the logits (soft targets)\n"
        "  --mask M.npy            |b1/|u1/<f4/<f8 shaped like the targets; 0 = padding\n"
        "  --weight W.npy          class weights, float [V]\n"
        "  --ignore-index I        targets equal to I are padding (default -100)\n"
        "  --label-smoothing A     in [0, 1) (default 0)\n"
        "  --reduction R           mean (default) | sum | none\n"
        "  --z-loss C              PaLM's z-loss coefficient (default 0)\n"
        "  --normaliser W          divide the mean by W instead of the real-token count\n"
        "  --loss-out LOSS.npy     write the loss (0-d for mean/sum, targets' shape for none)\n"
        "  --grad-out GRAD.npy     write dL/dlogits for upstream gradient 1 (for none: of the\n"
        "                          sum of per-token losses), f32 (f64 for f64 logits)\n"
        "  --naive                 also compute the textbook log(softmax) in the same\n"
        "                          precision, per row, flag rows where it is inf/NaN, and\n"
        "                          print the largest gradient difference\n"
        "Without --loss-out the loss and the token count are printed.\n"
        "Exit status: 0 ok, 1 bad input (message on stderr, no output file written), 2 usage.\n");
}

typedef struct xargs {
    const char *logits, *targets, *mask, *weight, *loss_out, *grad_out;
    nb_xent_opts o;
    bool naive;
} xargs;

static int parse(int argc, char **argv, xargs *a)
{
    memset(a, 0, sizeof *a);
    a->o = nb_xent_defaults();
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(k, "--naive")) {
            a->naive = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla xent: unknown option or missing value: '%s'\n", k);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        long long ll;
        double d;
        if (!strcmp(k, "--logits"))
            a->logits = v;
        else if (!strcmp(k, "--targets"))
            a->targets = v;
        else if (!strcmp(k, "--mask"))
            a->mask = v;
        else if (!strcmp(k, "--weight"))
            a->weight = v;
        else if (!strcmp(k, "--loss-out"))
            a->loss_out = v;
        else if (!strcmp(k, "--grad-out"))
            a->grad_out = v;
        else if (!strcmp(k, "--ignore-index")) {
            if (!nb_cli_parse_int("xent", k, v, &ll))
                return 2;
            a->o.ignore_index = ll;
        } else if (!strcmp(k, "--label-smoothing")) {
            if (!nb_cli_parse_double("xent", k, v, &d))
                return 2;
            if (!(d >= 0.0 && d < 1.0)) {
                fprintf(stderr, "nabla xent: --label-smoothing %s outside [0, 1)\n", v);
                return 2;
            }
            a->o.label_smoothing = d;
        } else if (!strcmp(k, "--z-loss")) {
            if (!nb_cli_parse_double("xent", k, v, &d))
                return 2;
            if (!(d >= 0.0) || isinf(d)) {
                fprintf(stderr, "nabla xent: --z-loss %s must be finite and >= 0\n", v);
                return 2;
            }
            a->o.z_loss = d;
        } else if (!strcmp(k, "--normaliser") || !strcmp(k, "--normalizer")) {
            if (!nb_cli_parse_double("xent", k, v, &d))
                return 2;
            if (!(d > 0.0) || isinf(d)) {
                fprintf(stderr, "nabla xent: %s %s must be finite and > 0\n", k, v);
                return 2;
            }
            a->o.normaliser = d;
        } else if (!strcmp(k, "--reduction")) {
            if (!strcmp(v, "mean"))
                a->o.reduction = NB_REDUCTION_MEAN;
            else if (!strcmp(v, "sum"))
                a->o.reduction = NB_REDUCTION_SUM;
            else if (!strcmp(v, "none"))
                a->o.reduction = NB_REDUCTION_NONE;
            else {
                fprintf(stderr, "nabla xent: --reduction '%s': expected mean, sum or none\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "nabla xent: unknown option '%s'\n", k);
            usage(stderr);
            return 2;
        }
    }
    if (!a->logits || !a->targets) {
        fprintf(stderr, "nabla xent: --logits and --targets are required\n");
        usage(stderr);
        return 2;
    }
    return -1; /* go on */
}

static nb_tensor *load(const char *what, const char *path)
{
    nb_tensor *t = nb_npy_load(path);
    if (!t)
        fprintf(stderr, "nabla xent: %s %s: %s\n", what, path, nb_last_error());
    return t;
}

/* The textbook computation in the compute precision, one row: softmax = exp(z)/sum exp(z),
 * log p = log(softmax). Fills the row loss and (if dz) the gradient with the fused formula's
 * structure but the naive p. */
static double naive_row(const nb_tensor *z, int64_t n, int64_t V, int64_t y, const nb_xent_opts *o,
                        double c, double *dz)
{
    bool f64 = z->dtype == NB_F64;
    double a = o->label_smoothing, sum = 0.0, L = 0.0, Wc = 0.0;
    float sumf = 0.0f;
    for (int64_t j = 0; j < V; j++) {
        double zj = nb_tensor_get(z, n * V + j);
        if (f64)
            sum += exp(zj);
        else
            sumf += expf((float)zj);
    }
    if (!f64)
        sum = sumf;
    double wy = o->weight ? nb_tensor_get(o->weight, y) : 1.0;
    for (int64_t j = 0; j < V; j++) {
        double zj = nb_tensor_get(z, n * V + j), p, lp;
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
    if (dz)
        for (int64_t j = 0; j < V; j++) {
            double zj = nb_tensor_get(z, n * V + j);
            double p = f64 ? exp(zj) / sum : (double)(expf((float)zj) / (float)sum);
            double wj = o->weight ? nb_tensor_get(o->weight, j) : 1.0;
            dz[j] = c * (p * ((1.0 - a) * wy + a / (double)V * Wc + 2.0 * o->z_loss * lse) -
                         a / (double)V * wj - (j == y ? (1.0 - a) * wy : 0.0));
        }
    return L;
}

static int run_naive(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o,
                     const nb_tensor *loss_rows, const nb_tensor *grad, double W)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    double *dz = malloc(sizeof(double) * (size_t)V);
    if (!dz) {
        fprintf(stderr, "nabla xent: out of memory\n");
        return 1;
    }
    double c = o->reduction == NB_REDUCTION_MEAN ? (W != 0.0 ? 1.0 / W : 0.0) : 1.0;
    double max_diff = 0.0;
    int64_t flagged = 0, shown = 0;
    printf("%8s %22s %22s  %s\n", "row", "fused", "naive log(softmax)", "");
    for (int64_t n = 0; n < N; n++) {
        bool keep = (!o->mask || nb_tensor_get(o->mask, n) != 0.0) &&
                    (int64_t)nb_tensor_get(t, n) != o->ignore_index;
        if (!keep)
            continue;
        int64_t y = (int64_t)nb_tensor_get(t, n);
        double Lf = nb_tensor_get(loss_rows, n);
        double Ln = naive_row(z, n, V, y, o, c, dz);
        bool bad = !isfinite(Ln);
        flagged += bad;
        for (int64_t j = 0; j < V; j++) {
            double d = fabs(dz[j] - nb_tensor_get(grad, n * V + j));
            if (isnan(d) || d > max_diff)
                max_diff = isnan(d) ? NAN : d;
            if (isnan(max_diff))
                break;
        }
        if (shown < 100) {
            printf("%8lld %22.12g %22.12g  %s\n", (long long)n, Lf, Ln,
                   bad ? "<- naive is not finite" : "");
            shown++;
        }
    }
    if (shown == 100)
        printf("... (rows after the first 100 real ones not shown)\n");
    printf("naive rows not finite: %lld\n", (long long)flagged);
    printf("largest |grad fused - grad naive|: %.6g\n", max_diff);
    free(dz);
    return 0;
}

/* Every output can be written, no two outputs are the same file, and no output is one of the
 * inputs (an output replaces its file). 0 ok, 1 after a message. */
static int check_outputs(const xargs *a)
{
    const char *outs[2][2] = {{"--loss-out", a->loss_out}, {"--grad-out", a->grad_out}};
    const char *ins[4][2] = {{"--logits", a->logits},
                             {"--targets", a->targets},
                             {"--mask", a->mask},
                             {"--weight", a->weight}};
    for (int i = 0; i < 2; i++) {
        if (!outs[i][1])
            continue;
        char who[32];
        snprintf(who, sizeof who, "nabla xent %s", outs[i][0]);
        if (nb_output_check(outs[i][1], who) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
        for (int j = 0; j < 4; j++)
            if (ins[j][1] && nb_output_same_file(outs[i][1], ins[j][1])) {
                fprintf(stderr,
                        "nabla xent: %s '%s' is the same file as %s '%s'; writing it would "
                        "destroy the input (choose another output file)\n",
                        outs[i][0], outs[i][1], ins[j][0], ins[j][1]);
                return 1;
            }
    }
    if (a->loss_out && a->grad_out && nb_output_same_file(a->loss_out, a->grad_out)) {
        fprintf(stderr,
                "nabla xent: --loss-out '%s' and --grad-out '%s' name the same file; give each "
                "output its own file\n",
                a->loss_out, a->grad_out);
        return 1;
    }
    return 0;
}

int nb_cmd_xent(int argc, char **argv)
{
    xargs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    nb_tensor *z = NULL, *t = NULL, *m = NULL, *w = NULL, *loss = NULL, *rows = NULL, *grad = NULL;
    nb_output lo = {0}, go = {0}; /* --loss-out, --grad-out until both are written */
    if (check_outputs(&a) != 0)
        return 1;
    rc = 1;
    z = load("logits", a.logits);
    if (!z)
        goto out;
    t = load("targets", a.targets);
    if (!t)
        goto out;
    if (a.mask && !(m = load("mask", a.mask)))
        goto out;
    if (a.weight) {
        nb_tensor *raw = load("weight", a.weight);
        if (!raw)
            goto out;
        if (raw->dtype == NB_F32 || raw->dtype == NB_F64 || !nb_dtype_is_float(raw->dtype))
            w = raw; /* non-float weights are rejected by validation with a clear message */
        else {
            w = nb_tensor_to_dtype(raw, NB_F32);
            nb_tensor_free(raw);
            if (!w)
                goto fail;
        }
    }
    a.o.mask = m;
    a.o.weight = w;
    bool soft = nb_dtype_is_float(t->dtype);
    if (soft && a.naive) {
        fprintf(stderr, "nabla xent: --naive needs integer class targets, not probabilities\n");
        goto out;
    }
    nb_status s = soft ? NB_OK : nb_xent_validate(z, t, &a.o);
    if (s != NB_OK)
        goto fail;
    nb_dtype ct = nb_dtype_compute(z->dtype);
    int64_t V = z->ndim ? z->shape[z->ndim - 1] : 0;
    loss = a.o.reduction == NB_REDUCTION_NONE
               ? nb_tensor_zeros(ct, z->ndim ? z->ndim - 1 : 0, z->shape)
               : nb_tensor_zeros(ct, 0, NULL);
    if (!loss)
        goto fail;
    nb_xent_stats st;
    s = soft ? nb_xent_soft_forward(z, t, &a.o, loss, NULL, &st)
             : nb_xent_forward(z, t, &a.o, loss, NULL, &st);
    if (s != NB_OK)
        goto fail;
    if (a.grad_out || a.naive) {
        grad = nb_tensor_zeros(ct, z->ndim, z->shape);
        if (!grad)
            goto fail;
        s = soft ? nb_xent_soft_backward(grad, z, t, &a.o, NULL, NULL)
                 : nb_xent_backward(grad, z, t, &a.o, NULL, NULL);
        if (s != NB_OK)
            goto fail;
    }
    if (a.naive) {
        nb_xent_opts ro = a.o;
        ro.reduction = NB_REDUCTION_NONE;
        rows = nb_tensor_zeros(ct, z->ndim - 1, z->shape);
        if (!rows || nb_xent_forward(z, t, &ro, rows, NULL, NULL) != NB_OK)
            goto fail;
        double W = a.o.normaliser > 0 ? a.o.normaliser : st.weight_sum;
        if (run_naive(z, t, &a.o, rows, grad, W) != 0)
            goto out;
    }
    /* Outputs last. Both are written and finished before either is put in place, so a failure
     * leaves neither new file and whatever was at --loss-out untouched. */
    if (a.loss_out && (nb_output_open(&lo, a.loss_out, "npy") != NB_OK ||
                       nb_npy_write_output(&lo, loss) != NB_OK)) {
        fprintf(stderr, "nabla xent: --loss-out %s: %s\n", a.loss_out, nb_last_error());
        goto out;
    }
    if (a.grad_out && (nb_output_open(&go, a.grad_out, "npy") != NB_OK ||
                       nb_npy_write_output(&go, grad) != NB_OK)) {
        fprintf(stderr, "nabla xent: --grad-out %s: %s\n", a.grad_out, nb_last_error());
        goto out;
    }
    if (a.loss_out && nb_output_commit(&lo) != NB_OK) {
        fprintf(stderr, "nabla xent: --loss-out %s: %s\n", a.loss_out, nb_last_error());
        goto out;
    }
    if (a.grad_out && nb_output_commit(&go) != NB_OK) {
        fprintf(stderr, "nabla xent: --grad-out %s: %s\n", a.grad_out, nb_last_error());
        goto out;
    }
    if (!a.loss_out) {
        /* with --grad-out -, standard output carries the .npy: the summary goes to stderr */
        FILE *txt = a.grad_out && !strcmp(a.grad_out, "-") ? stderr : stdout;
        const char *red = a.o.reduction == NB_REDUCTION_MEAN  ? "mean"
                          : a.o.reduction == NB_REDUCTION_SUM ? "sum"
                                                              : "none";
        if (a.o.reduction == NB_REDUCTION_NONE)
            fprintf(txt, "loss (sum of per-token losses) %.9g\n", st.loss_sum);
        else
            fprintf(txt, "loss (%s) %.9g\n", red, nb_tensor_get(loss, 0));
        fprintf(txt, "tokens %lld real of %lld, weight sum %.9g, V %lld\n", (long long)st.n_tokens,
                (long long)(V ? z->numel / V : 0), st.weight_sum, (long long)V);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "nabla xent: %s\n", nb_last_error());
out:
    nb_tensor_free(z);
    nb_tensor_free(t);
    nb_tensor_free(m);
    nb_tensor_free(w);
    nb_tensor_free(loss);
    nb_tensor_free(rows);
    nb_tensor_free(grad);
    nb_output_abort(&lo); /* nothing if committed or never opened */
    nb_output_abort(&go);
    return rc;
}
