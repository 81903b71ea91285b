/* idx_gzip.c - gzip-compressed IDX files (see idx.c): inflation bounded by what the header
 * implies, and reading just the header of a compressed file. */
#define _POSIX_C_SOURCE 200809L
#define ZLIB_CONST

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "nabla/dataset.h"
#include "idx_internal.h"

/* zlib counts in uInt; feed and drain it in pieces well below 4 GiB. */
#define IDX_ZCHUNK ((size_t)1 << 30)

bool nb_idx_is_gzip(const unsigned char *buf, size_t len)
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
                        nb_idx_dims_str(dims, sizeof dims, info), need, in_len, most,
                        IDX_DEFLATE_MAX_RATIO);
    return NB_OK;
}

/* Inflates gzip bytes (one or more members) into a new malloc'd buffer, watching the IDX header
 * as it appears: a bad header stops inflation at once, and the output may never exceed
 * header + data bytes (nor NB_IDX_MAX_INFLATED). The buffer grows by doubling as output arrives. */

static nb_status start_inflate(z_stream *zs)
{
    memset(zs, 0, sizeof *zs);
    int rc = inflateInit2(zs, 15 + 16); /* 15-bit window, gzip wrapper only */
    if (rc != Z_OK)
        return nb_error(rc == Z_MEM_ERROR ? NB_ERR_NOMEM : NB_ERR_FORMAT,
                        "cannot start zlib inflate (code %d)", rc);
    return NB_OK;
}

/* The inflation under way: its output buffer and the limit on its length. */
typedef struct inflation {
    z_stream zs;
    const unsigned char *in;
    size_t in_len, in_pos;
    unsigned char *buf;
    size_t cap, have;
    size_t limit;      /* NB_IDX_MAX_INFLATED until the header is known */
    bool header_known; /* then header + data bytes */
} inflation;

/* Doubles the output buffer, never past limit + 1 (have <= limit here, so limit + 1 > cap). */
static nb_status grow(inflation *z)
{
    size_t ncap = z->cap <= (z->limit + 1) / 2 ? 2 * z->cap : z->limit + 1;
    unsigned char *nb = realloc(z->buf, ncap);
    if (!nb)
        return nb_error(NB_ERR_NOMEM, "out of memory growing the inflate buffer to %zu bytes",
                        ncap);
    z->buf = nb;
    z->cap = ncap;
    return NB_OK;
}

/* Once the output holds the whole header: checks it and sets the limit from it. */
static nb_status watch_header(inflation *z)
{
    idx_info info;
    memset(&info, 0, sizeof info);
    bool need_more;
    nb_status st = nb_idx_parse_header(z->buf, z->have, &info, &need_more);
    if (st != NB_OK || need_more)
        return st;
    char dims[96];
    if (info.data_bytes > NB_IDX_MAX_INFLATED - info.header)
        return nb_error(NB_ERR_FORMAT,
                        "dimensions %s imply %zu bytes, over the %zu-byte limit for gzip input",
                        nb_idx_dims_str(dims, sizeof dims, &info), info.header + info.data_bytes,
                        NB_IDX_MAX_INFLATED);
    if ((st = check_deflate_bound(&info, z->in_len)) != NB_OK)
        return st;
    z->limit = info.header + info.data_bytes;
    z->header_known = true;
    return NB_OK;
}

/* At the end of a gzip member: *done when the input ends there, else the next member starts
 * (gzip -c a b > ab.gz); anything else after it is an error. */
static nb_status member_end(inflation *z, bool *done)
{
    size_t left = z->in_len - z->in_pos + z->zs.avail_in;
    *done = left == 0;
    if (*done)
        return NB_OK;
    const unsigned char *rest = z->in + (z->in_len - left);
    if (rest[0] == 0x1f && (left < 2 || rest[1] == 0x8b)) { /* a lone 1f is a truncated one */
        if (inflateReset(&z->zs) != Z_OK)
            return nb_error(NB_ERR_FORMAT, "cannot reset zlib inflate");
        return NB_OK;
    }
    return nb_error(NB_ERR_FORMAT, "%zu bytes of trailing data after the gzip stream", left);
}

/* The error for an inflate return code other than Z_OK and Z_STREAM_END. */
static nb_status inflate_failed(const inflation *z, int rc)
{
    if (rc == Z_BUF_ERROR && z->zs.avail_in == 0 && z->in_pos == z->in_len)
        return nb_error(NB_ERR_FORMAT,
                        "truncated gzip stream: it ends after %zu compressed bytes (%zu "
                        "inflated) without its end marker and checksum",
                        z->in_len, z->have);
    if (rc == Z_MEM_ERROR)
        return nb_error(NB_ERR_NOMEM, "out of memory inside zlib inflate");
    return nb_error(NB_ERR_FORMAT, "corrupt gzip data at compressed byte %zu: %s",
                    z->in_pos - z->zs.avail_in, z->zs.msg ? z->zs.msg : "inflate failed");
}

/* One round: feeds input, makes room, inflates, checks the header and the limit. */
static nb_status inflate_step(inflation *z, bool *done)
{
    if (z->zs.avail_in == 0 && z->in_pos < z->in_len) {
        size_t n = z->in_len - z->in_pos < IDX_ZCHUNK ? z->in_len - z->in_pos : IDX_ZCHUNK;
        z->zs.next_in = z->in + z->in_pos;
        z->zs.avail_in = (uInt)n;
        z->in_pos += n;
    }
    nb_status st;
    if (z->have == z->cap && (st = grow(z)) != NB_OK)
        return st;
    size_t room = z->cap - z->have < IDX_ZCHUNK ? z->cap - z->have : IDX_ZCHUNK;
    z->zs.next_out = z->buf + z->have;
    z->zs.avail_out = (uInt)room;
    int rc = inflate(&z->zs, Z_NO_FLUSH);
    z->have += room - z->zs.avail_out;
    if (!z->header_known && (st = watch_header(z)) != NB_OK)
        return st;
    if (z->have > z->limit)
        return nb_error(NB_ERR_FORMAT,
                        z->header_known ? "gzip data inflates to more than the %zu bytes its IDX "
                                          "header implies"
                                        : "gzip data inflates to more than %zu bytes",
                        z->limit);
    if (rc == Z_STREAM_END)
        return member_end(z, done);
    return rc == Z_OK ? NB_OK : inflate_failed(z, rc);
}

nb_status nb_idx_inflate(const unsigned char *in, size_t in_len, unsigned char **out,
                         size_t *out_len)
{
    inflation z;
    nb_status st = start_inflate(&z.zs);
    if (st != NB_OK)
        return st;
    z.in = in;
    z.in_len = in_len;
    z.in_pos = 0;
    z.cap = 4096;
    z.have = 0;
    z.limit = NB_IDX_MAX_INFLATED;
    z.header_known = false;
    z.buf = malloc(z.cap);
    if (!z.buf) {
        inflateEnd(&z.zs);
        return nb_error(NB_ERR_NOMEM, "out of memory for a %zu-byte inflate buffer", z.cap);
    }
    bool done = false;
    while (st == NB_OK && !done)
        st = inflate_step(&z, &done);
    inflateEnd(&z.zs);
    if (st != NB_OK) {
        free(z.buf);
        return st;
    }
    *out = z.buf;
    *out_len = z.have;
    return NB_OK;
}

nb_status nb_idx_peek_gzip(FILE *f, size_t size, const unsigned char *pre, size_t npre,
                           idx_info *info)
{
    z_stream zs;
    nb_status st = start_inflate(&zs);
    if (st != NB_OK)
        return st;
    unsigned char in[4096], out[IDX_MAX_HEADER];
    size_t have = 0;
    bool need_more;
    zs.next_in = pre;
    zs.avail_in = (uInt)npre;
    for (;;) {
        zs.next_out = out + have;
        zs.avail_out = (uInt)(sizeof out - have);
        int rc = inflate(&zs, Z_NO_FLUSH);
        have = sizeof out - zs.avail_out;
        if ((st = nb_idx_parse_header(out, have, info, &need_more)) != NB_OK || !need_more)
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
                         : nb_idx_truncated_header(out, have, "inflated data");
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
