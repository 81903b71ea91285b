/* test_eval.c - what evaluation is built on: nb_argmax_rows (ties, NaN, every float dtype, 3-D,
 * more outputs than classes), nb_accuracy, and NaN propagation through the activations (relu
 * and leaky_relu as PyTorch: relu(NaN) = NaN, the gradient passes through at NaN). Reference
 * values are worked by hand; numpy.argmax and torch.argmax give the same indices. */
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

static void expect_msg(const char *part)
{
    if (!strstr(nb_last_error(), part))
        fail_msg("message '%s' does not mention '%s'", nb_last_error(), part);
}

static void expect_idx(const int64_t *got, const int64_t *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("row %lld: argmax %lld, expected %lld", (long long)i, (long long)got[i],
                     (long long)want[i]);
}

/* Rows of 4: a plain maximum, a maximum in the last column, negatives only, a tie (the lowest
 * index wins), -inf everywhere (index 0), +inf after a large value. */
static const double rows4[] = {1,         5,         2,         3,         0,    1,        2, 7,
                               -3,        -1,        -2,        -9,        4,    9,        9, 1,
                               -INFINITY, -INFINITY, -INFINITY, -INFINITY, 1e30, INFINITY, 2, 3};
static const int64_t want4[] = {1, 3, 1, 1, 0, 1};

static void test_argmax_every_float_dtype(void **state)
{
    (void)state;
    nb_dtype dts[4] = {NB_F32, NB_F64, NB_F16, NB_BF16};
    int64_t s[2] = {6, 4};
    for (int d = 0; d < 4; d++) {
        double v[24];
        memcpy(v, rows4, sizeof v);
        if (dts[d] == NB_F16) /* 1e30 is inf in f16: keep that row's answer with 6e4 */
            v[20] = 6e4;
        nb_tensor *x = mk(dts[d], 2, s, v);
        int64_t out[6] = {-7, -7, -7, -7, -7, -7};
        assert_int_equal(nb_argmax_rows(x, out, 6), NB_OK);
        expect_idx(out, want4, 6);
        nb_tensor_free(x);
    }
}

/* Values that differ only below f16/bf16 resolution would tie after rounding; values that differ
 * in the last half-precision bit must not. */
static void test_argmax_half_precision_resolution(void **state)
{
    (void)state;
    int64_t s[2] = {1, 3};
    /* f16: 1 + 2^-10 is the next value after 1; bf16: 1 + 2^-7 */
    double vf16[3] = {1.0, 1.0 + 0x1p-10, 1.0}, vbf[3] = {1.0, 1.0, 1.0 + 0x1p-7};
    nb_tensor *a = mk(NB_F16, 2, s, vf16), *b = mk(NB_BF16, 2, s, vbf);
    int64_t o = -1;
    assert_int_equal(nb_argmax_rows(a, &o, 1), NB_OK);
    assert_int_equal(o, 1);
    assert_int_equal(nb_argmax_rows(b, &o, 1), NB_OK);
    assert_int_equal(o, 2);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* NaN is taken as the maximum, the first NaN of the row wins (numpy.argmax, torch.argmax). */
static void test_argmax_nan(void **state)
{
    (void)state;
    double v[] = {1,        NAN, 7, NAN, /* NaN before the max: 1 */
                  1,        9,   3, NAN, /* NaN after the max: 3 */
                  NAN,      2,   3, 4,   /* NaN first: 0 */
                  INFINITY, 1,   2, -NAN};
    int64_t s[2] = {4, 4}, want[4] = {1, 3, 0, 3};
    nb_dtype dts[4] = {NB_F32, NB_F64, NB_F16, NB_BF16};
    for (int d = 0; d < 4; d++) {
        nb_tensor *x = mk(dts[d], 2, s, v);
        int64_t out[4];
        assert_int_equal(nb_argmax_rows(x, out, 4), NB_OK);
        expect_idx(out, want, 4);
        nb_tensor_free(x);
    }
}

/* [B, T, K]: rows are the B*T positions; and a 1-D [K] is one row. */
static void test_argmax_3d_and_1d(void **state)
{
    (void)state;
    int64_t s3[3] = {2, 3, 5}, want[6];
    double v[30];
    for (int i = 0; i < 6; i++) {
        for (int c = 0; c < 5; c++)
            v[i * 5 + c] = -(double)c;
        want[i] = (i * 2) % 5; /* a different winner per position */
        v[i * 5 + want[i]] = 10.0 + i;
    }
    nb_tensor *x = mk(NB_F32, 3, s3, v);
    int64_t out[7];
    out[6] = 12345;
    assert_int_equal(nb_argmax_rows(x, out, 7), NB_OK); /* room for more is fine */
    expect_idx(out, want, 6);
    assert_int_equal(out[6], 12345); /* nothing written past the rows */
    int64_t s1[1] = {5};
    nb_tensor *r = mk(NB_F64, 1, s1, v + 5);
    int64_t o;
    assert_int_equal(nb_argmax_rows(r, &o, 1), NB_OK);
    assert_int_equal(o, want[1]);
    nb_tensor_free(x);
    nb_tensor_free(r);
}

static void test_argmax_errors(void **state)
{
    (void)state;
    int64_t s[2] = {3, 4}, out[3];
    double v[12] = {0};
    nb_tensor *x = mk(NB_F32, 2, s, v);
    assert_int_equal(nb_argmax_rows(NULL, out, 3), NB_ERR_ARG);
    expect_msg("NULL");
    assert_int_equal(nb_argmax_rows(x, NULL, 3), NB_ERR_ARG);
    expect_msg("NULL");
    assert_int_equal(nb_argmax_rows(x, out, 2), NB_ERR_ARG);
    expect_msg("room for 2");
    expect_msg("3 rows");
    nb_tensor *xi = nb_tensor_zeros(NB_I32, 2, s);
    assert_int_equal(nb_argmax_rows(xi, out, 3), NB_ERR_DTYPE);
    expect_msg("i32");
    int64_t s0[2] = {3, 0};
    nb_tensor *x0 = nb_tensor_zeros(NB_F32, 2, s0);
    assert_int_equal(nb_argmax_rows(x0, out, 3), NB_ERR_SHAPE);
    expect_msg("[3, 0]");
    nb_tensor *sc = nb_tensor_zeros(NB_F32, 0, NULL);
    assert_int_equal(nb_argmax_rows(sc, out, 3), NB_ERR_SHAPE);
    expect_msg("0-d");
    /* no rows: nothing to do, fine even with no room */
    int64_t se[2] = {0, 4};
    nb_tensor *xe = nb_tensor_zeros(NB_F32, 2, se);
    assert_int_equal(nb_argmax_rows(xe, out, 0), NB_OK);
    nb_tensor_free(x);
    nb_tensor_free(xi);
    nb_tensor_free(x0);
    nb_tensor_free(sc);
    nb_tensor_free(xe);
}

/* A model with K = 7 outputs on data of 3 classes: every row's winner is its target, so the
 * accuracy is 1. Read with the data's class count (3) as the row stride, as `nabla eval` once
 * did, rows 1.. would be read from the wrong place. */
static void test_accuracy_more_outputs_than_classes(void **state)
{
    (void)state;
    const int64_t N = 6, K = 7;
    int64_t sl[2] = {N, K}, sy[1] = {N};
    double lv[42], yv[6] = {0, 1, 2, 2, 1, 0};
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < K; c++)
            lv[i * K + c] = c == (int64_t)yv[i] ? 5.0 : (double)(c % 3) - (double)i;
    nb_tensor *logits = mk(NB_F32, 2, sl, lv), *y = mk(NB_I32, 1, sy, yv);
    int64_t hits = -1, count = -1;
    assert_int_equal(nb_accuracy(logits, y, -100, &hits, &count), NB_OK);
    assert_int_equal(count, N);
    assert_int_equal(hits, N);
    /* the wrong stride gives a different answer on these logits (the test can fail) */
    int64_t wrong = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t best = 0;
        for (int64_t c = 1; c < 3; c++)
            if (lv[i * 3 + c] > lv[i * 3 + best])
                best = c;
        wrong += best == (int64_t)yv[i];
    }
    assert_int_not_equal(wrong, N);
    /* i64 targets, f64 and bf16 logits give the same */
    nb_tensor *y64 = mk(NB_I64, 1, sy, yv), *l64 = mk(NB_F64, 2, sl, lv),
              *lbf = mk(NB_BF16, 2, sl, lv);
    assert_int_equal(nb_accuracy(l64, y64, -100, &hits, &count), NB_OK);
    assert_int_equal(hits, N);
    assert_int_equal(nb_accuracy(lbf, y, -100, &hits, &count), NB_OK);
    assert_int_equal(hits, N);
    nb_tensor_free(logits);
    nb_tensor_free(y);
    nb_tensor_free(y64);
    nb_tensor_free(l64);
    nb_tensor_free(lbf);
}

/* [B, T, K] logits, [B, T] targets with padding: padding is neither a hit nor counted. */
static void test_accuracy_ignore_index_3d(void **state)
{
    (void)state;
    int64_t sl[3] = {2, 2, 3}, sy[2] = {2, 2};
    double lv[12] = {0, 9, 1, /* -> 1, target 1: hit */
                     5, 1, 1, /* -> 0, padding */
                     1, 2, 3, /* -> 2, target 0: miss */
                     0, 0, 1 /* -> 2, target 2: hit */};
    double yv[4] = {1, -100, 0, 2};
    nb_tensor *l = mk(NB_F32, 3, sl, lv), *y = mk(NB_I32, 2, sy, yv);
    int64_t hits, count;
    assert_int_equal(nb_accuracy(l, y, -100, &hits, &count), NB_OK);
    assert_int_equal(hits, 2);
    assert_int_equal(count, 3);
    /* with another ignore_index, -100 is an out-of-range target */
    assert_int_equal(nb_accuracy(l, y, -1, &hits, &count), NB_ERR_RANGE);
    expect_msg("target -100");
    expect_msg("[0, 3)");
    expect_msg("row 1");
    nb_tensor_free(l);
    nb_tensor_free(y);
}

static void test_accuracy_errors(void **state)
{
    (void)state;
    int64_t sl[2] = {3, 4}, sy[1] = {3}, sy2[1] = {2};
    double lv[12] = {0}, yv[3] = {0, 4, 1};
    nb_tensor *l = mk(NB_F32, 2, sl, lv), *y = mk(NB_I32, 1, sy, yv), *y2 = mk(NB_I32, 1, sy2, yv),
              *yf = mk(NB_F32, 1, sy, yv);
    int64_t hits = 0, count = 0;
    assert_int_equal(nb_accuracy(l, y, -100, &hits, &count), NB_ERR_RANGE);
    expect_msg("target 4 out of range [0, 4) at row 1");
    assert_int_equal(nb_accuracy(l, y2, -100, &hits, &count), NB_ERR_SHAPE);
    expect_msg("[2]");
    expect_msg("[3, 4]");
    assert_int_equal(nb_accuracy(l, yf, -100, &hits, &count), NB_ERR_DTYPE);
    expect_msg("f32");
    assert_int_equal(nb_accuracy(NULL, y, -100, &hits, &count), NB_ERR_ARG);
    assert_int_equal(nb_accuracy(l, y, -100, NULL, &count), NB_ERR_ARG);
    expect_msg("NULL");
    nb_tensor_free(l);
    nb_tensor_free(y);
    nb_tensor_free(y2);
    nb_tensor_free(yf);
}

/* relu(NaN) = NaN and leaky_relu(NaN) = NaN (PyTorch); the gradient at NaN: relu passes dy
 * through (PyTorch's threshold_backward: x <= 0 ? 0 : dy), leaky_relu gives slope * dy. */
static void test_activations_propagate_nan(void **state)
{
    (void)state;
    int64_t s[1] = {5};
    double v[5] = {NAN, -1.0, 2.0, -INFINITY, INFINITY};
    for (int d = 0; d < 2; d++) {
        nb_dtype t = d ? NB_F64 : NB_F32;
        for (int leaky = 0; leaky < 2; leaky++) {
            nb_tensor *x = mk(t, 1, s, v);
            assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
            nb_graph *g = nb_graph_new();
            nb_tensor *y = leaky ? nb_leaky_relu(g, x, 0.25) : nb_relu(g, x);
            assert_non_null(y);
            if (!isnan(nb_tensor_get(y, 0)))
                fail_msg("%s %s(NaN) = %g, expected NaN", nb_dtype_name(t),
                         leaky ? "leaky_relu" : "relu", nb_tensor_get(y, 0));
            assert_true(nb_tensor_get(y, 1) == (leaky ? -0.25 : 0.0));
            assert_true(nb_tensor_get(y, 2) == 2.0);
            assert_true(nb_tensor_get(y, 3) == (leaky ? -INFINITY : 0.0));
            assert_true(nb_tensor_get(y, 4) == INFINITY);
            double up[5] = {3, 3, 3, 3, 3};
            nb_tensor *u = mk(t, 1, s, up);
            assert_int_equal(nb_backward(g, y, u), NB_OK);
            double want[5] = {leaky ? 0.75 : 3.0, leaky ? 0.75 : 0.0, 3.0, leaky ? 0.75 : 0.0, 3.0};
            for (int i = 0; i < 5; i++)
                if (nb_tensor_grad_get(x, i) != want[i])
                    fail_msg("%s %s grad at %g: %g, expected %g", nb_dtype_name(t),
                             leaky ? "leaky_relu" : "relu", v[i], nb_tensor_grad_get(x, i),
                             want[i]);
            nb_graph_free(g);
            nb_tensor_free(u);
            nb_tensor_free(x);
        }
    }
}

/* An MLP fed a NaN row gives NaN logits for that row only (no finite answer from a NaN input). */
static void test_mlp_nan_row_gives_nan_logits(void **state)
{
    (void)state;
    for (int a = 0; a < 5; a++) {
        int64_t sizes[3] = {2, 8, 3}, sx[2] = {2, 2};
        nb_mlp *m = nb_mlp_new(sizes, 3, (nb_activation)a, NB_INIT_DEFAULT, 0.0, NB_F32, 3);
        assert_non_null(m);
        nb_mlp_set_training(m, false);
        double xv[4] = {0.5, NAN, 0.5, -0.25};
        nb_tensor *x = mk(NB_F32, 2, sx, xv);
        nb_graph *g = nb_graph_new();
        nb_graph_set_grad_enabled(g, false);
        nb_tensor *z = nb_mlp_forward(g, m, x);
        assert_non_null(z);
        for (int c = 0; c < 3; c++) {
            if (!isnan(nb_tensor_get(z, c)))
                fail_msg("activation %s: logit %d of the NaN row is %g, expected NaN",
                         nb_activation_name((nb_activation)a), c, nb_tensor_get(z, c));
            assert_true(isfinite(nb_tensor_get(z, 3 + c)));
        }
        nb_graph_free(g);
        nb_tensor_free(x);
        nb_mlp_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax_every_float_dtype),
        cmocka_unit_test(test_argmax_half_precision_resolution),
        cmocka_unit_test(test_argmax_nan),
        cmocka_unit_test(test_argmax_3d_and_1d),
        cmocka_unit_test(test_argmax_errors),
        cmocka_unit_test(test_accuracy_more_outputs_than_classes),
        cmocka_unit_test(test_accuracy_ignore_index_3d),
        cmocka_unit_test(test_accuracy_errors),
        cmocka_unit_test(test_activations_propagate_nan),
        cmocka_unit_test(test_mlp_nan_row_gives_nan_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
