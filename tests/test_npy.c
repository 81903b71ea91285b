/* test_npy.c - the .npy reader and writer.
 *
 * Reference data: files written by NumPy 1.24 (scripts/gen_npy_fixtures.py -> tests/data/npy_*),
 * whose values are rebuilt here from the same formulas and literals, and hand-made byte strings
 * for headers NumPy would never write. Temporary files go to a fresh mkdtemp directory.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla/npy.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#ifndef NB_TEST_DATA_DIR
#error "NB_TEST_DATA_DIR must name the tests/data folder"
#endif

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_npy_XXXXXX"
#include "test_files.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void data_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", NB_TEST_DATA_DIR, name);
}

static size_t tensor_bytes(const nb_tensor *t)
{
    return (size_t)t->numel * nb_dtype_size(t->dtype);
}

static void assert_same_tensor(const nb_tensor *a, const nb_tensor *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->ndim, b->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert_int_equal(a->shape[i], b->shape[i]);
    assert_int_equal(a->numel, b->numel);
    if (tensor_bytes(a) > 0)
        assert_memory_equal(a->data, b->data, tensor_bytes(a));
}

/* Fills a tensor with a dtype-appropriate deterministic pattern. */
static void fill_pattern(nb_tensor *t)
{
    unsigned char *b = t->data;
    size_t n = tensor_bytes(t);
    if (t->dtype == NB_BOOL) {
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)((i * 7 + 3) % 3 == 0);
        return;
    }
    if (t->dtype == NB_F32 || t->dtype == NB_F64) {
        for (int64_t i = 0; i < t->numel; i++)
            nb_tensor_set(t, i, (double)i * 0.375 - 2.0);
        return;
    }
    for (size_t i = 0; i < n; i++) /* integers and f16: any bit pattern round-trips */
        b[i] = (unsigned char)(i * 131 + 17);
}

/* Expects a failed parse with the given status and a message containing `needle`. */
#define assert_parse_fails(buf, len, status, needle)                                               \
    do {                                                                                           \
        nb_clear_error();                                                                          \
        nb_tensor *t_ = nb_npy_parse((buf), (len));                                                \
        if (t_) {                                                                                  \
            nb_tensor_free(t_);                                                                    \
            fail_msg("parse unexpectedly succeeded (expected '%s')", (needle));                    \
        }                                                                                          \
        assert_int_equal(nb_last_status(), (status));                                              \
        if (!strstr(nb_last_error(), (needle)))                                                    \
            fail_msg("error '%s' does not mention '%s'", nb_last_error(), (needle));               \
    } while (0)

/* Builds a version-1.0 image: magic, version, uint16 header length, header text, data bytes. */
static unsigned char *make_image(const char *header, size_t data_bytes, size_t *len)
{
    size_t hl = strlen(header);
    *len = 10 + hl + data_bytes;
    unsigned char *img = calloc(1, *len);
    assert_non_null(img);
    memcpy(img, "\x93NUMPY\x01\x00", 8);
    img[8] = (unsigned char)(hl & 0xff);
    img[9] = (unsigned char)(hl >> 8);
    memcpy(img + 10, header, hl);
    for (size_t i = 0; i < data_bytes; i++)
        img[10 + hl + i] = (unsigned char)i;
    return img;
}

/* ---- round trips -------------------------------------------------------------------------- */

static void roundtrip(nb_dtype dt, int ndim, const int64_t *shape)
{
    char path[256];
    tmp_path(path, sizeof path, "rt.npy");
    nb_tensor *x = nb_tensor_empty(dt, ndim, shape);
    assert_non_null(x);
    fill_pattern(x);
    if (nb_npy_save(path, x) != NB_OK)
        fail_msg("save %s failed: %s", nb_dtype_name(dt), nb_last_error());
    nb_tensor *y = nb_npy_load(path);
    if (!y)
        fail_msg("load %s failed: %s", nb_dtype_name(dt), nb_last_error());
    assert_same_tensor(x, y);

    /* The file is a valid .npy image: data starts at a multiple of 64, the header ends in '\n'
     * and parsing the bytes gives the same tensor. */
    size_t len;
    unsigned char *img = read_all(path, &len);
    assert_memory_equal(img, "\x93NUMPY\x01\x00", 8);
    size_t hl = (size_t)img[8] | (size_t)img[9] << 8;
    assert_int_equal((10 + hl) % 64, 0);
    assert_int_equal(img[10 + hl - 1], '\n');
    assert_int_equal(len, 10 + hl + tensor_bytes(x));
    nb_tensor *z = nb_npy_parse(img, len);
    assert_non_null(z);
    assert_same_tensor(x, z);

    free(img);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_tensor_free(z);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(count_entries(tmp_dir), 0); /* no temporary file left behind */
}

static void test_roundtrip_every_dtype(void **state)
{
    (void)state;
    const nb_dtype dts[] = {NB_F32, NB_F64, NB_F16, NB_I32, NB_I64, NB_U8, NB_BOOL};
    const int64_t shape[] = {2, 3};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++)
        roundtrip(dts[i], 2, shape);
}

static void test_roundtrip_shapes(void **state)
{
    (void)state;
    const int64_t s1[] = {7}, s4[] = {2, 3, 4, 5}, e1[] = {0}, e3[] = {3, 0, 2},
                  e4[] = {1, 2, 0, 4}, big1[] = {1000};
    const nb_dtype dts[] = {NB_F32, NB_F64, NB_F16, NB_I32, NB_I64, NB_U8, NB_BOOL};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        roundtrip(dts[i], 0, NULL); /* 0-d: shape () */
        roundtrip(dts[i], 1, s1);
        roundtrip(dts[i], 4, s4);
        roundtrip(dts[i], 1, e1);
        roundtrip(dts[i], 3, e3);
        roundtrip(dts[i], 4, e4);
        roundtrip(dts[i], 1, big1);
    }
}

static void test_save_overwrites(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "over.npy");
    const int64_t s[] = {3};
    nb_tensor *a = nb_tensor_full(NB_F32, 1, s, 1.0);
    nb_tensor *b = nb_tensor_full(NB_F64, 1, s, 2.0);
    assert_int_equal(nb_npy_save(path, a), NB_OK);
    assert_int_equal(nb_npy_save(path, b), NB_OK);
    nb_tensor *y = nb_npy_load(path);
    assert_non_null(y);
    assert_same_tensor(b, y);
    assert_int_equal(count_entries(tmp_dir), 1);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(y);
}

/* ---- files written by NumPy --------------------------------------------------------------- */

static nb_tensor *load_fixture(const char *name)
{
    char path[512];
    data_path(path, sizeof path, name);
    nb_tensor *t = nb_npy_load(path);
    if (!t)
        fail_msg("loading %s: %s", name, nb_last_error());
    return t;
}

/* Loads a NumPy fixture, checks it against `expected`, and checks that saving `expected` gives
 * the very same bytes as NumPy wrote (only for format 1.0 fixtures). */
static void check_fixture(const char *name, const nb_tensor *expected, bool same_bytes)
{
    nb_tensor *t = load_fixture(name);
    assert_same_tensor(expected, t);
    nb_tensor_free(t);
    if (!same_bytes)
        return;
    char path[512], out[256];
    data_path(path, sizeof path, name);
    tmp_path(out, sizeof out, "mine.npy");
    assert_int_equal(nb_npy_save(out, expected), NB_OK);
    size_t la, lb;
    unsigned char *a = read_all(path, &la), *b = read_all(out, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
}

static void test_numpy_fixtures(void **state)
{
    (void)state;
    {
        const int64_t s[] = {2, 3};
        nb_tensor *e = nb_tensor_empty(NB_F32, 2, s);
        float *d = e->data;
        for (int i = 0; i < 6; i++)
            d[i] = 0.5f * (float)i - 1.25f;
        check_fixture("npy_f32.npy", e, true);
        check_fixture("npy_v2.npy", e, false);
        check_fixture("npy_v3.npy", e, false);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {5};
        nb_tensor *e = nb_tensor_empty(NB_F64, 1, s);
        double *d = e->data;
        d[0] = 0.0;
        d[1] = -0.0;
        d[2] = 1e300;
        d[3] = INFINITY;
        d[4] = NAN;
        nb_tensor *t = load_fixture("npy_f64.npy");
        const double *v = t->data;
        assert_true(v[0] == 0.0 && !signbit(v[0]));
        assert_true(v[1] == 0.0 && signbit(v[1]));
        assert_true(v[2] == 1e300);
        assert_true(isinf(v[3]) && v[3] > 0);
        assert_true(isnan(v[4]));
        nb_tensor_free(t);
        /* NumPy's NaN is the default quiet NaN; compare bytes only for the other four. */
        nb_tensor *mine = e;
        char out[256], path[512];
        tmp_path(out, sizeof out, "f64.npy");
        data_path(path, sizeof path, "npy_f64.npy");
        assert_int_equal(nb_npy_save(out, mine), NB_OK);
        size_t la, lb;
        unsigned char *a = read_all(path, &la), *b = read_all(out, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la - 8);
        free(a);
        free(b);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {4};
        const uint16_t bits[] = {0x3C00, 0xC000, 0x3800, 0x7BFF}; /* 1, -2, 0.5, 65504 */
        nb_tensor *e = nb_tensor_from_buffer(NB_F16, 1, s, bits);
        check_fixture("npy_f16.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {3, 2};
        const int32_t v[] = {INT32_MIN, INT32_MAX, 0, 1, -1, 42};
        nb_tensor *e = nb_tensor_from_buffer(NB_I32, 2, s, v);
        check_fixture("npy_i32.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {2, 2};
        const int64_t v[] = {INT64_MIN, INT64_MAX, -1, 7};
        nb_tensor *e = nb_tensor_from_buffer(NB_I64, 2, s, v);
        check_fixture("npy_i64.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {2, 2, 2};
        uint8_t v[8];
        for (int i = 0; i < 8; i++)
            v[i] = (uint8_t)((37 * i) % 256);
        nb_tensor *e = nb_tensor_from_buffer(NB_U8, 3, s, v);
        check_fixture("npy_u8.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {5};
        const uint8_t v[] = {1, 0, 1, 1, 0};
        nb_tensor *e = nb_tensor_from_buffer(NB_BOOL, 1, s, v);
        check_fixture("npy_bool.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const double v = 3.25;
        nb_tensor *e = nb_tensor_from_buffer(NB_F64, 0, NULL, &v);
        check_fixture("npy_0d.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {0, 3};
        nb_tensor *e = nb_tensor_empty(NB_F32, 2, s);
        check_fixture("npy_empty.npy", e, true);
        nb_tensor_free(e);
    }
    {
        const int64_t s[] = {2, 3, 4, 5};
        nb_tensor *e = nb_tensor_empty(NB_F32, 4, s);
        float *d = e->data;
        for (int i = 0; i < 120; i++)
            d[i] = 0.25f * (float)i;
        check_fixture("npy_4d.npy", e, true);
        nb_tensor_free(e);
    }
}

static void test_numpy_rejected_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *name, *needle;
    } cases[] = {
        {"npy_fortran.npy", "fortran_order True is not supported"},
        {"npy_bigendian.npy", "big-endian descr '>f4'"},
        {"npy_object.npy", "object arrays (descr '|O')"},
        {"npy_structured.npy", "structured dtypes are not supported"},
        {"npy_5d.npy", "shape has 5 dimensions, at most 4"},
        {"npy_i1.npy", "unsupported descr '|i1'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        data_path(path, sizeof path, cases[i].name);
        nb_clear_error();
        nb_tensor *t = nb_npy_load(path);
        if (t)
            fail_msg("%s loaded but should be rejected", cases[i].name);
        assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
        if (!strstr(nb_last_error(), cases[i].needle) || !strstr(nb_last_error(), path))
            fail_msg("%s: message '%s' lacks '%s' or the path", cases[i].name, nb_last_error(),
                     cases[i].needle);
    }
}

/* ---- truncation and trailing bytes -------------------------------------------------------- */

/* Every proper prefix of a valid image must fail cleanly; the full image must parse. Each prefix
 * lives in its own exact-size allocation so a sanitizer catches any read past its end. */
static void check_all_prefixes(const unsigned char *img, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        unsigned char *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, img, n);
        nb_clear_error();
        nb_tensor *t = nb_npy_parse(p, n);
        if (t)
            fail_msg("prefix of %zu/%zu bytes parsed", n, len);
        assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
        assert_true(strlen(nb_last_error()) > 0);
        free(p);
    }
    unsigned char *p = malloc(len);
    assert_non_null(p);
    memcpy(p, img, len);
    nb_tensor *t = nb_npy_parse(p, len);
    if (!t)
        fail_msg("full image failed: %s", nb_last_error());
    nb_tensor_free(t);
    free(p);

    /* One extra byte is an error too. */
    unsigned char *q = malloc(len + 1);
    assert_non_null(q);
    memcpy(q, img, len);
    q[len] = 0;
    assert_parse_fails(q, len + 1, NB_ERR_FORMAT, "1 unexpected trailing bytes");
    free(q);
}

static void test_truncated_prefixes(void **state)
{
    (void)state;
    const char *names[] = {"npy_f32.npy", "npy_0d.npy", "npy_empty.npy", "npy_4d.npy",
                           "npy_v2.npy",  "npy_v3.npy", "npy_bool.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512];
        data_path(path, sizeof path, names[i]);
        size_t len;
        unsigned char *img = read_all(path, &len);
        check_all_prefixes(img, len);
        free(img);
    }
    /* Hand-made minimal images: a 1-byte header would let the preamble read into data. */
    size_t len;
    unsigned char *img = make_image("{'descr':'|u1','fortran_order':False,'shape':(3,)}", 3, &len);
    check_all_prefixes(img, len);
    free(img);

    /* Truncation on disk goes through nb_npy_load's own reading path. */
    char path[512], out[256];
    data_path(path, sizeof path, "npy_4d.npy");
    img = read_all(path, &len);
    tmp_path(out, sizeof out, "cut.npy");
    const size_t cuts[] = {0, 3, 6, 8, 9, 10, 11, 12, 100, 127, 128, 129, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(out, img, cuts[i]);
        nb_clear_error();
        nb_tensor *t = nb_npy_load(out);
        if (t)
            fail_msg("file cut at %zu bytes loaded", cuts[i]);
        assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
        assert_non_null(strstr(nb_last_error(), out));
    }
    unsigned char *longer = malloc(len + 5);
    assert_non_null(longer);
    memcpy(longer, img, len);
    memset(longer + len, 0xAB, 5);
    write_all(out, longer, len + 5);
    assert_null(nb_npy_load(out));
    assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
    assert_non_null(strstr(nb_last_error(), "5 unexpected trailing bytes"));
    free(longer);
    free(img);
}

/* ---- hand-made headers -------------------------------------------------------------------- */

typedef struct header_case {
    const char *header;
    size_t data_bytes;
    const char *needle; /* NULL: must parse */
} header_case;

static void test_header_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        size_t data_bytes;
        nb_dtype dtype;
        int ndim;
        int64_t shape[4];
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, NB_F32, 2, {2, 3}},
        /* any key order, no spaces, no trailing comma */
        {"{'shape':(2,3),'descr':'<f4','fortran_order':False}", 24, NB_F32, 2, {2, 3}},
        /* double quotes, tabs, newlines, CR, padding */
        {"{\"descr\" :\t\"<f8\" ,\n 'fortran_order'\r: False,'shape' : ( 4 , ) }   \n",
         32,
         NB_F64,
         1,
         {4}},
        /* trailing comma in a 2-d tuple, '=' native order */
        {"{'descr': '=i4', 'fortran_order': False, 'shape': (2, 1,), }", 8, NB_I32, 2, {2, 1}},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (), }", 8, NB_I64, 0, {0}},
        {"{'descr': '<u1', 'fortran_order': False, 'shape': (1, 1, 1, 5), }",
         5,
         NB_U8,
         4,
         {1, 1, 1, 5}},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 3, NB_BOOL, 1, {3}},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 6, NB_F16, 1, {3}},
        /* Python 2 long suffix */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }", 8, NB_F32, 2, {2, 1}},
        /* zero dims next to huge ones: the array is empty, no overflow */
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }",
         0,
         NB_F64,
         2,
         {0, INT64_MAX}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-0,), }", 0, NB_F32, 1, {0}},
        /* no final newline */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, NB_F32, 1, {1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *img = make_image(cases[i].header, cases[i].data_bytes, &len);
        nb_tensor *t = nb_npy_parse(img, len);
        if (!t)
            fail_msg("case %zu (%s) failed: %s", i, cases[i].header, nb_last_error());
        assert_int_equal(t->dtype, cases[i].dtype);
        assert_int_equal(t->ndim, cases[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], cases[i].shape[d]);
        if (cases[i].data_bytes > 0 && t->dtype != NB_BOOL) /* bool is normalised, below */
            assert_memory_equal(t->data, img + len - cases[i].data_bytes, cases[i].data_bytes);
        nb_tensor_free(t);
        free(img);
    }

    /* bool bytes other than 0 and 1 become a clean 1 */
    size_t len;
    unsigned char *img = make_image("{'descr':'|b1','fortran_order':False,'shape':(3,)}", 3, &len);
    img[len - 3] = 0;
    img[len - 2] = 2;
    img[len - 1] = 255;
    nb_tensor *t = nb_npy_parse(img, len);
    assert_non_null(t);
    const uint8_t *b = t->data;
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 1);
    assert_int_equal(b[2], 1);
    nb_tensor_free(t);
    free(img);
}

static void test_header_rejects(void **state)
{
    (void)state;
#define H(descr, fo, shape) "{'descr': " descr ", 'fortran_order': " fo ", 'shape': " shape ", }"
    static const header_case cases[] = {
        {"", 0, "expected '{'"},
        {"   \n", 0, "expected '{'"},
        {"{", 0, "found end of header"},
        {"[1, 2]", 0, "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, "found end of header"},
        {H("'<f4'", "False", "(2,)") " x", 8, "only spaces after the header dict"},
        {H("'<f4'", "False", "(2,)") "}", 8, "only spaces after the header dict"},
        {"{'descr': '<f4', 'fortran_order': False}", 4, "missing the key 'shape'"},
        {"{'descr': '<f4', 'shape': (1,)}", 4, "missing the key 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (1,)}", 4, "missing the key 'descr'"},
        {"{}", 0, "missing the key 'descr'"},
        {"{,}", 0, "expected a quoted string"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4,
         "'descr' appears twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4,
         "unexpected header key 'extra'"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': (1,)}", 4, "expected a quoted string"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", 4, "expected ':'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 4, "expected ',' or '}'"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", 4, "unsupported descr"},
        {"{'descr': '<f4", 0, "not terminated"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}", 4, "backslash"},
        /* fortran order */
        {H("'<f4'", "True", "(2, 2)"), 16, "fortran_order True is not supported"},
        {H("'<f4'", "'True'", "(1,)"), 4, "True or False for fortran_order"},
        {H("'<f4'", "1", "(1,)"), 4, "True or False for fortran_order"},
        {H("'<f4'", "false", "(1,)"), 4, "True or False for fortran_order"},
        {H("'<f4'", "Falsey", "(1,)"), 4, "True or False for fortran_order"},
        {H("'<f4'", "", "(1,)"), 4, "True or False for fortran_order"},
        /* descr */
        {H("'>f4'", "False", "(1,)"), 4, "big-endian descr '>f4'"},
        {H("'>i8'", "False", "(1,)"), 8, "big-endian descr '>i8'"},
        {H("'|f4'", "False", "(1,)"), 4, "descr '|f4' has no byte order"},
        {H("'|O'", "False", "(1,)"), 8, "object arrays (descr '|O')"},
        {H("'|O8'", "False", "(1,)"), 8, "object arrays"},
        {H("[('a', '<f4')]", "False", "(1,)"), 4, "structured dtypes are not supported"},
        {H("'<c8'", "False", "(1,)"), 8, "unsupported descr '<c8'"},
        {H("'|i1'", "False", "(1,)"), 1, "unsupported descr '|i1'"},
        {H("'<u2'", "False", "(1,)"), 2, "unsupported descr '<u2'"},
        {H("'<f16'", "False", "(1,)"), 16, "unsupported descr '<f16'"},
        {H("'<U5'", "False", "(1,)"), 20, "unsupported descr '<U5'"},
        {H("'<M8[ns]'", "False", "(1,)"), 8, "unsupported descr '<M8[ns]'"},
        {H("'f4'", "False", "(1,)"), 4, "unsupported descr 'f4'"},
        {H("''", "False", "(1,)"), 4, "unsupported descr ''"},
        {H("'<f4x'", "False", "(1,)"), 4, "unsupported descr '<f4x'"},
        {H("'<f\x01'", "False", "(1,)"), 4, "unsupported descr '<f?'"},
        {H("4", "False", "(1,)"), 4, "a descr string"},
        /* shape */
        {H("'<f4'", "False", "(5)"), 20, "shape (5) is not a tuple"},
        {H("'<f4'", "False", "[2, 3]"), 24, "a shape tuple"},
        {H("'<f4'", "False", "(,)"), 0, "an integer dimension"},
        {H("'<f4'", "False", "(2,,3)"), 24, "an integer dimension"},
        {H("'<f4'", "False", "(2 3)"), 24, "',' or ')'"},
        {H("'<f4'", "False", "(2,"), 8, "an integer dimension"},
        {H("'<f4'", "False", "(2.0,)"), 8, "',' or ')'"},
        {H("'<f4'", "False", "(0x10,)"), 64, "',' or ')'"},
        {H("'<f4'", "False", "(-1,)"), 0, "negative dimension -1"},
        {H("'<f4'", "False", "(2, -3)"), 0, "negative dimension -3"},
        {H("'<f4'", "False", "(1, 1, 1, 1, 1)"), 4, "shape has 5 dimensions, at most 4"},
        {H("'<f4'", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,)"), 4,
         "shape has 12 dimensions"},
        {H("'<f4'", "False", "(9223372036854775808,)"), 0, "does not fit in int64"},
        {H("'<f4'", "False", "(99999999999999999999999999999999,)"), 0, "does not fit in int64"},
        {H("'<f4'", "False", "(-99999999999999999999999999999999,)"), 0, "does not fit in int64"},
        {H("'<f4'", "False", "(4611686018427387904, 4)"), 0,
         "element count exceeds int64 at dimension 1"},
        {H("'<f4'", "False", "(3037000500, 3037000500)"), 0, "element count exceeds int64"},
        {H("'<u1'", "False", "(65536, 65536, 65536, 65536)"), 0,
         "element count exceeds int64 at dimension 3"},
        {H("'<f8'", "False", "(1152921504606846976,)"), 0, "shape overflows"},
        {H("'<f4'", "False", "(9223372036854775807,)"), 0, "shape overflows"},
        {H("'<i8'", "False", "(2305843009213693952,)"), 0, "shape overflows"},
        /* data length */
        {H("'<f4'", "False", "(1000000000000,)"), 0, "truncated data"},
        {H("'<f4'", "False", "(2, 3)"), 23, "truncated data"},
        {H("'<f4'", "False", "(2, 3)"), 25, "1 unexpected trailing bytes"},
        {H("'<f4'", "False", "()"), 0, "truncated data"},
        {H("'<f4'", "False", "(0,)"), 1, "1 unexpected trailing bytes"},
        /* a control byte is not whitespace */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\t\v\f\r\n\001", 4,
         "only spaces after"},
    };
#undef H
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *img = make_image(cases[i].header, cases[i].data_bytes, &len);
        nb_clear_error();
        nb_tensor *t = nb_npy_parse(img, len);
        if (t)
            fail_msg("case %zu (%s) parsed", i, cases[i].header);
        if (nb_last_status() != NB_ERR_FORMAT || !strstr(nb_last_error(), cases[i].needle))
            fail_msg("case %zu (%s): got [%s] '%s', wanted '%s'", i, cases[i].header,
                     nb_status_name(nb_last_status()), nb_last_error(), cases[i].needle);
        assert_true(strncmp(nb_last_error(), "npy: ", 5) == 0);
        free(img);
    }
}

static void test_preamble_rejects(void **state)
{
    (void)state;
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    size_t len;
    unsigned char *img = make_image(good, 4, &len);

    img[0] = 0x92; /* bad magic */
    assert_parse_fails(img, len, NB_ERR_FORMAT, "bad magic");
    img[0] = 0x93;
    img[2] = 'u';
    assert_parse_fails(img, len, NB_ERR_FORMAT, "bad magic");
    assert_parse_fails(img, 3, NB_ERR_FORMAT, "bad magic");
    img[2] = 'U';
    assert_parse_fails(img, 3, NB_ERR_FORMAT, "truncated");
    static const char zip[] = "PK\x03\x04 a zip file";
    assert_parse_fails(zip, sizeof zip - 1, NB_ERR_FORMAT, "bad magic");
    assert_parse_fails(NULL, 0, NB_ERR_FORMAT, "truncated");

    const unsigned char versions[][2] = {{0, 0}, {1, 1}, {2, 1}, {4, 0}, {255, 255}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        img[6] = versions[i][0];
        img[7] = versions[i][1];
        char needle[64];
        snprintf(needle, sizeof needle, "unsupported .npy format version %u.%u", versions[i][0],
                 versions[i][1]);
        assert_parse_fails(img, len, NB_ERR_FORMAT, needle);
    }
    img[6] = 1;
    img[7] = 0;

    /* header length beyond the file */
    img[8] = 0xff;
    img[9] = 0xff;
    assert_parse_fails(img, len, NB_ERR_FORMAT, "header length 65535 goes beyond the end");
    /* header length that swallows the data: then the shape wants 4 bytes that are not there */
    size_t hl = strlen(good) + 4;
    img[8] = (unsigned char)(hl & 0xff);
    img[9] = (unsigned char)(hl >> 8);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "only spaces after the header dict");
    free(img);

    /* version 2.0 with a 4 GiB header length */
    unsigned char v2[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    assert_parse_fails(v2, sizeof v2, NB_ERR_FORMAT, "header length 4294967295 goes beyond");
    /* and one that fits the buffer but exceeds the header limit is rejected before parsing */
    size_t big = (2u << 20) + 12;
    unsigned char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    memcpy(huge, v2, 8);
    uint32_t hlen = (uint32_t)(big - 12);
    huge[8] = (unsigned char)hlen;
    huge[9] = (unsigned char)(hlen >> 8);
    huge[10] = (unsigned char)(hlen >> 16);
    huge[11] = (unsigned char)(hlen >> 24);
    assert_parse_fails(huge, big, NB_ERR_FORMAT, "exceeds the limit");
    free(huge);

    /* NULL with a length is an argument error */
    nb_clear_error();
    assert_null(nb_npy_parse(NULL, 10));
    assert_int_equal(nb_last_status(), NB_ERR_ARG);
}

/* Cheap deterministic mutation fuzzing: flip, insert and cut bytes of valid images. Each result
 * must parse or fail with a message; run under ASan/UBSan this checks for out-of-bounds reads. */
static void test_mutation_smoke(void **state)
{
    (void)state;
    const char *names[] = {"npy_f32.npy", "npy_0d.npy", "npy_v2.npy", "npy_bool.npy"};
    nb_rng r;
    nb_rng_seed(&r, 1234);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[512];
        data_path(path, sizeof path, names[k]);
        size_t len;
        unsigned char *img = read_all(path, &len);
        for (int iter = 0; iter < 3000; iter++) {
            size_t n = len;
            unsigned char *m = malloc(len + 8);
            assert_non_null(m);
            memcpy(m, img, len);
            int edits = 1 + (int)nb_rng_below(&r, 4);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t)nb_rng_below(&r, n);
                switch (nb_rng_below(&r, 4)) {
                case 0: m[at] = (unsigned char)nb_rng_u64(&r); break;
                case 1: m[at] ^= (unsigned char)(1u << nb_rng_below(&r, 8)); break;
                case 2: /* replace with a structural character */
                    m[at] = (unsigned char)"{}(),:' \"-0123456789LTF\n"[nb_rng_below(&r, 25)];
                    break;
                default: n = at + 1; break; /* cut */
                }
            }
            unsigned char *exact = malloc(n);
            assert_non_null(exact);
            memcpy(exact, m, n);
            nb_clear_error();
            nb_tensor *t = nb_npy_parse(exact, n);
            if (t) {
                assert_true(t->ndim >= 0 && t->ndim <= 4);
                nb_tensor_free(t);
            } else {
                assert_true(nb_last_status() != NB_OK);
                assert_true(strlen(nb_last_error()) > 0);
            }
            free(exact);
            free(m);
        }
        free(img);
    }
}

/* ---- load and save failures --------------------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "does_not_exist.npy");
    nb_clear_error();
    assert_null(nb_npy_load(path));
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), path));
    assert_non_null(strstr(nb_last_error(), strerror(ENOENT)));

    nb_clear_error();
    assert_null(nb_npy_load(tmp_dir)); /* a directory */
    assert_int_equal(nb_last_status(), NB_ERR_IO);

    nb_clear_error();
    assert_null(nb_npy_load(NULL));
    assert_int_equal(nb_last_status(), NB_ERR_ARG);

    /* an empty file */
    tmp_path(path, sizeof path, "empty.npy");
    write_all(path, "", 0);
    assert_null(nb_npy_load(path));
    assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
}

static void test_save_failures_leave_nothing(void **state)
{
    (void)state;
    const int64_t s[] = {2, 2};
    nb_tensor *x = nb_tensor_full(NB_F32, 2, s, 1.5);
    assert_non_null(x);
    char path[256];

    /* a directory that does not exist */
    tmp_path(path, sizeof path, "no/such/dir/x.npy");
    nb_clear_error();
    assert_int_equal(nb_npy_save(path, x), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "no/such/dir/x.npy"));
    assert_false(file_exists(path));
    assert_int_equal(count_entries(tmp_dir), 0);

    /* bf16 has no NumPy descr: refused before anything is created */
    nb_tensor *h = nb_tensor_full(NB_BF16, 2, s, 1.0);
    assert_non_null(h);
    tmp_path(path, sizeof path, "bf16.npy");
    nb_clear_error();
    assert_int_equal(nb_npy_save(path, h), NB_ERR_DTYPE);
    assert_non_null(strstr(nb_last_error(), "bf16"));
    assert_false(file_exists(path));
    assert_int_equal(count_entries(tmp_dir), 0);

    /* a failed save over an existing file leaves the old file untouched */
    assert_int_equal(nb_npy_save(path, x), NB_OK);
    assert_int_equal(nb_npy_save(path, h), NB_ERR_DTYPE);
    nb_tensor *y = nb_npy_load(path);
    assert_non_null(y);
    assert_same_tensor(x, y);
    nb_tensor_free(y);
    assert_int_equal(unlink(path), 0);

    /* the target is a directory: refused before anything is written */
    tmp_path(path, sizeof path, "a_dir");
    assert_int_equal(mkdir(path, 0700), 0);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/keep", path);
    write_all(inner, "x", 1); /* non-empty, so rename cannot replace it */
    nb_clear_error();
    assert_int_equal(nb_npy_save(path, x), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "is a directory"));
    assert_int_equal(count_entries(tmp_dir), 1); /* only a_dir */
    assert_int_equal(unlink(inner), 0);
    assert_int_equal(rmdir(path), 0);

    /* bad arguments */
    assert_int_equal(nb_npy_save(NULL, x), NB_ERR_ARG);
    tmp_path(path, sizeof path, "null.npy");
    assert_int_equal(nb_npy_save(path, NULL), NB_ERR_ARG);
    nb_tensor bad = *x;
    bad.ndim = 5;
    assert_int_equal(nb_npy_save(path, &bad), NB_ERR_SHAPE);
    bad = *x;
    bad.numel = 5;
    assert_int_equal(nb_npy_save(path, &bad), NB_ERR_SHAPE);
    bad = *x;
    bad.data = NULL;
    assert_int_equal(nb_npy_save(path, &bad), NB_ERR_ARG);
    assert_int_equal(count_entries(tmp_dir), 0);

    nb_tensor_free(h);
    nb_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_roundtrip_every_dtype, clean_each),
        cmocka_unit_test_teardown(test_roundtrip_shapes, clean_each),
        cmocka_unit_test_teardown(test_save_overwrites, clean_each),
        cmocka_unit_test_teardown(test_numpy_fixtures, clean_each),
        cmocka_unit_test_teardown(test_numpy_rejected_fixtures, clean_each),
        cmocka_unit_test_teardown(test_truncated_prefixes, clean_each),
        cmocka_unit_test(test_header_accepts),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_preamble_rejects),
        cmocka_unit_test(test_mutation_smoke),
        cmocka_unit_test_teardown(test_load_errors, clean_each),
        cmocka_unit_test_teardown(test_save_failures_leave_nothing, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
