/* nabla/gradcheck.h - checking gradients by central differences in float64.
 *
 * f builds a tensor from the inputs on a graph. nb_gradcheck reduces it to a scalar
 * s = sum_i r_i f_i with a fixed random vector r (so every output element is checked), runs
 * backward with upstream r, and compares each input's analytic gradient with
 * (s(x + eps) - s(x - eps)) / (2 eps) computed element by element.
 *
 * relative error of an element = |analytic - numeric| / max(|analytic|, |numeric|, rel_floor).
 * The floor (default 1e-3) keeps elements whose true gradient is 0 from dividing by ~0.
 */
#ifndef NABLA_GRADCHECK_H
#define NABLA_GRADCHECK_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef nb_tensor *(*nb_gradcheck_fn)(nb_graph *g, nb_tensor *const *inputs, int n_inputs,
                                      void *ctx);

typedef struct nb_gradcheck_opts {
    double eps;       /* step, default 1e-6 */
    double rel_floor; /* default 1e-3 */
    uint64_t seed;    /* seed of the projection r, default 1 */
} nb_gradcheck_opts;

typedef struct nb_gradcheck_result {
    double max_abs_err;
    double max_rel_err;
    int worst_input;       /* input index of the element with the largest relative error */
    int64_t worst_index;   /* flat index of that element */
    double worst_analytic; /* its analytic and numeric gradients */
    double worst_numeric;
    int64_t n_checked; /* elements compared */
} nb_gradcheck_result;

/* Inputs must be f64; those with requires_grad are checked (if none has it, all float inputs
 * are). opts may be NULL. The inputs' values are restored and their grads left zeroed.
 * NB_ERR_ARG for a NULL f, inputs or res, n_inputs outside [1, 64] or a malformed input (NULL
 * inputs are allowed: optional slots such as a mask); NB_ERR_STATE if f returns NULL. */
nb_status nb_gradcheck(nb_gradcheck_fn f, nb_tensor *const *inputs, int n_inputs, void *ctx,
                       const nb_gradcheck_opts *opts, nb_gradcheck_result *res);

#ifdef __cplusplus
}
#endif
#endif
