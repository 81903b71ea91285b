/* op_samples.c - sample inputs for gradcheck from the cases each op's record holds as data. */
#include <stdio.h>
#include <string.h>

#include "op_samples.h"

/* PARAM: U[lo, hi) in f64, pushed to |x| >= away, shifted by -+offset on even/odd elements */
static nb_tensor *make_param(const nb_sample_input *s, nb_rng *r)
{
    nb_tensor *t = nb_tensor_rand(NB_F64, s->ndim, s->shape, r, s->lo, s->hi);
    if (!t)
        return NULL;
    double *v = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        if (s->away > 0)
            v[i] = v[i] >= 0 ? v[i] + s->away : v[i] - s->away;
        if (s->offset != 0)
            v[i] += i % 2 ? s->offset : -s->offset;
    }
    if (nb_tensor_set_requires_grad(t, true) != NB_OK) {
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}

/* PROBS: U[0, 1) rows of the last dim, each divided by its sum */
static nb_tensor *make_probs(const nb_sample_input *s, nb_rng *r)
{
    nb_tensor *t = nb_tensor_rand(NB_F64, s->ndim, s->shape, r, 0, 1);
    if (!t)
        return NULL;
    int64_t V = s->ndim ? s->shape[s->ndim - 1] : 1;
    double *v = t->data;
    for (int64_t o = 0; V > 0 && o < t->numel; o += V) {
        double sum = 0;
        for (int64_t j = 0; j < V; j++)
            sum += v[o + j];
        for (int64_t j = 0; j < V; j++)
            v[o + j] /= sum;
    }
    return t;
}

static nb_tensor *make_input(const nb_sample_input *s, nb_rng *r)
{
    nb_tensor *t = NULL;
    switch (s->kind) {
    case NB_SAMPLE_PARAM: t = make_param(s, r); break;
    case NB_SAMPLE_PROBS: t = make_probs(s, r); break;
    case NB_SAMPLE_RAND: t = nb_tensor_rand(NB_F64, s->ndim, s->shape, r, s->lo, s->hi); break;
    case NB_SAMPLE_ONES: t = nb_tensor_ones(s->dtype, s->ndim, s->shape); break;
    case NB_SAMPLE_TARGETS:
        t = nb_tensor_empty(NB_I64, s->ndim, s->shape);
        for (int64_t i = 0; t && i < t->numel; i++)
            ((int64_t *)t->data)[i] = (int64_t)nb_rng_below(r, (uint64_t)s->hi);
        break;
    default: return NULL;
    }
    for (int p = 0; t && p < s->n_pokes && p < NB_OP_MAX_POKES; p++) {
        int64_t at = s->pokes[p].at < 0 ? t->numel + s->pokes[p].at : s->pokes[p].at;
        if (at >= 0 && at < t->numel)
            nb_tensor_set(t, at, s->pokes[p].value);
    }
    return t;
}

static void describe(char *desc, size_t len, nb_tensor *const *in, int n, const char *note)
{
    size_t used = 0;
    desc[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        if (!in[i])
            continue;
        char s[64];
        used += (size_t)snprintf(desc + used, len - used, "%s%s", used ? " " : "",
                                 nb_shape_str(in[i], s, sizeof s));
    }
    if (note && *note && used < len)
        snprintf(desc + used, len - used, " %s", note);
}

nb_status nb_sample_make(const nb_op_info *op, int k, nb_rng *r, nb_tensor **in, int *n_inputs,
                         char *desc, size_t desc_len)
{
    for (int i = 0; i < NB_OP_MAX_INPUTS; i++)
        in[i] = NULL;
    *n_inputs = 0;
    if (!op || k < 0 || k >= op->n_cases)
        return nb_error(NB_ERR_ARG, "op %s has no sample case %d (it has %d)",
                        op ? op->name : "(NULL)", k, op ? op->n_cases : 0);
    const nb_op_case *c = &op->cases[k];
    for (int i = 0; i < c->n_inputs && i < NB_OP_MAX_INPUTS; i++) {
        if (c->in[i].kind == NB_SAMPLE_NONE)
            continue;
        in[i] = make_input(&c->in[i], r);
        if (!in[i]) {
            nb_status s = nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
            for (int j = 0; j < NB_OP_MAX_INPUTS; j++)
                nb_tensor_free(in[j]), in[j] = NULL;
            return nb_error(s, "op %s case %d: input %d: %s", op->name, k, i, nb_last_error());
        }
    }
    *n_inputs = c->n_inputs;
    describe(desc, desc_len, in, c->n_shown ? c->n_shown : c->n_inputs, c->note);
    return NB_OK;
}

void nb_sample_rng(nb_rng *r, uint64_t seed, const nb_op_info *op)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name */
    for (const char *p = op->name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    nb_rng_seed(r, seed ^ h);
}
