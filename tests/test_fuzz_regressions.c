/* test_fuzz_regressions.c - every input the fuzzers (fuzz/) ever crashed on, fed to its reader.
 *
 * fuzz/regressions/NAME/ holds the saved inputs for the reader the harness fuzz/fuzz_NAME.c
 * drives (npy, idx, csv, safetensors). Each file is given to the reader exactly as the harness
 * gives it (for csv the first byte picks the options: bit 0 label column 0 instead of -1, bit 1
 * a header line), and must come back cleanly:
 *   - accepted: the result is self-consistent (numel is the product of the shape, every element
 *     can be read) and is freed; or
 *   - rejected: NULL / an error status with a non-empty nb_last_error().
 * A file named "accept-..." must be accepted and one named "reject-..." rejected; any other
 * name may go either way (no crash is the point). Under `make sanitize` an out-of-bounds read or
 * a leak in a reader fails here too. Adding a regression is adding a file: no code changes.
 *
 * The one regression so far (accept-empty-huge-dims.idx) crashed the harness, not the reader:
 * an IDX f32 header with dimensions [268435456, 4294508539, 67108864, 0] is an empty tensor
 * (nb_shape_numel: any zero dimension gives numel 0, whatever the other sizes), and the
 * harness's own product of the shape overflowed int64. The reader's answer is pinned below.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_files.h"

#include "nabla/dataset.h"
#include "nabla/npy.h"
#include "nabla/safetensors.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#ifndef NB_TEST_DATA_DIR
#define NB_TEST_DATA_DIR "tests/data"
#endif
#define REGRESSIONS_DIR NB_TEST_DATA_DIR "/../../fuzz/regressions"

/* Files seen over all the directories (checked at the end, so a wrong path cannot pass). */
static int total_files;

/* numel matches the shape (a zero dimension makes it 0, whatever the others are) and every
 * element can be read; returns their sum so the reads are not optimised away. */
static double check_tensor(const char *file, const nb_tensor *t)
{
    assert_non_null(t);
    assert_true(t->ndim >= 0 && t->ndim <= NB_MAX_DIMS);
    assert_true((unsigned)t->dtype < NB_DTYPE_COUNT);
    bool empty = false;
    for (int i = 0; i < t->ndim; i++) {
        assert_true(t->shape[i] >= 0);
        empty = empty || t->shape[i] == 0;
    }
    int64_t n = 1;
    for (int i = 0; i < t->ndim && !empty; i++)
        if (__builtin_mul_overflow(n, t->shape[i], &n))
            fail_msg("%s: the shape's product overflows int64", file);
    if (empty)
        n = 0;
    if (n != t->numel)
        fail_msg("%s: numel %lld, the shape says %lld", file, (long long)t->numel, (long long)n);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += nb_tensor_get(t, i);
    return s;
}

/* Each runner: true when the reader accepted the input (result checked and freed), false when
 * it rejected it with a message. */
static bool run_npy(const char *file, const unsigned char *buf, size_t len)
{
    nb_tensor *t = nb_npy_parse(buf, len);
    if (!t)
        return false;
    check_tensor(file, t);
    nb_tensor_free(t);
    return true;
}

static bool run_idx(const char *file, const unsigned char *buf, size_t len)
{
    nb_tensor *t = nb_idx_parse(buf, len);
    if (!t)
        return false;
    check_tensor(file, t);
    nb_tensor_free(t);
    return true;
}

static bool run_csv(const char *file, const unsigned char *buf, size_t len)
{
    if (len < 1) { /* the harness skips an empty input; so do we, as a rejection */
        nb_error(NB_ERR_FORMAT, "empty input (no options byte)");
        return false;
    }
    int label_col = (buf[0] & 1) ? 0 : -1;
    bool has_header = (buf[0] & 2) != 0;
    nb_dataset ds;
    if (nb_dataset_parse_csv((const char *)buf + 1, len - 1, label_col, has_header, &ds) != NB_OK) {
        assert_null(ds.X);
        assert_null(ds.y);
        return false;
    }
    assert_int_equal(ds.X->dtype, NB_F32);
    assert_int_equal(ds.y->dtype, NB_I32);
    assert_int_equal(ds.X->ndim, 2);
    assert_int_equal(ds.y->ndim, 1);
    assert_int_equal(ds.X->shape[0], ds.y->shape[0]);
    check_tensor(file, ds.X);
    check_tensor(file, ds.y);
    for (int64_t i = 0; i < ds.y->numel; i++) {
        int32_t label = ((const int32_t *)ds.y->data)[i];
        assert_true(label >= 0 && label < ds.n_classes);
    }
    nb_dataset_free(&ds);
    return true;
}

static bool run_safetensors(const char *file, const unsigned char *buf, size_t len)
{
    nb_safetensors *st = nb_safetensors_parse(buf, len);
    if (!st)
        return false;
    for (int i = 0; i < nb_safetensors_count(st); i++) {
        const char *name = nb_safetensors_name(st, i);
        assert_non_null(name);
        check_tensor(file, nb_safetensors_get(st, name));
    }
    for (int i = 0; i < nb_safetensors_meta_count(st); i++) {
        const char *key = nb_safetensors_meta_key(st, i);
        assert_non_null(key);
        assert_non_null(nb_safetensors_meta(st, key));
    }
    nb_safetensors_free(st);
    return true;
}

typedef bool (*runner)(const char *file, const unsigned char *buf, size_t len);

/* Feeds every file in fuzz/regressions/<kind>/ to its reader. A missing directory is no files. */
static void run_dir(const char *kind, runner run)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", REGRESSIONS_DIR, kind);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            fail_msg("cannot open %s: %s", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        total_files++;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        unsigned char *buf = read_all(path, &len);
        nb_clear_error();
        bool accepted = run(e->d_name, buf, len);
        free(buf);
        if (!accepted) {
            if (nb_last_error()[0] == '\0' || nb_last_status() == NB_OK)
                fail_msg("%s/%s: rejected without an error message", kind, e->d_name);
            if (strncmp(e->d_name, "accept-", 7) == 0)
                fail_msg("%s/%s: must be accepted, got: %s", kind, e->d_name, nb_last_error());
        } else if (strncmp(e->d_name, "reject-", 7) == 0) {
            fail_msg("%s/%s: must be rejected, but it was accepted", kind, e->d_name);
        }
    }
    closedir(d);
}

static void test_npy_regressions(void **state)
{
    (void)state;
    run_dir("npy", run_npy);
}

static void test_idx_regressions(void **state)
{
    (void)state;
    run_dir("idx", run_idx);
}

static void test_csv_regressions(void **state)
{
    (void)state;
    run_dir("csv", run_csv);
}

static void test_safetensors_regressions(void **state)
{
    (void)state;
    run_dir("safetensors", run_safetensors);
}

/* The first fuzz find, pinned: 00 00 0D 04, then the big-endian dimensions 0x10000000,
 * 0xFFF8FFFB, 0x04000000, 0: a 4-d f32 IDX image with no data. Its non-zero dimensions multiply
 * far past int64, yet it is a valid empty array, so the reader must return it, shape intact. */
static void test_idx_empty_huge_dims(void **state)
{
    (void)state;
    static const unsigned char img[] = {0x00, 0x00, 0x0D, 0x04, 0x10, 0x00, 0x00, 0x00, 0xFF, 0xF8,
                                        0xFF, 0xFB, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    size_t len = 0;
    unsigned char *file = read_all(REGRESSIONS_DIR "/idx/accept-empty-huge-dims.idx", &len);
    assert_int_equal(len, sizeof img);
    assert_memory_equal(file, img, sizeof img);
    free(file);

    nb_tensor *t = nb_idx_parse(img, sizeof img);
    if (!t)
        fail_msg("rejected: %s", nb_last_error());
    assert_int_equal(t->dtype, NB_F32);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 268435456);
    assert_int_equal(t->shape[1], 4294508539LL);
    assert_int_equal(t->shape[2], 67108864);
    assert_int_equal(t->shape[3], 0);
    assert_int_equal(t->numel, 0);
    nb_tensor_free(t);

    /* one byte of data more is trailing garbage */
    unsigned char more[sizeof img + 1];
    memcpy(more, img, sizeof img);
    more[sizeof img] = 0;
    nb_clear_error();
    assert_null(nb_idx_parse(more, sizeof more));
    assert_non_null(strstr(nb_last_error(), "trailing"));
}

/* Runs last: the directories above must have held something, or the path is wrong. */
static void test_regressions_were_found(void **state)
{
    (void)state;
    if (total_files < 1)
        fail_msg("no regression inputs found under %s", REGRESSIONS_DIR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_regressions),     cmocka_unit_test(test_idx_regressions),
        cmocka_unit_test(test_csv_regressions),     cmocka_unit_test(test_safetensors_regressions),
        cmocka_unit_test(test_idx_empty_huge_dims), cmocka_unit_test(test_regressions_were_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
