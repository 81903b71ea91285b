/* tests/lce_vocab_main.c - the vocabulary-parallel fused linear + cross-entropy (nabla/lce.h,
 * nb_lce_opts.classes_total) under `mpirun -np P`, against the single-process op.
 *
 * Every rank makes the same data from a fixed seed: x [N,D], W [V,D], b [V], targets (global),
 * mask, class weights. Rank r holds the classes [r V / P, (r+1) V / P) (V is chosen not divisible
 * by 2 or 3, so slices differ in size) and runs nb_linear_cross_entropy on its slice with an
 * MPI_Allreduce callback; it also runs the op unsharded on the whole W. The loss and dL/dx (on
 * every rank) and the rank's rows of dL/dW and dL/db must equal the unsharded ones: per tensor,
 * max_i |got_i - ref_i| <= tol max_i |ref_i| (scaled by the tensor's largest entry), tol 1e-12 for
 * f64 and 1e-6 for f32; NaN and infinite entries must match in place and value. Cases: mean, sum,
 * none; smoothing with class weights; mask and ignore_index; z-loss; soft-cap; one pass and
 * recompute; small blocks and tiles; [B,T,D]; targets all in the first V/3 classes (a rank with
 * no target); a NaN row; -inf logits (a whole slice, with and without smoothing; every logit); an
 * upstream gradient of 2.5.
 *
 * `lce_vocab_main bench N D V REPS [one_pass]`: time per step (forward + backward, median of
 * REPS) and peak resident memory per rank, for the measurements in docs/fused-linear-xent.md. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nabla.h"

static int rank, size;

static nb_status mpi_allreduce(void *buf, int64_t n, nb_dtype dt, nb_lce_reduce_op op, void *ctx)
{
    (void)ctx;
    if (n > 0x7fffffff)
        return nb_error(NB_ERR_ARG, "mpi_allreduce: n %lld above %d", (long long)n, 0x7fffffff);
    MPI_Datatype t = dt == NB_F64 ? MPI_DOUBLE : MPI_FLOAT;
    MPI_Op o = op == NB_LCE_MAX ? MPI_MAX : MPI_SUM;
    if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, t, o, MPI_COMM_WORLD) != MPI_SUCCESS)
        return nb_error(NB_ERR_IO, "mpi_allreduce: MPI_Allreduce failed");
    return NB_OK;
}

/* a case; zero fields take the defaults of norm(): f64, [N,D] = [13,5], V = 23, bias, upstream 1 */
typedef struct vcase {
    const char *name;
    bool f32, no_bias;
    nb_dtype dt;
    int ndim;
    int64_t N, D, V;
    bool bias, weights, mask, ignore, one_pass, low_targets, nan_row, neginf, neginf_all;
    nb_reduction red;
    double smooth, zloss, cap, up;
    int64_t br, tv;
} vcase;

typedef struct data {
    nb_tensor *x, *w, *b, *t, *mask, *weight;
} data;

static data make(const vcase *k)
{
    data d;
    nb_rng r;
    nb_rng_seed(&r, 1234);
    int64_t sx[3] = {k->N, k->D}, st[2] = {k->N}, sw[2] = {k->V, k->D}, sb[1] = {k->V};
    if (k->ndim == 3) /* [B,T,D], B = 3 */
        sx[0] = 3, sx[1] = k->N / 3, sx[2] = k->D, st[0] = 3, st[1] = k->N / 3;
    d.x = nb_tensor_rand(k->dt, k->ndim, sx, &r, -1, 1);
    d.w = nb_tensor_rand(k->dt, 2, sw, &r, -2, 2);
    d.b = k->bias ? nb_tensor_rand(k->dt, 1, sb, &r, -0.5, 0.5) : NULL;
    d.t = nb_tensor_empty(NB_I64, k->ndim - 1, st);
    d.mask = k->mask ? nb_tensor_ones(NB_U8, k->ndim - 1, st) : NULL;
    d.weight = k->weights ? nb_tensor_rand(NB_F64, 1, sb, &r, 0.2, 2.0) : NULL;
    if (!d.x || !d.w || !d.t || (k->bias && !d.b) || (k->mask && !d.mask) ||
        (k->weights && !d.weight)) {
        fprintf(stderr, "lce_vocab: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    uint64_t hi = k->low_targets ? (uint64_t)(k->V / 3) : (uint64_t)k->V;
    for (int64_t n = 0; n < k->N; n++)
        ((int64_t *)d.t->data)[n] = k->ignore && n % 4 == 1 ? -100 : (int64_t)nb_rng_below(&r, hi);
    if (d.mask)
        ((uint8_t *)d.mask->data)[0] = ((uint8_t *)d.mask->data)[k->N - 1] = 0;
    if (d.weight)
        ((double *)d.weight->data)[1] = 0.0; /* a class of weight 0 */
    if (k->nan_row)
        nb_tensor_set(d.x, 2 * k->D + 1, NAN);
    for (int64_t c = k->neginf_all ? 0 : k->V / 2; (k->neginf || k->neginf_all) && c < k->V; c++)
        nb_tensor_set(d.b, c, -INFINITY);
    return d;
}

static void drop(data *d)
{
    nb_tensor *all[] = {d->x, d->w, d->b, d->t, d->mask, d->weight};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
}

/* rows [r0, r0 + n) of a 2-D (or 1-D) tensor, copied */
static nb_tensor *rows_of(const nb_tensor *t, int64_t r0, int64_t n)
{
    if (!t)
        return NULL;
    int64_t shape[2] = {n, t->ndim == 2 ? t->shape[1] : 1};
    nb_tensor *s = nb_tensor_empty(t->dtype, t->ndim, shape);
    if (!s)
        MPI_Abort(MPI_COMM_WORLD, 2);
    size_t es = t->dtype == NB_F64 ? 8 : 4, row = (size_t)(t->numel / t->shape[0]) * es;
    memcpy(s->data, (const char *)t->data + (size_t)r0 * row, (size_t)n * row);
    return s;
}

typedef struct result {
    double *loss, *dx, *dw, *db;
    int64_t nloss;
} result;

static double *grads(const nb_tensor *t)
{
    double *g = malloc(sizeof(double) * (size_t)(t ? t->numel : 1));
    for (int64_t i = 0; t && g && i < t->numel; i++)
        g[i] = nb_tensor_grad_get(t, i);
    return g;
}

/* the op on x, W, b (classes [off, off + W's V) of Vt; Vt 0: unsharded), backward with upstream
 * k->up (ones for none, times up) */
static result run(const vcase *k, data *d, nb_tensor *w, nb_tensor *b, int64_t off, int64_t Vt)
{
    nb_tensor *in[3] = {d->x, w, b};
    for (int i = 0; i < 3; i++)
        if (in[i]) {
            nb_tensor_set_requires_grad(in[i], true);
            nb_tensor_zero_grad(in[i]);
        }
    nb_lce_opts o = nb_lce_defaults();
    o.xent.reduction = k->red, o.xent.label_smoothing = k->smooth, o.xent.z_loss = k->zloss;
    o.xent.mask = d->mask, o.xent.weight = d->weight;
    o.softcap = k->cap, o.one_pass = k->one_pass, o.block_rows = k->br, o.tile_classes = k->tv;
    o.class_offset = off, o.classes_total = Vt, o.allreduce = Vt ? mpi_allreduce : NULL;
    nb_graph *g = nb_graph_new();
    nb_tensor *loss = g ? nb_linear_cross_entropy(g, d->x, w, b, d->t, &o) : NULL;
    nb_tensor *up = loss ? nb_tensor_full(loss->dtype, loss->ndim, loss->shape, k->up) : NULL;
    if (!up || nb_backward(g, loss, up) != NB_OK) {
        fprintf(stderr, "rank %d: %s: %s\n", rank, k->name, nb_last_error());
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    result r = {.nloss = loss->numel};
    r.loss = malloc(sizeof(double) * (size_t)loss->numel);
    for (int64_t i = 0; r.loss && i < loss->numel; i++)
        r.loss[i] = nb_tensor_get(loss, i);
    r.dx = grads(d->x), r.dw = grads(w), r.db = b ? grads(b) : NULL;
    if (!r.loss || !r.dx || !r.dw || (b && !r.db))
        MPI_Abort(MPI_COMM_WORLD, 2);
    nb_tensor_free(up);
    nb_graph_free(g);
    return r;
}

static void release(result *r)
{
    free(r->loss), free(r->dx), free(r->dw), free(r->db);
}

/* max |got - ref| <= tol max |ref| over the finite entries; NaN and inf entries equal */
static int close_to(const vcase *k, const char *what, const double *got, const double *ref,
                    int64_t n, double tol)
{
    double scale = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(ref[i]) || isnan(got[i]) || isinf(ref[i]) || isinf(got[i])) {
            bool same = (isnan(ref[i]) && isnan(got[i])) || ref[i] == got[i];
            if (!same) {
                printf("FAIL rank %d/%d %s: %s[%lld] = %g, single process %g\n", rank, size,
                       k->name, what, (long long)i, got[i], ref[i]);
                return 1;
            }
            continue;
        }
        scale = fmax(scale, fabs(ref[i]));
        err = fmax(err, fabs(got[i] - ref[i]));
    }
    if (getenv("LCE_VOCAB_VERBOSE") && rank == size - 1)
        printf("rank %d/%d %-45s %-4s err/scale %.2e\n", rank, size, k->name, what,
               scale > 0.0 ? err / scale : err);
    if (err <= tol * scale)
        return 0;
    printf("FAIL rank %d/%d %s: %s max error %.3e against max |ref| %.3e (tol %.0e)\n", rank, size,
           k->name, what, err, scale, tol);
    return 1;
}

static int check(const vcase *k)
{
    data d = make(k);
    int64_t off = rank * k->V / size, Vr = (rank + 1) * k->V / size - off;
    nb_tensor *ws = rows_of(d.w, off, Vr), *bs = rows_of(d.b, off, Vr);
    result ref = run(k, &d, d.w, d.b, 0, 0);
    result got = run(k, &d, ws, bs, off, k->V);
    double tol = k->dt == NB_F64 ? 1e-12 : 1e-6;
    int bad = close_to(k, "loss", got.loss, ref.loss, ref.nloss, tol);
    bad += close_to(k, "dx", got.dx, ref.dx, d.x->numel, tol);
    /* the slice's rows of dW and db against the whole ones' (scaled by the whole tensor's max) */
    double *gw = malloc(sizeof(double) * (size_t)d.w->numel);
    double *gb = malloc(sizeof(double) * (size_t)k->V);
    if (!gw || !gb)
        MPI_Abort(MPI_COMM_WORLD, 2);
    memcpy(gw, ref.dw, sizeof(double) * (size_t)d.w->numel);
    memcpy(gw + off * k->D, got.dw, sizeof(double) * (size_t)(Vr * k->D));
    bad += close_to(k, "dW", gw, ref.dw, d.w->numel, tol);
    if (d.b) {
        memcpy(gb, ref.db, sizeof(double) * (size_t)k->V);
        memcpy(gb + off, got.db, sizeof(double) * (size_t)Vr);
        bad += close_to(k, "db", gb, ref.db, k->V, tol);
    }
    free(gw), free(gb);
    release(&ref), release(&got);
    nb_tensor_free(ws), nb_tensor_free(bs);
    drop(&d);
    return bad;
}

#define C(...)                                                                                     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static vcase norm(vcase k)
{
    k.dt = k.f32 ? NB_F32 : NB_F64;
    k.bias = !k.no_bias;
    k.ndim = k.ndim ? k.ndim : 2;
    k.N = k.N ? k.N : 13, k.D = k.D ? k.D : 5, k.V = k.V ? k.V : 23;
    k.up = k.up != 0.0 ? k.up : 1.0;
    return k;
}

static const vcase cases[] = {
    C(.name = "f64 mean"),
    C(.name = "f64 mean, one pass", .one_pass = true),
    C(.name = "f64 sum, no bias", .red = NB_REDUCTION_SUM, .no_bias = true),
    C(.name = "f64 none", .red = NB_REDUCTION_NONE),
    C(.name = "f64 none, one pass", .red = NB_REDUCTION_NONE, .one_pass = true),
    C(.name = "f64 smoothing + weights", .smooth = 0.1, .weights = true),
    C(.name = "f64 smoothing + weights, one pass", .smooth = 0.1, .weights = true,
      .one_pass = true),
    C(.name = "f64 mask + ignore_index", .mask = true, .ignore = true),
    C(.name = "f64 mask + ignore_index, weights, one pass", .mask = true, .ignore = true,
      .weights = true, .one_pass = true),
    C(.name = "f64 z-loss", .zloss = 1e-2),
    C(.name = "f64 soft-cap", .cap = 1.5, .smooth = 0.05),
    C(.name = "f64 soft-cap, one pass", .cap = 1.5, .one_pass = true),
    C(.name = "f64 all options, blocks 4 tiles 3", .smooth = 0.1, .weights = true, .mask = true,
      .ignore = true, .zloss = 1e-2, .cap = 2.0, .br = 4, .tv = 3),
    C(.name = "f64 all options, one pass, blocks 4", .smooth = 0.1, .weights = true, .mask = true,
      .ignore = true, .zloss = 1e-2, .cap = 2.0, .br = 4, .one_pass = true),
    C(.name = "f64 targets in the first V/3 classes", .low_targets = true, .smooth = 0.1),
    C(.name = "f64 targets in the first V/3, one pass", .low_targets = true, .one_pass = true),
    C(.name = "f64 [B,T,D] none", .ndim = 3, .N = 15, .red = NB_REDUCTION_NONE, .mask = true),
    C(.name = "f64 NaN row, none", .nan_row = true, .red = NB_REDUCTION_NONE),
    C(.name = "f64 -inf logits (classes V/2 ..)", .neginf = true, .low_targets = true, .tv = 4),
    C(.name = "f64 -inf logits, smoothing (loss inf)", .neginf = true, .low_targets = true,
      .smooth = 0.1, .tv = 4),
    C(.name = "f64 every logit -inf (rows NaN), none", .neginf_all = true, .red = NB_REDUCTION_NONE,
      .smooth = 0.1),
    C(.name = "f32 every logit -inf, one pass", .f32 = true, .neginf_all = true, .one_pass = true),
    C(.name = "f32 -inf logits, one pass", .f32 = true, .neginf = true, .low_targets = true,
      .one_pass = true),
    C(.name = "f64 upstream 2.5, one pass", .up = 2.5, .one_pass = true, .smooth = 0.1),
    C(.name = "f64 upstream 2.5, none", .up = 2.5, .red = NB_REDUCTION_NONE),
    C(.name = "f32 mean", .f32 = true),
    C(.name = "f32 mean, one pass", .f32 = true, .one_pass = true),
    C(.name = "f32 all options", .f32 = true, .smooth = 0.1, .weights = true, .mask = true,
      .ignore = true, .zloss = 1e-2, .cap = 2.0, .br = 4, .tv = 3),
    C(.name = "f32 all options, one pass", .f32 = true, .smooth = 0.1, .weights = true,
      .mask = true, .ignore = true, .zloss = 1e-2, .one_pass = true),
    C(.name = "f32 sum, targets in the first V/3", .f32 = true, .red = NB_REDUCTION_SUM,
      .low_targets = true),
    C(.name = "f32 none, V = 3001 (vector kernels)", .f32 = true, .V = 3001, .N = 37, .D = 16,
      .red = NB_REDUCTION_NONE, .smooth = 0.1),
    C(.name = "f64 V = 3001", .V = 3001, .N = 37, .D = 16, .smooth = 0.1, .weights = true),
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* time per step (forward + backward) and peak RSS per rank at N, D, V (f32) */
static int bench(int64_t N, int64_t D, int64_t V, int reps, bool one_pass)
{
    vcase k =
        norm((vcase){.name = "bench", .f32 = true, .N = N, .D = D, .V = V, .one_pass = one_pass});
    int64_t off = rank * V / size, Vr = (rank + 1) * V / size - off;
    data d = make(&k);
    nb_tensor *ws = rows_of(d.w, off, Vr), *bs = rows_of(d.b, off, Vr);
    nb_tensor_free(d.w), nb_tensor_free(d.b); /* each rank keeps only its slice */
    d.w = d.b = NULL;
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int i = 0; t && i < reps + 1; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        result r = run(&k, &d, ws, bs, size > 1 ? off : 0, size > 1 ? V : 0);
        double dt = now() - t0;
        release(&r);
        if (i > 0) /* the first step warms up */
            t[i - 1] = dt;
    }
    if (!t)
        return 1;
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rank %d/%d: N %lld D %lld V %lld (slice %lld) %s: step median %.1f ms (min %.1f, "
           "max %.1f), peak RSS %.1f MiB, blas %s\n",
           rank, size, (long long)N, (long long)D, (long long)V, (long long)Vr,
           one_pass ? "one pass" : "recompute", 1e3 * t[reps / 2], 1e3 * t[0], 1e3 * t[reps - 1],
           (double)ru.ru_maxrss / 1024.0, nb_blas_core_name());
    free(t);
    nb_tensor_free(ws), nb_tensor_free(bs);
    drop(&d);
    return 0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int bad = 0;
    if (argc >= 6 && strcmp(argv[1], "bench") == 0) {
        bad = bench(atoll(argv[2]), atoll(argv[3]), atoll(argv[4]), atoi(argv[5]),
                    argc > 6 && strcmp(argv[6], "one_pass") == 0);
        MPI_Finalize();
        return bad;
    }
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        vcase k = norm(cases[i]);
        bad += check(&k);
    }
    int total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s: %d cases on %d rank(s), %d failure(s)\n", total ? "FAIL" : "ok", n, size,
               total);
    MPI_Finalize();
    return total != 0;
}
