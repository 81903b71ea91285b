/* idx.c - IDX reader (the MNIST format), plain or gzip-compressed.
 *
 * File layout (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"):
 *
 *   offset 0   0x00 0x00 TYPE NDIM            magic; TYPE is the element type, NDIM 1..4 here
 *   offset 4   NDIM big-endian uint32         the dimensions, slowest first
 *   then       big-endian data                product(dims) elements, nothing after it
 *
 *   TYPE  0x08 u8   0x09 i8   0x0B i16   0x0C i32   0x0D f32   0x0E f64
 *
 * Reading is written for hostile input, like npy.c: the header is validated before anything is
 * allocated, the element count is multiplied with overflow checks, and the data must be exactly
 * as long as the dimensions say. gzip input (1f 8b) is inflated by zlib into a buffer that grows
 * only as real output arrives, and inflation stops with an error as soon as the output passes what
 * the header implies (or NB_IDX_MAX_INFLATED before the header is known), so a zip bomb or a
 * header that lies costs at most about twice the bytes the header honestly accounts for.
 * The gzip half is idx_gzip.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/dataset.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "data_internal.h"
#include "idx_internal.h"

/* Plain files are decoded in pieces of this many bytes (a multiple of every element size). */
#define IDX_READ_CHUNK ((size_t)1 << 14)

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* "[60000, 28, 28]" */
const char *nb_idx_dims_str(char *out, size_t cap, const idx_info *info)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < info->ndim && n < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%" PRId64, i == 0 ? "[" : ", ", info->shape[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n < cap)
        snprintf(out + n, cap - n, "]");
    return out;
}

/* Maps the type byte to the tensor dtype and the element size in the file. */
static bool idx_type(unsigned type, nb_dtype *dtype, size_t *esize)
{
    switch (type) {
    case 0x08: *dtype = NB_U8, *esize = 1; return true;
    case 0x09: *dtype = NB_I32, *esize = 1; return true;
    case 0x0B: *dtype = NB_I32, *esize = 2; return true;
    case 0x0C: *dtype = NB_I32, *esize = 4; return true;
    case 0x0D: *dtype = NB_F32, *esize = 4; return true;
    case 0x0E: *dtype = NB_F64, *esize = 8; return true;
    default: return false;
    }
}

/* Parses the header from the first `avail` bytes of an image. Sets *need_more (and returns NB_OK)
 * when avail is too short to hold the whole header; the caller decides whether that means
 * truncation. Rejects a bad magic, type or ndim as soon as the bytes that show it are there. */

nb_status nb_idx_parse_header(const unsigned char *b, size_t avail, idx_info *info, bool *need_more)
{
    *need_more = false;
    /* Judge the bytes we have before asking for more, so garbage is rejected early. */
    if ((avail >= 1 && b[0] != 0) || (avail >= 2 && b[1] != 0)) {
        unsigned char m[4] = {0, 0, 0, 0};
        memcpy(m, b, avail < 4 ? avail : 4);
        return nb_error(NB_ERR_FORMAT,
                        "bad magic %02x %02x %02x %02x: not an IDX file (expected 00 00 TYPE NDIM)",
                        m[0], m[1], m[2], m[3]);
    }
    if (avail >= 3 && !idx_type(b[2], &info->dtype, &info->esize))
        return nb_error(NB_ERR_FORMAT,
                        "unsupported IDX type 0x%02x (supported: 0x08 u8, 0x09 i8, 0x0B i16, "
                        "0x0C i32, 0x0D f32, 0x0E f64)",
                        b[2]);
    if (avail >= 4 && (b[3] < 1 || b[3] > NB_MAX_DIMS))
        return nb_error(NB_ERR_FORMAT, "IDX file has %u dimensions, 1 to %d are supported", b[3],
                        NB_MAX_DIMS);
    if (avail < 4) {
        *need_more = true;
        return NB_OK;
    }
    info->type = b[2];
    info->ndim = b[3];
    info->header = 4 + 4 * (size_t)info->ndim;
    if (avail < info->header) {
        *need_more = true;
        return NB_OK;
    }
    for (int i = 0; i < info->ndim; i++)
        info->shape[i] = be32(b + 4 + 4 * (size_t)i);
    /* Each dimension is < 2^32, so four of them can overflow uint64: the validator multiplies
     * with checks; the bytes must fit an int64 tensor and a size_t after the header. */
    uint64_t numel = 0, max_bytes = (uint64_t)(INT64_MAX / 8);
    if (max_bytes > SIZE_MAX - IDX_MAX_HEADER)
        max_bytes = SIZE_MAX - IDX_MAX_HEADER;
    int at;
    char dims[96];
    if (nb_shape_count(info->ndim, info->shape, info->esize, UINT64_MAX, max_bytes, &numel, &at) !=
        NB_SHAPE_OK)
        return nb_error(NB_ERR_FORMAT, "dimensions %s are too large (the byte count overflows)",
                        nb_idx_dims_str(dims, sizeof dims, info));
    info->numel = numel;
    info->data_bytes = (size_t)numel * info->esize;
    return NB_OK;
}

/* The data after the header must be exactly data_bytes long. `what` names the container. */

static nb_status check_data_length(const idx_info *info, size_t have, const char *what)
{
    char dims[96];
    if (have < info->data_bytes)
        return nb_error(NB_ERR_FORMAT,
                        "truncated: dimensions %s need %zu bytes of data (%" PRIu64
                        " x %zu), the %s has %zu",
                        nb_idx_dims_str(dims, sizeof dims, info), info->data_bytes, info->numel,
                        info->esize, what, have);
    if (have > info->data_bytes)
        return nb_error(NB_ERR_FORMAT,
                        "%zu unexpected trailing bytes after the %zu bytes of data for "
                        "dimensions %s",
                        have - info->data_bytes, info->data_bytes,
                        nb_idx_dims_str(dims, sizeof dims, info));
    return NB_OK;
}

/* A header that stops short of its own end. */
nb_status nb_idx_truncated_header(const unsigned char *b, size_t avail, const char *what)
{
    if (avail < 4)
        return nb_error(NB_ERR_FORMAT, "truncated: the %s has %zu bytes, the IDX magic needs 4",
                        what, avail);
    return nb_error(NB_ERR_FORMAT,
                    "truncated: the %s has %zu bytes, a %u-dimensional IDX header needs %u", what,
                    avail, b[3], 4u + 4u * b[3]);
}

/* Decodes `count` big-endian elements from src into t starting at element `first`. */
static void decode(const idx_info *info, const unsigned char *src, nb_tensor *t, size_t first,
                   size_t count)
{
    switch (info->type) {
    case 0x08: memcpy((unsigned char *)t->data + first, src, count); break;
    case 0x09: {
        int32_t *o = (int32_t *)t->data + first;
        for (size_t i = 0; i < count; i++)
            o[i] = src[i] < 128 ? (int32_t)src[i] : (int32_t)src[i] - 256;
        break;
    }
    case 0x0B: {
        int32_t *o = (int32_t *)t->data + first;
        for (size_t i = 0; i < count; i++) {
            int32_t u = (int32_t)src[2 * i] << 8 | src[2 * i + 1];
            o[i] = u < 32768 ? u : u - 65536;
        }
        break;
    }
    case 0x0C: {
        int32_t *o = (int32_t *)t->data + first;
        for (size_t i = 0; i < count; i++) {
            int64_t u = be32(src + 4 * i);
            o[i] = (int32_t)(u <= INT32_MAX ? u : u - ((int64_t)1 << 32));
        }
        break;
    }
    case 0x0D: {
        float *o = (float *)t->data + first;
        for (size_t i = 0; i < count; i++) {
            uint32_t u = be32(src + 4 * i);
            memcpy(&o[i], &u, 4);
        }
        break;
    }
    case 0x0E: {
        double *o = (double *)t->data + first;
        for (size_t i = 0; i < count; i++) {
            uint64_t u = be64(src + 8 * i);
            memcpy(&o[i], &u, 8);
        }
        break;
    }
    default: break; /* unreachable: parse_header accepted the type */
    }
}

/* A whole uncompressed image in memory. */
static nb_status parse_plain(const unsigned char *buf, size_t len, const char *what,
                             nb_tensor **out)
{
    idx_info info;
    memset(&info, 0, sizeof info);
    bool need_more;
    nb_status st = nb_idx_parse_header(buf, len, &info, &need_more);
    if (st != NB_OK)
        return st;
    if (need_more)
        return nb_idx_truncated_header(buf, len, what);
    nb_tensor *t;
    if ((st = check_data_length(&info, len - info.header, what)) != NB_OK ||
        (st = nb_tensor_new(info.dtype, info.ndim, info.shape, &t)) != NB_OK)
        return st;
    decode(&info, buf + info.header, t, 0, (size_t)info.numel);
    *out = t;
    return NB_OK;
}

static nb_status parse_any(const unsigned char *buf, size_t len, void *ctx)
{
    nb_tensor **out = ctx;
    if (!nb_idx_is_gzip(buf, len))
        return parse_plain(buf, len, "data", out);
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    nb_status st = nb_idx_inflate(buf, len, &raw, &raw_len);
    if (st != NB_OK)
        return st;
    st = parse_plain(raw, raw_len, "inflated data", out);
    free(raw);
    return st;
}

nb_tensor *nb_idx_parse(const void *buf, size_t len)
{
    nb_tensor *t = NULL;
    return nb_parse_buffer(buf, len, "idx", parse_any, &t) == NB_OK ? t : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                        */

/* A plain file: the header from `pre`, then the data decoded piece by piece straight into the
 * tensor, after its length has been checked against the file size. */
static nb_status load_plain(FILE *f, const unsigned char *pre, size_t npre, size_t size,
                            nb_tensor **out)
{
    idx_info info;
    memset(&info, 0, sizeof info);
    bool need_more;
    nb_status st = nb_idx_parse_header(pre, npre, &info, &need_more);
    if (st != NB_OK)
        return st;
    if (need_more) /* npre = min(size, IDX_MAX_HEADER), so the file itself is too short */
        return nb_idx_truncated_header(pre, npre, "file");
    nb_tensor *t;
    if ((st = check_data_length(&info, size - info.header, "file")) != NB_OK ||
        (st = nb_tensor_new(info.dtype, info.ndim, info.shape, &t)) != NB_OK)
        return st;
    /* Bytes of data that came with the header read: decode them first. */
    size_t early = npre - info.header; /* a whole number of elements? not necessarily */
    unsigned char chunk[IDX_READ_CHUNK];
    size_t kept = early;
    memcpy(chunk, pre + info.header, early);
    size_t done = 0; /* elements decoded */
    size_t remaining = info.data_bytes - early;
    while (st == NB_OK && (remaining > 0 || kept >= info.esize)) {
        size_t want = sizeof chunk - kept;
        if (want > remaining)
            want = remaining;
        st = nb_read_exact(f, chunk + kept, want, "data");
        if (st != NB_OK)
            break;
        remaining -= want;
        kept += want;
        size_t count = kept / info.esize;
        decode(&info, chunk, t, done, count);
        done += count;
        size_t used = count * info.esize;
        memmove(chunk, chunk + used, kept - used);
        kept -= used;
    }
    if (st != NB_OK) {
        nb_tensor_free(t);
        return st;
    }
    *out = t;
    return NB_OK;
}

static nb_status load_file(FILE *f, size_t size, void *ctx)
{
    unsigned char pre[IDX_MAX_HEADER];
    size_t npre;
    nb_status st = nb_read_head(f, size, pre, sizeof pre, &npre, "header");
    if (st != NB_OK)
        return st;
    if (!nb_idx_is_gzip(pre, npre))
        return load_plain(f, pre, npre, size, ctx);
    /* gzip: the compressed bytes are real data, so holding them all is bounded by the file. */
    unsigned char *buf;
    if ((st = nb_read_rest(f, size, pre, npre, "gzip data", &buf)) != NB_OK)
        return st;
    st = parse_any(buf, size, ctx); /* nb_read_file then checks the file did not grow */
    free(buf);
    return st;
}

/* The header of an open file of `size` bytes, inflating only as much gzip as it takes. */
static nb_status peek_file(FILE *f, size_t size, void *ctx)
{
    idx_info *info = ctx;
    unsigned char pre[IDX_MAX_HEADER];
    size_t npre;
    bool need_more;
    nb_status st = nb_read_head(f, size, pre, sizeof pre, &npre, "header");
    if (st != NB_OK)
        return st;
    if (nb_idx_is_gzip(pre, npre))
        return nb_idx_peek_gzip(f, size, pre, npre, info);
    if ((st = nb_idx_parse_header(pre, npre, info, &need_more)) != NB_OK)
        return st;
    if (need_more)
        return nb_idx_truncated_header(pre, npre, "file");
    return check_data_length(info, size - info->header, "file");
}

nb_status nb_idx_peek(const char *path, nb_dtype *dtype, int *ndim, int64_t shape[NB_MAX_DIMS])
{
    idx_info info;
    memset(&info, 0, sizeof info);
    nb_status st = nb_read_file(path, "idx", false, peek_file, &info);
    if (st != NB_OK)
        return st;
    *dtype = info.dtype;
    *ndim = info.ndim;
    memcpy(shape, info.shape, sizeof info.shape);
    return NB_OK;
}

nb_tensor *nb_idx_load(const char *path)
{
    nb_tensor *t = NULL;
    if (nb_read_file(path, "idx", true, load_file, &t) == NB_OK)
        return t;
    nb_tensor_free(t);
    return NULL;
}
