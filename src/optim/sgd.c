/* sgd.c - plain stochastic gradient descent: p -= lr (grad + weight_decay p). */
#include <math.h>
#include <stdio.h>

#include "nabla/optim.h"
#include "../ops/ops_internal.h"
#include "../tensor/tensor_internal.h"

/* w [n] -= lr (g + weight_decay w) for f32 storage, in double per element and rounded once (as
 * the loop has always done): no branch, so with NB_VECTOR_CLONES a vector loop. */
NB_VECTOR_CLONES static void sgd_f32(float *restrict w, const float *restrict g, int64_t n,
                                     double lr, double weight_decay)
{
    for (int64_t k = 0; k < n; k++)
        w[k] -= (float)(lr * ((double)g[k] + weight_decay * (double)w[k]));
}

nb_status nb_sgd_step(nb_tensor *const *params, int n_params, double lr, double weight_decay)
{
    if (n_params < 0)
        return nb_error(NB_ERR_ARG, "nb_sgd_step: n_params = %d, needs >= 0", n_params);
    if (!params && n_params > 0)
        return nb_error(NB_ERR_ARG, "nb_sgd_step: params is NULL");
    if (!isfinite(lr) || !isfinite(weight_decay))
        return nb_error(NB_ERR_ARG, "nb_sgd_step: lr %g and weight_decay %g must be finite", lr,
                        weight_decay);
    for (int i = 0; i < n_params; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "parameter %d", i);
        nb_status s = nb_check_tensor("nb_sgd_step", arg, params[i]);
        if (s != NB_OK)
            return s;
    }
    for (int i = 0; i < n_params; i++) {
        nb_tensor *p = params[i];
        if (!p->grad)
            return nb_error(NB_ERR_ARG, "nb_sgd_step: parameter %d has no gradient", i);
        if (p->dtype == NB_F64) {
            double *w = p->data;
            const double *gr = p->grad;
            for (int64_t k = 0; k < p->numel; k++)
                w[k] -= lr * (gr[k] + weight_decay * w[k]);
        } else if (p->dtype == NB_F32) {
            sgd_f32(p->data, p->grad, p->numel, lr, weight_decay);
        } else {
            return nb_error(NB_ERR_DTYPE, "nb_sgd_step: parameter %d is %s; f32/f64 only", i,
                            nb_dtype_name(p->dtype));
        }
    }
    return NB_OK;
}
