/* shape.c - the one shape validator (see tensor_internal.h): every reader, writer and entry
 * check counts a shape's elements and bytes here, with the same overflow rules. */
#include <inttypes.h>
#include <stdint.h>

#include "tensor_internal.h"

nb_shape_fault nb_shape_count(int ndim, const int64_t *shape, size_t esize, uint64_t max_numel,
                              uint64_t max_bytes, uint64_t *numel, int *at)
{
    *at = -1;
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            *at = i;
            return NB_SHAPE_NEGATIVE;
        }
        empty |= shape[i] == 0;
    }
    /* a zero dimension makes the tensor empty whatever the other sizes are */
    uint64_t n = empty ? 0 : 1;
    for (int i = 0; i < ndim && !empty; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (n > max_numel / d) {
            *at = i;
            return NB_SHAPE_TOO_MANY;
        }
        n *= d;
    }
    *numel = n;
    if (esize > 0 && n > max_bytes / esize)
        return NB_SHAPE_BYTES;
    return NB_SHAPE_OK;
}

nb_status nb_tensor_check_layout(const nb_tensor *x, size_t *bytes)
{
    if (!x)
        return nb_error(NB_ERR_ARG, "tensor is NULL");
    if ((unsigned)x->dtype >= NB_DTYPE_COUNT)
        return nb_error(NB_ERR_DTYPE, "invalid dtype %d", (int)x->dtype);
    if (x->ndim < 0 || x->ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_SHAPE, "tensor has %d dimensions, at most %d supported", x->ndim,
                        NB_MAX_DIMS);
    uint64_t numel = 0;
    int at;
    switch (nb_shape_count(x->ndim, x->shape, 0, INT64_MAX, UINT64_MAX, &numel, &at)) {
    case NB_SHAPE_NEGATIVE:
        return nb_error(NB_ERR_SHAPE, "dimension %d has negative size %" PRId64, at, x->shape[at]);
    case NB_SHAPE_TOO_MANY: return nb_error(NB_ERR_SHAPE, "shape overflows int64");
    case NB_SHAPE_BYTES:
    case NB_SHAPE_OK: break;
    }
    if ((int64_t)numel != x->numel)
        return nb_error(NB_ERR_SHAPE,
                        "tensor numel %" PRId64 " does not match its shape (%" PRIu64 " elements)",
                        x->numel, numel);
    size_t esize = nb_dtype_size(x->dtype);
    if (numel > SIZE_MAX / esize)
        return nb_error(NB_ERR_SHAPE, "tensor of %" PRIu64 " elements is too large", numel);
    if (numel > 0 && !x->data)
        return nb_error(NB_ERR_ARG, "tensor data is NULL");
    if (bytes)
        *bytes = (size_t)numel * esize;
    return NB_OK;
}

nb_status nb_tensor_new(nb_dtype t, int ndim, const int64_t *shape, nb_tensor **out)
{
    *out = nb_tensor_empty(t, ndim, shape);
    if (*out)
        return NB_OK;
    nb_status st = nb_last_status();
    return st != NB_OK ? st : nb_error(NB_ERR_NOMEM, "out of memory for a tensor");
}
