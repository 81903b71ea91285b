/* image.c - one grayscale image from a PNG (libpng's simplified API) or PGM (P5/P2, parsed here)
 * file, as u8 [H, W]. The conversions (colour to gray, alpha, maxval) are stated in
 * nabla/image.h.
 *
 * The whole file is read first (bounded by NB_IMAGE_MAX_FILE), then parsed in memory: the
 * header's sizes are checked against the limits before the pixels are allocated, and a PGM's
 * raster against the bytes really there.
 */
#define _POSIX_C_SOURCE 200809L

#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/image.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

/* The width and height limits, checked before anything is allocated. */
static nb_status check_size(int64_t w, int64_t h)
{
    if (w < 1 || w > NB_IMAGE_MAX_SIDE)
        return nb_error(NB_ERR_FORMAT, "width %lld is not in 1..%d", (long long)w,
                        NB_IMAGE_MAX_SIDE);
    if (h < 1 || h > NB_IMAGE_MAX_SIDE)
        return nb_error(NB_ERR_FORMAT, "height %lld is not in 1..%d", (long long)h,
                        NB_IMAGE_MAX_SIDE);
    if (w * h > NB_IMAGE_MAX_PIXELS)
        return nb_error(NB_ERR_RANGE, "%lld x %lld = %lld pixels is more than the limit of %lld",
                        (long long)w, (long long)h, (long long)(w * h),
                        (long long)NB_IMAGE_MAX_PIXELS);
    return NB_OK;
}

static nb_status new_image(int64_t w, int64_t h, nb_tensor **out)
{
    int64_t shape[2] = {h, w};
    return nb_tensor_new(NB_U8, 2, shape, out);
}

/* ---- PGM ---- */

static bool pgm_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips whitespace and '#' comments (to the end of their line). */
static void pgm_skip(const unsigned char *b, size_t len, size_t *at)
{
    while (*at < len) {
        if (pgm_space(b[*at]))
            (*at)++;
        else if (b[*at] == '#')
            while (*at < len && b[*at] != '\n' && b[*at] != '\r')
                (*at)++;
        else
            break;
    }
}

/* One unsigned decimal number <= limit (what = its role, for the message). */
static nb_status pgm_number(const unsigned char *b, size_t len, size_t *at, bool comments,
                            int64_t limit, const char *what, int64_t *out)
{
    if (comments)
        pgm_skip(b, len, at);
    else
        while (*at < len && pgm_space(b[*at]))
            (*at)++;
    if (*at >= len)
        return nb_error(NB_ERR_FORMAT, "truncated: end of file before the %s", what);
    if (b[*at] < '0' || b[*at] > '9') {
        char show[16];
        return nb_error(
            NB_ERR_FORMAT, "byte %zu: the %s is not a number ('%s')", *at, what,
            nb_printable(show, sizeof show, (const char *)b + *at, len - *at < 8 ? len - *at : 8));
    }
    int64_t v = 0;
    while (*at < len && b[*at] >= '0' && b[*at] <= '9') {
        v = v * 10 + (b[*at] - '0');
        if (v > limit)
            return nb_error(NB_ERR_FORMAT, "byte %zu: the %s is more than %lld", *at, what,
                            (long long)limit);
        (*at)++;
    }
    *out = v;
    return NB_OK;
}

/* Only whitespace may follow the raster. */
static nb_status pgm_rest(const unsigned char *b, size_t len, size_t at)
{
    size_t end = at;
    while (end < len && pgm_space(b[end]))
        end++;
    if (end < len)
        return nb_error(NB_ERR_FORMAT,
                        "%zu bytes after the image data (byte %zu on; nabla reads one image "
                        "per file)",
                        len - at, at);
    return NB_OK;
}

/* PGM: "P5" or "P2", width, height, maxval (1..65535), then the raster: P5 one byte per pixel
 * (two, big-endian, when maxval > 255) after exactly one whitespace byte; P2 decimal numbers. */
static nb_status parse_pgm(const unsigned char *b, size_t len, nb_tensor **out)
{
    bool binary = b[1] == '5';
    size_t at = 2;
    int64_t w, h, maxval;
    nb_status st = pgm_number(b, len, &at, true, (int64_t)1 << 40, "width", &w);
    if (st == NB_OK)
        st = pgm_number(b, len, &at, true, (int64_t)1 << 40, "height", &h);
    if (st == NB_OK)
        st = check_size(w, h);
    if (st == NB_OK)
        st = pgm_number(b, len, &at, true, 65535, "maxval", &maxval);
    if (st == NB_OK && maxval < 1)
        st = nb_error(NB_ERR_FORMAT, "maxval 0 is not in 1..65535");
    if (st != NB_OK)
        return st;
    size_t n = (size_t)(w * h), bpp = maxval > 255 ? 2 : 1;
    if (binary) {
        if (at >= len || !pgm_space(b[at]))
            return nb_error(NB_ERR_FORMAT, "no whitespace byte between maxval and the pixels");
        at++;
        if (len - at < n * bpp)
            return nb_error(NB_ERR_FORMAT,
                            "truncated: %lld x %lld pixels need %zu bytes, the file has %zu",
                            (long long)w, (long long)h, n * bpp, len - at);
    }
    if ((st = new_image(w, h, out)) != NB_OK)
        return st;
    uint8_t *px = (*out)->data;
    for (size_t i = 0; i < n && st == NB_OK; i++) {
        int64_t v;
        if (binary) {
            v = bpp == 2 ? (int64_t)b[at] << 8 | b[at + 1] : b[at];
            at += bpp;
        } else {
            st = pgm_number(b, len, &at, false, 65535, "pixel value", &v);
        }
        if (st != NB_OK)
            break;
        if (v > maxval)
            st = nb_error(NB_ERR_FORMAT,
                          "pixel %zu (row %zu, column %zu) is %lld, above maxval %lld", i,
                          i / (size_t)w, i % (size_t)w, (long long)v, (long long)maxval);
        else
            px[i] = (uint8_t)(maxval == 255 ? v : (v * 255 + maxval / 2) / maxval);
    }
    if (st == NB_OK)
        st = pgm_rest(b, len, at);
    if (st != NB_OK) {
        nb_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- PNG ---- */

/* PNG through libpng's simplified API: gray files are read as 8-bit gray, colour files as 8-bit
 * RGB and turned to gray here (BT.601 weights); alpha is composited onto the zeroed buffer. */
static nb_status parse_png(const unsigned char *b, size_t len, nb_tensor **out)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, b, len))
        return nb_error(NB_ERR_FORMAT, "PNG: %s", img.message);
    nb_status st = check_size(img.width, img.height);
    if (st != NB_OK) {
        png_image_free(&img);
        return st;
    }
    bool color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    img.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    size_t w = img.width, h = img.height, n = w * h;
    unsigned char *buf = calloc(n, color ? 3 : 1);
    if (!buf) {
        png_image_free(&img);
        return nb_error(NB_ERR_NOMEM, "out of memory for %zu x %zu pixels", w, h);
    }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        return nb_error(NB_ERR_FORMAT, "PNG: %s", img.message);
    }
    if ((st = new_image((int64_t)w, (int64_t)h, out)) == NB_OK) {
        uint8_t *px = (*out)->data;
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = buf + 3 * i;
            px[i] = color ? (uint8_t)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u)
                          : buf[i];
        }
    }
    free(buf);
    return st;
}

static nb_status parse_image(const unsigned char *b, size_t len, nb_tensor **out)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && !memcmp(b, png_sig, 8))
        return parse_png(b, len, out);
    if (len >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '2'))
        return parse_pgm(b, len, out);
    if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7')
        return nb_error(NB_ERR_FORMAT,
                        "a netpbm P%c file; only PGM (P5, P2) is read: convert it to gray, e.g. "
                        "ppmtopgm or pngtopnm | ppmtopgm",
                        b[1]);
    char show[16];
    return nb_error(NB_ERR_FORMAT, "not a PNG or PGM (P5/P2) image (it starts with '%s')",
                    nb_printable(show, sizeof show, (const char *)b, len < 8 ? len : 8));
}

nb_status nb_image_parse(const void *buf, size_t len, nb_tensor **out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "image: output tensor pointer is NULL");
    *out = NULL;
    if (!buf && len > 0)
        return nb_error(NB_ERR_ARG, "image: buffer is NULL but length is %zu", len);
    nb_status st = parse_image(buf ? buf : (const void *)"", len, out);
    if (st != NB_OK)
        nb_error_prefix(st, "image", NULL);
    return st;
}

static nb_status load_file(FILE *f, size_t size, void *ctx)
{
    nb_tensor **out = ctx;
    if (size > NB_IMAGE_MAX_FILE) {
        char a[32], b[32];
        return nb_error(NB_ERR_RANGE, "file is %s, more than the limit of %s for an image",
                        nb_bytes_str(a, sizeof a, size),
                        nb_bytes_str(b, sizeof b, NB_IMAGE_MAX_FILE));
    }
    unsigned char *buf;
    nb_status st = nb_read_rest(f, size, NULL, 0, "file", &buf);
    if (st != NB_OK)
        return st;
    st = parse_image(buf, size, out);
    free(buf);
    return st;
}

nb_status nb_image_load(const char *path, nb_tensor **out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "image: output tensor pointer is NULL");
    *out = NULL;
    nb_status st = nb_read_file(path, "image", true, load_file, out);
    if (st != NB_OK) {
        nb_tensor_free(*out);
        *out = NULL;
    }
    return st;
}
