/* test_custom_op.c - ops with a user forward and backward on the tape (nabla/custom_op.h):
 * values and gradients against hand-worked derivatives, the += convention, gradcheck finding a
 * wrong backward at the right element, anomaly detection naming the custom op, a failing
 * backward stopping nb_backward with its message, and every argument check. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

/* ---- softplus: y = log(1 + e^x), dy/dx = sigmoid(x) ---- */

static nb_status softplus_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    for (int64_t i = 0; i < out->numel; i++) {
        double x = nb_tensor_get(in[0], i);
        nb_tensor_set(out, i, x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)));
    }
    return NB_OK;
}

/* mode 0: right (+=); 1: overwrites (=) instead of accumulating; 2: wrong derivative at one
 * element (flat index 7); 3: returns an error; 4: writes NaN */
static nb_status softplus_bwd(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                              const nb_tensor *const *in, int n, void *ctx)
{
    (void)out;
    (void)n;
    int mode = ctx ? *(const int *)ctx : 0;
    if (mode == 3)
        return nb_error(NB_ERR_RANGE, "my backward refuses: step %d", 42);
    if (!gin[0])
        return NB_OK;
    for (int64_t i = 0; i < gout->numel; i++) {
        double sig = 1.0 / (1.0 + exp(-nb_tensor_get(in[0], i)));
        if (mode == 2 && i == 7)
            sig *= 1.5;
        double d = nb_tensor_get(gout, i) * sig;
        if (mode == 4 && i == 2)
            d = NAN;
        nb_tensor_set(gin[0], i, mode == 1 ? d : nb_tensor_get(gin[0], i) + d);
    }
    return NB_OK;
}

typedef struct {
    int mode;
    bool twice; /* y = softplus(x) + x: x has two uses */
} sp_ctx;

static nb_tensor *softplus_f(nb_graph *g, nb_tensor *const *in, int n, void *vctx)
{
    (void)n;
    sp_ctx *c = vctx;
    nb_tensor *y = nb_custom_op(g, "softplus", in, 1, in[0]->ndim, in[0]->shape, softplus_fwd,
                                softplus_bwd, &c->mode);
    return c->twice ? nb_add(g, y, in[0]) : y;
}

static nb_tensor *make_x(nb_dtype t, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    int64_t s[2] = {3, 4};
    nb_tensor *x = nb_tensor_rand(t, 2, s, &r, -2, 2);
    assert_non_null(x);
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    return x;
}

static void test_values_and_gradient(void **state)
{
    (void)state;
    nb_tensor *x = make_x(NB_F64, 1);
    nb_graph *g = nb_graph_new();
    int mode = 0;
    nb_tensor *y =
        nb_custom_op(g, "softplus", &x, 1, 2, x->shape, softplus_fwd, softplus_bwd, &mode);
    assert_non_null(y);
    assert_string_equal(nb_tensor_op_name(y), "softplus");
    assert_int_equal(y->dtype, NB_F64);
    for (int64_t i = 0; i < 12; i++)
        assert_true(fabs(nb_tensor_get(y, i) - log(1.0 + exp(nb_tensor_get(x, i)))) < 1e-14);
    nb_tensor *s = nb_sum(g, nb_scale(g, y, 3.0));
    assert_int_equal(nb_backward(g, s, NULL), NB_OK);
    for (int64_t i = 0; i < 12; i++) {
        double want = 3.0 / (1.0 + exp(-nb_tensor_get(x, i)));
        assert_true(fabs(nb_tensor_grad_get(x, i) - want) < 1e-14);
    }
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* The custom op takes part in nb_gradcheck like a built-in op: right backward passes (in f64,
 * and in f32 by promotion), with the op used twice. */
static void test_gradcheck_passes_right_backward(void **state)
{
    (void)state;
    sp_ctx c = {0, true};
    nb_tensor *x = make_x(NB_F64, 2);
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(softplus_f, &x, 1, &c, NULL, &res), NB_OK);
    assert_true(res.max_rel_err < 1e-6);
    assert_int_equal(res.n_checked, 12);
    nb_tensor_free(x);

    nb_tensor *xf = make_x(NB_F32, 2);
    nb_gradcheck_opts o = {0};
    o.promote_f32 = true;
    assert_int_equal(nb_gradcheck(softplus_f, &xf, 1, &c, &o, &res), NB_OK);
    assert_true(res.promoted);
    assert_true(res.max_rel_err < 1e-6);
    nb_tensor_free(xf);
}

/* Overwriting (=) instead of accumulating (+=) loses the gradient of the other use of x
 * (y = softplus(x) + x: the add's backward runs first and puts 1 there): every element is off
 * by the add's share, so numeric / analytic = (sig + 1) / sig at every element. */
static void test_gradcheck_catches_overwrite(void **state)
{
    (void)state;
    sp_ctx c = {1, true};
    nb_tensor *x = make_x(NB_F64, 3);
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(softplus_f, &x, 1, &c, NULL, &res), NB_OK);
    /* analytic = r sig, numeric = r (sig + 1): relative error 1 / (1 + sig) > 0.5 everywhere */
    assert_true(res.max_rel_err > 0.5);
    double sig = 1.0 / (1.0 + exp(-nb_tensor_get(x, res.worst_index)));
    assert_true(fabs((res.worst_numeric - res.worst_analytic) / res.worst_analytic - 1.0 / sig) <
                1e-6);
    nb_tensor_free(x);
}

/* A wrong derivative at flat index 7 of a [3, 4] input: gradcheck names [1, 3]. */
static void test_gradcheck_names_wrong_element(void **state)
{
    (void)state;
    sp_ctx c = {2, false};
    nb_tensor *x = make_x(NB_F64, 4);
    nb_gradcheck_result res;
    nb_gradcheck_opts o = {0};
    o.k_worst = 3;
    assert_int_equal(nb_gradcheck(softplus_f, &x, 1, &c, &o, &res), NB_OK);
    assert_int_equal(res.worst_index, 7);
    assert_int_equal(res.worst_ndim, 2);
    assert_int_equal(res.worst_coords[0], 1);
    assert_int_equal(res.worst_coords[1], 3);
    assert_true(fabs(res.worst_analytic / res.worst_numeric - 1.5) < 1e-6);
    /* the other elements are right: the second worst is far below */
    assert_int_equal(res.n_worst, 3);
    assert_true(res.worst[1].rel_err < 1e-6);
    nb_tensor_free(x);
}

static void test_backward_error_stops_backward(void **state)
{
    (void)state;
    nb_tensor *x = make_x(NB_F64, 5);
    nb_graph *g = nb_graph_new();
    int mode = 3;
    nb_tensor *y =
        nb_custom_op(g, "softplus", &x, 1, 2, x->shape, softplus_fwd, softplus_bwd, &mode);
    nb_tensor *s = nb_sum(g, y);
    assert_int_equal(nb_backward(g, s, NULL), NB_ERR_RANGE);
    assert_non_null(strstr(nb_last_error(), "custom op 'softplus' (node 0) backward failed"));
    assert_non_null(strstr(nb_last_error(), "my backward refuses: step 42"));
    assert_true(nb_tensor_grad_get(x, 0) == 0.0); /* nothing reached x */
    nb_graph_free(g);
    nb_tensor_free(x);
}

static nb_status silent_fail_bwd(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                                 const nb_tensor *const *in, int n, void *ctx)
{
    (void)gin, (void)gout, (void)out, (void)in, (void)n, (void)ctx;
    return NB_ERR_STATE;
}

static void test_backward_error_without_message(void **state)
{
    (void)state;
    nb_tensor *x = make_x(NB_F64, 5);
    nb_graph *g = nb_graph_new();
    nb_tensor *y =
        nb_custom_op(g, "quiet", &x, 1, 2, x->shape, softplus_fwd, silent_fail_bwd, NULL);
    assert_int_equal(nb_backward(g, nb_sum(g, y), NULL), NB_ERR_STATE);
    assert_non_null(strstr(nb_last_error(), "custom op 'quiet' (node 0) backward failed: it "
                                            "returned"));
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* exp without care: overflows to inf for x > 709 */
static nb_status exp_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    for (int64_t i = 0; i < out->numel; i++)
        nb_tensor_set(out, i, exp(nb_tensor_get(in[0], i)));
    return NB_OK;
}

static void test_anomaly_forward_and_backward(void **state)
{
    (void)state;
    int64_t s[1] = {4};
    nb_tensor *x = nb_tensor_zeros(NB_F64, 1, s);
    nb_tensor_set_requires_grad(x, true);
    nb_tensor_set(x, 2, 800.0);
    nb_graph *g = nb_graph_new();
    nb_graph_set_anomaly_detection(g, true);
    nb_tensor *y = nb_custom_op(g, "my_exp", &x, 1, 1, s, exp_fwd, softplus_bwd, NULL);
    assert_null(y);
    assert_int_equal(nb_last_status(), NB_ERR_ANOMALY);
    assert_non_null(strstr(nb_last_error(), "op 'my_exp' (node 0) produced inf"));
    assert_non_null(strstr(nb_last_error(), "element 2"));

    /* backward writing NaN into element 2 of x's gradient */
    nb_graph_reset(g);
    nb_tensor_set(x, 2, 0.5);
    int mode = 4;
    y = nb_custom_op(g, "softplus", &x, 1, 1, s, softplus_fwd, softplus_bwd, &mode);
    assert_non_null(y);
    assert_int_equal(nb_backward(g, nb_sum(g, y), NULL), NB_ERR_ANOMALY);
    assert_non_null(strstr(nb_last_error(), "op 'softplus' (node 0) wrote nan into the gradient "
                                            "of its input 0 at element 2"));
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* two inputs, a scalar output: y = sum_i a_i b_i^2, da = b^2, db = 2 a b */
static nb_status dot2_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    double s = 0;
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double b = nb_tensor_get(in[1], i);
        s += nb_tensor_get(in[0], i) * b * b;
    }
    nb_tensor_set(out, 0, s);
    return NB_OK;
}

static nb_status dot2_bwd(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                          const nb_tensor *const *in, int n, void *ctx)
{
    (void)out;
    (void)n;
    (void)ctx;
    double gy = nb_tensor_get(gout, 0);
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double a = nb_tensor_get(in[0], i), b = nb_tensor_get(in[1], i);
        if (gin[0])
            nb_tensor_set(gin[0], i, nb_tensor_get(gin[0], i) + gy * b * b);
        if (gin[1])
            nb_tensor_set(gin[1], i, nb_tensor_get(gin[1], i) + gy * 2 * a * b);
    }
    return NB_OK;
}

static nb_tensor *dot2_f(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    return nb_custom_op(g, "dot2", in, 2, 0, NULL, dot2_fwd, dot2_bwd, NULL);
}

static void test_two_inputs_constant_gets_null(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 9);
    int64_t s[1] = {5};
    nb_tensor *in[2] = {nb_tensor_rand(NB_F64, 1, s, &r, -1, 1),
                        nb_tensor_rand(NB_F64, 1, s, &r, -1, 1)};
    nb_tensor_set_requires_grad(in[1], true); /* a is a constant: gin[0] is NULL */
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(dot2_f, in, 2, NULL, NULL, &res), NB_OK);
    assert_true(res.max_rel_err < 1e-6);
    assert_false(res.per_input[0].checked);
    assert_true(res.per_input[1].checked);
    nb_tensor_set_requires_grad(in[0], true);
    assert_int_equal(nb_gradcheck(dot2_f, in, 2, NULL, NULL, &res), NB_OK);
    assert_true(res.max_rel_err < 1e-6);
    assert_int_equal(res.n_checked, 10);
    nb_tensor_free(in[0]);
    nb_tensor_free(in[1]);
}

static nb_status failing_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)out, (void)in, (void)n, (void)ctx;
    return nb_error(NB_ERR_SHAPE, "expected 3 columns, got %d", 4);
}

static void test_argument_errors(void **state)
{
    (void)state;
    nb_tensor *x = make_x(NB_F64, 6);
    nb_tensor *xf = make_x(NB_F32, 6);
    nb_graph *g = nb_graph_new();
    int64_t s2[2] = {3, 4};
    assert_null(nb_custom_op(g, NULL, &x, 1, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "name must be 1 to 63"));
    assert_null(nb_custom_op(g, "", &x, 1, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "got ''"));
    char longname[80];
    memset(longname, 'a', 70);
    longname[70] = '\0';
    assert_null(nb_custom_op(g, longname, &x, 1, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "63"));
    assert_null(nb_custom_op(g, "sp", &x, 1, 2, s2, NULL, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "custom op 'sp': forward function is NULL"));
    assert_null(nb_custom_op(g, "sp", &x, 1, 2, s2, softplus_fwd, NULL, NULL));
    assert_non_null(strstr(nb_last_error(), "backward function is NULL but an input requires"));
    nb_tensor *five[5] = {x, x, x, x, x};
    assert_null(nb_custom_op(g, "sp", five, 5, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "custom op 'sp': 5 inputs; it takes 1 to 4"));
    assert_null(nb_custom_op(g, "sp", &x, 1, 5, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "output has 5 dims; at most 4"));
    nb_tensor *mixed[2] = {x, xf};
    assert_null(nb_custom_op(g, "sp", mixed, 2, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "input 1 is f32 and input 0 is f64"));
    nb_tensor *none[1] = {NULL};
    nb_clear_error(); /* a NULL input keeps an earlier op's error; without one it is named */
    assert_null(nb_custom_op(g, "sp", none, 1, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "input 0 is NULL"));
    int64_t neg[2] = {3, -1};
    assert_null(nb_custom_op(g, "sp", &x, 1, 2, neg, softplus_fwd, softplus_bwd, NULL));
    assert_non_null(strstr(nb_last_error(), "custom op 'sp': output:"));
    assert_null(nb_custom_op(g, "sp", &x, 1, 2, s2, failing_fwd, softplus_bwd, NULL));
    assert_int_equal(nb_last_status(), NB_ERR_SHAPE);
    assert_non_null(
        strstr(nb_last_error(), "custom op 'sp': forward failed: expected 3 columns, got 4"));
    /* stale input after reset */
    nb_tensor *y = nb_custom_op(g, "sp", &x, 1, 2, s2, softplus_fwd, softplus_bwd, NULL);
    assert_non_null(y);
    nb_graph_reset(g);
    assert_null(nb_custom_op(g, "sp", &y, 1, 2, s2, softplus_fwd, softplus_bwd, NULL));
    assert_int_equal(nb_last_status(), NB_ERR_STALE);
    /* no backward is fine when nothing needs a gradient */
    bool prev = nb_graph_set_grad_enabled(g, false);
    assert_non_null(nb_custom_op(g, "sp", &x, 1, 2, s2, softplus_fwd, NULL, NULL));
    nb_graph_set_grad_enabled(g, prev);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(xf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_gradient),
        cmocka_unit_test(test_gradcheck_passes_right_backward),
        cmocka_unit_test(test_gradcheck_catches_overwrite),
        cmocka_unit_test(test_gradcheck_names_wrong_element),
        cmocka_unit_test(test_backward_error_stops_backward),
        cmocka_unit_test(test_backward_error_without_message),
        cmocka_unit_test(test_anomaly_forward_and_backward),
        cmocka_unit_test(test_two_inputs_constant_gets_null),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
