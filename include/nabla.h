/* nabla.h - the whole public API of nabla, a small training framework in C11.
 *
 *   tensor    nabla/tensor.h    tensors, dtypes, seeded RNG
 *   autograd  nabla/graph.h     the tape, backward, arena
 *             nabla/gradcheck.h central-difference gradient checks
 *             nabla/custom_op.h ops with your own forward and backward
 *   ops       nabla/ops.h       differentiable ops and the op table
 *   loss      nabla/loss.h      log-softmax family and the fused cross-entropy
 *             nabla/lce.h       the fused linear + cross-entropy head
 *   optim     nabla/optim.h     optimisers
 *   nn        nabla/nn.h        Linear, MLP, initialisers
 *   data      nabla/dataset.h   data sets, batch iterator
 *             nabla/npy.h       .npy reader / writer
 *             nabla/data.h      data helpers
 *             nabla/seqdata.h   sequence toy data
 *   io        nabla/safetensors.h  safetensors files
 *             nabla/checkpoint.h   checkpoints (weights, optimiser state, metadata)
 *   train     nabla/eval.h      evaluation (loss, accuracy, confusion, F1) and prediction
 *             nabla/train.h     the trainer: the training loop in one call
 *   status    nabla/status.h    status codes, nb_last_error (per thread)
 *
 * Ownership: a function that returns a new object (nb_*_new, nb_tensor_zeros, ...) hands it to
 * the caller, who frees it with the matching nb_*_free; tensors returned by ops on a graph belong
 * to the graph's arena. Arguments are borrowed for the call unless the header says longer (op
 * inputs: until backward; an optimiser's parameters: until nb_optim_free). Each header says
 * what it borrows and for how long; docs/architecture.md puts it all together.
 */
#ifndef NABLA_H
#define NABLA_H

/* NABLA_VERSION and its parts are in nabla/status.h, the lowest header (io needs them). */
#include "nabla/status.h"
#include "nabla/tensor.h"
#include "nabla/graph.h"
#include "nabla/gradcheck.h"
#include "nabla/custom_op.h"
#include "nabla/ops.h"
#include "nabla/loss.h"
#include "nabla/lce.h"
#include "nabla/optim.h"
#include "nabla/nn.h"
#include "nabla/dataset.h"
#include "nabla/image.h"
#include "nabla/safetensors.h"
#include "nabla/checkpoint.h"
#include "nabla/npy.h"
#include "nabla/data.h"
#include "nabla/seqdata.h"
#include "nabla/eval.h"
#include "nabla/train.h"

#endif
