/* op_samples.h - turns an op's gradcheck sample cases (data in its record, nabla/graph.h) into
 * tensors. Tool-side code: compiled into the `nabla` command and the tests, not the library. */
#ifndef NABLA_OP_SAMPLES_H
#define NABLA_OP_SAMPLES_H

#include <stddef.h>

#include "nabla/ops.h"

/* The inputs of case k of op (in[0 .. NB_OP_MAX_INPUTS), NULL where the case leaves a slot
 * out), drawn from r in slot order; *n_inputs as the case says; desc gets the input shapes and
 * the case's note. The caller frees in[] with nb_tensor_free. On failure every slot is NULL and
 * the status is returned with the message. */
nb_status nb_sample_make(const nb_op_info *op, int k, nb_rng *r, nb_tensor **in, int *n_inputs,
                         char *desc, size_t desc_len);

/* The generator of op's samples: seeded from seed and the op's name, so every op draws the same
 * inputs whichever ops come before it in the table. */
void nb_sample_rng(nb_rng *r, uint64_t seed, const nb_op_info *op);

#endif
