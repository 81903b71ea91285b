/* test_ops.c - forward values of every op against hand-worked numbers, f32 and f64, and the
 * errors ops give for bad shapes and dtypes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

static nb_tensor *mk(nb_dtype t, int ndim, const int64_t *s, const double *v)
{
    nb_tensor *x = nb_tensor_empty(t, ndim, s);
    assert_non_null(x);
    for (int64_t i = 0; i < x->numel; i++)
        nb_tensor_set(x, i, v[i]);
    return x;
}

static void expect(const nb_tensor *y, const double *want, int64_t n, double tol)
{
    assert_non_null(y);
    assert_int_equal(y->numel, n);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(nb_tensor_get(y, i) - want[i]) <= tol * fmax(1.0, fabs(want[i]))))
            fail_msg("element %lld: got %.17g want %.17g", (long long)i, nb_tensor_get(y, i),
                     want[i]);
}

static void test_matmul_values(void **state)
{
    (void)state;
    int64_t sa[2] = {2, 3}, sb[2] = {3, 2};
    double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    for (int d = 0; d < 2; d++) {
        nb_dtype t = d ? NB_F64 : NB_F32;
        nb_tensor *A = mk(t, 2, sa, a), *B = mk(t, 2, sb, b);
        nb_graph *g = nb_graph_new();
        double ab[4] = {58, 64, 139, 154};
        expect(nb_matmul(g, A, B, false, false), ab, 4, 1e-6);
        /* A^T [3,2] x B^T [2,3] = (BA)^T */
        double atbt[9] = {39, 49, 59, 54, 68, 82, 69, 87, 105};
        expect(nb_matmul(g, A, B, true, true), atbt, 9, 1e-6);
        nb_tensor *C = nb_matmul(g, A, A, false, false);
        assert_null(C);
        assert_int_equal(nb_last_status(), NB_ERR_SHAPE);
        assert_non_null(strstr(nb_last_error(), "[2, 3]"));
        nb_graph_free(g);
        nb_tensor_free(A);
        nb_tensor_free(B);
    }
}

static void test_linear_values(void **state)
{
    (void)state;
    int64_t sx[2] = {1, 2}, sw[2] = {3, 2}, sb[1] = {3};
    double x[2] = {1, -1}, w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {0.5, 0, -0.5};
    nb_tensor *X = mk(NB_F32, 2, sx, x), *W = mk(NB_F32, 2, sw, w), *B = mk(NB_F32, 1, sb, b);
    nb_graph *g = nb_graph_new();
    double want[3] = {-0.5, -1, -1.5};
    expect(nb_linear(g, X, W, B), want, 3, 1e-7);
    assert_null(nb_linear(g, X, W, X)); /* bias [1, 2] is not [out] = [3] */
    assert_non_null(strstr(nb_last_error(), "bias [1, 2]"));
    int64_t sbad[2] = {3, 3};
    nb_tensor *Wbad = nb_tensor_zeros(NB_F32, 2, sbad);
    assert_null(nb_linear(g, X, Wbad, B)); /* in = 2 vs 3 */
    assert_non_null(strstr(nb_last_error(), "input [1, 2] does not match weight [3, 3]"));
    nb_tensor_free(Wbad);
    nb_graph_free(g);
    nb_tensor_free(X);
    nb_tensor_free(W);
    nb_tensor_free(B);
}

static void test_broadcasting(void **state)
{
    (void)state;
    int64_t s[2] = {2, 3}, r[1] = {3}, one[1] = {1}, bad[1] = {2};
    double a[6] = {1, 2, 3, 4, 5, 6}, row[3] = {10, 20, 30}, sc[1] = {2}, b2[2] = {1, 1};
    nb_tensor *A = mk(NB_F64, 2, s, a), *R = mk(NB_F64, 1, r, row), *S = mk(NB_F64, 1, one, sc);
    nb_tensor *Bad = mk(NB_F64, 1, bad, b2);
    nb_graph *g = nb_graph_new();
    double add_row[6] = {11, 22, 33, 14, 25, 36};
    expect(nb_add(g, A, R), add_row, 6, 0);
    double sub_row_left[6] = {9, 18, 27, 6, 15, 24};
    expect(nb_sub(g, R, A), sub_row_left, 6, 0);
    double mul_sc[6] = {2, 4, 6, 8, 10, 12};
    expect(nb_mul(g, A, S), mul_sc, 6, 0);
    double div_sc[6] = {2, 1, 2.0 / 3, 0.5, 0.4, 1.0 / 3};
    expect(nb_div(g, S, A), div_sc, 6, 1e-15);
    assert_null(nb_add(g, A, Bad));
    assert_int_equal(nb_last_status(), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "[2, 3] and [2]"));
    nb_graph_free(g);
    nb_tensor_free(A);
    nb_tensor_free(R);
    nb_tensor_free(S);
    nb_tensor_free(Bad);
}

static void test_unary_values(void **state)
{
    (void)state;
    int64_t s[1] = {4};
    double x[4] = {-2, -0.5, 0.5, 3};
    for (int d = 0; d < 2; d++) {
        nb_dtype t = d ? NB_F64 : NB_F32;
        double tol = d ? 1e-15 : 1e-7;
        nb_tensor *X = mk(t, 1, s, x);
        nb_graph *g = nb_graph_new();
        double relu[4] = {0, 0, 0.5, 3}, leaky[4] = {-0.2, -0.05, 0.5, 3},
               neg[4] = {2, 0.5, -0.5, -3};
        expect(nb_relu(g, X), relu, 4, tol);
        expect(nb_leaky_relu(g, X, 0.1), leaky, 4, tol);
        expect(nb_neg(g, X), neg, 4, tol);
        double th[4], sg[4], ge[4], ex[4];
        for (int i = 0; i < 4; i++) {
            th[i] = tanh(x[i]);
            sg[i] = 1 / (1 + exp(-x[i]));
            ge[i] = 0.5 * x[i] *
                    (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x[i] + 0.044715 * pow(x[i], 3))));
            ex[i] = exp(x[i]);
        }
        expect(nb_tanh(g, X), th, 4, tol);
        expect(nb_sigmoid(g, X), sg, 4, tol);
        expect(nb_gelu(g, X), ge, 4, tol);
        expect(nb_exp(g, X), ex, 4, tol);
        nb_tensor *L = nb_log(g, X);
        assert_true(isnan(nb_tensor_get(L, 0)));
        assert_true(fabs(nb_tensor_get(L, 3) - log(3.0)) < tol * 2);
        nb_graph_free(g);
        nb_tensor_free(X);
    }
}

/* sigmoid must not overflow for large |x| (computed from exp of a non-positive number) */
static void test_sigmoid_extremes(void **state)
{
    (void)state;
    int64_t s[1] = {2};
    double x[2] = {-1000, 1000};
    nb_tensor *X = mk(NB_F64, 1, s, x);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_sigmoid(g, X);
    assert_true(nb_tensor_get(y, 0) == 0.0);
    assert_true(nb_tensor_get(y, 1) == 1.0);
    nb_graph_free(g);
    nb_tensor_free(X);
}

static void test_reductions(void **state)
{
    (void)state;
    int64_t s[2] = {2, 3};
    double a[6] = {1, 2, 3, 4, 5, 6};
    nb_tensor *A = mk(NB_F32, 2, s, a);
    nb_graph *g = nb_graph_new();
    double sum[1] = {21}, mean[1] = {3.5}, sl[2] = {6, 15}, ml[2] = {2, 5};
    expect(nb_sum(g, A), sum, 1, 0);
    expect(nb_mean(g, A), mean, 1, 0);
    expect(nb_sum_last(g, A), sl, 2, 0);
    expect(nb_mean_last(g, A), ml, 2, 0);
    assert_int_equal(nb_sum(g, A)->ndim, 0);
    assert_int_equal(nb_sum_last(g, A)->ndim, 1);
    nb_graph_free(g);
    nb_tensor_free(A);
}

static void test_reshape_transpose(void **state)
{
    (void)state;
    int64_t s[2] = {2, 3}, s2[2] = {3, 2}, bad[2] = {4, 2};
    double a[6] = {1, 2, 3, 4, 5, 6};
    nb_tensor *A = mk(NB_F64, 2, s, a);
    nb_graph *g = nb_graph_new();
    nb_tensor *R = nb_reshape(g, A, 2, s2);
    expect(R, a, 6, 0);
    assert_int_equal(R->shape[0], 3);
    double t[6] = {1, 4, 2, 5, 3, 6};
    expect(nb_transpose(g, A), t, 6, 0);
    assert_null(nb_reshape(g, A, 2, bad));
    assert_non_null(strstr(nb_last_error(), "cannot become [4, 2]"));
    nb_graph_free(g);
    nb_tensor_free(A);
}

static void test_gather_last(void **state)
{
    (void)state;
    int64_t s[2] = {2, 3}, si[1] = {2};
    double a[6] = {1, 2, 3, 4, 5, 6};
    nb_tensor *A = mk(NB_F64, 2, s, a);
    int32_t idx[2] = {2, 0};
    nb_tensor *I = nb_tensor_from_buffer(NB_I32, 1, si, idx);
    nb_graph *g = nb_graph_new();
    double want[2] = {3, 4};
    expect(nb_gather_last(g, A, I), want, 2, 0);
    ((int32_t *)I->data)[1] = 3;
    assert_null(nb_gather_last(g, A, I));
    assert_non_null(strstr(nb_last_error(), "index 3 out of range [0, 3) at row 1"));
    nb_graph_free(g);
    nb_tensor_free(A);
    nb_tensor_free(I);
}

static void test_dtype_errors(void **state)
{
    (void)state;
    int64_t s[1] = {3};
    nb_tensor *a = nb_tensor_zeros(NB_F32, 1, s), *b = nb_tensor_zeros(NB_F64, 1, s);
    nb_tensor *i = nb_tensor_zeros(NB_I32, 1, s);
    nb_graph *g = nb_graph_new();
    assert_null(nb_add(g, a, b));
    assert_int_equal(nb_last_status(), NB_ERR_DTYPE);
    assert_non_null(strstr(nb_last_error(), "f32 and f64"));
    assert_null(nb_relu(g, i));
    assert_non_null(strstr(nb_last_error(), "i32"));
    assert_null(nb_relu(NULL, a));
    assert_int_equal(nb_last_status(), NB_ERR_ARG);
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(i);
}

/* f32 and f64 paths agree on the same inputs (the f32 kernels are not a different formula) */
static void test_f32_matches_f64(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 11);
    int64_t s[2] = {4, 7};
    nb_tensor *x64 = nb_tensor_randn(NB_F64, 2, s, &r, 0, 2);
    nb_tensor *x32 = nb_tensor_to_dtype(x64, NB_F32);
    nb_tensor *x64r = nb_tensor_to_dtype(x32, NB_F64); /* same values as the f32 input */
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_log_softmax(g, nb_gelu(g, x32));
    nb_tensor *b = nb_log_softmax(g, nb_gelu(g, x64r));
    for (int64_t i = 0; i < a->numel; i++)
        assert_true(fabs(nb_tensor_get(a, i) - nb_tensor_get(b, i)) < 1e-5);
    nb_graph_free(g);
    nb_tensor_free(x64);
    nb_tensor_free(x32);
    nb_tensor_free(x64r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_values),     cmocka_unit_test(test_linear_values),
        cmocka_unit_test(test_broadcasting),      cmocka_unit_test(test_unary_values),
        cmocka_unit_test(test_sigmoid_extremes),  cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_reshape_transpose), cmocka_unit_test(test_gather_last),
        cmocka_unit_test(test_dtype_errors),      cmocka_unit_test(test_f32_matches_f64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
