/* npy_internal.h - what the .npy reader (npy.c), its header parser (npy_header.c) and its
 * writer (npy_write.c) share. Not installed. */
#ifndef NABLA_NPY_INTERNAL_H
#define NABLA_NPY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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

/* buf holds the first `avail` bytes of an image that is `total` bytes long (avail <= total).
 * On success *header_at is where the header starts and *header_len its length; both are checked
 * to lie inside the image and under NPY_MAX_HEADER. */
nb_status nb_npy_parse_preamble(const unsigned char *buf, size_t avail, size_t total,
                                size_t *header_at, size_t *header_len);
/* Parses the whole header dict into info (dtype, shape) and computes numel and data_bytes
 * (info->u2_as is read). */
nb_status nb_npy_parse_header(const char *hdr, size_t len, npy_info *info);

#endif
