/* test_readers.c - every reader terminates, fast, on hostile inputs (issue 10, "Readers"):
 * FIFOs, devices and directories are refused at open without blocking; an IDX gzip bomb is
 * refused on the cheap header checks before anything is inflated; CSV header detection is
 * explicit and a bad value on line 1 is an error, not a dropped "header"; a BOM and old-Mac line
 * ends are read; a sparse huge label cannot make millions of classes; a tensor larger than the
 * machine's memory fails up front with its size. Every test runs under an alarm, so a reader
 * that blocks fails the test instead of hanging the suite. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "nabla.h"

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_readers_XXXXXX"
#include "test_files.h"

/* SIGALRM's default action ends the process: a reader that blocks fails the suite. */
#define WATCHDOG_SECONDS 20

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The call failed with `st` and a message holding every needle (NULL-terminated). */
static void expect_error(nb_status got, nb_status want, ...)
{
    const char *msg = nb_last_error();
    if (got != want)
        fail_msg("status %d, want %d; message '%s'", (int)got, (int)want, msg);
    va_list ap;
    va_start(ap, want);
    for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
        if (!strstr(msg, n))
            fail_msg("message '%s' lacks '%s'", msg, n);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------- */
/* Non-regular files                                                                          */

static void expect_refused(const char *path, const char *kind)
{
    nb_dataset ds;
    double t0 = now_s();

    nb_clear_error();
    assert_null(nb_npy_load(path));
    expect_error(nb_last_status(), NB_ERR_IO, "npy: '", path, kind, "not a regular file", NULL);

    nb_clear_error();
    assert_null(nb_idx_load(path));
    expect_error(nb_last_status(), NB_ERR_IO, "idx: '", path, kind, NULL);

    expect_error(nb_dataset_load_csv(path, -1, NB_CSV_HEADER_AUTO, &ds), NB_ERR_IO, "csv: '", path,
                 kind, NULL);
    assert_null(ds.X);

    nb_clear_error();
    assert_null(nb_safetensors_load(path));
    expect_error(nb_last_status(), NB_ERR_IO, "safetensors: '", path, kind, NULL);

    nb_model_info info;
    nb_clear_error();
    assert_null(nb_model_load(path, &info, NULL)); /* checkpoints (--resume, --model) */
    assert_non_null(strstr(nb_last_error(), kind));

    expect_error(nb_dataset_load_npy(path, path, &ds), NB_ERR_IO, kind, NULL);
    assert_true(now_s() - t0 < 5.0);
}

static void test_fifo_refused(void **state)
{
    (void)state;
    alarm(WATCHDOG_SECONDS);
    char fifo[256];
    tmp_path(fifo, sizeof fifo, "in.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_refused(fifo, "is a FIFO (named pipe)");
    alarm(0);
}

static void test_devices_and_directories_refused(void **state)
{
    (void)state;
    alarm(WATCHDOG_SECONDS);
    expect_refused("/dev/zero", "is a character device");
    expect_refused("/dev/null", "is a character device");
    expect_refused(tmp_dir, "is a directory");
    /* A missing file still says why. */
    char missing[256];
    tmp_path(missing, sizeof missing, "missing.npy");
    nb_clear_error();
    assert_null(nb_npy_load(missing));
    expect_error(nb_last_status(), NB_ERR_IO, "npy: cannot open '", missing,
                 "No such file or directory", NULL);
    alarm(0);
}

/* Regular files still load through the new open (a small .npy and CSV round trip). */
static void test_regular_files_still_load(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "x.npy");
    int64_t sh[2] = {2, 3};
    nb_tensor *x = nb_tensor_zeros(NB_F32, 2, sh);
    assert_non_null(x);
    ((float *)x->data)[4] = 7.5f;
    assert_int_equal(nb_npy_save(path, x), NB_OK);
    nb_tensor *y = nb_npy_load(path);
    assert_non_null(y);
    assert_true(((float *)y->data)[4] == 7.5f);
    nb_tensor_free(x);
    nb_tensor_free(y);
}

/* ---------------------------------------------------------------------------------------- */
/* IDX gzip bomb                                                                              */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Raw-deflates `len` bytes at level 9, ending with `flush`; appends the output to f. */
static void deflate_piece(z_stream *zs, const unsigned char *in, size_t len, int flush, FILE *f,
                          unsigned char **piece, size_t *piece_len)
{
    static unsigned char out[1 << 16];
    zs->next_in = (unsigned char *)(uintptr_t)in;
    zs->avail_in = (uInt)len;
    size_t total = 0;
    do {
        zs->next_out = out;
        zs->avail_out = sizeof out;
        int rc = deflate(zs, flush);
        assert_true(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
        size_t n = sizeof out - zs->avail_out;
        if (piece) {
            *piece = realloc(*piece, total + n);
            assert_non_null(*piece);
            memcpy(*piece + total, out, n);
        }
        total += n;
        if (f)
            assert_int_equal(fwrite(out, 1, n, f), n);
    } while (zs->avail_out == 0);
    if (piece_len)
        *piece_len = total;
}

/* A real gzip bomb: an IDX u8 [n, 28, 28] file of zeros, deflated at level 9. The zeros are
 * deflated once per 1000 images after a full flush (no reference across it), and that piece is
 * repeated, so writing 2.7M images costs ~2 MB of output and no inflating. */
static void write_idx_bomb(const char *path, uint32_t n_images)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static const unsigned char gz[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3};
    assert_int_equal(fwrite(gz, 1, 10, f), 10);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    unsigned char hdr[16] = {0, 0, 8, 3};
    put_be32(hdr + 4, n_images);
    put_be32(hdr + 8, 28);
    put_be32(hdr + 12, 28);
    deflate_piece(&zs, hdr, sizeof hdr, Z_FULL_FLUSH, f, NULL, NULL);
    uLong crc = crc32(0L, hdr, sizeof hdr);
    const size_t per = 1000 * 28 * 28;
    unsigned char *zeros = calloc(per, 1), *piece = NULL;
    assert_non_null(zeros);
    size_t piece_len = 0;
    deflate_piece(&zs, zeros, per, Z_FULL_FLUSH, NULL, &piece, &piece_len);
    uLong crc_piece = crc32(0L, zeros, (uInt)per);
    assert_int_equal(n_images % 1000, 0);
    for (uint32_t i = 0; i < n_images / 1000; i++) {
        assert_int_equal(fwrite(piece, 1, piece_len, f), piece_len);
        crc = crc32_combine(crc, crc_piece, (z_off_t)per);
    }
    deflate_piece(&zs, NULL, 0, Z_FINISH, f, NULL, NULL);
    deflateEnd(&zs);
    unsigned char tail[8];
    put_le32(tail, (uint32_t)crc);
    put_le32(tail + 4, (uint32_t)((uint64_t)sizeof hdr + (uint64_t)n_images * 784));
    assert_int_equal(fwrite(tail, 1, 8, f), 8);
    assert_int_equal(fclose(f), 0);
    free(zeros);
    free(piece);
}

/* An ordinary gzip file of the given bytes. */
static void write_gz(const char *path, const void *buf, size_t len)
{
    gzFile g = gzopen(path, "wb9");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, buf, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

static void write_idx_labels(const char *path, uint32_t n)
{
    unsigned char *b = calloc(8 + n, 1);
    assert_non_null(b);
    b[2] = 8;
    b[3] = 1;
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (unsigned char)(i % 10);
    write_gz(path, b, 8 + n);
    free(b);
}

static void test_idx_gzip_bomb_fails_fast(void **state)
{
    (void)state;
    alarm(WATCHDOG_SECONDS);
    char dir[256], img[300], lab[300];
    tmp_path(dir, sizeof dir, "bomb");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx_bomb(img, 2700000);
    write_idx_labels(lab, 60000);
    struct stat sb;
    assert_int_equal(stat(img, &sb), 0);
    assert_true(sb.st_size < 3000000); /* ~2 MB on disk, 2.1 GB inflated */

    nb_dataset ds;
    double t0 = now_s();
    nb_status st = nb_dataset_load_mnist(dir, "train", &ds);
    double dt = now_s() - t0;
    expect_error(st, NB_ERR_FORMAT, img, "has 2700000 images but", lab, "has 60000 labels", NULL);
    if (dt > 1.0)
        fail_msg("the count mismatch took %.1f s: the images were inflated before the cheap "
                 "header check",
                 dt);
    assert_null(ds.X);
    unlink(img);
    unlink(lab);
    rmdir(dir);
    alarm(0);
}

/* A gzip file whose header claims more than deflate can expand its bytes to is refused before
 * anything is inflated. */
static void test_idx_gzip_header_beyond_deflate_bound(void **state)
{
    (void)state;
    alarm(WATCHDOG_SECONDS);
    char path[256];
    tmp_path(path, sizeof path, "liar.gz");
    unsigned char b[16 + 784] = {0, 0, 8, 3};
    put_be32(b + 4, 2700000);
    put_be32(b + 8, 28);
    put_be32(b + 12, 28);
    write_gz(path, b, sizeof b); /* one image's worth of data, a header claiming 2.7M */
    nb_clear_error();
    double t0 = now_s();
    assert_null(nb_idx_load(path));
    expect_error(nb_last_status(), NB_ERR_FORMAT, path, "[2700000, 28, 28] imply 2116800016 bytes",
                 "inflate to at most", "1032:1", NULL);
    assert_true(now_s() - t0 < 1.0);
    alarm(0);
}

/* ---------------------------------------------------------------------------------------- */
/* CSV                                                                                        */

static nb_status csv(const char *s, nb_csv_header h, nb_dataset *out)
{
    return nb_dataset_parse_csv(s, strlen(s), -1, h, out);
}

static void test_csv_line1_bad_values_are_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"O.3,1,0\n0.5,2,1\n0.1,3,0\n", "line 1, column 1: 'O.3' is not a number"},
        {"0.3,1,-1\n0.5,2,1\n", "line 1, column 3: label '-1' is not a non-negative integer"},
        {"0.3,1,1.5\n0.5,2,1\n", "line 1, column 3: label '1.5' is not a non-negative integer"},
        {"1e39,1,0\n0.5,2,1\n", "line 1, column 1: '1e39' is out of the f32 range"},
        {"nan,1,0\n0.5,2,1\n", "line 1, column 1: 'nan' is not a finite number"},
        {"0.3,inf,0\n0.5,2,1\n", "line 1, column 2: 'inf' is not a finite number"},
        /* a name next to numbers: line 1 is data, so the name is an error */
        {"x,2,label\n0.5,2,1\n", "line 1, column 1: 'x' is not a number"},
        /* a BOM is skipped, it does not hide the bad value after it */
        {"\xef\xbb\xbfO.3,1,0\n0.5,2,1\n", "line 1, column 1: 'O.3' is not a number"},
    };
    nb_dataset ds;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_clear_error();
        nb_status st = csv(bad[i].text, NB_CSV_HEADER_AUTO, &ds);
        if (st != NB_ERR_FORMAT || !strstr(nb_last_error(), bad[i].needle))
            fail_msg("case %zu: status %d, '%s' (want '%s')", i, (int)st, nb_last_error(),
                     bad[i].needle);
        assert_null(ds.X);
    }
    /* NO mode: a real header is an error on line 1 too. */
    expect_error(csv("a,b,c\n1,2,0\n", NB_CSV_HEADER_NO, &ds), NB_ERR_FORMAT,
                 "line 1, column 1: 'a' is not a number", NULL);
    expect_error(csv("1,2,0\n", (nb_csv_header)7, &ds), NB_ERR_ARG, "header mode 7", NULL);
}

static void test_csv_header_modes(void **state)
{
    (void)state;
    nb_dataset ds;
    /* AUTO: every field of line 1 a name -> a header. */
    assert_int_equal(csv("x1, x2 ,label\n1,2,0\n3,4,1\n", NB_CSV_HEADER_AUTO, &ds), NB_OK);
    assert_int_equal(ds.X->shape[0], 2);
    assert_true(((float *)ds.X->data)[0] == 1.0f);
    nb_dataset_free(&ds);
    /* AUTO: numbers on line 1 -> data, nothing dropped. */
    assert_int_equal(csv("1,2,0\n3,4,1\n", NB_CSV_HEADER_AUTO, &ds), NB_OK);
    assert_int_equal(ds.X->shape[0], 2);
    nb_dataset_free(&ds);
    /* YES: line 1 skipped whatever it holds. */
    assert_int_equal(csv("9,9,9\n3,4,1\n", NB_CSV_HEADER_YES, &ds), NB_OK);
    assert_int_equal(ds.X->shape[0], 1);
    assert_int_equal(((int32_t *)ds.y->data)[0], 1);
    nb_dataset_free(&ds);
    /* A header alone is no data. */
    expect_error(csv("a,b,c\n", NB_CSV_HEADER_AUTO, &ds), NB_ERR_FORMAT, "no data rows", NULL);
}

static void test_csv_bom_and_line_ends(void **state)
{
    (void)state;
    static const char *const good[] = {
        "\xef\xbb\xbf"
        "1,2,0\n3,4,1\n", /* BOM before the first number */
        "\xef\xbb\xbf"
        "a,b,y\n1,2,0\n3,4,1\n",   /* BOM before a header */
        "1,2,0\r3,4,1\r",          /* old Mac: CR only */
        "1,2,0\r3,4,1",            /* CR only, last line without its end */
        "1,2,0\r\n3,4,1\r\n",      /* CRLF */
        "a,b,y\r1,2,0\r3,4,1\r\r", /* CR-only with a header and a blank tail */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        nb_dataset ds;
        nb_status st = csv(good[i], NB_CSV_HEADER_AUTO, &ds);
        if (st != NB_OK)
            fail_msg("case %zu: %s", i, nb_last_error());
        assert_int_equal(ds.X->shape[0], 2);
        assert_int_equal(ds.X->shape[1], 2);
        const float *x = ds.X->data;
        assert_true(x[0] == 1.0f && x[1] == 2.0f && x[2] == 3.0f && x[3] == 4.0f);
        assert_int_equal(((int32_t *)ds.y->data)[1], 1);
        assert_int_equal(ds.n_classes, 2);
        nb_dataset_free(&ds);
    }
    /* A file: the BOM case through nb_dataset_load_csv, errors name the file. */
    char path[256];
    tmp_path(path, sizeof path, "bom.csv");
    const char *text = "\xef\xbb\xbf"
                       "1,2,0\n3,O.4,1\n";
    write_all(path, text, strlen(text));
    nb_dataset ds;
    expect_error(nb_dataset_load_csv(path, -1, NB_CSV_HEADER_AUTO, &ds), NB_ERR_FORMAT, path,
                 "line 2, column 2: 'O.4' is not a number", NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Class count                                                                                */

static void test_sparse_huge_label_refused(void **state)
{
    (void)state;
    nb_dataset ds;
    expect_error(csv("1,2,0\n1,2,1\n1,2,16777215\n1,2,0\n", NB_CSV_HEADER_AUTO, &ds), NB_ERR_RANGE,
                 "line 3, column 3: label 16777215 implies 16777216 classes but only 3 distinct "
                 "labels occur",
                 "above 1024 classes", NULL);
    assert_null(ds.X);
    /* With a header, the line number still counts it. */
    expect_error(csv("a,b,y\n1,2,0\n1,2,5000\n", NB_CSV_HEADER_AUTO, &ds), NB_ERR_RANGE,
                 "line 3, column 3: label 5000 implies 5001 classes", NULL);

    /* Dense labels are fine, however many classes: 0..1999 all present. */
    size_t cap = 2000 * 16;
    char *text = malloc(cap), *p = text;
    assert_non_null(text);
    for (int i = 0; i < 2000; i++)
        p += snprintf(p, cap - (size_t)(p - text), "0.5,%d\n", i);
    assert_int_equal(nb_dataset_parse_csv(text, (size_t)(p - text), -1, NB_CSV_HEADER_NO, &ds),
                     NB_OK);
    assert_int_equal(ds.n_classes, 2000);
    nb_dataset_free(&ds);
    free(text);
    /* Up to 1024 classes nothing is asked of the data. */
    assert_int_equal(csv("1,2,0\n1,2,1023\n", NB_CSV_HEADER_NO, &ds), NB_OK);
    assert_int_equal(ds.n_classes, 1024);
    nb_dataset_free(&ds);

    /* The same rule for tensors and .npy pairs. */
    int64_t sx[2] = {4, 2}, sy[1] = {4};
    nb_tensor *X = nb_tensor_zeros(NB_F32, 2, sx), *y = nb_tensor_zeros(NB_I64, 1, sy);
    assert_non_null(X);
    assert_non_null(y);
    ((int64_t *)y->data)[2] = 16777215;
    expect_error(nb_dataset_from_tensors(X, y, 0, &ds), NB_ERR_RANGE,
                 "label 16777215 at row 2 implies 16777216 classes but only 2 distinct", NULL);
    assert_null(ds.X);
    char xp[256], yp[256];
    tmp_path(xp, sizeof xp, "X.npy");
    tmp_path(yp, sizeof yp, "y.npy");
    assert_int_equal(nb_npy_save(xp, X), NB_OK);
    assert_int_equal(nb_npy_save(yp, y), NB_OK);
    expect_error(nb_dataset_load_npy(xp, yp, &ds), NB_ERR_RANGE, yp, "label 16777215 at row 2",
                 NULL);
    /* An explicit class count is the caller's word. */
    assert_int_equal(nb_dataset_from_tensors(X, y, 16777216, &ds), NB_OK);
    nb_dataset_free(&ds);
    nb_tensor_free(X);
    nb_tensor_free(y);
}

/* ---------------------------------------------------------------------------------------- */
/* Allocations beyond the machine                                                             */

static void test_tensor_beyond_physical_memory(void **state)
{
    (void)state;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    assert_true(pages > 0 && page > 0);
    uint64_t mem = (uint64_t)pages * (uint64_t)page;
    int64_t cols = (int64_t)(mem / 4); /* [2, mem/4] f32: twice the machine */
    int64_t sh[2] = {2, cols};
    char want[96];
    snprintf(want, sizeof want, "tensor [2, %" PRId64 "] f32 needs %.1f GB", cols,
             (double)(2 * cols * 4) / 1e9);
    nb_clear_error();
    double t0 = now_s();
    assert_null(nb_tensor_empty(NB_F32, 2, sh));
    expect_error(nb_last_status(), NB_ERR_NOMEM, want, "more than this machine's", "of memory",
                 NULL);
    nb_clear_error();
    assert_null(nb_tensor_zeros(NB_F32, 2, sh));
    expect_error(nb_last_status(), NB_ERR_NOMEM, want, NULL);
    assert_true(now_s() - t0 < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_refused),
        cmocka_unit_test(test_devices_and_directories_refused),
        cmocka_unit_test(test_regular_files_still_load),
        cmocka_unit_test(test_idx_gzip_bomb_fails_fast),
        cmocka_unit_test(test_idx_gzip_header_beyond_deflate_bound),
        cmocka_unit_test(test_csv_line1_bad_values_are_errors),
        cmocka_unit_test(test_csv_header_modes),
        cmocka_unit_test(test_csv_bom_and_line_ends),
        cmocka_unit_test(test_sparse_huge_label_refused),
        cmocka_unit_test(test_tensor_beyond_physical_memory),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
