/* test_linear_relu.c - the fused Linear + ReLU (nb_linear_relu) against the two ops it replaces,
 * nb_relu(nb_linear(...)), on f32 and f64: the output and the gradients of x, W and b bitwise
 * equal, with and without a bias, accumulating into gradients that already hold values, with
 * pre-activations exactly +0 and -0 (a zero row of x against zero biases), a NaN input row and
 * upstream gradients holding +0, -0 and NaN. (Its gradcheck cases are in the op table.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

enum { N = 37, DIN = 50, DOUT = 23 };

/* x [N, DIN], W [DOUT, DIN], b [DOUT], all requiring grad, grads preset to 0.25 */
static void make(nb_dtype dt, nb_tensor **t)
{
    nb_rng r;
    nb_rng_seed(&r, 11);
    int64_t sx[2] = {N, DIN}, sw[2] = {DOUT, DIN}, sb[1] = {DOUT};
    t[0] = nb_tensor_rand(dt, 2, sx, &r, -1, 1);
    t[1] = nb_tensor_rand(dt, 2, sw, &r, -0.3, 0.3);
    t[2] = nb_tensor_rand(dt, 1, sb, &r, -0.5, 0.5);
    for (int i = 0; i < 3; i++) {
        assert_non_null(t[i]);
        assert_int_equal(nb_tensor_set_requires_grad(t[i], true), NB_OK);
    }
    for (int k = 0; k < DIN; k++) { /* row 5 of x: zeros; row 9: a NaN */
        nb_tensor_set(t[0], 5 * DIN + k, 0.0);
        if (k == 3)
            nb_tensor_set(t[0], 9 * DIN + k, NAN);
    }
    nb_tensor_set(t[2], 3, 0.0); /* z[5,3] = +0 */
    nb_tensor_set(t[2], 7, -0.0);
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < t[i]->numel; k++) {
            if (dt == NB_F64)
                ((double *)t[i]->grad)[k] = 0.25;
            else
                ((float *)t[i]->grad)[k] = 0.25f;
        }
}

static nb_tensor *upstream(nb_dtype dt)
{
    nb_rng r;
    nb_rng_seed(&r, 12);
    int64_t s[2] = {N, DOUT};
    nb_tensor *u = nb_tensor_rand(dt, 2, s, &r, -1, 1);
    assert_non_null(u);
    for (int64_t k = 0; k < u->numel; k += 5)
        nb_tensor_set(u, k, k % 10 ? -0.0 : 0.0);
    nb_tensor_set(u, 2 * DOUT + 1, NAN);
    return u;
}

static void assert_bits(const char *what, const nb_tensor *a, const nb_tensor *b, bool grads)
{
    size_t bytes = (size_t)a->numel * nb_dtype_size(a->dtype);
    if (memcmp(grads ? a->grad : a->data, grads ? b->grad : b->data, bytes) != 0)
        fail_msg("%s: the fused op differs from nb_relu(nb_linear(...))", what);
}

static void check(nb_dtype dt, bool bias)
{
    nb_tensor *f[3], *u[3];
    make(dt, f);
    make(dt, u);
    nb_tensor *up = upstream(dt);
    nb_graph *gf = nb_graph_new(), *gu = nb_graph_new();
    nb_tensor *hf = nb_linear_relu(gf, f[0], f[1], bias ? f[2] : NULL);
    nb_tensor *hu = nb_relu(gu, nb_linear(gu, u[0], u[1], bias ? u[2] : NULL));
    assert_non_null(hf);
    assert_non_null(hu);
    assert_string_equal(nb_tensor_op_name(hf), "linear_relu");
    assert_bits("output", hf, hu, false);
    assert_int_equal(nb_backward(gf, hf, up), NB_OK);
    assert_int_equal(nb_backward(gu, hu, up), NB_OK);
    assert_bits("dx", f[0], u[0], true);
    assert_bits("dW", f[1], u[1], true);
    assert_bits("db", f[2], u[2], true);
    nb_graph_free(gf);
    nb_graph_free(gu);
    nb_tensor_free(up);
    for (int i = 0; i < 3; i++) {
        nb_tensor_free(f[i]);
        nb_tensor_free(u[i]);
    }
}

static void test_f32(void **state)
{
    (void)state;
    check(NB_F32, true);
    check(NB_F32, false);
}

static void test_f64(void **state)
{
    (void)state;
    check(NB_F64, true);
    check(NB_F64, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_f64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
