/* tensor_internal.h - shared by the library's own files, not installed. */
#ifndef NABLA_TENSOR_INTERNAL_H
#define NABLA_TENSOR_INTERNAL_H

#include "nabla/tensor.h"

enum {
    NB_TFLAG_OWNED = 1u << 0,     /* caller-owned: nb_tensor_free releases it */
    NB_TFLAG_ARENA = 1u << 1,     /* lives in a graph's arena */
    NB_TFLAG_OWNS_GRAD = 1u << 2, /* grad was malloc'd for this tensor */
    NB_TFLAG_STALE = 1u << 3      /* its graph was reset */
};

/* Element count of a shape, with overflow and limit checks. */
nb_status nb_shape_numel(int ndim, const int64_t *shape, nb_dtype t, int64_t *numel);
/* 64-byte aligned allocation (free with free()); size rounded up to 64. */
void *nb_aligned_alloc(size_t bytes);

#endif
