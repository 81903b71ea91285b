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
/* A natural logarithm in plain IEEE double arithmetic (no libm: the same bits on every
 * platform), for the RNG's normals (rng.c). log(0) = -inf, log(x < 0) = NaN. Tests compare it
 * with libm's log. */
double nb_det_log(double x);

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

/* ---- the one shape validator ---- */

/* How a shape failed nb_shape_count. */
typedef enum {
    NB_SHAPE_OK,
    NB_SHAPE_NEGATIVE, /* shape[*at] < 0 */
    NB_SHAPE_TOO_MANY, /* the element count passes max_numel at dimension *at */
    NB_SHAPE_BYTES     /* numel * esize passes max_bytes */
} nb_shape_fault;

/* The element count of shape[0..ndim) (ndim already in [0, NB_MAX_DIMS]) into *numel: any zero
 * dimension makes it 0 whatever the other sizes are; otherwise the running product may not pass
 * max_numel, and numel * esize may not pass max_bytes (esize 0: no byte limit). No message:
 * each caller names the fault in its own terms (a file's dimensions, a caller's tensor). */
nb_shape_fault nb_shape_count(int ndim, const int64_t *shape, size_t esize, uint64_t max_numel,
                              uint64_t max_bytes, uint64_t *numel, int *at);

/* Whether a caller-built tensor header can be read as a whole (writers, data sets): dtype in
 * range (NB_ERR_DTYPE), ndim in [0, NB_MAX_DIMS], sizes >= 0 and a product within int64 and
 * size_t that equals numel (NB_ERR_SHAPE), data present when numel > 0 (NB_ERR_ARG). *bytes (may
 * be NULL) gets numel * element size. Messages say "tensor ..." ("tensor numel 4 does not match
 * its shape (3 elements)"); the caller prefixes what the tensor is. */
nb_status nb_tensor_check_layout(const nb_tensor *x, size_t *bytes);

/* nb_tensor_empty as a status: *out is the new tensor, or NULL with its error (the message
 * nb_tensor_empty left, e.g. more than the machine's memory). */
nb_status nb_tensor_new(nb_dtype t, int ndim, const int64_t *shape, nb_tensor **out);

#endif
