/* test_image.c - nb_image_parse / nb_image_load (nabla/image.h) on hand-made images: PGM P5 and
 * P2 (maxval 255, 15 and 65535), PNG gray, RGB and RGBA written by libpng's own writer, the
 * stated colour-to-gray rule worked out by hand, every refusal (truncated, trailing data,
 * oversized, PPM, unknown bytes, a FIFO without blocking), and every truncation and byte change
 * of valid files parsed or refused cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla.h"

/* Parses len bytes and checks the result is h x w with the given pixels. */
static void expect_pixels(const void *buf, size_t len, int64_t h, int64_t w, const uint8_t *px)
{
    nb_tensor *t = NULL;
    nb_status st = nb_image_parse(buf, len, &t);
    if (st != NB_OK)
        fail_msg("nb_image_parse: %s", nb_last_error());
    assert_int_equal(t->dtype, NB_U8);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], h);
    assert_int_equal(t->shape[1], w);
    assert_memory_equal(t->data, px, (size_t)(h * w));
    nb_tensor_free(t);
}

/* Parsing fails with st and a message holding `needle`; *out stays NULL. */
static void expect_error(const void *buf, size_t len, nb_status want, const char *needle)
{
    nb_tensor *t = (nb_tensor *)&t; /* must be reset to NULL */
    nb_status st = nb_image_parse(buf, len, &t);
    assert_int_equal(st, want);
    assert_null(t);
    if (!strstr(nb_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", nb_last_error(), needle);
}

static void test_pgm_binary(void **state)
{
    (void)state;
    static const char p5[] = "P5\n# a comment\n3 2\n255\n\x00\x80\xff\x01\x02\x03";
    static const uint8_t want[6] = {0, 128, 255, 1, 2, 3};
    expect_pixels(p5, sizeof p5 - 1, 2, 3, want);
    /* maxval 65535: two bytes big-endian, rescaled: 0x8000 -> (32768*255+32767)/65535 = 128 */
    static const char p16[] = "P5 2 1 65535 \x80\x00\xff\xff";
    static const uint8_t want16[2] = {128, 255};
    expect_pixels(p16, sizeof p16 - 1, 1, 2, want16);
    /* one trailing newline is fine */
    static const char nl[] = "P5 1 1 255\n\x07\n";
    static const uint8_t seven[1] = {7};
    expect_pixels(nl, sizeof nl - 1, 1, 1, seven);
}

static void test_pgm_plain(void **state)
{
    (void)state;
    /* maxval 15: v' = (v * 255 + 7) / 15: 7 -> 119, 8 -> 136 */
    static const char p2[] = "P2 2 2 15\n0 15\n 7 8\n";
    static const uint8_t want[4] = {0, 255, 119, 136};
    expect_pixels(p2, sizeof p2 - 1, 2, 2, want);
}

static void test_pgm_refusals(void **state)
{
    (void)state;
    expect_error("P5 2 2 255\nabc", 14, NB_ERR_FORMAT, "need 4 bytes, the file has 3");
    expect_error("P5 1 1 255\nab", 13, NB_ERR_FORMAT, "after the image data");
    expect_error("P5 0 2 255\n", 11, NB_ERR_FORMAT, "width 0 is not in 1..16384");
    expect_error("P5 20000 2 255\n", 15, NB_ERR_FORMAT, "width 20000 is not in 1..16384");
    expect_error("P5 16384 16384 255\n", 19, NB_ERR_RANGE, "more than the limit of 67108864");
    expect_error("P5 1 1 0\n", 9, NB_ERR_FORMAT, "maxval 0");
    expect_error("P2 2 1 10 3 11", 14, NB_ERR_FORMAT, "is 11, above maxval 10");
    expect_error("P2 2 1 10 3", 11, NB_ERR_FORMAT, "end of file before the pixel value");
    expect_error("P2 2 x", 6, NB_ERR_FORMAT, "the height is not a number");
    expect_error("P6 1 1 255\nabc", 14, NB_ERR_FORMAT, "only PGM (P5, P2)");
    expect_error("GIF89a", 6, NB_ERR_FORMAT, "not a PNG or PGM");
    expect_error("", 0, NB_ERR_FORMAT, "not a PNG or PGM");
}

/* A PNG of w x h pixels in libpng's `format`, written to memory by libpng (*len bytes). */
static void *make_png(const uint8_t *px, int w, int h, png_uint_32 format, size_t *len)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = format;
    png_alloc_size_t n = 0;
    assert_true(png_image_write_to_memory(&img, NULL, &n, 0, px, 0, NULL));
    void *buf = malloc(n);
    assert_non_null(buf);
    assert_true(png_image_write_to_memory(&img, buf, &n, 0, px, 0, NULL));
    *len = n;
    return buf;
}

static void test_png(void **state)
{
    (void)state;
    size_t len;
    static const uint8_t gray[6] = {0, 7, 200, 255, 1, 128};
    void *b = make_png(gray, 3, 2, PNG_FORMAT_GRAY, &len);
    expect_pixels(b, len, 2, 3, gray);
    free(b);
    /* RGB: (299 R + 587 G + 114 B + 500) / 1000 -> red 76, green 150, blue 29, gray 90 stays 90,
     * (10, 20, 30) -> (2990 + 11740 + 3420 + 500) / 1000 = 18 */
    static const uint8_t rgb[15] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 90, 90, 90, 10, 20, 30};
    static const uint8_t want[5] = {76, 150, 29, 90, 18};
    b = make_png(rgb, 5, 1, PNG_FORMAT_RGB, &len);
    expect_pixels(b, len, 1, 5, want);
    free(b);
    /* RGBA: opaque keeps its gray, fully transparent is black */
    static const uint8_t rgba[8] = {255, 255, 255, 0, 100, 100, 100, 255};
    static const uint8_t want_a[2] = {0, 100};
    b = make_png(rgba, 2, 1, PNG_FORMAT_RGBA, &len);
    expect_pixels(b, len, 1, 2, want_a);
    /* a cut-off PNG fails with libpng's reason, never a crash */
    expect_error(b, len / 2, NB_ERR_FORMAT, "PNG:");
    free(b);
}

/* Every truncation and every single-byte change of a valid PNG and PGM either parses to an
 * image of the documented form or fails with a message; never a crash (run under ASan by
 * `make sanitize`). */
static void mutate_all(const unsigned char *good, size_t len)
{
    unsigned char *b = malloc(len);
    assert_non_null(b);
    for (size_t cut = 0; cut <= len; cut++) {
        nb_tensor *t = NULL;
        memcpy(b, good, len);
        for (int flip = 0; flip < 3; flip++) {
            size_t n = flip == 0 ? cut : len;
            if (flip > 0 && cut < len)
                b[cut] = (unsigned char)(good[cut] ^ (flip == 1 ? 0xff : 0x01));
            else if (flip > 0)
                break;
            nb_status st = nb_image_parse(b, n, &t);
            if (st == NB_OK) {
                assert_int_equal(t->dtype, NB_U8);
                assert_int_equal(t->ndim, 2);
                assert_true(t->shape[0] >= 1 && t->shape[1] >= 1);
                nb_tensor_free(t);
            } else {
                assert_null(t);
                assert_true(strncmp(nb_last_error(), "image: ", 7) == 0);
            }
        }
    }
    free(b);
}

static void test_mutations(void **state)
{
    (void)state;
    static const uint8_t rgba[4 * 3 * 4] = {1, 2, 3, 4, 250, 0, 9, 255, 7, 7, 7, 7, 0, 0, 0, 0};
    size_t len;
    unsigned char *png = make_png(rgba, 4, 3, PNG_FORMAT_RGBA, &len);
    mutate_all(png, len);
    free(png);
    static const char p5[] =
        "P5\n# c\n3 2\n65535\n\x00\x80\xff\x01\x02\x03\x00\x80\xff\x01\x02\x03";
    mutate_all((const unsigned char *)p5, sizeof p5 - 1);
    static const char p2[] = "P2 3 2 255 0 1 2\n3 4 255\n";
    mutate_all((const unsigned char *)p2, sizeof p2 - 1);
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/nabla_test_image_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.pgm", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("P5 2 1 255 \x05\x06", 1, 13, f), 13);
    assert_int_equal(fclose(f), 0);
    nb_tensor *t = NULL;
    assert_int_equal(nb_image_load(path, &t), NB_OK);
    assert_int_equal(((uint8_t *)t->data)[1], 6);
    nb_tensor_free(t);
    /* a FIFO nobody writes: refused at once, not waited on */
    snprintf(path, sizeof path, "%s/fifo.png", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(20);
    assert_int_equal(nb_image_load(path, &t), NB_ERR_IO);
    alarm(0);
    assert_non_null(strstr(nb_last_error(), "FIFO"));
    assert_null(t);
    unlink(path);
    snprintf(path, sizeof path, "%s/a.pgm", dir);
    unlink(path);
    rmdir(dir);
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* nb_dataset_load_images on a folder made here: classes sorted by name ("b" before "cat"),
 * images in name order, pixels / 255, class names and the set's name from the folder. */
static void test_folder(void **state)
{
    (void)state;
    char dir[] = "/tmp/nabla_test_image_XXXXXX", p[256], slash[256];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/cat", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/b", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/cat/1.pgm", dir);
    write_file(p, "P5 2 1 255 \x33\x66", 13);
    snprintf(p, sizeof p, "%s/cat/0.PGM", dir);
    write_file(p, "P2 2 1 255 255 0", 16);
    snprintf(p, sizeof p, "%s/b/z.pgm", dir);
    write_file(p, "P5 2 1 255 \x00\xff", 13);
    snprintf(slash, sizeof slash, "%s/", dir);
    nb_dataset ds;
    if (nb_dataset_load_images(slash, &ds) != NB_OK)
        fail_msg("%s", nb_last_error());
    assert_int_equal(ds.n_classes, 2);
    assert_string_equal(ds.class_names[0], "b");
    assert_string_equal(ds.class_names[1], "cat");
    assert_string_equal(ds.name, strrchr(dir, '/') + 1);
    assert_true(ds.input_scale == 1.0 / 255.0 && ds.input_shift == 0.0);
    assert_int_equal(ds.X->shape[0], 3);
    assert_int_equal(ds.X->shape[1], 2);
    /* b/z.pgm, cat/0.PGM, cat/1.pgm ('0' < '1') */
    static const float want[6] = {0, 1, 1, 0, 0x33 / 255.0f, 0x66 / 255.0f};
    static const int32_t labels[3] = {0, 1, 1};
    for (int i = 0; i < 6; i++)
        assert_true(((float *)ds.X->data)[i] == want[i]);
    assert_memory_equal(ds.y->data, labels, sizeof labels);
    nb_dataset_free(&ds);
    const char *files[] = {"cat/1.pgm", "cat/0.PGM", "b/z.pgm", "cat", "b"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        assert_int_equal(remove(p), 0);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pgm_binary),   cmocka_unit_test(test_pgm_plain),
        cmocka_unit_test(test_pgm_refusals), cmocka_unit_test(test_png),
        cmocka_unit_test(test_mutations),    cmocka_unit_test(test_files),
        cmocka_unit_test(test_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
