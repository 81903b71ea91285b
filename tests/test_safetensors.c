/* test_safetensors.c - the safetensors reader and writer.
 *
 * Reference data, independent of our code:
 *   - byte images written by the reference implementation (huggingface/safetensors, the Rust
 *     crate the Python package wraps), copied from its own unit tests in
 *     safetensors/src/tensor.rs: test_serialization, test_empty, test_serialization_forced_
 *     alignement, and the 60-byte I32 example of its SafeTensors::deserialize doc comment.
 *     Our reader must load them and our writer must reproduce them byte for byte.
 *   - a file built here byte by byte from the format description, with values written as their
 *     IEEE bit patterns, a pretty-printed header listed out of data order, escapes and an
 *     unknown key (the reference implementation ignores those).
 * The Python `safetensors` package is not available to this build (not in Debian), so the
 * writer's output is also checked field by field against the format rules.
 * Temporary files go to a fresh mkdtemp directory.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla/safetensors.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_st_XXXXXX"
#include "test_files.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static size_t tensor_bytes(const nb_tensor *t)
{
    return (size_t)t->numel * nb_dtype_size(t->dtype);
}

static void assert_same_tensor(const nb_tensor *a, const nb_tensor *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->ndim, b->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert_int_equal(a->shape[i], b->shape[i]);
    assert_int_equal(a->numel, b->numel);
    if (tensor_bytes(a) > 0)
        assert_memory_equal(a->data, b->data, tensor_bytes(a));
}

/* A dtype-appropriate deterministic pattern, different for each `salt`. */
static void fill_pattern(nb_tensor *t, unsigned salt)
{
    unsigned char *b = t->data;
    size_t n = tensor_bytes(t);
    if (t->dtype == NB_BOOL) {
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)((i + salt) % 3 == 0);
        return;
    }
    if (t->dtype == NB_F32 || t->dtype == NB_F64) {
        for (int64_t i = 0; i < t->numel; i++)
            nb_tensor_set(t, i, (double)i * 0.375 - 2.0 + salt);
        return;
    }
    for (size_t i = 0; i < n; i++) /* integers and half floats: any bit pattern round-trips */
        b[i] = (unsigned char)(i * 131 + 17 + salt * 7);
}

/* 8-byte little-endian length `hlen_field`, then the header text, then data_len bytes of data
 * (copied from data, or a byte pattern if data is NULL). */
static unsigned char *make_image_len(uint64_t hlen_field, const char *header, const void *data,
                                     size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *img = malloc(*len);
    assert_non_null(img);
    for (int i = 0; i < 8; i++)
        img[i] = (unsigned char)(hlen_field >> (8 * i));
    memcpy(img + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        img[8 + hl + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)(i * 37 + 1);
    return img;
}

static unsigned char *make_image(const char *header, const void *data, size_t data_len, size_t *len)
{
    return make_image_len(strlen(header), header, data, data_len, len);
}

/* Expects a failed parse with the given status and a message containing `needle`. */
#define assert_parse_fails(buf, len, status, needle)                                               \
    do {                                                                                           \
        nb_clear_error();                                                                          \
        nb_safetensors *st_ = nb_safetensors_parse((buf), (len));                                  \
        if (st_) {                                                                                 \
            nb_safetensors_free(st_);                                                              \
            fail_msg("parse unexpectedly succeeded (expected '%s')", (needle));                    \
        }                                                                                          \
        assert_int_equal(nb_last_status(), (status));                                              \
        if (!strstr(nb_last_error(), (needle)))                                                    \
            fail_msg("error '%s' does not mention '%s'", nb_last_error(), (needle));               \
    } while (0)

static const nb_dtype all_dtypes[NB_DTYPE_COUNT] = {NB_F32, NB_F64, NB_F16, NB_BF16,
                                                    NB_I32, NB_I64, NB_U8,  NB_BOOL};

/* ---- round trips ------------------------------------------------------------------------ */

/* Every dtype in every kind of shape (0-d, empty, 1-4 dims, empty with other dims), plus
 * metadata, through a file and through memory. */
static void test_roundtrip_every_dtype(void **state)
{
    (void)state;
    static const struct {
        int ndim;
        int64_t shape[NB_MAX_DIMS];
    } shapes[] = {{2, {2, 3}},       {0, {0}}, {1, {0}},      {4, {1, 2, 3, 2}},
                  {3, {2, 0, 1000}}, {1, {5}}, {3, {3, 1, 2}}};
    enum { NS = sizeof shapes / sizeof shapes[0], NT = NB_DTYPE_COUNT * NS };
    nb_tensor *ts[NT];
    char names[NT][32];
    nb_named_tensor nt[NT];
    int k = 0;
    for (int d = 0; d < NB_DTYPE_COUNT; d++)
        for (int s = 0; s < NS; s++, k++) {
            ts[k] = nb_tensor_empty(all_dtypes[d], shapes[s].ndim, shapes[s].shape);
            assert_non_null(ts[k]);
            fill_pattern(ts[k], (unsigned)k);
            snprintf(names[k], sizeof names[k], "%s.layer%d", nb_dtype_name(all_dtypes[d]), s);
            nt[k] = (nb_named_tensor){names[k], ts[k]};
        }
    const char *meta[] = {"format", "pt", "nabla", "0.1", "empty", "", NULL};
    char p[256];
    tmp_path(p, sizeof p, "all.safetensors");
    assert_int_equal(nb_safetensors_save(p, nt, NT, meta), NB_OK);
    assert_int_equal(count_entries(tmp_dir), 1); /* no temporary file left behind */

    size_t len;
    unsigned char *img = read_all(p, &len);
    nb_safetensors *from_file = nb_safetensors_load(p);
    nb_safetensors *from_mem = nb_safetensors_parse(img, len);
    assert_non_null(from_file);
    assert_non_null(from_mem);
    nb_safetensors *both[2] = {from_file, from_mem};
    for (int b = 0; b < 2; b++) {
        nb_safetensors *st = both[b];
        assert_int_equal(nb_safetensors_count(st), NT);
        for (int i = 0; i < NT; i++) {
            /* tensors were written back to back in the order given: that is file order */
            assert_string_equal(nb_safetensors_name(st, i), names[i]);
            assert_same_tensor(nb_safetensors_get(st, names[i]), ts[i]);
        }
        assert_int_equal(nb_safetensors_meta_count(st), 3);
        assert_string_equal(nb_safetensors_meta_key(st, 0), "format");
        assert_string_equal(nb_safetensors_meta_key(st, 1), "nabla");
        assert_string_equal(nb_safetensors_meta_key(st, 2), "empty");
        assert_string_equal(nb_safetensors_meta(st, "format"), "pt");
        assert_string_equal(nb_safetensors_meta(st, "nabla"), "0.1");
        assert_string_equal(nb_safetensors_meta(st, "empty"), "");
    }
    nb_safetensors_free(from_file);
    nb_safetensors_free(from_mem);
    free(img);
    for (int i = 0; i < NT; i++)
        nb_tensor_free(ts[i]);
}

/* Names and metadata with characters JSON must escape, and non-ASCII UTF-8. */
static void test_roundtrip_escapes(void **state)
{
    (void)state;
    nb_tensor *a = nb_tensor_full(NB_F32, 1, (int64_t[]){2}, 1.5);
    nb_tensor *b = nb_tensor_full(NB_I64, 0, NULL, -3);
    assert_non_null(a);
    assert_non_null(b);
    const char *n1 = "q\"b\\s\n/t\x01", *n2 = "poids.\xc3\xa9t\xc3\xa9";
    nb_named_tensor nt[] = {{n1, a}, {n2, b}};
    const char *meta[] = {"k\"ey", "line1\nline2\ttab", "\xe6\x97\xa5\xe6\x9c\xac", "ok", NULL};
    char p[256];
    tmp_path(p, sizeof p, "esc.safetensors");
    assert_int_equal(nb_safetensors_save(p, nt, 2, meta), NB_OK);
    size_t len;
    unsigned char *img = read_all(p, &len);
    /* the header text is JSON with the escapes a JSON writer uses (as serde_json does) */
    const char *want = "{\"__metadata__\":{\"k\\\"ey\":\"line1\\nline2\\ttab\",\"\xe6\x97\xa5"
                       "\xe6\x9c\xac\":\"ok\"},\"q\\\"b\\\\s\\n/t\\u0001\":{";
    assert_true(len > 8 + strlen(want));
    assert_memory_equal(img + 8, want, strlen(want));
    nb_safetensors *st = nb_safetensors_load(p);
    assert_non_null(st);
    assert_string_equal(nb_safetensors_name(st, 0), n1);
    assert_string_equal(nb_safetensors_name(st, 1), n2);
    assert_same_tensor(nb_safetensors_get(st, n1), a);
    assert_same_tensor(nb_safetensors_get(st, n2), b);
    assert_string_equal(nb_safetensors_meta(st, "k\"ey"), "line1\nline2\ttab");
    assert_string_equal(nb_safetensors_meta(st, "\xe6\x97\xa5\xe6\x9c\xac"), "ok");
    nb_safetensors_free(st);
    free(img);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* Bools are one byte, 0 or 1, both ways. */
static void test_bool_bytes_are_clean(void **state)
{
    (void)state;
    nb_tensor *t = nb_tensor_empty(NB_BOOL, 1, (int64_t[]){3});
    assert_non_null(t);
    unsigned char *b = t->data;
    b[0] = 0, b[1] = 2, b[2] = 255;
    nb_named_tensor nt[] = {{"m", t}};
    char p[256];
    tmp_path(p, sizeof p, "bool.safetensors");
    assert_int_equal(nb_safetensors_save(p, nt, 1, NULL), NB_OK);
    size_t len;
    unsigned char *img = read_all(p, &len);
    assert_memory_equal(img + len - 3, "\x00\x01\x01", 3);
    free(img);
    nb_tensor_free(t);

    size_t ilen;
    img = make_image("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                     "\x00\x07", 2, &ilen);
    nb_safetensors *st = nb_safetensors_parse(img, ilen);
    assert_non_null(st);
    const unsigned char *got = nb_safetensors_get(st, "m")->data;
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 1);
    nb_safetensors_free(st);
    free(img);
}

/* ---- reference files -------------------------------------------------------------------- */

/* From huggingface/safetensors, safetensors/src/tensor.rs, test_serialization: "attn.0", F32
 * [1, 2, 3] holding 0..5 (its 64-byte header needs no padding). */
static const unsigned char ref_attn_0[] = {
    64,  0,   0,   0,   0,   0,  0,  0,  123, 34, 97,  116, 116, 110, 46,  48,  34,  58,  123, 34,
    100, 116, 121, 112, 101, 34, 58, 34, 70,  51, 50,  34,  44,  34,  115, 104, 97,  112, 101, 34,
    58,  91,  49,  44,  50,  44, 51, 93, 44,  34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101,
    116, 115, 34,  58,  91,  48, 44, 50, 52,  93, 125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
    0,   0,   0,   64,  0,   0,  64, 64, 0,   0,  128, 64,  0,   0,   160, 64};
/* test_serialization_forced_alignement: "attn0", F32 [1, 1, 2, 3]; 7 spaces of padding. */
static const unsigned char ref_attn0[] = {
    72,  0,   0,   0,   0,   0,   0,   0,   123, 34, 97, 116, 116, 110, 48,  34,  58,  123,
    34,  100, 116, 121, 112, 101, 34,  58,  34,  70, 51, 50,  34,  44,  34,  115, 104, 97,
    112, 101, 34,  58,  91,  49,  44,  49,  44,  50, 44, 51,  93,  44,  34,  100, 97,  116,
    97,  95,  111, 102, 102, 115, 101, 116, 115, 34, 58, 91,  48,  44,  50,  52,  93,  125,
    125, 32,  32,  32,  32,  32,  32,  32,  0,   0,  0,  0,   0,   0,   128, 63,  0,   0,
    0,   64,  0,   0,   64,  64,  0,   0,   128, 64, 0,  0,   160, 64};
/* test_empty: no tensors, no metadata; then no tensors with {"framework": "pt"}. */
static const unsigned char ref_empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
static const unsigned char ref_empty_meta[] = {
    40,  0,   0,   0,  0,  0,  0,   0,   123, 34,  95,  95,  109, 101, 116, 97,
    100, 97,  116, 97, 95, 95, 34,  58,  123, 34,  102, 114, 97,  109, 101, 119,
    111, 114, 107, 34, 58, 34, 112, 116, 34,  125, 125, 32,  32,  32,  32,  32};

/* Saves the given tensors and checks the file is exactly `ref`. */
static void assert_saves_as(const nb_named_tensor *nt, int n, const char *const *meta,
                            const unsigned char *ref, size_t ref_len)
{
    char p[256];
    tmp_path(p, sizeof p, "ref.safetensors");
    assert_int_equal(nb_safetensors_save(p, nt, n, meta), NB_OK);
    size_t len;
    unsigned char *img = read_all(p, &len);
    assert_int_equal(len, ref_len);
    assert_memory_equal(img, ref, ref_len);
    free(img);
}

static void test_reference_implementation_files(void **state)
{
    (void)state;
    const float want[6] = {0, 1, 2, 3, 4, 5};
    struct {
        const unsigned char *img;
        size_t len;
        const char *name;
        int ndim;
        int64_t shape[4];
    } refs[] = {{ref_attn_0, sizeof ref_attn_0, "attn.0", 3, {1, 2, 3}},
                {ref_attn0, sizeof ref_attn0, "attn0", 4, {1, 1, 2, 3}}};
    for (int r = 0; r < 2; r++) {
        nb_safetensors *st = nb_safetensors_parse(refs[r].img, refs[r].len);
        assert_non_null(st);
        assert_int_equal(nb_safetensors_count(st), 1);
        assert_int_equal(nb_safetensors_meta_count(st), 0);
        const nb_tensor *t = nb_safetensors_get(st, refs[r].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, NB_F32);
        assert_int_equal(t->ndim, refs[r].ndim);
        for (int i = 0; i < t->ndim; i++)
            assert_int_equal(t->shape[i], refs[r].shape[i]);
        assert_memory_equal(t->data, want, sizeof want);
        /* our writer produces the same bytes for the same tensor */
        nb_named_tensor nt[] = {{refs[r].name, t}};
        assert_saves_as(nt, 1, NULL, refs[r].img, refs[r].len);
        nb_safetensors_free(st);
    }

    nb_safetensors *st = nb_safetensors_parse(ref_empty, sizeof ref_empty);
    assert_non_null(st);
    assert_int_equal(nb_safetensors_count(st), 0);
    assert_int_equal(nb_safetensors_meta_count(st), 0);
    nb_safetensors_free(st);
    assert_saves_as(NULL, 0, NULL, ref_empty, sizeof ref_empty);

    st = nb_safetensors_parse(ref_empty_meta, sizeof ref_empty_meta);
    assert_non_null(st);
    assert_int_equal(nb_safetensors_count(st), 0);
    assert_int_equal(nb_safetensors_meta_count(st), 1);
    assert_string_equal(nb_safetensors_meta(st, "framework"), "pt");
    nb_safetensors_free(st);
    const char *meta[] = {"framework", "pt", NULL};
    assert_saves_as(NULL, 0, meta, ref_empty_meta, sizeof ref_empty_meta);

    /* The SafeTensors::deserialize doc example: a 60-byte header, not padded, I32 [2, 2]. */
    size_t len;
    unsigned char zeros[16] = {0};
    unsigned char *img = make_image(
        "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", zeros, 16, &len);
    assert_int_equal(img[0], 60);
    st = nb_safetensors_parse(img, len);
    assert_non_null(st);
    const nb_tensor *t = nb_safetensors_get(st, "test");
    assert_non_null(t);
    assert_int_equal(t->dtype, NB_I32);
    assert_int_equal(t->numel, 4);
    assert_memory_equal(t->data, zeros, 16);
    nb_safetensors_free(st);
    free(img);
}

/* A file built here from the format description: pretty-printed, tensors listed out of data
 * order, metadata in the middle with escapes, an unknown key, every kind of shape. */
static void test_hand_built_file(void **state)
{
    (void)state;
    const char *header = "{\n"
                         "  \"b.bias\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": "
                         "[16, 32]},\n"
                         "  \"__metadata__\": {\"format\": \"pt\", \"note\": \"caf\\u00e9 "
                         "\\\"q\\\"\"},\n"
                         "  \"a.weight\": {\"dtype\": \"F16\", \"shape\": [2, 2], "
                         "\"data_offsets\": [8, 16], \"extra\": [1]},\n"
                         "  \"mask\": {\"data_offsets\": [32, 35], \"shape\": [3], \"dtype\": "
                         "\"BOOL\"},\n"
                         "  \"s\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [0, 8]},\n"
                         "  \"e\": {\"dtype\": \"BF16\", \"shape\": [0, 3], \"data_offsets\": "
                         "[35, 35]}\n"
                         "}   ";
    static const unsigned char data[35] = {
        /* s: f64 -1.5 = 0xBFF8000000000000 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0xbf,
        /* a.weight: f16 1.0 (0x3C00), -2.0 (0xC000), 0.5 (0x3800), 65504 (0x7BFF) */
        0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b,
        /* b.bias: i64 1, -2 */
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff,
        /* mask: true, false, true */
        0x01, 0x00, 0x01};
    size_t len;
    unsigned char *img = make_image(header, data, sizeof data, &len);
    char p[256];
    tmp_path(p, sizeof p, "hand.safetensors");
    write_all(p, img, len);
    nb_safetensors *sts[2] = {nb_safetensors_parse(img, len), nb_safetensors_load(p)};
    for (int k = 0; k < 2; k++) {
        nb_safetensors *st = sts[k];
        if (!st)
            fail_msg("%s", nb_last_error());
        assert_int_equal(nb_safetensors_count(st), 5);
        const char *order[] = {"s", "a.weight", "b.bias", "mask", "e"}; /* by data offset */
        for (int i = 0; i < 5; i++)
            assert_string_equal(nb_safetensors_name(st, i), order[i]);
        const nb_tensor *s = nb_safetensors_get(st, "s");
        assert_int_equal(s->dtype, NB_F64);
        assert_int_equal(s->ndim, 0);
        assert_true(nb_tensor_get(s, 0) == -1.5);
        const nb_tensor *a = nb_safetensors_get(st, "a.weight");
        assert_int_equal(a->dtype, NB_F16);
        assert_int_equal(a->ndim, 2);
        assert_int_equal(a->shape[1], 2);
        const double wa[4] = {1.0, -2.0, 0.5, 65504.0};
        for (int i = 0; i < 4; i++)
            assert_true(nb_tensor_get(a, i) == wa[i]);
        const nb_tensor *b = nb_safetensors_get(st, "b.bias");
        assert_int_equal(b->dtype, NB_I64);
        assert_int_equal(((const int64_t *)b->data)[0], 1);
        assert_int_equal(((const int64_t *)b->data)[1], -2);
        const nb_tensor *m = nb_safetensors_get(st, "mask");
        assert_int_equal(m->dtype, NB_BOOL);
        assert_memory_equal(m->data, "\x01\x00\x01", 3);
        const nb_tensor *e = nb_safetensors_get(st, "e");
        assert_int_equal(e->dtype, NB_BF16);
        assert_int_equal(e->ndim, 2);
        assert_int_equal(e->shape[0], 0);
        assert_int_equal(e->shape[1], 3);
        assert_int_equal(e->numel, 0);
        assert_int_equal(nb_safetensors_meta_count(st), 2);
        assert_string_equal(nb_safetensors_meta_key(st, 0), "format");
        assert_string_equal(nb_safetensors_meta(st, "note"), "caf\xc3\xa9 \"q\"");
        assert_null(nb_safetensors_get(st, "extra"));
        nb_safetensors_free(st);
    }
    free(img);

    /* "__metadata__": null is no metadata, as in the reference implementation */
    img = make_image("{\"__metadata__\":null}", NULL, 0, &len);
    nb_safetensors *st = nb_safetensors_parse(img, len);
    assert_non_null(st);
    assert_int_equal(nb_safetensors_meta_count(st), 0);
    nb_safetensors_free(st);
    free(img);
}

/* The bytes we write, field by field against the format rules. */
static void test_written_bytes_follow_the_format(void **state)
{
    (void)state;
    nb_tensor *w = nb_tensor_empty(NB_F32, 1, (int64_t[]){2});
    nb_tensor *ids = nb_tensor_empty(NB_I32, 1, (int64_t[]){1});
    nb_tensor *flag = nb_tensor_empty(NB_BOOL, 0, NULL);
    assert_non_null(w);
    assert_non_null(ids);
    assert_non_null(flag);
    ((float *)w->data)[0] = 1.0f;
    ((float *)w->data)[1] = 2.0f;
    ((int32_t *)ids->data)[0] = 7;
    ((unsigned char *)flag->data)[0] = 1;
    nb_named_tensor nt[] = {{"w", w}, {"ids", ids}, {"flag", flag}};
    const char *meta[] = {"k", "v", NULL};
    char p[256];
    tmp_path(p, sizeof p, "fmt.safetensors");
    assert_int_equal(nb_safetensors_save(p, nt, 3, meta), NB_OK);
    size_t len;
    unsigned char *img = read_all(p, &len);

    const char *json = "{\"__metadata__\":{\"k\":\"v\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"ids\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                       "\"flag\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[12,13]}}";
    size_t jlen = strlen(json);
    size_t padded = (jlen + 7) / 8 * 8;
    assert_true(len >= 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | img[i];
    assert_int_equal(n, padded); /* u64 little-endian header length */
    assert_int_equal(n % 8, 0);  /* padded to a multiple of 8 */
    assert_int_equal(len, 8 + n + 13);
    assert_memory_equal(img + 8, json, jlen);
    for (size_t i = jlen; i < padded; i++)
        assert_int_equal(img[8 + i], ' ');
    static const unsigned char data[13] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00,
                                           0x40, 0x07, 0x00, 0x00, 0x00, 0x01};
    assert_memory_equal(img + 8 + n, data, sizeof data);
    free(img);
    nb_tensor_free(w);
    nb_tensor_free(ids);
    nb_tensor_free(flag);
}

/* ---- hostile input ---------------------------------------------------------------------- */

/* A valid image with several tensors and metadata, as saved by us. */
static unsigned char *sample_image(size_t *len)
{
    nb_tensor *a = nb_tensor_empty(NB_F32, 2, (int64_t[]){2, 3});
    nb_tensor *b = nb_tensor_empty(NB_BF16, 1, (int64_t[]){3});
    nb_tensor *c = nb_tensor_empty(NB_U8, 0, NULL);
    nb_tensor *d = nb_tensor_empty(NB_I64, 2, (int64_t[]){0, 4});
    assert_true(a && b && c && d);
    fill_pattern(a, 1);
    fill_pattern(b, 2);
    fill_pattern(c, 3);
    nb_named_tensor nt[] = {{"layer.w", a}, {"layer.b", b}, {"step", c}, {"none", d}};
    const char *meta[] = {"format", "pt", "epoch", "3", NULL};
    char p[256];
    tmp_path(p, sizeof p, "sample.safetensors");
    assert_int_equal(nb_safetensors_save(p, nt, 4, meta), NB_OK);
    unsigned char *img = read_all(p, len);
    assert_int_equal(unlink(p), 0);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(c);
    nb_tensor_free(d);
    return img;
}

/* Every proper prefix of a valid file fails cleanly, from memory and from a file; one extra
 * byte fails too. */
static void test_truncated_at_every_length(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = sample_image(&len);
    nb_safetensors *st = nb_safetensors_parse(img, len);
    assert_non_null(st);
    nb_safetensors_free(st);
    char p[256];
    tmp_path(p, sizeof p, "cut.safetensors");
    for (size_t n = 0; n < len; n++) {
        assert_parse_fails(img, n, NB_ERR_FORMAT, n < 8 ? "truncated" : "");
        write_all(p, img, n);
        nb_clear_error();
        st = nb_safetensors_load(p);
        if (st)
            fail_msg("a %zu-byte prefix of a %zu-byte file loaded", n, len);
        assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
        assert_non_null(strstr(nb_last_error(), p)); /* the message names the file */
    }
    unsigned char *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, img, len);
    longer[len] = 0;
    assert_parse_fails(longer, len + 1, NB_ERR_FORMAT, "1 bytes at the end of the");
    free(longer);
    free(img);
}

static void test_length_field_rejects(void **state)
{
    (void)state;
    size_t len;
    const char *h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    /* beyond the end of the file: one byte too many */
    unsigned char *img = make_image_len(strlen(h) + 2, h, NULL, 1, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "goes beyond the end of the file");
    free(img);
    /* over the 100,000,000-byte limit, and absurdly large */
    img = make_image_len(100000001, h, NULL, 1, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "header length 100000001 exceeds the limit");
    free(img);
    img = make_image_len(UINT64_MAX, h, NULL, 1, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "header length 18446744073709551615 exceeds");
    /* the same from a file: the length is checked before anything is allocated */
    char p[256];
    tmp_path(p, sizeof p, "huge.safetensors");
    write_all(p, img, len);
    nb_clear_error();
    assert_null(nb_safetensors_load(p));
    assert_non_null(strstr(nb_last_error(), "exceeds the limit"));
    free(img);
    /* shorter than the length field */
    assert_parse_fails("\x08\x00\x00", 3, NB_ERR_FORMAT, "truncated: 3 bytes");
    assert_parse_fails(NULL, 0, NB_ERR_FORMAT, "truncated: 0 bytes");
    nb_clear_error();
    assert_null(nb_safetensors_parse(NULL, 5));
    assert_int_equal(nb_last_status(), NB_ERR_ARG);
    /* an empty header */
    img = make_image("", NULL, 0, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "header is empty");
    free(img);
}

/* Headers that must be rejected, each with the data buffer size it comes with and a piece of
 * the expected message. */
static void test_header_rejects(void **state)
{
    (void)state;
#define E(name, dt, shape, b, e)                                                                   \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"
    static const struct {
        const char *header;
        size_t data_len;
        const char *needle;
    } cases[] = {
        /* JSON syntax */
        {"{" E("a", "F32", "[1]", 0, 4), 4, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\" \"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", 4, "not valid JSON"},
        {"[1, 2]", 0, "does not start with '{'"},
        {" {}", 0, "does not start with '{'"},
        {"\xef\xbb\xbf{}", 0, "does not start with '{'"}, /* a byte-order mark */
        {"{} x", 0, "trailing bytes after the JSON object (offset 3 of 4)"},
        {"{}{}", 0, "trailing bytes"},
        {"{\"a\xff\":1}", 0, "not valid UTF-8 at offset 3 (byte 0xff)"},
        {"{\"a\xc0\xaf\":1}", 0, "not valid UTF-8 at offset 3"},     /* overlong '/' */
        {"{\"a\xed\xa0\x80\":1}", 0, "not valid UTF-8 at offset 3"}, /* a surrogate */
        {"{\"a\x01\":1}", 0, "raw control byte 0x01 at offset 3"},
        {"{\"a\nb\":1}", 0, "raw control byte 0x0a"},
        {"{\"a\\u0000b\":1}", 0, "\\u0000 escape at offset 3"},
        /* dtype */
        {"{" E("a", "F8", "[1]", 0, 1) "}", 1, "tensor 'a': unsupported dtype 'F8' (supported:"},
        {"{" E("a", "f32", "[1]", 0, 4) "}", 4, "unsupported dtype 'f32'"},
        {"{" E("a", "I8", "[1]", 0, 1) "}", 1, "unsupported dtype 'I8'"},
        {"{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a': dtype is a number, not a string"},
        {"{\"a\":{\"dtype\":true,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a': dtype is a boolean, not a string"},
        {"{\"a\\u0001b\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a?b': unsupported dtype 'X'"},
        /* shape */
        {"{" E("layers.0.weight", "F32", "[3,4]", 0, 40) "}", 40,
         "tensor 'layers.0.weight': shape [3, 4] needs 48 bytes, data_offsets span 40"},
        {"{" E("a", "F64", "[]", 0, 4) "}", 4, "shape [] needs 8 bytes, data_offsets span 4"},
        {"{" E("x", "F32", "[1,1,1,1,2]", 0, 8) "}", 8,
         "tensor 'x' has 5 dimensions [1, 1, 1, 1, 2], at most 4 are supported"},
        {"{" E("x", "U8", "[1,1,1,1,1,1,1,1,1,1]", 0, 1) "}", 1,
         "has 10 dimensions [1, 1, 1, 1, 1, 1, 1, 1, ...]"},
        {"{" E("a", "F32", "[-1]", 0, 4) "}", 4,
         "tensor 'a': shape[0] is -1, not a non-negative integer"},
        {"{" E("a", "F32", "[2,1.5]", 0, 12) "}", 12, "shape[1] is 1.5, not"},
        {"{" E("a", "F32", "[\"2\"]", 0, 8) "}", 8, "shape[0] is a string, not"},
        {"{" E("a", "F32", "[1e300]", 0, 8) "}", 8, "shape[0] is 1.0000000000000001e+300"},
        {"{" E("a", "F32", "[9007199254740992]", 0, 8) "}", 8, "below 2^53"},
        {"{" E("a", "F32", "{}", 0, 8) "}", 8, "tensor 'a': shape is an object, not an array"},
        {"{" E("a", "U8", "[4194304,4194304,4194304,4194304]", 0, 8) "}", 8,
         "shape [4194304, 4194304, 4194304, 4194304] of U8 overflows a 64-bit byte count"},
        {"{" E("a", "F32", "[1024,0]", 0, 4) "}", 4, "shape [1024, 0] needs 0 bytes"},
        /* data_offsets */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
         "data_offsets has more than 2 values"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
         "data_offsets has 1 value, not 2"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0-4\"}}", 4,
         "data_offsets is a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4,
         "data_offsets[1] is -4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
         "data_offsets [8, 4] end before they begin"},
        {"{" E("a", "F32", "[2]", 0, 8) "}", 4,
         "tensor 'a': data_offsets [0, 8] go beyond the 4-byte data buffer"},
        /* tiling of the buffer */
        {"{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 4, 12) "}", 12,
         "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
        {"{" E("a", "F32", "[2]", 0, 8) "," E("z", "U8", "[0]", 4, 4) "}", 8,
         "tensors 'a' [0, 8] and 'z' [4, 4] overlap"},
        {"{" E("b", "F32", "[1]", 8, 12) "," E("a", "F32", "[1]", 0, 4) "}", 12,
         "bytes [4, 8) between tensors 'a' and 'b' belong to no tensor"},
        {"{" E("a", "F32", "[1]", 4, 8) "}", 8,
         "bytes [0, 4) belong to no tensor (the first, 'a', begins at 4)"},
        {"{" E("a", "F32", "[1]", 0, 4) "}", 6,
         "2 bytes at the end of the 6-byte data buffer belong to no tensor"},
        {"{}", 3, "3 bytes at the end of the 3-byte data buffer"},
        /* duplicates */
        {"{" E("a", "F32", "[1]", 0, 4) "," E("a", "F32", "[1]", 4, 8) "}", 8,
         "tensor 'a' appears twice in the header"},
        {"{" E("a", "F32", "[1]", 0, 4) "," E("a", "F32", "[1]", 0, 4) "}", 4,
         "tensor 'a' appears twice in the header"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a': key \"dtype\" appears twice"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "metadata key 'k' appears twice"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice"},
        /* entries and metadata of the wrong kind */
        {"{\"a\":[1]}", 0, "tensor 'a': entry is an array, not an object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a' has no \"data_offsets\""},
        {"{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k' is a number, not a string"},
        {"{\"__metadata__\":{\"k\":null}}", 0, "metadata 'k' is null, not a string"},
        {"{\"__metadata__\":[\"k\"]}", 0, "\"__metadata__\" is an array, not an object"},
    };
#undef E
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *img = make_image(cases[i].header, NULL, cases[i].data_len, &len);
        nb_clear_error();
        nb_safetensors *st = nb_safetensors_parse(img, len);
        if (st)
            fail_msg("case %zu (%s) parsed", i, cases[i].header);
        if (nb_last_status() != NB_ERR_FORMAT || !strstr(nb_last_error(), cases[i].needle))
            fail_msg("case %zu: error '%s' does not mention '%s'", i, nb_last_error(),
                     cases[i].needle);
        free(img);
    }
}

/* Deep nesting, long names and many entries are handled without crashing or quadratic time. */
static void test_header_extremes(void **state)
{
    (void)state;
    /* 5000 nested arrays: cJSON stops at its nesting limit, we report bad JSON */
    size_t depth = 5000;
    char *h = malloc(2 * depth + 16);
    assert_non_null(h);
    size_t at = 0;
    at += (size_t)sprintf(h, "{\"a\":");
    memset(h + at, '[', depth);
    at += depth;
    memset(h + at, ']', depth);
    at += depth;
    h[at++] = '}';
    h[at] = '\0';
    size_t len;
    unsigned char *img = make_image(h, NULL, 0, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "not valid JSON");
    free(img);
    free(h);

    /* a 1000-byte name is shown cut short in the message */
    char name[1001];
    memset(name, 'n', 1000);
    name[1000] = '\0';
    char *hb = malloc(1200);
    assert_non_null(hb);
    snprintf(hb, 1200, "{\"%s\":{\"dtype\":\"Q\",\"shape\":[],\"data_offsets\":[0,1]}}", name);
    img = make_image(hb, NULL, 1, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "nnnnnnnn...': unsupported dtype 'Q'");
    assert_true(strlen(nb_last_error()) < 300);
    free(img);
    free(hb);

    /* a long name of two-byte characters is cut between characters, not inside one */
    char wide[601];
    for (int i = 0; i < 300; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[600] = '\0';
    hb = malloc(800);
    assert_non_null(hb);
    snprintf(hb, 800, "{\"x%s\":{\"dtype\":\"Q\",\"shape\":[],\"data_offsets\":[0,1]}}", wide);
    img = make_image(hb, NULL, 1, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "\xc3\xa9...': unsupported dtype 'Q'");
    free(img);
    free(hb);

    /* 20000 empty tensors, the last one repeating the first name: found by sorting */
    enum { N = 20000 };
    char *big = malloc((size_t)N * 64 + 16);
    assert_non_null(big);
    at = 0;
    big[at++] = '{';
    for (int i = 0; i < N; i++)
        at += (size_t)sprintf(big + at,
                              "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],"
                              "\"data_offsets\":[0,0]}",
                              i ? "," : "", i == N - 1 ? 0 : i);
    big[at++] = '}';
    big[at] = '\0';
    img = make_image(big, NULL, 0, &len);
    assert_parse_fails(img, len, NB_ERR_FORMAT, "tensor 't0' appears twice");
    free(img);
    /* and without the repeat it loads, every name found */
    at = 0;
    big[at++] = '{';
    for (int i = 0; i < N; i++)
        at += (size_t)sprintf(big + at,
                              "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],"
                              "\"data_offsets\":[0,0]}",
                              i ? "," : "", i);
    big[at++] = '}';
    big[at] = '\0';
    img = make_image(big, NULL, 0, &len);
    nb_safetensors *st = nb_safetensors_parse(img, len);
    assert_non_null(st);
    assert_int_equal(nb_safetensors_count(st), N);
    for (int i = 0; i < N; i += 997) {
        char nm[16];
        snprintf(nm, sizeof nm, "t%d", i);
        assert_non_null(nb_safetensors_get(st, nm));
        assert_string_equal(nb_safetensors_name(st, i), nm); /* ties keep header order */
    }
    nb_safetensors_free(st);
    free(img);
    free(big);
}

/* Random byte flips of a valid file: every parse either fails with a message or returns a
 * consistent result (run under ASan/UBSan this is a small fuzzer). */
static void test_mutation_smoke(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = sample_image(&len);
    unsigned char *m = malloc(len);
    assert_non_null(m);
    uint64_t x = 0x9e3779b97f4a7c15u;
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, img, len);
        int flips = 1 + (int)(x % 3);
        for (int f = 0; f < flips; f++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % len);
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            static const unsigned char pick[] = {'{', '}', '[', ']', ',',  ':',  '"', '0',
                                                 '9', '-', ' ', 0,   0xff, '\\', 'e', '.'};
            m[at] = (x & 1) ? (unsigned char)(x >> 8) : pick[(x >> 8) % sizeof pick];
        }
        nb_clear_error();
        nb_safetensors *st = nb_safetensors_parse(m, len);
        if (!st) {
            failed++;
            assert_int_not_equal(nb_last_status(), NB_OK);
            assert_true(strncmp(nb_last_error(), "safetensors: ", 13) == 0);
            continue;
        }
        ok++;
        /* the tensors tile the data buffer exactly */
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--)
            hlen = hlen << 8 | m[i];
        size_t total = 0;
        for (int i = 0; i < nb_safetensors_count(st); i++) {
            const nb_tensor *t = nb_safetensors_get(st, nb_safetensors_name(st, i));
            assert_non_null(t);
            total += tensor_bytes(t);
        }
        assert_int_equal(total, len - 8 - hlen);
        nb_safetensors_free(st);
    }
    assert_true(failed > 0);
    assert_true(ok > 0); /* flips in the data or the padding leave the file valid */
    free(m);
    free(img);
}

/* ---- files and the atomic save ---------------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    char p[256];
    tmp_path(p, sizeof p, "missing.safetensors");
    nb_clear_error();
    assert_null(nb_safetensors_load(p));
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), p));
    nb_clear_error();
    assert_null(nb_safetensors_load(tmp_dir));
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "not a regular file"));
    nb_clear_error();
    assert_null(nb_safetensors_load(NULL));
    assert_int_equal(nb_last_status(), NB_ERR_ARG);
    /* a format error names the file and the tensor */
    size_t len;
    unsigned char *img = make_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,"
                                    "8]}}",
                                    NULL, 8, &len);
    tmp_path(p, sizeof p, "bad.safetensors");
    write_all(p, img, len);
    nb_clear_error();
    assert_null(nb_safetensors_load(p));
    char want[512];
    snprintf(want, sizeof want,
             "safetensors: '%s': tensor 'w': shape [3] needs 12 bytes, data_offsets span 8", p);
    assert_non_null(strstr(nb_last_error(), want));
    free(img);
}

static void test_lookups(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = sample_image(&len);
    nb_safetensors *st = nb_safetensors_parse(img, len);
    assert_non_null(st);
    assert_int_equal(nb_safetensors_count(st), 4);
    assert_null(nb_safetensors_get(st, "absent"));
    assert_null(nb_safetensors_get(st, "layer"));
    assert_null(nb_safetensors_get(st, NULL));
    assert_non_null(nb_safetensors_get(st, "layer.w"));
    assert_non_null(nb_safetensors_get(st, "none"));
    assert_null(nb_safetensors_name(st, -1));
    assert_null(nb_safetensors_name(st, 4));
    assert_null(nb_safetensors_meta(st, "absent"));
    assert_string_equal(nb_safetensors_meta(st, "epoch"), "3");
    assert_null(nb_safetensors_meta_key(st, 2));
    assert_null(nb_safetensors_meta_key(st, -1));
    nb_safetensors_free(st);
    assert_int_equal(nb_safetensors_count(NULL), 0);
    assert_int_equal(nb_safetensors_meta_count(NULL), 0);
    assert_null(nb_safetensors_get(NULL, "x"));
    assert_null(nb_safetensors_meta(NULL, "x"));
    nb_safetensors_free(NULL);
    free(img);
}

static void test_save_overwrites(void **state)
{
    (void)state;
    char p[256];
    tmp_path(p, sizeof p, "over.safetensors");
    nb_tensor *a = nb_tensor_full(NB_F32, 1, (int64_t[]){4}, 1.0);
    nb_tensor *b = nb_tensor_full(NB_F64, 2, (int64_t[]){2, 2}, 2.0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(nb_safetensors_save(p, (nb_named_tensor[]){{"a", a}}, 1, NULL), NB_OK);
    assert_int_equal(nb_safetensors_save(p, (nb_named_tensor[]){{"b", b}}, 1, NULL), NB_OK);
    assert_int_equal(count_entries(tmp_dir), 1);
    nb_safetensors *st = nb_safetensors_load(p);
    assert_non_null(st);
    assert_int_equal(nb_safetensors_count(st), 1);
    assert_null(nb_safetensors_get(st, "a"));
    assert_same_tensor(nb_safetensors_get(st, "b"), b);
    nb_safetensors_free(st);

    /* a path without a directory part is written to the current directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmp_dir), 0);
    nb_status s = nb_safetensors_save("rel.safetensors", (nb_named_tensor[]){{"a", a}}, 1, NULL);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(s, NB_OK);
    tmp_path(p, sizeof p, "rel.safetensors");
    st = nb_safetensors_load(p);
    assert_non_null(st);
    assert_same_tensor(nb_safetensors_get(st, "a"), a);
    nb_safetensors_free(st);
    assert_int_equal(count_entries(tmp_dir), 2);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* Every failing save leaves the file that was there byte for byte, and nothing else. */
static void test_save_failures_leave_nothing(void **state)
{
    (void)state;
    char p[256], dir_path[256];
    tmp_path(p, sizeof p, "keep.safetensors");
    nb_tensor *a = nb_tensor_full(NB_F32, 1, (int64_t[]){3}, 1.0);
    nb_tensor *b = nb_tensor_full(NB_I32, 0, NULL, 5);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(nb_safetensors_save(p, (nb_named_tensor[]){{"a", a}}, 1, NULL), NB_OK);
    size_t before_len;
    unsigned char *before = read_all(p, &before_len);

    /* a directory that does not exist: nothing is created */
    tmp_path(dir_path, sizeof dir_path, "no_such_dir/x.safetensors");
    nb_clear_error();
    assert_int_equal(nb_safetensors_save(dir_path, (nb_named_tensor[]){{"a", a}}, 1, NULL),
                     NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), dir_path));
    assert_false(file_exists(dir_path));

    nb_tensor bad_dims = *a;
    bad_dims.ndim = 5;
    nb_tensor bad_numel = *a;
    bad_numel.numel = 4;
    nb_tensor no_data = *a;
    no_data.data = NULL;
    nb_tensor negative = *a;
    negative.shape[0] = -3;
    const char *meta_no_value[] = {"k", NULL};
    const char *meta_dup[] = {"k", "1", "k", "2", NULL};
    const char *meta_bad_utf8[] = {"k", "\xff", NULL};
    static const struct {
        const char *what;
        nb_status status;
        const char *needle;
    } expect[] = {
        {"duplicate names", NB_ERR_ARG, "tensor name 'a' is given twice (tensors 0 and 2)"},
        {"reserved name", NB_ERR_ARG, "tensor 1 is named \"__metadata__\", which is reserved"},
        {"empty name", NB_ERR_ARG, "tensor 1 has an empty name"},
        {"NULL name", NB_ERR_ARG, "tensor 0 has a NULL name"},
        {"bad UTF-8 name", NB_ERR_ARG, "tensor 0: name 'x?' is not valid UTF-8"},
        {"NULL tensor", NB_ERR_ARG, "tensor 'a': tensor is NULL"},
        {"5 dims", NB_ERR_SHAPE, "tensor 'a': tensor has 5 dimensions, at most 4"},
        {"numel", NB_ERR_SHAPE, "tensor 'a': tensor numel 4 does not match its shape (3"},
        {"no data", NB_ERR_ARG, "tensor 'a': tensor data is NULL"},
        {"meta without value", NB_ERR_ARG, "metadata key 'k' has no value"},
        {"duplicate meta", NB_ERR_ARG, "metadata key 'k' is given twice"},
        {"bad UTF-8 meta", NB_ERR_ARG, "metadata 'k': the value is not valid UTF-8"},
        {"negative count", NB_ERR_ARG, "tensor count -1 is negative"},
        {"NULL tensors", NB_ERR_ARG, "tensors is NULL but the count is 2"},
        {"negative dim", NB_ERR_SHAPE, "tensor 'a': dimension 0 has negative size -3"},
        {"target is a directory", NB_ERR_IO, "is a directory"},
    };
    enum { NCASE = sizeof expect / sizeof expect[0] };
    for (int c = 0; c < NCASE; c++) {
        nb_named_tensor nt[3] = {{"a", a}, {"b", b}, {"c", b}};
        const char *const *meta = NULL;
        int n = 3;
        const char *target = p;
        switch (c) {
        case 0: nt[2].name = "a"; break;
        case 1: nt[1].name = "__metadata__"; break;
        case 2: nt[1].name = ""; break;
        case 3: nt[0].name = NULL; break;
        case 4: nt[0].name = "x\xc3"; break;
        case 5: nt[0].tensor = NULL; break;
        case 6: nt[0].tensor = &bad_dims; break;
        case 7: nt[0].tensor = &bad_numel; break;
        case 8: nt[0].tensor = &no_data; break;
        case 9: meta = meta_no_value; break;
        case 10: meta = meta_dup; break;
        case 11: meta = meta_bad_utf8; break;
        case 12: n = -1; break;
        case 13: n = 2; break;
        case 14: nt[0].tensor = &negative; break;
        case 15: target = dir_path; break;
        }
        if (c == 15) { /* a directory is refused before anything is written */
            tmp_path(dir_path, sizeof dir_path, "a_dir");
            assert_int_equal(mkdir(dir_path, 0700), 0);
        }
        nb_clear_error();
        nb_status s = nb_safetensors_save(target, c == 13 ? NULL : nt, n, meta);
        if (s != expect[c].status || !strstr(nb_last_error(), expect[c].needle))
            fail_msg("%s: status %d, error '%s' does not mention '%s'", expect[c].what, (int)s,
                     nb_last_error(), expect[c].needle);
        assert_non_null(strstr(nb_last_error(), target)); /* names the file */
        /* the old file is intact and no temporary file is left */
        size_t after_len;
        unsigned char *after = read_all(p, &after_len);
        assert_int_equal(after_len, before_len);
        assert_memory_equal(after, before, before_len);
        free(after);
        assert_int_equal(count_entries(tmp_dir), c == 15 ? 2 : 1);
    }
    assert_int_equal(rmdir(dir_path), 0);
    assert_int_equal(nb_safetensors_save(NULL, NULL, 0, NULL), NB_ERR_ARG);
    free(before);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_roundtrip_every_dtype, clean_each),
        cmocka_unit_test_teardown(test_roundtrip_escapes, clean_each),
        cmocka_unit_test_teardown(test_bool_bytes_are_clean, clean_each),
        cmocka_unit_test_teardown(test_reference_implementation_files, clean_each),
        cmocka_unit_test_teardown(test_hand_built_file, clean_each),
        cmocka_unit_test_teardown(test_written_bytes_follow_the_format, clean_each),
        cmocka_unit_test_teardown(test_truncated_at_every_length, clean_each),
        cmocka_unit_test_teardown(test_length_field_rejects, clean_each),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_header_extremes),
        cmocka_unit_test_teardown(test_mutation_smoke, clean_each),
        cmocka_unit_test_teardown(test_load_errors, clean_each),
        cmocka_unit_test_teardown(test_lookups, clean_each),
        cmocka_unit_test_teardown(test_save_overwrites, clean_each),
        cmocka_unit_test_teardown(test_save_failures_leave_nothing, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
