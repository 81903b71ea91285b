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
#include "xent_explain.h"
#include "xent_head.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: nabla xent --logits L.npy --targets T.npy [options]\n"
        "       nabla xent --input X.npy --classifier W.npy [--bias b.npy] --targets T.npy "
        "[options]\n"
        "\n"
        "Fused cross-entropy from logits (stable log-sum-exp; gradient = softmax - target).\n"
        "  --logits L.npy          <f2/<f4/<f8, shape [N,V] or [B,T,V]\n"
        "  --logits-dtype bf16|f16 the logits are a uint16 array (<u2) of bf16 or f16 bit\n"
        "                          patterns (NumPy has no bfloat16: save x.view(np.uint16));\n"
        "                          f16 also takes <f2. Computed in f32, gradient in f32\n"
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
        "  --explain [ROWS]        per row (default 0-2; ROWS like 0,3,5-7): z, p = softmax(z),\n"
        "                          the smoothed, weighted target, dL/dz, m, log s, lse and the\n"
        "                          row's loss terms, from an f64 reference beside the kernel's\n"
        "  --naive                 also compute the textbook log(softmax) in the logits' compute\n"
        "                          precision, flag every row where it is not finite or is finite\n"
        "                          but wrong against the f64 reference, and print the largest\n"
        "                          gradient difference over the finite rows\n"
        "  --naive-tol T           relative error that flags a naive row (default 1e-4, f64: "
        "1e-9)\n"
        "With --input the logits x W^T + b are never formed: the fused linear + cross-entropy\n"
        "head computes them a tile at a time (no --logits-dtype, --explain or --naive):\n"
        "  --input X.npy           <f4/<f8 features [N,D] or [B,T,D]\n"
        "  --classifier W.npy      the Linear weight [V,D]     --bias b.npy   its bias [V]\n"
        "  --softcap C             logits C tanh(z / C) (default 0: none)\n"
        "  --grad-out dX.npy       then writes dL/dx; --grad-classifier-out dW.npy dL/dW and\n"
        "                          --grad-bias-out db.npy dL/db\n"
        "Without --loss-out the loss and the token count are printed.\n"
        "Exit status: 0 ok, 1 bad input (message on stderr, no output file written), 2 usage.\n");
}

typedef struct xargs {
    const char *logits, *targets, *mask, *weight, *loss_out, *grad_out;
    const char *input, *classifier, *bias, *grad_w_out, *grad_b_out; /* the fused head */
    double softcap;
    nb_dtype logits_dtype; /* NB_BF16 / NB_F16 with --logits-dtype, else NB_F32 (as stored) */
    nb_xent_opts o;
    nb_xent_explain_args ex;
} xargs;

static int parse(int argc, char **argv, xargs *a)
{
    memset(a, 0, sizeof *a);
    a->o = nb_xent_defaults();
    a->logits_dtype = NB_F32;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        int ex = nb_xent_explain_parse(argc, argv, &i, &a->ex);
        if (ex < 0)
            return 2;
        if (ex > 0)
            continue;
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
        else if (!strcmp(k, "--input"))
            a->input = v;
        else if (!strcmp(k, "--classifier"))
            a->classifier = v;
        else if (!strcmp(k, "--bias"))
            a->bias = v;
        else if (!strcmp(k, "--grad-classifier-out"))
            a->grad_w_out = v;
        else if (!strcmp(k, "--grad-bias-out"))
            a->grad_b_out = v;
        else if (!strcmp(k, "--softcap")) {
            if (!nb_cli_parse_double("xent", k, v, &d))
                return 2;
            if (!(d >= 0.0) || isinf(d)) {
                fprintf(stderr, "nabla xent: --softcap %s must be finite and >= 0\n", v);
                return 2;
            }
            a->softcap = d;
        } else if (!strcmp(k, "--logits-dtype")) {
            if (!strcmp(v, "bf16"))
                a->logits_dtype = NB_BF16;
            else if (!strcmp(v, "f16"))
                a->logits_dtype = NB_F16;
            else {
                fprintf(stderr,
                        "nabla xent: --logits-dtype '%s': expected bf16 or f16 (a uint16 array "
                        "of their bit patterns; float arrays carry their own dtype)\n",
                        v);
                return 2;
            }
        } else if (!strcmp(k, "--targets"))
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
    if (!a->input && (a->classifier || a->bias || a->grad_w_out || a->grad_b_out || a->softcap)) {
        fprintf(stderr, "nabla xent: --classifier, --bias, --softcap, --grad-classifier-out and "
                        "--grad-bias-out go with --input\n");
        return 2;
    }
    if (a->input) {
        const char *bad = a->logits                      ? "--logits"
                          : a->logits_dtype != NB_F32    ? "--logits-dtype"
                          : a->ex.explain || a->ex.naive ? "--explain / --naive"
                                                         : NULL;
        if (bad || !a->classifier || !a->targets) {
            fprintf(stderr, "nabla xent: --input needs --classifier and --targets%s%s\n",
                    bad ? ", and does not take " : "", bad ? bad : "");
            return 2;
        }
        if (a->grad_b_out && !a->bias) {
            fprintf(stderr, "nabla xent: --grad-bias-out needs --bias\n");
            return 2;
        }
        return -1;
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

/* Every output can be written, no two outputs are the same file, and no output is one of the
 * inputs (an output replaces its file). 0 ok, 1 after a message. */
static int check_outputs(const xargs *a)
{
    const char *outs[4][2] = {{"--loss-out", a->loss_out},
                              {"--grad-out", a->grad_out},
                              {"--grad-classifier-out", a->grad_w_out},
                              {"--grad-bias-out", a->grad_b_out}};
    const char *ins[7][2] = {{"--logits", a->logits}, {"--targets", a->targets},
                             {"--mask", a->mask},     {"--weight", a->weight},
                             {"--input", a->input},   {"--classifier", a->classifier},
                             {"--bias", a->bias}};
    for (int i = 0; i < 4; i++) {
        if (!outs[i][1])
            continue;
        char who[32];
        snprintf(who, sizeof who, "nabla xent %s", outs[i][0]);
        if (nb_output_check(outs[i][1], who) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
        for (int j = 0; j < 7; j++)
            if (ins[j][1] && nb_output_same_file(outs[i][1], ins[j][1])) {
                fprintf(stderr,
                        "nabla xent: %s '%s' is the same file as %s '%s'; writing it would "
                        "destroy the input (choose another output file)\n",
                        outs[i][0], outs[i][1], ins[j][0], ins[j][1]);
                return 1;
            }
    }
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (outs[i][1] && outs[j][1] && nb_output_same_file(outs[i][1], outs[j][1])) {
                fprintf(stderr,
                        "nabla xent: %s '%s' and %s '%s' name the same file; give each output "
                        "its own file\n",
                        outs[i][0], outs[i][1], outs[j][0], outs[j][1]);
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
    nb_tensor *z = NULL, *t = NULL, *m = NULL, *w = NULL, *loss = NULL, *grad = NULL;
    nb_output lo = {0}, go = {0}; /* --loss-out, --grad-out until both are written */
    if (check_outputs(&a) != 0)
        return 1;
    rc = 1;
    if (a.input)
        goto head;
    if (a.logits_dtype != NB_F32) {
        z = nb_npy_load_half(a.logits, a.logits_dtype);
        if (!z)
            fprintf(stderr, "nabla xent: logits %s (--logits-dtype %s): %s\n", a.logits,
                    nb_dtype_name(a.logits_dtype), nb_last_error());
    } else {
        z = load("logits", a.logits);
        if (!z && strstr(nb_last_error(), "'<u2'"))
            fprintf(stderr, "nabla xent: a uint16 array of bf16 or f16 bit patterns needs "
                            "--logits-dtype bf16 or --logits-dtype f16\n");
    }
    if (!z)
        goto out;
head:
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
    if (a.input) {
        nb_xent_head_args h = {a.input,      a.classifier, a.bias, a.loss_out, a.grad_out,
                               a.grad_w_out, a.grad_b_out, a.o,    a.softcap};
        rc = nb_xent_head_run(&h, t, m, w);
        goto out;
    }
    a.o.mask = m;
    a.o.weight = w;
    bool soft = nb_dtype_is_float(t->dtype);
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
    if (a.grad_out) {
        grad = nb_tensor_zeros(ct, z->ndim, z->shape);
        if (!grad)
            goto fail;
        s = soft ? nb_xent_soft_backward(grad, z, t, &a.o, NULL, NULL)
                 : nb_xent_backward(grad, z, t, &a.o, NULL, NULL);
        if (s != NB_OK)
            goto fail;
    }
    if (nb_xent_explain_run(&a.ex, z, t, &a.o, &st) != 0)
        goto out;
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
    nb_tensor_free(grad);
    nb_output_abort(&lo); /* nothing if committed or never opened */
    nb_output_abort(&go);
    return rc;
}
