/* tensor_check.h - small checks and message helpers every layer above the tensor uses (ops,
 * loss). Not installed. */
#ifndef NABLA_TENSOR_CHECK_H
#define NABLA_TENSOR_CHECK_H

#include "tensor_internal.h"

/* Inputs in[0 .. n) must all be f32, or all f64; NB_ERR_DTYPE naming `opname` otherwise. */
nb_status nb_check_float_same(const char *opname, nb_tensor *const *in, int n);

/* Shape of a tensor as text, for messages (a static per-thread buffer, two slots: two calls may
 * appear in one message). */
const char *nb_shp(const nb_tensor *x);

#endif
