/* test_ckpt_validate.c - crafted checkpoints are refused, field by field (nabla/checkpoint.h,
 * nb_optim_state_check, nb_safetensors_meta_int / _number).
 *
 * Every crafted file is a good checkpoint (an MLP 5-7-3 with Adam after two steps) rewritten
 * through the safetensors reader and writer with exactly one thing changed: a metadata value, or
 * one element of one tensor. Each must make nb_model_load (and nb_model_load_into) fail with a
 * message naming the file, the field, the value and the limit, and must leave the caller's
 * optimiser untouched; the untouched good file must still load (so each refusal is caused by
 * the one edit). What is checked:
 *   - integer metadata (epoch, optim_step, n_classes): "1e300" (once cast to int64: undefined
 *     behaviour), negative, above the limit, not integral, empty;
 *   - real metadata (input_scale, input_shift, dropout, lr): nan, inf, out of range (dropout 1);
 *   - tensors: a NaN / inf weight or bias (f32), an f64 weight that overflows f32, a NaN or inf
 *     exp_avg, a negative or NaN exp_avg_sq;
 *   - the dataset spec is stored whole: a 300-byte spec round-trips, one longer than the limit
 *     is refused at save and at load (never truncated);
 *   - the metadata helpers on their own: strict integers and finite numbers with ranges.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_ckval_XXXXXX"
#include "test_files.h"

static const int64_t SIZES[3] = {5, 7, 3};

static nb_optim *adam_over(nb_mlp *m)
{
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    int np = nb_mlp_param_count(m);
    for (int i = 0; i < np; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAM);
    cfg.lr = 0.01;
    nb_optim *o = nb_optim_new(&cfg, params, np);
    if (!o)
        fail_msg("nb_optim_new: %s", nb_last_error());
    return o;
}

static nb_model_info good_info(void)
{
    nb_model_info info;
    memset(&info, 0, sizeof info);
    info.input_scale = 0.5;
    info.input_shift = -1.0;
    info.n_classes = 3;
    info.epoch = 4;
    snprintf(info.dataset, sizeof info.dataset, "spirals");
    return info;
}

/* A model trained two Adam steps on a fixed batch, saved with its optimiser at path. */
static void write_good(const char *path)
{
    nb_mlp *m = nb_mlp_new(SIZES, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F32, 5);
    assert_non_null(m);
    nb_optim *o = adam_over(m);
    int64_t sx[2] = {4, 5}, sy[1] = {4};
    nb_tensor *x = nb_tensor_zeros(NB_F32, 2, sx), *y = nb_tensor_zeros(NB_I32, 1, sy);
    assert_non_null(x);
    assert_non_null(y);
    for (int64_t k = 0; k < x->numel; k++)
        ((float *)x->data)[k] = (float)((k * 37) % 11) / 11.0f - 0.5f;
    for (int64_t k = 0; k < 4; k++)
        ((int32_t *)y->data)[k] = (int32_t)(k % 3);
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    for (int s = 0; s < 2; s++) {
        nb_graph_reset(g);
        nb_optim_zero_grad(o);
        nb_tensor *L = nb_cross_entropy(g, nb_mlp_forward(g, m, x), y, NULL);
        assert_non_null(L);
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
        assert_int_equal(nb_optim_step(o), NB_OK);
    }
    nb_model_info info = good_info();
    if (nb_model_save(path, m, &info, o) != NB_OK)
        fail_msg("nb_model_save: %s", nb_last_error());
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_optim_free(o);
    nb_mlp_free(m);
}

/* One change to a file: metadata key set to value, or element k of tensor name set to v (with
 * `as_f64`: the tensor is rewritten as f64 first). */
typedef struct edit {
    const char *key, *value;
    const char *tensor;
    int64_t k;
    double v;
    bool as_f64;
} edit;

static void rewrite(const char *src, const char *dst, const edit *e)
{
    nb_safetensors *st = nb_safetensors_load(src);
    if (!st)
        fail_msg("rewrite: %s", nb_last_error());
    int n = nb_safetensors_count(st);
    nb_named_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    assert_non_null(ts);
    nb_tensor *copy = NULL;
    for (int i = 0; i < n; i++) {
        const char *name = nb_safetensors_name(st, i);
        const nb_tensor *t = nb_safetensors_get(st, name);
        ts[i].name = name;
        ts[i].tensor = t;
        if (e->tensor && !strcmp(name, e->tensor)) {
            copy = nb_tensor_zeros(e->as_f64 ? NB_F64 : t->dtype, t->ndim, t->shape);
            assert_non_null(copy);
            for (int64_t k = 0; k < t->numel; k++)
                nb_tensor_set(copy, k, nb_tensor_get(t, k));
            nb_tensor_set(copy, e->k, e->v);
            ts[i].tensor = copy;
        }
    }
    if (e->tensor && !copy)
        fail_msg("rewrite: %s has no tensor '%s'", src, e->tensor);
    int nm = nb_safetensors_meta_count(st), j = 0;
    const char **meta = calloc(2 * (size_t)nm + 3, sizeof *meta);
    assert_non_null(meta);
    bool seen = false;
    for (int i = 0; i < nm; i++) {
        const char *key = nb_safetensors_meta_key(st, i), *val = nb_safetensors_meta(st, key);
        if (e->key && !strcmp(key, e->key)) {
            seen = true;
            if (!e->value)
                continue;
            val = e->value;
        }
        meta[j++] = key;
        meta[j++] = val;
    }
    if (e->key && !seen && e->value) {
        meta[j++] = e->key;
        meta[j++] = e->value;
    }
    meta[j] = NULL;
    if (nb_safetensors_save(dst, ts, n, meta) != NB_OK)
        fail_msg("rewrite %s: %s", dst, nb_last_error());
    nb_tensor_free(copy);
    free(meta);
    free(ts);
    nb_safetensors_free(st);
}

static void expect_mentions(const char *what, const char *msg, const char *const *phrases)
{
    for (int i = 0; phrases[i]; i++)
        if (!strstr(msg, phrases[i]))
            fail_msg("%s: the message \"%s\" does not mention \"%s\"", what, msg, phrases[i]);
}

static void assert_optim_fresh(const nb_optim *o)
{
    assert_int_equal(nb_optim_step_count(o), 0);
    for (int i = 0; i < nb_optim_state_count(o); i++) {
        const char *name;
        nb_tensor *t = nb_optim_state_tensor(o, i, &name);
        for (int64_t k = 0; k < t->numel; k++)
            if (nb_tensor_get(t, k) != 0.0)
                fail_msg("state '%s' element %lld was overwritten by a refused load", name,
                         (long long)k);
    }
}

/* The crafted file made from good.safetensors by e must be refused, by nb_model_load with and
 * without an optimiser (with_optim_only: only with one, the field is optimiser state) and by
 * nb_model_load_into, with a message holding the file name and every phrase. */
static void expect_refused(const char *what, const edit *e, bool with_optim_only,
                           const char *const *phrases)
{
    char good[256], bad[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "crafted.safetensors");
    rewrite(good, bad, e);
    nb_model_info info;
    nb_mlp *fresh = nb_mlp_new(SIZES, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F32, 9);
    assert_non_null(fresh);
    nb_optim *o = adam_over(fresh);
    for (int mode = with_optim_only ? 1 : 0; mode < 3; mode++) {
        nb_clear_error();
        bool refused;
        if (mode < 2) {
            nb_mlp *m = nb_model_load(bad, &info, mode ? o : NULL);
            refused = m == NULL;
            nb_mlp_free(m);
        } else {
            refused = nb_model_load_into(bad, fresh, &info, o) != NB_OK;
        }
        if (!refused)
            fail_msg("%s: the crafted checkpoint was accepted (mode %d)", what, mode);
        expect_mentions(what, nb_last_error(), (const char *const[]){"crafted.safetensors", NULL});
        expect_mentions(what, nb_last_error(), phrases);
        assert_optim_fresh(o);
    }
    nb_optim_free(o);
    nb_mlp_free(fresh);
}

static int setup(void **state)
{
    if (setup_dir(state) != 0)
        return -1;
    char good[256];
    tmp_path(good, sizeof good, "good.safetensors");
    write_good(good);
    return 0;
}

/* ---- the good file loads (so every refusal below is caused by its one edit) ---------------- */

static void test_good_checkpoint_loads(void **state)
{
    (void)state;
    char good[256];
    tmp_path(good, sizeof good, "good.safetensors");
    nb_model_info info;
    nb_mlp *fresh = nb_mlp_new(SIZES, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F32, 9);
    assert_non_null(fresh);
    nb_optim *o = adam_over(fresh);
    nb_mlp *m = nb_model_load(good, &info, o);
    if (!m)
        fail_msg("good checkpoint: %s", nb_last_error());
    assert_int_equal(nb_optim_step_count(o), 2);
    assert_int_equal(info.epoch, 4);
    assert_int_equal(info.n_classes, 3);
    assert_string_equal(info.dataset, "spirals");
    nb_mlp_free(m);
    nb_optim_free(o);
    nb_mlp_free(fresh);
}

/* ---- integer metadata --------------------------------------------------------------------- */

static void test_integer_metadata(void **state)
{
    (void)state;
    expect_refused(
        "optim_step 1e300", &(edit){.key = "optim_step", .value = "1e300"}, true,
        (const char *const[]){"'optim_step'", "'1e300'", "integer", "[0, 9007199254740992]", NULL});
    expect_refused("optim_step -1", &(edit){.key = "optim_step", .value = "-1"}, true,
                   (const char *const[]){"'optim_step'", "'-1'", "[0, 9007199254740992]", NULL});
    expect_refused("optim_step 2^53 + 1", &(edit){.key = "optim_step", .value = "9007199254740993"},
                   true, (const char *const[]){"'optim_step'", "9007199254740993", NULL});
    expect_refused("optim_step past int64",
                   &(edit){.key = "optim_step", .value = "99999999999999999999999"}, true,
                   (const char *const[]){"'optim_step'", "99999999999999999999999", NULL});
    expect_refused("optim_step nan", &(edit){.key = "optim_step", .value = "nan"}, true,
                   (const char *const[]){"'optim_step'", "'nan'", NULL});
    expect_refused("epoch 1e300", &(edit){.key = "epoch", .value = "1e300"}, false,
                   (const char *const[]){"'epoch'", "'1e300'", "[0, 9007199254740992]", NULL});
    expect_refused("epoch -5", &(edit){.key = "epoch", .value = "-5"}, false,
                   (const char *const[]){"'epoch'", "'-5'", NULL});
    expect_refused("epoch 2.5", &(edit){.key = "epoch", .value = "2.5"}, false,
                   (const char *const[]){"'epoch'", "'2.5'", NULL});
    expect_refused("epoch empty", &(edit){.key = "epoch", .value = ""}, false,
                   (const char *const[]){"'epoch'", "''", NULL});
    expect_refused("n_classes 0", &(edit){.key = "n_classes", .value = "0"}, false,
                   (const char *const[]){"'n_classes'", "'0'", "[1, 3]", NULL});
    expect_refused("n_classes above the outputs", &(edit){.key = "n_classes", .value = "4"}, false,
                   (const char *const[]){"'n_classes'", "'4'", "[1, 3]", NULL});
    expect_refused("n_classes 2.5", &(edit){.key = "n_classes", .value = "2.5"}, false,
                   (const char *const[]){"'n_classes'", "'2.5'", NULL});
}

/* ---- real-valued metadata ----------------------------------------------------------------- */

static void test_real_metadata(void **state)
{
    (void)state;
    expect_refused("input_scale nan", &(edit){.key = "input_scale", .value = "nan"}, false,
                   (const char *const[]){"'input_scale'", "'nan'", "finite", NULL});
    expect_refused("input_shift -inf", &(edit){.key = "input_shift", .value = "-inf"}, false,
                   (const char *const[]){"'input_shift'", "'-inf'", "finite", NULL});
    expect_refused("input_scale 1e999", &(edit){.key = "input_scale", .value = "1e999"}, false,
                   (const char *const[]){"'input_scale'", "'1e999'", NULL});
    /* a bad dropout used to be replaced by 0 silently */
    expect_refused("dropout nan", &(edit){.key = "dropout", .value = "nan"}, false,
                   (const char *const[]){"'dropout'", "'nan'", NULL});
    expect_refused("dropout 1", &(edit){.key = "dropout", .value = "1"}, false,
                   (const char *const[]){"'dropout'", "'1'", "[0, 1)", NULL});
    expect_refused("dropout -0.5", &(edit){.key = "dropout", .value = "-0.5"}, false,
                   (const char *const[]){"'dropout'", "'-0.5'", NULL});
    expect_refused("lr nan", &(edit){.key = "lr", .value = "nan"}, true,
                   (const char *const[]){"'lr'", "'nan'", NULL});
    expect_refused("lr -1", &(edit){.key = "lr", .value = "-1"}, true,
                   (const char *const[]){"'lr'", "'-1'", ">= 0", NULL});
}

/* ---- tensors ------------------------------------------------------------------------------ */

static void test_weights_must_be_finite(void **state)
{
    (void)state;
    expect_refused("NaN weight", &(edit){.tensor = "layers.0.weight", .k = 3, .v = NAN}, false,
                   (const char *const[]){"'layers.0.weight'", "element 3", "nan", "finite", NULL});
    expect_refused("inf bias", &(edit){.tensor = "layers.1.bias", .k = 2, .v = INFINITY}, false,
                   (const char *const[]){"'layers.1.bias'", "element 2", "inf", NULL});
    /* finite in the file (f64), but not as the f32 the model holds */
    expect_refused("f64 weight beyond f32",
                   &(edit){.tensor = "layers.1.weight", .k = 5, .v = 1e300, .as_f64 = true}, false,
                   (const char *const[]){"'layers.1.weight'", "element 5", "1e+300", NULL});
}

static void test_optimiser_state_must_be_valid(void **state)
{
    (void)state;
    expect_refused("negative exp_avg_sq",
                   &(edit){.tensor = "optim.exp_avg_sq.0", .k = 4, .v = -1.0}, true,
                   (const char *const[]){"'exp_avg_sq.0'", "element 4", "-1", ">= 0", NULL});
    expect_refused("NaN exp_avg_sq", &(edit){.tensor = "optim.exp_avg_sq.3", .k = 0, .v = NAN},
                   true, (const char *const[]){"'exp_avg_sq.3'", "element 0", "nan", NULL});
    expect_refused("NaN exp_avg", &(edit){.tensor = "optim.exp_avg.1", .k = 6, .v = NAN}, true,
                   (const char *const[]){"'exp_avg.1'", "element 6", "nan", "finite", NULL});
    expect_refused("inf exp_avg", &(edit){.tensor = "optim.exp_avg.2", .k = 0, .v = -INFINITY},
                   true, (const char *const[]){"'exp_avg.2'", "element 0", "-inf", NULL});

    /* the check on its own: a good tensor passes, a bad one is named, src is left alone */
    nb_mlp *m = nb_mlp_new(SIZES, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F32, 1);
    assert_non_null(m);
    nb_optim *o = adam_over(m);
    const char *name;
    nb_tensor *s1 = nb_optim_state_tensor(o, 1, &name);
    assert_string_equal(name, "exp_avg_sq.0");
    nb_tensor *c = nb_tensor_zeros(NB_F32, s1->ndim, s1->shape);
    assert_non_null(c);
    assert_int_equal(nb_optim_state_check(o, 1, c), NB_OK);
    nb_tensor_set(c, 2, -0.25);
    assert_int_equal(nb_optim_state_check(o, 1, c), NB_ERR_FORMAT);
    expect_mentions("state check", nb_last_error(),
                    (const char *const[]){"exp_avg_sq.0", "element 2", "-0.25", NULL});
    assert_int_equal(nb_optim_state_check(o, 0, c), NB_OK); /* exp_avg may be negative */
    assert_int_equal(nb_optim_state_check(o, 99, c), NB_ERR_ARG);
    /* the step count a restore may set: out-of-range values are refused, the count kept */
    nb_optim_set_step_count(o, 5);
    nb_clear_error();
    nb_optim_set_step_count(o, -1);
    assert_int_equal(nb_last_status(), NB_ERR_RANGE);
    expect_mentions("step -1", nb_last_error(),
                    (const char *const[]){"-1", "[0, 9007199254740992]", NULL});
    nb_optim_set_step_count(o, INT64_MAX);
    assert_int_equal(nb_optim_step_count(o), 5);
    nb_optim_set_step_count(o, NB_OPTIM_MAX_STEPS);
    assert_int_equal(nb_optim_step_count(o), NB_OPTIM_MAX_STEPS);
    assert_int_equal(nb_optim_state_check(o, 0, NULL), NB_ERR_ARG);
    nb_tensor_free(c);
    nb_optim_free(o);
    nb_mlp_free(m);
}

/* ---- the dataset spec is stored whole ----------------------------------------------------- */

static void test_dataset_stored_whole(void **state)
{
    (void)state;
    char good[256], path[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(path, sizeof path, "long.safetensors");
    char spec[301];
    for (int i = 0; i < 300; i++)
        spec[i] = "abcdefghij/"[i % 11];
    memcpy(spec + 290, "/data.csv", 10);
    rewrite(good, path, &(edit){.key = "dataset", .value = spec});
    nb_model_info info;
    nb_mlp *m = nb_model_load(path, &info, NULL);
    if (!m)
        fail_msg("300-byte dataset spec: %s", nb_last_error());
    assert_string_equal(info.dataset, spec);
    /* and it is saved whole */
    char again[256];
    tmp_path(again, sizeof again, "again.safetensors");
    assert_int_equal(nb_model_save(again, m, &info, NULL), NB_OK);
    nb_safetensors *st = nb_safetensors_load(again);
    assert_non_null(st);
    assert_string_equal(nb_safetensors_meta(st, "dataset"), spec);
    nb_safetensors_free(st);
    nb_mlp_free(m);

    /* longer than any spec can be (two PATH_MAX paths): refused with the limit, not cut */
    size_t big = 20000;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'x', big);
    huge[big] = '\0';
    expect_refused("huge dataset", &(edit){.key = "dataset", .value = huge}, false,
                   (const char *const[]){"'dataset'", "20000 bytes", "limit", NULL});
    free(huge);
}

/* ---- the metadata helpers ----------------------------------------------------------------- */

static void test_meta_helpers(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "meta.safetensors");
    nb_tensor *t = nb_tensor_zeros(NB_F32, 1, (int64_t[]){1});
    assert_non_null(t);
    const char *meta[] = {"i",   "42",   "neg",   "-7",   "exp",  "1e3", "sp",
                          " 4",  "plus", "+4",    "hex",  "0x10", "big", "9223372036854775808",
                          "r",   "0.25", "nan",   "nan",  "inf",  "inf", "NaN",
                          "NaN", "huge", "1e400", "junk", "1.5x", NULL};
    assert_int_equal(nb_safetensors_save(path, &(nb_named_tensor){"t", t}, 1, meta), NB_OK);
    nb_safetensors *st = nb_safetensors_load(path);
    assert_non_null(st);
    int64_t v = 123;
    assert_int_equal(nb_safetensors_meta_int(st, "i", 0, 100, &v), NB_OK);
    assert_int_equal(v, 42);
    assert_int_equal(nb_safetensors_meta_int(st, "neg", -10, 0, &v), NB_OK);
    assert_int_equal(v, -7);
    const char *bad_int[] = {"exp", "sp", "plus", "hex", "big", "r", "nan", "junk", "missing"};
    for (size_t i = 0; i < sizeof bad_int / sizeof *bad_int; i++) {
        v = 123;
        nb_clear_error();
        assert_int_equal(nb_safetensors_meta_int(st, bad_int[i], INT64_MIN, INT64_MAX, &v),
                         NB_ERR_FORMAT);
        assert_int_equal(v, 123);
        char want[64];
        snprintf(want, sizeof want, "metadata '%s'", bad_int[i]);
        expect_mentions(bad_int[i], nb_last_error(), (const char *const[]){want, NULL});
    }
    nb_clear_error();
    assert_int_equal(nb_safetensors_meta_int(st, "i", 0, 41, &v), NB_ERR_FORMAT);
    expect_mentions("above range", nb_last_error(),
                    (const char *const[]){"'i'", "'42'", "[0, 41]", NULL});

    double d = 9;
    assert_int_equal(nb_safetensors_meta_number(st, "r", 0, 1, &d), NB_OK);
    assert_true(d == 0.25);
    assert_int_equal(nb_safetensors_meta_number(st, "exp", 0, 1e300, &d), NB_OK);
    assert_true(d == 1000.0);
    const char *bad_num[] = {"nan", "inf", "NaN", "huge", "hex", "sp", "junk", "missing"};
    for (size_t i = 0; i < sizeof bad_num / sizeof *bad_num; i++) {
        d = 9;
        nb_clear_error();
        assert_int_equal(nb_safetensors_meta_number(st, bad_num[i], -1e308, 1e308, &d),
                         NB_ERR_FORMAT);
        assert_true(d == 9);
    }
    nb_clear_error();
    assert_int_equal(nb_safetensors_meta_number(st, "r", 0.5, 1, &d), NB_ERR_FORMAT);
    expect_mentions("below range", nb_last_error(),
                    (const char *const[]){"'r'", "'0.25'", "[0.5, 1]", NULL});
    nb_safetensors_free(st);
    nb_tensor_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_checkpoint_loads),
        cmocka_unit_test(test_integer_metadata),
        cmocka_unit_test(test_real_metadata),
        cmocka_unit_test(test_weights_must_be_finite),
        cmocka_unit_test(test_optimiser_state_must_be_valid),
        cmocka_unit_test(test_dataset_stored_whole),
        cmocka_unit_test(test_meta_helpers),
    };
    return cmocka_run_group_tests(tests, setup, teardown_dir);
}
