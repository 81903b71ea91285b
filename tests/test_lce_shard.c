/* tests/test_lce_shard.c - the vocabulary-parallel fused linear + cross-entropy (nabla/lce.h,
 * nb_lce_opts.classes_total) in one process, without MPI:
 *   - P "ranks" as P pthreads, each holding the classes [r V / P, (r+1) V / P) of W and b and
 *     calling nb_linear_cross_entropy on its own graph; the all-reduce callback combines their
 *     buffers in rank order behind barriers (a deterministic MPI_Allreduce). Loss and dL/dx of
 *     every rank and the union of the dL/dW, dL/db slices equal the unsharded op's: max |got -
 *     ref| <= tol max |ref| per tensor, tol 1e-12 (f64) and 1e-6 (f32), for P = 1 .. 4 (V = 23:
 *     unequal slices; P = 4 with targets in the first V/4 classes: ranks without a target);
 *   - a failing callback is the op's error; the argument checks name the value and the limit;
 *   - smoothing over a tile whose logits are all -inf gives +inf in f32 as in f64 and as the
 *     materialising reference (it was dropped in f32 before sharding made tile edges matter).
 * The MPI test (test_lce_vocab.sh) runs the same comparison under mpirun. Assertions are made in
 * the main thread after the join (cmocka's are not thread-safe). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss/lce_ref.h" /* nb_lce_reference: test-only */
#include "nabla.h"

#define PMAX 4
#define N 13
#define D 5
#define V 23

/* ---- an all-reduce over pthreads ---- */

typedef struct team {
    pthread_barrier_t bar;
    double acc[N * D > 6 * N ? N *D : 6 * N];
    int size;
    int calls;
} team;

typedef struct member {
    team *t;
    int rank;
} member;

static void combine(double *acc, const void *buf, int64_t i, nb_dtype dt, nb_lce_reduce_op op,
                    bool first)
{
    double v = dt == NB_F64 ? ((const double *)buf)[i] : (double)((const float *)buf)[i];
    acc[i] = first ? v : op == NB_LCE_MAX ? (v > acc[i] ? v : acc[i]) : acc[i] + v;
}

/* in rank order: rank 0 copies, the others fold in; then every rank reads the result. f32 sums
 * are accumulated in double here (rounded once), a little better than MPI's f32 sums. */
static nb_status thread_allreduce(void *buf, int64_t n, nb_dtype dt, nb_lce_reduce_op op, void *ctx)
{
    member *m = ctx;
    team *t = m->t;
    if (n > (int64_t)(sizeof t->acc / sizeof t->acc[0]))
        return nb_error(NB_ERR_ARG, "thread_allreduce: n %lld above %zu", (long long)n,
                        sizeof t->acc / sizeof t->acc[0]);
    pthread_barrier_wait(&t->bar);
    for (int r = 0; r < t->size; r++) {
        if (r == m->rank)
            for (int64_t i = 0; i < n; i++)
                combine(t->acc, buf, i, dt, op, r == 0);
        pthread_barrier_wait(&t->bar);
    }
    for (int64_t i = 0; i < n; i++)
        if (dt == NB_F64)
            ((double *)buf)[i] = t->acc[i];
        else
            ((float *)buf)[i] = (float)t->acc[i];
    if (m->rank == 0)
        t->calls++;
    pthread_barrier_wait(&t->bar);
    return NB_OK;
}

/* ---- the problem ---- */

typedef struct problem {
    nb_dtype dt;
    nb_tensor *x, *w, *b, *t, *mask, *weight;
} problem;

static problem make(nb_dtype dt, uint64_t hi, uint64_t seed)
{
    problem p = {.dt = dt};
    nb_rng r;
    nb_rng_seed(&r, seed);
    int64_t sx[2] = {N, D}, st[1] = {N}, sw[2] = {V, D}, sb[1] = {V};
    p.x = nb_tensor_rand(dt, 2, sx, &r, -1, 1);
    p.w = nb_tensor_rand(dt, 2, sw, &r, -2, 2);
    p.b = nb_tensor_rand(dt, 1, sb, &r, -0.5, 0.5);
    p.t = nb_tensor_empty(NB_I64, 1, st);
    p.mask = nb_tensor_ones(NB_U8, 1, st);
    p.weight = nb_tensor_rand(NB_F64, 1, sb, &r, 0.2, 2.0);
    assert_true(p.x && p.w && p.b && p.t && p.mask && p.weight);
    for (int64_t n = 0; n < N; n++)
        ((int64_t *)p.t->data)[n] = n % 4 == 1 ? -100 : (int64_t)nb_rng_below(&r, hi);
    ((uint8_t *)p.mask->data)[N - 1] = 0;
    ((double *)p.weight->data)[1] = 0.0;
    return p;
}

static void drop(problem *p)
{
    nb_tensor *all[] = {p->x, p->w, p->b, p->t, p->mask, p->weight};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
}

static nb_tensor *rows_of(const nb_tensor *t, int64_t r0, int64_t n)
{
    int64_t shape[2] = {n, t->ndim == 2 ? t->shape[1] : 1};
    nb_tensor *s = nb_tensor_empty(t->dtype, t->ndim, shape);
    size_t es = t->dtype == NB_F64 ? 8 : 4, row = (size_t)(t->numel / t->shape[0]) * es;
    if (s)
        memcpy(s->data, (const char *)t->data + (size_t)r0 * row, (size_t)n * row);
    return s;
}

/* what one run gives: loss (N for none), dx, dW, db as doubles */
typedef struct result {
    double loss[N], dx[N * D], dw[V * D], db[V];
    nb_status st;
} result;

/* the op on (x, w, b) of problem p with options o, upstream ones; a rank's x is its own copy */
static void run(const problem *p, nb_tensor *x, nb_tensor *w, nb_tensor *b, const nb_lce_opts *o,
                result *r)
{
    nb_tensor *in[3] = {x, w, b};
    for (int i = 0; i < 3; i++) {
        nb_tensor_set_requires_grad(in[i], true);
        nb_tensor_zero_grad(in[i]);
    }
    nb_graph *g = nb_graph_new();
    nb_tensor *loss = g ? nb_linear_cross_entropy(g, x, w, b, p->t, o) : NULL;
    nb_tensor *up = loss ? nb_tensor_ones(loss->dtype, loss->ndim, loss->shape) : NULL;
    r->st = up ? nb_backward(g, loss, up) : nb_last_status();
    for (int64_t i = 0; r->st == NB_OK && i < loss->numel; i++)
        r->loss[i] = nb_tensor_get(loss, i);
    for (int64_t i = 0; r->st == NB_OK && i < x->numel; i++)
        r->dx[i] = nb_tensor_grad_get(x, i);
    for (int64_t i = 0; r->st == NB_OK && i < w->numel; i++)
        r->dw[i] = nb_tensor_grad_get(w, i);
    for (int64_t i = 0; r->st == NB_OK && i < b->numel; i++)
        r->db[i] = nb_tensor_grad_get(b, i);
    nb_tensor_free(up);
    nb_graph_free(g);
}

typedef struct rank_job {
    member m;
    const problem *p;
    nb_lce_opts o;
    result *r;
    int64_t off, nv;
} rank_job;

static void *rank_main(void *arg)
{
    rank_job *j = arg;
    nb_set_num_threads(1);
    nb_tensor *x = nb_tensor_clone(j->p->x), *w = rows_of(j->p->w, j->off, j->nv),
              *b = rows_of(j->p->b, j->off, j->nv);
    j->o.class_offset = j->off, j->o.classes_total = V;
    j->o.allreduce = thread_allreduce, j->o.allreduce_ctx = &j->m;
    if (x && w && b)
        run(j->p, x, w, b, &j->o, j->r);
    else
        j->r->st = NB_ERR_NOMEM;
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(b);
    return NULL;
}

static void expect_close(const char *what, int P, const double *got, const double *ref, int64_t n,
                         double tol)
{
    double scale = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(ref[i]));
        double e = fabs(got[i] - ref[i]);
        err = e > err || e != e ? e : err;
    }
    if (!(err <= tol * scale)) {
        print_error("P %d %s: max error %.3e against max |ref| %.3e (tol %.0e)\n", P, what, err,
                    scale, tol);
        fail();
    }
}

/* P threads as ranks against the unsharded op; returns the number of reduction calls */
static int sharded_equals_whole(const problem *p, const nb_lce_opts *o, int P)
{
    static result ref, got[PMAX];
    nb_tensor *x = nb_tensor_clone(p->x), *w = nb_tensor_clone(p->w), *b = nb_tensor_clone(p->b);
    assert_true(x && w && b);
    run(p, x, w, b, o, &ref);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(b);
    assert_int_equal(ref.st, NB_OK);
    team t = {.size = P};
    assert_int_equal(pthread_barrier_init(&t.bar, NULL, (unsigned)P), 0);
    rank_job jobs[PMAX];
    pthread_t th[PMAX];
    for (int r = 0; r < P; r++) {
        int64_t off = r * V / P;
        jobs[r] = (rank_job){
            .m = {&t, r}, .p = p, .o = *o, .r = &got[r], .off = off, .nv = (r + 1) * V / P - off};
        assert_int_equal(pthread_create(&th[r], NULL, rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < P; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&t.bar);
    double tol = p->dt == NB_F64 ? 1e-12 : 1e-6, dw[V * D], db[V];
    int64_t nl = o->xent.reduction == NB_REDUCTION_NONE ? N : 1;
    for (int r = 0; r < P; r++) {
        assert_int_equal(got[r].st, NB_OK);
        expect_close("loss", P, got[r].loss, ref.loss, nl, tol);
        expect_close("dx", P, got[r].dx, ref.dx, N * D, tol);
        memcpy(dw + jobs[r].off * D, got[r].dw, sizeof(double) * (size_t)(jobs[r].nv * D));
        memcpy(db + jobs[r].off, got[r].db, sizeof(double) * (size_t)jobs[r].nv);
    }
    expect_close("dW", P, dw, ref.dw, V * D, tol);
    expect_close("db", P, db, ref.db, V, tol);
    return t.calls;
}

static void test_threads_as_ranks(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        problem p = make(f ? NB_F32 : NB_F64, V, 7 + (uint64_t)f);
        nb_lce_opts o = nb_lce_defaults();
        o.xent.mask = p.mask, o.xent.weight = p.weight, o.xent.label_smoothing = 0.1;
        o.xent.z_loss = 1e-2, o.softcap = 2.0, o.block_rows = 4, o.tile_classes = 3;
        for (int P = 1; P <= PMAX; P++) {
            o.one_pass = false;
            /* blocks [0,4) [4,8) [8,12) hold real rows ([12,13) is masked): per block MAX and
             * SUM in the forward, a dx SUM in the backward */
            assert_int_equal(sharded_equals_whole(&p, &o, P), 9);
            o.one_pass = true;
            sharded_equals_whole(&p, &o, P);
        }
        o.xent.reduction = NB_REDUCTION_NONE, o.xent.weight = NULL;
        o.block_rows = o.tile_classes = 0;
        sharded_equals_whole(&p, &o, 3);
        drop(&p);
    }
}

static void test_rank_without_targets(void **state)
{
    (void)state;
    problem p = make(NB_F64, V / 4, 11); /* every target in rank 0's slice of 4 */
    nb_lce_opts o = nb_lce_defaults();
    o.xent.label_smoothing = 0.2, o.xent.weight = p.weight;
    sharded_equals_whole(&p, &o, 4);
    o.one_pass = true, o.xent.reduction = NB_REDUCTION_SUM;
    sharded_equals_whole(&p, &o, 4);
    drop(&p);
}

static nb_status failing_allreduce(void *buf, int64_t n, nb_dtype dt, nb_lce_reduce_op op,
                                   void *ctx)
{
    (void)buf, (void)dt, (void)op, (void)ctx;
    return nb_error(NB_ERR_IO, "fake allreduce: link down after %lld values", (long long)n);
}

static void expect_error(const problem *p, nb_tensor *w, const nb_lce_opts *o, nb_status want,
                         const char *detail)
{
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    assert_null(nb_linear_cross_entropy(g, p->x, w, p->b, p->t, o));
    assert_int_equal(nb_last_status(), want);
    if (!strstr(nb_last_error(), detail)) {
        print_error("message '%s' lacks '%s'\n", nb_last_error(), detail);
        fail();
    }
    nb_graph_free(g);
}

static void test_checks(void **state)
{
    (void)state;
    problem p = make(NB_F64, V, 3);
    nb_tensor *w7 = rows_of(p.w, 16, 7), *b7 = rows_of(p.b, 16, 7);
    assert_true(w7 && b7);
    nb_lce_opts o = nb_lce_defaults();
    o.classes_total = -1;
    expect_error(&p, p.w, &o, NB_ERR_ARG, "classes_total -1 outside [0, 2147483647]");
    o = nb_lce_defaults(), o.class_offset = 3;
    expect_error(&p, p.w, &o, NB_ERR_ARG, "class_offset 3 needs classes_total > 0");
    o = nb_lce_defaults(), o.classes_total = 30, o.class_offset = 8,
    o.allreduce = failing_allreduce;
    expect_error(&p, p.w, &o, NB_ERR_ARG,
                 "[class_offset 8, + V 23) must lie in [0, classes_total 30)");
    o.class_offset = -1;
    expect_error(&p, p.w, &o, NB_ERR_ARG, "[class_offset -1, + V 23)");
    o.class_offset = 0, o.allreduce = NULL;
    expect_error(&p, p.w, &o, NB_ERR_ARG, "classes_total 30 shards the classes, which needs an");
    /* targets are global: 22 is fine for a slice of 7 at 16, 23 is not */
    o = nb_lce_defaults(), o.classes_total = V, o.class_offset = 16;
    o.allreduce = failing_allreduce;
    ((int64_t *)p.t->data)[0] = 23;
    nb_graph *g = nb_graph_new();
    assert_null(nb_linear_cross_entropy(g, p.x, w7, b7, p.t, &o));
    assert_int_equal(nb_last_status(), NB_ERR_RANGE);
    assert_non_null(strstr(nb_last_error(), "[0, 23)"));
    ((int64_t *)p.t->data)[0] = 22;
    /* the callback's failure is the op's */
    assert_null(nb_linear_cross_entropy(g, p.x, w7, b7, p.t, &o));
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "link down after 26 values")); /* MAX: 2 x 13 */
    /* class weights are the full vector: a slice-sized one is refused */
    int64_t s7[1] = {7};
    nb_tensor *wt7 = nb_tensor_ones(NB_F64, 1, s7);
    o.xent.weight = wt7;
    assert_null(nb_linear_cross_entropy(g, p.x, w7, b7, p.t, &o));
    assert_int_equal(nb_last_status(), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "23"));
    nb_graph_free(g);
    nb_tensor_free(wt7), nb_tensor_free(w7), nb_tensor_free(b7);
    drop(&p);
}

/* smoothing with a tile of all -inf logits (bias -inf on classes [0, 8), tiles of 8): +inf, as
 * the reference, in f32 and f64 */
static void test_all_neg_inf_tile(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        problem p = make(f ? NB_F32 : NB_F64, V, 5);
        for (int64_t c = 0; c < 8; c++)
            nb_tensor_set(p.b, c, -INFINITY);
        for (int64_t n = 0; n < N; n++)
            ((int64_t *)p.t->data)[n] = 9 + n % 5;
        nb_lce_opts o = nb_lce_defaults();
        o.xent.label_smoothing = 0.1, o.tile_classes = 8;
        nb_tensor *ref = nb_tensor_zeros(NB_F64, 0, NULL);
        assert_int_equal(nb_lce_reference(p.x, p.w, p.b, p.t, &o, ref, NULL, NULL, NULL), NB_OK);
        assert_true(isinf(nb_tensor_get(ref, 0)) && nb_tensor_get(ref, 0) > 0);
        nb_graph *g = nb_graph_new();
        nb_tensor *loss = nb_linear_cross_entropy(g, p.x, p.w, p.b, p.t, &o);
        assert_non_null(loss);
        assert_true(isinf(nb_tensor_get(loss, 0)) && nb_tensor_get(loss, 0) > 0);
        nb_graph_free(g);
        nb_tensor_free(ref);
        drop(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_as_ranks),
        cmocka_unit_test(test_rank_without_targets),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_all_neg_inf_tile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
