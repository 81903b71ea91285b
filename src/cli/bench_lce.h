/* bench_lce.h - `nabla bench lce`: the fused linear + cross-entropy head against Linear +
 * nb_cross_entropy, time and peak extra memory of a training step. */
#ifndef NABLA_BENCH_LCE_H
#define NABLA_BENCH_LCE_H

#include <stdbool.h>

typedef struct nb_bench_lce_args {
    long long n, d, v, threads, repeat, block; /* block: rows per block, 0 = the op's choice */
    double wscale; /* W's init range times this (sharper softmax: the filter has tiles to skip) */
    bool filter;   /* grad_filter on the recompute path, and its effect on dW reported */
    const char *impl; /* fused (one pass), fused-recompute, unfused or all */
    bool json;
    bool vocab_parallel; /* the classes split over the mpirun ranks (fused paths only) */
} nb_bench_lce_args;

/* Returns the exit status (0, or 1 with a message on stderr). */
int nb_bench_lce(const nb_bench_lce_args *a);

#endif
