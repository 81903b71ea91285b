/* gradcheck.c - analytic gradients against central differences, in float64.
 *
 * s(x) = sum_i r_i f(x)_i with a fixed random r in [-1, 1). Analytic: backward with upstream r.
 * Numeric, per element x_k: (s(x + eps e_k) - s(x - eps e_k)) / (2 eps), evaluated with the
 * graph in no-grad mode. Truncation error is O(eps^2 f'''), rounding error O(u |s| / eps) with
 * u = 2^-53; at eps = 1e-6 both are ~1e-10 for inputs and outputs of order 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* index -> coordinates in x's shape (row-major) */
static void fill_element(nb_gradcheck_element *e, int input, const nb_tensor *x, int64_t k,
                         double an, double num, double abs_err, double rel)
{
    e->input = input;
    e->index = k;
    e->ndim = x->ndim;
    int64_t rest = k;
    for (int d = x->ndim - 1; d >= 0; d--) {
        int64_t n = x->shape[d] > 0 ? x->shape[d] : 1;
        e->coords[d] = rest % n;
        rest /= n;
    }
    e->analytic = an;
    e->numeric = num;
    e->abs_err = abs_err;
    e->rel_err = rel;
}

/* keeps res->worst sorted by rel_err (largest first), at most k entries */
static void keep_worst(nb_gradcheck_result *res, int k, const nb_gradcheck_element *e)
{
    if (k <= 0)
        return;
    int n = res->n_worst;
    if (n == k && !(e->rel_err > res->worst[n - 1].rel_err))
        return;
    int pos = n < k ? n : k - 1;
    while (pos > 0 && e->rel_err > res->worst[pos - 1].rel_err) {
        res->worst[pos] = res->worst[pos - 1];
        pos--;
    }
    res->worst[pos] = *e;
    if (n < k)
        res->n_worst++;
}

/* One run: the function, its inputs (the caller's, or f64 copies), what is checked. */
typedef struct gc_run {
    nb_gradcheck_fn f;
    void *ctx;
    int n;
    nb_tensor *inputs[NB_GRADCHECK_MAX_INPUTS];
    nb_tensor *copies[NB_GRADCHECK_MAX_INPUTS];
    bool checked[NB_GRADCHECK_MAX_INPUTS];
    double eps, floor_;
    int k_worst;
    nb_graph *g;
    double *r; /* the projection, one weight per output element */
    int64_t m; /* output elements */
} gc_run;

static nb_status check_args(nb_gradcheck_fn f, nb_tensor *const *inputs, int n_inputs,
                            nb_gradcheck_result *res)
{
    if (!f || !inputs || !res)
        return nb_error(NB_ERR_ARG, "nb_gradcheck: %s is NULL",
                        !f        ? "f"
                        : !inputs ? "inputs"
                                  : "res");
    if (n_inputs <= 0 || n_inputs > NB_GRADCHECK_MAX_INPUTS)
        return nb_error(NB_ERR_ARG, "nb_gradcheck: n_inputs = %d, needs 1 to %d", n_inputs,
                        NB_GRADCHECK_MAX_INPUTS);
    for (int i = 0; i < n_inputs; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "input %d", i);
        nb_status s = inputs[i] ? nb_check_tensor("nb_gradcheck", arg, inputs[i]) : NB_OK;
        if (s != NB_OK) /* NULL inputs are allowed: optional slots (a mask, weights) */
            return s;
    }
    return NB_OK;
}

/* Which inputs are checked (those requiring grad, or every float one if none does), and the
 * tensors f runs on: f64 copies of the non-f64 float ones when promote is set. */
static nb_status prepare_inputs(gc_run *run, nb_tensor *const *inputs_in, bool promote,
                                nb_gradcheck_result *res)
{
    bool any_req = false;
    for (int i = 0; i < run->n; i++)
        if (inputs_in[i] && inputs_in[i]->requires_grad)
            any_req = true;
    for (int i = 0; i < run->n; i++) {
        nb_tensor *x = inputs_in[i];
        run->inputs[i] = x;
        if (!x || !nb_dtype_is_float(x->dtype))
            continue;
        bool check = !any_req || x->requires_grad;
        if (x->dtype != NB_F64) {
            if (!promote) {
                if (check)
                    return nb_error(NB_ERR_DTYPE,
                                    "nb_gradcheck: input %d is %s; gradcheck runs in f64 (set "
                                    "opts.promote_f32 to check the function on f64 copies)",
                                    i, nb_dtype_name(x->dtype));
                continue;
            }
            run->copies[i] = nb_tensor_to_dtype(x, NB_F64);
            if (!run->copies[i])
                return nb_last_status();
            run->inputs[i] = run->copies[i];
            res->per_input[i].promoted = check;
            res->promoted |= check;
        }
        if (!check)
            continue;
        if (!run->inputs[i]->requires_grad &&
            nb_tensor_set_requires_grad(run->inputs[i], true) != NB_OK)
            return nb_last_status();
        run->checked[i] = true;
        res->per_input[i].checked = true;
        res->per_input[i].worst.input = i;
    }
    return NB_OK;
}

/* Forward once, draw the projection r, backward with upstream r: the analytic gradients. */
static nb_status run_analytic(gc_run *run, uint64_t seed)
{
    /* zeroed before the forward, as a training step does: an op may add its inputs' gradients
     * during the forward (nb_lce_opts.leaf_grads_in_forward) */
    for (int i = 0; i < run->n; i++)
        if (run->checked[i])
            nb_tensor_zero_grad(run->inputs[i]);
    nb_tensor *y = run->f(run->g, run->inputs, run->n, run->ctx);
    if (!y)
        return nb_last_status() != NB_OK ? nb_last_status()
                                         : nb_error(NB_ERR_STATE, "nb_gradcheck: f returned NULL");
    if (y->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE, "nb_gradcheck: output is %s; gradcheck runs in f64",
                        nb_dtype_name(y->dtype));
    run->m = y->numel;
    run->r = malloc(sizeof(double) * (size_t)(run->m ? run->m : 1));
    if (!run->r)
        return nb_error(NB_ERR_NOMEM, "gradcheck: out of memory");
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    for (int64_t i = 0; i < run->m; i++)
        run->r[i] = 2.0 * nb_rng_uniform(&rng) - 1.0;
    if (!y->requires_grad)
        return nb_error(NB_ERR_STATE,
                        "nb_gradcheck: the output does not depend on any checked input");
    nb_tensor up;
    nb_tensor_view(&up, NB_F64, y->ndim, y->shape, run->r);
    return nb_backward(run->g, y, &up);
}

/* Folds one element's comparison into the result. */
static void record(gc_run *run, nb_gradcheck_result *res, int i, int64_t k, double an, double num)
{
    const nb_tensor *x = run->inputs[i];
    nb_gradcheck_input_result *pr = &res->per_input[i];
    double abs_err = fabs(an - num);
    double rel = abs_err / fmax(fmax(fabs(an), fabs(num)), run->floor_);
    if (isnan(rel))
        rel = INFINITY;
    if (isnan(abs_err))
        abs_err = INFINITY;
    nb_gradcheck_element e;
    fill_element(&e, i, x, k, an, num, abs_err, rel);
    res->n_checked++;
    pr->n_checked++;
    if (abs_err > res->max_abs_err)
        res->max_abs_err = abs_err;
    if (abs_err > pr->max_abs_err)
        pr->max_abs_err = abs_err;
    if (rel > pr->max_rel_err || pr->n_checked == 1) {
        pr->max_rel_err = rel;
        pr->worst = e;
    }
    if (rel > res->max_rel_err || res->worst_input < 0) {
        res->max_rel_err = rel;
        res->worst_input = i;
        res->worst_index = k;
        res->worst_analytic = an;
        res->worst_numeric = num;
        res->worst_ndim = e.ndim;
        memcpy(res->worst_coords, e.coords, sizeof e.coords);
    }
    keep_worst(res, run->k_worst, &e);
}

/* Central differences over every element of checked input i, against its analytic gradient. */
static nb_status check_input(gc_run *run, nb_gradcheck_result *res, int i)
{
    nb_tensor *x = run->inputs[i];
    double *analytic = malloc(sizeof(double) * (size_t)(x->numel ? x->numel : 1));
    if (!analytic)
        return nb_error(NB_ERR_NOMEM, "gradcheck: out of memory");
    memcpy(analytic, x->grad, sizeof(double) * (size_t)x->numel);
    double *xv = x->data, eps = run->eps;
    nb_status s = NB_OK;
    for (int64_t k = 0; k < x->numel && s == NB_OK; k++) {
        double v = xv[k], sp, sm;
        xv[k] = v + eps;
        s = eval_projection(run->f, run->g, run->inputs, run->n, run->ctx, run->r, run->m, &sp);
        xv[k] = v - eps;
        if (s == NB_OK)
            s = eval_projection(run->f, run->g, run->inputs, run->n, run->ctx, run->r, run->m, &sm);
        xv[k] = v;
        if (s == NB_OK)
            record(run, res, i, k, analytic[k], (sp - sm) / (2.0 * eps));
    }
    free(analytic);
    return s;
}

nb_status nb_gradcheck(nb_gradcheck_fn f, nb_tensor *const *inputs_in, int n_inputs, void *ctx,
                       const nb_gradcheck_opts *opts, nb_gradcheck_result *res)
{
    nb_status s = check_args(f, inputs_in, n_inputs, res);
    if (s != NB_OK)
        return s;
    gc_run run = {.f = f, .ctx = ctx, .n = n_inputs};
    run.eps = opts && opts->eps > 0 ? opts->eps : 1e-6;
    run.floor_ = opts && opts->rel_floor > 0 ? opts->rel_floor : 1e-3;
    uint64_t seed = opts && opts->seed ? opts->seed : 1;
    run.k_worst = opts ? opts->k_worst : 0;
    if (run.k_worst < 0 || run.k_worst > NB_GRADCHECK_MAX_WORST)
        return nb_error(NB_ERR_ARG, "nb_gradcheck: k_worst %d outside [0, %d]", run.k_worst,
                        NB_GRADCHECK_MAX_WORST);
    memset(res, 0, sizeof *res);
    res->worst_input = -1;
    res->n_inputs = n_inputs;
    s = prepare_inputs(&run, inputs_in, opts && opts->promote_f32, res);
    if (s == NB_OK && !(run.g = nb_graph_new()))
        s = nb_last_status();
    if (s == NB_OK)
        s = run_analytic(&run, seed);
    for (int i = 0; i < n_inputs && s == NB_OK; i++)
        if (run.checked[i])
            s = check_input(&run, res, i);
    for (int i = 0; i < n_inputs && run.g; i++) /* the gradients this run accumulated */
        if (run.checked[i])
            nb_tensor_zero_grad(run.inputs[i]);
    for (int i = 0; i < n_inputs; i++)
        nb_tensor_free(run.copies[i]);
    free(run.r);
    nb_graph_free(run.g);
    return s;
}

char *nb_gradcheck_coords_str(const nb_gradcheck_element *e, char *buf, size_t len)
{
    if (!buf || len == 0) {
        nb_error(NB_ERR_ARG, "nb_gradcheck_coords_str: %s", !buf ? "buf is NULL" : "len is 0");
        return buf;
    }
    if (!e) {
        nb_error(NB_ERR_ARG, "nb_gradcheck_coords_str: e is NULL");
        snprintf(buf, len, "[]");
        return buf;
    }
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; e && d < e->ndim && d < NB_MAX_DIMS && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", d ? ", " : "",
                                 (long long)e->coords[d]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

void nb_gradcheck_print(FILE *out, const nb_gradcheck_result *res, const char *const *names,
                        double rel_bar)
{
    if (!out || !res) {
        nb_error(NB_ERR_ARG, "nb_gradcheck_print: %s is NULL", !out ? "out" : "res");
        return;
    }
    char c[96], nm[64];
    for (int i = 0; i < res->n_inputs && i < NB_GRADCHECK_MAX_INPUTS; i++) {
        const nb_gradcheck_input_result *p = &res->per_input[i];
        if (!p->checked)
            continue;
        if (names && names[i])
            snprintf(nm, sizeof nm, "%s", names[i]);
        else
            snprintf(nm, sizeof nm, "input %d", i);
        fprintf(out,
                "%-10s %6lld elements  max abs err %.3e  max rel err %.3e  worst at %s: "
                "analytic %.10g numeric %.10g%s%s%s\n",
                nm, (long long)p->n_checked, p->max_abs_err, p->max_rel_err,
                nb_gradcheck_coords_str(&p->worst, c, sizeof c), p->worst.analytic,
                p->worst.numeric, p->promoted ? " (f32 promoted to f64)" : "",
                rel_bar > 0 ? "  " : "",
                rel_bar > 0 ? (p->max_rel_err < rel_bar ? "ok" : "FAIL") : "");
    }
    if (res->n_worst > 0) {
        fprintf(out, "%d worst element%s:\n", res->n_worst, res->n_worst == 1 ? "" : "s");
        for (int j = 0; j < res->n_worst; j++) {
            const nb_gradcheck_element *e = &res->worst[j];
            if (names && e->input >= 0 && e->input < res->n_inputs && names[e->input])
                snprintf(nm, sizeof nm, "%s", names[e->input]);
            else
                snprintf(nm, sizeof nm, "input %d", e->input);
            fprintf(out, "  %-10s %-14s analytic %16.10g  numeric %16.10g  rel err %.3e\n", nm,
                    nb_gradcheck_coords_str(e, c, sizeof c), e->analytic, e->numeric, e->rel_err);
        }
    }
    if (res->promoted)
        fprintf(out, "note: f32 inputs were checked on f64 copies: this verifies the derivation "
                     "(backward is the derivative of forward), not the rounding of f32 "
                     "arithmetic.\n");
}
