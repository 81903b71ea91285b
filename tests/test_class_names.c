/* test_class_names.c - class names (issue 14): the built-in MNIST and Fashion-MNIST names, the
 * one-name-per-line reader (good file, wrong counts, blank and over-long lines, a FIFO refused
 * without blocking), and the checkpoint's "class_names" metadata: saved and loaded back, kept
 * absent when there are none, and crafted values (wrong count, not an array, a non-string, a
 * control byte, an empty name) refused on load with a message naming the file and the key. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_names_XXXXXX"
#include "nabla.h"
#include "test_files.h"

/* A data set of 4 rows, 2 features and k classes (labels i % k). */
static void make_set(nb_dataset *ds, int k)
{
    int64_t sx[2] = {4, 2}, sy[1] = {4};
    nb_tensor *X = nb_tensor_zeros(NB_F32, 2, sx), *y = nb_tensor_zeros(NB_I32, 1, sy);
    assert_non_null(X);
    assert_non_null(y);
    for (int64_t i = 0; i < 4; i++)
        ((int32_t *)y->data)[i] = (int32_t)(i % k);
    assert_int_equal(nb_dataset_from_tensors(X, y, k, ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);
}

static void test_builtin_names(void **state)
{
    (void)state;
    const char *const *f = nb_mnist_class_names(true), *const *d = nb_mnist_class_names(false);
    const char *want[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    for (int k = 0; k < 10; k++) {
        char digit[2] = {(char)('0' + k), 0};
        assert_string_equal(f[k], want[k]);
        assert_string_equal(d[k], digit);
    }
}

/* Writes text to tmp_dir/name and loads it as names for a 3-class set; returns the status. */
static nb_status load_text(nb_dataset *ds, const char *name, const char *text)
{
    char p[128];
    tmp_path(p, sizeof p, name);
    write_all(p, text, strlen(text));
    return nb_dataset_load_class_names(ds, p);
}

static void test_names_file(void **state)
{
    (void)state;
    nb_dataset ds;
    make_set(&ds, 3);
    assert_int_equal(load_text(&ds, "ok.txt", "cat\r\n  dog house \nbird\n\n\n"), NB_OK);
    assert_string_equal(ds.class_names[0], "cat");
    assert_string_equal(ds.class_names[1], "dog house");
    assert_string_equal(ds.class_names[2], "bird");
    assert_int_equal(load_text(&ds, "nolf.txt", "a\nb\nc"), NB_OK);
    assert_string_equal(ds.class_names[2], "c");
    struct {
        const char *text, *detail;
    } bad[] = {
        {"a\nb\n", "2 names for 3 classes"},
        {"a\nb\nc\nd\n", "line 4: more names than the 3 classes"},
        {"a\n\nc\n", "line 2 is blank"},
        {"a\nb\x01x\nc\n", "line 2: 'b?x' holds a control byte"},
        {"a\nb\xe9\nc\n", "line 2: 'b?' is not UTF-8"},
        {"a\nb\n0123456789012345678901234567890123456789012345678901234567890123\n",
         "line 3: the name is 64 bytes; the limit is 63"},
        {"", "0 names for 3 classes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load_text(&ds, "bad.txt", bad[i].text), NB_ERR_FORMAT);
        if (!strstr(nb_last_error(), bad[i].detail) || !strstr(nb_last_error(), "bad.txt"))
            fail_msg("case %zu: message '%s' lacks '%s'", i, nb_last_error(), bad[i].detail);
        assert_string_equal(ds.class_names[2], "c"); /* unchanged */
    }
    char fifo[128];
    tmp_path(fifo, sizeof fifo, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(nb_dataset_load_class_names(&ds, fifo), NB_ERR_IO); /* does not block */
    assert_non_null(strstr(nb_last_error(), "FIFO"));
    nb_dataset_free(&ds);
}

static nb_mlp *small_model(void)
{
    int64_t sizes[3] = {2, 4, 3};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 5);
    assert_non_null(m);
    return m;
}

static nb_model_info base_info(void)
{
    nb_model_info info;
    memset(&info, 0, sizeof info);
    info.input_scale = 1;
    info.n_classes = 3;
    return info;
}

static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    nb_mlp *m = small_model();
    char p[128];
    tmp_path(p, sizeof p, "m.safetensors");
    char *names[3] = {"T-shirt/top", "Ankle boot", "caf\xc3\xa9 \"q\""};
    nb_model_info info = base_info(), got;
    info.class_names = names;
    assert_int_equal(nb_model_save(p, m, &info, NULL), NB_OK);
    nb_mlp *l = nb_model_load(p, &got, NULL);
    assert_non_null(l);
    assert_non_null(got.class_names);
    for (int k = 0; k < 3; k++)
        assert_string_equal(got.class_names[k], names[k]);
    nb_model_info_free(&got);
    assert_null(got.class_names);
    nb_mlp_free(l);
    info.class_names = NULL; /* none saved: none loaded */
    assert_int_equal(nb_model_save(p, m, &info, NULL), NB_OK);
    l = nb_model_load(p, &got, NULL);
    assert_non_null(l);
    assert_null(got.class_names);
    nb_mlp_free(l);
    char *latin1[3] = {"a", "caf\xe9", "c"}; /* not UTF-8: JSON text cannot hold it */
    info.class_names = latin1;
    assert_int_equal(nb_model_save(p, m, &info, NULL), NB_ERR_ARG);
    assert_non_null(
        strstr(nb_last_error(), "class_names[1] is empty, too long, not printable or not UTF-8"));
    char *empty[3] = {"a", "", "c"}; /* refused on save */
    info.class_names = empty;
    assert_int_equal(nb_model_save(p, m, &info, NULL), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "class_names[1]"));
    nb_mlp_free(m);
}

static void test_crafted_names_refused(void **state)
{
    (void)state;
    nb_mlp *m = small_model();
    char p[128];
    tmp_path(p, sizeof p, "c.safetensors");
    struct {
        const char *value, *detail;
    } bad[] = {
        {"[\"a\",\"b\"]", "holds 2 names; expected n_classes = 3"},
        {"[\"a\",\"b\",\"c\",\"d\"]", "holds 4 names; expected n_classes = 3"},
        {"a,b,c", "is 'a,b,c'; expected a JSON array of n_classes = 3"},
        {"{\"a\":1}", "expected a JSON array"},
        {"[\"a\",2,\"c\"]", "element 1 is not a string"},
        {"[\"a\",\"\",\"c\"]", "element 1 is ; expected a string of 1 to 63"},
        {"[\"a\",\"b\\u0007\",\"c\"]", "element 1 is b?; expected"},
        {"[\"a\",\"b\",\"0123456789012345678901234567890123456789012345678901234567890123\"]",
         "element 2 is 012345"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_model_info info = base_info(), got;
        const char *extra[] = {"class_names", bad[i].value, NULL};
        assert_int_equal(nb_model_save_ex(p, m, &info, NULL, extra), NB_OK);
        nb_mlp *l = nb_model_load(p, &got, NULL);
        if (l || !strstr(nb_last_error(), bad[i].detail) || !strstr(nb_last_error(), p) ||
            !strstr(nb_last_error(), "'class_names'"))
            fail_msg("case %zu loaded or message '%s' lacks '%s'", i,
                     l ? "(loaded)" : nb_last_error(), bad[i].detail);
    }
    nb_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_names),
        cmocka_unit_test_teardown(test_names_file, clean_each),
        cmocka_unit_test_teardown(test_checkpoint_round_trip, clean_each),
        cmocka_unit_test_teardown(test_crafted_names_refused, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
