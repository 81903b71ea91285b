/* tests/test_lce_golden.c - the fused linear + cross-entropy head against PyTorch.
 *
 * tests/data/lce_cases.txt and lce_*.npy are made by scripts/gen_lce_golden.py: PyTorch's
 * F.cross_entropy(cap tanh((x W^T + b) / cap), ...) in float64 with its autograd gradients of x,
 * W and b (nabla's z-loss and all-padding rule added explicitly). Every case runs through the
 * op three ways: the tiled path with the op's own sizes, the tiled path with blocks of 4 rows and
 * tiles of 7 classes (neither divides the problem), and the one pass. Loss and gradients must
 * match within 1e-9 (f64 inputs) or 2e-5 (f32 inputs) of the largest reference entry of each
 * tensor; an all-zero reference (all padding) must be matched exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

#ifndef NB_TEST_DATA_DIR
#define NB_TEST_DATA_DIR "tests/data"
#endif

static nb_tensor *load(const char *name, const char *what, bool required)
{
    char path[512];
    snprintf(path, sizeof path, "%s/lce_%s_%s.npy", NB_TEST_DATA_DIR, name, what);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (required)
            fail_msg("missing %s", path);
        return NULL;
    }
    fclose(f);
    nb_tensor *t = nb_npy_load(path);
    if (!t)
        fail_msg("%s: %s", path, nb_last_error());
    return t;
}

static int n_bad;

static void expect_close(const char *name, const char *what, const nb_tensor *got, bool grad,
                         const nb_tensor *ref, double tol)
{
    double scale = 0.0, err = 0.0;
    assert_int_equal(got->numel, ref->numel);
    for (int64_t i = 0; i < ref->numel; i++) {
        double r = nb_tensor_get(ref, i),
               g = grad ? nb_tensor_grad_get(got, i) : nb_tensor_get(got, i);
        scale = fmax(scale, fabs(r));
        double e = fabs(g - r);
        err = e > err || e != e ? e : err;
    }
    if (!(err <= tol * scale)) {
        print_error("%s %s: max error %.3e against max |ref| %.3e (tol %.1e)\n", name, what, err,
                    scale, tol);
        n_bad++;
    }
}

typedef struct gcase {
    char name[64], reduction[8];
    long long ignore_index;
    double smoothing, z_loss, cap;
    int has_mask, has_weight, has_bias;
} gcase;

static void run_case(const gcase *c)
{
    nb_tensor *x = load(c->name, "x", true), *w = load(c->name, "w", true);
    nb_tensor *b = c->has_bias ? load(c->name, "b", true) : NULL;
    nb_tensor *t = load(c->name, "targets", true), *loss_ref = load(c->name, "loss", true);
    nb_tensor *mask = c->has_mask ? load(c->name, "mask", true) : NULL;
    nb_tensor *weight = c->has_weight ? load(c->name, "weight", true) : NULL;
    nb_tensor *dx = load(c->name, "dx", true), *dw = load(c->name, "dw", true);
    nb_tensor *db = c->has_bias ? load(c->name, "db", true) : NULL;
    double tol = x->dtype == NB_F64 ? 1e-9 : 2e-5;
    nb_tensor *in[3] = {x, w, b};
    for (int i = 0; i < 3; i++)
        if (in[i])
            assert_int_equal(nb_tensor_set_requires_grad(in[i], true), NB_OK);
    for (int way = 0; way < 3; way++) {
        nb_lce_opts o = nb_lce_defaults();
        o.xent.reduction = !strcmp(c->reduction, "sum")    ? NB_REDUCTION_SUM
                           : !strcmp(c->reduction, "none") ? NB_REDUCTION_NONE
                                                           : NB_REDUCTION_MEAN;
        o.xent.ignore_index = c->ignore_index;
        o.xent.label_smoothing = c->smoothing;
        o.xent.z_loss = c->z_loss;
        o.xent.mask = mask;
        o.xent.weight = weight;
        o.softcap = c->cap;
        if (way == 1)
            o.block_rows = 4, o.tile_classes = 7;
        o.one_pass = way == 2;
        for (int i = 0; i < 3; i++)
            if (in[i])
                nb_tensor_zero_grad(in[i]);
        nb_graph *g = nb_graph_new();
        nb_tensor *loss = nb_linear_cross_entropy(g, x, w, b, t, &o);
        if (!loss)
            fail_msg("%s: %s", c->name, nb_last_error());
        nb_tensor *ones = loss->ndim ? nb_tensor_ones(loss->dtype, loss->ndim, loss->shape) : NULL;
        assert_int_equal(nb_backward(g, loss, ones), NB_OK);
        char what[64];
        const char *way_name[3] = {"tiled", "tiles 4x7", "one pass"};
        snprintf(what, sizeof what, "%s loss", way_name[way]);
        expect_close(c->name, what, loss, false, loss_ref, tol);
        snprintf(what, sizeof what, "%s dx", way_name[way]);
        expect_close(c->name, what, x, true, dx, tol);
        snprintf(what, sizeof what, "%s dW", way_name[way]);
        expect_close(c->name, what, w, true, dw, tol);
        if (b) {
            snprintf(what, sizeof what, "%s db", way_name[way]);
            expect_close(c->name, what, b, true, db, tol);
        }
        nb_tensor_free(ones);
        nb_graph_free(g);
    }
    nb_tensor *all[] = {x, w, b, t, loss_ref, mask, weight, dx, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
}

static void test_golden(void **state)
{
    (void)state;
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/lce_cases.txt", NB_TEST_DATA_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        gcase c;
        int got =
            sscanf(line, "%63s %7s %lld %lf %d %d %lf %lf %d", c.name, c.reduction, &c.ignore_index,
                   &c.smoothing, &c.has_mask, &c.has_weight, &c.z_loss, &c.cap, &c.has_bias);
        if (got != 9)
            fail_msg("bad line in %s: %s", path, line);
        run_case(&c);
        n++;
    }
    fclose(f);
    assert_true(n >= 8);
    assert_int_equal(n_bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
