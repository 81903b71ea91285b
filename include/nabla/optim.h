/* nabla/optim.h - optimisers.
 *
 * Plain SGD for now: p -= lr * (grad + weight_decay * p), on f32/f64 parameters with gradients.
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

nb_status nb_sgd_step(nb_tensor *const *params, int n_params, double lr, double weight_decay);

#ifdef __cplusplus
}
#endif
#endif
