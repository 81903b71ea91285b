/* loss_ops.h - what the graph ops of the loss layer share: the tape's internals, the checks, the
 * op lists of the files below (the log-softmax family, the fused cross-entropy) and of ops/.
 * Not installed. */
#ifndef NABLA_LOSS_OPS_H
#define NABLA_LOSS_OPS_H

#include "../ops/ops_internal.h"

extern const nb_op_list nb_softmax_ops, nb_xent_ops, nb_lce_ops;

#endif
