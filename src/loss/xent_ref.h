/* xent_ref.h - the slow, obvious cross-entropy the tests compare the fused kernels with
 * (xent_ref.c). Test-only: not part of the public API, not installed; tests include it as
 * "loss/xent_ref.h". */
#ifndef NABLA_XENT_REF_H
#define NABLA_XENT_REF_H

#include "nabla/loss.h"

/* Reference in double (two passes, explicit log_softmax row), hard targets only. Same arguments
 * as nb_xent_forward / nb_xent_backward: loss (float, shape [] or targets' shape for
 * NB_REDUCTION_NONE) and dlogits (float, logits' shape; may be NULL) are written; opts NULL =
 * defaults. Allocates one row of V doubles for the call. */
nb_status nb_xent_reference(const nb_tensor *logits, const nb_tensor *targets,
                            const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits);

#endif
