/* test_gradcheck.c - walks the op table: every case of every op passes float64 central
 * differences (max relative error < 1e-6), every op the tape can record is in the table, and
 * nb_gradcheck itself catches a wrong gradient. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

typedef struct {
    const nb_op_info *op;
    int k;
} ctx_t;

static nb_tensor *apply(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    ctx_t *c = ctx;
    return c->op->apply_case(g, c->k, in);
}

static void test_every_op_passes(void **state)
{
    (void)state;
    int count;
    const nb_op_info *t = nb_op_table(&count);
    assert_true(count >= 25);
    nb_rng r;
    nb_rng_seed(&r, 2024);
    int cases = 0;
    for (int i = 0; i < count; i++)
        for (int k = 0; k < t[i].n_cases; k++) {
            nb_tensor *in[NB_OP_MAX_INPUTS] = {0};
            int n = 0;
            char desc[160];
            assert_int_equal(t[i].make_case(k, &r, in, &n, desc, sizeof desc), NB_OK);
            ctx_t c = {&t[i], k};
            nb_gradcheck_result res;
            nb_status s = nb_gradcheck(apply, in, n, &c, NULL, &res);
            if (s != NB_OK)
                fail_msg("%s %s: %s", t[i].name, desc, nb_last_error());
            if (!(res.max_rel_err < 1e-6))
                fail_msg("%s %s: max rel err %.3e (analytic %.10g numeric %.10g)", t[i].name, desc,
                         res.max_rel_err, res.worst_analytic, res.worst_numeric);
            assert_true(res.n_checked > 0);
            for (int j = 0; j < NB_OP_MAX_INPUTS; j++)
                nb_tensor_free(in[j]);
            cases++;
        }
    assert_true(cases >= 60);
}

/* No op kind can be recorded without a row in the table that gradcheck walks. */
static void test_every_kernel_is_in_table(void **state)
{
    (void)state;
    const char *const *names = nb_op_kernel_names();
    int n = 0;
    for (; names[n]; n++)
        if (!nb_op_find(names[n]))
            fail_msg("op kernel '%s' has no gradcheck row in the op table", names[n]);
    int count;
    nb_op_table(&count);
    assert_int_equal(n, count);
}

/* f(x) = x * stop(x): the second factor is a copy with no gradient, so the analytic gradient is
 * x while the true derivative of x^2 is 2x. gradcheck must see the difference. */
static nb_tensor *wrong_grad(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    nb_tensor *c = nb_graph_tensor(g, NB_F64, in[0]->ndim, in[0]->shape);
    memcpy(c->data, in[0]->data, sizeof(double) * (size_t)in[0]->numel);
    return nb_mul(g, in[0], c);
}

static void test_gradcheck_catches_wrong_gradient(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 5);
    int64_t s[1] = {5};
    nb_tensor *x = nb_tensor_rand(NB_F64, 1, s, &r, 0.5, 1.5);
    nb_tensor_set_requires_grad(x, true);
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(wrong_grad, &x, 1, NULL, NULL, &res), NB_OK);
    assert_true(res.max_rel_err > 0.4); /* |x - 2x| / 2x = 0.5 */
    assert_true(fabs(res.worst_numeric - 2 * res.worst_analytic) < 1e-6);
    assert_int_equal(res.worst_input, 0);
    nb_tensor_free(x);
}

static void test_gradcheck_rejects_f32(void **state)
{
    (void)state;
    int64_t s[1] = {3};
    nb_tensor *x = nb_tensor_ones(NB_F32, 1, s);
    nb_tensor_set_requires_grad(x, true);
    nb_gradcheck_result res;
    assert_int_equal(nb_gradcheck(wrong_grad, &x, 1, NULL, NULL, &res), NB_ERR_DTYPE);
    assert_non_null(strstr(nb_last_error(), "f64"));
    nb_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_passes),
        cmocka_unit_test(test_every_kernel_is_in_table),
        cmocka_unit_test(test_gradcheck_catches_wrong_gradient),
        cmocka_unit_test(test_gradcheck_rejects_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
