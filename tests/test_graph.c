/* test_graph.c - the tape: backward, accumulation, no-grad, reset and stale tensors, the arena. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

static nb_tensor *leaf(int64_t n, const double *v)
{
    int64_t s[1] = {n};
    nb_tensor *x = nb_tensor_from_buffer(NB_F64, 1, s, v);
    assert_non_null(x);
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    return x;
}

/* L = sum(x * x + 3 x): dL/dx = 2x + 3, worked by hand. */
static void test_backward_simple(void **state)
{
    (void)state;
    double v[3] = {1, -2, 0.5};
    nb_tensor *x = leaf(3, v);
    nb_graph *g = nb_graph_new();
    nb_tensor *L = nb_sum(g, nb_add(g, nb_mul(g, x, x), nb_scale(g, x, 3.0)));
    assert_non_null(L);
    assert_true(fabs(nb_tensor_get(L, 0) - (1 + 3 + 4 - 6 + 0.25 + 1.5)) < 1e-15);
    assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_grad_get(x, i) == 2 * v[i] + 3);
    assert_int_equal(nb_graph_size(g), 4);
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* Two steps without zero_grad accumulate; zero_grad clears. */
static void test_grads_accumulate_across_steps(void **state)
{
    (void)state;
    double v[2] = {1.5, -0.5};
    nb_tensor *x = leaf(2, v);
    nb_graph *g = nb_graph_new();
    for (int step = 0; step < 2; step++) {
        nb_graph_reset(g);
        nb_tensor *L = nb_sum(g, nb_scale(g, x, 2.0));
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    }
    assert_true(nb_tensor_grad_get(x, 0) == 4.0);
    nb_tensor_zero_grad(x);
    assert_true(nb_tensor_grad_get(x, 0) == 0.0);
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* A tensor used twice in one graph gets the sum of both paths. */
static void test_fan_out(void **state)
{
    (void)state;
    double v[1] = {3};
    nb_tensor *x = leaf(1, v);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_exp(g, x);
    nb_tensor *L = nb_sum(g, nb_add(g, y, nb_mul(g, y, x))); /* e^x + x e^x */
    assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    double want = exp(3.0) * (2 + 3.0); /* e^x + e^x + x e^x */
    assert_true(fabs(nb_tensor_grad_get(x, 0) - want) < 1e-12 * want);
    nb_graph_free(g);
    nb_tensor_free(x);
}

static void test_upstream_gradient(void **state)
{
    (void)state;
    double v[3] = {1, 2, 3}, up[3] = {0.5, -1, 2};
    nb_tensor *x = leaf(3, v);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_scale(g, x, 4.0);
    int64_t s[1] = {3};
    nb_tensor u;
    nb_tensor_view(&u, NB_F64, 1, s, up);
    assert_int_not_equal(nb_backward(g, y, NULL), NB_OK); /* non-scalar root needs upstream */
    assert_non_null(strstr(nb_last_error(), "upstream"));
    assert_int_equal(nb_backward(g, y, &u), NB_OK);
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_grad_get(x, i) == 4 * up[i]);
    nb_graph_free(g);
    nb_tensor_free(x);
}

static void test_backward_twice_is_an_error(void **state)
{
    (void)state;
    double v[1] = {1};
    nb_tensor *x = leaf(1, v);
    nb_graph *g = nb_graph_new();
    nb_tensor *L = nb_sum(g, x);
    assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    assert_int_equal(nb_backward(g, L, NULL), NB_ERR_STATE);
    nb_graph_free(g);
    nb_tensor_free(x);
}

static void test_no_grad_records_nothing(void **state)
{
    (void)state;
    double v[2] = {1, 2};
    nb_tensor *x = leaf(2, v);
    nb_graph *g = nb_graph_new();
    assert_true(nb_graph_set_grad_enabled(g, false));
    nb_tensor *L = nb_sum(g, nb_tanh(g, x));
    assert_non_null(L);
    assert_int_equal(nb_graph_size(g), 0);
    assert_false(L->requires_grad);
    assert_int_equal(nb_backward(g, L, NULL), NB_ERR_STATE);
    assert_false(nb_graph_set_grad_enabled(g, true));
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* Ops on tensors that need no gradient are computed but not recorded. */
static void test_constants_not_recorded(void **state)
{
    (void)state;
    int64_t s[1] = {4};
    nb_tensor *c = nb_tensor_ones(NB_F32, 1, s);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_exp(g, c);
    assert_non_null(y);
    assert_int_equal(nb_graph_size(g), 0);
    assert_true(fabs(nb_tensor_get(y, 0) - exp(1.0)) < 1e-6);
    nb_graph_free(g);
    nb_tensor_free(c);
}

/* After reset an op output is stale: using it is an error, never a read of recycled memory. */
static void test_stale_tensor_detected(void **state)
{
    (void)state;
    double v[2] = {1, 2};
    nb_tensor *x = leaf(2, v);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_tanh(g, x);
    assert_non_null(y);
    nb_graph_reset(g);
    nb_clear_error();
    assert_null(nb_exp(g, y));
    assert_int_equal(nb_last_status(), NB_ERR_STALE);
    assert_non_null(strstr(nb_last_error(), "after nb_graph_reset"));
    /* a whole new step later it is still recognised */
    nb_tensor *z = nb_tanh(g, x);
    assert_non_null(z);
    assert_int_equal(nb_backward(g, y, NULL), NB_ERR_STALE);
    assert_int_equal(nb_graph_check(g, z), NB_OK);
    nb_graph_free(g);
    nb_tensor_free(x);
}

static void test_tensor_from_other_graph(void **state)
{
    (void)state;
    double v[2] = {1, 2};
    nb_tensor *x = leaf(2, v);
    nb_graph *g1 = nb_graph_new(), *g2 = nb_graph_new();
    nb_tensor *y = nb_tanh(g1, x);
    assert_null(nb_exp(g2, y));
    assert_non_null(strstr(nb_last_error(), "another graph"));
    nb_graph_free(g1);
    nb_graph_free(g2);
    nb_tensor_free(x);
}

/* A NULL input (an earlier op failed) propagates and keeps the first error. */
static void test_null_chain_keeps_first_error(void **state)
{
    (void)state;
    int64_t s1[2] = {2, 3}, s2[2] = {4, 5};
    nb_tensor *a = nb_tensor_zeros(NB_F32, 2, s1), *b = nb_tensor_zeros(NB_F32, 2, s2);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_relu(g, nb_matmul(g, a, b, false, false));
    assert_null(y);
    assert_int_equal(nb_last_status(), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "[2, 3]"));
    assert_non_null(strstr(nb_last_error(), "[4, 5]"));
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* After the first steps a steady loop asks the system for no memory. */
static void test_steady_state_allocates_nothing(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 3);
    int64_t sx[2] = {32, 16}, sw[2] = {8, 16}, sb[1] = {8}, st[1] = {32};
    nb_tensor *x = nb_tensor_randn(NB_F32, 2, sx, &r, 0, 1);
    nb_tensor *w = nb_tensor_randn(NB_F32, 2, sw, &r, 0, 0.1);
    nb_tensor *b = nb_tensor_zeros(NB_F32, 1, sb);
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, st);
    nb_tensor_set_requires_grad(w, true);
    nb_tensor_set_requires_grad(b, true);
    nb_graph *g = nb_graph_new();
    uint64_t allocs = 0;
    for (int step = 0; step < 10; step++) {
        nb_graph_reset(g);
        nb_tensor *L = nb_cross_entropy(g, nb_relu(g, nb_linear(g, x, w, b)), t, NULL);
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
        if (step == 2)
            allocs = nb_graph_arena_allocations(g);
    }
    assert_true(allocs > 0);
    assert_true(nb_graph_arena_allocations(g) == allocs);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
    nb_tensor_free(t);
}

/* Many tensors in one step: the arena grows past its first chunk and merges on reset. */
static void test_arena_growth(void **state)
{
    (void)state;
    int64_t s[1] = {100000};
    nb_tensor *x = nb_tensor_ones(NB_F64, 1, s);
    nb_tensor_set_requires_grad(x, true);
    nb_graph *g = nb_graph_new();
    for (int step = 0; step < 3; step++) {
        nb_graph_reset(g);
        nb_tensor *y = x;
        for (int i = 0; i < 20; i++)
            y = nb_scale(g, y, 1.0);
        nb_tensor *L = nb_sum(g, y);
        assert_non_null(L);
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
        assert_true(nb_graph_arena_used(g) <= nb_graph_arena_capacity(g));
    }
    assert_true(nb_tensor_grad_get(x, 99999) == 3.0);
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* Anomaly detection names the first op that turned finite values into NaN/inf. */
static void test_anomaly_forward(void **state)
{
    (void)state;
    double v[3] = {1, -2, 3};
    nb_tensor *x = leaf(3, v);
    nb_graph *g = nb_graph_new();
    nb_graph_set_anomaly_detection(g, true);
    nb_tensor *y = nb_log(g, nb_scale(g, x, 2.0)); /* node 0 scale, node 1 log of -4 */
    assert_null(y);
    assert_int_equal(nb_last_status(), NB_ERR_ANOMALY);
    assert_non_null(strstr(nb_last_error(), "op 'log' (node 1)"));
    assert_non_null(strstr(nb_last_error(), "element 1"));
    assert_non_null(strstr(nb_last_error(), "nan"));
    /* without detection the same graph computes NaN silently */
    nb_graph_reset(g);
    nb_graph_set_anomaly_detection(g, false);
    y = nb_log(g, nb_scale(g, x, 2.0));
    assert_non_null(y);
    assert_true(isnan(nb_tensor_get(y, 1)));
    /* a NaN arriving with the data is reported at the first op that reads it */
    nb_graph_reset(g);
    nb_graph_set_anomaly_detection(g, true);
    ((double *)x->data)[2] = NAN;
    assert_null(nb_tanh(g, x));
    assert_non_null(strstr(nb_last_error(), "input 0 of op 'tanh' (node 0)"));
    assert_non_null(strstr(nb_last_error(), "outside the graph"));
    nb_graph_free(g);
    nb_tensor_free(x);
}

static void test_anomaly_backward(void **state)
{
    (void)state;
    double va[1] = {1e200}, vb[1] = {1e-200};
    nb_tensor *a = leaf(1, va), *b = leaf(1, vb);
    nb_graph *g = nb_graph_new();
    nb_graph_set_anomaly_detection(g, true);
    /* forward: a b = 1, times 1e300: finite. backward: dL/db = 1e300 a = inf */
    nb_tensor *L = nb_sum(g, nb_scale(g, nb_mul(g, a, b), 1e300));
    assert_non_null(L);
    assert_int_equal(nb_backward(g, L, NULL), NB_ERR_ANOMALY);
    assert_non_null(strstr(nb_last_error(), "op 'mul' (node 0)"));
    assert_non_null(strstr(nb_last_error(), "gradient of its input 1"));
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* padded rows with garbage are not anomalies for the fused loss (it never reads them) */
static void test_anomaly_ignores_padding(void **state)
{
    (void)state;
    double z[6] = {1, 2, 3, NAN, INFINITY, -INFINITY};
    int64_t sz[2] = {2, 3}, sy[1] = {2};
    nb_tensor *Z = nb_tensor_from_buffer(NB_F64, 2, sz, z);
    nb_tensor_set_requires_grad(Z, true);
    int32_t t[2] = {1, -100};
    nb_tensor *T = nb_tensor_from_buffer(NB_I32, 1, sy, t);
    nb_graph *g = nb_graph_new();
    nb_graph_set_anomaly_detection(g, true);
    nb_tensor *L = nb_cross_entropy(g, Z, T, NULL);
    assert_non_null(L);
    assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    assert_true(nb_tensor_grad_get(Z, 4) == 0.0);
    nb_graph_free(g);
    nb_tensor_free(Z);
    nb_tensor_free(T);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backward_simple),
        cmocka_unit_test(test_grads_accumulate_across_steps),
        cmocka_unit_test(test_fan_out),
        cmocka_unit_test(test_upstream_gradient),
        cmocka_unit_test(test_backward_twice_is_an_error),
        cmocka_unit_test(test_no_grad_records_nothing),
        cmocka_unit_test(test_constants_not_recorded),
        cmocka_unit_test(test_stale_tensor_detected),
        cmocka_unit_test(test_tensor_from_other_graph),
        cmocka_unit_test(test_null_chain_keeps_first_error),
        cmocka_unit_test(test_steady_state_allocates_nothing),
        cmocka_unit_test(test_arena_growth),
        cmocka_unit_test(test_anomaly_forward),
        cmocka_unit_test(test_anomaly_backward),
        cmocka_unit_test(test_anomaly_ignores_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
