/* nabla/gradcheck.h - checking gradients by central differences in float64.
 *
 * f builds a tensor from the inputs on a graph. nb_gradcheck reduces it to a scalar
 * s = sum_i r_i f_i with a fixed random vector r (so every output element is checked), runs
 * backward with upstream r, and compares each input's analytic gradient with
 * (s(x + eps) - s(x - eps)) / (2 eps) computed element by element.
 *
 * relative error of an element = |analytic - numeric| / max(|analytic|, |numeric|, rel_floor).
 * The floor (default 1e-3) keeps elements whose true gradient is 0 from dividing by ~0.
 *
 * It says where: for every input the largest absolute and relative error and the worst element
 * by its coordinates ([row, col], not a flat index) with its analytic and numeric values, and
 * with opts.k_worst the k worst elements over all inputs. nb_gradcheck_print writes all that.
 *
 * f32 functions: with opts.promote_f32 the f32 inputs are copied to f64 and f runs on the
 * copies. The caveat: this checks the DERIVATION (that backward implements the derivative of
 * forward), not the f32 arithmetic: in f32 central differences are useless (eps^2 truncation
 * against u/eps rounding with u = 6e-8 leaves ~1e-3 relative noise), and an f32 backward that is
 * right in f64 can still lose digits to cancellation in f32. f must compute in its inputs'
 * dtype (nabla's ops and nb_custom_op functions written with nb_tensor_get/set do).
 */
#ifndef NABLA_GRADCHECK_H
#define NABLA_GRADCHECK_H

#include <stdio.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef nb_tensor *(*nb_gradcheck_fn)(nb_graph *g, nb_tensor *const *inputs, int n_inputs,
                                      void *ctx);

#define NB_GRADCHECK_MAX_INPUTS 16 /* inputs nb_gradcheck takes */
#define NB_GRADCHECK_MAX_WORST 32  /* largest k_worst */

typedef struct nb_gradcheck_opts {
    double eps;       /* step, default 1e-6 */
    double rel_floor; /* default 1e-3 */
    uint64_t seed;    /* seed of the projection r, default 1 */
    int k_worst;      /* 0..NB_GRADCHECK_MAX_WORST: keep the k worst elements in res->worst */
    bool promote_f32; /* check f32 inputs on f64 copies (see the caveat above); default: refuse */
} nb_gradcheck_opts;

/* One compared element: input index, flat index and coordinates in that input's shape. */
typedef struct nb_gradcheck_element {
    int input;
    int64_t index;
    int ndim;
    int64_t coords[NB_MAX_DIMS];
    double analytic, numeric;
    double abs_err, rel_err;
} nb_gradcheck_element;

typedef struct nb_gradcheck_input_result {
    bool checked;      /* false: not compared (not float, or not requiring grad) */
    bool promoted;     /* checked on an f64 copy of an f32 input */
    int64_t n_checked; /* elements compared */
    double max_abs_err, max_rel_err;
    nb_gradcheck_element worst; /* the element with the largest relative error */
} nb_gradcheck_input_result;

typedef struct nb_gradcheck_result {
    double max_abs_err;
    double max_rel_err;
    int worst_input;       /* input index of the element with the largest relative error */
    int64_t worst_index;   /* flat index of that element */
    double worst_analytic; /* its analytic and numeric gradients */
    double worst_numeric;
    int64_t n_checked; /* elements compared */
    /* where: the worst element's coordinates in its input's shape (worst_ndim of them) */
    int worst_ndim;
    int64_t worst_coords[NB_MAX_DIMS];
    int n_inputs; /* entries of per_input */
    nb_gradcheck_input_result per_input[NB_GRADCHECK_MAX_INPUTS];
    int n_worst;                                        /* min(k_worst, n_checked) */
    nb_gradcheck_element worst[NB_GRADCHECK_MAX_WORST]; /* largest rel_err first */
    bool promoted;                                      /* some input was promoted */
} nb_gradcheck_result;

/* Inputs must be f64 (f32 too with opts->promote_f32); those with requires_grad are checked
 * (if none has it, all float inputs are, and requires_grad is switched on for them and stays
 * on). At most NB_GRADCHECK_MAX_INPUTS inputs. opts may be NULL. f runs on its own graph, which
 * nb_gradcheck makes and frees; the inputs are borrowed for the call (their values are changed
 * element by element and restored; the checked ones' grads are left zeroed), as are f, ctx and
 * opts. res is the caller's and is overwritten.
 * NB_ERR_ARG for a NULL f, inputs or res, n_inputs outside [1, NB_GRADCHECK_MAX_INPUTS] or a
 * malformed input (NULL inputs are allowed: optional slots such as a mask); NB_ERR_STATE if f
 * returns NULL. */
nb_status nb_gradcheck(nb_gradcheck_fn f, nb_tensor *const *inputs, int n_inputs, void *ctx,
                       const nb_gradcheck_opts *opts, nb_gradcheck_result *res);

/* Writes the report of res to out: one line per checked input (max abs and rel error, worst
 * element as coordinates with analytic and numeric values), then the k worst elements, then
 * the f32 caveat if inputs were promoted. names[i] names input i (names or an entry may be
 * NULL: "input i"). rel_bar > 0 adds "ok"/"FAIL" against it. */
void nb_gradcheck_print(FILE *out, const nb_gradcheck_result *res, const char *const *names,
                        double rel_bar);

/* "[2, 3]": the coordinates of an element (ndim 0: "[]"), written into the caller's buf of len
 * bytes. Returns buf. */
char *nb_gradcheck_coords_str(const nb_gradcheck_element *e, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
