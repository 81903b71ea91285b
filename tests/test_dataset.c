/* test_dataset.c - the data layer for training a classifier: IDX (plain and gzip), MNIST
 * directories, CSV, .npy pairs, the seeded split and the batch iterator.
 *
 * Reference data: IDX images are built here byte by byte (big-endian encoders written for the
 * test, plus hand-written byte literals checked against IEEE bit patterns), gzip streams are made
 * with zlib's deflate in the test itself, and every fixture lives in a fresh mkdtemp directory.
 * The Fashion-MNIST test (skipped when /usr/share/datasets/fashion-mnist is absent) checks counts,
 * the first labels and pixel sums computed independently with Python's gzip and struct modules;
 * the class balance (6000 per class in train, 1000 in test) is the published one.
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
#include <zlib.h>

#include "nabla/dataset.h"
#include "nabla/npy.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char tmp_dir[64];

/* ---- helpers ---------------------------------------------------------------------------- */

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static void write_all(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Removes every entry of dir (files, and directories one level down). */
static void clean_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) {
            clean_dir(p);
            (void)rmdir(p);
        }
    }
    closedir(d);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nabla_test_dataset_XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    clean_dir(tmp_dir);
    return rmdir(tmp_dir);
}

static int clean_each(void **state)
{
    (void)state;
    clean_dir(tmp_dir);
    return 0;
}

/* A growable byte buffer. */
typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u8(bytes *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put_be(bytes *b, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--)
        put_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}

/* IDX header: 00 00 type ndim, then the dims as big-endian u32. */
static void put_idx_header(bytes *b, unsigned type, int ndim, const uint32_t *dims)
{
    put_u8(b, 0);
    put_u8(b, 0);
    put_u8(b, type);
    put_u8(b, (unsigned)ndim);
    for (int i = 0; i < ndim; i++)
        put_be(b, dims[i], 4);
}

/* One value in the big-endian encoding of an IDX type. */
static void put_idx_value(bytes *b, unsigned type, double v)
{
    switch (type) {
    case 0x08: put_u8(b, (unsigned)v); break;
    case 0x09: put_u8(b, (unsigned)(uint8_t)(int8_t)v); break;
    case 0x0B: put_be(b, (uint16_t)(int16_t)v, 2); break;
    case 0x0C: put_be(b, (uint32_t)(int32_t)v, 4); break;
    case 0x0D: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_be(b, u, 4);
        break;
    }
    case 0x0E: {
        uint64_t u;
        memcpy(&u, &v, 8);
        put_be(b, u, 8);
        break;
    }
    default: fail_msg("bad type %u", type);
    }
}

/* gzip (RFC 1952) of buf, made with zlib's deflate. */
static bytes gzip_of(const void *buf, size_t len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    bytes out = {0};
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    out.p = malloc(cap);
    assert_non_null(out.p);
    out.cap = cap;
    zs.next_in = (Bytef *)(uintptr_t)buf;
    zs.avail_in = (uInt)len;
    zs.next_out = out.p;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.n = cap - zs.avail_out;
    assert_int_equal(deflateEnd(&zs), Z_OK);
    return out;
}

/* Expects a NULL result with the given status and a message containing `needle`. */
#define assert_fails_with(expr, status, needle)                                                    \
    do {                                                                                           \
        nb_clear_error();                                                                          \
        nb_tensor *t_ = (expr);                                                                    \
        if (t_) {                                                                                  \
            nb_tensor_free(t_);                                                                    \
            fail_msg("unexpectedly succeeded (expected '%s')", (needle));                          \
        }                                                                                          \
        assert_int_equal(nb_last_status(), (status));                                              \
        if (!strstr(nb_last_error(), (needle)))                                                    \
            fail_msg("error '%s' does not mention '%s'", nb_last_error(), (needle));               \
    } while (0)

/* Expects a failing nb_status call with a message containing `needle`. */
#define assert_status_with(expr, status, needle)                                                   \
    do {                                                                                           \
        nb_clear_error();                                                                          \
        nb_status s_ = (expr);                                                                     \
        assert_int_equal(s_, (status));                                                            \
        assert_int_equal(nb_last_status(), (status));                                              \
        if (!strstr(nb_last_error(), (needle)))                                                    \
            fail_msg("error '%s' does not mention '%s'", nb_last_error(), (needle));               \
    } while (0)

/* ---- IDX ---------------------------------------------------------------------------------- */

typedef struct idx_case {
    unsigned type;
    nb_dtype dtype;
    int ndim;
    uint32_t dims[4];
    double values[6];
} idx_case;

static const idx_case idx_cases[] = {
    {0x08, NB_U8, 2, {2, 3}, {0, 1, 127, 128, 200, 255}},
    {0x09, NB_I32, 1, {6}, {-128, -1, 0, 1, 127, -5}},
    {0x0B, NB_I32, 3, {1, 2, 3}, {-32768, -1, 0, 1, 32767, -300}},
    {0x0C, NB_I32, 4, {2, 1, 1, 3}, {-2147483648.0, -1, 0, 1, 2147483647.0, 123456789}},
    {0x0D, NB_F32, 2, {3, 2}, {-1.5, 0, 0.1f, 3.25e10f, -0.0, 1e-30f}},
    {0x0E, NB_F64, 2, {2, 3}, {0.1, -2.5, 1e300, -1e-300, 3.141592653589793, 0}},
};

static bytes idx_image(const idx_case *c)
{
    bytes b = {0};
    put_idx_header(&b, c->type, c->ndim, c->dims);
    for (int i = 0; i < 6; i++)
        put_idx_value(&b, c->type, c->values[i]);
    return b;
}

static void assert_idx_tensor(const nb_tensor *t, const idx_case *c)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, c->dtype);
    assert_int_equal(t->ndim, c->ndim);
    for (int i = 0; i < c->ndim; i++)
        assert_int_equal(t->shape[i], c->dims[i]);
    assert_int_equal(t->numel, 6);
    for (int i = 0; i < 6; i++) {
        double got = nb_tensor_get(t, i);
        if (got != c->values[i] || signbit(got) != signbit(c->values[i]))
            fail_msg("type 0x%02x element %d: got %.17g, want %.17g", c->type, i, got,
                     c->values[i]);
    }
}

static void test_idx_roundtrip_each_type(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof idx_cases / sizeof idx_cases[0]; k++) {
        const idx_case *c = &idx_cases[k];
        bytes plain = idx_image(c);
        bytes gz = gzip_of(plain.p, plain.n);

        nb_tensor *t = nb_idx_parse(plain.p, plain.n);
        assert_idx_tensor(t, c);
        nb_tensor_free(t);
        t = nb_idx_parse(gz.p, gz.n);
        assert_idx_tensor(t, c);
        nb_tensor_free(t);

        char p1[256], p2[256];
        tmp_path(p1, sizeof p1, "case.idx");
        tmp_path(p2, sizeof p2, "case.idx.gz");
        write_all(p1, plain.p, plain.n);
        write_all(p2, gz.p, gz.n);
        t = nb_idx_load(p1);
        assert_idx_tensor(t, c);
        nb_tensor_free(t);
        t = nb_idx_load(p2);
        assert_idx_tensor(t, c);
        nb_tensor_free(t);

        /* Two gzip members back to back (gzip -c a b) inflate to the concatenation. */
        size_t half = plain.n / 2;
        bytes g1 = gzip_of(plain.p, half), g2 = gzip_of(plain.p + half, plain.n - half);
        put(&g1, g2.p, g2.n);
        t = nb_idx_parse(g1.p, g1.n);
        assert_idx_tensor(t, c);
        nb_tensor_free(t);
        free(g1.p);
        free(g2.p);
        free(plain.p);
        free(gz.p);
    }
}

/* Byte literals written by hand from the IEEE 754 / two's complement bit patterns, so the decoder
 * is not only checked against the test's own encoder. */
static void test_idx_byte_literals(void **state)
{
    (void)state;
    static const unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0,    3,    0x3F, 0x80,
                                        0, 0, 0xC0, 0, 0, 0, 0x3E, 0x20, 0,    0};
    nb_tensor *t = nb_idx_parse(f32, sizeof f32);
    assert_non_null(t);
    assert_int_equal(t->dtype, NB_F32);
    assert_true(nb_tensor_get(t, 0) == 1.0);
    assert_true(nb_tensor_get(t, 1) == -2.0);
    assert_true(nb_tensor_get(t, 2) == 0.15625);
    nb_tensor_free(t);

    static const unsigned char f64[] = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0xBF, 0xF8, 0, 0, 0, 0, 0, 0};
    t = nb_idx_parse(f64, sizeof f64);
    assert_non_null(t);
    assert_true(nb_tensor_get(t, 0) == -1.5);
    nb_tensor_free(t);

    static const unsigned char i16[] = {0, 0, 0x0B, 2,    0,    0,    0,    1,    0,
                                        0, 0, 3,    0xFF, 0xFE, 0x01, 0x00, 0x80, 0x00};
    t = nb_idx_parse(i16, sizeof i16);
    assert_non_null(t);
    assert_int_equal(t->dtype, NB_I32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 1);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(((int32_t *)t->data)[0], -2);
    assert_int_equal(((int32_t *)t->data)[1], 256);
    assert_int_equal(((int32_t *)t->data)[2], -32768);
    nb_tensor_free(t);

    static const unsigned char i32[] = {0,    0, 0x0C, 1, 0,    0,    0,    2,
                                        0x80, 0, 0,    1, 0x00, 0x01, 0x00, 0x00};
    t = nb_idx_parse(i32, sizeof i32);
    assert_non_null(t);
    assert_int_equal(((int32_t *)t->data)[0], -2147483647);
    assert_int_equal(((int32_t *)t->data)[1], 65536);
    nb_tensor_free(t);

    /* An empty array (a zero dimension) is a valid, empty tensor. */
    static const unsigned char empty[] = {0, 0, 0x08, 2, 0, 0, 0, 0, 0, 0, 0, 5};
    t = nb_idx_parse(empty, sizeof empty);
    assert_non_null(t);
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->shape[1], 5);
    nb_tensor_free(t);
}

static double large_value(unsigned type, int64_t i)
{
    switch (type) {
    case 0x09: return (double)(i % 256 - 128);
    case 0x0B: return (double)(i * 7 % 65536 - 32768);
    case 0x0C: return (double)(i * 123457 - 500000000);
    default: return (double)i * 0.25 - 1000.0;
    }
}

/* Plain files are decoded piece by piece (16 KiB at a time, elements may straddle two pieces);
 * files of several pieces, for each multi-byte type, must match the in-memory parse and the
 * values put in. */
static void test_idx_large_plain_file(void **state)
{
    (void)state;
    static const unsigned types[] = {0x09, 0x0B, 0x0C, 0x0D, 0x0E};
    for (size_t k = 0; k < 2 * sizeof types / sizeof types[0]; k++) {
        /* 9107 elements: 9 to 73 KiB, not a multiple of 16 KiB. 1 or 3 dimensions, so the 20
         * bytes read with the header hold 12 or 4 bytes of data: half an f64. */
        int ndim = k % 2 ? 3 : 1;
        uint32_t dims[3] = {ndim == 3 ? 7 : 9107, 1301, 1};
        int64_t n = 9107;
        bytes b = {0};
        put_idx_header(&b, types[k / 2], ndim, dims);
        for (int64_t i = 0; i < n; i++) {
            put_idx_value(&b, types[k / 2], large_value(types[k / 2], i));
        }
        char path[256];
        tmp_path(path, sizeof path, "large.idx");
        write_all(path, b.p, b.n);
        nb_tensor *t = nb_idx_load(path), *u = nb_idx_parse(b.p, b.n);
        assert_non_null(t);
        assert_non_null(u);
        assert_int_equal(t->numel, n);
        assert_int_equal(t->ndim, ndim);
        assert_int_equal(t->shape[0], dims[0]);
        for (int64_t i = 0; i < n; i++) {
            double want = large_value(types[k / 2], i);
            if (nb_tensor_get(t, i) != want || nb_tensor_get(u, i) != want)
                fail_msg("type 0x%02x element %lld: file %g, memory %g, want %g", types[k / 2],
                         (long long)i, nb_tensor_get(t, i), nb_tensor_get(u, i), want);
        }
        nb_tensor_free(t);
        nb_tensor_free(u);
        free(b.p);
    }
}

static void test_idx_truncated_every_length(void **state)
{
    (void)state;
    const idx_case *c = &idx_cases[2]; /* i16 [1, 2, 3]: 16-byte header, 12 bytes of data */
    bytes plain = idx_image(c);
    bytes gz = gzip_of(plain.p, plain.n);
    char path[256], msg[1024];
    tmp_path(path, sizeof path, "cut.idx");
    for (size_t n = 0; n < plain.n; n++) {
        assert_fails_with(nb_idx_parse(plain.p, n), NB_ERR_FORMAT, "truncated");
        write_all(path, plain.p, n);
        assert_fails_with(nb_idx_load(path), NB_ERR_FORMAT, "truncated");
        assert_non_null(strstr(nb_last_error(), path));
    }
    for (size_t n = 0; n < gz.n; n++) {
        nb_clear_error();
        nb_tensor *t = nb_idx_parse(gz.p, n);
        if (t)
            fail_msg("a gzip stream cut to %zu of %zu bytes parsed", n, gz.n);
        assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        assert_true(strncmp(msg, "idx: ", 5) == 0);
        write_all(path, gz.p, n);
        assert_null(nb_idx_load(path));
        assert_non_null(strstr(nb_last_error(), path));
    }
    /* One byte too many is as wrong as one too few. */
    put_u8(&plain, 0);
    assert_fails_with(nb_idx_parse(plain.p, plain.n), NB_ERR_FORMAT, "1 unexpected trailing");
    bytes gz2 = gzip_of(plain.p, plain.n);
    assert_fails_with(nb_idx_parse(gz2.p, gz2.n), NB_ERR_FORMAT, "more than the 28 bytes");
    free(plain.p);
    free(gz.p);
    free(gz2.p);
}

static void test_idx_bad_headers(void **state)
{
    (void)state;
    static const struct {
        unsigned char b[12];
        const char *needle;
    } bad[] = {
        {{1, 0, 8, 1, 0, 0, 0, 1, 7}, "bad magic 01 00 08 01"},
        {{0, 1, 8, 1, 0, 0, 0, 1, 7}, "bad magic 00 01 08 01"},
        {{0, 0, 0x0A, 1, 0, 0, 0, 1, 7}, "unsupported IDX type 0x0a"},
        {{0, 0, 0x07, 1, 0, 0, 0, 1, 7}, "unsupported IDX type 0x07"},
        {{0, 0, 0x08, 0, 7}, "0 dimensions"},
        {{0, 0, 0x08, 5, 0, 0, 0, 1, 0, 0, 0, 1}, "5 dimensions"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = bad[i].b[3] == 5 ? 12 : 9;
        assert_fails_with(nb_idx_parse(bad[i].b, n), NB_ERR_FORMAT, bad[i].needle);
        bytes gz = gzip_of(bad[i].b, n); /* the same inside gzip */
        assert_fails_with(nb_idx_parse(gz.p, gz.n), NB_ERR_FORMAT, bad[i].needle);
        free(gz.p);
    }
    /* A text file is not IDX, plain or "gzip" with a broken stream. */
    assert_fails_with(nb_idx_parse("hello", 5), NB_ERR_FORMAT, "bad magic 68 65 6c 6c");
    static const unsigned char fake_gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
    assert_fails_with(nb_idx_parse(fake_gz, sizeof fake_gz), NB_ERR_FORMAT, "corrupt gzip");
    assert_fails_with(nb_idx_parse(NULL, 3), NB_ERR_ARG, "NULL");

    char path[256];
    tmp_path(path, sizeof path, "missing.idx");
    assert_fails_with(nb_idx_load(path), NB_ERR_IO, path);
    assert_fails_with(nb_idx_load(tmp_dir), NB_ERR_IO, "not a regular file");
    assert_fails_with(nb_idx_load(NULL), NB_ERR_ARG, "NULL");
}

static void test_idx_dims_larger_than_data(void **state)
{
    (void)state;
    /* MNIST's header with 10 bytes of pixels: rejected by size, before any allocation. */
    bytes b = {0};
    put_idx_header(&b, 0x08, 3, (const uint32_t[]){60000, 28, 28});
    for (int i = 0; i < 10; i++)
        put_u8(&b, (unsigned)i);
    assert_fails_with(nb_idx_parse(b.p, b.n), NB_ERR_FORMAT,
                      "dimensions [60000, 28, 28] need 47040000 bytes of data (47040000 x 1), "
                      "the data has 10");
    char path[256];
    tmp_path(path, sizeof path, "liar.idx");
    write_all(path, b.p, b.n);
    assert_fails_with(nb_idx_load(path), NB_ERR_FORMAT, "the file has 10");
    bytes gz = gzip_of(b.p, b.n);
    /* gzip: 42 bytes cannot inflate to 47 MB (deflate's 1032:1), refused on the header alone */
    assert_fails_with(nb_idx_parse(gz.p, gz.n), NB_ERR_FORMAT, "imply 47040016 bytes, but");
    assert_non_null(strstr(nb_last_error(), "bytes of gzip data inflate to at most"));
    free(gz.p);
    free(b.p);

    /* Dimensions whose byte count overflows 64 bits. */
    b = (bytes){0};
    put_idx_header(&b, 0x0E, 4, (const uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu, 2});
    assert_fails_with(nb_idx_parse(b.p, b.n), NB_ERR_FORMAT, "too large");
    free(b.p);

    /* gzip whose header claims more than the 2 GiB cap: refused as soon as the header inflates. */
    b = (bytes){0};
    put_idx_header(&b, 0x08, 2, (const uint32_t[]){65536, 65536});
    put_u8(&b, 1);
    gz = gzip_of(b.p, b.n);
    assert_fails_with(nb_idx_parse(gz.p, gz.n), NB_ERR_FORMAT,
                      "dimensions [65536, 65536] imply 4294967308 bytes, over the 2147483648-byte "
                      "limit");
    free(gz.p);
    free(b.p);
}

static void test_idx_gzip_bomb(void **state)
{
    (void)state;
    /* The header says 10 bytes of data, the stream inflates to 10 + 16 MiB: stopped at the
     * header's 18 bytes, whatever follows. */
    size_t extra = (size_t)16 << 20;
    bytes b = {0};
    put_idx_header(&b, 0x08, 1, (const uint32_t[]){10});
    unsigned char *zeros = calloc(1, extra + 10);
    assert_non_null(zeros);
    put(&b, zeros, extra + 10);
    free(zeros);
    bytes gz = gzip_of(b.p, b.n);
    assert_true(gz.n < b.n / 100); /* a real bomb: tiny on disk */
    assert_fails_with(nb_idx_parse(gz.p, gz.n), NB_ERR_FORMAT,
                      "inflates to more than the 18 bytes its IDX header implies");
    char path[256];
    tmp_path(path, sizeof path, "bomb.idx.gz");
    write_all(path, gz.p, gz.n);
    assert_fails_with(nb_idx_load(path), NB_ERR_FORMAT, "inflates to more than the 18 bytes");
    free(gz.p);

    /* The same trick in a second gzip member. */
    bytes ok = {0};
    put_idx_header(&ok, 0x08, 1, (const uint32_t[]){10});
    for (int i = 0; i < 10; i++)
        put_u8(&ok, (unsigned)i);
    bytes g1 = gzip_of(ok.p, ok.n), g2 = gzip_of(b.p + 18, 4096);
    put(&g1, g2.p, g2.n);
    assert_fails_with(nb_idx_parse(g1.p, g1.n), NB_ERR_FORMAT, "inflates to more than the 18");
    free(g1.p);
    free(g2.p);

    /* Trailing garbage after the stream, and a corrupted checksum. */
    bytes g3 = gzip_of(ok.p, ok.n);
    put(&g3, "junk", 4);
    assert_fails_with(nb_idx_parse(g3.p, g3.n), NB_ERR_FORMAT,
                      "4 bytes of trailing data after the gzip stream");
    g3.n -= 4;
    g3.p[g3.n - 8] ^= 0x01; /* the CRC32 */
    assert_fails_with(nb_idx_parse(g3.p, g3.n), NB_ERR_FORMAT, "corrupt gzip data");
    free(g3.p);
    free(ok.p);
    free(b.p);
}

/* Random mutations of valid images must either parse or fail with a message (run under ASan). */
static void test_idx_mutations(void **state)
{
    (void)state;
    bytes plain = idx_image(&idx_cases[4]);
    bytes gz = gzip_of(plain.p, plain.n);
    nb_rng r;
    nb_rng_seed(&r, 12345);
    for (int it = 0; it < 4000; it++) {
        bytes *src = it % 2 ? &gz : &plain;
        unsigned char *m = malloc(src->n);
        assert_non_null(m);
        memcpy(m, src->p, src->n);
        int flips = 1 + (int)nb_rng_below(&r, 3);
        for (int f = 0; f < flips; f++)
            m[nb_rng_below(&r, src->n)] ^= (unsigned char)(1u << nb_rng_below(&r, 8));
        size_t n = src->n - (size_t)nb_rng_below(&r, 3);
        nb_clear_error();
        nb_tensor *t = nb_idx_parse(m, n);
        if (t)
            nb_tensor_free(t);
        else
            assert_true(strlen(nb_last_error()) > 0);
        free(m);
    }
    free(plain.p);
    free(gz.p);
}

/* ---- MNIST directories ---------------------------------------------------------------------- */

static unsigned pixel(int img, int r, int c)
{
    return (unsigned)(img * 7 + r * 3 + c * 5) % 256;
}

static bytes mnist_images(int n, int rows, int cols)
{
    bytes b = {0};
    put_idx_header(&b, 0x08, 3, (const uint32_t[]){(uint32_t)n, (uint32_t)rows, (uint32_t)cols});
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                put_u8(&b, pixel(i, r, c));
    return b;
}

static bytes mnist_labels(int n, const unsigned *labels)
{
    bytes b = {0};
    put_idx_header(&b, 0x08, 1, (const uint32_t[]){(uint32_t)n});
    for (int i = 0; i < n; i++)
        put_u8(&b, labels[i]);
    return b;
}

/* Writes b to dir/name, gzipped when gz. */
static void write_idx(const char *dir, const char *name, bytes b, bool gz)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    if (gz) {
        bytes z = gzip_of(b.p, b.n);
        write_all(path, z.p, z.n);
        free(z.p);
    } else {
        write_all(path, b.p, b.n);
    }
    free(b.p);
}

static void test_mnist_fixture(void **state)
{
    (void)state;
    char dir[256];
    tmp_path(dir, sizeof dir, "mnistlike");
    assert_int_equal(mkdir(dir, 0700), 0);
    static const unsigned tr_labels[3] = {0, 9, 4}, te_labels[2] = {7, 1};
    write_idx(dir, "train-images-idx3-ubyte", mnist_images(3, 28, 28), true);
    write_idx(dir, "train-labels-idx1-ubyte", mnist_labels(3, tr_labels), false);
    write_idx(dir, "t10k-images-idx3-ubyte", mnist_images(2, 28, 28), false);
    write_idx(dir, "t10k-labels-idx1-ubyte", mnist_labels(2, te_labels), true);
    /* A plain labels file beside the .gz: the .gz wins. */
    static const unsigned wrong[2] = {3, 3};
    write_idx(dir, "t10k-labels-idx1-ubyte", mnist_labels(2, wrong), false);

    for (int s = 0; s < 2; s++) {
        nb_dataset ds;
        int n = s == 0 ? 3 : 2;
        const unsigned *labels = s == 0 ? tr_labels : te_labels;
        assert_int_equal(nb_dataset_load_mnist(dir, s == 0 ? "train" : "test", &ds), NB_OK);
        assert_int_equal(ds.X->dtype, NB_F32);
        assert_int_equal(ds.X->ndim, 2);
        assert_int_equal(ds.X->shape[0], n);
        assert_int_equal(ds.X->shape[1], 784);
        assert_int_equal(ds.y->dtype, NB_I32);
        assert_int_equal(ds.y->shape[0], n);
        assert_int_equal(ds.n_classes, 10);
        assert_true(ds.input_scale == 1.0 / 255.0);
        assert_true(ds.input_shift == 0.0);
        assert_string_equal(ds.name, s == 0 ? "mnistlike-train" : "mnistlike-test");
        const float *x = ds.X->data;
        for (int i = 0; i < n; i++) {
            assert_int_equal(((int32_t *)ds.y->data)[i], labels[i]);
            for (int r = 0; r < 28; r++)
                for (int c = 0; c < 28; c++) {
                    float want = (float)pixel(i, r, c) / 255.0f;
                    if (x[i * 784 + r * 28 + c] != want)
                        fail_msg("image %d pixel (%d, %d): %g != %g", i, r, c,
                                 (double)x[i * 784 + r * 28 + c], (double)want);
                }
        }
        nb_dataset_free(&ds);
        assert_null(ds.X);
        assert_null(ds.y);
    }
    nb_dataset_free(NULL);
}

static void test_mnist_errors(void **state)
{
    (void)state;
    char dir[256], img[512], lab[512];
    tmp_path(dir, sizeof dir, "bad");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", dir);
    static const unsigned l3[3] = {1, 2, 3}, l2[2] = {1, 2}, l10[3] = {1, 10, 3};
    nb_dataset ds;

    /* Nothing there: the message names the files it looked for. */
    assert_status_with(nb_dataset_load_mnist(dir, "train", &ds), NB_ERR_IO, img);
    assert_null(ds.X);

    write_idx(dir, "train-images-idx3-ubyte", mnist_images(3, 28, 28), false);
    write_idx(dir, "train-labels-idx1-ubyte", mnist_labels(2, l2), false);
    assert_status_with(nb_dataset_load_mnist(dir, "train", &ds), NB_ERR_FORMAT, "has 3 images but");
    assert_non_null(strstr(nb_last_error(), lab));
    assert_null(ds.X);

    write_idx(dir, "train-labels-idx1-ubyte", mnist_labels(3, l10), false);
    assert_status_with(nb_dataset_load_mnist(dir, "train", &ds), NB_ERR_FORMAT,
                       "label 10 at row 1 is not below 10");
    assert_non_null(strstr(nb_last_error(), lab));

    write_idx(dir, "train-labels-idx1-ubyte", mnist_labels(3, l3), false);
    write_idx(dir, "train-images-idx3-ubyte", mnist_images(3, 27, 28), false);
    assert_status_with(nb_dataset_load_mnist(dir, "train", &ds), NB_ERR_FORMAT,
                       "u8 [3, 27, 28]; expected u8 [N, 28, 28]");
    assert_non_null(strstr(nb_last_error(), img));

    /* A corrupt file: the IDX message, prefixed with the file. */
    bytes cut = mnist_images(3, 28, 28);
    write_all(img, cut.p, cut.n - 1);
    free(cut.p);
    assert_status_with(nb_dataset_load_mnist(dir, "train", &ds), NB_ERR_FORMAT, "truncated");
    assert_non_null(strstr(nb_last_error(), img));

    assert_status_with(nb_dataset_load_mnist(dir, "val", &ds), NB_ERR_ARG, "'val'");
    assert_status_with(nb_dataset_load_mnist(NULL, "train", &ds), NB_ERR_ARG, "NULL");
    assert_status_with(nb_dataset_load_mnist(dir, "train", NULL), NB_ERR_ARG, "NULL");
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(FASHION_DIR "/train-images-idx3-ubyte.gz", &sb) != 0)
        skip();
    static const struct {
        const char *split;
        int64_t n, per_class, first_label[10];
        uint64_t pixel_sum, first_image_sum, last_image_sum;
        unsigned centre;
    } want[2] = {
        {"train", 60000, 6000, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 3431114169u, 76247, 16684, 217},
        {"test", 10000, 1000, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 573469082u, 33456, 24390, 110},
    };
    for (int s = 0; s < 2; s++) {
        nb_dataset ds;
        assert_int_equal(nb_dataset_load_mnist(FASHION_DIR, want[s].split, &ds), NB_OK);
        int64_t N = want[s].n;
        assert_int_equal(ds.X->shape[0], N);
        assert_int_equal(ds.X->shape[1], 784);
        assert_int_equal(ds.n_classes, 10);
        assert_string_equal(ds.name, s == 0 ? "fashion-mnist-train" : "fashion-mnist-test");
        const int32_t *y = ds.y->data;
        for (int i = 0; i < 10; i++)
            assert_int_equal(y[i], want[s].first_label[i]);
        int64_t counts[10] = {0};
        for (int64_t i = 0; i < N; i++)
            counts[y[i]]++;
        for (int k = 0; k < 10; k++)
            assert_int_equal(counts[k], want[s].per_class);
        /* Pixels back from x * 255 (exact: x is the f32 nearest to p / 255). */
        const float *x = ds.X->data;
        uint64_t sum = 0, first = 0, last = 0;
        for (int64_t i = 0; i < N * 784; i++) {
            long p = lrintf(x[i] * 255.0f);
            assert_true(p >= 0 && p <= 255);
            assert_true(x[i] == (float)p / 255.0f);
            sum += (uint64_t)p;
            if (i < 784)
                first += (uint64_t)p;
            if (i >= (N - 1) * 784)
                last += (uint64_t)p;
        }
        assert_int_equal(sum, want[s].pixel_sum);
        assert_int_equal(first, want[s].first_image_sum);
        assert_int_equal(last, want[s].last_image_sum);
        assert_int_equal(lrintf(x[14 * 28 + 14] * 255.0f), want[s].centre);
        nb_dataset_free(&ds);
    }
}

/* ---- CSV --------------------------------------------------------------------------------------
 */

static void assert_floats(const nb_tensor *t, const float *want, int64_t n)
{
    assert_int_equal(t->dtype, NB_F32);
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++)
        if (((const float *)t->data)[i] != want[i])
            fail_msg("element %lld: %g != %g", (long long)i, (double)((const float *)t->data)[i],
                     (double)want[i]);
}

static void assert_labels(const nb_tensor *t, const int32_t *want, int64_t n)
{
    assert_int_equal(t->dtype, NB_I32);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(((const int32_t *)t->data)[i], want[i]);
}

static nb_status parse_csv_str(const char *s, int label_col, bool header, nb_dataset *out)
{
    return nb_dataset_parse_csv(s, strlen(s), label_col, header, out);
}

static void test_csv_happy(void **state)
{
    (void)state;
    nb_dataset ds;
    /* Header, spaces, CRLF, label last, blank trailing lines (one with spaces). */
    const char *a = "f1,f2,label\r\n1.5, 2 ,0\r\n-3e2,\t4,2\r\n\r\n  \n\n";
    assert_int_equal(parse_csv_str(a, -1, true, &ds), NB_OK);
    assert_int_equal(ds.X->ndim, 2);
    assert_int_equal(ds.X->shape[0], 2);
    assert_int_equal(ds.X->shape[1], 2);
    assert_floats(ds.X, (const float[]){1.5f, 2, -300, 4}, 4);
    assert_labels(ds.y, (const int32_t[]){0, 2}, 2);
    assert_int_equal(ds.n_classes, 3);
    assert_true(ds.input_scale == 1.0 && ds.input_shift == 0.0);
    nb_dataset_free(&ds);

    /* Label first, no header, no final newline, a label written "2.0". */
    const char *b = "1,0.5,0.25\n0,1,2\n2.0,-1,1e-3";
    assert_int_equal(parse_csv_str(b, 0, false, &ds), NB_OK);
    assert_floats(ds.X, (const float[]){0.5f, 0.25f, 1, 2, -1, 1e-3f}, 6);
    assert_labels(ds.y, (const int32_t[]){1, 0, 2}, 3);
    assert_int_equal(ds.n_classes, 3);
    nb_dataset_free(&ds);

    /* Label in the middle; the same text with \n and with \r\n gives the same set. */
    const char *c1 = "0.1,4,0.2\n0.3,0,0.4\n", *c2 = "0.1,4,0.2\r\n0.3,0,0.4\r\n";
    nb_dataset d2;
    assert_int_equal(parse_csv_str(c1, 1, false, &ds), NB_OK);
    assert_int_equal(parse_csv_str(c2, 1, false, &d2), NB_OK);
    assert_floats(ds.X, (const float[]){0.1f, 0.2f, 0.3f, 0.4f}, 4);
    assert_labels(ds.y, (const int32_t[]){4, 0}, 2);
    assert_int_equal(ds.n_classes, 5);
    assert_memory_equal(ds.X->data, d2.X->data, 4 * sizeof(float));
    assert_memory_equal(ds.y->data, d2.y->data, 2 * sizeof(int32_t));
    nb_dataset_free(&ds);
    nb_dataset_free(&d2);

    /* From a file: the set is named after it. */
    char path[256];
    tmp_path(path, sizeof path, "iris_small.csv");
    write_all(path, a, strlen(a));
    assert_int_equal(nb_dataset_load_csv(path, -1, true, &ds), NB_OK);
    assert_floats(ds.X, (const float[]){1.5f, 2, -300, 4}, 4);
    assert_string_equal(ds.name, "iris_small");
    nb_dataset_free(&ds);
}

static void test_csv_errors(void **state)
{
    (void)state;
    nb_dataset ds;
    static const struct {
        const char *text;
        int label_col;
        bool header;
        nb_status st;
        const char *needle;
    } bad[] = {
        {"1,2,abc\n", 0, false, NB_ERR_FORMAT, "line 1, column 3: 'abc' is not a number"},
        {"y,a,b\n0,1,2\n0,1,2\n0,1,2\n0,1,2\n0,1,2\n0,1,abc\n0,1,2\n", 0, true, NB_ERR_FORMAT,
         "line 7, column 3: 'abc' is not a number"},
        {"a,b,c,d,e\n1,2,3,4,0\n1,2,3,4,0\n1,2,3,4,0\n1,2,3,4,0\n1,2,3,4,0\n1,2,3,4,0\n"
         "1,2,3,4,0\n1,2,3,0\n",
         -1, true, NB_ERR_FORMAT, "line 9 has 4 fields, expected 5"},
        {"0,x1,3\n", 0, false, NB_ERR_FORMAT, "line 1, column 2: 'x1' is not a number"},
        {"0,1 2,3\n", 0, false, NB_ERR_FORMAT, "line 1, column 2: '1 2' is not a number"},
        {"0,,3\n", 0, false, NB_ERR_FORMAT, "line 1, column 2: empty feature field"},
        {"1,2,\n", -1, false, NB_ERR_FORMAT, "line 1, column 3: empty label field"},
        {"1,2,-1\n", -1, false, NB_ERR_FORMAT,
         "line 1, column 3: label '-1' is not a non-negative integer"},
        {"1,2,1.5\n", -1, false, NB_ERR_FORMAT, "label '1.5' is not a non-negative integer"},
        {"1,2,1e9\n", -1, false, NB_ERR_FORMAT, "label '1e9' is not below the limit"},
        {"1,nan,0\n", -1, false, NB_ERR_FORMAT, "line 1, column 2: 'nan' is not a finite number"},
        {"1,1e999,0\n", -1, false, NB_ERR_FORMAT, "'1e999' is not a finite number"},
        {"1,-inf,0\n", -1, false, NB_ERR_FORMAT, "'-inf' is not a finite number"},
        {"1,1e300,0\n", -1, false, NB_ERR_FORMAT, "'1e300' is out of the f32 range"},
        {"1,2,0\n\n1,2,0\n", -1, false, NB_ERR_FORMAT, "line 2 is blank"},
        {"\n1,2,0\n", -1, false, NB_ERR_FORMAT, "line 1 is blank"},
        {"", -1, false, NB_ERR_FORMAT, "no data rows"},
        {"\n\r\n", -1, false, NB_ERR_FORMAT, "no data rows"},
        {"a,b,c\n", -1, true, NB_ERR_FORMAT, "no data rows"},
        {"1\n2\n", -1, false, NB_ERR_FORMAT, "line 1 has 1 field"},
        {"1,2,0\n1,2\n", -1, false, NB_ERR_FORMAT, "line 2 has 2 fields, expected 3"},
        {"1,2,0\n", 3, false, NB_ERR_ARG, "label column 3 is out of range for 3 columns"},
        {"1,2,0\n", -2, false, NB_ERR_ARG, "label column -2 is out of range"},
        {"1,\"2\",0\n", -1, false, NB_ERR_FORMAT, "'\"2\"' is not a number"},
        {"1,2\r3,0\n", -1, false, NB_ERR_FORMAT, "'2?3' is not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_clear_error();
        nb_status st = parse_csv_str(bad[i].text, bad[i].label_col, bad[i].header, &ds);
        if (st != bad[i].st || !strstr(nb_last_error(), bad[i].needle) ||
            strncmp(nb_last_error(), "csv: ", 5) != 0)
            fail_msg("case %zu: status %d, error '%s' (want %d, '%s')", i, (int)st, nb_last_error(),
                     (int)bad[i].st, bad[i].needle);
        assert_null(ds.X);
        assert_null(ds.y);
    }
    /* A field too long to be a number, and an embedded NUL byte. */
    char longf[400];
    memset(longf, '1', sizeof longf);
    memcpy(longf, "0,", 2);
    memcpy(longf + sizeof longf - 3, ",0\n", 3);
    assert_status_with(nb_dataset_parse_csv(longf, sizeof longf, -1, false, &ds), NB_ERR_FORMAT,
                       "characters, at most 127");
    assert_status_with(nb_dataset_parse_csv("1,2\0003,0\n", 8, -1, false, &ds), NB_ERR_FORMAT,
                       "'2?3' is not a number");
    assert_status_with(nb_dataset_parse_csv(NULL, 4, -1, false, &ds), NB_ERR_ARG, "NULL");

    /* Files: the path is in the message. */
    char path[256];
    tmp_path(path, sizeof path, "bad.csv");
    write_all(path, "1,2,0\nx,2,0\n", 12);
    assert_status_with(nb_dataset_load_csv(path, -1, false, &ds), NB_ERR_FORMAT,
                       "line 2, column 1: 'x' is not a number");
    assert_non_null(strstr(nb_last_error(), path));
    assert_null(ds.X);
    tmp_path(path, sizeof path, "missing.csv");
    assert_status_with(nb_dataset_load_csv(path, -1, false, &ds), NB_ERR_IO, path);
    assert_status_with(nb_dataset_load_csv(tmp_dir, -1, false, &ds), NB_ERR_IO,
                       "not a regular file");
}

/* Random mutations of a valid CSV: parse or fail with a line number (run under ASan). */
static void test_csv_mutations(void **state)
{
    (void)state;
    const char *src = "f1,f2,y\r\n1.5,2,0\r\n-3e2,4,2\r\n7,8,1\n";
    size_t n = strlen(src);
    static const char alphabet[] = "0123456789,.-+e \r\n\tx";
    nb_rng r;
    nb_rng_seed(&r, 99);
    for (int it = 0; it < 4000; it++) {
        char m[64];
        memcpy(m, src, n);
        int edits = 1 + (int)nb_rng_below(&r, 3);
        for (int e = 0; e < edits; e++)
            m[nb_rng_below(&r, n)] = alphabet[nb_rng_below(&r, sizeof alphabet - 1)];
        size_t len = n - (size_t)nb_rng_below(&r, 4);
        nb_dataset ds;
        nb_clear_error();
        if (nb_dataset_parse_csv(m, len, -1, it % 2 == 0, &ds) == NB_OK) {
            assert_true(ds.X->shape[0] >= 1 && ds.X->shape[1] >= 1);
            for (int64_t i = 0; i < ds.y->numel; i++)
                assert_true(((int32_t *)ds.y->data)[i] < ds.n_classes);
            nb_dataset_free(&ds);
        } else {
            assert_true(strlen(nb_last_error()) > 5);
            assert_null(ds.X);
        }
    }
}

/* ---- .npy pairs and raw tensors ---------------------------------------------------------------
 */

static void save_npy(const char *name, nb_dtype t, int ndim, const int64_t *shape,
                     const double *values, char *path, size_t cap)
{
    nb_tensor *x = nb_tensor_empty(t, ndim, shape);
    assert_non_null(x);
    for (int64_t i = 0; i < x->numel; i++)
        nb_tensor_set(x, i, values[i]);
    tmp_path(path, cap, name);
    assert_int_equal(nb_npy_save(path, x), NB_OK);
    nb_tensor_free(x);
}

static void test_npy_pairs(void **state)
{
    (void)state;
    char xp[256], yp[256], s[1024];
    nb_dataset ds;
    static const double xv[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5};
    static const double yv[5] = {2, 0, 1, 2, 4};

    save_npy("feat.npy", NB_F32, 2, (const int64_t[]){4, 3}, xv, xp, sizeof xp);
    save_npy("lab.npy", NB_I32, 1, (const int64_t[]){4}, yv, yp, sizeof yp);
    assert_int_equal(nb_dataset_load_npy(xp, yp, &ds), NB_OK);
    assert_int_equal(ds.X->shape[0], 4);
    assert_int_equal(ds.X->shape[1], 3);
    assert_floats(ds.X, (const float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5f}, 12);
    assert_labels(ds.y, (const int32_t[]){2, 0, 1, 2}, 4);
    assert_int_equal(ds.n_classes, 3);
    assert_true(ds.input_scale == 1.0);
    assert_string_equal(ds.name, "feat");
    nb_dataset_free(&ds);

    /* u8 images [N, H, W] with u8 labels: flattened and scaled by 1/255. */
    static const double px[12] = {0, 255, 51, 102, 1, 2, 3, 4, 254, 128, 127, 10};
    save_npy("img.npy", NB_U8, 3, (const int64_t[]){3, 2, 2}, px, xp, sizeof xp);
    save_npy("labu8.npy", NB_U8, 1, (const int64_t[]){3}, yv, yp, sizeof yp);
    assert_int_equal(nb_dataset_load_npy(xp, yp, &ds), NB_OK);
    assert_int_equal(ds.X->shape[0], 3);
    assert_int_equal(ds.X->shape[1], 4);
    float want[12];
    for (int i = 0; i < 12; i++)
        want[i] = (float)px[i] / 255.0f;
    assert_floats(ds.X, want, 12);
    assert_true(ds.input_scale == 1.0 / 255.0);
    nb_dataset_free(&ds);

    /* f64 features with i64 labels. */
    save_npy("f64.npy", NB_F64, 2, (const int64_t[]){2, 2}, (const double[]){0.1, -2, 3, 1e-3}, xp,
             sizeof xp);
    save_npy("i64.npy", NB_I64, 1, (const int64_t[]){2}, (const double[]){5, 0}, yp, sizeof yp);
    assert_int_equal(nb_dataset_load_npy(xp, yp, &ds), NB_OK);
    assert_floats(ds.X, (const float[]){0.1f, -2, 3, 1e-3f}, 4);
    assert_int_equal(ds.n_classes, 6);
    nb_dataset_free(&ds);

    /* Row counts differ: both files and both shapes are named. */
    save_npy("x43.npy", NB_F32, 2, (const int64_t[]){4, 3}, xv, xp, sizeof xp);
    save_npy("y5.npy", NB_I32, 1, (const int64_t[]){5}, yv, yp, sizeof yp);
    snprintf(s, sizeof s, "X '%s' has shape [4, 3] but y '%s' has shape [5]", xp, yp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_SHAPE, s);
    assert_null(ds.X);

    save_npy("y41.npy", NB_I32, 2, (const int64_t[]){4, 1}, yv, yp, sizeof yp);
    snprintf(s, sizeof s, "y '%s' has shape [4, 1]; expected [N]", yp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_SHAPE, s);

    save_npy("y4.npy", NB_I32, 1, (const int64_t[]){4}, yv, yp, sizeof yp);
    save_npy("x1d.npy", NB_F32, 1, (const int64_t[]){4}, xv, xp, sizeof xp);
    snprintf(s, sizeof s, "X '%s' has shape [4]; expected [N, D]", xp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_SHAPE, s);

    save_npy("xi32.npy", NB_I32, 2, (const int64_t[]){4, 3}, xv, xp, sizeof xp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_DTYPE, "has dtype i32");
    assert_non_null(strstr(nb_last_error(), xp));

    save_npy("x43.npy", NB_F32, 2, (const int64_t[]){4, 3}, xv, xp, sizeof xp);
    save_npy("yf.npy", NB_F32, 1, (const int64_t[]){4}, yv, yp, sizeof yp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_DTYPE, "expected integer labels");

    save_npy("yneg.npy", NB_I32, 1, (const int64_t[]){4}, (const double[]){0, 1, -1, 0}, yp,
             sizeof yp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_RANGE,
                       "label -1 at row 2 is negative");
    assert_non_null(strstr(nb_last_error(), yp));

    save_npy("y4.npy", NB_I32, 1, (const int64_t[]){4}, yv, yp, sizeof yp);
    double xnan[12];
    memcpy(xnan, xv, sizeof xnan);
    xnan[5] = NAN;
    save_npy("xnan.npy", NB_F32, 2, (const int64_t[]){4, 3}, xnan, xp, sizeof xp);
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_RANGE,
                       "non-finite value nan at row 1, column 2");

    tmp_path(xp, sizeof xp, "nope.npy");
    assert_status_with(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_IO, xp);
    assert_null(ds.X);
}

static void test_from_tensors(void **state)
{
    (void)state;
    nb_dataset ds;
    nb_tensor *X = nb_tensor_empty(NB_F64, 3, (const int64_t[]){2, 1, 3});
    nb_tensor *y = nb_tensor_empty(NB_I64, 1, (const int64_t[]){2});
    assert_non_null(X);
    assert_non_null(y);
    for (int i = 0; i < 6; i++)
        nb_tensor_set(X, i, i * 0.5);
    nb_tensor_set(y, 0, 1);
    nb_tensor_set(y, 1, 0);
    assert_int_equal(nb_dataset_from_tensors(X, y, 4, &ds), NB_OK);
    assert_int_equal(ds.X->shape[1], 3);
    assert_int_equal(ds.n_classes, 4); /* as given, not max + 1 */
    /* A copy: changing the source afterwards changes nothing. */
    nb_tensor_set(X, 0, 99);
    nb_tensor_set(y, 0, 3);
    assert_floats(ds.X, (const float[]){0, 0.5f, 1, 1.5f, 2, 2.5f}, 6);
    assert_labels(ds.y, (const int32_t[]){1, 0}, 2);
    nb_dataset_free(&ds);

    assert_int_equal(nb_dataset_from_tensors(X, y, 0, &ds), NB_OK);
    assert_int_equal(ds.n_classes, 4); /* inferred: 3 + 1 */
    nb_dataset_free(&ds);
    assert_status_with(nb_dataset_from_tensors(X, y, 3, &ds), NB_ERR_RANGE,
                       "label 3 at row 0 is out of range for 3 classes");
    assert_status_with(nb_dataset_from_tensors(X, y, -1, &ds), NB_ERR_ARG, "n_classes -1");
    assert_status_with(nb_dataset_from_tensors(NULL, y, 0, &ds), NB_ERR_ARG, "X is NULL");
    assert_status_with(nb_dataset_from_tensors(X, y, 0, NULL), NB_ERR_ARG, "NULL");

    /* A struct whose numel does not match its shape is refused, not trusted. */
    nb_tensor lie = *X;
    lie.numel = 1000;
    assert_status_with(nb_dataset_from_tensors(&lie, y, 0, &ds), NB_ERR_SHAPE, "numel 1000");

    /* Empty sets and f64 values beyond f32. */
    nb_tensor *E = nb_tensor_empty(NB_F32, 2, (const int64_t[]){0, 3});
    nb_tensor *ey = nb_tensor_empty(NB_I32, 1, (const int64_t[]){0});
    assert_status_with(nb_dataset_from_tensors(E, ey, 2, &ds), NB_ERR_SHAPE, "at least one row");
    nb_tensor_set(X, 0, 1e300);
    assert_status_with(nb_dataset_from_tensors(X, y, 0, &ds), NB_ERR_RANGE,
                       "out-of-f32-range value 1e+300 at row 0, column 0");
    nb_tensor_free(E);
    nb_tensor_free(ey);
    nb_tensor_free(X);
    nb_tensor_free(y);
}

/* ---- split ------------------------------------------------------------------------------------
 */

/* N rows: X[i] = (i, -i), y[i] = i % 5, so every row says which one it is. */
static void make_ids(int64_t N, nb_dataset *ds)
{
    nb_tensor *X = nb_tensor_empty(NB_F32, 2, (const int64_t[]){N, 2});
    nb_tensor *y = nb_tensor_empty(NB_I32, 1, (const int64_t[]){N});
    assert_non_null(X);
    assert_non_null(y);
    for (int64_t i = 0; i < N; i++) {
        ((float *)X->data)[2 * i] = (float)i;
        ((float *)X->data)[2 * i + 1] = (float)-i;
        ((int32_t *)y->data)[i] = (int32_t)(i % 5);
    }
    assert_int_equal(nb_dataset_from_tensors(X, y, 0, ds), NB_OK);
    snprintf(ds->name, sizeof ds->name, "ids");
    ds->input_scale = 0.5;
    ds->input_shift = -1;
    nb_tensor_free(X);
    nb_tensor_free(y);
}

static int64_t row_id(const nb_dataset *ds, int64_t r)
{
    const float *x = ds->X->data;
    assert_true(x[2 * r + 1] == -x[2 * r]);
    assert_int_equal(((int32_t *)ds->y->data)[r], (int64_t)x[2 * r] % 5);
    return (int64_t)x[2 * r];
}

static void test_split(void **state)
{
    (void)state;
    nb_dataset all, tr, va, tr2, va2;
    make_ids(50, &all);
    assert_int_equal(nb_dataset_split(&all, 0.2, 7, &tr, &va), NB_OK);
    assert_int_equal(va.X->shape[0], 10);
    assert_int_equal(tr.X->shape[0], 40);
    assert_int_equal(va.n_classes, 5);
    assert_int_equal(tr.n_classes, 5);
    assert_true(tr.input_scale == 0.5 && tr.input_shift == -1 && va.input_scale == 0.5);
    assert_string_equal(tr.name, "ids");

    /* Every row lands in exactly one part. */
    int seen[50] = {0};
    for (int64_t i = 0; i < 10; i++)
        seen[row_id(&va, i)]++;
    for (int64_t i = 0; i < 40; i++)
        seen[row_id(&tr, i)]++;
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);

    /* The documented order: Fisher-Yates with nb_rng seeded `seed`; val = the first 10 rows of
     * the permutation, train the other 40, both in permutation order. Several seeds, so a
     * skipped swap cannot hide behind one lucky draw. */
    for (uint64_t seed = 7; seed < 23; seed++) {
        int64_t perm[50];
        nb_rng r;
        nb_rng_seed(&r, seed);
        for (int64_t i = 0; i < 50; i++)
            perm[i] = i;
        for (int64_t i = 49; i > 0; i--) {
            int64_t j = (int64_t)nb_rng_below(&r, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        assert_int_equal(nb_dataset_split(&all, 0.2, seed, &tr2, &va2), NB_OK);
        for (int64_t i = 0; i < 10; i++)
            assert_int_equal(row_id(&va2, i), perm[i]);
        for (int64_t i = 0; i < 40; i++)
            assert_int_equal(row_id(&tr2, i), perm[10 + i]);
        nb_dataset_free(&tr2);
        nb_dataset_free(&va2);
    }

    /* Same seed: the same split. Another seed: another split. */
    assert_int_equal(nb_dataset_split(&all, 0.2, 7, &tr2, &va2), NB_OK);
    assert_memory_equal(va.X->data, va2.X->data, 10 * 2 * sizeof(float));
    assert_memory_equal(tr.y->data, tr2.y->data, 40 * sizeof(int32_t));
    nb_dataset_free(&tr2);
    nb_dataset_free(&va2);
    assert_int_equal(nb_dataset_split(&all, 0.2, 8, &tr2, &va2), NB_OK);
    assert_int_equal(va2.X->shape[0], 10);
    assert_memory_not_equal(va.X->data, va2.X->data, 10 * 2 * sizeof(float));
    nb_dataset_free(&tr2);
    nb_dataset_free(&va2);
    nb_dataset_free(&tr);
    nb_dataset_free(&va);

    /* Rounding: 10 * 0.25 = 2.5 -> 3 rows of validation. */
    nb_dataset ten;
    make_ids(10, &ten);
    assert_int_equal(nb_dataset_split(&ten, 0.25, 1, &tr, &va), NB_OK);
    assert_int_equal(va.X->shape[0], 3);
    assert_int_equal(tr.X->shape[0], 7);
    nb_dataset_free(&tr);
    nb_dataset_free(&va);
    nb_dataset_free(&ten);

    /* Bad fractions and empty parts. */
    assert_status_with(nb_dataset_split(&all, 0.0, 1, &tr, &va), NB_ERR_ARG, "val_fraction 0");
    assert_status_with(nb_dataset_split(&all, 1.0, 1, &tr, &va), NB_ERR_ARG, "val_fraction 1");
    assert_status_with(nb_dataset_split(&all, NAN, 1, &tr, &va), NB_ERR_ARG, "val_fraction nan");
    assert_status_with(nb_dataset_split(&all, 0.005, 1, &tr, &va), NB_ERR_ARG,
                       "gives 0 validation and 50 training rows");
    assert_status_with(nb_dataset_split(&all, 0.995, 1, &tr, &va), NB_ERR_ARG,
                       "gives 50 validation and 0 training rows");
    assert_null(tr.X);
    assert_null(va.X);
    assert_status_with(nb_dataset_split(&all, 0.5, 1, &tr, &tr), NB_ERR_ARG, "distinct");
    assert_status_with(nb_dataset_split(NULL, 0.5, 1, &tr, &va), NB_ERR_ARG, "NULL");
    nb_dataset_free(&all);
}

/* ---- batcher ----------------------------------------------------------------------------------
 */

/* Runs one epoch, writing the row ids visited into ids (cap N) and the batch sizes into sizes.
 * Returns the number of rows. */
static int64_t run_epoch(nb_batcher *b, nb_tensor *xb, nb_tensor *yb, int64_t *ids, int64_t *sizes,
                         int64_t *n_batches)
{
    int64_t rows = 0, nb = 0;
    int64_t cap = b->ds->X->shape[0];
    nb_clear_error();
    while (nb_batcher_next(b, xb, yb)) {
        int64_t n = xb->shape[0];
        assert_int_equal(yb->shape[0], n);
        assert_int_equal(xb->numel, n * 2);
        assert_int_equal(yb->numel, n);
        const float *x = xb->data;
        for (int64_t i = 0; i < n; i++) {
            assert_true(x[2 * i + 1] == -x[2 * i]);
            assert_int_equal(((int32_t *)yb->data)[i], (int64_t)x[2 * i] % 5);
            assert_true(rows < cap);
            ids[rows++] = (int64_t)x[2 * i];
        }
        if (sizes)
            sizes[nb] = n;
        nb++;
    }
    assert_int_equal(nb_last_status(), NB_OK); /* the end of an epoch is not an error */
    if (n_batches)
        *n_batches = nb;
    return rows;
}

static void assert_covers(const int64_t *ids, int64_t N)
{
    int seen[64] = {0};
    for (int64_t i = 0; i < N; i++) {
        assert_true(ids[i] >= 0 && ids[i] < N);
        seen[ids[i]]++;
    }
    for (int64_t i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
}

/* Gives xb / yb back their full `rows` (the iterator shrinks them for a short last batch). */
static void restore_rows(nb_tensor *xb, nb_tensor *yb, int64_t rows)
{
    xb->shape[0] = rows;
    xb->numel = rows * xb->shape[1];
    yb->shape[0] = rows;
    yb->numel = rows;
}

static void test_batcher_epochs(void **state)
{
    (void)state;
    nb_dataset ds;
    make_ids(10, &ds);
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, (const int64_t[]){4, 2});
    nb_tensor *yb = nb_tensor_zeros(NB_I32, 1, (const int64_t[]){4});
    nb_batcher b;
    assert_int_equal(nb_batcher_init(&b, &ds, 4, true, 42), NB_OK);
    int64_t ids[3][10], sizes[8], nbat;
    for (int e = 0; e < 3; e++) {
        assert_int_equal(b.epoch, e);
        assert_int_equal(run_epoch(&b, xb, yb, ids[e], sizes, &nbat), 10);
        assert_int_equal(nbat, 3);
        assert_int_equal(sizes[0], 4);
        assert_int_equal(sizes[1], 4);
        assert_int_equal(sizes[2], 2); /* the short last batch */
        assert_covers(ids[e], 10);
    }
    assert_int_equal(b.epoch, 3);
    /* A new permutation every epoch (and not the identity). */
    assert_memory_not_equal(ids[0], ids[1], sizeof ids[0]);
    assert_memory_not_equal(ids[1], ids[2], sizeof ids[0]);
    int64_t identity[10];
    for (int i = 0; i < 10; i++)
        identity[i] = i;
    assert_memory_not_equal(ids[0], identity, sizeof identity);

    /* Same seed: the same orders, epoch after epoch. Another seed: another order. */
    nb_batcher b2;
    int64_t again[10];
    assert_int_equal(nb_batcher_init(&b2, &ds, 4, true, 42), NB_OK);
    for (int e = 0; e < 3; e++) {
        run_epoch(&b2, xb, yb, again, NULL, NULL);
        assert_memory_equal(again, ids[e], sizeof again);
    }
    nb_batcher_free(&b2);
    assert_null(b2.perm);
    assert_int_equal(nb_batcher_init(&b2, &ds, 4, true, 43), NB_OK);
    run_epoch(&b2, xb, yb, again, NULL, NULL);
    assert_memory_not_equal(again, ids[0], sizeof again);
    nb_batcher_free(&b2);

    /* No shuffle: row order, every epoch. Another batch size, so xb gets its 4 rows back. */
    restore_rows(xb, yb, 4);
    assert_int_equal(nb_batcher_init(&b2, &ds, 3, false, 42), NB_OK);
    for (int e = 0; e < 2; e++) {
        assert_int_equal(run_epoch(&b2, xb, yb, again, sizes, &nbat), 10);
        assert_int_equal(nbat, 4);
        assert_int_equal(sizes[3], 1);
        assert_memory_equal(again, identity, sizeof identity);
    }
    nb_batcher_free(&b2);

    /* A batch larger than the set: one short batch. */
    nb_tensor *xbig = nb_tensor_zeros(NB_F32, 2, (const int64_t[]){16, 2});
    nb_tensor *ybig = nb_tensor_zeros(NB_I32, 1, (const int64_t[]){16});
    assert_int_equal(nb_batcher_init(&b2, &ds, 16, true, 5), NB_OK);
    assert_int_equal(run_epoch(&b2, xbig, ybig, again, sizes, &nbat), 10);
    assert_int_equal(nbat, 1);
    assert_covers(again, 10);
    nb_batcher_free(&b2);
    nb_tensor_free(xbig);
    nb_tensor_free(ybig);

    nb_batcher_free(&b);
    nb_batcher_free(NULL);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_dataset_free(&ds);
}

static void test_batcher_resume(void **state)
{
    (void)state;
    nb_dataset ds;
    make_ids(23, &ds);
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, (const int64_t[]){5, 2});
    nb_tensor *yb = nb_tensor_zeros(NB_I32, 1, (const int64_t[]){5});
    nb_batcher a, b;
    assert_int_equal(nb_batcher_init(&a, &ds, 5, true, 2024), NB_OK);
    int64_t ids[64];
    run_epoch(&a, xb, yb, ids, NULL, NULL);
    assert_true(nb_batcher_next(&a, xb, yb));
    assert_true(nb_batcher_next(&a, xb, yb));
    /* Save the position, then record the next 12 batches (crossing two epoch ends). */
    int64_t epoch = a.epoch, pos = a.pos;
    nb_rng saved = a.rng;
    int64_t want[12][5], want_n[12];
    for (int i = 0; i < 12; i++) {
        if (!nb_batcher_next(&a, xb, yb)) {
            want_n[i] = 0;
            continue;
        }
        want_n[i] = xb->shape[0];
        for (int64_t k = 0; k < want_n[i]; k++)
            want[i][k] = (int64_t)((float *)xb->data)[2 * k];
    }
    /* A fresh iterator with another seed, moved to the saved position, does the same. */
    restore_rows(xb, yb, 5);
    assert_int_equal(nb_batcher_init(&b, &ds, 5, true, 1), NB_OK);
    assert_int_equal(nb_batcher_seek(&b, epoch, pos, &saved), NB_OK);
    for (int i = 0; i < 12; i++) {
        bool got = nb_batcher_next(&b, xb, yb);
        assert_int_equal(got, want_n[i] > 0);
        if (!got)
            continue;
        assert_int_equal(xb->shape[0], want_n[i]);
        for (int64_t k = 0; k < want_n[i]; k++)
            assert_int_equal((int64_t)((float *)xb->data)[2 * k], want[i][k]);
    }
    assert_int_equal(b.epoch, a.epoch);
    assert_status_with(nb_batcher_seek(&b, 0, 24, &saved), NB_ERR_ARG, "pos 24");
    assert_status_with(nb_batcher_seek(&b, -1, 0, &saved), NB_ERR_ARG, "epoch -1");
    nb_batcher_free(&a);
    nb_batcher_free(&b);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_dataset_free(&ds);
}

static void test_batcher_errors(void **state)
{
    (void)state;
    nb_dataset ds;
    make_ids(10, &ds);
    nb_batcher b;
    assert_status_with(nb_batcher_init(&b, &ds, 0, true, 1), NB_ERR_ARG, "batch size 0");
    assert_null(b.perm);
    assert_status_with(nb_batcher_init(&b, NULL, 4, true, 1), NB_ERR_ARG, "NULL");
    nb_dataset wrong = ds;
    nb_tensor *X64 = nb_tensor_zeros(NB_F64, 2, (const int64_t[]){10, 2});
    wrong.X = X64;
    assert_status_with(nb_batcher_init(&b, &wrong, 4, true, 1), NB_ERR_SHAPE, "expected f32");
    nb_tensor_free(X64);

    assert_int_equal(nb_batcher_init(&b, &ds, 4, true, 1), NB_OK);
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, (const int64_t[]){4, 2});
    nb_tensor *yb = nb_tensor_zeros(NB_I32, 1, (const int64_t[]){4});
    nb_tensor *x3 = nb_tensor_zeros(NB_F32, 2, (const int64_t[]){4, 3});
    nb_tensor *small = nb_tensor_zeros(NB_F32, 2, (const int64_t[]){2, 2});
    nb_tensor *yf = nb_tensor_zeros(NB_F32, 1, (const int64_t[]){4});
    nb_clear_error();
    assert_false(nb_batcher_next(&b, x3, yb));
    assert_non_null(strstr(nb_last_error(), "expected f32 [4, 2]"));
    assert_false(nb_batcher_next(&b, small, yb));
    assert_non_null(strstr(nb_last_error(), "xb has room for 2 rows"));
    assert_false(nb_batcher_next(&b, xb, yf));
    assert_non_null(strstr(nb_last_error(), "yb is f32"));
    assert_false(nb_batcher_next(&b, NULL, yb));
    assert_false(nb_batcher_next(NULL, xb, yb));
    /* Nothing moved: the first batch is still the first batch of epoch 0. */
    assert_int_equal(b.pos, 0);
    assert_int_equal(b.epoch, 0);
    int64_t ids[10];
    assert_int_equal(run_epoch(&b, xb, yb, ids, NULL, NULL), 10);
    assert_covers(ids, 10);
    nb_batcher_free(&b);
    assert_false(nb_batcher_next(&b, xb, yb)); /* freed: refused, not a crash */
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_tensor_free(x3);
    nb_tensor_free(small);
    nb_tensor_free(yf);
    nb_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idx_roundtrip_each_type, clean_each),
        cmocka_unit_test(test_idx_byte_literals),
        cmocka_unit_test_teardown(test_idx_large_plain_file, clean_each),
        cmocka_unit_test_teardown(test_idx_truncated_every_length, clean_each),
        cmocka_unit_test_teardown(test_idx_bad_headers, clean_each),
        cmocka_unit_test_teardown(test_idx_dims_larger_than_data, clean_each),
        cmocka_unit_test_teardown(test_idx_gzip_bomb, clean_each),
        cmocka_unit_test(test_idx_mutations),
        cmocka_unit_test_teardown(test_mnist_fixture, clean_each),
        cmocka_unit_test_teardown(test_mnist_errors, clean_each),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test_teardown(test_csv_happy, clean_each),
        cmocka_unit_test_teardown(test_csv_errors, clean_each),
        cmocka_unit_test(test_csv_mutations),
        cmocka_unit_test_teardown(test_npy_pairs, clean_each),
        cmocka_unit_test(test_from_tensors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_batcher_epochs),
        cmocka_unit_test(test_batcher_resume),
        cmocka_unit_test(test_batcher_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
