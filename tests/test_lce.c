/* tests/test_lce.c - the fused linear + cross-entropy head (nabla/lce.h) against its reference.
 *
 * nb_lce_reference materialises the logits in double and runs the cross-entropy reference and
 * the chain rule by plain loops; the fused op (tiled forward + recompute backward, and the one
 * pass) must give the same loss and gradients of x, W and b, for every option of the
 * cross-entropy plus the soft-cap, in f64 (within 1e-12) and f32 (within 1e-5). Errors are
 * measured against the largest reference entry of each tensor: |got - ref| <= tol max_i |ref_i|
 * (a tensor whose reference is all zeros, as an all-padding batch, must be exactly zero).
 *
 * Sizes are picked so that the blocks and tiles do not divide the problem: N = 13 rows in blocks
 * of 3 (or 5), V = 37 classes in tiles of 5 (or 8), and a V = 5000 case over the default 2048
 * tiles (the vector kernels' path). The one pass must equal the recompute path; an upstream
 * gradient other than 1 (scalar, or per row for reduction none) must scale the gradients.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loss/lce_ref.h" /* nb_lce_reference: test-only */
#include "nabla.h"

typedef struct problem {
    nb_dtype dt;
    nb_tensor *x, *w, *b, *t, *mask, *weight;
    int64_t N, D, V;
} problem;

/* x U(-1,1), W U(-s,s), b U(-0.5,0.5), targets in [0,V), optional padding at every 4th row */
static problem make(nb_dtype dt, int ndim, int64_t N, int64_t D, int64_t V, bool bias, bool pad,
                    uint64_t seed)
{
    problem p = {.dt = dt, .N = N, .D = D, .V = V};
    nb_rng r;
    nb_rng_seed(&r, seed);
    int64_t sx[3] = {N, D}, st[2] = {N}, sw[2] = {V, D}, sb[1] = {V};
    if (ndim == 3) { /* [B,T,D] with B = 1 when N is odd */
        int64_t B = N % 2 ? 1 : 2;
        sx[0] = B, sx[1] = N / B, sx[2] = D, st[0] = B, st[1] = N / B;
    }
    p.x = nb_tensor_rand(dt, ndim, sx, &r, -1, 1);
    p.w = nb_tensor_rand(dt, 2, sw, &r, -2, 2);
    p.b = bias ? nb_tensor_rand(dt, 1, sb, &r, -0.5, 0.5) : NULL;
    p.t = nb_tensor_empty(NB_I64, ndim - 1, st);
    assert_non_null(p.x);
    assert_non_null(p.w);
    assert_non_null(p.t);
    for (int64_t n = 0; n < N; n++)
        ((int64_t *)p.t->data)[n] = pad && n % 4 == 1 ? -100 : (int64_t)nb_rng_below(&r, V);
    p.mask = nb_tensor_ones(NB_U8, ndim - 1, st);
    ((uint8_t *)p.mask->data)[N - 1] = 0;
    ((uint8_t *)p.mask->data)[0] = 0;
    p.weight = nb_tensor_rand(NB_F64, 1, sb, &r, 0.2, 2.0);
    ((double *)p.weight->data)[1] = 0.0; /* a class of weight 0 */
    return p;
}

static void drop(problem *p)
{
    nb_tensor *all[] = {p->x, p->w, p->b, p->t, p->mask, p->weight};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
}

/* max |got - ref| <= tol max |ref| over the tensor (got: values, or grads when from_grad) */
static void expect_close(const char *what, const nb_tensor *got, bool from_grad,
                         const nb_tensor *ref, double tol)
{
    double scale = 0.0, err = 0.0;
    for (int64_t i = 0; i < ref->numel; i++) {
        double rv = nb_tensor_get(ref, i);
        double gv = from_grad ? nb_tensor_grad_get(got, i) : nb_tensor_get(got, i);
        scale = fmax(scale, fabs(rv));
        double e = fabs(gv - rv);
        err = e > err || e != e ? e : err;
    }
    if (!(err <= tol * scale)) {
        print_error("%s: max error %.3e against max |ref| %.3e (tol %.1e)\n", what, err, scale,
                    tol);
        fail();
    }
}

/* the fused op on a fresh graph; x, W, b are leaves whose gradients receive the result */
static nb_tensor *run_fused(problem *p, const nb_lce_opts *o, const nb_tensor *upstream,
                            nb_graph *g, nb_xent_stats *stats)
{
    nb_tensor *in[3] = {p->x, p->w, p->b};
    for (int i = 0; i < 3; i++)
        if (in[i]) {
            assert_int_equal(nb_tensor_set_requires_grad(in[i], true), NB_OK);
            nb_tensor_zero_grad(in[i]);
        }
    nb_lce_opts oo = *o;
    oo.xent.stats = stats;
    nb_tensor *loss = nb_linear_cross_entropy(g, p->x, p->w, p->b, p->t, &oo);
    if (!loss)
        fail_msg("linear_cross_entropy: %s", nb_last_error());
    nb_tensor *ones = NULL;
    if (!upstream && loss->ndim > 0) { /* reduction none: an upstream of ones */
        ones = nb_tensor_ones(loss->dtype, loss->ndim, loss->shape);
        upstream = ones;
    }
    assert_int_equal(nb_backward(g, loss, upstream), NB_OK);
    nb_tensor_free(ones);
    return loss;
}

/* fused (recompute and one pass) against the reference for options o */
static void check_case(const char *name, problem *p, const nb_lce_opts *o, double tol)
{
    nb_tensor *ref_loss = o->xent.reduction == NB_REDUCTION_NONE
                              ? nb_tensor_zeros(NB_F64, p->t->ndim, p->t->shape)
                              : nb_tensor_zeros(NB_F64, 0, NULL);
    nb_tensor *dx = nb_tensor_zeros(NB_F64, p->x->ndim, p->x->shape);
    nb_tensor *dw = nb_tensor_zeros(NB_F64, 2, p->w->shape);
    nb_tensor *db = p->b ? nb_tensor_zeros(NB_F64, 1, p->b->shape) : NULL;
    if (nb_lce_reference(p->x, p->w, p->b, p->t, o, ref_loss, dx, dw, db) != NB_OK)
        fail_msg("reference: %s", nb_last_error());
    static const char *const mode_name[3] = {"tiled", "one pass", "one pass in leaves"};
    for (int mode = 0; mode < 3; mode++) {
        char what[160];
        nb_lce_opts oo = *o;
        oo.one_pass = mode > 0;
        oo.leaf_grads_in_forward = mode == 2;
        nb_graph *g = nb_graph_new();
        nb_tensor *loss = run_fused(p, &oo, NULL, g, NULL);
        const char *mn = mode_name[mode];
        snprintf(what, sizeof what, "%s %s %s loss", name, nb_dtype_name(p->dt), mn);
        expect_close(what, loss, false, ref_loss, tol);
        snprintf(what, sizeof what, "%s %s %s dx", name, nb_dtype_name(p->dt), mn);
        expect_close(what, p->x, true, dx, tol);
        snprintf(what, sizeof what, "%s %s %s dW", name, nb_dtype_name(p->dt), mn);
        expect_close(what, p->w, true, dw, tol);
        if (p->b) {
            snprintf(what, sizeof what, "%s %s %s db", name, nb_dtype_name(p->dt), mn);
            expect_close(what, p->b, true, db, tol);
        }
        nb_graph_free(g);
    }
    nb_tensor_free(ref_loss);
    nb_tensor_free(dx);
    nb_tensor_free(dw);
    nb_tensor_free(db);
}

/* every option, alone and together, for one problem */
static void check_options(problem *p, int64_t block, int64_t tile, double tol)
{
    nb_lce_opts o = nb_lce_defaults();
    o.block_rows = block, o.tile_classes = tile;
    check_case("defaults", p, &o, tol);
    nb_lce_opts a = o;
    a.xent.label_smoothing = 0.1;
    check_case("smoothing", p, &a, tol);
    a = o, a.xent.weight = p->weight;
    check_case("weights", p, &a, tol);
    a = o, a.xent.mask = p->mask;
    check_case("mask", p, &a, tol);
    a = o, a.xent.reduction = NB_REDUCTION_SUM;
    check_case("sum", p, &a, tol);
    a = o, a.xent.reduction = NB_REDUCTION_NONE;
    check_case("none", p, &a, tol);
    a = o, a.xent.normaliser = 7.0;
    check_case("normaliser", p, &a, tol);
    a = o, a.xent.z_loss = 1e-2;
    check_case("z-loss", p, &a, tol);
    a = o, a.softcap = 2.5;
    check_case("soft-cap", p, &a, tol);
    a = o;
    a.xent.label_smoothing = 0.2, a.xent.weight = p->weight, a.xent.mask = p->mask;
    a.xent.z_loss = 1e-3, a.softcap = 4.0;
    check_case("all options", p, &a, tol);
    a.xent.reduction = NB_REDUCTION_NONE;
    check_case("all options, none", p, &a, tol);
}

static void test_options_f64(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 13, 4, 37, true, true, 1);
    check_options(&p, 3, 5, 1e-12);
    check_options(&p, 5, 8, 1e-12);
    check_options(&p, 0, 0, 1e-12); /* the op's own sizes: one block, one tile */
    drop(&p);
}

static void test_options_f32(void **state)
{
    (void)state;
    problem p = make(NB_F32, 2, 13, 4, 37, true, true, 2);
    check_options(&p, 3, 5, 1e-5);
    check_options(&p, 0, 0, 1e-5);
    drop(&p);
}

static void test_no_bias_btd(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 13, 4, 37, false, true, 3);
    check_options(&p, 4, 6, 1e-12);
    drop(&p);
    problem q = make(NB_F64, 3, 12, 3, 11, true, true, 4); /* x [2,6,3], targets [2,6] */
    check_options(&q, 5, 4, 1e-12);
    drop(&q);
    problem r = make(NB_F32, 3, 12, 3, 11, true, false, 5);
    check_options(&r, 5, 4, 1e-5);
    drop(&r);
}

/* V = 5000 over the default tiles of 2048 (two full, one of 904), f32: the vector kernels */
static void test_large_vocabulary(void **state)
{
    (void)state;
    problem p = make(NB_F32, 2, 70, 16, 5000, true, true, 6);
    nb_lce_opts o = nb_lce_defaults();
    check_case("V=5000", &p, &o, 1e-5);
    o.xent.label_smoothing = 0.1, o.xent.weight = p.weight, o.xent.z_loss = 1e-3;
    nb_tensor *wf = nb_tensor_to_dtype(p.weight, NB_F32); /* f32 weights: the vector path */
    o.xent.weight = wf;
    check_case("V=5000 options", &p, &o, 1e-5);
    o.block_rows = 16;
    check_case("V=5000 blocks of 16", &p, &o, 1e-5);
    nb_tensor_free(wf);
    drop(&p);
}

/* every row padding: loss 0 and gradients exactly 0 (mean, sum and none) */
static void test_all_padding(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 9, 3, 10, true, false, 7);
    for (int64_t n = 0; n < p.N; n++)
        ((int64_t *)p.t->data)[n] = -100;
    for (int red = 0; red < 3; red++)
        for (int one = 0; one < 2; one++) {
            nb_lce_opts o = nb_lce_defaults();
            o.xent.reduction = (nb_reduction)red;
            o.xent.label_smoothing = 0.1;
            o.one_pass = one;
            o.block_rows = 4;
            nb_graph *g = nb_graph_new();
            nb_xent_stats st;
            nb_tensor *loss = run_fused(&p, &o, NULL, g, &st);
            for (int64_t i = 0; i < loss->numel; i++)
                assert_true(nb_tensor_get(loss, i) == 0.0);
            assert_int_equal(st.n_tokens, 0);
            nb_tensor *in[3] = {p.x, p.w, p.b};
            for (int k = 0; k < 3; k++)
                for (int64_t i = 0; i < in[k]->numel; i++)
                    assert_true(nb_tensor_grad_get(in[k], i) == 0.0);
            nb_graph_free(g);
        }
    drop(&p);
}

/* stats: the real tokens, their weight and the loss sum, as the mean says */
static void test_stats(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 13, 4, 37, true, true, 8);
    nb_lce_opts o = nb_lce_defaults();
    o.xent.weight = p.weight, o.xent.z_loss = 1e-2, o.block_rows = 3, o.tile_classes = 5;
    for (int one = 0; one < 2; one++) {
        o.one_pass = one;
        nb_graph *g = nb_graph_new();
        nb_xent_stats st;
        nb_tensor *loss = run_fused(&p, &o, NULL, g, &st);
        int64_t real = 0;
        double wsum = 0.0;
        for (int64_t n = 0; n < p.N; n++) {
            int64_t y = ((int64_t *)p.t->data)[n];
            if (y != -100)
                real++, wsum += ((double *)p.weight->data)[y];
        }
        assert_int_equal(st.n_tokens, real);
        assert_true(fabs(st.weight_sum - wsum) <= 1e-12 * wsum);
        assert_true(fabs(st.loss_sum / st.weight_sum - nb_tensor_get(loss, 0)) <=
                    1e-12 * fabs(nb_tensor_get(loss, 0)));
        assert_true(st.z_loss_sum > 0.0 && st.z_loss_sum < st.loss_sum);
        nb_graph_free(g);
    }
    drop(&p);
}

/* upstream g != 1: the one pass scales its saved gradients (scalar g) or falls back to the
 * recompute path (per-row g); both must equal the recompute path with the same upstream */
static void test_upstream(void **state)
{
    (void)state;
    for (int red = 0; red < 3; red++) {
        nb_dtype dt = red == 1 ? NB_F32 : NB_F64;
        problem p = make(dt, 2, 13, 4, 37, true, true, 9 + (uint64_t)red);
        nb_lce_opts o = nb_lce_defaults();
        o.xent.reduction = (nb_reduction)red;
        o.xent.label_smoothing = 0.1, o.softcap = 3.0, o.block_rows = 4, o.tile_classes = 6;
        int64_t st1[1] = {p.N};
        nb_tensor *up =
            red == NB_REDUCTION_NONE ? nb_tensor_empty(dt, 1, st1) : nb_tensor_empty(dt, 0, NULL);
        for (int64_t i = 0; i < up->numel; i++)
            nb_tensor_set(up, i, 2.5 - 0.5 * (double)(i % 3));
        nb_tensor *grads[3][3];
        for (int one = 0; one < 3; one++) { /* recompute, one pass, one pass in leaves */
            o.one_pass = one > 0;
            o.leaf_grads_in_forward = one == 2;
            nb_graph *g = nb_graph_new();
            run_fused(&p, &o, up, g, NULL);
            nb_tensor *in[3] = {p.x, p.w, p.b};
            for (int k = 0; k < 3; k++) {
                grads[one][k] = nb_tensor_zeros(NB_F64, in[k]->ndim, in[k]->shape);
                for (int64_t i = 0; i < in[k]->numel; i++)
                    nb_tensor_set(grads[one][k], i, nb_tensor_grad_get(in[k], i));
            }
            nb_graph_free(g);
        }
        for (int k = 0; k < 3; k++) {
            expect_close("one pass vs recompute, upstream != 1", grads[1][k], false, grads[0][k],
                         dt == NB_F64 ? 1e-12 : 1e-5);
            expect_close("one pass in leaves vs recompute, upstream != 1", grads[2][k], false,
                         grads[0][k], dt == NB_F64 ? 1e-12 : 1e-5);
            for (int m = 0; m < 3; m++)
                nb_tensor_free(grads[m][k]);
        }
        nb_tensor_free(up);
        drop(&p);
    }
}

/* x made by an op (an arena tensor): the one pass hands its saved dx over; the gradient that
 * reaches the leaf through the op must equal the recompute path's */
static void test_x_from_op(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 13, 4, 37, true, true, 12);
    assert_int_equal(nb_tensor_set_requires_grad(p.x, true), NB_OK);
    assert_int_equal(nb_tensor_set_requires_grad(p.w, true), NB_OK);
    double got[2][13 * 4];
    for (int one = 0; one < 2; one++) {
        nb_tensor_zero_grad(p.x);
        nb_lce_opts o = nb_lce_defaults();
        o.one_pass = one, o.block_rows = 5, o.tile_classes = 7;
        nb_graph *g = nb_graph_new();
        nb_tensor *h = nb_tanh(g, p.x);
        nb_tensor *loss = nb_linear_cross_entropy(g, h, p.w, NULL, p.t, &o);
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss, NULL), NB_OK);
        for (int64_t i = 0; i < p.x->numel; i++)
            got[one][i] = nb_tensor_grad_get(p.x, i);
        nb_graph_free(g);
    }
    double scale = 0.0;
    for (int64_t i = 0; i < p.x->numel; i++)
        scale = fmax(scale, fabs(got[0][i]));
    assert_true(scale > 0.0);
    for (int64_t i = 0; i < p.x->numel; i++)
        assert_true(fabs(got[1][i] - got[0][i]) <= 1e-12 * scale);
    drop(&p);
}

/* leaf_grads_in_forward: W and b (leaves) take their gradient into their own buffers during the
 * forward, x (made by an op) keeps a saved copy: on top of gradients already there (a second
 * micro-batch), the result equals the saved one pass's, and the step holds no V x D buffer */
static void test_leaf_grads(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 13, 4, 37, true, true, 14);
    nb_tensor *in[3] = {p.x, p.w, p.b};
    double got[2][37 * 4 + 37 + 13 * 4];
    size_t used[2];
    for (int mode = 0; mode < 2; mode++) {
        for (int k = 0; k < 3; k++) {
            assert_int_equal(nb_tensor_set_requires_grad(in[k], true), NB_OK);
            for (int64_t i = 0; i < in[k]->numel; i++) /* an earlier micro-batch's gradient */
                ((double *)in[k]->grad)[i] = 0.25 - 0.125 * (double)(i % 5);
        }
        nb_lce_opts o = nb_lce_defaults();
        o.one_pass = true, o.leaf_grads_in_forward = mode == 1;
        o.xent.label_smoothing = 0.1, o.softcap = 3.0, o.block_rows = 4;
        nb_graph *g = nb_graph_new();
        nb_tensor *loss = nb_linear_cross_entropy(g, nb_tanh(g, p.x), p.w, p.b, p.t, &o);
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss, NULL), NB_OK);
        used[mode] = nb_graph_arena_used(g);
        int64_t j = 0;
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < in[k]->numel; i++)
                got[mode][j++] = nb_tensor_grad_get(in[k], i);
        nb_graph_free(g);
    }
    double scale = 0.0;
    for (size_t i = 0; i < sizeof got[0] / sizeof got[0][0]; i++)
        scale = fmax(scale, fabs(got[0][i]));
    for (size_t i = 0; i < sizeof got[0] / sizeof got[0][0]; i++)
        if (fabs(got[1][i] - got[0][i]) > 1e-12 * scale)
            fail_msg("gradient %zu: in leaves %.17g, saved %.17g", i, got[1][i], got[0][i]);
    /* the saved one pass holds W's and b's gradients (V (D + 1) doubles) that this one does not */
    assert_true(used[1] + (size_t)(37 * 5) * sizeof(double) <= used[0]);
    drop(&p);
}

/* no rows (loss 0, nothing to read) and a single class (every row's loss is its z-loss) */
static void test_edges(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 5, 3, 1, true, false, 13);
    nb_lce_opts o = nb_lce_defaults();
    o.xent.z_loss = 1e-2;
    check_case("V=1", &p, &o, 1e-12);
    drop(&p);
    int64_t sx[2] = {0, 3}, sw[2] = {4, 3}, st[1] = {0};
    nb_tensor *x = nb_tensor_zeros(NB_F32, 2, sx), *w = nb_tensor_ones(NB_F32, 2, sw);
    nb_tensor *t = nb_tensor_zeros(NB_I64, 1, st);
    assert_int_equal(nb_tensor_set_requires_grad(w, true), NB_OK);
    for (int one = 0; one < 2; one++) {
        o.one_pass = one;
        nb_graph *g = nb_graph_new();
        nb_tensor *loss = nb_linear_cross_entropy(g, x, w, NULL, t, &o);
        assert_non_null(loss);
        assert_true(nb_tensor_get(loss, 0) == 0.0);
        assert_int_equal(nb_backward(g, loss, NULL), NB_OK);
        for (int64_t i = 0; i < w->numel; i++)
            assert_true(nb_tensor_grad_get(w, i) == 0.0);
        nb_graph_free(g);
    }
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(t);
}

/* gradient filtering: tiles of the rare upper half (bias -40, no targets there) are skipped; the
 * gradients stay within 1e-12 of the unfiltered ones (their entries there are ~e^-40), and with
 * smoothing (whose gradient does not vanish) the filter is off: bitwise equal */
static void test_grad_filter(void **state)
{
    (void)state;
    problem p = make(NB_F64, 2, 13, 4, 40, true, true, 14);
    for (int64_t j = 20; j < 40; j++)
        ((double *)p.b->data)[j] = -40.0;
    for (int64_t n = 0; n < p.N; n++) {
        int64_t *y = (int64_t *)p.t->data + n;
        *y = *y == -100 ? -100 : *y % 20;
    }
    for (int smooth = 0; smooth < 2; smooth++) {
        nb_tensor *g0[3], *in[3] = {p.x, p.w, p.b};
        for (int filt = 0; filt < 2; filt++) {
            nb_lce_opts o = nb_lce_defaults();
            o.block_rows = 4, o.tile_classes = 5, o.grad_filter = filt;
            o.xent.label_smoothing = smooth ? 0.1 : 0.0;
            nb_graph *g = nb_graph_new();
            run_fused(&p, &o, NULL, g, NULL);
            for (int k = 0; k < 3; k++) {
                nb_tensor *cur = nb_tensor_zeros(NB_F64, in[k]->ndim, in[k]->shape);
                for (int64_t i = 0; i < cur->numel; i++)
                    nb_tensor_set(cur, i, nb_tensor_grad_get(in[k], i));
                if (filt == 0) {
                    g0[k] = cur;
                    continue;
                }
                expect_close("filtered vs unfiltered", cur, false, g0[k], smooth ? 0.0 : 1e-12);
                double diff = 0.0; /* without smoothing the skipped tiles leave exact zeros */
                for (int64_t i = 0; i < cur->numel; i++)
                    diff = fmax(diff, fabs(nb_tensor_get(cur, i) - nb_tensor_get(g0[k], i)));
                if (k == 1 && !smooth)
                    assert_true(diff > 0.0); /* W's rare rows: the filter did skip */
                nb_tensor_free(cur);
                nb_tensor_free(g0[k]);
            }
            nb_graph_free(g);
        }
    }
    drop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_f64), cmocka_unit_test(test_options_f32),
        cmocka_unit_test(test_no_bias_btd), cmocka_unit_test(test_large_vocabulary),
        cmocka_unit_test(test_all_padding), cmocka_unit_test(test_stats),
        cmocka_unit_test(test_upstream),    cmocka_unit_test(test_x_from_op),
        cmocka_unit_test(test_edges),       cmocka_unit_test(test_grad_filter),
        cmocka_unit_test(test_leaf_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
