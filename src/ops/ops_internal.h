/* ops_internal.h - what the op files share: the tape's internals, the dtype check, the op lists
 * each file exports, and sample-case shapes several files use. Not installed. */
#ifndef NABLA_OPS_INTERNAL_H
#define NABLA_OPS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/graph_internal.h"
#include "../tensor/tensor_check.h"
#include "nabla/ops.h"

/* The records of each op file (src/loss/op_table.c lists every file's). */
extern const nb_op_list nb_matmul_ops, nb_elementwise_ops, nb_reduce_ops, nb_gather_ops,
    nb_dropout_ops;

/* The BLAS wrapper (matmul.c): out[M,N] (leading dim N) = op(A) op(B) + beta out, A and B as
 * stored with leading dims lda, ldb; cblas_sgemm (f32) or cblas_dgemm (f64). */
void nb_gemm(nb_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
             int64_t lda, const void *B, int64_t ldb, double beta, void *C);

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

/* Threads for the library's OpenMP regions: nb_set_num_threads's count, process-wide (from
 * whichever thread set it), else OpenMP's default. Read it before the region. */
int nb_kernel_threads(void);

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

/* cond ? x : y by a bit mask. The compiler turns a ?: whose arms differ in cost into a branch,
 * and a branch stops a loop from being a vector loop. */
static inline double nb_select_bits(bool cond, double x, double y)
{
    uint64_t m = (uint64_t)0 - (uint64_t)cond, bx, by;
    memcpy(&bx, &x, 8);
    memcpy(&by, &y, 8);
    bx = (bx & m) | (by & ~m);
    memcpy(&x, &bx, 8);
    return x;
}

/* exp(x) for x in [-708, 709] (the caller clamps; NaN gives NaN) in double, with no libm call
 * so that a loop of it is a vector loop. x = k ln 2 + r: k = round(x / ln 2), read from the bits
 * of x / ln 2 + 1.5 2^52 (the rounding trick); r = x - k ln 2 in [-ln2/2, ln2/2], with ln 2 in
 * two parts so that k ln2_hi is exact; exp(r) by its Taylor series to r^11 (relative error
 * < 1e-14); 2^k made from its bits. For f32 kernels, whose result is rounded once (tanh,
 * softmax): tests/test_stream_kernels.c holds them to the f64 formulas. */
static inline double nb_exp_vec(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double magic = 0x1.8p52, inv_ln2 = 1.44269504088896338700e+00;
    double kd = x * inv_ln2 + magic;
    uint64_t kbits, two_k_bits;
    memcpy(&kbits, &kd, 8);
    kd -= magic;
    double r = (x - kd * ln2_hi) - kd * ln2_lo;
    double p = 1.0 / 39916800.0; /* 1/11!, then Horner down to 1/0! */
    p = 1.0 / 3628800.0 + r * p;
    p = 1.0 / 362880.0 + r * p;
    p = 1.0 / 40320.0 + r * p;
    p = 1.0 / 5040.0 + r * p;
    p = 1.0 / 720.0 + r * p;
    p = 1.0 / 120.0 + r * p;
    p = 1.0 / 24.0 + r * p;
    p = 1.0 / 6.0 + r * p;
    p = 0.5 + r * p;
    p = 1.0 + r * p;
    p = 1.0 + r * p;
    two_k_bits = (kbits - 0x4338000000000000ull + 1023u) << 52; /* k + 1023, the exponent */
    double two_k;
    memcpy(&two_k, &two_k_bits, 8);
    return p * two_k;
}

/* sum_i x_i and sum_i a_i b_i over n elements, in double, in 16 independent lanes (lane j
 * takes i = j mod 16) added pairwise at the end: a fixed, documented order, and vector loops
 * (reduce.c). The pointers must not overlap anything written meanwhile (restrict). */
double nb_sum_lanes_f32(const float *restrict x, int64_t n);
double nb_sum_lanes_f64(const double *restrict x, int64_t n);
double nb_dot_lanes_f32(const float *restrict a, const float *restrict b, int64_t n);
double nb_dot_lanes_f64(const double *restrict a, const double *restrict b, int64_t n);

#endif
