/* bench_lce.c - `nabla bench lce`: one training step of a classifier head, fused
 * (nb_linear_cross_entropy + backward) against unfused (nb_linear, nb_cross_entropy, backward).
 *
 * x [N,D], W [V,D], b [V] are f32 leaves whose gradients are allocated before the clock starts;
 * a step is the forward, nb_backward and nb_graph_reset. Time: min/median/max over R steps after
 * one warm-up; cpu_ms_median is the process's CPU time per step (all threads), which other
 * programs sharing the cores do not inflate as they do the wall time. peak_extra_bytes: the graph
 * arena's use at the end of the step, before the reset. Every temporary of both paths (logits,
 * their gradient, the fused op's tiles, row statistics and saved gradients) comes from that arena
 * and nothing is freed within a step, so this is the step's high-water mark beyond the inputs,
 * parameters and their gradients (measured, not estimated).
 *
 * --vocab-parallel (under mpirun -np P): rank r holds the classes [r V / P, (r+1) V / P) of W and
 * b only (its own random slice; x and the targets are the same on every rank), and the fused op
 * combines the ranks through nb_dist_allreduce. Each rank prints its line: its slice, its times,
 * its arena's peak and its peak resident set (getrusage: the whole process, MPI included). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include "bench_lce.h"
#include "cli.h"
#include "dist.h"
#include "nabla.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct head {
    nb_tensor *x, *w, *b, *t;
    long long block; /* rows per block, 0 = the op's choice */
    bool filter;     /* grad_filter on the recompute path */
    nb_dist *dist;   /* vocabulary-parallel: the ranks; W and b are this rank's slice */
    long long off, vt;
} head;

static nb_status dist_allreduce(void *buf, int64_t n, nb_dtype dt, nb_lce_reduce_op op, void *ctx)
{
    if (!nb_dist_allreduce(ctx, buf, n, dt == NB_F64, op == NB_LCE_MAX))
        return nb_error(NB_ERR_IO, "nabla bench lce: MPI_Allreduce of %lld values failed",
                        (long long)n);
    return NB_OK;
}

/* the sharding options of a vocabulary-parallel head */
static void shard(const head *h, nb_lce_opts *o)
{
    if (!h->dist)
        return;
    o->class_offset = h->off, o->classes_total = h->vt;
    o->allreduce = dist_allreduce, o->allreduce_ctx = h->dist;
}

static void head_free(head *h)
{
    nb_tensor_free(h->x);
    nb_tensor_free(h->w);
    nb_tensor_free(h->b);
    nb_tensor_free(h->t);
}

/* x [n,d], W [v,d], b [v] and targets in [0, vt) (vt = v unless vocabulary-parallel: then W, b
 * from a generator of this rank's own, x and the targets the same on every rank) */
static int head_make(head *h, long long n, long long d, long long v, long long vt, double wscale)
{
    nb_rng r, rw;
    nb_rng_seed(&r, 13);
    nb_rng_seed(&rw, 14 + (uint64_t)(h->dist ? h->dist->rank : 0));
    nb_rng *pw = h->dist ? &rw : &r;
    int64_t sx[2] = {n, d}, sw[2] = {v, d}, sb[1] = {v}, st[1] = {n};
    double bound = wscale / sqrt((double)d); /* nn.Linear's init range, times --wscale */
    h->x = nb_tensor_rand(NB_F32, 2, sx, &r, -1, 1);
    h->w = nb_tensor_rand(NB_F32, 2, sw, pw, -bound, bound);
    h->b = nb_tensor_rand(NB_F32, 1, sb, pw, -bound, bound);
    h->t = nb_tensor_empty(NB_I32, 1, st);
    if (!h->x || !h->w || !h->b || !h->t)
        return 1;
    /* with the filter: the upper half of the classes is rare (bias -40, as a language model's
     * rare tokens), and no target falls there, so whole tiles have negligible probabilities */
    for (long long j = vt / 2 - h->off; h->filter && j < v; j++)
        if (j >= 0)
            ((float *)h->b->data)[j] = -40.0f;
    for (long long i = 0; i < n; i++)
        ((int32_t *)h->t->data)[i] =
            (int32_t)nb_rng_below(&r, (uint64_t)(h->filter && vt > 1 ? vt / 2 : vt));
    nb_tensor *in[3] = {h->x, h->w, h->b};
    for (int i = 0; i < 3; i++)
        if (nb_tensor_set_requires_grad(in[i], true) != NB_OK)
            return 1;
    return 0;
}

/* one step; *extra gets the arena's use at its end */
static int step(nb_graph *g, head *h, int impl, size_t *extra)
{
    nb_tensor *loss;
    if (impl == 0 || impl == 1) { /* the one pass, gradients into the leaves or saved */
        nb_lce_opts o = nb_lce_defaults();
        o.one_pass = true;
        o.leaf_grads_in_forward = impl == 0;
        o.block_rows = h->block;
        shard(h, &o);
        loss = nb_linear_cross_entropy(g, h->x, h->w, h->b, h->t, &o);
    } else if (impl == 2) {
        nb_lce_opts o = nb_lce_defaults();
        o.block_rows = h->block;
        o.grad_filter = h->filter;
        shard(h, &o);
        loss = nb_linear_cross_entropy(g, h->x, h->w, h->b, h->t, &o);
    } else {
        loss = nb_cross_entropy(g, nb_linear(g, h->x, h->w, h->b), h->t, NULL);
    }
    if (!loss || nb_backward(g, loss, NULL) != NB_OK) {
        fprintf(stderr, "nabla bench lce: %s\n", nb_last_error());
        return 1;
    }
    *extra = nb_graph_arena_used(g);
    nb_graph_reset(g);
    return 0;
}

/* the filter's effect on dW: max |dW_filtered - dW| / max |dW| against the unfiltered path */
static int report_filter(head *h, const nb_bench_lce_args *a)
{
    nb_graph *g = nb_graph_new();
    size_t extra;
    double err = 0.0, scale = 0.0;
    float *ref = malloc(sizeof(float) * (size_t)h->w->numel);
    int rc = !g || !ref;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        nb_tensor_zero_grad(h->w);
        h->filter = pass == 1;
        rc = step(g, h, 2, &extra);
        for (int64_t i = 0; rc == 0 && i < h->w->numel; i++) {
            float gv = ((const float *)h->w->grad)[i];
            if (pass == 0)
                ref[i] = gv, scale = fmax(scale, fabs((double)gv));
            else
                err = fmax(err, fabs((double)gv - (double)ref[i]));
        }
    }
    h->filter = true;
    if (rc == 0)
        printf(a->json ? "{\"bench\": \"lce\", \"filter_dw_max_rel_err\": %.3e}\n"
                       : "lce filter: dW max |filtered - unfiltered| / max |dW| = %.3e\n",
               scale > 0 ? err / scale : err);
    free(ref);
    nb_graph_free(g);
    return rc;
}

#define N_IMPL 4
static const char *const impl_names[N_IMPL] = {"fused", "fused-saved", "fused-recompute",
                                               "unfused"};

/* a vocabulary-parallel rank's line: its slice, times (s), arena peak and peak resident set */
static void report_rank(const head *h, const nb_bench_lce_args *a, int impl, double tmin,
                        double tmed, double tmax, double cmed, size_t peak)
{
    struct rusage ru;
    double rss = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss * 1024.0 : 0.0;
    if (a->json)
        printf("{\"bench\": \"lce\", \"impl\": \"%s\", \"vocab_parallel\": true, \"rank\": %d, "
               "\"ranks\": %d, \"n\": %lld, \"d\": %lld, \"v\": %lld, \"v_slice\": %lld, "
               "\"threads\": %lld, \"ms_min\": %.3f, \"ms_median\": %.3f, \"ms_max\": %.3f, "
               "\"cpu_ms_median\": %.3f, \"peak_extra_bytes\": %zu, \"peak_rss_bytes\": %.0f, "
               "\"blas_core\": \"%s\"}\n",
               impl_names[impl], h->dist->rank, h->dist->size, a->n, a->d, a->v,
               (long long)h->w->shape[0], a->threads, tmin * 1e3, tmed * 1e3, tmax * 1e3,
               cmed * 1e3, peak, rss, nb_blas_core_name());
    else
        printf("lce %-15s rank %d/%d v %lld slice %lld n %lld d %lld threads %lld  ms min %.2f "
               "median %.2f max %.2f  cpu %.2f  peak extra %.2f MiB  peak RSS %.1f MiB  (BLAS "
               "core %s)\n",
               impl_names[impl], h->dist->rank, h->dist->size, a->v, (long long)h->w->shape[0],
               a->n, a->d, a->threads, tmin * 1e3, tmed * 1e3, tmax * 1e3, cmed * 1e3,
               (double)peak / 1048576.0, rss / 1048576.0, nb_blas_core_name());
    fflush(stdout);
}

static int run_impl(head *h, const nb_bench_lce_args *a, int impl, double *ms_median, size_t *peak)
{
    nb_graph *g = nb_graph_new();
    double *t = malloc(sizeof(double) * 2 * (size_t)a->repeat), *cpu = t ? t + a->repeat : NULL;
    if (!g || !t) {
        nb_graph_free(g);
        free(t);
        fprintf(stderr, "nabla bench lce: out of memory\n");
        return 1;
    }
    size_t extra = 0;
    *peak = 0;
    int rc = step(g, h, impl, &extra); /* warm-up: the arena grows to the step's size */
    for (long long r = 0; rc == 0 && r < a->repeat; r++) {
        nb_tensor_zero_grad(h->x), nb_tensor_zero_grad(h->w), nb_tensor_zero_grad(h->b);
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        rc = step(g, h, impl, &extra);
        t[r] = clock_s(CLOCK_MONOTONIC) - t0;
        cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        *peak = extra > *peak ? extra : *peak;
    }
    if (rc == 0) {
        int n = (int)a->repeat;
        qsort(t, (size_t)n, sizeof *t, nb_cli_cmp_double);
        qsort(cpu, (size_t)n, sizeof *cpu, nb_cli_cmp_double);
        double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
        double cmed = n % 2 ? cpu[n / 2] : 0.5 * (cpu[n / 2 - 1] + cpu[n / 2]);
        *ms_median = med * 1e3;
        if (h->dist)
            report_rank(h, a, impl, t[0], med, t[n - 1], cmed, *peak);
        else if (a->json)
            printf("{\"bench\": \"lce\", \"impl\": \"%s\", \"n\": %lld, \"d\": %lld, \"v\": %lld, "
                   "\"threads\": %lld, \"ms_min\": %.3f, \"ms_median\": %.3f, \"ms_max\": %.3f, "
                   "\"cpu_ms_median\": %.3f, \"peak_extra_bytes\": %zu, \"blas_core\": \"%s\"}\n",
                   impl_names[impl], a->n, a->d, a->v, a->threads, t[0] * 1e3, med * 1e3,
                   t[n - 1] * 1e3, cmed * 1e3, *peak, nb_blas_core_name());
        else
            printf("lce %-15s n %-6lld d %-5lld v %-7lld threads %lld  ms min %8.2f median %8.2f "
                   "max %8.2f  cpu %8.2f  peak extra %8.2f MiB  (BLAS core %s)\n",
                   impl_names[impl], a->n, a->d, a->v, a->threads, t[0] * 1e3, med * 1e3,
                   t[n - 1] * 1e3, cmed * 1e3, (double)*peak / 1048576.0, nb_blas_core_name());
        fflush(stdout);
    }
    nb_graph_free(g);
    free(t);
    return rc;
}

int nb_bench_lce(const nb_bench_lce_args *a)
{
    bool all = !strcmp(a->impl, "all");
    int which[N_IMPL];
    for (int i = 0; i < N_IMPL; i++)
        which[i] = all || !strcmp(a->impl, impl_names[i]);
    which[N_IMPL - 1] &= !a->vocab_parallel;
    if (a->vocab_parallel && !strcmp(a->impl, "unfused")) {
        fprintf(stderr, "nabla bench lce: --vocab-parallel runs the fused paths only, not "
                        "--impl unfused\n");
        return 2;
    }
    nb_set_num_threads((int)a->threads);
    static nb_dist dist;
    head h = {0};
    h.block = a->block;
    h.filter = a->filter;
    h.vt = a->v;
    long long v = a->v;
    if (a->vocab_parallel) { /* rank r: the classes [r V / P, (r+1) V / P) */
        nb_dist_init(NULL, NULL, &dist);
        h.dist = &dist;
        h.off = dist.rank * a->v / dist.size;
        v = (dist.rank + 1) * a->v / dist.size - h.off;
    }
    int rc = 0;
    if (v < 1 || head_make(&h, a->n, a->d, v, a->v, a->wscale) != 0) {
        fprintf(stderr, "nabla bench lce: %s\n",
                v < 1 ? "--v below the number of ranks" : nb_last_error());
        rc = 1;
    }
    double ms[N_IMPL] = {0};
    size_t peak[N_IMPL] = {0};
    for (int i = 0; i < N_IMPL && rc == 0; i++)
        if (which[i])
            rc = run_impl(&h, a, i, &ms[i], &peak[i]);
    if (rc == 0 && a->filter && (all || which[2]))
        rc = report_filter(&h, a);
    int u = N_IMPL - 1; /* unfused */
    if (rc == 0 && all && !a->json && !a->vocab_parallel)
        for (int i = 0; i < u; i++)
            printf("lce %-15s / unfused: time %.3f, peak extra memory %.4f (1/%.0f)\n",
                   impl_names[i], ms[i] / ms[u], (double)peak[i] / (double)peak[u],
                   (double)peak[u] / (double)peak[i]);
    head_free(&h);
    if (h.dist)
        nb_dist_finalize(h.dist);
    return rc;
}
