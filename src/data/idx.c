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
 */
#define _POSIX_C_SOURCE 200809L
#define ZLIB_CONST

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "nabla/dataset.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "nabla/status.h"
#include "nabla/tensor.h"
#include "data_internal.h"

#define IDX_MAX_HEADER (4 + 4 * NB_MAX_DIMS)
/* zlib counts in uInt; feed and drain it in pieces well below 4 GiB. */
#define IDX_ZCHUNK ((size_t)1 << 30)
/* Plain files are decoded in pieces of this many bytes (a multiple of every element size). */
#define IDX_READ_CHUNK ((size_t)1 << 14)

/* What the header says. */
typedef struct idx_info {
    unsigned type;  /* the IDX type byte */
    nb_dtype dtype; /* the tensor dtype it becomes */
    size_t esize;   /* bytes per element in the file */
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    uint64_t numel;
    size_t header;     /* 4 + 4 * ndim */
    size_t data_bytes; /* numel * esize, checked not to overflow */
} idx_info;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* "[60000, 28, 28]" */
static const char *dims_str(char *out, size_t cap, const idx_info *info)
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
static nb_status parse_header(const unsigned char *b, size_t avail, idx_info *info, bool *need_more)
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
    /* Each dimension is < 2^32, so four of them can overflow uint64: multiply with checks. */
    uint64_t numel = 1;
    bool overflow = false;
    for (int i = 0; i < info->ndim; i++) {
        uint32_t d = be32(b + 4 + 4 * (size_t)i);
        info->shape[i] = d;
        if (d != 0 && numel > UINT64_MAX / d)
            overflow = true;
        else
            numel *= d;
    }
    for (int i = 0; i < info->ndim; i++)
        if (info->shape[i] == 0) { /* any zero dimension: an empty array */
            numel = 0;
            overflow = false;
        }
    char dims[96];
    if (overflow || numel > (uint64_t)(INT64_MAX / 8) / info->esize ||
        numel > (SIZE_MAX - IDX_MAX_HEADER) / info->esize)
        return nb_error(NB_ERR_FORMAT, "dimensions %s are too large (the byte count overflows)",
                        dims_str(dims, sizeof dims, info));
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
                        dims_str(dims, sizeof dims, info), info->data_bytes, info->numel,
                        info->esize, what, have);
    if (have > info->data_bytes)
        return nb_error(NB_ERR_FORMAT,
                        "%zu unexpected trailing bytes after the %zu bytes of data for "
                        "dimensions %s",
                        have - info->data_bytes, info->data_bytes,
                        dims_str(dims, sizeof dims, info));
    return NB_OK;
}

/* A header that stops short of its own end. */
static nb_status truncated_header(const unsigned char *b, size_t avail, const char *what)
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

static nb_tensor *new_tensor(const idx_info *info, nb_status *st)
{
    nb_tensor *t = nb_tensor_empty(info->dtype, info->ndim, info->shape);
    if (!t) {
        *st = nb_last_status();
        if (*st == NB_OK)
            *st = NB_ERR_NOMEM;
    }
    return t;
}

/* A whole uncompressed image in memory. */
static nb_status parse_plain(const unsigned char *buf, size_t len, const char *what,
                             nb_tensor **out)
{
    idx_info info;
    memset(&info, 0, sizeof info);
    bool need_more;
    nb_status st = parse_header(buf, len, &info, &need_more);
    if (st != NB_OK)
        return st;
    if (need_more)
        return truncated_header(buf, len, what);
    if ((st = check_data_length(&info, len - info.header, what)) != NB_OK)
        return st;
    nb_tensor *t = new_tensor(&info, &st);
    if (!t)
        return st;
    decode(&info, buf + info.header, t, 0, (size_t)info.numel);
    *out = t;
    return NB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* gzip                                                                                         */

static bool is_gzip(const unsigned char *buf, size_t len)
{
    return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

/* Deflate codes a 258-byte match in no fewer than 2 bits (a 1-bit length code and a 1-bit distance
 * code), so n compressed bytes inflate to at most 1032 n bytes (plus a few for a first literal).
 * A header that claims more than that lies, and is refused before any of its data is inflated. */
#define IDX_DEFLATE_MAX_RATIO 1032u

static nb_status check_deflate_bound(const idx_info *info, size_t in_len)
{
    uint64_t most = (uint64_t)in_len > (UINT64_MAX - 1024) / IDX_DEFLATE_MAX_RATIO
                        ? UINT64_MAX
                        : (uint64_t)in_len * IDX_DEFLATE_MAX_RATIO + 1024;
    uint64_t need = (uint64_t)info->header + info->data_bytes;
    char dims[96];
    if (need > most)
        return nb_error(NB_ERR_FORMAT,
                        "dimensions %s imply %" PRIu64 " bytes, but %zu bytes of gzip data "
                        "inflate to at most %" PRIu64 " (deflate expands at most %u:1)",
                        dims_str(dims, sizeof dims, info), need, in_len, most,
                        IDX_DEFLATE_MAX_RATIO);
    return NB_OK;
}

/* Inflates gzip bytes (one or more members) into a new malloc'd buffer, watching the IDX header
 * as it appears: a bad header stops inflation at once, and the output may never exceed
 * header + data bytes (nor NB_IDX_MAX_INFLATED). The buffer grows by doubling as output arrives. */
static nb_status inflate_idx(const unsigned char *in, size_t in_len, unsigned char **out,
                             size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int rc = inflateInit2(&zs, 15 + 16); /* 15-bit window, gzip wrapper only */
    if (rc != Z_OK)
        return nb_error(rc == Z_MEM_ERROR ? NB_ERR_NOMEM : NB_ERR_FORMAT,
                        "cannot start zlib inflate (code %d)", rc);
    size_t limit = NB_IDX_MAX_INFLATED; /* until the header is known */
    bool header_known = false;
    size_t cap = 4096, have = 0, in_pos = 0;
    unsigned char *buf = malloc(cap);
    nb_status st = NB_OK;
    if (!buf) {
        inflateEnd(&zs);
        return nb_error(NB_ERR_NOMEM, "out of memory for a %zu-byte inflate buffer", cap);
    }
    for (;;) {
        if (zs.avail_in == 0 && in_pos < in_len) {
            size_t n = in_len - in_pos < IDX_ZCHUNK ? in_len - in_pos : IDX_ZCHUNK;
            zs.next_in = in + in_pos;
            zs.avail_in = (uInt)n;
            in_pos += n;
        }
        if (have == cap) { /* have <= limit here, so limit + 1 > cap */
            size_t ncap = cap <= (limit + 1) / 2 ? 2 * cap : limit + 1;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                st = nb_error(NB_ERR_NOMEM,
                              "out of memory growing the inflate buffer to %zu "
                              "bytes",
                              ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t room = cap - have < IDX_ZCHUNK ? cap - have : IDX_ZCHUNK;
        zs.next_out = buf + have;
        zs.avail_out = (uInt)room;
        rc = inflate(&zs, Z_NO_FLUSH);
        have += room - zs.avail_out;
        if (!header_known) {
            idx_info info;
            memset(&info, 0, sizeof info);
            bool need_more;
            if ((st = parse_header(buf, have, &info, &need_more)) != NB_OK)
                break;
            if (!need_more) {
                char dims[96];
                if (info.data_bytes > NB_IDX_MAX_INFLATED - info.header) {
                    st = nb_error(NB_ERR_FORMAT,
                                  "dimensions %s imply %zu bytes, over the %zu-byte limit for "
                                  "gzip input",
                                  dims_str(dims, sizeof dims, &info), info.header + info.data_bytes,
                                  NB_IDX_MAX_INFLATED);
                    break;
                }
                if ((st = check_deflate_bound(&info, in_len)) != NB_OK)
                    break;
                limit = info.header + info.data_bytes;
                header_known = true;
            }
        }
        if (have > limit) {
            st = nb_error(NB_ERR_FORMAT,
                          header_known ? "gzip data inflates to more than the %zu bytes its IDX "
                                         "header implies"
                                       : "gzip data inflates to more than %zu bytes",
                          limit);
            break;
        }
        if (rc == Z_STREAM_END) {
            size_t left = in_len - in_pos + zs.avail_in;
            if (left == 0)
                break;
            const unsigned char *rest = in + (in_len - left);
            if (rest[0] == 0x1f && (left < 2 || rest[1] == 0x8b)) {
                /* Another gzip member (gzip -c a b > ab.gz); a lone 1f is a truncated one. */
                if (inflateReset(&zs) != Z_OK) {
                    st = nb_error(NB_ERR_FORMAT, "cannot reset zlib inflate");
                    break;
                }
                continue;
            }
            st = nb_error(NB_ERR_FORMAT, "%zu bytes of trailing data after the gzip stream", left);
            break;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == in_len) {
            st = nb_error(NB_ERR_FORMAT,
                          "truncated gzip stream: it ends after %zu compressed bytes (%zu "
                          "inflated) without its end marker and checksum",
                          in_len, have);
            break;
        }
        if (rc == Z_MEM_ERROR)
            st = nb_error(NB_ERR_NOMEM, "out of memory inside zlib inflate");
        else
            st = nb_error(NB_ERR_FORMAT, "corrupt gzip data at compressed byte %zu: %s",
                          in_pos - zs.avail_in, zs.msg ? zs.msg : "inflate failed");
        break;
    }
    inflateEnd(&zs);
    if (st != NB_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = have;
    return NB_OK;
}

static nb_status parse_any(const unsigned char *buf, size_t len, nb_tensor **out)
{
    if (!is_gzip(buf, len))
        return parse_plain(buf, len, "data", out);
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    nb_status st = inflate_idx(buf, len, &raw, &raw_len);
    if (st != NB_OK)
        return st;
    st = parse_plain(raw, raw_len, "inflated data", out);
    free(raw);
    return st;
}

nb_tensor *nb_idx_parse(const void *buf, size_t len)
{
    if (!buf && len > 0) {
        nb_error(NB_ERR_ARG, "idx: buffer is NULL but length is %zu", len);
        return NULL;
    }
    static const unsigned char nothing[1] = {0};
    nb_tensor *t = NULL;
    nb_status st = parse_any(buf ? buf : nothing, len, &t);
    if (st != NB_OK) {
        nb_error_prefix(st, "idx", NULL);
        return NULL;
    }
    return t;
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
    nb_status st = parse_header(pre, npre, &info, &need_more);
    if (st != NB_OK)
        return st;
    if (need_more) /* npre = min(size, IDX_MAX_HEADER), so the file itself is too short */
        return truncated_header(pre, npre, "file");
    if ((st = check_data_length(&info, size - info.header, "file")) != NB_OK)
        return st;
    nb_tensor *t = new_tensor(&info, &st);
    if (!t)
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
    if (st == NB_OK && fgetc(f) != EOF)
        st = nb_error(NB_ERR_FORMAT, "file grew while it was being read");
    if (st != NB_OK) {
        nb_tensor_free(t);
        return st;
    }
    *out = t;
    return NB_OK;
}

static nb_status load_file(FILE *f, nb_tensor **out)
{
    size_t size;
    nb_status fs = nb_regular_file_size(f, &size);
    if (fs != NB_OK)
        return fs;

    unsigned char pre[IDX_MAX_HEADER];
    size_t npre = size < sizeof pre ? size : sizeof pre;
    nb_status st = nb_read_exact(f, pre, npre, "header");
    if (st != NB_OK)
        return st;
    if (!is_gzip(pre, npre))
        return load_plain(f, pre, npre, size, out);

    /* gzip: the compressed bytes are real data, so holding them all is bounded by the file. */
    unsigned char *buf = malloc(size);
    if (!buf)
        return nb_error(NB_ERR_NOMEM, "out of memory for the %zu-byte compressed file", size);
    memcpy(buf, pre, npre);
    st = nb_read_exact(f, buf + npre, size - npre, "gzip data");
    if (st == NB_OK && fgetc(f) != EOF)
        st = nb_error(NB_ERR_FORMAT, "file grew while it was being read");
    if (st == NB_OK)
        st = parse_any(buf, size, out);
    free(buf);
    return st;
}

/* The header of an open file of `size` bytes, inflating only as much gzip as it takes. */
static nb_status peek_file(FILE *f, size_t size, idx_info *info)
{
    unsigned char pre[IDX_MAX_HEADER];
    size_t npre = size < sizeof pre ? size : sizeof pre;
    bool need_more;
    nb_status st = nb_read_exact(f, pre, npre, "header");
    if (st != NB_OK)
        return st;
    if (!is_gzip(pre, npre)) {
        if ((st = parse_header(pre, npre, info, &need_more)) != NB_OK)
            return st;
        if (need_more)
            return truncated_header(pre, npre, "file");
        return check_data_length(info, size - info->header, "file");
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int rc = inflateInit2(&zs, 15 + 16);
    if (rc != Z_OK)
        return nb_error(rc == Z_MEM_ERROR ? NB_ERR_NOMEM : NB_ERR_FORMAT,
                        "cannot start zlib inflate (code %d)", rc);
    unsigned char in[4096], out[IDX_MAX_HEADER];
    size_t have = 0;
    zs.next_in = pre;
    zs.avail_in = (uInt)npre;
    for (;;) {
        zs.next_out = out + have;
        zs.avail_out = (uInt)(sizeof out - have);
        rc = inflate(&zs, Z_NO_FLUSH);
        have = sizeof out - zs.avail_out;
        if ((st = parse_header(out, have, info, &need_more)) != NB_OK || !need_more)
            break;
        if (rc == Z_STREAM_END) { /* another member may follow (gzip -c a b > ab.gz) */
            if (inflateReset(&zs) != Z_OK) {
                st = nb_error(NB_ERR_FORMAT, "cannot reset zlib inflate");
                break;
            }
            if (zs.avail_in > 0)
                continue;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = nb_error(rc == Z_MEM_ERROR ? NB_ERR_NOMEM : NB_ERR_FORMAT,
                          "corrupt gzip data in the IDX header: %s",
                          zs.msg ? zs.msg : "inflate failed");
            break;
        }
        if (zs.avail_in == 0) {
            size_t n = fread(in, 1, sizeof in, f);
            if (n == 0) {
                st = ferror(f)
                         ? nb_error(NB_ERR_IO, "read error in the gzip data: %s", strerror(errno))
                         : truncated_header(out, have, "inflated data");
                break;
            }
            zs.next_in = in;
            zs.avail_in = (uInt)n;
        }
    }
    inflateEnd(&zs);
    if (st == NB_OK)
        st = check_deflate_bound(info, size);
    return st;
}

nb_status nb_idx_peek(const char *path, nb_dtype *dtype, int *ndim, int64_t shape[NB_MAX_DIMS])
{
    size_t size = 0;
    FILE *f = nb_open_regular(path, "idx", &size);
    if (!f)
        return nb_last_status();
    idx_info info;
    memset(&info, 0, sizeof info);
    nb_status st = peek_file(f, size, &info);
    fclose(f); /* read-only: nothing to lose */
    if (st != NB_OK) {
        nb_error_prefix(st, "idx", path);
        return st;
    }
    *dtype = info.dtype;
    *ndim = info.ndim;
    memcpy(shape, info.shape, sizeof info.shape);
    return NB_OK;
}

nb_tensor *nb_idx_load(const char *path)
{
    if (!path) {
        nb_error(NB_ERR_ARG, "idx: load path is NULL");
        return NULL;
    }
    FILE *f = nb_open_regular(path, "idx", NULL); /* refuses FIFOs, devices, directories */
    if (!f)
        return NULL;
    nb_tensor *t = NULL;
    nb_status st = load_file(f, &t);
    if (fclose(f) != 0 && st == NB_OK) {
        int e = errno;
        nb_tensor_free(t);
        t = NULL;
        st = nb_error(NB_ERR_IO, "cannot close: %s", strerror(e));
    }
    if (st != NB_OK) {
        nb_error_prefix(st, "idx", path);
        return NULL;
    }
    return t;
}
