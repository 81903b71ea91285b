/* test_threads.c - nabla's public API from several threads at once, as nabla/graph.h allows:
 * each thread owns its graph, tensors and model; nothing is shared but the library itself.
 *   - the first loss calls of the process come from NT threads at once, so the SIMD kernel
 *     table (resolved on first use) is resolved concurrently: every thread gets the same table
 *     and the bits of the same call made alone afterwards;
 *   - NT trainers (graph, ops, OpenBLAS products, the loss, backward, AdamW) on NT models at
 *     once: each ends bitwise equal to the same run made alone;
 *   - error messages are per thread: NT threads fail at once, each reads its own message.
 * The per-thread work runs the kernels' own OpenMP teams too (the loss is large enough).
 * Runs in every build; under ThreadSanitizer (`make tsan`) a data race fails it. Assertions are
 * made in the main thread after the join (cmocka's are not thread-safe). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loss/xent_simd.h"
#include "ops/ops_internal.h"
#include "nabla.h"

#define NT 4
/* N * V = 2^16 = NB_XPAR_MIN_ELEMS: each call splits its rows over an OpenMP team */
#define LN 64
#define LV 1024

static pthread_barrier_t start;

/* ---- the first loss calls, from NT threads at once ---- */

typedef struct loss_job {
    nb_tensor *logits, *targets; /* made by the main thread before the start */
    nb_tensor *loss, *dlogits;   /* written by the thread */
    const nb_xent_simd *table;
    nb_status s1, s2;
} loss_job;

static void loss_inputs(loss_job *j, uint64_t seed)
{
    int64_t sz[2] = {LN, LV}, st[1] = {LN};
    nb_rng r;
    nb_rng_seed(&r, seed);
    j->logits = nb_tensor_randn(NB_F32, 2, sz, &r, 0.0, 4.0);
    j->targets = nb_tensor_zeros(NB_I32, 1, st);
    assert_non_null(j->logits);
    assert_non_null(j->targets);
    for (int64_t i = 0; i < LN; i++)
        nb_tensor_set(j->targets, i, (double)nb_rng_below(&r, LV));
    j->loss = nb_tensor_zeros(NB_F32, 0, NULL);
    j->dlogits = nb_tensor_zeros(NB_F32, 2, sz);
    assert_non_null(j->loss);
    assert_non_null(j->dlogits);
}

static void loss_run(loss_job *j, nb_tensor *loss, nb_tensor *dlogits)
{
    nb_xent_opts o = nb_xent_defaults();
    nb_tensor *fwd = nb_tensor_zeros(NB_F32, 0, NULL);
    j->s1 = nb_xent_forward(j->logits, j->targets, &o, fwd, NULL, NULL);
    j->s2 = nb_xent_forward_backward(j->logits, j->targets, &o, loss, dlogits, NULL);
    if (j->s1 == NB_OK && nb_tensor_get(fwd, 0) != nb_tensor_get(loss, 0))
        j->s1 = NB_ERR_ARG; /* forward alone and fused forward disagree */
    nb_tensor_free(fwd);
}

static void *loss_thread(void *p)
{
    loss_job *j = p;
    pthread_barrier_wait(&start);
    j->table = nb_xent_simd_get();
    loss_run(j, j->loss, j->dlogits);
    return NULL;
}

static void test_first_loss_calls_concurrent(void **state)
{
    (void)state;
    loss_job jobs[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        loss_inputs(&jobs[i], 100 + (uint64_t)i);
    assert_int_equal(pthread_barrier_init(&start, NULL, NT), 0);
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&th[i], NULL, loss_thread, &jobs[i]), 0);
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);

    const nb_xent_simd *best = nb_xent_simd_get();
    print_message("kernel table resolved from %d threads at once: %s\n", NT, best->name);
    int64_t sz[2] = {LN, LV};
    for (int i = 0; i < NT; i++) {
        loss_job *j = &jobs[i];
        assert_int_equal(j->s1, NB_OK);
        assert_int_equal(j->s2, NB_OK);
        assert_ptr_equal(j->table, best);
        /* the same call alone, in this thread: the same bits */
        nb_tensor *loss = nb_tensor_zeros(NB_F32, 0, NULL), *dz = nb_tensor_zeros(NB_F32, 2, sz);
        loss_run(j, loss, dz);
        assert_int_equal(j->s1, NB_OK);
        assert_memory_equal(loss->data, j->loss->data, sizeof(float));
        assert_memory_equal(dz->data, j->dlogits->data, sizeof(float) * LN * LV);
        nb_tensor_free(loss);
        nb_tensor_free(dz);
        nb_tensor_free(j->logits);
        nb_tensor_free(j->targets);
        nb_tensor_free(j->loss);
        nb_tensor_free(j->dlogits);
    }
}

/* ---- NT trainers on NT models at once ---- */

typedef struct train_job {
    const nb_dataset *ds; /* shared, read-only */
    uint64_t seed;        /* the batch order: each thread trains differently */
    nb_mlp *m;
    nb_status s;
    int64_t steps;
} train_job;

static nb_mlp *small_mlp(void)
{
    int64_t sizes[3] = {2, 32, 3};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.1, NB_F32, 7);
    assert_non_null(m);
    return m;
}

static void train_run(train_job *j)
{
    nb_train_config c = nb_train_defaults();
    c.epochs = 2;
    c.batch = 32;
    c.seed = j->seed;
    c.schedule.warmup = 2;
    nb_train_model model = nb_train_model_mlp(j->m);
    nb_train_result r;
    j->s = nb_train(&model, j->ds, &c, &r);
    j->steps = r.steps;
}

static void *train_thread(void *p)
{
    train_job *j = p;
    pthread_barrier_wait(&start);
    train_run(j);
    return NULL;
}

static void test_trainers_concurrent(void **state)
{
    (void)state;
    nb_tensor *X, *y;
    nb_dataset ds;
    assert_int_equal(nb_spirals(64, 3, 0.1, 3, &X, &y), NB_OK);
    assert_int_equal(nb_dataset_from_tensors(X, y, 3, &ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);

    train_job jobs[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        jobs[i] = (train_job){&ds, 11 + (uint64_t)i, small_mlp(), NB_ERR_ARG, 0};
    assert_int_equal(pthread_barrier_init(&start, NULL, NT), 0);
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&th[i], NULL, train_thread, &jobs[i]), 0);
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < NT; i++) {
        assert_int_equal(jobs[i].s, NB_OK);
        assert_int_equal(jobs[i].steps, 2 * 6); /* 192 rows in batches of 32, 2 epochs */
        train_job alone = {&ds, jobs[i].seed, small_mlp(), NB_ERR_ARG, 0};
        train_run(&alone);
        assert_int_equal(alone.s, NB_OK);
        for (int k = 0; k < nb_mlp_param_count(alone.m); k++) {
            nb_tensor *p = nb_mlp_param(jobs[i].m, k, NULL, 0),
                      *q = nb_mlp_param(alone.m, k, NULL, 0);
            assert_memory_equal(p->data, q->data, sizeof(float) * (size_t)p->numel);
        }
        nb_mlp_free(alone.m);
    }
    /* the runs differ from each other (different batch orders): a thread did its own work */
    nb_tensor *w0 = nb_mlp_param(jobs[0].m, 0, NULL, 0), *w1 = nb_mlp_param(jobs[1].m, 0, NULL, 0);
    assert_true(memcmp(w0->data, w1->data, sizeof(float) * (size_t)w0->numel) != 0);
    for (int i = 0; i < NT; i++)
        nb_mlp_free(jobs[i].m);
    nb_dataset_free(&ds);
}

/* ---- error messages per thread ---- */

typedef struct err_job {
    int id;
    char msg[256];
    nb_status code;
} err_job;

static void *err_thread(void *p)
{
    err_job *j = p;
    nb_clear_error();
    pthread_barrier_wait(&start);
    (void)nb_dtype_size((nb_dtype)(100 + j->id)); /* fails with this thread's value */
    pthread_barrier_wait(&start);                 /* every thread has failed */
    snprintf(j->msg, sizeof j->msg, "%s", nb_last_error());
    j->code = nb_last_status();
    return NULL;
}

static void test_errors_per_thread(void **state)
{
    (void)state;
    err_job jobs[NT];
    pthread_t th[NT];
    assert_int_equal(pthread_barrier_init(&start, NULL, NT), 0);
    for (int i = 0; i < NT; i++) {
        jobs[i] = (err_job){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, err_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < NT; i++) {
        char want[64];
        snprintf(want, sizeof want, "nb_dtype_size: dtype %d out of range", 100 + i);
        print_message("thread %d: %s\n", i, jobs[i].msg);
        assert_int_equal(jobs[i].code, NB_ERR_ARG);
        assert_non_null(strstr(jobs[i].msg, want));
    }
}

static void *kernel_threads_seen(void *arg)
{
    *(int *)arg = nb_kernel_threads();
    return NULL;
}

/* nb_set_num_threads is process-wide: a thread started before or after the call, other than the
 * one that made it, sizes its kernels' OpenMP teams by it (omp_set_num_threads would not). */
static void test_num_threads_process_wide(void **state)
{
    (void)state;
    for (int n = 1; n <= 3; n++) {
        nb_set_num_threads(n);
        int seen = -1;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, kernel_threads_seen, &seen), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(seen, n);
        assert_int_equal(nb_kernel_threads(), n);
    }
    nb_set_num_threads(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: no loss call may come before it in this process */
        cmocka_unit_test(test_first_loss_calls_concurrent),
        cmocka_unit_test(test_trainers_concurrent),
        cmocka_unit_test(test_errors_per_thread),
        cmocka_unit_test(test_num_threads_process_wide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
