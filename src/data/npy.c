/* npy.c - NumPy .npy reader and writer (format 1.0, 2.0 and 3.0).
 *
 * File layout (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *
 *   offset 0   "\x93NUMPY"                       magic, 6 bytes
 *   offset 6   major, minor                      1.0, 2.0 or 3.0
 *   offset 8   header length, little-endian      uint16 for 1.0, uint32 for 2.0 and 3.0
 *   then       header                            a Python dict literal, padded with spaces, '\n'
 *   then       data                              numel * itemsize bytes, nothing after it
 *
 * The header looks like  {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * It is latin-1 (1.0, 2.0) or utf-8 (3.0) text; every value we accept is plain ASCII, so one
 * byte-oriented parser serves all three versions.
 *
 * Reading is written for hostile input (a fuzzer drives nb_npy_parse): every length is checked
 * against the bytes that are really there before it is used, sizes are multiplied with overflow
 * checks, and the data length must match the shape exactly before anything is allocated.
 *
 * Writing reproduces NumPy 1.24's np.save byte for byte (key order, spacing, the spare spaces it
 * leaves after the header for in-place growth, padding so data starts at a multiple of 64), and
 * goes through a temporary file + fsync + rename so a reader never sees a half-written file.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla/npy.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "npy_write.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* NumPy pads the header so the first dimension could grow to 21 digits in place. */
#define NPY_GROWTH_DIGITS 21
/* NumPy refuses headers over 10000 bytes by default; ours allow far more padding but still cap
 * the header so a corrupt length cannot make nb_npy_load allocate gigabytes. */
#define NPY_MAX_HEADER ((size_t)1 << 20)
#define NPY_SUPPORTED "<f2 <f4 <f8 <i4 <i8 |u1 |b1"

/* What the preamble and the header dict tell us. */
typedef struct npy_info {
    nb_dtype u2_as; /* in: NB_BF16 or NB_F16 to read '<u2' as those bits (nb_npy_load_half) */
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    size_t data_bytes;
} npy_info;

/* Copies s (at most n bytes of it) into out with anything outside printable ASCII shown as '?',
 * so error messages never carry control bytes from a corrupt file. */
static const char *printable(char *out, size_t cap, const char *s, size_t n)
{
    size_t keep = n <= cap - 1 ? n : cap - 4; /* room for "..." when cut */
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (keep < n) {
        memcpy(out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Preamble: magic, version, header length.                                                    */

/* buf holds the first `avail` bytes of an image that is `total` bytes long (avail <= total).
 * On success *header_at is where the header starts and *header_len its length; both are checked
 * to lie inside the image and under NPY_MAX_HEADER. */
static nb_status parse_preamble(const unsigned char *buf, size_t avail, size_t total,
                                size_t *header_at, size_t *header_len)
{
    if (avail < NPY_MAGIC_LEN) {
        if (memcmp(buf, NPY_MAGIC, avail) == 0)
            return nb_error(NB_ERR_FORMAT, "truncated: file of %zu bytes ends inside the magic",
                            total);
        return nb_error(NB_ERR_FORMAT, "bad magic: not a .npy file (expected \\x93NUMPY)");
    }
    if (memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return nb_error(NB_ERR_FORMAT, "bad magic: not a .npy file (expected \\x93NUMPY)");
    if (avail < 8)
        return nb_error(NB_ERR_FORMAT, "truncated: file of %zu bytes ends inside the preamble",
                        total);
    unsigned major = buf[6], minor = buf[7];
    size_t len_bytes;
    if (major == 1 && minor == 0)
        len_bytes = 2;
    else if ((major == 2 || major == 3) && minor == 0)
        len_bytes = 4;
    else
        return nb_error(NB_ERR_FORMAT,
                        "unsupported .npy format version %u.%u (supported: 1.0, 2.0, 3.0)", major,
                        minor);
    if (avail < 8 + len_bytes)
        return nb_error(NB_ERR_FORMAT, "truncated: file of %zu bytes ends inside the preamble",
                        total);
    uint32_t hlen = (uint32_t)buf[8] | (uint32_t)buf[9] << 8;
    if (len_bytes == 4)
        hlen |= (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
    size_t at = 8 + len_bytes;
    if (hlen > total - at)
        return nb_error(NB_ERR_FORMAT,
                        "header length %" PRIu32 " goes beyond the end of the file (%zu bytes "
                        "after the %zu-byte preamble)",
                        hlen, total - at, at);
    if (hlen > NPY_MAX_HEADER)
        return nb_error(NB_ERR_FORMAT, "header length %" PRIu32 " exceeds the limit of %zu bytes",
                        hlen, NPY_MAX_HEADER);
    *header_at = at;
    *header_len = hlen;
    return NB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Header: a small parser for the Python dict literal.                                        */

typedef struct cursor {
    const char *p, *begin, *end;
} cursor;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && is_space(*c->p))
        c->p++;
}

/* The next non-space character, or -1 at the end. Leaves the cursor on it. */
static int peek(cursor *c)
{
    skip_ws(c);
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

static nb_status syntax_error(const cursor *c, const char *expected)
{
    char near[24];
    size_t left = (size_t)(c->end - c->p);
    if (left == 0)
        return nb_error(NB_ERR_FORMAT, "header syntax error: expected %s, found end of header",
                        expected);
    return nb_error(NB_ERR_FORMAT, "header syntax error at offset %zu: expected %s, found \"%s\"",
                    (size_t)(c->p - c->begin), expected,
                    printable(near, sizeof near, c->p, left < 12 ? left : 12));
}

static nb_status expect(cursor *c, char ch, const char *what)
{
    if (peek(c) != (unsigned char)ch)
        return syntax_error(c, what);
    c->p++;
    return NB_OK;
}

/* A quoted string without escapes: '...' or "...". *s points into the header, *n is its length. */
static nb_status parse_string(cursor *c, const char **s, size_t *n)
{
    int q = peek(c);
    if (q != '\'' && q != '"')
        return syntax_error(c, "a quoted string");
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != (char)q) {
        if (*c->p == '\\')
            return nb_error(NB_ERR_FORMAT,
                            "header string at offset %zu uses a backslash escape (not supported)",
                            (size_t)(start - 1 - c->begin));
        if (*c->p == '\n')
            break;
        c->p++;
    }
    if (c->p >= c->end || *c->p != (char)q)
        return nb_error(NB_ERR_FORMAT, "header string starting at offset %zu is not terminated",
                        (size_t)(start - 1 - c->begin));
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return NB_OK;
}

static bool is_ident(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

static bool str_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Maps a descr string ('<f4', '|u1', ...) to a dtype. '<u2' (uint16) only as the bit patterns
 * of u2_as (NB_BF16 or NB_F16); anything else refuses it. */
static nb_status parse_descr_string(const char *s, size_t n, nb_dtype u2_as, nb_dtype *out)
{
    char shown[40];
    printable(shown, sizeof shown, s, n);
    if (n >= 2 && s[1] == 'O')
        return nb_error(NB_ERR_FORMAT, "object arrays (descr '%s') are not supported", shown);
    if (n < 3 || n > 4 || !(s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '='))
        return nb_error(NB_ERR_FORMAT, "unsupported descr '%s'", shown);
    char order = s[0], kind = s[1];
    int size = 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return nb_error(NB_ERR_FORMAT, "unsupported descr '%s'", shown);
        size = size * 10 + (s[i] - '0');
    }
    if (size == 1) {
        /* One-byte types have no byte order; NumPy writes '|' but any order mark is harmless. */
        if (kind == 'u') {
            *out = NB_U8;
            return NB_OK;
        }
        if (kind == 'b') {
            *out = NB_BOOL;
            return NB_OK;
        }
        return nb_error(NB_ERR_FORMAT, "unsupported descr '%s' (supported: " NPY_SUPPORTED ")",
                        shown);
    }
    nb_dtype t;
    if (kind == 'f' && size == 2)
        t = NB_F16;
    else if (kind == 'f' && size == 4)
        t = NB_F32;
    else if (kind == 'f' && size == 8)
        t = NB_F64;
    else if (kind == 'i' && size == 4)
        t = NB_I32;
    else if (kind == 'i' && size == 8)
        t = NB_I64;
    else if (kind == 'u' && size == 2 && (u2_as == NB_BF16 || u2_as == NB_F16))
        t = u2_as;
    else if (kind == 'u' && size == 2)
        return nb_error(NB_ERR_FORMAT,
                        "unsupported descr '%s' (supported: " NPY_SUPPORTED
                        "; uint16 only as the bit patterns of bf16 or f16 values, read with "
                        "nb_npy_load_half)",
                        shown);
    else
        return nb_error(NB_ERR_FORMAT, "unsupported descr '%s' (supported: " NPY_SUPPORTED ")",
                        shown);
    if (order == '>')
        return nb_error(NB_ERR_FORMAT,
                        "big-endian descr '%s' is not supported (only little-endian)", shown);
    if (order == '|')
        return nb_error(NB_ERR_FORMAT, "descr '%s' has no byte order ('|') but is %d bytes wide",
                        shown, size);
    /* '<' little-endian, '=' native, which is little-endian on every platform we build for. */
    *out = t;
    return NB_OK;
}

static nb_status parse_descr(cursor *c, nb_dtype u2_as, nb_dtype *out)
{
    int ch = peek(c);
    if (ch == '[')
        return nb_error(NB_ERR_FORMAT,
                        "structured dtypes are not supported (descr is a list of fields)");
    if (ch != '\'' && ch != '"')
        return syntax_error(c, "a descr string such as '<f4'");
    const char *s;
    size_t n;
    nb_status st = parse_string(c, &s, &n);
    if (st != NB_OK)
        return st;
    return parse_descr_string(s, n, u2_as, out);
}

static nb_status parse_fortran_order(cursor *c, bool *fortran)
{
    peek(c);
    const char *start = c->p;
    while (c->p < c->end && is_ident(*c->p))
        c->p++;
    size_t n = (size_t)(c->p - start);
    if (str_is(start, n, "False")) {
        *fortran = false;
        return NB_OK;
    }
    if (str_is(start, n, "True")) {
        *fortran = true;
        return NB_OK;
    }
    c->p = start;
    return syntax_error(c, "True or False for fortran_order");
}

/* One dimension: an optional '-', decimal digits, an optional Python 2 'L' suffix. */
static nb_status parse_dim(cursor *c, int64_t *dim)
{
    bool negative = false;
    if (peek(c) == '-') {
        negative = true;
        c->p++;
        skip_ws(c);
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return syntax_error(c, "an integer dimension");
    uint64_t v = 0;
    bool too_big = false;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            too_big = true;
        else
            v = v * 10 + d;
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
        c->p++;
    if (too_big)
        return nb_error(NB_ERR_FORMAT, "shape has a dimension %sthat does not fit in int64",
                        negative ? "(negative) " : "");
    if (negative && v != 0)
        return nb_error(NB_ERR_FORMAT, "shape has a negative dimension -%" PRIu64, v);
    *dim = (int64_t)v;
    return NB_OK;
}

/* A tuple of dimensions: (), (5,), (2, 3), (2, 3,). */
static nb_status parse_shape(cursor *c, npy_info *info)
{
    if (peek(c) != '(')
        return syntax_error(c, "a shape tuple such as (2, 3)");
    c->p++;
    size_t count = 0;
    bool comma_seen = false;
    if (peek(c) == ')') {
        c->p++;
        info->ndim = 0;
        return NB_OK;
    }
    for (;;) {
        int64_t dim = 0;
        nb_status st = parse_dim(c, &dim);
        if (st != NB_OK)
            return st;
        if (count < NB_MAX_DIMS)
            info->shape[count] = dim;
        count++;
        int ch = peek(c);
        if (ch == ',') {
            comma_seen = true;
            c->p++;
            if (peek(c) == ')') {
                c->p++;
                break;
            }
            continue;
        }
        if (ch == ')') {
            c->p++;
            if (count == 1 && !comma_seen)
                return nb_error(NB_ERR_FORMAT,
                                "shape (%" PRId64 ") is not a tuple: a 1-d shape needs a "
                                "trailing comma, as in (%" PRId64 ",)",
                                info->shape[0], info->shape[0]);
            break;
        }
        return syntax_error(c, "',' or ')' in the shape tuple");
    }
    if (count > NB_MAX_DIMS)
        return nb_error(NB_ERR_FORMAT, "shape has %zu dimensions, at most %d are supported", count,
                        NB_MAX_DIMS);
    info->ndim = (int)count;
    return NB_OK;
}

/* Parses the whole header dict into info (dtype, shape) and computes numel and data_bytes. */
static nb_status parse_header(const char *hdr, size_t len, npy_info *info)
{
    cursor c = {hdr, hdr, hdr + len};
    bool have_descr = false, have_fortran = false, have_shape = false, fortran = false;
    nb_status st = expect(&c, '{', "'{' opening the header dict");
    if (st != NB_OK)
        return st;
    for (;;) {
        if (peek(&c) == '}') {
            c.p++;
            break;
        }
        const char *key;
        size_t klen;
        if ((st = parse_string(&c, &key, &klen)) != NB_OK)
            return st;
        if ((st = expect(&c, ':', "':' after a dict key")) != NB_OK)
            return st;
        bool *seen;
        if (str_is(key, klen, "descr")) {
            seen = &have_descr;
            st = parse_descr(&c, info->u2_as, &info->dtype);
        } else if (str_is(key, klen, "fortran_order")) {
            seen = &have_fortran;
            st = parse_fortran_order(&c, &fortran);
        } else if (str_is(key, klen, "shape")) {
            seen = &have_shape;
            st = parse_shape(&c, info);
        } else {
            char shown[40];
            return nb_error(NB_ERR_FORMAT,
                            "unexpected header key '%s' (expected descr, fortran_order, shape)",
                            printable(shown, sizeof shown, key, klen));
        }
        if (st != NB_OK)
            return st;
        if (*seen) {
            char shown[40];
            return nb_error(NB_ERR_FORMAT, "header key '%s' appears twice",
                            printable(shown, sizeof shown, key, klen));
        }
        *seen = true;
        int ch = peek(&c);
        if (ch == ',') {
            c.p++;
            continue;
        }
        if (ch == '}') {
            c.p++;
            break;
        }
        return syntax_error(&c, "',' or '}' after a dict value");
    }
    if (peek(&c) != -1)
        return syntax_error(&c, "only spaces after the header dict");
    if (!have_descr || !have_fortran || !have_shape)
        return nb_error(NB_ERR_FORMAT, "header is missing the key '%s'",
                        !have_descr     ? "descr"
                        : !have_fortran ? "fortran_order"
                                        : "shape");
    if (fortran)
        return nb_error(NB_ERR_FORMAT, "fortran_order True is not supported (save the array "
                                       "with np.ascontiguousarray first)");

    /* Element and byte counts. A zero dimension makes the array empty whatever the others are,
     * so look for one before multiplying. */
    int64_t numel = 1;
    bool empty = false;
    for (int i = 0; i < info->ndim; i++)
        if (info->shape[i] == 0)
            empty = true;
    if (empty) {
        numel = 0;
    } else {
        for (int i = 0; i < info->ndim; i++) {
            if (numel > INT64_MAX / info->shape[i])
                return nb_error(NB_ERR_FORMAT,
                                "shape overflows: the element count exceeds int64 at dimension "
                                "%d (size %" PRId64 ")",
                                i, info->shape[i]);
            numel *= info->shape[i];
        }
    }
    size_t esize = nb_dtype_size(info->dtype);
    if ((uint64_t)numel > (uint64_t)INT64_MAX / esize || (uint64_t)numel > SIZE_MAX / esize)
        return nb_error(NB_ERR_FORMAT,
                        "shape overflows: %" PRId64 " elements of %zu bytes do not fit in "
                        "memory sizes",
                        numel, esize);
    info->numel = numel;
    info->data_bytes = (size_t)numel * esize;
    return NB_OK;
}

static nb_status check_data_length(const npy_info *info, size_t have)
{
    if (have < info->data_bytes)
        return nb_error(NB_ERR_FORMAT,
                        "truncated data: the shape needs %zu bytes (%" PRId64 " x %zu), the file "
                        "has %zu",
                        info->data_bytes, info->numel, nb_dtype_size(info->dtype), have);
    if (have > info->data_bytes)
        return nb_error(NB_ERR_FORMAT, "%zu unexpected trailing bytes after the %zu bytes of data",
                        have - info->data_bytes, info->data_bytes);
    return NB_OK;
}

/* Brings freshly read little-endian data into host form. */
static void fix_up_data(nb_tensor *t)
{
    size_t n = (size_t)t->numel;
    if (t->dtype == NB_BOOL) {
        /* NumPy only writes 0 and 1; make any other byte a clean true. */
        unsigned char *b = t->data;
        for (size_t i = 0; i < n; i++)
            b[i] = b[i] != 0;
    }
    if (!nb_host_little_endian())
        nb_swap_elements(t->data, n, nb_dtype_size(t->dtype));
}

static nb_tensor *new_tensor(const npy_info *info, nb_status *st)
{
    nb_tensor *t = nb_tensor_empty(info->dtype, info->ndim, info->shape);
    if (!t) {
        *st = nb_last_status();
        if (*st == NB_OK)
            *st = NB_ERR_NOMEM;
    }
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Public: parse an in-memory image.                                                          */

static nb_status parse_image(const unsigned char *buf, size_t len, nb_tensor **out)
{
    size_t at = 0, hlen = 0;
    nb_status st = parse_preamble(buf, len, len, &at, &hlen);
    if (st != NB_OK)
        return st;
    npy_info info;
    memset(&info, 0, sizeof info);
    if ((st = parse_header((const char *)buf + at, hlen, &info)) != NB_OK)
        return st;
    size_t data_at = at + hlen; /* <= len, checked by parse_preamble */
    if ((st = check_data_length(&info, len - data_at)) != NB_OK)
        return st;
    nb_tensor *t = new_tensor(&info, &st);
    if (!t)
        return st;
    if (info.data_bytes > 0)
        memcpy(t->data, buf + data_at, info.data_bytes);
    fix_up_data(t);
    *out = t;
    return NB_OK;
}

nb_tensor *nb_npy_parse(const void *buf, size_t len)
{
    if (!buf && len > 0) {
        nb_error(NB_ERR_ARG, "npy: buffer is NULL but length is %zu", len);
        return NULL;
    }
    static const unsigned char nothing[1] = {0};
    nb_tensor *t = NULL;
    nb_status st = parse_image(buf ? buf : nothing, len, &t);
    if (st != NB_OK) {
        nb_error_prefix(st, "npy", NULL);
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Public: load a file.                                                                       */

static nb_status load_file(FILE *f, nb_dtype u2_as, nb_tensor **out)
{
    size_t size;
    nb_status fs = nb_regular_file_size(f, &size);
    if (fs != NB_OK)
        return fs;

    /* The preamble is at most 12 bytes; read what there is and let parse_preamble judge it. */
    unsigned char pre[12];
    size_t npre = size < sizeof pre ? size : sizeof pre;
    nb_status st = nb_read_exact(f, pre, npre, "preamble");
    if (st != NB_OK)
        return st;
    size_t at = 0, hlen = 0;
    if ((st = parse_preamble(pre, npre, size, &at, &hlen)) != NB_OK)
        return st;

    /* We may already hold the first bytes of the header (1.0 preambles are 10 bytes). */
    char *hdr = malloc(hlen > 0 ? hlen : 1);
    if (!hdr)
        return nb_error(NB_ERR_NOMEM, "out of memory for a %zu-byte header", hlen);
    size_t have = npre - at;
    if (have > hlen)
        have = hlen;
    memcpy(hdr, pre + at, have);
    st = nb_read_exact(f, hdr + have, hlen - have, "header");
    npy_info info;
    memset(&info, 0, sizeof info);
    info.u2_as = u2_as;
    if (st == NB_OK)
        st = parse_header(hdr, hlen, &info);
    free(hdr);
    if (st != NB_OK)
        return st;
    /* Bytes of data already consumed with the preamble (only for a header shorter than 2). */
    size_t consumed = npre - at > hlen ? npre - at - hlen : 0;
    size_t data_at = at + hlen; /* <= size, checked by parse_preamble */
    if ((st = check_data_length(&info, size - data_at)) != NB_OK)
        return st;
    nb_tensor *t = new_tensor(&info, &st);
    if (!t)
        return st;
    unsigned char *data = t->data;
    if (consumed > 0)
        memcpy(data, pre + at + hlen, consumed);
    st = nb_read_exact(f, data + consumed, info.data_bytes - consumed, "data");
    if (st == NB_OK && fgetc(f) != EOF)
        st = nb_error(NB_ERR_FORMAT, "file grew while it was being read");
    if (st != NB_OK) {
        nb_tensor_free(t);
        return st;
    }
    fix_up_data(t);
    *out = t;
    return NB_OK;
}

static nb_tensor *load_path(const char *path, nb_dtype u2_as)
{
    if (!path) {
        nb_error(NB_ERR_ARG, "npy: load path is NULL");
        return NULL;
    }
    FILE *f = nb_open_regular(path, "npy", NULL); /* refuses FIFOs, devices, directories */
    if (!f)
        return NULL;
    nb_tensor *t = NULL;
    nb_status st = load_file(f, u2_as, &t);
    if (fclose(f) != 0 && st == NB_OK) {
        int e = errno;
        nb_tensor_free(t);
        t = NULL;
        st = nb_error(NB_ERR_IO, "cannot close: %s", strerror(e));
    }
    if (st != NB_OK) {
        nb_error_prefix(st, "npy", path);
        return NULL;
    }
    return t;
}

nb_tensor *nb_npy_load(const char *path)
{
    return load_path(path, NB_F32); /* '<u2' refused */
}

nb_tensor *nb_npy_load_half(const char *path, nb_dtype as)
{
    if (as != NB_BF16 && as != NB_F16) {
        nb_error(NB_ERR_ARG, "npy: load_half of '%s': dtype %s is not bf16 or f16",
                 path ? path : "(null)", nb_dtype_name(as));
        return NULL;
    }
    nb_tensor *t = load_path(path, as);
    if (t && t->dtype != as) { /* a float or integer array: not bit patterns of `as` */
        nb_error(NB_ERR_FORMAT,
                 "npy: '%s': holds %s values, not %s bit patterns: expected a uint16 array "
                 "('<u2')%s",
                 path, nb_dtype_name(t->dtype), nb_dtype_name(as),
                 as == NB_F16 ? " or float16 ('<f2')" : "");
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Public: save.                                                                              */

static const char *npy_descr(nb_dtype t)
{
    switch (t) {
    case NB_F16: return "<f2";
    case NB_F32: return "<f4";
    case NB_F64: return "<f8";
    case NB_I32: return "<i4";
    case NB_I64: return "<i8";
    case NB_U8: return "|u1";
    case NB_BOOL: return "|b1";
    case NB_BF16:
    case NB_DTYPE_COUNT: break;
    }
    return NULL;
}

/* Builds the full preamble + header (magic ... '\n') into out; returns its length, 0 if it does
 * not fit. Mirrors numpy.lib.format._write_array_header and _wrap_header of NumPy 1.24. */
static size_t build_header(char *out, size_t cap, const nb_tensor *x)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     npy_descr(x->dtype));
    for (int i = 0; i < x->ndim && n > 0 && (size_t)n < sizeof dict; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, i == 0 ? "%" PRId64 : ", %" PRId64,
                      x->shape[i]);
    if (n > 0 && (size_t)n < sizeof dict)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", x->ndim == 1 ? "," : "");
    if (n <= 0 || (size_t)n >= sizeof dict)
        return 0;
    size_t dlen = (size_t)n;
    /* Spare room so the first dimension could be rewritten in place with up to 21 digits. */
    if (x->ndim > 0) {
        char first[24];
        int fl = snprintf(first, sizeof first, "%" PRId64, x->shape[0]);
        if (fl > 0 && fl < NPY_GROWTH_DIGITS)
            dlen += (size_t)(NPY_GROWTH_DIGITS - fl);
    }
    /* Version 1.0 has a 16-bit header length; 2.0 a 32-bit one. */
    size_t pre = NPY_MAGIC_LEN + 2 + 2;
    size_t hlen = dlen + 1; /* + '\n' */
    size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    unsigned major = 1;
    if (hlen + pad > 0xffff) {
        major = 2;
        pre = NPY_MAGIC_LEN + 2 + 4;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    }
    size_t total = pre + hlen + pad;
    if (total > cap)
        return 0;
    size_t stored = hlen + pad;
    memcpy(out, NPY_MAGIC, NPY_MAGIC_LEN);
    out[6] = (char)major;
    out[7] = 0;
    out[8] = (char)(stored & 0xff);
    out[9] = (char)((stored >> 8) & 0xff);
    if (major == 2) {
        out[10] = (char)((stored >> 16) & 0xff);
        out[11] = (char)((stored >> 24) & 0xff);
    }
    memcpy(out + pre, dict, (size_t)n);
    memset(out + pre + n, ' ', total - 1 - pre - (size_t)n);
    out[total - 1] = '\n';
    return total;
}

typedef struct npy_out {
    const char *header;
    size_t hbytes;
    const nb_tensor *x;
} npy_out;

static bool fill_npy(FILE *f, void *ctx)
{
    const npy_out *o = ctx;
    return fwrite(o->header, 1, o->hbytes, f) == o->hbytes && nb_write_tensor_le(f, o->x);
}

static nb_status check_saveable(const nb_tensor *x)
{
    if (!x)
        return nb_error(NB_ERR_ARG, "tensor is NULL");
    if ((unsigned)x->dtype >= NB_DTYPE_COUNT)
        return nb_error(NB_ERR_DTYPE, "invalid dtype %d", (int)x->dtype);
    if (!npy_descr(x->dtype))
        return nb_error(NB_ERR_DTYPE, "dtype %s has no NumPy equivalent (convert it to f32 first)",
                        nb_dtype_name(x->dtype));
    if (x->ndim < 0 || x->ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_SHAPE, "tensor has %d dimensions, at most %d supported", x->ndim,
                        NB_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] < 0)
            return nb_error(NB_ERR_SHAPE, "dimension %d has negative size %" PRId64, i,
                            x->shape[i]);
        if (x->shape[i] != 0 && numel > INT64_MAX / x->shape[i])
            return nb_error(NB_ERR_SHAPE, "shape overflows int64");
        numel *= x->shape[i];
    }
    if (numel != x->numel)
        return nb_error(NB_ERR_SHAPE,
                        "tensor numel %" PRId64 " does not match its shape (%" PRId64 " elements)",
                        x->numel, numel);
    size_t esize = nb_dtype_size(x->dtype);
    if ((uint64_t)numel > SIZE_MAX / esize)
        return nb_error(NB_ERR_SHAPE, "tensor of %" PRId64 " elements is too large", numel);
    if (numel > 0 && !x->data)
        return nb_error(NB_ERR_ARG, "tensor data is NULL");
    return NB_OK;
}

/* The header of x in header[512] (*hbytes long), or an error prefixed with "npy: '<path>'". */
static nb_status prepare_save(const char *path, const nb_tensor *x, char *header, size_t *hbytes)
{
    nb_status st;
    if ((st = check_saveable(x)) != NB_OK) {
        nb_error_prefix(st, "npy", path);
        return st;
    }
    *hbytes = build_header(header, 512, x);
    if (*hbytes == 0) {
        st = nb_error(NB_ERR_SHAPE, "header does not fit");
        nb_error_prefix(st, "npy", path);
        return st;
    }
    return NB_OK;
}

nb_status nb_npy_save(const char *path, const nb_tensor *x)
{
    if (!path)
        return nb_error(NB_ERR_ARG, "npy: save path is NULL");
    char header[512];
    size_t hbytes;
    nb_status st = prepare_save(path, x, header, &hbytes);
    if (st != NB_OK)
        return st;
    npy_out o = {header, hbytes, x};
    return nb_write_atomically(path, "npy", fill_npy, &o);
}

nb_status nb_npy_write_output(nb_output *out, const nb_tensor *x)
{
    char header[512];
    size_t hbytes;
    nb_status st = prepare_save(out->path, x, header, &hbytes);
    if (st != NB_OK) {
        nb_output_abort(out);
        return st;
    }
    npy_out o = {header, hbytes, x};
    errno = 0;
    return nb_output_finish(out, fill_npy(out->f, &o));
}
