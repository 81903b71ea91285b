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

/* Puts the name of public function fn in front of the current message (replacing a leading
 * "nb_helper: " of a public function it called) when s is a failure; returns s. */
nb_status nb_error_in(const char *fn, nb_status s);

/* A NULL tensor argument `arg` of public function `fn`: NB_ERR_ARG and "fn: arg is NULL".
 * nb_error_null_input, for the data inputs of graph ops and nb_backward's root (where a NULL is
 * the result of an earlier failed op, as in nb_relu(g, nb_matmul(g, bad, ...))), keeps the
 * earlier status and goes on with "; earlier error: <first failure of the chain>". */
#define NB_EARLIER_ERROR "; earlier error: "
nb_status nb_error_null(const char *fn, const char *arg);
nb_status nb_error_null_input(const char *fn, const char *arg);

/* Entry check of a tensor argument of public function `fn`: NULL (see nb_error_null), stale
 * (NB_ERR_STALE), or a header that is not a tensor: dtype, ndim, a shape whose product is not
 * numel, no data for a non-empty tensor (NB_ERR_ARG). O(ndim), no pass over the data. */
nb_status nb_check_tensor(const char *fn, const char *arg, const nb_tensor *x);

#endif
