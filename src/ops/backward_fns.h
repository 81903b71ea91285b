/* backward_fns.h - backward kernels of every recordable op (one per op family). */
#ifndef NABLA_BACKWARD_FNS_H
#define NABLA_BACKWARD_FNS_H

#include "ops_internal.h"

nb_status nb_matmul_backward(nb_graph *g, nb_node *n);
nb_status nb_linear_backward(nb_graph *g, nb_node *n);
nb_status nb_binary_backward_entry(nb_graph *g, nb_node *n);
nb_status nb_unary_backward_entry(nb_graph *g, nb_node *n);
nb_status nb_reduce_backward(nb_graph *g, nb_node *n);
nb_status nb_reshape_backward(nb_graph *g, nb_node *n);
nb_status nb_transpose_backward(nb_graph *g, nb_node *n);
nb_status nb_softmax_family_backward(nb_graph *g, nb_node *n);
nb_status nb_gather_last_backward(nb_graph *g, nb_node *n);
nb_status nb_xent_op_backward(nb_graph *g, nb_node *n);
nb_status nb_dropout_backward(nb_graph *g, nb_node *n);

#endif
