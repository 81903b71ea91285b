/* idx_internal.h - what the IDX reader (idx.c) and its gzip half (idx_gzip.c) share.
 * Not installed. */
#ifndef NABLA_IDX_INTERNAL_H
#define NABLA_IDX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla/status.h"
#include "nabla/tensor.h"

#define IDX_MAX_HEADER (4 + 4 * NB_MAX_DIMS)

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

/* Parses the header from the first `avail` bytes of an image. Sets *need_more (and returns NB_OK)
 * when avail is too short to hold the whole header; the caller decides whether that means
 * truncation. Rejects a bad magic, type or ndim as soon as the bytes that show it are there. */
nb_status nb_idx_parse_header(const unsigned char *b, size_t avail, idx_info *info,
                              bool *need_more);
/* A header that stops short of its own end ("truncated: the <what> has ..."). */
nb_status nb_idx_truncated_header(const unsigned char *b, size_t avail, const char *what);
/* "[60000, 28, 28]" */
const char *nb_idx_dims_str(char *out, size_t cap, const idx_info *info);

/* gzip (idx_gzip.c) */
bool nb_idx_is_gzip(const unsigned char *buf, size_t len);
/* Inflates gzip bytes (one or more members) into a new malloc'd buffer, watching the IDX header
 * as it appears: a bad header stops inflation at once, and the output may never exceed
 * header + data bytes (nor NB_IDX_MAX_INFLATED). The buffer grows by doubling as output
 * arrives. */
nb_status nb_idx_inflate(const unsigned char *in, size_t in_len, unsigned char **out,
                         size_t *out_len);
/* The header of a gzip file of `size` bytes whose first npre bytes are pre, inflating only as
 * much as it takes; checks the header against what the compressed size can inflate to. */
nb_status nb_idx_peek_gzip(FILE *f, size_t size, const unsigned char *pre, size_t npre,
                           idx_info *info);

#endif
