/* npy.c - NumPy .npy reader (format 1.0, 2.0 and 3.0); the header parser is npy_header.c, the
 * writer npy_write.c.
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
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/npy.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "npy_internal.h"

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

/* ------------------------------------------------------------------------------------------ */
/* Public: parse an in-memory image.                                                          */

static nb_status parse_image(const unsigned char *buf, size_t len, void *ctx)
{
    size_t at = 0, hlen = 0;
    nb_status st = nb_npy_parse_preamble(buf, len, len, &at, &hlen);
    if (st != NB_OK)
        return st;
    npy_info info;
    memset(&info, 0, sizeof info);
    if ((st = nb_npy_parse_header((const char *)buf + at, hlen, &info)) != NB_OK)
        return st;
    size_t data_at = at + hlen; /* <= len, checked by nb_npy_parse_preamble */
    nb_tensor *t;
    if ((st = check_data_length(&info, len - data_at)) != NB_OK ||
        (st = nb_tensor_new(info.dtype, info.ndim, info.shape, &t)) != NB_OK)
        return st;
    if (info.data_bytes > 0)
        memcpy(t->data, buf + data_at, info.data_bytes);
    nb_tensor_from_le(t);
    *(nb_tensor **)ctx = t;
    return NB_OK;
}

nb_tensor *nb_npy_parse(const void *buf, size_t len)
{
    nb_tensor *t = NULL;
    return nb_parse_buffer(buf, len, "npy", parse_image, &t) == NB_OK ? t : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Public: load a file.                                                                       */

typedef struct npy_load {
    nb_dtype u2_as; /* see npy_info */
    nb_tensor *t;   /* the result */
} npy_load;

/* The header of an open file of `size` bytes into info; *pre[12] gets the first bytes (*npre of
 * them), which may hold the first data bytes too (*consumed of them). */
static nb_status load_header(FILE *f, size_t size, npy_info *info, unsigned char pre[12],
                             size_t *data_at, size_t *consumed)
{
    /* The preamble is at most 12 bytes; read what there is and let parse_preamble judge it. */
    size_t npre, at = 0, hlen = 0;
    nb_status st = nb_read_head(f, size, pre, 12, &npre, "preamble");
    if (st != NB_OK || (st = nb_npy_parse_preamble(pre, npre, size, &at, &hlen)) != NB_OK)
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
    if (st == NB_OK)
        st = nb_npy_parse_header(hdr, hlen, info);
    free(hdr);
    /* Bytes of data already consumed with the preamble (only for a header shorter than 2). */
    *consumed = npre - at > hlen ? npre - at - hlen : 0;
    *data_at = at + hlen; /* <= size, checked by parse_preamble */
    return st;
}

static nb_status load_file(FILE *f, size_t size, void *ctx)
{
    npy_load *l = ctx;
    npy_info info;
    memset(&info, 0, sizeof info);
    info.u2_as = l->u2_as;
    unsigned char pre[12];
    size_t data_at = 0, consumed = 0;
    nb_status st = load_header(f, size, &info, pre, &data_at, &consumed);
    nb_tensor *t;
    if (st != NB_OK || (st = check_data_length(&info, size - data_at)) != NB_OK ||
        (st = nb_tensor_new(info.dtype, info.ndim, info.shape, &t)) != NB_OK)
        return st;
    unsigned char *data = t->data;
    if (consumed > 0)
        memcpy(data, pre + data_at, consumed);
    st = nb_read_exact(f, data + consumed, info.data_bytes - consumed, "data");
    if (st != NB_OK) {
        nb_tensor_free(t);
        return st;
    }
    nb_tensor_from_le(t);
    l->t = t;
    return NB_OK;
}

static nb_tensor *load_path(const char *path, nb_dtype u2_as)
{
    npy_load l = {u2_as, NULL};
    if (nb_read_file(path, "npy", true, load_file, &l) == NB_OK)
        return l.t;
    nb_tensor_free(l.t);
    return NULL;
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
