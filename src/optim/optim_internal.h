/* optim_internal.h - what optim.c and optim_step.c share: the optimiser's struct, its step in
 * chunks of the parameters, and the plain reference step the tests compare the fast one with.
 * Not installed. */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/optim.h"

#define NB_OPTIM_MAX_BUFS 2 /* SGD: momentum; Adam: exp_avg, exp_avg_sq */

/* Elements per chunk of the fast step: the unit of work a thread takes, and the unit of the
 * gradient's sum of squares (one partial sum per chunk, added in chunk order afterwards, so the
 * norm is the same whatever the thread count). 1024 f32 of w, g, m and v are 16 KiB: the chunk
 * stays in L1 between the passes over it. */
#define NB_OPTIM_CHUNK 1024

/* A chunk: elements [off, off + len) of parameter p. */
typedef struct nb_optim_chunk {
    int32_t p, len;
    int64_t off;
} nb_optim_chunk;

struct nb_optim {
    nb_optim_config cfg;
    int n;
    nb_tensor **params;
    nb_tensor **state; /* n * NB_OPTIM_MAX_BUFS, NULL where unused */
    int n_bufs;
    int64_t t; /* steps taken */
    bool momentum_started;
    char (*names)[32]; /* state tensor names, "exp_avg.3" */
    bool all_f32;      /* every parameter f32: the fast step (optim_step.c) applies */
    bool shared_grad;  /* two parameters share gradient memory (a tensor listed twice): the
                          reference step, which updates all before zeroing any */
    int64_t numel;     /* elements of all parameters */
    int64_t n_chunks;
    nb_optim_chunk *chunks; /* the parameters cut in chunks, in order */
    double *chunk_sq;       /* n_chunks partial sums of squared gradients */
};

/* The chunk table of o's parameters (at creation). NB_ERR_NOMEM on failure. */
nb_status nb_optim_chunks_init(nb_optim *o);

/* One step over every parameter, and optionally in the same pass *grad_sq = the sum of the
 * squared gradients as they were before the step (in double) and the gradients zeroed. The
 * step count is already incremented. The fast path: f32 parameters, vectorised, in chunks,
 * threaded when the parameters are large enough; otherwise nb_optim_step_reference's loops. */
void nb_optim_step_run(nb_optim *o, double *grad_sq, bool zero_grad);

/* The step is split between threads (nb_kernel_threads() > 1) for parameters of at least n
 * elements in all (default 4M; see optim_step.c for why so many); n < 1 counts as 1. For the
 * tests, which exercise the threaded path on small parameters. */
void nb_optim_set_parallel_min(int64_t n);

/* The plain reference of one step (increments the step count like nb_optim_step): the
 * per-element loops in double for SGD and f64, in f32 for f32 Adam. For the tests: the fast step
 * must equal it bitwise. NB_ERR_ARG for a NULL o. */
nb_status nb_optim_step_reference(nb_optim *o);

/* Element k of a float tensor's data, gradient or state buffer buf, as double, and back (the
 * reference loops and clipping). */
static inline double nb_optim_get(const nb_tensor *t, const void *buf, int64_t k)
{
    return t->dtype == NB_F64 ? ((const double *)buf)[k] : (double)((const float *)buf)[k];
}
static inline void nb_optim_put(const nb_tensor *t, void *buf, int64_t k, double v)
{
    if (t->dtype == NB_F64)
        ((double *)buf)[k] = v;
    else
        ((float *)buf)[k] = (float)v;
}

#endif
