/* dropout.c - inverted dropout: y = x m / (1 - p), m_i ~ Bernoulli(1 - p). The scaled mask is
 * kept in the arena for backward: dx += dy m / (1 - p). */
#include <string.h>

#include "nabla/nn.h"
#include "ops_internal.h"

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
    for (int64_t i = 0; i < x->numel; i++) {
        double mi = nb_rng_uniform(r) >= p ? keep : 0.0;
        nb_tensor_set(mask, i, mi);
        nb_tensor_set(y, i, nb_tensor_get(x, i) * mi);
    }
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[NB_OPK_DROPOUT], y, &x, 1, &n) != NB_OK)
        return NULL;
    if (n)
        n->aux[0] = mask;
    return y;
}

nb_status nb_dropout_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    const nb_tensor *mask = n->aux[0];
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = (x->dtype == NB_F64 ? ((double *)y->grad)[i] : ((float *)y->grad)[i]) *
                   nb_tensor_get(mask, i);
        if (x->dtype == NB_F64)
            ((double *)gx)[i] += v;
        else
            ((float *)gx)[i] += (float)v;
    }
    return NB_OK;
}
