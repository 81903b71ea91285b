/* xent_head.c - `nabla xent --input X.npy --classifier W.npy [--bias b.npy]`: the cross-entropy
 * of the logits x W^T + b computed by the fused linear + cross-entropy head (nabla/lce.h),
 * which never holds the logits; the gradients of x, W and b on request. */
#include <stdio.h>
#include <string.h>

#include "data/npy_write.h"
#include "tensor/fileio.h"
#include "xent_head.h"

static nb_tensor *load(const char *what, const char *path)
{
    nb_tensor *t = nb_npy_load(path);
    if (!t)
        fprintf(stderr, "nabla xent: %s %s: %s\n", what, path, nb_last_error());
    return t;
}

/* x, W, b as f32 or f64 (x's dtype when it is one of them, else f32), requiring grad */
static nb_tensor *as_param(nb_tensor *raw, nb_dtype dt)
{
    if (!raw)
        return NULL;
    nb_tensor *t = raw->dtype == dt ? raw : nb_tensor_to_dtype(raw, dt);
    if (t != raw)
        nb_tensor_free(raw);
    if (t && nb_tensor_set_requires_grad(t, true) != NB_OK) {
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}

/* the gradient of t as a tensor of its own (f32/f64) for writing */
static nb_tensor *grad_of(const nb_tensor *t)
{
    return nb_tensor_from_buffer(t->dtype, t->ndim, t->shape, t->grad);
}

/* writes every requested output (all opened and written before any is put in place) */
static int write_outputs(const nb_xent_head_args *a, nb_tensor *const *vals)
{
    const char *paths[4] = {a->loss_out, a->grad_out, a->grad_w_out, a->grad_b_out};
    const char *names[4] = {"--loss-out", "--grad-out", "--grad-classifier-out", "--grad-bias-out"};
    nb_output outs[4];
    memset(outs, 0, sizeof outs);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        if (paths[i] && (nb_output_open(&outs[i], paths[i], "npy") != NB_OK ||
                         nb_npy_write_output(&outs[i], vals[i]) != NB_OK)) {
            fprintf(stderr, "nabla xent: %s %s: %s\n", names[i], paths[i], nb_last_error());
            rc = 1;
        }
    for (int i = 0; i < 4 && rc == 0; i++)
        if (paths[i] && nb_output_commit(&outs[i]) != NB_OK) {
            fprintf(stderr, "nabla xent: %s %s: %s\n", names[i], paths[i], nb_last_error());
            rc = 1;
        }
    for (int i = 0; i < 4; i++)
        nb_output_abort(&outs[i]);
    return rc;
}

static void summary(const nb_xent_head_args *a, const nb_tensor *loss, const nb_xent_stats *st,
                    int64_t rows, int64_t V)
{
    bool dash = (a->grad_out && !strcmp(a->grad_out, "-")) ||
                (a->grad_w_out && !strcmp(a->grad_w_out, "-")) ||
                (a->grad_b_out && !strcmp(a->grad_b_out, "-"));
    FILE *txt = dash ? stderr : stdout;
    if (a->o.reduction == NB_REDUCTION_NONE)
        fprintf(txt, "loss (sum of per-token losses) %.9g\n", st->loss_sum);
    else
        fprintf(txt, "loss (%s) %.9g\n", a->o.reduction == NB_REDUCTION_SUM ? "sum" : "mean",
                nb_tensor_get(loss, 0));
    fprintf(txt, "tokens %lld real of %lld, weight sum %.9g, V %lld (fused linear head)\n",
            (long long)st->n_tokens, (long long)rows, st->weight_sum, (long long)V);
}

int nb_xent_head_run(const nb_xent_head_args *a, const nb_tensor *targets, const nb_tensor *mask,
                     const nb_tensor *weight)
{
    nb_tensor *xr = load("input", a->input);
    nb_dtype dt = xr && xr->dtype == NB_F64 ? NB_F64 : NB_F32;
    nb_tensor *x = as_param(xr, dt), *w = NULL, *b = NULL, *up = NULL;
    nb_tensor *vals[4] = {NULL, NULL, NULL, NULL};
    nb_graph *g = nb_graph_new();
    int rc = 1;
    if (!x || !g || !(w = as_param(load("classifier", a->classifier), dt)))
        goto out;
    if (a->bias && !(b = as_param(load("bias", a->bias), dt)))
        goto out;
    nb_lce_opts o = nb_lce_defaults();
    o.xent = a->o;
    o.xent.mask = mask;
    o.xent.weight = weight;
    nb_xent_stats st;
    o.xent.stats = &st;
    o.softcap = a->softcap;
    nb_tensor *loss = nb_linear_cross_entropy(g, x, w, b, targets, &o);
    if (!loss)
        goto fail;
    if (a->grad_out || a->grad_w_out || a->grad_b_out) {
        if (loss->ndim && !(up = nb_tensor_ones(loss->dtype, loss->ndim, loss->shape)))
            goto fail;
        if (nb_backward(g, loss, up) != NB_OK)
            goto fail;
    }
    vals[0] = nb_tensor_clone(loss);
    if (!vals[0] || (a->grad_out && !(vals[1] = grad_of(x))) ||
        (a->grad_w_out && !(vals[2] = grad_of(w))) ||
        (a->grad_b_out && b && !(vals[3] = grad_of(b))))
        goto fail;
    if (write_outputs(a, vals) != 0)
        goto out;
    if (!a->loss_out)
        summary(a, loss, &st, w->shape[0] ? targets->numel : 0, w->shape[0]);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "nabla xent: %s\n", nb_last_error());
out:
    for (int i = 0; i < 4; i++)
        nb_tensor_free(vals[i]);
    nb_tensor_free(up);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
    return rc;
}
