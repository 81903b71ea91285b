/* ops_internal.h - what the op files share: the tape's internals, the dtype check, the op lists
 * each file exports, and sample-case shapes several files use. Not installed. */
#ifndef NABLA_OPS_INTERNAL_H
#define NABLA_OPS_INTERNAL_H

#include <stdio.h>

#include "../autograd/graph_internal.h"
#include "../tensor/tensor_check.h"
#include "nabla/ops.h"

/* The records of each op file (src/loss/op_table.c lists every file's). */
extern const nb_op_list nb_matmul_ops, nb_elementwise_ops, nb_reduce_ops, nb_gather_ops,
    nb_dropout_ops;

/* rows x cols view of x over its last dim; a 0-d tensor is 1 x 1 */
static inline void nb_rows_cols(const nb_tensor *x, int64_t *rows, int64_t *cols)
{
    *cols = x->ndim ? x->shape[x->ndim - 1] : 1;
    *rows = *cols ? x->numel / *cols : 0;
}

/* Sample inputs (gradcheck cases as data): a differentiable f64 input U[lo, hi), |x| >= away. */
#define NB_SAMPLE_PARAM2(LO, HI, AWAY, D0, D1)                                                     \
    {                                                                                              \
        .kind = NB_SAMPLE_PARAM, .ndim = 2, .shape = {D0, D1}, .lo = LO, .hi = HI, .away = AWAY    \
    }
#define NB_SAMPLE_PARAM3(LO, HI, AWAY, D0, D1, D2)                                                 \
    {                                                                                              \
        .kind = NB_SAMPLE_PARAM, .ndim = 3, .shape = {D0, D1, D2}, .lo = LO, .hi = HI,             \
        .away = AWAY                                                                               \
    }
/* The two cases of a one-input op: [3,4] and [2,3,2], first argument A0 then A1. */
#define NB_UNARY_CASES(NAME, LO, HI, AWAY, A0, A1)                                                 \
    static const nb_op_case NAME[] = {                                                             \
        {.n_inputs = 1, .in = {NB_SAMPLE_PARAM2(LO, HI, AWAY, 3, 4)}, .args = {A0}},               \
        {.n_inputs = 1, .in = {NB_SAMPLE_PARAM3(LO, HI, AWAY, 2, 3, 2)}, .args = {A1}},            \
    }
#define NB_CASES(ARRAY) (int)(sizeof ARRAY / sizeof ARRAY[0]), ARRAY

/* NB_VECTOR_CLONES before a streaming kernel: GCC compiles it for AVX-512F, AVX2 and the
 * baseline (SSE2) and picks one at load time for the CPU (an ifunc), so the loop runs in 512-bit
 * vectors where the machine has them though the build targets plain x86-64. The clones give
 * bit-identical results: without -ffast-math the compiler never reassociates, and
 * -ffp-contract=off keeps it from fusing a multiply and an add on the FMA targets; only the
 * vector width differs. Elsewhere (another CPU family, clang, NB_NO_VECTOR_CLONES) it is
 * nothing. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) &&       \
    !defined(NB_NO_VECTOR_CLONES)
#define NB_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NB_VECTOR_CLONES
#endif

/* sum_i x_i and sum_i a_i b_i over n elements, in double, in 16 independent lanes (lane j
 * takes i = j mod 16) added pairwise at the end: a fixed, documented order, and vector loops
 * (reduce.c). The pointers must not overlap anything written meanwhile (restrict). */
double nb_sum_lanes_f32(const float *restrict x, int64_t n);
double nb_sum_lanes_f64(const double *restrict x, int64_t n);
double nb_dot_lanes_f32(const float *restrict a, const float *restrict b, int64_t n);
double nb_dot_lanes_f64(const double *restrict a, const double *restrict b, int64_t n);

#endif
