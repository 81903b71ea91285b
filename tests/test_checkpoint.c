/* test_checkpoint.c - saving and loading an MLP and its optimiser state (nabla/checkpoint.h).
 *
 * What is checked, and against what:
 *   - round trip: a model saved and loaded has bitwise-equal weights and biases, the same sizes,
 *     activation (every one of the five) and dropout, is in eval mode, and the info fields come
 *     back exactly (doubles bit for bit, through the "%.17g" text in the metadata);
 *   - optimiser state: 3 Adam steps on random data, saved with the model, loaded into a fresh
 *     Adam over a fresh model of the same architecture: every state tensor bitwise equal, same
 *     names, same step count; and one more step from the restored state matches, bit for bit, one
 *     more step of the original (so the restored state is the whole state);
 *   - loading state the file does not hold (no optimiser saved; another kind of optimiser; a
 *     state tensor missing) fails with a message, and leaves the caller's optimiser untouched;
 *   - corrupt inputs, each built from a good checkpoint with the safetensors writer so that only
 *     one thing is wrong: not a safetensors file, an empty file, safetensors without nabla
 *     metadata or with another format, a missing tensor, a tensor of the wrong shape or dtype,
 *     bad 'sizes' (not numbers, zero, negative, one size, empty, missing, more layers than an MLP
 *     can have, sizes too big to allocate), unknown or missing activation, non-numeric info:
 *     every one returns NULL with a message naming the file and the problem;
 *   - a failed save leaves what was at the path intact: a directory that does not exist (nothing
 *     created), metadata that is not UTF-8, a model the loader would reject (unknown activation,
 *     no layers, NaN input scale), and a temporary file that cannot be created.
 * Temporary files go to a fresh mkdtemp directory.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla.h"

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_ckpt_XXXXXX"
#include "test_files.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static size_t tensor_bytes(const nb_tensor *t)
{
    return (size_t)t->numel * nb_dtype_size(t->dtype);
}

/* The message of the last error must contain each of the phrases given (NULL-terminated). */
static void expect_error_mentions(const char *what, ...)
{
    const char *msg = nb_last_error();
    va_list ap;
    va_start(ap, what);
    for (const char *p; (p = va_arg(ap, const char *)) != NULL;)
        if (!strstr(msg, p)) {
            va_end(ap);
            fail_msg("%s: the message \"%s\" does not mention \"%s\"", what, msg, p);
        }
    va_end(ap);
}

static void assert_tensors_bitwise_equal(const char *what, const nb_tensor *a, const nb_tensor *b)
{
    assert_non_null(a);
    assert_non_null(b);
    if (a->dtype != b->dtype || !nb_shape_equal(a, b)) {
        char sa[64], sb[64];
        fail_msg("%s: %s %s vs %s %s", what, nb_dtype_name(a->dtype),
                 nb_shape_str(a, sa, sizeof sa), nb_dtype_name(b->dtype),
                 nb_shape_str(b, sb, sizeof sb));
    }
    if (memcmp(a->data, b->data, tensor_bytes(a)) != 0)
        fail_msg("%s: the data differs", what);
}

static void assert_models_equal(const nb_mlp *a, const nb_mlp *b)
{
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i <= a->n_layers; i++)
        assert_int_equal(a->sizes[i], b->sizes[i]);
    assert_int_equal(a->act, b->act);
    assert_memory_equal(&a->dropout, &b->dropout, sizeof a->dropout);
    assert_int_equal(nb_mlp_param_count(a), nb_mlp_param_count(b));
    for (int i = 0; i < nb_mlp_param_count(a); i++) {
        char na[64], nbn[64];
        nb_tensor *pa = nb_mlp_param(a, i, na, sizeof na);
        nb_tensor *pb = nb_mlp_param(b, i, nbn, sizeof nbn);
        assert_string_equal(na, nbn);
        assert_tensors_bitwise_equal(na, pa, pb);
    }
}

static nb_model_info make_info(void)
{
    nb_model_info info;
    memset(&info, 0, sizeof info);
    info.input_scale = 1.0 / 255.0; /* not a short decimal: tests the %.17g round trip */
    info.input_shift = -0.1307 / 0.3081;
    info.n_classes = 3;
    info.epoch = 7;
    snprintf(info.dataset, sizeof info.dataset, "spirals");
    return info;
}

static const int64_t SIZES[4] = {5, 7, 4, 3};

static nb_mlp *make_model(nb_activation act, uint64_t seed)
{
    nb_mlp *m = nb_mlp_new(SIZES, 4, act, NB_INIT_DEFAULT, 0.25, NB_F32, seed);
    if (!m)
        fail_msg("nb_mlp_new: %s", nb_last_error());
    return m;
}

static void save_or_fail(const char *path, const nb_mlp *m, const nb_model_info *info,
                         const nb_optim *o)
{
    if (nb_model_save(path, m, info, o) != NB_OK)
        fail_msg("nb_model_save %s: %s", path, nb_last_error());
}

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

/* One Adam step of m on (x, y). */
static void train_step(nb_graph *g, nb_mlp *m, nb_optim *o, nb_tensor *x, const nb_tensor *y)
{
    nb_graph_reset(g);
    nb_tensor *logits = nb_mlp_forward(g, m, x);
    nb_xent_opts xo = nb_xent_defaults();
    nb_tensor *L = nb_cross_entropy(g, logits, y, &xo);
    if (!L || nb_backward(g, L, NULL) != NB_OK)
        fail_msg("train step: %s", nb_last_error());
    assert_int_equal(nb_optim_step(o), NB_OK);
    nb_optim_zero_grad(o);
}

/* Random inputs x [8, 5] ~ N(0, 1) and class ids y [8] in [0, 3). */
static void random_batch(uint64_t seed, nb_tensor **x, nb_tensor **y)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    *x = nb_tensor_randn(NB_F32, 2, (int64_t[]){8, 5}, &r, 0.0, 1.0);
    *y = nb_tensor_zeros(NB_I32, 1, (int64_t[]){8});
    assert_non_null(*x);
    assert_non_null(*y);
    for (int i = 0; i < 8; i++)
        nb_tensor_set(*y, i, (double)nb_rng_below(&r, 3));
}

/* A good checkpoint of make_model(relu) at path; with_optim: after 2 Adam steps, with the
 * (non-zero) state. */
static void write_good(const char *path, bool with_optim)
{
    nb_mlp *m = make_model(NB_ACT_RELU, 11);
    nb_model_info info = make_info();
    nb_optim *o = NULL;
    if (with_optim) {
        o = adam_over(m);
        nb_tensor *x, *y;
        random_batch(77, &x, &y);
        nb_graph *g = nb_graph_new();
        assert_non_null(g);
        train_step(g, m, o, x, y);
        train_step(g, m, o, x, y);
        nb_graph_free(g);
        nb_tensor_free(x);
        nb_tensor_free(y);
    }
    save_or_fail(path, m, &info, o);
    nb_optim_free(o);
    nb_mlp_free(m);
}

/* Copies the safetensors file src to dst with one edit: a tensor left out (drop), a tensor
 * replaced (swap -> with), and/or a metadata key set to value (value NULL: key removed). */
typedef struct edit {
    const char *drop;
    const char *swap;
    const nb_tensor *with;
    const char *key, *value;
} edit;

static void rewrite(const char *src, const char *dst, const edit *e)
{
    nb_safetensors *st = nb_safetensors_load(src);
    if (!st)
        fail_msg("rewrite: %s", nb_last_error());
    int n = nb_safetensors_count(st), k = 0;
    nb_named_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    assert_non_null(ts);
    for (int i = 0; i < n; i++) {
        const char *name = nb_safetensors_name(st, i);
        if (e->drop && !strcmp(name, e->drop))
            continue;
        ts[k].name = name;
        ts[k].tensor = e->swap && !strcmp(name, e->swap) ? e->with : nb_safetensors_get(st, name);
        k++;
    }
    int nm = nb_safetensors_meta_count(st), j = 0;
    const char **meta = calloc(2 * (size_t)nm + 3, sizeof *meta);
    assert_non_null(meta);
    bool key_seen = false;
    for (int i = 0; i < nm; i++) {
        const char *key = nb_safetensors_meta_key(st, i);
        const char *val = nb_safetensors_meta(st, key);
        if (e->key && !strcmp(key, e->key)) {
            key_seen = true;
            if (!e->value)
                continue;
            val = e->value;
        }
        meta[j++] = key;
        meta[j++] = val;
    }
    if (e->key && !key_seen && e->value) {
        meta[j++] = e->key;
        meta[j++] = e->value;
    }
    meta[j] = NULL;
    if (nb_safetensors_save(dst, ts, k, meta) != NB_OK)
        fail_msg("rewrite %s: %s", dst, nb_last_error());
    free(meta);
    free(ts);
    nb_safetensors_free(st);
}

/* Loading path must fail (NULL) with a message mentioning the file name and each phrase. */
static void expect_load_fails(const char *what, const char *path, const char *phrase1,
                              const char *phrase2)
{
    nb_model_info info;
    nb_clear_error();
    nb_mlp *m = nb_model_load(path, &info, NULL);
    if (m) {
        nb_mlp_free(m);
        fail_msg("%s: nb_model_load accepted the file", what);
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    expect_error_mentions(what, base, phrase1, phrase2, (const char *)NULL);
}

/* Saving must fail (and say so). */
static void expect_save_fails(const char *what, const char *path, const nb_mlp *m,
                              const nb_model_info *info)
{
    nb_clear_error();
    if (nb_model_save(path, m, info, NULL) == NB_OK)
        fail_msg("%s: nb_model_save succeeded", what);
    if (!nb_last_error()[0])
        fail_msg("%s: nb_model_save failed without a message", what);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_roundtrip_model(void **state)
{
    (void)state;
    const nb_activation acts[] = {NB_ACT_RELU, NB_ACT_TANH, NB_ACT_GELU, NB_ACT_SIGMOID,
                                  NB_ACT_LEAKY_RELU};
    char path[256];
    tmp_path(path, sizeof path, "model.safetensors");
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        nb_mlp *m = make_model(acts[a], 100 + a);
        nb_model_info info = make_info(), got;
        memset(&got, 0xA5, sizeof got);
        save_or_fail(path, m, &info, NULL);
        assert_int_equal(count_entries(tmp_dir), 1); /* no temporary file left */
        nb_mlp *l = nb_model_load(path, &got, NULL);
        if (!l)
            fail_msg("nb_model_load (%s): %s", nb_activation_name(acts[a]), nb_last_error());
        assert_models_equal(m, l);
        assert_int_equal(l->dtype, NB_F32);
        assert_false(l->training); /* loaded in eval mode */
        assert_memory_equal(&got.input_scale, &info.input_scale, sizeof(double));
        assert_memory_equal(&got.input_shift, &info.input_shift, sizeof(double));
        assert_int_equal(got.n_classes, info.n_classes);
        assert_int_equal(got.epoch, info.epoch);
        assert_string_equal(got.dataset, info.dataset);
        /* the loaded model computes what the original does */
        nb_mlp_set_training(m, false);
        nb_rng r;
        nb_rng_seed(&r, 5);
        nb_tensor *x = nb_tensor_randn(NB_F32, 2, (int64_t[]){4, 5}, &r, 0.0, 1.0);
        nb_graph *g = nb_graph_new();
        assert_non_null(x);
        assert_non_null(g);
        nb_tensor *ya = nb_mlp_forward(g, m, x);
        nb_tensor *yb = nb_mlp_forward(g, l, x);
        assert_tensors_bitwise_equal("forward", ya, yb);
        nb_graph_free(g);
        nb_tensor_free(x);
        nb_mlp_free(l);
        nb_mlp_free(m);
    }
}

static void test_roundtrip_optimiser_state(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "with_adam.safetensors");
    nb_tensor *x, *y;
    random_batch(2024, &x, &y);
    nb_graph *g = nb_graph_new();
    assert_non_null(g);

    nb_mlp *m = make_model(NB_ACT_TANH, 1);
    nb_optim *o = adam_over(m);
    for (int s = 0; s < 3; s++)
        train_step(g, m, o, x, y);
    assert_int_equal(nb_optim_step_count(o), 3);
    nb_model_info info = make_info();
    save_or_fail(path, m, &info, o);

    /* a fresh model (other seed) and a fresh optimiser over it */
    nb_mlp *fresh = make_model(NB_ACT_TANH, 999);
    nb_optim *o2 = adam_over(fresh);
    assert_int_equal(nb_optim_step_count(o2), 0);
    nb_model_info got;
    nb_mlp *l = nb_model_load(path, &got, o2);
    if (!l)
        fail_msg("nb_model_load with optimiser: %s", nb_last_error());
    assert_models_equal(m, l);
    assert_int_equal(nb_optim_step_count(o2), 3);
    assert_int_equal(nb_optim_state_count(o2), nb_optim_state_count(o));
    assert_int_equal(nb_optim_state_count(o), 2 * nb_mlp_param_count(m)); /* exp_avg, exp_avg_sq */
    for (int i = 0; i < nb_optim_state_count(o); i++) {
        const char *na, *nbn;
        nb_tensor *sa = nb_optim_state_tensor(o, i, &na);
        nb_tensor *sb = nb_optim_state_tensor(o2, i, &nbn);
        assert_string_equal(na, nbn);
        assert_tensors_bitwise_equal(na, sa, sb);
        bool nonzero = false;
        for (int64_t k = 0; k < sa->numel && !nonzero; k++)
            nonzero = nb_tensor_get(sa, k) != 0.0;
        assert_true(nonzero); /* three steps were taken: the state is not trivially zero */
    }

    /* resume: the restored weights into the fresh model, one more step in both runs */
    for (int i = 0; i < nb_mlp_param_count(l); i++) {
        nb_tensor *dst = nb_mlp_param(fresh, i, NULL, 0), *src = nb_mlp_param(l, i, NULL, 0);
        memcpy(dst->data, src->data, tensor_bytes(src));
    }
    nb_mlp_set_training(m, false); /* dropout 0.25: compare deterministic steps */
    nb_mlp_set_training(fresh, false);
    train_step(g, m, o, x, y);
    train_step(g, fresh, o2, x, y);
    assert_models_equal(m, fresh);

    nb_mlp_free(l);
    nb_optim_free(o2);
    nb_mlp_free(fresh);
    nb_optim_free(o);
    nb_mlp_free(m);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(y);
}

/* The caller's optimiser must be as it was when a load fails. */
static void assert_optim_untouched(const nb_optim *o)
{
    assert_int_equal(nb_optim_step_count(o), 0);
    for (int i = 0; i < nb_optim_state_count(o); i++) {
        const char *name;
        nb_tensor *t = nb_optim_state_tensor(o, i, &name);
        for (int64_t k = 0; k < t->numel; k++)
            if (nb_tensor_get(t, k) != 0.0)
                fail_msg("state '%s' element %lld was overwritten by a failed load", name,
                         (long long)k);
    }
}

static void test_optimiser_state_not_in_file(void **state)
{
    (void)state;
    char plain[256], adam[256], partial[256];
    tmp_path(plain, sizeof plain, "plain.safetensors");
    tmp_path(adam, sizeof adam, "adam.safetensors");
    tmp_path(partial, sizeof partial, "partial.safetensors");
    write_good(plain, false);
    write_good(adam, true);
    nb_mlp *fresh = make_model(NB_ACT_RELU, 3);
    nb_model_info info;

    /* no optimiser in the file */
    nb_optim *o = adam_over(fresh);
    nb_clear_error();
    assert_null(nb_model_load(plain, &info, o));
    expect_error_mentions("no optimiser saved", "plain.safetensors", "no state for optimiser",
                          "adam", (const char *)NULL);
    assert_optim_untouched(o);
    nb_optim_free(o);

    /* Adam state, SGD optimiser */
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    int np = nb_mlp_param_count(fresh);
    for (int i = 0; i < np; i++)
        params[i] = nb_mlp_param(fresh, i, NULL, 0);
    nb_optim_config sc = nb_optim_defaults(NB_OPTIM_SGD);
    sc.momentum = 0.9;
    nb_optim *sgd = nb_optim_new(&sc, params, np);
    assert_non_null(sgd);
    nb_clear_error();
    assert_null(nb_model_load(adam, &info, sgd));
    expect_error_mentions("adam state into sgd", "adam.safetensors", "no state for optimiser",
                          "sgd", (const char *)NULL);
    assert_optim_untouched(sgd);
    nb_optim_free(sgd);

    /* the last state tensor missing: an error, and nothing restored before it was noticed */
    char last[128];
    snprintf(last, sizeof last, "optim.exp_avg_sq.%d", np - 1);
    rewrite(adam, partial, &(edit){.drop = last});
    o = adam_over(fresh);
    nb_clear_error();
    assert_null(nb_model_load(partial, &info, o));
    expect_error_mentions("missing state tensor", "partial.safetensors", last, (const char *)NULL);
    assert_optim_untouched(o);
    nb_optim_free(o);

    /* a state tensor of the wrong shape */
    nb_tensor *wrong = nb_tensor_zeros(NB_F32, 1, (int64_t[]){2});
    assert_non_null(wrong);
    rewrite(adam, partial, &(edit){.swap = "optim.exp_avg.0", .with = wrong});
    o = adam_over(fresh);
    nb_clear_error();
    assert_null(nb_model_load(partial, &info, o));
    expect_error_mentions("state of the wrong shape", "partial.safetensors", "optim.exp_avg.0",
                          (const char *)NULL);
    assert_optim_untouched(o);
    nb_optim_free(o);
    nb_tensor_free(wrong);

    /* and without an optimiser asked for, the same files load (state is optional) */
    nb_mlp *l = nb_model_load(partial, &info, NULL);
    if (!l)
        fail_msg("load without optimiser: %s", nb_last_error());
    nb_mlp_free(l);
    nb_mlp_free(fresh);
}

/* ---- corrupt inputs ----------------------------------------------------------------------- */

static void test_not_a_checkpoint(void **state)
{
    (void)state;
    char path[256];
    nb_model_info info;

    tmp_path(path, sizeof path, "text.safetensors");
    const char text[] = "this is a text file, not a checkpoint\n";
    write_all(path, text, sizeof text - 1);
    expect_load_fails("text file", path, "safetensors", "header length");

    tmp_path(path, sizeof path, "empty.safetensors");
    write_all(path, "", 0);
    expect_load_fails("empty file", path, "truncated", NULL);

    tmp_path(path, sizeof path, "absent.safetensors");
    expect_load_fails("missing file", path, "cannot open", NULL);

    /* a good checkpoint cut short */
    char good[256];
    tmp_path(good, sizeof good, "good.safetensors");
    write_good(good, false);
    size_t len;
    unsigned char *buf = read_all(good, &len);
    tmp_path(path, sizeof path, "cut.safetensors");
    write_all(path, buf, len - 4);
    expect_load_fails("truncated data", path, "beyond", NULL);
    write_all(path, buf, 100);
    expect_load_fails("truncated header", path, "beyond the end of the file", NULL);
    free(buf);

    /* safetensors without nabla's metadata */
    nb_tensor *t = nb_tensor_zeros(NB_F32, 2, (int64_t[]){7, 5});
    assert_non_null(t);
    nb_named_tensor one = {"layers.0.weight", t};
    tmp_path(path, sizeof path, "bare.safetensors");
    assert_int_equal(nb_safetensors_save(path, &one, 1, NULL), NB_OK);
    expect_load_fails("no metadata", path, "not a nabla model", "'format' is missing");
    const char *meta[] = {"format", "pt", "sizes", "5,7", NULL};
    assert_int_equal(nb_safetensors_save(path, &one, 1, meta), NB_OK);
    expect_load_fails("another format", path, "not a nabla model", "'pt'");
    nb_tensor_free(t);

    /* NULL arguments are errors, not crashes */
    assert_null(nb_model_load(NULL, &info, NULL));
    assert_null(nb_model_load(path, NULL, NULL));
}

static void test_missing_or_wrong_tensors(void **state)
{
    (void)state;
    char good[256], bad[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    write_good(good, false);

    rewrite(good, bad, &(edit){.drop = "layers.1.bias"});
    expect_load_fails("missing tensor", bad, "'layers.1.bias'", "missing");

    rewrite(good, bad, &(edit){.drop = "layers.2.weight"});
    expect_load_fails("missing last weight", bad, "'layers.2.weight'", "missing");

    /* layers.0.weight is [7, 5]; transposed it has the right size but the wrong shape */
    nb_tensor *tr = nb_tensor_zeros(NB_F32, 2, (int64_t[]){5, 7});
    assert_non_null(tr);
    rewrite(good, bad, &(edit){.swap = "layers.0.weight", .with = tr});
    expect_load_fails("transposed weight", bad, "'layers.0.weight'", "[5, 7]");
    expect_load_fails("transposed weight", bad, "[7, 5]", NULL); /* and the shape it needs */
    nb_tensor_free(tr);

    nb_tensor *b = nb_tensor_zeros(NB_F32, 1, (int64_t[]){3, 0});
    nb_tensor *b2 = nb_tensor_zeros(NB_F32, 2, (int64_t[]){1, 4});
    assert_non_null(b);
    assert_non_null(b2);
    rewrite(good, bad, &(edit){.swap = "layers.1.bias", .with = b});
    expect_load_fails("short bias", bad, "'layers.1.bias'", "[3]");
    rewrite(good, bad, &(edit){.swap = "layers.1.bias", .with = b2});
    expect_load_fails("bias with an extra dimension", bad, "'layers.1.bias'", "[1, 4]");
    nb_tensor_free(b);
    nb_tensor_free(b2);

    nb_tensor *ints = nb_tensor_zeros(NB_I32, 2, (int64_t[]){7, 5});
    assert_non_null(ints);
    rewrite(good, bad, &(edit){.swap = "layers.0.weight", .with = ints});
    expect_load_fails("integer weight", bad, "'layers.0.weight'", "i32");
    nb_tensor_free(ints);
}

static void test_bad_metadata(void **state)
{
    (void)state;
    char good[256], bad[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    write_good(good, false);

    static const char *const bad_sizes[] = {
        "5,x,4,3", "5,7,4,3x", "5,0,4,3",  "5,-7,4,3", "5",
        "",        "abc",      ",5,7,4,3", "5,,7,4,3", "5,7,4,99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        rewrite(good, bad, &(edit){.key = "sizes", .value = bad_sizes[i]});
        char what[96];
        snprintf(what, sizeof what, "sizes '%s'", bad_sizes[i]);
        expect_load_fails(what, bad, "'sizes'", NULL);
    }
    rewrite(good, bad, &(edit){.key = "sizes", .value = NULL});
    expect_load_fails("no sizes", bad, "'sizes'", "missing");

    rewrite(good, bad, &(edit){.key = "activation", .value = "swish"});
    expect_load_fails("unknown activation", bad, "unknown activation", "'swish'");
    rewrite(good, bad, &(edit){.key = "activation", .value = NULL});
    expect_load_fails("no activation", bad, "activation", "missing");

    rewrite(good, bad, &(edit){.key = "n_classes", .value = "three"});
    expect_load_fails("n_classes not a number", bad, "n_classes", NULL);
    rewrite(good, bad, &(edit){.key = "input_scale", .value = "nan"});
    expect_load_fails("input_scale NaN", bad, "input_scale", NULL);
    rewrite(good, bad, &(edit){.key = "input_shift", .value = NULL});
    expect_load_fails("no input_shift", bad, "input_shift", NULL);
}

/* The file claims more layers than an MLP can have: it must be rejected, not cut short to the
 * first NB_MLP_MAX_LAYERS + 1 sizes (which would load a different network). */
static void test_too_many_layers(void **state)
{
    (void)state;
    char good[256], bad[256];
    tmp_path(good, sizeof good, "deep.safetensors");
    tmp_path(bad, sizeof bad, "deeper.safetensors");
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    for (int i = 0; i <= NB_MLP_MAX_LAYERS; i++)
        sizes[i] = 2;
    nb_mlp *m =
        nb_mlp_new(sizes, NB_MLP_MAX_LAYERS + 1, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 4);
    assert_non_null(m);
    nb_model_info info = make_info();
    info.n_classes = 2;                 /* n_classes is at most the model's outputs */
    save_or_fail(good, m, &info, NULL); /* the deepest MLP there is round-trips */
    nb_model_info got;
    nb_mlp *l = nb_model_load(good, &got, NULL);
    if (!l)
        fail_msg("deepest MLP: %s", nb_last_error());
    assert_models_equal(m, l);
    nb_mlp_free(l);
    nb_mlp_free(m);

    char s[256] = "2";
    for (int i = 0; i < NB_MLP_MAX_LAYERS + 1; i++)
        strcat(s, ",2"); /* NB_MLP_MAX_LAYERS + 2 sizes */
    rewrite(good, bad, &(edit){.key = "sizes", .value = s});
    expect_load_fails("one size too many", bad, "'sizes'", NULL);
}

/* Sizes too large to allocate, in a file whose tensors are small: the mismatch is reported from
 * the tensors' shapes, before any memory is asked for (a corrupt 2 KB file must not make the loader
 * allocate terabytes). */
static void test_huge_sizes_rejected_from_the_tensors(void **state)
{
    (void)state;
    char good[256], bad[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "huge.safetensors");
    write_good(good, false);
    rewrite(good, bad, &(edit){.key = "sizes", .value = "5,16777216,16777216,3"});
    expect_load_fails("huge sizes", bad, "'layers.0.weight'", "[7, 5]");
}

/* ---- failed saves -------------------------------------------------------------------------- */

static void test_failed_save_keeps_old_file(void **state)
{
    (void)state;
    char path[256], missing[256];
    tmp_path(path, sizeof path, "ckpt.safetensors");
    tmp_path(missing, sizeof missing, "no/such/dir/ckpt.safetensors");
    nb_mlp *m = make_model(NB_ACT_GELU, 8);
    nb_model_info info = make_info();

    /* a directory that does not exist: an error naming the path; nothing created */
    expect_save_fails("missing directory", missing, m, &info);
    expect_error_mentions("missing directory", "no/such/dir/ckpt.safetensors", (const char *)NULL);
    assert_int_equal(count_entries(tmp_dir), 0);

    save_or_fail(path, m, &info, NULL);
    size_t len0;
    unsigned char *old = read_all(path, &len0);

    /* metadata that is not UTF-8 */
    nb_model_info bad = info;
    snprintf(bad.dataset, sizeof bad.dataset, "caf\xe9");
    expect_save_fails("dataset not UTF-8", path, m, &bad);
    expect_error_mentions("dataset not UTF-8", "UTF-8", (const char *)NULL);

    /* models the loader would reject must not replace a good checkpoint */
    nb_activation act = m->act;
    m->act = (nb_activation)99;
    expect_save_fails("unknown activation", path, m, &info);
    expect_error_mentions("unknown activation", "activation", (const char *)NULL);
    m->act = act;
    int nl = m->n_layers;
    m->n_layers = 0;
    expect_save_fails("no layers", path, m, &info);
    m->n_layers = nl;
    bad = info;
    bad.input_scale = NAN;
    expect_save_fails("NaN input_scale", path, m, &bad);
    expect_error_mentions("NaN input_scale", "input_scale", (const char *)NULL);
    bad = info;
    bad.n_classes = 0;
    expect_save_fails("n_classes 0", path, m, &bad);

    /* the target's directory is a file: the temporary file cannot be created (the
     * temporary name is unguessable now, so nothing can be planted there; test_fileio covers
     * a failure in the middle of the data) */
    char blocked[300];
    snprintf(blocked, sizeof blocked, "%s/ckpt.safetensors", path); /* a file, not a dir */
    expect_save_fails("no directory for the temporary file", blocked, m, &info);
    expect_error_mentions("no directory for the temporary file", "ckpt.safetensors",
                          "cannot create temporary file", (const char *)NULL);

    /* after all that the old checkpoint is byte for byte what it was, and alone */
    size_t len1;
    unsigned char *now = read_all(path, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(old, now, len0);
    assert_int_equal(count_entries(tmp_dir), 1);
    assert_false(file_exists(missing));

    /* NULL arguments */
    assert_int_equal(nb_model_save(NULL, m, &info, NULL), NB_ERR_ARG);
    assert_int_equal(nb_model_save(path, NULL, &info, NULL), NB_ERR_ARG);
    assert_int_equal(nb_model_save(path, m, NULL, NULL), NB_ERR_ARG);

    free(old);
    free(now);
    nb_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_roundtrip_model, clean_each),
        cmocka_unit_test_teardown(test_roundtrip_optimiser_state, clean_each),
        cmocka_unit_test_teardown(test_optimiser_state_not_in_file, clean_each),
        cmocka_unit_test_teardown(test_not_a_checkpoint, clean_each),
        cmocka_unit_test_teardown(test_missing_or_wrong_tensors, clean_each),
        cmocka_unit_test_teardown(test_bad_metadata, clean_each),
        cmocka_unit_test_teardown(test_too_many_layers, clean_each),
        cmocka_unit_test_teardown(test_huge_sizes_rejected_from_the_tensors, clean_each),
        cmocka_unit_test_teardown(test_failed_save_keeps_old_file, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
