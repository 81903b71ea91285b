/* npy_header.c - the .npy preamble and header dict, parsed for hostile input (see npy.c for the
 * layout): every length is checked against the bytes that are really there before it is used,
 * and the shape's element and byte counts go through the one shape validator. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "npy_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Preamble: magic, version, header length.                                                    */

/* buf holds the first `avail` bytes of an image that is `total` bytes long (avail <= total).
 * On success *header_at is where the header starts and *header_len its length; both are checked
 * to lie inside the image and under NPY_MAX_HEADER. */
nb_status nb_npy_parse_preamble(const unsigned char *buf, size_t avail, size_t total,
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
                    nb_printable(near, sizeof near, c->p, left < 12 ? left : 12));
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
    nb_printable(shown, sizeof shown, s, n);
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

/* One "key: value" item of the dict; *seen marks the key found (twice is an error). */
static nb_status parse_item(cursor *c, npy_info *info, bool seen[3], bool *fortran)
{
    const char *key;
    size_t klen;
    nb_status st;
    if ((st = parse_string(c, &key, &klen)) != NB_OK ||
        (st = expect(c, ':', "':' after a dict key")) != NB_OK)
        return st;
    char shown[40];
    int k;
    if (str_is(key, klen, "descr")) {
        k = 0;
        st = parse_descr(c, info->u2_as, &info->dtype);
    } else if (str_is(key, klen, "fortran_order")) {
        k = 1;
        st = parse_fortran_order(c, fortran);
    } else if (str_is(key, klen, "shape")) {
        k = 2;
        st = parse_shape(c, info);
    } else {
        return nb_error(NB_ERR_FORMAT,
                        "unexpected header key '%s' (expected descr, fortran_order, shape)",
                        nb_printable(shown, sizeof shown, key, klen));
    }
    if (st != NB_OK)
        return st;
    if (seen[k])
        return nb_error(NB_ERR_FORMAT, "header key '%s' appears twice",
                        nb_printable(shown, sizeof shown, key, klen));
    seen[k] = true;
    return NB_OK;
}

/* Element and byte counts of the parsed shape (at most int64 elements, bytes within int64 and
 * size_t). */
static nb_status count_elements(npy_info *info)
{
    size_t esize = nb_dtype_size(info->dtype);
    uint64_t numel = 0, max_bytes = (uint64_t)INT64_MAX < SIZE_MAX ? INT64_MAX : SIZE_MAX;
    int at;
    switch (nb_shape_count(info->ndim, info->shape, esize, INT64_MAX, max_bytes, &numel, &at)) {
    case NB_SHAPE_NEGATIVE: /* parse_dim refuses those */
    case NB_SHAPE_TOO_MANY:
        return nb_error(NB_ERR_FORMAT,
                        "shape overflows: the element count exceeds int64 at dimension "
                        "%d (size %" PRId64 ")",
                        at, info->shape[at]);
    case NB_SHAPE_BYTES:
        return nb_error(NB_ERR_FORMAT,
                        "shape overflows: %" PRIu64 " elements of %zu bytes do not fit in "
                        "memory sizes",
                        numel, esize);
    case NB_SHAPE_OK: break;
    }
    info->numel = (int64_t)numel;
    info->data_bytes = (size_t)numel * esize;
    return NB_OK;
}

nb_status nb_npy_parse_header(const char *hdr, size_t len, npy_info *info)
{
    cursor c = {hdr, hdr, hdr + len};
    bool seen[3] = {false, false, false}, fortran = false; /* descr, fortran_order, shape */
    nb_status st = expect(&c, '{', "'{' opening the header dict");
    if (st != NB_OK)
        return st;
    for (;;) {
        if (peek(&c) == '}') {
            c.p++;
            break;
        }
        if ((st = parse_item(&c, info, seen, &fortran)) != NB_OK)
            return st;
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
    if (!seen[0] || !seen[1] || !seen[2])
        return nb_error(NB_ERR_FORMAT, "header is missing the key '%s'",
                        !seen[0]   ? "descr"
                        : !seen[1] ? "fortran_order"
                                   : "shape");
    if (fortran)
        return nb_error(NB_ERR_FORMAT, "fortran_order True is not supported (save the array "
                                       "with np.ascontiguousarray first)");
    return count_elements(info);
}
