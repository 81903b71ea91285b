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

#include "cli/op_samples.h"
#include "nabla.h"

typedef struct {
    const nb_op_info *op;
    int k;
} ctx_t;

static nb_tensor *apply(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    ctx_t *c = ctx;
    return c->op->apply(c->op, g, in, n, c->op->cases[c->k].args);
}

static void test_every_op_passes(void **state)
{
    (void)state;
    int count = nb_op_count();
    assert_true(count >= 25);
    nb_rng r;
    int cases = 0;
    for (int i = 0; i < count; i++)
        for (int k = 0; k < nb_op_at(i)->n_cases; k++) {
            const nb_op_info *t = nb_op_at(i);
            if (k == 0)
                nb_sample_rng(&r, 2024, t);
            nb_tensor *in[NB_OP_MAX_INPUTS] = {0};
            int n = 0;
            char desc[160];
            assert_int_equal(nb_sample_make(t, k, &r, in, &n, desc, sizeof desc), NB_OK);
            ctx_t c = {t, k};
            nb_gradcheck_result res;
            nb_status s = nb_gradcheck(apply, in, n, &c, NULL, &res);
            if (s != NB_OK)
                fail_msg("%s %s: %s", t->name, desc, nb_last_error());
            if (!(res.max_rel_err < 1e-6))
                fail_msg("%s %s: max rel err %.3e (analytic %.10g numeric %.10g)", t->name, desc,
                         res.max_rel_err, res.worst_analytic, res.worst_numeric);
            assert_true(res.n_checked > 0);
            for (int j = 0; j < NB_OP_MAX_INPUTS; j++)
                nb_tensor_free(in[j]);
            cases++;
        }
    assert_true(cases >= 60);
}

/* The record an op is recorded under is its table row: applying every op's first case records
 * a node named as the row, found by name, with one distinct name per row. */
static void test_every_kernel_is_in_table(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (int i = 0; i < nb_op_count(); i++) {
        const nb_op_info *op = nb_op_at(i);
        assert_ptr_equal(nb_op_find(op->name), op);
        assert_true(op->n_cases >= 1 && op->arity >= 1 && op->arity <= NB_OP_MAX_INPUTS);
        nb_tensor *in[NB_OP_MAX_INPUTS];
        int n;
        char desc[160];
        assert_int_equal(nb_sample_make(op, 0, &r, in, &n, desc, sizeof desc), NB_OK);
        nb_graph *g = nb_graph_new();
        nb_tensor *y = op->apply(op, g, in, n, op->cases[0].args);
        if (!y)
            fail_msg("%s: %s", op->name, nb_last_error());
        assert_string_equal(nb_tensor_op_name(y), op->name);
        nb_graph_free(g);
        for (int j = 0; j < NB_OP_MAX_INPUTS; j++)
            nb_tensor_free(in[j]);
    }
    assert_null(nb_op_at(nb_op_count()));
    assert_non_null(strstr(nb_last_error(), "outside"));
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
