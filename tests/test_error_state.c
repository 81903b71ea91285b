/* test_error_state.c - a successful call leaves the caller's error state alone (nabla/status.h),
 * also when it runs user code: nb_custom_op clears the state while the user's forward and
 * backward run (so their own messages are told apart) and must put it back when they succeed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

/* y = 2x, dx += 2 dy (f64) */
static nb_status twice_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)n, (void)ctx;
    for (int64_t i = 0; i < out->numel; i++)
        ((double *)out->data)[i] = 2.0 * ((const double *)in[0]->data)[i];
    return NB_OK;
}

static nb_status twice_bwd(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                           const nb_tensor *const *in, int n, void *ctx)
{
    (void)out, (void)in, (void)n, (void)ctx;
    if (gin[0])
        for (int64_t i = 0; i < gout->numel; i++)
            ((double *)gin[0]->data)[i] += 2.0 * ((const double *)gout->data)[i];
    return NB_OK;
}

static void assert_old_failure_kept(void)
{
    assert_string_equal(nb_last_error(), "an old failure");
    assert_int_equal(nb_last_status(), NB_ERR_IO);
}

static void test_custom_op_keeps_error_state(void **state)
{
    (void)state;
    int64_t s[1] = {3};
    nb_tensor *x = nb_tensor_ones(NB_F64, 1, s);
    assert_non_null(x);
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    nb_graph *g = nb_graph_new();
    assert_non_null(g);

    nb_error(NB_ERR_IO, "an old failure");
    nb_tensor *y = nb_custom_op(g, "twice", &x, 1, 1, s, twice_fwd, twice_bwd, NULL);
    assert_non_null(y);
    assert_old_failure_kept(); /* the forward ran and succeeded */

    nb_tensor *L = nb_sum(g, y);
    assert_non_null(L);
    assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    assert_old_failure_kept(); /* the backward ran and succeeded */
    for (int64_t i = 0; i < 3; i++)
        assert_true(nb_tensor_grad_get(x, i) == 2.0);

    nb_graph_free(g);
    nb_tensor_free(x);
}

/* A failing forward still reports its own failure, not the caller's old one. */
static nb_status refusing_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)out, (void)in, (void)n, (void)ctx;
    return NB_ERR_RANGE;
}

static void test_failing_forward_reports_itself(void **state)
{
    (void)state;
    int64_t s[1] = {2};
    nb_tensor *x = nb_tensor_ones(NB_F64, 1, s);
    nb_graph *g = nb_graph_new();
    nb_error(NB_ERR_IO, "an old failure");
    assert_null(nb_custom_op(g, "refuse", &x, 1, 1, s, refusing_fwd, NULL, NULL));
    assert_int_equal(nb_last_status(), NB_ERR_RANGE);
    assert_non_null(strstr(nb_last_error(), "custom op 'refuse': forward failed"));
    assert_null(strstr(nb_last_error(), "an old failure"));
    nb_graph_free(g);
    nb_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_custom_op_keeps_error_state),
        cmocka_unit_test(test_failing_forward_reports_itself),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
