/* gradcheck.c - analytic gradients against central differences, in float64.
 *
 * s(x) = sum_i r_i f(x)_i with a fixed random r in [-1, 1). Analytic: backward with upstream r.
 * Numeric, per element x_k: (s(x + eps e_k) - s(x - eps e_k)) / (2 eps), evaluated with the
 * graph in no-grad mode. Truncation error is O(eps^2 f'''), rounding error O(u |s| / eps) with
 * u = 2^-53; at eps = 1e-6 both are ~1e-10 for inputs and outputs of order 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "nabla/gradcheck.h"
#include "graph_internal.h"

static nb_status eval_projection(nb_gradcheck_fn f, nb_graph *g, nb_tensor *const *in, int n,
                                 void *ctx, const double *r, int64_t m, double *out)
{
    nb_graph_reset(g);
    bool prev = nb_graph_set_grad_enabled(g, false);
    nb_tensor *y = f(g, in, n, ctx);
    nb_graph_set_grad_enabled(g, prev);
    if (!y)
        return nb_last_status() != NB_OK ? nb_last_status()
                                         : nb_error(NB_ERR_STATE, "nb_gradcheck: f returned NULL");
    if (y->numel != m)
        return nb_error(NB_ERR_STATE, "gradcheck: f changed its output size (%lld -> %lld)",
                        (long long)m, (long long)y->numel);
    double s = 0.0;
    for (int64_t i = 0; i < m; i++)
        s += r[i] * ((const double *)y->data)[i];
    *out = s;
    return NB_OK;
}

nb_status nb_gradcheck(nb_gradcheck_fn f, nb_tensor *const *inputs, int n_inputs, void *ctx,
                       const nb_gradcheck_opts *opts, nb_gradcheck_result *res)
{
    if (!f || !inputs || !res)
        return nb_error(NB_ERR_ARG, "nb_gradcheck: %s is NULL",
                        !f        ? "f"
                        : !inputs ? "inputs"
                                  : "res");
    if (n_inputs <= 0 || n_inputs > 64)
        return nb_error(NB_ERR_ARG, "nb_gradcheck: n_inputs = %d, needs 1 to 64", n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "input %d", i);
        nb_status s = inputs[i] ? nb_check_tensor("nb_gradcheck", arg, inputs[i]) : NB_OK;
        if (s != NB_OK) /* NULL inputs are allowed: optional slots (a mask, weights) */
            return s;
    }
    double eps = opts && opts->eps > 0 ? opts->eps : 1e-6;
    double floor_ = opts && opts->rel_floor > 0 ? opts->rel_floor : 1e-3;
    uint64_t seed = opts && opts->seed ? opts->seed : 1;
    memset(res, 0, sizeof *res);
    res->worst_input = -1;

    bool any_req = false;
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && inputs[i]->requires_grad)
            any_req = true;
    bool checked[NB_OP_MAX_INPUTS * 4] = {false};
    if (n_inputs > (int)(sizeof checked / sizeof checked[0]))
        return nb_error(NB_ERR_ARG, "nb_gradcheck: at most %d inputs",
                        (int)(sizeof checked / sizeof checked[0]));
    for (int i = 0; i < n_inputs; i++) {
        nb_tensor *x = inputs[i];
        if (!x || !nb_dtype_is_float(x->dtype))
            continue;
        if (any_req && !x->requires_grad)
            continue;
        if (x->dtype != NB_F64)
            return nb_error(NB_ERR_DTYPE, "nb_gradcheck: input %d is %s; gradcheck runs in f64", i,
                            nb_dtype_name(x->dtype));
        if (!x->requires_grad && nb_tensor_set_requires_grad(x, true) != NB_OK)
            return nb_last_status();
        checked[i] = true;
    }

    nb_graph *g = nb_graph_new();
    if (!g)
        return nb_last_status();
    nb_status s = NB_OK;
    double *r = NULL, *analytic = NULL;
    nb_tensor *y = f(g, inputs, n_inputs, ctx);
    if (!y) {
        s = nb_last_status() != NB_OK ? nb_last_status()
                                      : nb_error(NB_ERR_STATE, "nb_gradcheck: f returned NULL");
        goto out;
    }
    if (y->dtype != NB_F64) {
        s = nb_error(NB_ERR_DTYPE, "nb_gradcheck: output is %s; gradcheck runs in f64",
                     nb_dtype_name(y->dtype));
        goto out;
    }
    int64_t m = y->numel;
    r = malloc(sizeof(double) * (size_t)(m ? m : 1));
    if (!r) {
        s = nb_error(NB_ERR_NOMEM, "gradcheck: out of memory");
        goto out;
    }
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    for (int64_t i = 0; i < m; i++)
        r[i] = 2.0 * nb_rng_uniform(&rng) - 1.0;
    for (int i = 0; i < n_inputs; i++)
        if (checked[i])
            nb_tensor_zero_grad(inputs[i]);
    if (!y->requires_grad) {
        s = nb_error(NB_ERR_STATE, "nb_gradcheck: the output does not depend on any checked input");
        goto out;
    }
    nb_tensor up;
    nb_tensor_view(&up, NB_F64, y->ndim, y->shape, r);
    s = nb_backward(g, y, &up);
    if (s != NB_OK)
        goto out;

    for (int i = 0; i < n_inputs && s == NB_OK; i++) {
        if (!checked[i])
            continue;
        nb_tensor *x = inputs[i];
        free(analytic);
        analytic = malloc(sizeof(double) * (size_t)(x->numel ? x->numel : 1));
        if (!analytic) {
            s = nb_error(NB_ERR_NOMEM, "gradcheck: out of memory");
            break;
        }
        memcpy(analytic, x->grad, sizeof(double) * (size_t)x->numel);
        double *xv = x->data;
        for (int64_t k = 0; k < x->numel; k++) {
            double v = xv[k], sp, sm;
            xv[k] = v + eps;
            s = eval_projection(f, g, inputs, n_inputs, ctx, r, m, &sp);
            xv[k] = v - eps;
            if (s == NB_OK)
                s = eval_projection(f, g, inputs, n_inputs, ctx, r, m, &sm);
            xv[k] = v;
            if (s != NB_OK)
                break;
            double num = (sp - sm) / (2.0 * eps), an = analytic[k];
            double abs_err = fabs(an - num);
            double denom = fmax(fmax(fabs(an), fabs(num)), floor_);
            double rel = abs_err / denom;
            if (isnan(rel))
                rel = INFINITY;
            res->n_checked++;
            if (abs_err > res->max_abs_err || isnan(abs_err))
                res->max_abs_err = isnan(abs_err) ? INFINITY : abs_err;
            if (rel > res->max_rel_err || res->worst_input < 0) {
                res->max_rel_err = rel;
                res->worst_input = i;
                res->worst_index = k;
                res->worst_analytic = an;
                res->worst_numeric = num;
            }
        }
    }
out:
    for (int i = 0; i < n_inputs; i++)
        if (checked[i])
            nb_tensor_zero_grad(inputs[i]);
    free(analytic);
    free(r);
    nb_graph_free(g);
    return s;
}
