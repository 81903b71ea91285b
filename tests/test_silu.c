/* test_silu.c - SiLU / swish, y = x sigmoid(x): values against the formula written out here in
 * long double, f32 against f64, NaN propagation, the gradient against central differences (its
 * op-table cases), and its place in the op table. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/op_samples.h"
#include "nabla.h"

static long double silu_ref(long double x)
{
    return x / (1.0L + expl(-x));
}

static void test_values(void **state)
{
    (void)state;
    const double xs[] = {-40, -5, -1, -1e-3, 0, 1e-3, 0.5, 1, 3, 40};
    int64_t n = (int64_t)(sizeof xs / sizeof xs[0]);
    nb_tensor *x = nb_tensor_empty(NB_F64, 1, &n), *x32 = nb_tensor_empty(NB_F32, 1, &n);
    for (int64_t i = 0; i < n; i++) {
        ((double *)x->data)[i] = xs[i];
        ((float *)x32->data)[i] = (float)xs[i];
    }
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_silu(g, x), *y32 = nb_silu(g, x32);
    assert_non_null(y);
    assert_non_null(y32);
    assert_string_equal(nb_tensor_op_name(y), "leaf"); /* no input requires grad: no node */
    for (int64_t i = 0; i < n; i++) {
        double want = (double)silu_ref(xs[i]), got = ((double *)y->data)[i];
        assert_true(fabs(got - want) <= 1e-15 * fmax(1.0, fabs(want)));
        float got32 = ((float *)y32->data)[i];
        assert_true(fabs(got32 - want) <= 2e-7 * fmax(1.0, fabs(want)));
    }
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(x32);
}

static void test_nan_and_errors(void **state)
{
    (void)state;
    int64_t n = 2;
    nb_tensor *x = nb_tensor_empty(NB_F32, 1, &n);
    ((float *)x->data)[0] = NAN;
    ((float *)x->data)[1] = -INFINITY;
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_silu(g, x);
    assert_true(isnan(((float *)y->data)[0]));
    assert_true(((float *)y->data)[1] == 0.0f || isnan(((float *)y->data)[1]));
    nb_tensor *i = nb_tensor_empty(NB_I64, 1, &n);
    assert_null(nb_silu(g, i));
    assert_non_null(strstr(nb_last_error(), "silu"));
    assert_non_null(strstr(nb_last_error(), "i64"));
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(i);
}

static nb_tensor *apply(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    const nb_op_info *op = ctx;
    return op->apply(op, g, in, n, op->cases[0].args);
}

/* in the table, recorded under its own name, and its gradient within the bar on every case */
static void test_table_and_gradient(void **state)
{
    (void)state;
    const nb_op_info *op = nb_op_find("silu");
    assert_non_null(op);
    assert_true(op->n_cases >= 2);
    nb_rng r;
    nb_sample_rng(&r, 1, op);
    for (int k = 0; k < op->n_cases; k++) {
        nb_tensor *in[NB_OP_MAX_INPUTS];
        int n;
        char desc[160];
        assert_int_equal(nb_sample_make(op, k, &r, in, &n, desc, sizeof desc), NB_OK);
        nb_gradcheck_result res;
        assert_int_equal(nb_gradcheck(apply, in, n, (void *)op, NULL, &res), NB_OK);
        if (!(res.max_rel_err < 1e-6))
            fail_msg("silu %s: max rel err %.3e", desc, res.max_rel_err);
        nb_graph *g = nb_graph_new();
        assert_string_equal(nb_tensor_op_name(nb_silu(g, in[0])), "silu");
        nb_graph_free(g);
        for (int j = 0; j < NB_OP_MAX_INPUTS; j++)
            nb_tensor_free(in[j]);
    }
}

/* f32 backward agrees with f64 backward (the reference) */
static void test_f32_gradient(void **state)
{
    (void)state;
    int64_t n = 64;
    nb_rng r;
    nb_rng_seed(&r, 3);
    nb_tensor *x64 = nb_tensor_rand(NB_F64, 1, &n, &r, -6, 6);
    nb_tensor *x32 = nb_tensor_to_dtype(x64, NB_F32);
    nb_tensor_set_requires_grad(x64, true);
    nb_tensor_set_requires_grad(x32, true);
    nb_graph *g = nb_graph_new();
    assert_int_equal(nb_backward(g, nb_sum(g, nb_silu(g, x64)), NULL), NB_OK);
    nb_graph_reset(g);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_silu(g, x32)), NULL), NB_OK);
    for (int64_t i = 0; i < n; i++) {
        double a = ((double *)x64->grad)[i], b = ((float *)x32->grad)[i];
        assert_true(fabs(a - b) <= 1e-6 * fmax(1.0, fabs(a)));
    }
    nb_graph_free(g);
    nb_tensor_free(x64);
    nb_tensor_free(x32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_nan_and_errors),
        cmocka_unit_test(test_table_and_gradient),
        cmocka_unit_test(test_f32_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
