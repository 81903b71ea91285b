/* lce_ref.h - the slow, obvious linear + cross-entropy the tests compare the fused head with
 * (lce_ref.c). Test-only: not part of the public API, not installed; tests include it as
 * "loss/lce_ref.h". */
#ifndef NABLA_LCE_REF_H
#define NABLA_LCE_REF_H

#include "nabla/lce.h"

/* The slow, obvious version (for tests): materialises z = x W^T + b (capped), runs
 * nb_xent_reference on it and the chain rule by plain loops, in double. loss as nb_xent_reference
 * wants it; dx, dw, db (each optional, shaped like x, w, b, f32 or f64) are overwritten with the
 * gradients for an upstream gradient of 1. */
nb_status nb_lce_reference(const nb_tensor *x, const nb_tensor *w, const nb_tensor *b,
                           const nb_tensor *targets, const nb_lce_opts *opts, nb_tensor *loss,
                           nb_tensor *dx, nb_tensor *dw, nb_tensor *db);

#endif
