/* dropout.c - inverted dropout: y = x m / (1 - p), m_i ~ Bernoulli(1 - p). The scaled mask is
 * kept in the arena for backward: dx += dy m / (1 - p). */
#include <string.h>

#include "ops_internal.h"

static const nb_opdef op_dropout;

/* Draws the mask (one uniform per element, in order: the generator's stream is part of the
 * contract) and applies it; m holds 1 / (1 - p) or 0 in x's dtype. */
#define DROPOUT_FORWARD(T, Y, M, X, N, P, KEEP, R)                                                 \
    do {                                                                                           \
        T *restrict y_ = (Y), *restrict m_ = (M);                                                  \
        const T *restrict x_ = (X);                                                                \
        for (int64_t i = 0; i < (N); i++)                                                          \
            m_[i] = nb_rng_uniform(R) >= (P) ? (T)(KEEP) : (T)0;                                   \
        for (int64_t i = 0; i < (N); i++) /* product in double, rounded once */                    \
            y_[i] = (T)((double)x_[i] * (m_[i] != 0 ? (KEEP) : 0.0));                              \
    } while (0)

nb_tensor *nb_dropout(nb_graph *g, nb_tensor *x, double p, nb_rng *r)
{
    if (!nb_op_inputs_ok(g, "dropout", &x, 1) || nb_check_float_same("dropout", &x, 1) != NB_OK)
        return NULL;
    if (!(p >= 0.0 && p < 1.0)) {
        nb_error(NB_ERR_ARG, "dropout: p = %g outside [0, 1)", p);
        return NULL;
    }
    if (!r) {
        nb_error(NB_ERR_ARG, "dropout: generator is NULL");
        return NULL;
    }
    if (p == 0.0)
        return x;
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, x->ndim, x->shape);
    nb_tensor *mask = nb_graph_new_tensor(g, x->dtype, x->ndim, x->shape);
    if (!y || !mask)
        return NULL;
    double keep = 1.0 / (1.0 - p);
    if (x->dtype == NB_F64)
        DROPOUT_FORWARD(double, y->data, mask->data, x->data, x->numel, p, keep, r);
    else
        DROPOUT_FORWARD(float, y->data, mask->data, x->data, x->numel, p, keep, r);
    nb_node *n;
    if (nb_graph_record(g, &op_dropout, y, &x, 1, &n) != NB_OK)
        return NULL;
    if (n)
        n->aux[0] = mask;
    return y;
}

static nb_status dropout_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    const nb_tensor *mask = n->aux[0];
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    if (x->dtype == NB_F64) {
        double *restrict gd = gx;
        const double *restrict gy = y->grad, *restrict m = mask->data;
        for (int64_t i = 0; i < x->numel; i++)
            gd[i] += gy[i] * m[i];
    } else {
        float *restrict gd = gx;
        const float *restrict gy = y->grad, *restrict m = mask->data;
        for (int64_t i = 0; i < x->numel; i++)
            gd[i] += gy[i] * m[i];
    }
    return NB_OK;
}

/* the generator is re-seeded on every call, so each evaluation draws the same mask */
static nb_tensor *dropout_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                                const double *args)
{
    (void)op, (void)n_in;
    nb_rng r;
    nb_rng_seed(&r, 77);
    return nb_dropout(g, in[0], args[0], &r);
}

NB_UNARY_CASES(dropout_cases, -2, 2, 0, 0.5, 0.1);
static const nb_opdef op_dropout = {
    {"dropout", "x m / (1 - p), m ~ Bernoulli(1 - p)", 1, dropout_apply, NB_CASES(dropout_cases)},
    dropout_backward,
    0,
    NULL};

NB_OP_LIST(nb_dropout_ops, &op_dropout);
