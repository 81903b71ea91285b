/* nabla.h - the whole public API of nabla, a small training framework in C11.
 *
 *   tensor    nabla/tensor.h    tensors, dtypes, seeded RNG
 *   autograd  nabla/graph.h     the tape, backward, arena
 *             nabla/gradcheck.h central-difference gradient checks
 *             nabla/custom_op.h ops with your own forward and backward
 *   ops       nabla/ops.h       differentiable ops and the op table
 *   loss      nabla/loss.h      log-softmax family and the fused cross-entropy
 *   optim     nabla/optim.h     optimisers
 *   data      nabla/npy.h       .npy reader / writer
 *   train     nabla/eval.h      evaluation (loss, accuracy, confusion, F1) and prediction
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
#include "nabla/optim.h"
#include "nabla/nn.h"
#include "nabla/dataset.h"
#include "nabla/safetensors.h"
#include "nabla/checkpoint.h"
#include "nabla/npy.h"
#include "nabla/data.h"
#include "nabla/seqdata.h"
#include "nabla/eval.h"

#endif
