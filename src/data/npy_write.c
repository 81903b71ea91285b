/* npy_write.c - NumPy .npy writer. It reproduces NumPy 1.24's np.save byte for byte (key order,
 * spacing, the spare spaces it leaves after the header for in-place growth, padding so data
 * starts at a multiple of 64) and goes through the one writer (tensor/fileio.h: temporary file,
 * fsync, rename, directory fsync) so a reader never sees a half-written file. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nabla/npy.h"
#include "../tensor/fileio.h"
#include "../tensor/tensor_internal.h"
#include "npy_internal.h"
#include "npy_write.h"

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
    if (x && (unsigned)x->dtype < NB_DTYPE_COUNT && !npy_descr(x->dtype))
        return nb_error(NB_ERR_DTYPE, "dtype %s has no NumPy equivalent (convert it to f32 first)",
                        nb_dtype_name(x->dtype));
    return nb_tensor_check_layout(x, NULL);
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
