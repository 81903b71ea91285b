/* xent_internal.h - the cross-entropy kernels as the graph op calls them. Not installed. */
#ifndef NABLA_XENT_INTERNAL_H
#define NABLA_XENT_INTERNAL_H

#include "nabla/loss.h"

/* Whether row n is a real token (targets NULL for soft targets: only the mask counts). */
bool nb_xent_keep(const nb_xent_opts *o, const nb_tensor *targets, int64_t n);
/* lse of row n of z (any float dtype), in double. */
double nb_xent_row_lse(const nb_tensor *z, int64_t n, int64_t V);
/* The row's shift m (its max) and log s, s = sum_j exp(z_j - m): lse = m + log s. */
void nb_xent_row_shift(const nb_tensor *z, int64_t n, int64_t V, double *m, double *logs);
double nb_xent_normaliser(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                          const nb_xent_opts *o);
nb_status nb_xent_validate_soft(const nb_tensor *logits, const nb_tensor *probs,
                                const nb_xent_opts *opts);

/* Validated inputs; exactly one of tgt/probs is non-NULL. lse_out: N doubles, shift_out: 2N
 * doubles (m, log s per row); either may be NULL. scratch: 2N doubles of working space, or NULL
 * to allocate it here (the graph op passes arena memory, so a training step does not malloc). */
nb_status nb_xent_forward_impl(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                               const nb_xent_opts *o, nb_tensor *loss, double *lse_out,
                               double *shift_out, double *scratch, nb_xent_stats *st_out);
/* dz in the compute dtype; accumulate adds to it instead of overwriting. shift_in (2N, from the
 * forward) is preferred, else lse_in (N), else both are recomputed; dloss NULL means 1. */
nb_status nb_xent_backward_impl(void *dz, bool accumulate, const nb_tensor *z, const nb_tensor *tgt,
                                const nb_tensor *probs, const nb_xent_opts *o, const double *lse_in,
                                const double *shift_in, const void *dloss);

#endif
