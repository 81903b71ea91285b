/* sgd.c - plain stochastic gradient descent: p -= lr (grad + weight_decay p). */
#include "nabla/optim.h"

nb_status nb_sgd_step(nb_tensor *const *params, int n_params, double lr, double weight_decay)
{
    if (!params && n_params > 0)
        return nb_error(NB_ERR_ARG, "nb_sgd_step: params is NULL");
    for (int i = 0; i < n_params; i++) {
        nb_tensor *p = params[i];
        if (!p || !p->grad)
            return nb_error(NB_ERR_ARG, "nb_sgd_step: parameter %d has no gradient", i);
        if (p->dtype == NB_F64) {
            double *w = p->data;
            const double *gr = p->grad;
            for (int64_t k = 0; k < p->numel; k++)
                w[k] -= lr * (gr[k] + weight_decay * w[k]);
        } else if (p->dtype == NB_F32) {
            float *w = p->data;
            const float *gr = p->grad;
            for (int64_t k = 0; k < p->numel; k++)
                w[k] -= (float)(lr * ((double)gr[k] + weight_decay * (double)w[k]));
        } else {
            return nb_error(NB_ERR_DTYPE, "nb_sgd_step: parameter %d is %s; f32/f64 only", i,
                            nb_dtype_name(p->dtype));
        }
    }
    return NB_OK;
}
