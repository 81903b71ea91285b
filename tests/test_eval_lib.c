/* test_eval_lib.c - evaluation and prediction in the library (nabla/eval.h): nb_evaluate against
 * a confusion matrix, precision, recall and F1 worked out by hand (with a class never predicted
 * and a class absent from the targets), the loss against a long-double log-sum-exp and
 * nb_xent_reference, [N, T, F] inputs with padding, more outputs than classes, batch sizes that do
 * not divide N, N = 0, f32 and f64; nb_predict's logits and probabilities; every error path with
 * its message.
 *
 * The model is a table: X holds one feature, a row id, and the forward returns the table's logits
 * for that id, so each row's logits are chosen by the test whatever the batching. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "loss/xent_ref.h" /* nb_xent_reference: test-only */

#define NR 10 /* rows of the table */
#define KMAX 5

typedef struct table {
    double z[NR][KMAX]; /* logits per row id */
    int64_t K;          /* outputs */
    nb_dtype dtype;     /* of the logits */
    int calls;
    int64_t bad_k_after; /* > 0: batches after this many calls return K - 1 outputs */
} table;

/* x [..., 1] holds row ids; logits [..., K] */
static nb_tensor *table_forward(nb_graph *g, nb_tensor *x, void *ctx)
{
    table *t = ctx;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    int64_t K = t->bad_k_after && t->calls >= t->bad_k_after ? t->K - 1 : t->K;
    t->calls++;
    shape[x->ndim - 1] = K;
    nb_tensor *z = nb_graph_tensor(g, t->dtype, x->ndim, shape);
    if (!z)
        return NULL;
    for (int64_t i = 0; i < x->numel; i++) {
        int id = (int)nb_tensor_get(x, i);
        for (int64_t k = 0; k < K; k++)
            nb_tensor_set(z, i * K + k, t->z[id][k]);
    }
    return z;
}

/* Row ids 0..N-1 as X [N, 1] (or [N/T, T, 1] when T > 0). */
static nb_tensor *ids(nb_dtype dt, int64_t N, int64_t T)
{
    int64_t s2[2] = {N, 1}, s3[3] = {T ? N / T : 0, T, 1};
    nb_tensor *x = T ? nb_tensor_empty(dt, 3, s3) : nb_tensor_empty(dt, 2, s2);
    assert_non_null(x);
    for (int64_t i = 0; i < N; i++)
        nb_tensor_set(x, i, (double)i);
    return x;
}

static nb_tensor *targets(nb_dtype dt, int ndim, const int64_t *shape, const int64_t *v)
{
    nb_tensor *y = nb_tensor_empty(dt, ndim, shape);
    assert_non_null(y);
    for (int64_t i = 0; i < y->numel; i++)
        nb_tensor_set(y, i, (double)v[i]);
    return y;
}

static void expect_msg(const char *part)
{
    if (!strstr(nb_last_error(), part))
        fail_msg("message '%s' does not mention '%s'", nb_last_error(), part);
}

/* The hand-worked case: 4 classes, 8 scored rows and 2 padding rows (target -1).
 *   row     0  1  2  3  4  5  6  7  8  9
 *   target  0  0  0  1  1  2  2  1 -1 -1
 *   argmax  0  1  0  1  1  0  1  3  2  2     (the padding rows predict 2: must not count)
 * Class 2 is never predicted (among scored rows), class 3 never occurs as a target. */
static const int64_t hand_y[NR] = {0, 0, 0, 1, 1, 2, 2, 1, -1, -1};
static const int hand_pred[NR] = {0, 1, 0, 1, 1, 0, 1, 3, 2, 2};

/* logits whose argmax is hand_pred, with varied magnitudes (some large, some negative) */
static void fill_table(table *t, int64_t K, nb_dtype dt)
{
    memset(t, 0, sizeof *t);
    t->K = K;
    t->dtype = dt;
    for (int r = 0; r < NR; r++)
        for (int64_t k = 0; k < K; k++)
            t->z[r][k] = 0.25 * (double)((r * 7 + k * 3) % 5) - 0.5 * (double)r +
                         (k == hand_pred[r] ? 1.5 + 0.1 * r : 0.0) + (r == 6 ? 80.0 : 0.0);
}

/* Confusion (rows: true class, columns: predicted), by hand from the table above:
 *   class 0: rows 0, 1, 2 -> predicted 0, 1, 0
 *   class 1: rows 3, 4, 7 -> predicted 1, 1, 3
 *   class 2: rows 5, 6    -> predicted 0, 1 */
static const int64_t hand_conf[4][4] = {{2, 1, 0, 0}, {0, 2, 0, 1}, {1, 1, 0, 0}, {0, 0, 0, 0}};
/* tp, predicted (column sums), support (row sums):
 *   class 0: tp 2, predicted 3, support 3: P 2/3, R 2/3, F1 2/3
 *   class 1: tp 2, predicted 4, support 3: P 1/2, R 2/3, F1 2 (1/2)(2/3) / (1/2 + 2/3) = 4/7
 *   class 2: tp 0, predicted 0, support 2: P 0 (zero division), R 0, F1 0
 *   class 3: tp 0, predicted 1, support 0: P 0, R 0 (zero division), F1 0
 * macro F1 over the classes present in the targets (0, 1, 2): (2/3 + 4/7 + 0) / 3 = 26/63. */
static const double hand_p[4] = {2.0 / 3, 0.5, 0, 0}, hand_r[4] = {2.0 / 3, 2.0 / 3, 0, 0};
static const double hand_f1[4] = {2.0 / 3, 4.0 / 7, 0, 0}, hand_macro = 26.0 / 63;

/* sum over scored rows of lse(z) - z_y, in long double */
static long double hand_loss(const table *t)
{
    long double sum = 0;
    for (int r = 0; r < NR; r++) {
        if (hand_y[r] < 0)
            continue;
        long double m = t->z[r][0], s = 0;
        for (int64_t k = 1; k < t->K; k++)
            m = t->z[r][k] > m ? t->z[r][k] : m;
        for (int64_t k = 0; k < t->K; k++)
            s += expl((long double)t->z[r][k] - m);
        sum += m + logl(s) - t->z[r][hand_y[r]];
    }
    return sum;
}

static void check_hand_metrics(const nb_eval_result *r)
{
    assert_int_equal(r->count, 8);
    assert_int_equal(r->correct, 4);
    assert_true(fabs(r->accuracy - 0.5) < 1e-15);
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(r->precision[i] - hand_p[i]) < 1e-15);
        assert_true(fabs(r->recall[i] - hand_r[i]) < 1e-15);
        assert_true(fabs(r->f1[i] - hand_f1[i]) < 1e-15);
    }
    assert_true(fabs(r->macro_f1 - hand_macro) < 1e-15);
}

static void test_hand_worked_f32_f64(void **state)
{
    (void)state;
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        table t;
        fill_table(&t, 4, dts[d]);
        if (dts[d] == NB_F32) /* the table as the f32 logits hold it */
            for (int r = 0; r < NR; r++)
                for (int k = 0; k < 4; k++)
                    t.z[r][k] = (float)t.z[r][k];
        nb_graph *g = nb_graph_new();
        nb_tensor *X = ids(dts[d], NR, 0);
        int64_t sy[1] = {NR};
        nb_tensor *y = targets(d ? NB_I64 : NB_I32, 1, sy, hand_y);
        nb_eval_result r;
        assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, 3, -1, &r), NB_OK);
        assert_int_equal(r.n_classes, 4);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                assert_int_equal(r.confusion[i * 4 + j], hand_conf[i][j]);
        check_hand_metrics(&r);
        long double want = hand_loss(&t);
        double tol = dts[d] == NB_F64 ? 1e-13 : 2e-6;
        assert_true(fabsl((long double)r.loss_sum - want) <= tol * fabsl(want));
        assert_true(fabs(r.loss - r.loss_sum / 8) < 1e-15 * fabs(r.loss));
        /* and against the library's slow reference (sum reduction, same ignore_index) */
        int64_t sz[2] = {NR, 4};
        nb_tensor *z = nb_tensor_empty(dts[d], 2, sz), *L = nb_tensor_empty(dts[d], 0, NULL);
        for (int i = 0; i < NR * 4; i++)
            nb_tensor_set(z, i, t.z[i / 4][i % 4]);
        nb_xent_opts o = nb_xent_defaults();
        o.ignore_index = -1;
        o.reduction = NB_REDUCTION_SUM;
        assert_int_equal(nb_xent_reference(z, y, &o, L, NULL), NB_OK);
        assert_true(fabs(r.loss_sum - nb_tensor_get(L, 0)) <= tol * fabs(r.loss_sum));
        nb_eval_result_free(&r);
        assert_null(r.confusion);
        nb_tensor_free(z);
        nb_tensor_free(L);
        nb_tensor_free(X);
        nb_tensor_free(y);
        nb_graph_free(g);
    }
}

/* The same counts given by hand to nb_eval_metrics_from_confusion. */
static void test_metrics_from_confusion(void **state)
{
    (void)state;
    nb_eval_result r;
    memset(&r, 0, sizeof r);
    r.n_classes = 4;
    r.confusion = malloc(sizeof hand_conf);
    assert_non_null(r.confusion);
    memcpy(r.confusion, hand_conf, sizeof hand_conf);
    assert_int_equal(nb_eval_metrics_from_confusion(&r), NB_OK);
    check_hand_metrics(&r);
    /* again on a filled result: the arrays are reused, the figures unchanged */
    assert_int_equal(nb_eval_metrics_from_confusion(&r), NB_OK);
    check_hand_metrics(&r);
    /* counts past int64 */
    r.confusion[0] = INT64_MAX;
    assert_int_equal(nb_eval_metrics_from_confusion(&r), NB_ERR_RANGE);
    expect_msg("overflow int64 at confusion[0][1]");
    nb_eval_result_free(&r);
    /* no class occurs: everything 0, no division by zero */
    r.n_classes = 3;
    r.confusion = calloc(9, sizeof *r.confusion);
    assert_int_equal(nb_eval_metrics_from_confusion(&r), NB_OK);
    assert_int_equal(r.count, 0);
    assert_true(r.accuracy == 0 && r.macro_f1 == 0 && r.f1[2] == 0 && r.precision[0] == 0);
    nb_eval_result_free(&r);
}

/* Every batch size, dividing N or not, larger than N, gives the same bits. */
static void test_batch_sizes_identical(void **state)
{
    (void)state;
    table t;
    fill_table(&t, 4, NB_F32);
    nb_graph *g = nb_graph_new();
    nb_tensor *X = ids(NB_F32, NR, 0);
    int64_t sy[1] = {NR};
    nb_tensor *y = targets(NB_I32, 1, sy, hand_y);
    int64_t batches[5] = {1, 3, 4, NR, NR + 5};
    nb_eval_result ref;
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, batches[0], -1, &ref), NB_OK);
    for (int b = 1; b < 5; b++) {
        nb_eval_result r;
        t.calls = 0;
        assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, batches[b], -1, &r), NB_OK);
        assert_int_equal(t.calls, (NR + batches[b] - 1) / batches[b]);
        assert_true(r.loss_sum == ref.loss_sum && r.loss == ref.loss);
        assert_true(r.count == ref.count && r.correct == ref.correct);
        assert_memory_equal(r.confusion, ref.confusion, 16 * sizeof *r.confusion);
        assert_memory_equal(r.f1, ref.f1, 4 * sizeof *r.f1);
        assert_true(r.macro_f1 == ref.macro_f1);
        nb_eval_result_free(&r);
    }
    nb_eval_result_free(&ref);
    nb_tensor_free(X);
    nb_tensor_free(y);
    nb_graph_free(g);
}

/* [N, T, F] inputs with [N, T] targets padded with ignore_index: the same 8 scored positions
 * laid out as 5 sequences of 2 give the same figures, for every batch size. */
static void test_sequences_with_padding(void **state)
{
    (void)state;
    table t;
    fill_table(&t, 4, NB_F64);
    nb_graph *g = nb_graph_new();
    nb_tensor *X = ids(NB_F64, NR, 2); /* [5, 2, 1] */
    int64_t sy[2] = {5, 2};
    nb_tensor *y = targets(NB_I64, 2, sy, hand_y);
    int64_t batches[4] = {1, 2, 5, 9};
    for (int b = 0; b < 4; b++) {
        nb_eval_result r;
        assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, batches[b], -1, &r), NB_OK);
        assert_memory_equal(r.confusion, hand_conf, sizeof hand_conf);
        check_hand_metrics(&r);
        long double want = hand_loss(&t);
        assert_true(fabsl((long double)r.loss_sum - want) <= 1e-13 * fabsl(want));
        nb_eval_result_free(&r);
    }
    /* a target out of range names its row and position */
    int64_t bad[NR];
    memcpy(bad, hand_y, sizeof bad);
    bad[7] = 9;
    nb_tensor *yb = targets(NB_I64, 2, sy, bad);
    nb_eval_result r;
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, yb, 4, 2, -1, &r), NB_ERR_RANGE);
    expect_msg("target 9 at row 3, position 1 out of range [0, 4)");
    nb_eval_result_free(&r);
    /* targets shaped [N] for [N, T, F] inputs */
    int64_t s5[1] = {5};
    nb_tensor *y1 = targets(NB_I64, 1, s5, hand_y);
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y1, 4, 2, -1, &r), NB_ERR_SHAPE);
    expect_msg("targets y [5] do not match inputs X [5, 2, 1]");
    nb_eval_result_free(&r);
    nb_tensor_free(y1);
    nb_tensor_free(yb);
    nb_tensor_free(X);
    nb_tensor_free(y);
    nb_graph_free(g);
}

/* 5 outputs for 4 classes: row 7's argmax is 4, a wrong prediction that has its own column. */
static void test_more_outputs_than_classes(void **state)
{
    (void)state;
    table t;
    fill_table(&t, 5, NB_F32);
    t.z[7][4] = 50; /* row 7 (class 1) now predicts output 4 instead of 3 */
    nb_graph *g = nb_graph_new();
    nb_tensor *X = ids(NB_F32, NR, 0);
    int64_t sy[1] = {NR};
    nb_tensor *y = targets(NB_I32, 1, sy, hand_y);
    nb_eval_result r;
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, 4, -1, &r), NB_OK);
    assert_int_equal(r.n_classes, 5);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            int64_t want = i < 4 && j < 3 ? hand_conf[i][j] : 0;
            if (i == 1 && j == 4)
                want = 1;
            assert_int_equal(r.confusion[i * 5 + j], want);
        }
    assert_int_equal(r.count, 8);
    assert_int_equal(r.correct, 4);
    /* class 1 keeps P 1/2, R 2/3; class 3 and 4 are 0; macro F1 still over classes 0, 1, 2 */
    assert_true(fabs(r.recall[1] - 2.0 / 3) < 1e-15 && fabs(r.precision[1] - 0.5) < 1e-15);
    assert_true(r.precision[3] == 0 && r.precision[4] == 0 && r.f1[4] == 0);
    assert_true(fabs(r.macro_f1 - hand_macro) < 1e-15);
    nb_eval_result_free(&r);
    /* fewer outputs than classes is refused */
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 6, 4, -1, &r), NB_ERR_SHAPE);
    expect_msg("the model has 5 outputs but the data has 6 classes");
    nb_eval_result_free(&r);
    nb_tensor_free(X);
    nb_tensor_free(y);
    nb_graph_free(g);
}

static void test_empty_data(void **state)
{
    (void)state;
    table t;
    fill_table(&t, 3, NB_F32);
    nb_graph *g = nb_graph_new();
    int64_t sx[2] = {0, 1}, sy[1] = {0};
    nb_tensor *X = nb_tensor_empty(NB_F32, 2, sx), *y = nb_tensor_empty(NB_I32, 1, sy);
    nb_eval_result r;
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 2, 8, -100, &r), NB_OK);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.n_classes, 3);
    assert_true(r.loss == 0 && r.loss_sum == 0 && r.accuracy == 0 && r.macro_f1 == 0);
    nb_eval_result_free(&r);
    nb_tensor *out = NULL;
    assert_int_equal(nb_predict(g, table_forward, &t, X, 8, true, &out), NB_OK);
    assert_int_equal(out->ndim, 2);
    assert_int_equal(out->shape[0], 0);
    assert_int_equal(out->shape[1], 3);
    nb_tensor_free(out);
    /* an MLP takes the empty batch too: its 4 outputs make the result's classes */
    int64_t sizes[3] = {1, 3, 4};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 1);
    assert_int_equal(nb_evaluate(g, nb_forward_mlp, m, X, y, 2, 8, -100, &r), NB_OK);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.n_classes, 4);
    nb_eval_result_free(&r);
    nb_mlp_free(m);
    nb_tensor_free(X);
    nb_tensor_free(y);
    nb_graph_free(g);
}

/* Probabilities sum to 1 and equal exp(z - lse z) (long double); logits are copied exactly;
 * the output has X's dtype and shape with K last. */
static void test_predict(void **state)
{
    (void)state;
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++)
        for (int T = 0; T <= 2; T += 2) {
            table t;
            fill_table(&t, 4, dts[d]);
            nb_graph *g = nb_graph_new();
            nb_tensor *X = ids(dts[d], NR, T), *P = NULL, *Z = NULL;
            assert_int_equal(nb_predict(g, table_forward, &t, X, 3, true, &P), NB_OK);
            assert_int_equal(nb_predict(g, table_forward, &t, X, 4, false, &Z), NB_OK);
            assert_int_equal(P->dtype, dts[d]);
            assert_int_equal(P->ndim, X->ndim);
            assert_int_equal(P->shape[P->ndim - 1], 4);
            double tol = dts[d] == NB_F64 ? 1e-15 : 1e-6;
            for (int r = 0; r < NR; r++) {
                long double m = t.z[r][0], s = 0, sum = 0;
                for (int k = 1; k < 4; k++)
                    m = t.z[r][k] > m ? t.z[r][k] : m;
                for (int k = 0; k < 4; k++)
                    s += expl((long double)t.z[r][k] - m);
                for (int k = 0; k < 4; k++) {
                    long double zk = dts[d] == NB_F32 ? (float)t.z[r][k] : t.z[r][k];
                    long double want = expl(zk - m - logl(s));
                    double p = nb_tensor_get(P, r * 4 + k);
                    assert_true(fabsl(p - want) <= tol);
                    assert_true(nb_tensor_get(Z, r * 4 + k) == (double)zk);
                    sum += p;
                }
                assert_true(fabsl(sum - 1) <= 4 * tol);
            }
            nb_tensor_free(P);
            nb_tensor_free(Z);
            nb_tensor_free(X);
            nb_graph_free(g);
        }
}

/* nb_forward_mlp takes [N, T, F] as N T rows: the same logits as the flat [N T, F] input. */
static void test_forward_mlp_3d(void **state)
{
    (void)state;
    int64_t sizes[3] = {3, 5, 4};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F64, 7);
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    int64_t s3[3] = {2, 3, 3}, s2[2] = {6, 3};
    nb_tensor *x3 = nb_tensor_randn(NB_F64, 3, s3, &rng, 0, 1);
    nb_tensor *x2 = nb_tensor_from_buffer(NB_F64, 2, s2, x3->data);
    nb_graph *g = nb_graph_new();
    nb_tensor *p3 = NULL, *p2 = NULL;
    assert_int_equal(nb_predict(g, nb_forward_mlp, m, x3, 1, false, &p3), NB_OK);
    assert_int_equal(nb_predict(g, nb_forward_mlp, m, x2, 4, false, &p2), NB_OK);
    assert_int_equal(p3->ndim, 3);
    assert_int_equal(p3->shape[2], 4);
    assert_memory_equal(p3->data, p2->data, 24 * sizeof(double));
    /* evaluate through it: padded sequence targets */
    int64_t sy[2] = {2, 3}, yv[6] = {1, -100, 3, 0, 2, -100};
    nb_tensor *y = targets(NB_I32, 2, sy, yv);
    nb_eval_result r;
    assert_int_equal(nb_evaluate(g, nb_forward_mlp, m, x3, y, 4, 1, -100, &r), NB_OK);
    assert_int_equal(r.count, 4);
    int64_t pred[6], hits = 0;
    assert_int_equal(nb_argmax_rows(p2, pred, 6), NB_OK);
    for (int i = 0; i < 6; i++)
        hits += yv[i] >= 0 && pred[i] == yv[i];
    assert_int_equal(r.correct, hits);
    nb_eval_result_free(&r);
    nb_tensor_free(y);
    nb_tensor_free(p3);
    nb_tensor_free(p2);
    nb_tensor_free(x3);
    nb_tensor_free(x2);
    nb_graph_free(g);
    nb_mlp_free(m);
}

static nb_tensor *wrong_rows(nb_graph *g, nb_tensor *x, void *ctx)
{
    (void)ctx;
    int64_t s[2] = {x->shape[0] + 1, 2};
    return nb_graph_tensor(g, NB_F32, 2, s);
}

static nb_tensor *int_logits(nb_graph *g, nb_tensor *x, void *ctx)
{
    (void)ctx;
    int64_t s[2] = {x->shape[0], 2};
    return nb_graph_tensor(g, NB_I32, 2, s);
}

static nb_tensor *failing(nb_graph *g, nb_tensor *x, void *ctx)
{
    (void)g;
    (void)x;
    (void)ctx;
    nb_error(NB_ERR_IO, "my model's weights went missing");
    return NULL;
}

/* The errors a caller's forward can cause, and success leaving the error state alone. */
static void test_forward_errors(void **state)
{
    (void)state;
    table t;
    fill_table(&t, 4, NB_F32);
    nb_graph *g = nb_graph_new();
    nb_tensor *X = ids(NB_F32, NR, 0), *out = NULL;
    int64_t sy[1] = {NR};
    nb_tensor *y = targets(NB_I32, 1, sy, hand_y);
    nb_eval_result r;
    assert_int_equal(nb_evaluate(g, wrong_rows, NULL, X, y, 4, 4, -1, &r), NB_ERR_SHAPE);
    expect_msg("the forward returned f32 logits [5, 2] for the batch [4, 1] (rows [0, 4))");
    nb_eval_result_free(&r);
    assert_int_equal(nb_predict(g, int_logits, NULL, X, 4, false, &out), NB_ERR_SHAPE);
    expect_msg("returned i32 logits [4, 2]");
    assert_null(out);
    assert_int_equal(nb_evaluate(g, failing, NULL, X, y, 4, 4, -1, &r), NB_ERR_IO);
    expect_msg("nb_evaluate: the forward failed on rows [0, 4): my model's weights went missing");
    nb_eval_result_free(&r);
    t.bad_k_after = 2; /* the third batch has 3 outputs */
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, 3, -1, &r), NB_ERR_SHAPE);
    expect_msg("returned 3 outputs for rows [6, 9) but 4 for the first batch");
    nb_eval_result_free(&r);
    t.calls = 0;
    assert_int_equal(nb_predict(g, table_forward, &t, X, 3, true, &out), NB_ERR_SHAPE);
    expect_msg("nb_predict: the forward returned 3 outputs for rows [6, 9)");
    assert_null(out);
    t.bad_k_after = 0;
    /* a target out of range in [N] targets names its row */
    int64_t bad[NR];
    memcpy(bad, hand_y, sizeof bad);
    bad[5] = -7;
    nb_tensor *yb = targets(NB_I32, 1, sy, bad);
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, yb, 4, 3, -1, &r), NB_ERR_RANGE);
    expect_msg("target -7 at row 5 out of range [0, 4) (ignore_index is -1)");
    nb_eval_result_free(&r);
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 100000, 3, -1, &r), NB_ERR_RANGE);
    expect_msg("n_classes 100000 out of range [1, 16384]");
    nb_eval_result_free(&r);
    /* targets living on the graph that evaluation resets */
    nb_tensor *yg = nb_graph_tensor(g, NB_I32, 1, sy);
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, yg, 4, 3, -1, &r), NB_ERR_ARG);
    expect_msg("nb_evaluate: y belongs to the graph g");
    nb_eval_result_free(&r);
    /* half-precision logits: evaluation reads them, prediction wants f32 or f64 */
    t.dtype = NB_F16;
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, 3, -1, &r), NB_OK);
    assert_int_equal(r.correct, 4);
    nb_eval_result_free(&r);
    assert_int_equal(nb_predict(g, table_forward, &t, X, 3, false, &out), NB_ERR_DTYPE);
    expect_msg("nb_predict: the forward returned f16 logits; expected f32 or f64");
    assert_null(out);
    t.dtype = NB_F32;
    /* X that is not [N, F] or [N, T, F] */
    int64_t s4[4] = {1, 1, NR, 1};
    nb_tensor *X4 = nb_tensor_zeros(NB_F32, 4, s4);
    assert_int_equal(nb_predict(g, table_forward, &t, X4, 3, false, &out), NB_ERR_SHAPE);
    expect_msg("nb_predict: X must be [N, F] or [N, T, F], got [1, 1, 10, 1]");
    nb_tensor_free(X4);
    /* success leaves the caller's message alone */
    nb_error(NB_ERR_IO, "an old failure");
    assert_int_equal(nb_evaluate(g, table_forward, &t, X, y, 4, 3, -1, &r), NB_OK);
    assert_int_equal(nb_predict(g, table_forward, &t, X, 3, true, &out), NB_OK);
    assert_string_equal(nb_last_error(), "an old failure");
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    nb_eval_result_free(&r);
    nb_tensor_free(out);
    nb_tensor_free(yb);
    nb_tensor_free(X);
    nb_tensor_free(y);
    nb_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_worked_f32_f64),
        cmocka_unit_test(test_metrics_from_confusion),
        cmocka_unit_test(test_batch_sizes_identical),
        cmocka_unit_test(test_sequences_with_padding),
        cmocka_unit_test(test_more_outputs_than_classes),
        cmocka_unit_test(test_empty_data),
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_forward_mlp_3d),
        cmocka_unit_test(test_forward_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
