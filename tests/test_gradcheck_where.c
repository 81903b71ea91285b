/* test_gradcheck_where.c - nb_gradcheck says where: per input the max abs/rel error and the
 * worst element as coordinates with analytic and numeric values, the k worst elements in
 * order, f32 inputs promoted to f64 (or refused with a message saying how), and the report
 * nb_gradcheck_print writes. The bugs are planted with a custom op whose backward is wrong at
 * chosen elements by chosen factors, so the expected answer is known exactly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

/* y = x^2 elementwise; backward 2x, times factor[j] at flat index bad[j] */
typedef struct {
    int n_bad;
    int64_t bad[4];
    double factor[4];
} bug;

static nb_status sq_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    for (int64_t i = 0; i < out->numel; i++) {
        double x = nb_tensor_get(in[0], i);
        nb_tensor_set(out, i, x * x);
    }
    return NB_OK;
}

static nb_status sq_bwd(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                        const nb_tensor *const *in, int n, void *ctx)
{
    (void)out;
    (void)n;
    const bug *b = ctx;
    if (!gin[0])
        return NB_OK;
    for (int64_t i = 0; i < gout->numel; i++) {
        double d = 2.0 * nb_tensor_get(in[0], i) * nb_tensor_get(gout, i);
        for (int j = 0; b && j < b->n_bad; j++)
            if (b->bad[j] == i)
                d *= b->factor[j];
        nb_tensor_set(gin[0], i, nb_tensor_get(gin[0], i) + d);
    }
    return NB_OK;
}

/* in[0] goes through the buggy square (ctx[0]), in[1] through a right one; output is their sum
 * of sums so both inputs are checked */
typedef struct {
    bug b0, b1;
} two_bugs;

static nb_tensor *f2(nb_graph *g, nb_tensor *const *in, int n, void *vctx)
{
    two_bugs *c = vctx;
    nb_tensor *a =
        nb_custom_op(g, "sq", &in[0], 1, in[0]->ndim, in[0]->shape, sq_fwd, sq_bwd, &c->b0);
    if (n == 1)
        return a;
    nb_tensor *b =
        nb_custom_op(g, "sq", &in[1], 1, in[1]->ndim, in[1]->shape, sq_fwd, sq_bwd, &c->b1);
    return nb_add(g, nb_sum(g, a), nb_sum(g, b));
}

static nb_tensor *rand_input(nb_dtype t, int ndim, const int64_t *shape, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_tensor *x = nb_tensor_rand(t, ndim, shape, &r, 0.5, 1.5); /* away from 0: no 0/0 */
    assert_non_null(x);
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    return x;
}

/* 3-D input: the bad element at flat 2*12 + 1*4 + 3 = 31 of [3, 3, 4] is reported as
 * [2, 1, 3]; a second input without bugs has its own clean line. */
static void test_coordinates_per_input(void **state)
{
    (void)state;
    int64_t s3[3] = {3, 3, 4}, s2[2] = {2, 5};
    nb_tensor *in[2] = {rand_input(NB_F64, 3, s3, 1), rand_input(NB_F64, 2, s2, 2)};
    two_bugs c = {{1, {31}, {0.5}}, {0}};
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(f2, in, 2, &c, NULL, &res), NB_OK);
    assert_int_equal(res.n_inputs, 2);
    assert_int_equal(res.worst_input, 0);
    assert_int_equal(res.worst_index, 31);
    assert_int_equal(res.worst_ndim, 3);
    assert_int_equal(res.worst_coords[0], 2);
    assert_int_equal(res.worst_coords[1], 1);
    assert_int_equal(res.worst_coords[2], 3);
    /* analytic = 0.5 numeric: rel = 0.5 exactly (up to central-difference noise) */
    assert_true(fabs(res.max_rel_err - 0.5) < 1e-6);
    assert_true(fabs(res.worst_analytic / res.worst_numeric - 0.5) < 1e-6);
    const nb_gradcheck_input_result *p0 = &res.per_input[0], *p1 = &res.per_input[1];
    assert_true(p0->checked && p1->checked);
    assert_int_equal(p0->n_checked, 36);
    assert_int_equal(p1->n_checked, 10);
    assert_int_equal(p0->worst.coords[0], 2);
    assert_true(fabs(p0->max_abs_err - fabs(res.worst_numeric - res.worst_analytic)) < 1e-12);
    assert_true(p1->max_rel_err < 1e-8);
    assert_int_equal(p1->worst.input, 1);
    assert_int_equal(p1->worst.ndim, 2);
    nb_tensor_free(in[0]);
    nb_tensor_free(in[1]);
}

/* k worst: three planted bugs of different sizes come out in order, then clean elements */
static void test_k_worst_in_order(void **state)
{
    (void)state;
    int64_t s[2] = {4, 6};
    nb_tensor *x = rand_input(NB_F64, 2, s, 3);
    two_bugs c = {{3, {5, 13, 22}, {1.1, 3.0, 0.2}}, {0}};
    nb_gradcheck_opts o = {0};
    o.k_worst = 5;
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(f2, &x, 1, &c, &o, &res), NB_OK);
    assert_int_equal(res.n_worst, 5);
    /* rel errors: factor 0.2 -> 0.8; 3.0 -> 2/3; 1.1 -> 0.1/1.1 */
    assert_int_equal(res.worst[0].index, 22);
    assert_int_equal(res.worst[0].coords[0], 3);
    assert_int_equal(res.worst[0].coords[1], 4);
    assert_true(fabs(res.worst[0].rel_err - 0.8) < 1e-6);
    assert_int_equal(res.worst[1].index, 13);
    assert_int_equal(res.worst[1].coords[0], 2);
    assert_int_equal(res.worst[1].coords[1], 1);
    assert_true(fabs(res.worst[1].rel_err - 2.0 / 3.0) < 1e-6);
    assert_int_equal(res.worst[2].index, 5);
    assert_true(fabs(res.worst[2].rel_err - 0.1 / 1.1) < 1e-6);
    assert_true(res.worst[3].rel_err < 1e-8);
    assert_true(res.worst[3].rel_err >= res.worst[4].rel_err);
    nb_tensor_free(x);
}

static void test_k_worst_bounds(void **state)
{
    (void)state;
    int64_t s[1] = {3};
    nb_tensor *x = rand_input(NB_F64, 1, s, 4);
    two_bugs c = {{0}, {0}};
    nb_gradcheck_opts o = {0};
    o.k_worst = NB_GRADCHECK_MAX_WORST + 1;
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(f2, &x, 1, &c, &o, &res), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "k_worst 33 outside [0, 32]"));
    o.k_worst = 10; /* more than there are elements: all 3 */
    assert_int_equal(nb_gradcheck(f2, &x, 1, &c, &o, &res), NB_OK);
    assert_int_equal(res.n_worst, 3);
    nb_tensor_free(x);
}

/* f32: refused with a message saying how to promote; promoted, the bug is found at the same
 * place and the inputs are untouched (still f32, same values, no gradient left). */
static void test_f32_promotion(void **state)
{
    (void)state;
    int64_t s[2] = {3, 3};
    nb_tensor *x = rand_input(NB_F32, 2, s, 5);
    float before[9];
    memcpy(before, x->data, sizeof before);
    two_bugs c = {{1, {4}, {2.0}}, {0}};
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(f2, &x, 1, &c, NULL, &res), NB_ERR_DTYPE);
    assert_non_null(strstr(nb_last_error(), "input 0 is f32; gradcheck runs in f64"));
    assert_non_null(strstr(nb_last_error(), "promote_f32"));
    nb_gradcheck_opts o = {0};
    o.promote_f32 = true;
    assert_int_equal(nb_gradcheck(f2, &x, 1, &c, &o, &res), NB_OK);
    assert_true(res.promoted);
    assert_true(res.per_input[0].promoted);
    assert_int_equal(res.worst_coords[0], 1);
    assert_int_equal(res.worst_coords[1], 1);
    assert_true(fabs(res.max_rel_err - 0.5) < 1e-6);
    /* the check ran in f64: every other element agrees to f64 accuracy, not f32's */
    c.b0.n_bad = 0;
    assert_int_equal(nb_gradcheck(f2, &x, 1, &c, &o, &res), NB_OK);
    assert_true(res.max_rel_err < 1e-8);
    assert_int_equal(x->dtype, NB_F32);
    assert_memory_equal(x->data, before, sizeof before);
    for (int i = 0; i < 9; i++)
        assert_true(nb_tensor_grad_get(x, i) == 0.0);
    nb_tensor_free(x);
}

static char *read_stream(FILE *f)
{
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

static void test_print_report(void **state)
{
    (void)state;
    int64_t s3[3] = {2, 3, 4}, s1[1] = {3};
    nb_tensor *in[2] = {rand_input(NB_F32, 3, s3, 6), rand_input(NB_F64, 1, s1, 7)};
    two_bugs c = {{1, {17}, {3.0}}, {0}}; /* 17 = [1, 1, 1] */
    nb_gradcheck_opts o = {0};
    o.k_worst = 2;
    o.promote_f32 = true;
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(f2, in, 2, &c, &o, &res), NB_OK);
    FILE *f = tmpfile();
    assert_non_null(f);
    const char *names[2] = {"W", NULL};
    nb_gradcheck_print(f, &res, names, 1e-6);
    char *txt = read_stream(f);
    fclose(f);
    char want[160];
    snprintf(want, sizeof want, "worst at [1, 1, 1]: analytic %.10g numeric", res.worst_analytic);
    assert_non_null(strstr(txt, want));
    assert_non_null(strstr(txt, "W              24 elements"));
    assert_non_null(strstr(txt, "(f32 promoted to f64)  FAIL"));
    assert_non_null(strstr(txt, "input 1         3 elements"));
    assert_non_null(strstr(txt, "  ok\n"));
    assert_non_null(strstr(txt, "2 worst elements:\n  W          [1, 1, 1]"));
    assert_non_null(strstr(txt, "note: f32 inputs were checked on f64 copies"));
    free(txt);
    nb_tensor_free(in[0]);
    nb_tensor_free(in[1]);
}

static void test_coords_str(void **state)
{
    (void)state;
    nb_gradcheck_element e = {0};
    char buf[64];
    assert_string_equal(nb_gradcheck_coords_str(&e, buf, sizeof buf), "[]");
    e.ndim = 4;
    e.coords[0] = 1, e.coords[1] = 22, e.coords[2] = 333, e.coords[3] = 0;
    assert_string_equal(nb_gradcheck_coords_str(&e, buf, sizeof buf), "[1, 22, 333, 0]");
    char small[6];
    assert_string_equal(nb_gradcheck_coords_str(&e, small, sizeof small), "[1, 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coordinates_per_input), cmocka_unit_test(test_k_worst_in_order),
        cmocka_unit_test(test_k_worst_bounds),        cmocka_unit_test(test_f32_promotion),
        cmocka_unit_test(test_print_report),          cmocka_unit_test(test_coords_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
