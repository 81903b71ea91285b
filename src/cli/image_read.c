/* image_read.c - PNG (libpng's simplified API) and PGM (P5 and P2, parsed here) files as 8-bit
 * gray pixels for `nabla predict`. Files are read whole through nb_read_file (regular files only,
 * bounded by NB_IMAGE_FILE_MAX) and parsed from memory; nothing in a file is trusted for an
 * allocation before it is checked against NB_IMAGE_PIXELS_MAX and the bytes really there. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NABLA_HAVE_PNG
#include <png.h>
#endif

#include "predict_input.h"
#include "tensor/fileread.h"

typedef struct image_ctx {
    unsigned char *buf;
    size_t len;
} image_ctx;

static nb_status slurp(FILE *f, size_t size, void *vctx)
{
    image_ctx *c = vctx;
    if (size > NB_IMAGE_FILE_MAX)
        return nb_error(NB_ERR_RANGE, "file is %zu bytes; an image may have at most %zu", size,
                        NB_IMAGE_FILE_MAX);
    c->len = size;
    return nb_read_rest(f, size, NULL, 0, "image", &c->buf);
}

/* ---- PGM: "P5"|"P2", whitespace, width, height, maxval (comments '#' to end of line between
 * the fields), one whitespace byte, then the pixels ---- */

/* The next header number at *pos; -1 when there is none or it is over 999999999. */
static long pgm_number(const unsigned char *b, size_t len, size_t *pos)
{
    size_t i = *pos;
    for (;;) {
        while (i < len && isspace(b[i]))
            i++;
        if (i < len && b[i] == '#') {
            while (i < len && b[i] != '\n' && b[i] != '\r')
                i++;
            continue;
        }
        break;
    }
    long v = 0;
    size_t start = i;
    while (i < len && isdigit(b[i]) && v <= 999999999)
        v = v * 10 + (b[i++] - '0');
    *pos = i;
    return i == start || v > 999999999 ? -1 : v;
}

static nb_status parse_pgm(const unsigned char *b, size_t len, unsigned char **px, int64_t *w,
                           int64_t *h)
{
    bool ascii = b[1] == '2';
    size_t pos = 2;
    long W = pgm_number(b, len, &pos), H = pgm_number(b, len, &pos), M = pgm_number(b, len, &pos);
    if (W < 1 || H < 1 || M < 1 || M > 65535)
        return nb_error(NB_ERR_FORMAT,
                        "bad PGM header: width %ld, height %ld, maxval %ld (expected numbers "
                        "width, height >= 1 and maxval in 1..65535; -1 = missing or too large)",
                        W, H, M);
    if ((int64_t)W * H > NB_IMAGE_PIXELS_MAX)
        return nb_error(NB_ERR_RANGE, "PGM image is %ldx%ld; the limit is %lld pixels", W, H,
                        (long long)NB_IMAGE_PIXELS_MAX);
    if (pos >= len || !isspace(b[pos]))
        return nb_error(NB_ERR_FORMAT, "bad PGM header: no whitespace after maxval %ld", M);
    pos++;
    size_t n = (size_t)W * (size_t)H, bpp = M < 256 ? 1 : 2;
    if (!ascii && len - pos != n * bpp)
        return nb_error(NB_ERR_FORMAT,
                        "PGM P5 %ldx%ld maxval %ld needs %zu pixel bytes; the file "
                        "has %zu",
                        W, H, M, n * bpp, len - pos);
    unsigned char *out = malloc(n);
    if (!out)
        return nb_error(NB_ERR_NOMEM, "out of memory for a %ldx%ld image", W, H);
    for (size_t i = 0; i < n; i++) {
        long v;
        if (ascii) {
            v = pgm_number(b, len, &pos);
            if (v < 0) {
                free(out);
                return nb_error(NB_ERR_FORMAT,
                                "PGM P2: pixel %zu of %zu is missing or not a "
                                "number up to 65535",
                                i, n);
            }
        } else {
            v = bpp == 1 ? b[pos + i] : (b[pos + 2 * i] << 8 | b[pos + 2 * i + 1]);
        }
        if (v > M) {
            free(out);
            return nb_error(NB_ERR_FORMAT, "PGM pixel %zu is %ld, above maxval %ld", i, v, M);
        }
        out[i] = (unsigned char)((v * 255 + M / 2) / M);
    }
    while (ascii && pos < len && isspace(b[pos]))
        pos++;
    if (ascii && pos < len) {
        free(out);
        return nb_error(NB_ERR_FORMAT, "PGM P2: text after the %zu pixels", n);
    }
    *px = out;
    *w = W;
    *h = H;
    return NB_OK;
}

#ifdef NABLA_HAVE_PNG
static nb_status parse_png(const unsigned char *b, size_t len, unsigned char **px, int64_t *w,
                           int64_t *h)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, b, len))
        return nb_error(NB_ERR_FORMAT, "bad PNG: %s", im.message);
    if ((int64_t)im.width * im.height > NB_IMAGE_PIXELS_MAX) {
        png_image_free(&im);
        return nb_error(NB_ERR_RANGE, "PNG image is %ux%u; the limit is %lld pixels", im.width,
                        im.height, (long long)NB_IMAGE_PIXELS_MAX);
    }
    im.format = PNG_FORMAT_GRAY; /* colour, palette, alpha and 16-bit converted to 8-bit gray */
    size_t n = PNG_IMAGE_SIZE(im);
    unsigned char *out = malloc(n ? n : 1);
    if (!out) {
        png_image_free(&im);
        return nb_error(NB_ERR_NOMEM, "out of memory for a %ux%u image", im.width, im.height);
    }
    if (!png_image_finish_read(&im, NULL, out, 0, NULL)) {
        free(out);
        nb_status st = nb_error(NB_ERR_FORMAT, "bad PNG: %s", im.message);
        png_image_free(&im);
        return st;
    }
    *px = out;
    *w = im.width;
    *h = im.height;
    png_image_free(&im);
    return NB_OK;
}
#endif

nb_status nb_cli_read_image(const char *path, unsigned char **px, int64_t *w, int64_t *h)
{
    image_ctx c = {NULL, 0};
    *px = NULL;
    nb_status st = nb_read_file(path, "image", true, slurp, &c);
    if (st != NB_OK)
        return st;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (c.len >= 8 && !memcmp(c.buf, png_sig, 8)) {
#ifdef NABLA_HAVE_PNG
        st = parse_png(c.buf, c.len, px, w, h);
#else
        st = nb_error(NB_ERR_FORMAT, "this nabla was built without libpng "
                                     "(Debian: libpng-dev); convert the image to PGM");
#endif
    } else if (c.len >= 2 && c.buf[0] == 'P' && (c.buf[1] == '5' || c.buf[1] == '2')) {
        st = parse_pgm(c.buf, c.len, px, w, h);
    } else {
        char shown[16];
        st =
            nb_error(NB_ERR_FORMAT, "not a PNG or PGM (P5/P2) image: it starts with '%s'",
                     nb_printable(shown, sizeof shown, (const char *)c.buf, c.len < 8 ? c.len : 8));
    }
    free(c.buf);
    if (st != NB_OK) { /* the parsers do not know the file's name */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        nb_error(st, "image '%s': %s", path, msg);
    }
    return st;
}
