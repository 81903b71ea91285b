/* test_optim_step.c - the optimiser's fast step (src/optim/optim_step.c) against its plain
 * reference (nb_optim_step_reference):
 *   - for SGD (plain, weight decay, momentum, dampening, Nesterov), Adam (with and without L2
 *     weight decay) and AdamW on f32 parameters of sizes around the chunk size, the threading
 *     threshold set low enough for 2 threads to split them: parameters and state bitwise equal to
 * the reference's after every step, through nb_optim_step and nb_optim_step_zero_grad, at 1 and 2
 * threads;
 *   - nb_optim_step_zero_grad's norm equals the gradients' norm summed element by element in
 *     double (to 1e-13 relative: both sums are of exact products, in another order), is the
 *     same bits at 1 and 2 threads, and the gradients are zero afterwards;
 *   - an optimiser with an f64 parameter (the reference loops) zeroes and reports the norm too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "optim/optim_internal.h" /* nb_optim_step_reference: test-only */

#define NP 6
/* around the chunk (1024), a tail, and a large one (the threshold of threading is set below the
 * total in main, so that 2 threads split the chunks) */
static const int64_t sizes[NP] = {1, 7, 1024, 1025, 3001, 70001};

static void make_params(nb_tensor **p, nb_dtype dt, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int i = 0; i < NP; i++) {
        int64_t s[1] = {sizes[i]};
        p[i] = nb_tensor_rand(dt, 1, s, &r, -1, 1);
        assert_non_null(p[i]);
        assert_int_equal(nb_tensor_set_requires_grad(p[i], true), NB_OK);
    }
}

static void free_params(nb_tensor **p)
{
    for (int i = 0; i < NP; i++)
        nb_tensor_free(p[i]);
}

/* the same gradients (step s) into a and b; some exact zeros and negative zeros among them */
static void set_grads(nb_tensor **a, nb_tensor **b, int s)
{
    nb_rng r;
    nb_rng_seed(&r, 100 + (uint64_t)s);
    for (int i = 0; i < NP; i++)
        for (int64_t k = 0; k < a[i]->numel; k++) {
            float g = (float)(4.0 * nb_rng_uniform(&r) - 2.0);
            if (k % 97 == 3)
                g = 0.0f;
            if (k % 89 == 5)
                g = -0.0f;
            ((float *)a[i]->grad)[k] = g;
            ((float *)b[i]->grad)[k] = g;
        }
}

static int differ(const void *x, const void *y, int64_t n)
{
    return memcmp(x, y, (size_t)n * sizeof(float)) != 0;
}

/* parameters and every state tensor of two optimisers bitwise equal */
static void assert_same(const char *what, int step, nb_tensor **a, nb_tensor **b,
                        const nb_optim *oa, const nb_optim *ob)
{
    int bad = 0;
    for (int i = 0; i < NP; i++)
        if (differ(a[i]->data, b[i]->data, a[i]->numel)) {
            print_error("%s step %d: parameter %d differs from the reference\n", what, step, i);
            bad++;
        }
    assert_int_equal(nb_optim_state_count(oa), nb_optim_state_count(ob));
    for (int i = 0; i < nb_optim_state_count(oa); i++) {
        const char *name;
        nb_tensor *sa = nb_optim_state_tensor(oa, i, &name),
                  *sb = nb_optim_state_tensor(ob, i, NULL);
        if (differ(sa->data, sb->data, sa->numel)) {
            print_error("%s step %d: state %s differs from the reference\n", what, step, name);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static nb_optim_config cfg(nb_optim_kind kind, double wd, double mom, double damp, bool nesterov)
{
    nb_optim_config c = nb_optim_defaults(kind);
    c.lr = kind == NB_OPTIM_SGD ? 0.05 : 0.01;
    c.weight_decay = wd;
    c.momentum = mom;
    c.dampening = damp;
    c.nesterov = nesterov;
    return c;
}

/* 4 steps of c by the reference and by the fast step (fused with the zeroing when fused) */
static void check_config(const char *what, const nb_optim_config *c, int threads, bool fused)
{
    nb_set_num_threads(threads);
    nb_tensor *a[NP], *b[NP];
    make_params(a, NB_F32, 7);
    make_params(b, NB_F32, 7);
    nb_optim *oa = nb_optim_new(c, a, NP), *ob = nb_optim_new(c, b, NP);
    assert_non_null(oa);
    assert_non_null(ob);
    for (int s = 1; s <= 4; s++) {
        set_grads(a, b, s);
        assert_int_equal(nb_optim_step_reference(oa), NB_OK);
        if (fused) {
            double norm = -1;
            assert_int_equal(nb_optim_step_zero_grad(ob, &norm), NB_OK);
            assert_true(norm > 0);
            for (int i = 0; i < NP; i++)
                for (int64_t k = 0; k < b[i]->numel; k++)
                    assert_true(((float *)b[i]->grad)[k] == 0.0f);
        } else
            assert_int_equal(nb_optim_step(ob), NB_OK);
        assert_int_equal(nb_optim_step_count(oa), s);
        assert_int_equal(nb_optim_step_count(ob), s);
        assert_same(what, s, a, b, oa, ob);
    }
    nb_optim_free(oa);
    nb_optim_free(ob);
    free_params(a);
    free_params(b);
    nb_set_num_threads(1);
}

static void test_fast_equals_reference(void **state)
{
    (void)state;
    struct {
        const char *name;
        nb_optim_config c;
    } cases[] = {
        {"sgd", cfg(NB_OPTIM_SGD, 0, 0, 0, false)},
        {"sgd_wd", cfg(NB_OPTIM_SGD, 0.1, 0, 0, false)},
        {"sgd_momentum", cfg(NB_OPTIM_SGD, 0.01, 0.9, 0, false)},
        {"sgd_dampening", cfg(NB_OPTIM_SGD, 0, 0.9, 0.3, false)},
        {"sgd_nesterov", cfg(NB_OPTIM_SGD, 0.01, 0.9, 0, true)},
        {"adam", cfg(NB_OPTIM_ADAM, 0, 0, 0, false)},
        {"adam_l2", cfg(NB_OPTIM_ADAM, 0.1, 0, 0, false)},
        {"adamw", cfg(NB_OPTIM_ADAMW, 0.1, 0, 0, false)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 2; threads++)
            for (int fused = 0; fused <= 1; fused++) {
                char what[64];
                snprintf(what, sizeof what, "%s, %d thread(s)%s", cases[i].name, threads,
                         fused ? ", fused" : "");
                check_config(what, &cases[i].c, threads, fused);
            }
}

/* the fused norm against the element-by-element sum, at 1 and 2 threads */
static void test_fused_norm(void **state)
{
    (void)state;
    double norms[2];
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        nb_tensor *a[NP], *b[NP];
        make_params(a, NB_F32, 3);
        make_params(b, NB_F32, 3);
        set_grads(a, b, 1);
        double sq = 0;
        for (int i = 0; i < NP; i++)
            for (int64_t k = 0; k < a[i]->numel; k++) {
                double g = ((float *)a[i]->grad)[k];
                sq += g * g;
            }
        nb_optim_config c = nb_optim_defaults(NB_OPTIM_ADAMW);
        nb_optim *o = nb_optim_new(&c, a, NP);
        assert_non_null(o);
        assert_int_equal(nb_optim_step_zero_grad(o, &norms[threads - 1]), NB_OK);
        double want = sqrt(sq);
        if (!(fabs(norms[threads - 1] - want) <= 1e-13 * want))
            fail_msg("%d thread(s): fused norm %.17g, element by element %.17g", threads,
                     norms[threads - 1], want);
        nb_optim_free(o);
        free_params(a);
        free_params(b);
    }
    nb_set_num_threads(1);
    assert_memory_equal(&norms[0], &norms[1], sizeof(double));
}

/* an f64 parameter among f32 ones: the reference loops, still fused with the norm and zeroing */
static void test_mixed_dtypes(void **state)
{
    (void)state;
    int64_t s3[1] = {3}, s2[1] = {2};
    nb_tensor *p[2] = {nb_tensor_zeros(NB_F32, 1, s3), nb_tensor_zeros(NB_F64, 1, s2)};
    assert_int_equal(nb_tensor_set_requires_grad(p[0], true), NB_OK);
    assert_int_equal(nb_tensor_set_requires_grad(p[1], true), NB_OK);
    const float g32[3] = {1, 2, 2};
    const double g64[2] = {-4, 0};
    memcpy(p[0]->grad, g32, sizeof g32);
    memcpy(p[1]->grad, g64, sizeof g64);
    nb_optim_config c = nb_optim_defaults(NB_OPTIM_SGD);
    c.lr = 0.5;
    nb_optim *o = nb_optim_new(&c, p, 2);
    assert_non_null(o);
    double norm = -1;
    assert_int_equal(nb_optim_step_zero_grad(o, &norm), NB_OK);
    assert_true(norm == 5.0); /* sqrt(1 + 4 + 4 + 16) */
    const float w32[3] = {-0.5f, -1.0f, -1.0f};
    const double w64[2] = {2.0, 0.0};
    assert_memory_equal(p[0]->data, w32, sizeof w32);
    assert_memory_equal(p[1]->data, w64, sizeof w64);
    for (int k = 0; k < 3; k++)
        assert_true(((float *)p[0]->grad)[k] == 0.0f);
    for (int k = 0; k < 2; k++)
        assert_true(((double *)p[1]->grad)[k] == 0.0);
    assert_int_equal(nb_optim_step(o), NB_OK); /* zero gradients: nothing moves */
    assert_memory_equal(p[0]->data, w32, sizeof w32);
    nb_optim_free(o);
    nb_tensor_free(p[0]);
    nb_tensor_free(p[1]);
}

int main(void)
{
    nb_optim_set_parallel_min(50000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_equals_reference),
        cmocka_unit_test(test_fused_norm),
        cmocka_unit_test(test_mixed_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
