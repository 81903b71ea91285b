/* bench_train.h - `nabla bench train`: one training step of an MLP, as `nabla train` runs it. */
#ifndef NABLA_BENCH_TRAIN_H
#define NABLA_BENCH_TRAIN_H

#include <stdbool.h>

typedef struct nb_bench_train_args {
    const char *hidden; /* "256,128" */
    long long batch, threads, steps;
    bool json;
} nb_bench_train_args;

/* Exit status: 0, 1 after a message, 2 on bad usage. */
int nb_bench_train(const nb_bench_train_args *a);

#endif
