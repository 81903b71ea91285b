/* ops_internal.h - the op kinds the tape can record, and helpers shared by op files. */
#ifndef NABLA_OPS_INTERNAL_H
#define NABLA_OPS_INTERNAL_H

#include <stdio.h>

#include "../autograd/graph_internal.h"

typedef enum nb_opkind {
    NB_OPK_MATMUL,
    NB_OPK_LINEAR,
    NB_OPK_ADD,
    NB_OPK_SUB,
    NB_OPK_MUL,
    NB_OPK_DIV,
    NB_OPK_NEG,
    NB_OPK_SCALE,
    NB_OPK_RELU,
    NB_OPK_LEAKY_RELU,
    NB_OPK_TANH,
    NB_OPK_SIGMOID,
    NB_OPK_GELU,
    NB_OPK_EXP,
    NB_OPK_LOG,
    NB_OPK_SUM,
    NB_OPK_MEAN,
    NB_OPK_SUM_LAST,
    NB_OPK_MEAN_LAST,
    NB_OPK_RESHAPE,
    NB_OPK_TRANSPOSE,
    NB_OPK_LOGSUMEXP,
    NB_OPK_LOG_SOFTMAX,
    NB_OPK_SOFTMAX,
    NB_OPK_GATHER_LAST,
    NB_OPK_CROSS_ENTROPY,
    NB_OPK_CROSS_ENTROPY_SOFT,
    NB_OPK_DROPOUT,
    NB_OPK_COUNT
} nb_opkind;

/* The recordable op kinds, indexed by nb_opkind (defined in optable.c). */
extern const nb_opdef nb_opdefs[NB_OPK_COUNT];

/* Inputs must all be f32, or all f64. */
nb_status nb_check_float_same(const char *opname, nb_tensor *const *in, int n);

/* Shape of a tensor as text, for messages (a static per-thread buffer, two slots). */
const char *nb_shp(const nb_tensor *x);

#endif
