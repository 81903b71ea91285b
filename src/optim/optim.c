/* optim.c - the optimisers (SGD with momentum, dampening, Nesterov, weight decay; Adam; AdamW):
 * configuration, state and checkpoint access; learning-rate schedules and global-norm clipping.
 * The step itself is in optim_step.c. See nabla/optim.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/optim.h"
#include "optim_internal.h"
#include "../tensor/tensor_internal.h"

nb_optim_config nb_optim_defaults(nb_optim_kind kind)
{
    nb_optim_config c;
    memset(&c, 0, sizeof c);
    if ((unsigned)kind > NB_OPTIM_ADAMW)
        nb_error(NB_ERR_ARG, "nb_optim_defaults: kind %d out of range [0, %d]", (int)kind,
                 (int)NB_OPTIM_ADAMW);
    c.kind = kind;
    c.lr = kind == NB_OPTIM_SGD ? 1e-2 : 1e-3;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = kind == NB_OPTIM_ADAMW ? 1e-2 : 0.0;
    return c;
}

bool nb_optim_kind_parse(const char *s, nb_optim_kind *kind)
{
    if (!s || !kind) {
        nb_error(NB_ERR_ARG, "nb_optim_kind_parse: %s is NULL", !s ? "s" : "kind");
        return false;
    }
    if (!strcmp(s, "sgd"))
        *kind = NB_OPTIM_SGD;
    else if (!strcmp(s, "adam"))
        *kind = NB_OPTIM_ADAM;
    else if (!strcmp(s, "adamw"))
        *kind = NB_OPTIM_ADAMW;
    else {
        nb_error(NB_ERR_ARG, "nb_optim_kind_parse: unknown optimiser '%s' (sgd, adam, adamw)", s);
        return false;
    }
    return true;
}

const char *nb_optim_kind_name(nb_optim_kind kind)
{
    if ((unsigned)kind > NB_OPTIM_ADAMW) {
        nb_error(NB_ERR_ARG, "nb_optim_kind_name: kind %d out of range [0, %d]", (int)kind,
                 (int)NB_OPTIM_ADAMW);
        return "invalid";
    }
    return kind == NB_OPTIM_SGD ? "sgd" : kind == NB_OPTIM_ADAM ? "adam" : "adamw";
}

static nb_status check_config(const nb_optim_config *c)
{
    if (c->kind != NB_OPTIM_SGD && c->kind != NB_OPTIM_ADAM && c->kind != NB_OPTIM_ADAMW)
        return nb_error(NB_ERR_ARG, "optimiser: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0.0) || isinf(c->lr))
        return nb_error(NB_ERR_ARG, "optimiser: learning rate %g must be finite and >= 0", c->lr);
    if (!(c->weight_decay >= 0.0) || isinf(c->weight_decay))
        return nb_error(NB_ERR_ARG, "optimiser: weight decay %g must be finite and >= 0",
                        c->weight_decay);
    if (c->kind == NB_OPTIM_SGD) {
        if (!(c->momentum >= 0.0 && c->momentum < 1.0))
            return nb_error(NB_ERR_ARG, "sgd: momentum %g outside [0, 1)", c->momentum);
        if (!(c->dampening >= 0.0 && c->dampening <= 1.0))
            return nb_error(NB_ERR_ARG, "sgd: dampening %g outside [0, 1]", c->dampening);
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            return nb_error(NB_ERR_ARG,
                            "sgd: Nesterov momentum needs momentum > 0 and dampening "
                            "0 (got %g, %g)",
                            c->momentum, c->dampening);
    } else {
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0) || !(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return nb_error(NB_ERR_ARG, "adam: betas (%g, %g) must be in [0, 1)", c->beta1,
                            c->beta2);
        if (!(c->eps >= 0.0) || isinf(c->eps))
            return nb_error(NB_ERR_ARG, "adam: eps %g must be finite and >= 0", c->eps);
    }
    return NB_OK;
}

nb_optim *nb_optim_new(const nb_optim_config *cfg, nb_tensor *const *params, int n)
{
    if (!cfg || (!params && n > 0) || n < 0) {
        if (n < 0)
            nb_error(NB_ERR_ARG, "nb_optim_new: n = %d, needs n >= 0", n);
        else
            nb_error(NB_ERR_ARG, "nb_optim_new: %s is NULL", !cfg ? "cfg" : "params");
        return NULL;
    }
    if (nb_error_in("nb_optim_new", check_config(cfg)) != NB_OK)
        return NULL;
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "parameter %d", i);
        if (nb_check_tensor("nb_optim_new", arg, params[i]) != NB_OK)
            return NULL;
    }
    for (int i = 0; i < n; i++)
        if ((params[i]->dtype != NB_F32 && params[i]->dtype != NB_F64) || !params[i]->grad ||
            !params[i]->requires_grad) {
            nb_error(NB_ERR_ARG,
                     "nb_optim_new: parameter %d must be an f32/f64 tensor with "
                     "requires_grad set",
                     i);
            return NULL;
        }
    nb_optim *o = calloc(1, sizeof *o);
    if (!o) {
        nb_error(NB_ERR_NOMEM, "out of memory allocating an optimiser");
        return NULL;
    }
    o->cfg = *cfg;
    o->n = n;
    o->n_bufs = cfg->kind == NB_OPTIM_SGD ? (cfg->momentum > 0 ? 1 : 0) : 2;
    o->params = calloc((size_t)(n ? n : 1), sizeof *o->params);
    o->state = calloc((size_t)(n ? n : 1) * NB_OPTIM_MAX_BUFS, sizeof *o->state);
    o->names = calloc((size_t)(n ? n : 1) * NB_OPTIM_MAX_BUFS, sizeof *o->names);
    if (!o->params || !o->state || !o->names) {
        nb_optim_free(o);
        nb_error(NB_ERR_NOMEM, "out of memory allocating optimiser state");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        o->params[i] = params[i];
        for (int b = 0; b < o->n_bufs; b++) {
            nb_tensor *s = nb_tensor_zeros(params[i]->dtype, params[i]->ndim, params[i]->shape);
            if (!s) {
                nb_optim_free(o);
                return NULL;
            }
            o->state[i * NB_OPTIM_MAX_BUFS + b] = s;
            snprintf(o->names[i * o->n_bufs + b], sizeof o->names[0], "%s.%d",
                     cfg->kind == NB_OPTIM_SGD ? "momentum_buffer"
                     : b == 0                  ? "exp_avg"
                                               : "exp_avg_sq",
                     i);
        }
    }
    if (nb_optim_chunks_init(o) != NB_OK) {
        nb_optim_free(o);
        return NULL;
    }
    return o;
}

void nb_optim_free(nb_optim *o)
{
    if (!o)
        return;
    if (o->state)
        for (int i = 0; i < o->n * NB_OPTIM_MAX_BUFS; i++)
            nb_tensor_free(o->state[i]);
    free(o->state);
    free(o->params);
    free(o->names);
    free(o->chunks);
    free(o->chunk_sq);
    free(o);
}

/* entry check of the accessors: a NULL optimiser records an error */
static bool optim_ok(const char *fn, const nb_optim *o)
{
    if (!o)
        nb_error(NB_ERR_ARG, "%s: o is NULL", fn);
    return o != NULL;
}

void nb_optim_set_lr(nb_optim *o, double lr)
{
    if (!optim_ok("nb_optim_set_lr", o))
        return;
    if (!(lr >= 0.0) || isinf(lr)) {
        nb_error(NB_ERR_ARG, "nb_optim_set_lr: learning rate %g must be finite and >= 0", lr);
        return;
    }
    o->cfg.lr = lr;
}
double nb_optim_lr(const nb_optim *o)
{
    return optim_ok("nb_optim_lr", o) ? o->cfg.lr : NAN;
}
const nb_optim_config *nb_optim_get_config(const nb_optim *o)
{
    return optim_ok("nb_optim_get_config", o) ? &o->cfg : NULL;
}
int64_t nb_optim_step_count(const nb_optim *o)
{
    return optim_ok("nb_optim_step_count", o) ? o->t : -1;
}
void nb_optim_set_step_count(nb_optim *o, int64_t t)
{
    if (!optim_ok("nb_optim_set_step_count", o))
        return;
    if (t < 0 || t > NB_OPTIM_MAX_STEPS) { /* the count is incremented: keep it far from overflow */
        nb_error(NB_ERR_RANGE, "nb_optim_set_step_count: step count %lld outside [0, %lld]",
                 (long long)t, (long long)NB_OPTIM_MAX_STEPS);
        return;
    }
    o->t = t;
    o->momentum_started = t > 0;
}

int nb_optim_state_count(const nb_optim *o)
{
    return optim_ok("nb_optim_state_count", o) ? o->n * o->n_bufs : 0;
}

nb_tensor *nb_optim_state_tensor(const nb_optim *o, int i, const char **name)
{
    if (!optim_ok("nb_optim_state_tensor", o))
        return NULL;
    if (i < 0 || i >= o->n * o->n_bufs) {
        nb_error(NB_ERR_RANGE, "nb_optim_state_tensor: index %d out of range [0, %d)", i,
                 o->n * o->n_bufs);
        return NULL;
    }
    int p = i / o->n_bufs, b = i % o->n_bufs;
    if (name)
        *name = o->names[i];
    return o->state[p * NB_OPTIM_MAX_BUFS + b];
}

nb_status nb_optim_state_check(const nb_optim *o, int i, const nb_tensor *src)
{
    const char *name = NULL;
    const nb_tensor *dst = nb_optim_state_tensor(o, i, &name);
    if (!dst)
        return nb_error(NB_ERR_ARG,
                        "nb_optim_state_check: no state tensor %d (the optimiser has %d)", i,
                        nb_optim_state_count(o));
    if (!src)
        return nb_error(NB_ERR_ARG, "nb_optim_state_check: state '%s': source is NULL", name);
    if (src->dtype != dst->dtype || !nb_shape_equal(src, dst) || !src->data) {
        char a[64], b[64];
        return nb_error(NB_ERR_FORMAT, "optimiser state '%s' is %s %s; the optimiser needs %s %s",
                        name, nb_dtype_name(src->dtype), nb_shape_str(src, a, sizeof a),
                        nb_dtype_name(dst->dtype), nb_shape_str(dst, b, sizeof b));
    }
    bool squares = !strncmp(name, "exp_avg_sq.", 11);
    for (int64_t k = 0; k < src->numel; k++) {
        double v = src->dtype == NB_F64 ? ((const double *)src->data)[k]
                                        : (double)((const float *)src->data)[k];
        if (!isfinite(v) || (squares && v < 0.0))
            return nb_error(
                NB_ERR_FORMAT, "optimiser state '%s' element %lld is %g; it must be finite%s", name,
                (long long)k, v, squares ? " and >= 0 (a running mean of squared gradients)" : "");
    }
    return NB_OK;
}

nb_status nb_optim_step(nb_optim *o)
{
    if (!o)
        return nb_error(NB_ERR_ARG, "nb_optim_step: o is NULL");
    nb_optim_step_run(o, NULL, false);
    return NB_OK;
}

nb_status nb_optim_step_zero_grad(nb_optim *o, double *grad_norm)
{
    if (!o)
        return nb_error(NB_ERR_ARG, "nb_optim_step_zero_grad: o is NULL");
    double sq = 0.0;
    nb_optim_step_run(o, grad_norm ? &sq : NULL, true);
    if (grad_norm)
        *grad_norm = sqrt(sq);
    return NB_OK;
}

void nb_optim_zero_grad(nb_optim *o)
{
    if (!optim_ok("nb_optim_zero_grad", o))
        return;
    for (int i = 0; o && i < o->n; i++)
        nb_tensor_zero_grad(o->params[i]);
}

/* ---- schedules ---- */

bool nb_sched_kind_parse(const char *s, nb_sched_kind *kind)
{
    if (!s || !kind) {
        nb_error(NB_ERR_ARG, "nb_sched_kind_parse: %s is NULL", !s ? "s" : "kind");
        return false;
    }
    if (!strcmp(s, "constant"))
        *kind = NB_SCHED_CONSTANT;
    else if (!strcmp(s, "step"))
        *kind = NB_SCHED_STEP;
    else if (!strcmp(s, "cosine"))
        *kind = NB_SCHED_COSINE;
    else {
        nb_error(NB_ERR_ARG, "nb_sched_kind_parse: unknown schedule '%s' (constant, step, cosine)",
                 s);
        return false;
    }
    return true;
}

double nb_schedule_lr(const nb_schedule *s, int64_t t)
{
    if (!s) {
        nb_error(NB_ERR_ARG, "nb_schedule_lr: s is NULL");
        return 0.0;
    }
    if ((unsigned)s->kind > NB_SCHED_COSINE || t < 0) {
        if (t < 0)
            nb_error(NB_ERR_RANGE, "nb_schedule_lr: step %lld must be >= 0", (long long)t);
        else
            nb_error(NB_ERR_ARG, "nb_schedule_lr: kind %d out of range [0, %d]", (int)s->kind,
                     (int)NB_SCHED_COSINE);
        return 0.0;
    }
    if (s->warmup > 0 && t < s->warmup)
        return s->lr * (double)(t + 1) / (double)s->warmup;
    int64_t u = t - (s->warmup > 0 ? s->warmup : 0);
    switch (s->kind) {
    case NB_SCHED_STEP:
        return s->lr * pow(s->gamma, (double)(s->step_size > 0 ? u / s->step_size : 0));
    case NB_SCHED_COSINE: {
        int64_t span = s->total_steps - (s->warmup > 0 ? s->warmup : 0);
        if (span <= 0)
            return s->lr;
        double frac = u >= span ? 1.0 : (double)u / (double)span;
        return s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * frac));
    }
    default: return s->lr;
    }
}

/* ---- clipping ---- */

nb_status nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double *total_norm)
{
    if (!(max_norm > 0.0))
        return nb_error(NB_ERR_ARG, "nb_clip_grad_norm: max_norm %g must be > 0", max_norm);
    if (n < 0 || (!params && n > 0))
        return n < 0 ? nb_error(NB_ERR_ARG, "nb_clip_grad_norm: n = %d, needs n >= 0", n)
                     : nb_error(NB_ERR_ARG, "nb_clip_grad_norm: params is NULL for n = %d", n);
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "parameter %d", i);
        nb_status st = nb_check_tensor("nb_clip_grad_norm", arg, params[i]);
        if (st != NB_OK)
            return st;
        if (params[i]->grad && params[i]->dtype != NB_F32 && params[i]->dtype != NB_F64 &&
            params[i]->dtype != NB_F16 && params[i]->dtype != NB_BF16)
            return nb_error(NB_ERR_DTYPE, "nb_clip_grad_norm: parameter %d has dtype %s", i,
                            nb_dtype_name(params[i]->dtype));
    }
    double sq = 0.0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *p = params[i];
        if (!p || !p->grad)
            continue;
        for (int64_t k = 0; k < p->numel; k++) {
            double g = nb_optim_get(p, p->grad, k);
            sq += g * g;
        }
    }
    double norm = sqrt(sq);
    if (total_norm)
        *total_norm = norm;
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (int i = 0; i < n; i++) {
            nb_tensor *p = params[i];
            if (!p || !p->grad)
                continue;
            for (int64_t k = 0; k < p->numel; k++)
                nb_optim_put(p, p->grad, k, nb_optim_get(p, p->grad, k) * coef);
        }
    return NB_OK;
}
