/* xent_explain.h - `nabla xent --explain [ROWS]` and `--naive`: the fused loss row by row. */
#ifndef NABLA_XENT_EXPLAIN_H
#define NABLA_XENT_EXPLAIN_H

#include <stdbool.h>

#include "nabla.h"

typedef struct nb_xent_explain_args {
    bool explain;
    const char *rows; /* "0,3,5-7"; NULL = the first 3 rows */
    bool naive;
    double naive_tol; /* 0 = default (1e-9 for f64 logits, 1e-4 otherwise) */
} nb_xent_explain_args;

/* Called from the option loop with argv[*i] the current option. Returns 1 when it was
 * --explain [ROWS], --naive or --naive-tol T (*i moved past any value), 0 when it is not one of
 * these, -1 after printing a usage error (exit status 2). */
int nb_xent_explain_parse(int argc, char **argv, int *i, nb_xent_explain_args *a);

/* Runs --explain and/or --naive (nothing if neither was given) after the fused forward, whose
 * stats give the mean's divisor. Returns 0 ok, 1 bad input (message printed). */
int nb_xent_explain_run(const nb_xent_explain_args *a, const nb_tensor *logits,
                        const nb_tensor *targets, const nb_xent_opts *o, const nb_xent_stats *st);

#endif
