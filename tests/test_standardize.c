/* test_standardize.c - per-feature standardisation (issue 14): the statistics against a hand
 * computation and an independent f64 one (Welford's one-pass update, not the library's two
 * passes), only the training split measured, a constant feature, the round trip through
 * nb_model_save / nb_model_load and the trainer's checkpoints, a saved standardised model
 * evaluated on raw rows scoring exactly what the trainer measured, and corrupted statistics
 * refused on load (and on save). */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_std_XXXXXX"
#include "nabla.h"
#include "test_files.h"

/* A data set of n rows and d features from row-major values (labels i % k). */
static void make_set(nb_dataset *ds, int64_t n, int64_t d, const float *x, int k)
{
    int64_t sx[2] = {n, d}, sy[1] = {n};
    nb_tensor *X = nb_tensor_from_buffer(NB_F32, 2, sx, x), *y = nb_tensor_zeros(NB_I32, 1, sy);
    assert_non_null(X);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++)
        ((int32_t *)y->data)[i] = (int32_t)(i % k);
    if (nb_dataset_from_tensors(X, y, k, ds) != NB_OK)
        fail_msg("nb_dataset_from_tensors: %s", nb_last_error());
    nb_tensor_free(X);
    nb_tensor_free(y);
}

static float getf(const nb_tensor *t, int64_t k)
{
    return ((const float *)t->data)[k];
}

/* Worked by hand: column 0 = 1, 2, 3, 6: mean 3, deviations -2, -1, 0, 3, variance 14 / 4;
 * column 1 = 10, 20, 60, 30: mean 30, variance (400 + 100 + 900 + 0) / 4 = 350; column 2 is
 * constant 5: std 1 and every value becomes 0. */
static void test_hand_worked(void **state)
{
    (void)state;
    const float x[12] = {1, 10, 5, 2, 20, 5, 3, 60, 5, 6, 30, 5};
    nb_dataset tr;
    make_set(&tr, 4, 3, x, 2);
    assert_int_equal(nb_dataset_standardize(&tr, NULL, NULL), NB_OK);
    assert_non_null(tr.mean);
    assert_non_null(tr.std);
    const double mean[3] = {3, 30, 5}, sd[3] = {sqrt(3.5), sqrt(350.0), 1};
    for (int j = 0; j < 3; j++) {
        assert_true(getf(tr.mean, j) == (float)mean[j]);
        assert_true(getf(tr.std, j) == (float)sd[j]);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            float want = (float)((x[i * 3 + j] - (double)(float)mean[j]) / (double)(float)sd[j]);
            if (getf(tr.X, i * 3 + j) != want)
                fail_msg("X'[%d, %d] = %.9g, expected %.9g", i, j, (double)getf(tr.X, i * 3 + j),
                         (double)want);
        }
    assert_true(getf(tr.X, 2) == 0.0f && getf(tr.X, 11) == 0.0f); /* the constant column */
    assert_true(fabs(getf(tr.X, 0) - (-2 / sqrt(3.5))) < 1e-6);
    nb_dataset_free(&tr);
    assert_null(tr.mean);
}

/* 2000 rows of 3 features with large offsets (1e4, -3e3, 0) and small spreads (0.5, 1e-2, 7):
 * f32 accumulation or dividing by N - 1 would be off by far more than the f32 rounding the
 * comparison allows. The reference is Welford's one-pass update in f64. */
static void test_matches_independent_f64(void **state)
{
    (void)state;
    enum { N = 2000, D = 3 };
    const double off[D] = {1e4, -3e3, 0}, spread[D] = {0.5, 1e-2, 7};
    float *x = malloc(sizeof(float) * N * D);
    assert_non_null(x);
    nb_rng r;
    nb_rng_seed(&r, 5);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(off[j] + spread[j] * nb_rng_normal(&r));
    nb_dataset tr;
    make_set(&tr, N, D, x, 3);
    assert_int_equal(nb_dataset_standardize(&tr, NULL, NULL), NB_OK);
    for (int j = 0; j < D; j++) {
        double mean = 0, m2 = 0;
        for (int i = 0; i < N; i++) {
            double v = x[i * D + j], delta = v - mean;
            mean += delta / (i + 1);
            m2 += delta * (v - mean);
        }
        double sd = sqrt(m2 / N);
        double gm = getf(tr.mean, j), gs = getf(tr.std, j);
        if (fabs(gm - mean) > 1.2e-7 * fabs(mean) + 1e-12 || fabs(gs - sd) > 1.2e-7 * sd)
            fail_msg("feature %d: mean %.9g std %.9g, reference %.9g %.9g", j, gm, gs, mean, sd);
        /* the standardised column: mean 0 (up to the f32 rounding of the mean) and std 1 */
        double s = 0, ss = 0;
        for (int i = 0; i < N; i++) {
            s += getf(tr.X, i * D + j);
            ss += (double)getf(tr.X, i * D + j) * getf(tr.X, i * D + j);
        }
        double shift = (mean - gm) / gs; /* the f32 rounding of the mean, in std units */
        if (fabs(s / N - shift) > 1e-5 || fabs(ss / N - (s / N) * (s / N) - 1) > 1e-4)
            fail_msg("feature %d: standardised mean %.3g (expected %.3g), variance %.6f", j, s / N,
                     shift, ss / N - (s / N) * (s / N));
    }
    nb_dataset_free(&tr);
    free(x);
}

/* val and test are standardised with train's statistics, never their own: val is train shifted
 * by +100, so its standardised values are train's plus 100 / std. A constant feature whose
 * value differs in val becomes val - mean there. Splits of a standardised set keep copies. */
static void test_only_training_split_measured(void **state)
{
    (void)state;
    const float xt[8] = {1, 4, 2, 4, 3, 4, 4, 4}; /* column 1 constant 4 */
    const float xv[4] = {101, 9, 102, 9}, xs[2] = {0, 4};
    nb_dataset tr, va, te;
    make_set(&tr, 4, 2, xt, 2);
    make_set(&va, 2, 2, xv, 2);
    make_set(&te, 1, 2, xs, 2);
    assert_int_equal(nb_dataset_standardize(&tr, &va, &te), NB_OK);
    double sd = sqrt(1.25); /* of 1, 2, 3, 4 */
    assert_true(getf(tr.mean, 0) == 2.5f && getf(tr.std, 0) == (float)sd);
    assert_true(getf(tr.mean, 1) == 4.0f && getf(tr.std, 1) == 1.0f);
    assert_memory_equal(va.mean->data, tr.mean->data, 2 * sizeof(float));
    assert_memory_equal(te.std->data, tr.std->data, 2 * sizeof(float));
    assert_true(getf(va.X, 0) == (float)((101 - 2.5) / (double)(float)sd));
    assert_true(getf(va.X, 1) == 5.0f); /* 9 - 4 */
    assert_true(getf(te.X, 0) == (float)(-2.5 / (double)(float)sd));
    assert_true(getf(te.X, 1) == 0.0f);
    /* a split of a standardised set is standardised alike */
    nb_dataset a, b;
    assert_int_equal(nb_dataset_split(&tr, 0.5, 3, &a, &b), NB_OK);
    assert_non_null(a.mean);
    assert_non_null(b.std);
    assert_memory_equal(a.mean->data, tr.mean->data, 2 * sizeof(float));
    assert_memory_equal(b.std->data, tr.std->data, 2 * sizeof(float));
    nb_dataset_free(&a);
    nb_dataset_free(&b);
    /* standardising again is refused and changes nothing */
    float before = getf(va.X, 0);
    assert_int_equal(nb_dataset_apply_standardize(&va, tr.mean, tr.std), NB_ERR_STATE);
    assert_true(getf(va.X, 0) == before);
    nb_dataset_free(&tr);
    nb_dataset_free(&va);
    nb_dataset_free(&te);
}

/* A refused standardisation leaves every data set as it was: val holds a value that overflows
 * f32 once divided by train's tiny std. */
static void test_refusal_changes_nothing(void **state)
{
    (void)state;
    const float xt[4] = {0, 1e-30f, 0, 1e-30f}, xv[2] = {3e38f, 0};
    nb_dataset tr, va;
    make_set(&tr, 4, 1, xt, 2);
    make_set(&va, 2, 1, xv, 2);
    assert_int_equal(nb_dataset_standardize(&tr, &va, NULL), NB_ERR_RANGE);
    const char *msg = nb_last_error();
    if (!strstr(msg, "val row 0, column 0") || !strstr(msg, "f32 range"))
        fail_msg("message: %s", msg);
    assert_null(tr.mean);
    assert_null(va.mean);
    assert_memory_equal(tr.X->data, xt, sizeof xt);
    assert_memory_equal(va.X->data, xv, sizeof xv);
    /* a different feature count */
    nb_dataset w;
    const float xw[4] = {1, 2, 3, 4};
    make_set(&w, 2, 2, xw, 2);
    assert_int_equal(nb_dataset_standardize(&tr, NULL, &w), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "test has 2 features but train has 1"));
    nb_dataset_free(&w);
    nb_dataset_free(&tr);
    nb_dataset_free(&va);
}

/* nb_standardize_features on an f64 matrix gives what the data-set path gives on f32. */
static void test_features_f64(void **state)
{
    (void)state;
    int64_t s1[1] = {2}, sx[2] = {2, 2};
    nb_tensor *m = nb_tensor_zeros(NB_F32, 1, s1), *sd = nb_tensor_ones(NB_F32, 1, s1);
    nb_tensor_set(m, 0, 1.5);
    nb_tensor_set(sd, 1, 4.0);
    nb_tensor *x = nb_tensor_zeros(NB_F64, 2, sx);
    const double v[4] = {1, 2, 3, 10};
    for (int k = 0; k < 4; k++)
        nb_tensor_set(x, k, v[k]);
    assert_int_equal(nb_standardize_features(x, m, sd), NB_OK);
    const double want[4] = {-0.5, 0.5, 1.5, 2.5};
    for (int k = 0; k < 4; k++)
        assert_true(nb_tensor_get(x, k) == want[k]);
    nb_tensor_set(x, 3, NAN); /* a NaN input is refused, naming it */
    assert_int_equal(nb_standardize_features(x, m, sd), NB_ERR_RANGE);
    assert_non_null(strstr(nb_last_error(), "X row 1, column 1 is nan"));
    nb_tensor_free(m);
    nb_tensor_free(sd);
    nb_tensor_free(x);
}

/* ---- checkpoints ---- */

static nb_model_info plain_info(void)
{
    nb_model_info info;
    memset(&info, 0, sizeof info);
    info.input_scale = 1;
    info.n_classes = 3;
    return info;
}

static nb_mlp *small_mlp(int64_t d)
{
    int64_t sizes[3] = {d, 8, 3};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 3);
    assert_non_null(m);
    return m;
}

/* Statistics round-trip bit for bit; a checkpoint without them loads with NULL ones. */
static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    char path[256], plain[256];
    tmp_path(path, sizeof path, "std.safetensors");
    tmp_path(plain, sizeof plain, "plain.safetensors");
    nb_mlp *m = small_mlp(4);
    int64_t s4[1] = {4};
    nb_tensor *mean = nb_tensor_zeros(NB_F32, 1, s4), *sd = nb_tensor_zeros(NB_F32, 1, s4);
    const float mv[4] = {1.0f / 3, -1e4f, 0, 2.5e-7f}, sv[4] = {1, 1.0f / 7, 3e3f, 1e-20f};
    memcpy(mean->data, mv, sizeof mv);
    memcpy(sd->data, sv, sizeof sv);
    nb_model_info info = plain_info(), got;
    info.input_mean = mean;
    info.input_std = sd;
    assert_int_equal(nb_model_save(path, m, &info, NULL), NB_OK);
    nb_mlp *l = nb_model_load(path, &got, NULL);
    if (!l)
        fail_msg("nb_model_load: %s", nb_last_error());
    assert_non_null(got.input_mean);
    assert_non_null(got.input_std);
    assert_true(got.input_mean != mean); /* the caller's own copies */
    assert_int_equal(got.input_mean->dtype, NB_F32);
    assert_int_equal(got.input_std->shape[0], 4);
    assert_memory_equal(got.input_mean->data, mv, sizeof mv);
    assert_memory_equal(got.input_std->data, sv, sizeof sv);
    nb_model_info_free(&got);
    assert_null(got.input_mean);
    nb_mlp_free(l);
    /* nb_model_load_into returns them too */
    nb_mlp *into = small_mlp(4);
    assert_int_equal(nb_model_load_into(path, into, &got, NULL), NB_OK);
    assert_memory_equal(got.input_std->data, sv, sizeof sv);
    nb_model_info_free(&got);
    nb_mlp_free(into);
    /* no statistics: as before */
    nb_model_info pi = plain_info();
    assert_int_equal(nb_model_save(plain, m, &pi, NULL), NB_OK);
    l = nb_model_load(plain, &got, NULL);
    assert_non_null(l);
    assert_null(got.input_mean);
    assert_null(got.input_std);
    nb_mlp_free(l);
    nb_mlp_free(m);
    nb_tensor_free(mean);
    nb_tensor_free(sd);
}

/* nb_model_save refuses statistics nb_model_load would refuse (and keeps the good file). */
static void test_save_refuses_bad_stats(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "refused.safetensors");
    nb_mlp *m = small_mlp(2);
    int64_t s2[1] = {2}, s3[1] = {3};
    nb_tensor *mean = nb_tensor_zeros(NB_F32, 1, s2), *sd = nb_tensor_ones(NB_F32, 1, s2);
    nb_tensor *m3 = nb_tensor_zeros(NB_F32, 1, s3);
    nb_model_info info = plain_info();
    info.input_mean = mean;
    assert_int_equal(nb_model_save(path, m, &info, NULL), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "info input_std is NULL but input_mean is set"));
    info.input_std = sd;
    info.input_mean = m3;
    assert_int_equal(nb_model_save(path, m, &info, NULL), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "info input_mean is f32 [3]; the model's 2 inputs"));
    info.input_mean = mean;
    nb_tensor_set(sd, 1, -1.0);
    assert_int_equal(nb_model_save(path, m, &info, NULL), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "info input_std element 1 is -1"));
    assert_false(file_exists(path));
    nb_mlp_free(m);
    nb_tensor_free(mean);
    nb_tensor_free(sd);
    nb_tensor_free(m3);
}

/* Rewrites src into dst with tensor `name` replaced by `repl` (NULL: dropped). */
static void rewrite(const char *src, const char *dst, const char *name, const nb_tensor *repl)
{
    nb_safetensors *st = nb_safetensors_load(src);
    if (!st)
        fail_msg("rewrite: %s", nb_last_error());
    int n = nb_safetensors_count(st), k = 0;
    nb_named_tensor *ts = calloc((size_t)n, sizeof *ts);
    assert_non_null(ts);
    for (int i = 0; i < n; i++) {
        const char *nm = nb_safetensors_name(st, i);
        if (!strcmp(nm, name) && !repl)
            continue;
        ts[k].name = nm;
        ts[k++].tensor = !strcmp(nm, name) ? repl : nb_safetensors_get(st, nm);
    }
    int nm = nb_safetensors_meta_count(st);
    const char **meta = calloc(2 * (size_t)nm + 1, sizeof *meta);
    assert_non_null(meta);
    for (int i = 0; i < nm; i++) {
        meta[2 * i] = nb_safetensors_meta_key(st, i);
        meta[2 * i + 1] = nb_safetensors_meta(st, meta[2 * i]);
    }
    if (nb_safetensors_save(dst, ts, k, meta) != NB_OK)
        fail_msg("rewrite %s: %s", dst, nb_last_error());
    free(meta);
    free(ts);
    nb_safetensors_free(st);
}

/* Every corruption of the statistics is refused by nb_model_load with NB_ERR_FORMAT, naming the
 * file, the tensor, the element and value, and the limit; the good file loads. */
static void test_corrupted_stats_refused(void **state)
{
    (void)state;
    char good[256], bad[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    nb_mlp *m = small_mlp(3);
    int64_t s3[1] = {3}, s4[1] = {4};
    nb_tensor *mean = nb_tensor_full(NB_F32, 1, s3, 0.5), *sd = nb_tensor_full(NB_F32, 1, s3, 2);
    nb_model_info info = plain_info(), got;
    info.input_mean = mean;
    info.input_std = sd;
    assert_int_equal(nb_model_save(good, m, &info, NULL), NB_OK);
    nb_tensor *zero = nb_tensor_full(NB_F32, 1, s3, 2), *neg = nb_tensor_full(NB_F32, 1, s3, 2);
    nb_tensor *nan = nb_tensor_full(NB_F32, 1, s3, 0.5), *wide = nb_tensor_full(NB_F64, 1, s3, 1);
    nb_tensor *four = nb_tensor_full(NB_F32, 1, s4, 1), *ints = nb_tensor_full(NB_I32, 1, s3, 1);
    nb_tensor *tiny = nb_tensor_full(NB_F64, 1, s3, 1);
    nb_tensor_set(zero, 2, 0.0);
    nb_tensor_set(neg, 0, -3.0);
    nb_tensor_set(nan, 1, NAN);
    nb_tensor_set(wide, 1, 1e300);  /* finite in f64, inf as the f32 the model uses */
    nb_tensor_set(tiny, 0, 1e-300); /* > 0 in f64, 0 as an f32 */
    struct {
        const char *tensor;
        const nb_tensor *repl;
        const char *phrases[3];
    } cases[] = {
        {"input.std", zero, {"tensor 'input.std' element 2 is 0", "> 0", NULL}},
        {"input.std", neg, {"tensor 'input.std' element 0 is -3", "> 0", NULL}},
        {"input.std", tiny, {"tensor 'input.std' element 0 is 1e-300", "> 0 (as an f32)", NULL}},
        {"input.mean", nan, {"tensor 'input.mean' element 1 is nan", "finite f32", NULL}},
        {"input.mean", wide, {"tensor 'input.mean' element 1 is 1e+300", "finite f32", NULL}},
        {"input.mean", four, {"tensor 'input.mean' is f32 [4]", "3 inputs need f32 [3]", NULL}},
        {"input.std", ints, {"tensor 'input.std' is i32 [3]", "need f32 [3]", NULL}},
        {"input.std", NULL, {"tensor 'input.std' is missing", "needs both", NULL}},
        {"input.mean", NULL, {"tensor 'input.mean' is missing", "needs both", NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rewrite(good, bad, cases[c].tensor, cases[c].repl);
        memset(&got, 0, sizeof got);
        nb_mlp *l = nb_model_load(bad, &got, NULL);
        if (l)
            fail_msg("case %zu: the corrupted file loaded", c);
        assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
        const char *msg = nb_last_error();
        if (!strstr(msg, bad))
            fail_msg("case %zu: \"%s\" does not name the file", c, msg);
        for (int p = 0; cases[c].phrases[p]; p++)
            if (!strstr(msg, cases[c].phrases[p]))
                fail_msg("case %zu: \"%s\" does not say \"%s\"", c, msg, cases[c].phrases[p]);
        assert_null(got.input_mean); /* info untouched on failure */
        nb_mlp *into = small_mlp(3);
        assert_int_equal(nb_model_load_into(bad, into, &got, NULL), NB_ERR_FORMAT);
        nb_mlp_free(into);
    }
    nb_mlp *l = nb_model_load(good, &got, NULL);
    assert_non_null(l);
    nb_model_info_free(&got);
    nb_mlp_free(l);
    /* an f64 std of good values is accepted and converted to f32 */
    nb_tensor *f64 = nb_tensor_full(NB_F64, 1, s3, 2);
    rewrite(good, bad, "input.std", f64);
    l = nb_model_load(bad, &got, NULL);
    if (!l)
        fail_msg("f64 std: %s", nb_last_error());
    assert_int_equal(got.input_std->dtype, NB_F32);
    assert_true(getf(got.input_std, 2) == 2.0f);
    nb_model_info_free(&got);
    nb_mlp_free(l);
    nb_tensor_free(f64);
    nb_tensor *all[] = {mean, sd, zero, neg, nan, wide, four, ints, tiny};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
    nb_mlp_free(m);
}

/* ---- training, then evaluation on raw rows ---- */

/* 3 classes in 4 features of very different scales: f0 = 1000 + 3 class + noise (a large
 * offset), f1 = 1e-3 (class - 1) + noise, f2 noise only, f3 constant 7. */
static void blobs(int64_t n, uint64_t seed, nb_dataset *ds)
{
    float *x = malloc(sizeof(float) * (size_t)n * 4);
    assert_non_null(x);
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        x[i * 4 + 0] = (float)(1000 + 3.0 * c + 2.0 * nb_rng_normal(&r));
        x[i * 4 + 1] = (float)(1e-3 * (c - 1) + 7e-4 * nb_rng_normal(&r));
        x[i * 4 + 2] = (float)(50 * nb_rng_normal(&r));
        x[i * 4 + 3] = 7.0f;
    }
    make_set(ds, n, 4, x, 3);
    free(x);
}

/* The trainer records the statistics in its run and best checkpoints; the best model, fed the
 * raw validation rows standardised with the statistics read back, scores exactly the accuracy
 * (and the loss) the trainer measured for its best epoch. Without them it scores far worse. */
static void test_trained_model_on_raw_rows(void **state)
{
    (void)state;
    char best[256], run[256];
    tmp_path(best, sizeof best, "best.safetensors");
    tmp_path(run, sizeof run, "run.safetensors");
    nb_dataset all, tr, va, raw_tr, raw_va;
    blobs(600, 11, &all);
    assert_int_equal(nb_dataset_split(&all, 0.2, 4, &tr, &va), NB_OK);
    assert_int_equal(nb_dataset_split(&all, 0.2, 4, &raw_tr, &raw_va), NB_OK); /* same rows */
    nb_train_config c = nb_train_defaults();
    c.val = &va;
    c.best_checkpoint = best;
    /* the validation set must be standardised like the training set */
    nb_mlp *m = small_mlp(4);
    nb_train_model model = nb_train_model_mlp(m);
    assert_int_equal(nb_dataset_standardize(&tr, NULL, NULL), NB_OK);
    assert_int_equal(nb_train(&model, &tr, &c, NULL), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "the validation set is not"));
    assert_int_equal(nb_dataset_apply_standardize(&va, tr.mean, tr.std), NB_OK);
    c.epochs = 30;
    c.batch = 32;
    c.optim.lr = 1e-2;
    c.checkpoint = run;
    c.schedule.warmup = 10;
    nb_train_result r;
    assert_int_equal(nb_train(&model, &tr, &c, &r), NB_OK);
    printf("best epoch %lld: val acc %.4f\n", (long long)r.best_epoch, r.best_val_acc);
    assert_true(r.best_epoch >= 1);
    assert_true(r.best_val_acc >= 0.8); /* the blobs overlap a little: about 0.88 is possible */
    const char *paths[2] = {run, best};
    nb_mlp *b = NULL;
    nb_model_info info;
    for (int p = 0; p < 2; p++) {
        nb_mlp_free(b);
        b = nb_model_load(paths[p], &info, NULL);
        if (!b)
            fail_msg("nb_model_load %s: %s", paths[p], nb_last_error());
        assert_non_null(info.input_mean);
        assert_memory_equal(info.input_mean->data, tr.mean->data, 4 * sizeof(float));
        assert_memory_equal(info.input_std->data, tr.std->data, 4 * sizeof(float));
        assert_true(getf(info.input_std, 3) == 1.0f); /* the constant feature */
        if (p == 0)
            nb_model_info_free(&info);
    }
    nb_graph *g = nb_graph_new();
    nb_eval_result raw, res;
    /* unstandardised rows: the model is fed values ~1000 it never saw */
    assert_int_equal(nb_evaluate(g, nb_forward_mlp, b, raw_va.X, raw_va.y, 3, 64, -100, &raw),
                     NB_OK);
    assert_int_equal(nb_dataset_apply_standardize(&raw_va, info.input_mean, info.input_std), NB_OK);
    assert_memory_equal(raw_va.X->data, va.X->data, (size_t)va.X->numel * sizeof(float));
    assert_int_equal(nb_evaluate(g, nb_forward_mlp, b, raw_va.X, raw_va.y, 3, 64, -100, &res),
                     NB_OK);
    printf("best epoch %lld: trainer val acc %.4f loss %.12g; eval on raw rows acc %.4f loss "
           "%.12g; without the statistics acc %.4f\n",
           (long long)r.best_epoch, r.best_val_acc, r.best_val_loss, res.accuracy, res.loss,
           raw.accuracy);
    assert_true(res.accuracy == r.best_val_acc);
    assert_true(fabs(res.loss - r.best_val_loss) <= 1e-6 * r.best_val_loss);
    assert_true(raw.accuracy < res.accuracy - 0.2);
    nb_eval_result_free(&raw);
    nb_eval_result_free(&res);
    nb_graph_free(g);
    nb_model_info_free(&info);
    nb_mlp_free(b);
    nb_mlp_free(m);
    nb_dataset *sets[] = {&all, &tr, &va, &raw_tr, &raw_va};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        nb_dataset_free(sets[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_worked),
        cmocka_unit_test(test_matches_independent_f64),
        cmocka_unit_test(test_only_training_split_measured),
        cmocka_unit_test(test_refusal_changes_nothing),
        cmocka_unit_test(test_features_f64),
        cmocka_unit_test_teardown(test_checkpoint_round_trip, clean_each),
        cmocka_unit_test_teardown(test_save_refuses_bad_stats, clean_each),
        cmocka_unit_test_teardown(test_corrupted_stats_refused, clean_each),
        cmocka_unit_test_teardown(test_trained_model_on_raw_rows, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
