/* test_graph_record.c - nb_graph_record (src/autograd/graph_internal.h) refuses more inputs than
 * a tape node holds (NB_OP_MAX_INPUTS) instead of writing past the node's input array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "autograd/graph_internal.h"

static nb_status noop_backward(nb_graph *g, nb_node *n)
{
    (void)g;
    (void)n;
    return NB_OK;
}

static const nb_opdef op_wide = {
    .info = {.name = "wide", .formula = "y = x_0", .arity = NB_OP_MAX_INPUTS + 1},
    .backward = noop_backward,
};

/* NB_OP_MAX_INPUTS + 1 leaves that require grad, and an output tensor on g */
typedef struct fixture {
    nb_graph *g;
    nb_tensor *in[NB_OP_MAX_INPUTS + 1];
    nb_tensor *out;
} fixture;

static void setup(fixture *f)
{
    int64_t s[1] = {3};
    f->g = nb_graph_new();
    assert_non_null(f->g);
    for (int i = 0; i < NB_OP_MAX_INPUTS + 1; i++) {
        f->in[i] = nb_tensor_ones(NB_F64, 1, s);
        assert_non_null(f->in[i]);
        assert_int_equal(nb_tensor_set_requires_grad(f->in[i], true), NB_OK);
    }
    f->out = nb_graph_tensor(f->g, NB_F64, 1, s);
    assert_non_null(f->out);
}

static void teardown(fixture *f)
{
    for (int i = 0; i < NB_OP_MAX_INPUTS + 1; i++)
        nb_tensor_free(f->in[i]);
    nb_graph_free(f->g);
}

/* One input too many: NB_ERR_ARG naming the op, the count and the limit; nothing recorded. */
static void test_too_many_inputs(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    nb_node *n = (nb_node *)&f; /* must be overwritten with NULL */
    nb_status s = nb_graph_record(f.g, &op_wide, f.out, f.in, NB_OP_MAX_INPUTS + 1, &n);
    assert_int_equal(s, NB_ERR_ARG);
    assert_null(n);
    const char *m = nb_last_error();
    char count[32], limit[32];
    snprintf(count, sizeof count, "%d inputs", NB_OP_MAX_INPUTS + 1);
    snprintf(limit, sizeof limit, "0 to %d", NB_OP_MAX_INPUTS);
    assert_non_null(strstr(m, "'wide'"));
    assert_non_null(strstr(m, count));
    assert_non_null(strstr(m, limit));
    assert_int_equal(nb_graph_size(f.g), 0);
    assert_false(f.out->requires_grad);
    teardown(&f);
}

static void test_negative_inputs(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    nb_node *n;
    assert_int_equal(nb_graph_record(f.g, &op_wide, f.out, f.in, -1, &n), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "-1 inputs"));
    assert_int_equal(nb_graph_size(f.g), 0);
    teardown(&f);
}

/* The limit itself is recorded, every input kept. */
static void test_max_inputs_recorded(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    nb_node *n = NULL;
    assert_int_equal(nb_graph_record(f.g, &op_wide, f.out, f.in, NB_OP_MAX_INPUTS, &n), NB_OK);
    assert_non_null(n);
    assert_int_equal(n->n_in, NB_OP_MAX_INPUTS);
    for (int i = 0; i < NB_OP_MAX_INPUTS; i++)
        assert_ptr_equal(n->in[i], f.in[i]);
    assert_int_equal(nb_graph_size(f.g), 1);
    assert_true(f.out->requires_grad);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_too_many_inputs),
        cmocka_unit_test(test_negative_inputs),
        cmocka_unit_test(test_max_inputs_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
