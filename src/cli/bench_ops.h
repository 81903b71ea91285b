/* bench_ops.h - `nabla bench ops`: the op kernels' bandwidth against memcpy's. */
#ifndef NABLA_BENCH_OPS_H
#define NABLA_BENCH_OPS_H

#include <stdbool.h>

/* n f32 elements per op, the minimum of `repeat` timed runs (after one warm-up), with the
 * library set to `threads` threads (nb_set_num_threads; memcpy stays one thread). Returns the
 * exit status (0, or 1 with a message on stderr). */
int nb_bench_ops(long long n, long long repeat, int threads, bool json);

#endif
