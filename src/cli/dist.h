/* dist.h - data-parallel training over MPI, or a single process when nabla is built without
 * Open MPI or not started by mpirun. */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include <stdbool.h>
#include <stdint.h>

typedef struct nb_dist {
    int rank, size;
    bool mpi; /* MPI_Init was called */
} nb_dist;

/* Starts MPI when the process was launched by mpirun (OMPI_COMM_WORLD_SIZE / PMI_SIZE set);
 * otherwise rank 0 of 1. */
void nb_dist_init(int *argc, char ***argv, nb_dist *d);
void nb_dist_finalize(nb_dist *d);
/* Sum over ranks, in place (identity with one rank). Return false if MPI reports an error. */
bool nb_dist_sum_doubles(const nb_dist *d, double *v, int n);
bool nb_dist_sum_floats(const nb_dist *d, float *v, int64_t n);
/* Elementwise sum or max over ranks of n f64 (f64) or f32 values, in place, every rank getting
 * the result (identity with one rank): the vocabulary-parallel loss's reduction. False if MPI
 * reports an error. */
bool nb_dist_allreduce(const nb_dist *d, void *buf, int64_t n, bool f64, bool max);
/* true on every rank if any rank passes true (for stopping together) */
bool nb_dist_any(const nb_dist *d, bool v);

#endif
