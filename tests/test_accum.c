/* test_accum.c - exact token-count averaging: gradient accumulation over micro-batches with
 * unequal padding gives the single-batch gradient when every micro-batch's loss is divided by
 * the whole batch's real-token count (the op's normaliser), and the mean of per-micro-batch means
 * does not. Data: a padded [B, T, V] sequence batch through a small MLP. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

enum { B = 8, T = 6, V = 5, F = 2 * V, H = 16 };

typedef struct fixture {
    nb_tensor *X; /* [B*T, F] */
    nb_tensor *Y; /* [B, T], -100 on padding */
    nb_mlp *m;
    nb_dtype dt;
} fixture;

static void make(fixture *f, nb_dtype dt)
{
    nb_tensor *X, *Y;
    assert_int_equal(nb_seq_toy(B, T, V, 3, &X, &Y), NB_OK);
    /* unequal padding across the halves and quarters of the batch: sequence b keeps b % 5 + 1
     * tokens, and sequences 2 and 3 are all padding */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            if (t >= b % 5 + 1 || b == 2 || b == 3)
                ((int32_t *)Y->data)[b * T + t] = -100;
    int64_t sx[2] = {B * T, F};
    nb_tensor Xv;
    nb_tensor_view(&Xv, NB_F32, 2, sx, X->data);
    f->X = nb_tensor_to_dtype(&Xv, dt);
    f->Y = Y;
    nb_tensor_free(X);
    int64_t sizes[3] = {F, H, V};
    f->m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, dt, 11);
    f->dt = dt;
    assert_non_null(f->X);
    assert_non_null(f->m);
}

static void unmake(fixture *f)
{
    nb_tensor_free(f->X);
    nb_tensor_free(f->Y);
    nb_mlp_free(f->m);
}

static int64_t real_tokens(const fixture *f, int b0, int b1)
{
    int64_t n = 0;
    for (int i = b0 * T; i < b1 * T; i++)
        n += ((int32_t *)f->Y->data)[i] >= 0;
    return n;
}

typedef enum { EXACT, MEAN_OF_MEANS } mode;

/* Accumulates gradients over K micro-batches of sequences; returns the loss. */
static double run(fixture *f, int K, mode md, double *grads)
{
    nb_graph *g = nb_graph_new();
    int np = nb_mlp_param_count(f->m);
    for (int i = 0; i < np; i++)
        nb_tensor_zero_grad(nb_mlp_param(f->m, i, NULL, 0));
    double total = (double)real_tokens(f, 0, B), loss = 0;
    for (int k = 0; k < K; k++) {
        int b0 = B * k / K, b1 = B * (k + 1) / K;
        int64_t sx[2] = {(b1 - b0) * T, F}, sy[2] = {b1 - b0, T}, s3[3] = {b1 - b0, T, V};
        nb_tensor xv, yv;
        nb_tensor_view(&xv, f->dt, 2, sx,
                       (char *)f->X->data + (size_t)(b0 * T * F) * nb_dtype_size(f->dt));
        nb_tensor_view(&yv, NB_I32, 2, sy, (int32_t *)f->Y->data + b0 * T);
        nb_xent_opts o = nb_xent_defaults();
        o.label_smoothing = 0.1;
        if (md == EXACT)
            o.normaliser = total; /* the whole batch's count, known before any backward */
        nb_graph_reset(g);
        nb_tensor *z = nb_reshape(g, nb_mlp_forward(g, f->m, &xv), 3, s3);
        nb_tensor *L = nb_cross_entropy(g, z, &yv, &o);
        if (md == MEAN_OF_MEANS)
            L = nb_scale(g, L, 1.0 / K); /* the well-known mistake: average the K means */
        assert_non_null(L);
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
        loss += nb_tensor_get(L, 0);
    }
    int64_t off = 0;
    for (int i = 0; i < np; i++) {
        nb_tensor *p = nb_mlp_param(f->m, i, NULL, 0);
        for (int64_t j = 0; j < p->numel; j++)
            grads[off++] = nb_tensor_grad_get(p, j);
    }
    nb_graph_free(g);
    return loss;
}

static double max_rel(const double *a, const double *b, int64_t n)
{
    double gmax = 0, worst = 0;
    for (int64_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(a[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]) / gmax);
    return worst;
}

static void check_dtype(nb_dtype dt, double tol)
{
    fixture f;
    make(&f, dt);
    int64_t n = nb_mlp_numel(f.m);
    double *ref = malloc(sizeof(double) * (size_t)n), *got = malloc(sizeof(double) * (size_t)n);
    assert_non_null(ref);
    assert_non_null(got);
    double L1 = run(&f, 1, EXACT, ref);
    /* K = 4 puts the two all-padding sequences (2, 3) in one micro-batch: it must add exactly
     * nothing, and no NaN */
    for (int K = 1; K <= 4; K *= 2) {
        double LK = run(&f, K, EXACT, got);
        double err = max_rel(ref, got, n);
        print_message("%s accum K=%d: loss %.17g vs %.17g, max rel grad diff %.3g\n",
                      nb_dtype_name(dt), K, LK, L1, err);
        assert_true(err <= tol);
        assert_true(fabs(LK - L1) <= tol * fabs(L1));
        for (int64_t i = 0; i < n; i++)
            assert_false(isnan(got[i]));
    }
    /* the mean of per-micro-batch means is a different (wrong) gradient */
    run(&f, 2, MEAN_OF_MEANS, got);
    double wrong = max_rel(ref, got, n);
    print_message("%s mean of means K=2: max rel grad diff %.3g\n", nb_dtype_name(dt), wrong);
    assert_true(wrong > 1e-2);
    free(ref);
    free(got);
    unmake(&f);
}

static void test_accum_f64(void **state)
{
    (void)state;
    check_dtype(NB_F64, 1e-12);
}

static void test_accum_f32(void **state)
{
    (void)state;
    check_dtype(NB_F32, 1e-5);
}

/* Stats of the parts add up to the whole: what ranks and threads exchange. */
static void test_stats_combine_exactly(void **state)
{
    (void)state;
    fixture f;
    make(&f, NB_F64);
    nb_graph *g = nb_graph_new();
    nb_graph_set_grad_enabled(g, false);
    double loss_sum = 0, weight_sum = 0, whole = 0;
    for (int k = 0; k <= 2; k++) { /* k = 2: the whole batch */
        int b0 = k == 2 ? 0 : 4 * k, b1 = k == 2 ? B : 4 * (k + 1);
        int64_t sx[2] = {(b1 - b0) * T, F}, sy[2] = {b1 - b0, T}, s3[3] = {b1 - b0, T, V};
        nb_tensor xv, yv;
        nb_tensor_view(&xv, NB_F64, 2, sx, (double *)f.X->data + b0 * T * F);
        nb_tensor_view(&yv, NB_I32, 2, sy, (int32_t *)f.Y->data + b0 * T);
        nb_xent_stats st;
        nb_xent_opts o = nb_xent_defaults();
        o.stats = &st;
        nb_graph_reset(g);
        nb_tensor *L =
            nb_cross_entropy(g, nb_reshape(g, nb_mlp_forward(g, f.m, &xv), 3, s3), &yv, &o);
        assert_non_null(L);
        if (k < 2) {
            loss_sum += st.loss_sum;
            weight_sum += st.weight_sum;
        } else {
            whole = nb_tensor_get(L, 0);
            assert_true(st.weight_sum == (double)real_tokens(&f, 0, B));
        }
    }
    assert_true(fabs(loss_sum / weight_sum - whole) <= 1e-14 * whole);
    nb_graph_free(g);
    unmake(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accum_f64),
        cmocka_unit_test(test_accum_f32),
        cmocka_unit_test(test_stats_combine_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
