/* test_eval_checkpoint.c - the two helpers examples/csv_classifier.c stands on (issue 11):
 *   nb_dataset_split3: three disjoint parts covering every row once, the test part equal to the
 *     validation part nb_dataset_split draws with the same seed (one permutation, cut in order);
 *   nb_evaluate_checkpoint: a saved standardised model scored on raw rows gives the figures of
 *     the long way (load, standardise a copy, nb_evaluate), leaves the rows alone, and refuses
 *     data prepared otherwise than the model's training set. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_evck_XXXXXX"
#include "nabla.h"
#include "test_files.h"

/* N rows of D features; row i's features are i * 10 + j (so a row is known by its value), its
 * label i % K. */
static void numbered(nb_dataset *ds, int64_t N, int64_t D, int K)
{
    int64_t sx[2] = {N, D}, sy[1] = {N};
    nb_tensor *X = nb_tensor_zeros(NB_F32, 2, sx), *y = nb_tensor_zeros(NB_I32, 1, sy);
    assert_non_null(X);
    assert_non_null(y);
    for (int64_t i = 0; i < N; i++) {
        for (int64_t j = 0; j < D; j++)
            ((float *)X->data)[i * D + j] = (float)(i * 10 + j);
        ((int32_t *)y->data)[i] = (int32_t)(i % K);
    }
    assert_int_equal(nb_dataset_from_tensors(X, y, K, ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);
}

static int64_t row_id(const nb_dataset *ds, int64_t r)
{
    return (int64_t)(((const float *)ds->X->data)[r * ds->X->shape[1]] / 10);
}

static void test_split3_parts(void **state)
{
    (void)state;
    nb_dataset all, tr, va, te, a, b;
    numbered(&all, 100, 2, 3);
    assert_int_equal(nb_dataset_split3(&all, 0.1, 0.2, 9, &tr, &va, &te), NB_OK);
    assert_int_equal(te.X->shape[0], 20);
    assert_int_equal(va.X->shape[0], 10);
    assert_int_equal(tr.X->shape[0], 70);
    int seen[100] = {0};
    const nb_dataset *parts[3] = {&tr, &va, &te};
    for (int p = 0; p < 3; p++) {
        assert_int_equal(parts[p]->n_classes, 3);
        for (int64_t r = 0; r < parts[p]->X->shape[0]; r++) {
            int64_t id = row_id(parts[p], r);
            assert_true(id >= 0 && id < 100);
            seen[id]++;
            assert_int_equal(((int32_t *)parts[p]->y->data)[r], id % 3); /* label kept */
            assert_true(((float *)parts[p]->X->data)[r * 2 + 1] == (float)(id * 10 + 1));
        }
    }
    for (int i = 0; i < 100; i++)
        if (seen[i] != 1)
            fail_msg("row %d is in %d parts", i, seen[i]);
    /* the same permutation as nb_dataset_split: its first 20 rows */
    assert_int_equal(nb_dataset_split(&all, 0.2, 9, &a, &b), NB_OK);
    assert_memory_equal(te.X->data, b.X->data, 20 * 2 * sizeof(float));
    /* and its next 10 are val */
    assert_memory_equal(va.X->data, a.X->data, 10 * 2 * sizeof(float));
    nb_dataset *sets[] = {&all, &tr, &va, &te, &a, &b};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        nb_dataset_free(sets[i]);
}

/* A model saved with statistics mean [D], std [D]. */
static nb_mlp *save_model(const char *path, const nb_tensor *mean, const nb_tensor *std, int K)
{
    int64_t sizes[3] = {3, 6, K};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F32, 17);
    assert_non_null(m);
    nb_model_info info;
    memset(&info, 0, sizeof info);
    info.input_scale = 1;
    info.n_classes = K;
    info.input_mean = (nb_tensor *)mean;
    info.input_std = (nb_tensor *)std;
    if (nb_model_save(path, m, &info, NULL) != NB_OK)
        fail_msg("nb_model_save: %s", nb_last_error());
    return m;
}

static void assert_same_result(const nb_eval_result *a, const nb_eval_result *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->correct, b->correct);
    assert_true(a->loss_sum == b->loss_sum);
    assert_int_equal(a->n_classes, b->n_classes);
    assert_memory_equal(a->confusion, b->confusion,
                        sizeof *a->confusion * (size_t)(a->n_classes * a->n_classes));
}

static void test_evaluate_checkpoint_raw_rows(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "m.safetensors");
    nb_dataset raw, done;
    numbered(&raw, 40, 3, 3);
    numbered(&done, 40, 3, 3);
    int64_t s3[1] = {3};
    nb_tensor *mean = nb_tensor_full(NB_F32, 1, s3, 200), *sd = nb_tensor_full(NB_F32, 1, s3, 115);
    nb_tensor_set(sd, 2, 0.5); /* a feature the model sees at another scale */
    nb_mlp *m = save_model(path, mean, sd, 3);
    /* the long way */
    nb_tensor *x = nb_tensor_clone(raw.X);
    assert_int_equal(nb_standardize_features(x, mean, sd), NB_OK);
    nb_graph *g = nb_graph_new();
    nb_eval_result want, got;
    assert_int_equal(nb_evaluate(g, nb_forward_mlp, m, x, raw.y, 3, 7, -100, &want), NB_OK);
    nb_tensor *before = nb_tensor_clone(raw.X);
    assert_int_equal(nb_evaluate_checkpoint(path, &raw, &got), NB_OK);
    assert_same_result(&got, &want);
    assert_memory_equal(raw.X->data, before->data, 40 * 3 * sizeof(float)); /* a copy */
    nb_eval_result_free(&got);
    /* already standardised with the same statistics: as is */
    assert_int_equal(nb_dataset_apply_standardize(&done, mean, sd), NB_OK);
    assert_int_equal(nb_evaluate_checkpoint(path, &done, &got), NB_OK);
    assert_same_result(&got, &want);
    nb_eval_result_free(&got);
    /* unstandardised rows fed as they are would score differently: the case is not trivial */
    nb_eval_result plain;
    assert_int_equal(nb_evaluate(g, nb_forward_mlp, m, raw.X, raw.y, 3, 7, -100, &plain), NB_OK);
    assert_true(plain.loss_sum != want.loss_sum);
    nb_eval_result_free(&plain);
    nb_eval_result_free(&want);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(before);
    nb_tensor_free(mean);
    nb_tensor_free(sd);
    nb_mlp_free(m);
    nb_dataset_free(&raw);
    nb_dataset_free(&done);
}

static void expect(nb_status got, nb_status want, const char *phrase)
{
    if (got != want || !strstr(nb_last_error(), phrase))
        fail_msg("status %d (want %d), message \"%s\" (want \"%s\")", (int)got, (int)want,
                 nb_last_error(), phrase);
}

static void test_evaluate_checkpoint_refusals(void **state)
{
    (void)state;
    char with[256], without[256];
    tmp_path(with, sizeof with, "with.safetensors");
    tmp_path(without, sizeof without, "without.safetensors");
    int64_t s3[1] = {3};
    nb_tensor *mean = nb_tensor_full(NB_F32, 1, s3, 1), *sd = nb_tensor_full(NB_F32, 1, s3, 2);
    nb_tensor *other = nb_tensor_full(NB_F32, 1, s3, 3);
    nb_mlp *m1 = save_model(with, mean, sd, 3), *m2 = save_model(without, NULL, NULL, 3);
    nb_dataset d, four, wide;
    nb_eval_result r;
    numbered(&d, 12, 3, 3);
    numbered(&four, 12, 4, 3);
    numbered(&wide, 12, 3, 5);
    expect(nb_evaluate_checkpoint(with, &four, &r), NB_ERR_SHAPE,
           "takes 3 features but data X "
           "has 4");
    expect(nb_evaluate_checkpoint(with, &wide, &r), NB_ERR_SHAPE, "data has 5 classes but");
    d.input_scale = 0.5;
    expect(nb_evaluate_checkpoint(with, &d, &r), NB_ERR_ARG, "data was scaled as raw * 0.5 + 0");
    d.input_scale = 1;
    assert_int_equal(nb_dataset_apply_standardize(&d, other, sd), NB_OK);
    expect(nb_evaluate_checkpoint(with, &d, &r), NB_ERR_ARG,
           "standardised with another mean and std");
    expect(nb_evaluate_checkpoint(without, &d, &r), NB_ERR_ARG,
           "trained on unstandardised features");
    nb_eval_result_free(&r);
    nb_dataset *sets[] = {&d, &four, &wide};
    for (size_t i = 0; i < 3; i++)
        nb_dataset_free(sets[i]);
    nb_mlp_free(m1);
    nb_mlp_free(m2);
    nb_tensor_free(mean);
    nb_tensor_free(sd);
    nb_tensor_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split3_parts),
        cmocka_unit_test_teardown(test_evaluate_checkpoint_raw_rows, clean_each),
        cmocka_unit_test_teardown(test_evaluate_checkpoint_refusals, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
