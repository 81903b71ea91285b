/* dist.c - the few collective operations data-parallel training needs. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "dist.h"

#ifdef NABLA_HAVE_MPI
#include <mpi.h>

void nb_dist_init(int *argc, char ***argv, nb_dist *d)
{
    d->rank = 0;
    d->size = 1;
    d->mpi = false;
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return;
    d->mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
}

void nb_dist_finalize(nb_dist *d)
{
    if (d->mpi)
        MPI_Finalize();
    d->mpi = false;
}

bool nb_dist_sum_doubles(const nb_dist *d, double *v, int n)
{
    if (!d->mpi || d->size == 1)
        return true;
    return MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS;
}

bool nb_dist_sum_floats(const nb_dist *d, float *v, int64_t n)
{
    if (!d->mpi || d->size == 1)
        return true;
    /* one call for the whole flat buffer (chunked only past INT_MAX elements) */
    for (int64_t off = 0; off < n; off += 1 << 30) {
        int cnt = (int)(n - off < (1 << 30) ? n - off : (1 << 30));
        if (MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return false;
    }
    return true;
}

bool nb_dist_allreduce(const nb_dist *d, void *buf, int64_t n, bool f64, bool max)
{
    if (!d->mpi || d->size == 1)
        return true;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    for (int64_t off = 0; off < n; off += 1 << 30) { /* chunked only past INT_MAX elements */
        int cnt = (int)(n - off < (1 << 30) ? n - off : (1 << 30));
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * es, cnt,
                          f64 ? MPI_DOUBLE : MPI_FLOAT, max ? MPI_MAX : MPI_SUM,
                          MPI_COMM_WORLD) != MPI_SUCCESS)
            return false;
    }
    return true;
}

bool nb_dist_any(const nb_dist *d, bool v)
{
    if (!d->mpi || d->size == 1)
        return v;
    int in = v, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out != 0;
}

#else

void nb_dist_init(int *argc, char ***argv, nb_dist *d)
{
    (void)argc;
    (void)argv;
    d->rank = 0;
    d->size = 1;
    d->mpi = false;
}

void nb_dist_finalize(nb_dist *d)
{
    (void)d;
}

bool nb_dist_sum_doubles(const nb_dist *d, double *v, int n)
{
    (void)d;
    (void)v;
    (void)n;
    return true;
}

bool nb_dist_sum_floats(const nb_dist *d, float *v, int64_t n)
{
    (void)d;
    (void)v;
    (void)n;
    return true;
}

bool nb_dist_allreduce(const nb_dist *d, void *buf, int64_t n, bool f64, bool max)
{
    (void)d, (void)buf, (void)n, (void)f64, (void)max;
    return true;
}

bool nb_dist_any(const nb_dist *d, bool v)
{
    (void)d;
    return v;
}
#endif
