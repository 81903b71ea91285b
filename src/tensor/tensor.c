/* tensor.c - creation, element access and conversion of caller-owned tensors.
 *
 * A caller-owned tensor is one malloc'd header plus one 64-byte-aligned data block; its gradient
 * (if any) is a third block. nb_tensor_free releases all three. Arena tensors (made by graphs)
 * carry NB_TFLAG_ARENA and are never freed one by one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/tensor.h"
#include "tensor_internal.h"
#include "fileread.h"

static const size_t dtype_sizes[NB_DTYPE_COUNT] = {4, 8, 2, 2, 4, 8, 1, 1};
static const char *const dtype_names[NB_DTYPE_COUNT] = {"f32", "f64", "f16", "bf16",
                                                        "i32", "i64", "u8",  "bool"};

size_t nb_dtype_size(nb_dtype t)
{
    if ((unsigned)t >= NB_DTYPE_COUNT) {
        nb_error(NB_ERR_ARG, "nb_dtype_size: dtype %d out of range [0, %d)", (int)t,
                 NB_DTYPE_COUNT);
        return 0;
    }
    return dtype_sizes[t];
}

const char *nb_dtype_name(nb_dtype t)
{
    /* no error recorded: messages print the dtypes of bad tensors through this */
    return (unsigned)t < NB_DTYPE_COUNT ? dtype_names[t] : "invalid";
}

bool nb_dtype_is_float(nb_dtype t)
{
    return t == NB_F32 || t == NB_F64 || t == NB_F16 || t == NB_BF16;
}

nb_dtype nb_dtype_compute(nb_dtype t)
{
    if ((unsigned)t >= NB_DTYPE_COUNT)
        nb_error(NB_ERR_ARG, "nb_dtype_compute: dtype %d out of range [0, %d)", (int)t,
                 NB_DTYPE_COUNT);
    return t == NB_F64 ? NB_F64 : NB_F32;
}

nb_status nb_check_tensor(const char *fn, const char *arg, const nb_tensor *x)
{
    if (!x)
        return nb_error_null(fn, arg);
    if (x->flags & NB_TFLAG_STALE)
        return nb_error(NB_ERR_STALE, "%s: %s is stale: its graph was reset after it was made", fn,
                        arg);
    if ((unsigned)x->dtype >= NB_DTYPE_COUNT)
        return nb_error(NB_ERR_ARG, "%s: %s has dtype %d, out of range [0, %d)", fn, arg,
                        (int)x->dtype, NB_DTYPE_COUNT);
    if (x->ndim < 0 || x->ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_ARG, "%s: %s has ndim %d, out of range [0, %d]", fn, arg, x->ndim,
                        NB_MAX_DIMS);
    uint64_t count = 0;
    int at;
    if (nb_shape_count(x->ndim, x->shape, 0, INT64_MAX, UINT64_MAX, &count, &at) != NB_SHAPE_OK)
        return nb_error(NB_ERR_ARG, "%s: %s has dimension %d of size %lld", fn, arg, at,
                        (long long)x->shape[at]);
    int64_t n = (int64_t)count;
    if (x->numel != n) {
        char b[96];
        return nb_error(NB_ERR_ARG, "%s: %s has numel %lld but its shape %s holds %lld", fn, arg,
                        (long long)x->numel, nb_shape_str(x, b, sizeof b), (long long)n);
    }
    if (!x->data && x->numel > 0)
        return nb_error(NB_ERR_ARG, "%s: %s has no data (NULL) for %lld elements", fn, arg,
                        (long long)x->numel);
    return NB_OK;
}

/* nb_shape_numel with the calling function's name in front of its message */
static nb_status shape_numel_in(const char *fn, int ndim, const int64_t *shape, nb_dtype t,
                                int64_t *numel)
{
    nb_status s = nb_shape_numel(ndim, shape, t, numel);
    if (s != NB_OK)
        nb_error(s, "%s: %s", fn, nb_last_error());
    return s;
}

/* whether v converts to dtype t without undefined behaviour (integers: in range, not NaN) */
static bool fits_dtype(nb_dtype t, double v)
{
    switch (t) {
    case NB_I32: return v > -2147483649.0 && v < 2147483648.0;
    case NB_I64: return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    case NB_U8: return v > -1.0 && v < 256.0;
    default: return true; /* floats take anything (rounded, or inf); bool tests v != 0 */
    }
}

nb_status nb_shape_numel(int ndim, const int64_t *shape, nb_dtype t, int64_t *numel)
{
    if ((unsigned)t >= NB_DTYPE_COUNT)
        return nb_error(NB_ERR_DTYPE, "invalid dtype %d", (int)t);
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_SHAPE, "%d dimensions requested, at most %d supported", ndim,
                        NB_MAX_DIMS);
    if (ndim > 0 && !shape)
        return nb_error(NB_ERR_ARG, "shape is NULL for a %d-d tensor", ndim);
    const int64_t limit = INT64_MAX / 8; /* bytes must fit too */
    uint64_t n = 0;
    int at;
    switch (nb_shape_count(ndim, shape, 8, (uint64_t)limit, SIZE_MAX, &n, &at)) {
    case NB_SHAPE_NEGATIVE:
        return nb_error(NB_ERR_SHAPE, "dimension %d has negative size %lld", at,
                        (long long)shape[at]);
    case NB_SHAPE_TOO_MANY:
        return nb_error(NB_ERR_SHAPE, "shape overflows: element count exceeds %lld",
                        (long long)limit);
    case NB_SHAPE_BYTES:
        return nb_error(NB_ERR_SHAPE, "tensor of %lld elements does not fit in memory",
                        (long long)n);
    case NB_SHAPE_OK: break;
    }
    *numel = (int64_t)n;
    return NB_OK;
}

void *nb_aligned_alloc(size_t bytes)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    return aligned_alloc(64, rounded);
}

/* A tensor larger than the machine's memory fails up front with its size, rather than after
 * the kernel's overcommit lets it in and the first touch of its pages kills the process. */
static bool fits_in_memory(nb_dtype t, int ndim, const int64_t *shape, size_t bytes)
{
    uint64_t mem = nb_physical_memory();
    if ((uint64_t)bytes <= mem)
        return true;
    nb_tensor view = {.dtype = t, .ndim = ndim};
    memcpy(view.shape, shape, (size_t)ndim * sizeof *shape);
    char s[96], need[32], have[32];
    nb_error(NB_ERR_NOMEM, "tensor %s %s needs %s, more than this machine's %s of memory",
             nb_shape_str(&view, s, sizeof s), nb_dtype_name(t),
             nb_bytes_str(need, sizeof need, bytes), nb_bytes_str(have, sizeof have, mem));
    return false;
}

static nb_tensor *tensor_empty_in(const char *fn, nb_dtype t, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (shape_numel_in(fn, ndim, shape, t, &numel) != NB_OK)
        return NULL;
    if (!fits_in_memory(t, ndim, shape, (size_t)numel * nb_dtype_size(t)))
        return NULL;
    nb_tensor *x = calloc(1, sizeof *x);
    if (!x) {
        nb_error(NB_ERR_NOMEM, "out of memory allocating a tensor header");
        return NULL;
    }
    size_t bytes = (size_t)numel * nb_dtype_size(t);
    x->data = nb_aligned_alloc(bytes);
    if (!x->data) {
        free(x);
        nb_error(NB_ERR_NOMEM, "out of memory allocating %zu bytes for a tensor", bytes);
        return NULL;
    }
    x->dtype = t;
    x->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        x->shape[i] = shape[i];
    x->numel = numel;
    x->node = -1;
    x->flags = NB_TFLAG_OWNED;
    return x;
}

nb_tensor *nb_tensor_empty(nb_dtype t, int ndim, const int64_t *shape)
{
    return tensor_empty_in("nb_tensor_empty", t, ndim, shape);
}

nb_tensor *nb_tensor_zeros(nb_dtype t, int ndim, const int64_t *shape)
{
    nb_tensor *x = tensor_empty_in("nb_tensor_zeros", t, ndim, shape);
    if (x)
        memset(x->data, 0, (size_t)x->numel * nb_dtype_size(t));
    return x;
}

static nb_tensor *tensor_full_in(const char *fn, nb_dtype t, int ndim, const int64_t *shape,
                                 double value)
{
    if ((unsigned)t < NB_DTYPE_COUNT && !fits_dtype(t, value)) {
        nb_error(NB_ERR_RANGE, "%s: value %g does not fit in dtype %s", fn, value,
                 nb_dtype_name(t));
        return NULL;
    }
    nb_tensor *x = tensor_empty_in(fn, t, ndim, shape);
    if (x)
        for (int64_t i = 0; i < x->numel; i++)
            nb_tensor_set(x, i, value);
    return x;
}

nb_tensor *nb_tensor_full(nb_dtype t, int ndim, const int64_t *shape, double value)
{
    return tensor_full_in("nb_tensor_full", t, ndim, shape, value);
}

nb_tensor *nb_tensor_ones(nb_dtype t, int ndim, const int64_t *shape)
{
    return tensor_full_in("nb_tensor_ones", t, ndim, shape, 1.0);
}

static nb_tensor *from_buffer_in(const char *fn, nb_dtype t, int ndim, const int64_t *shape,
                                 const void *data)
{
    int64_t numel;
    if (shape_numel_in(fn, ndim, shape, t, &numel) != NB_OK)
        return NULL;
    if (!data && numel > 0) {
        nb_error(NB_ERR_ARG, "%s: data is NULL for %lld elements", fn, (long long)numel);
        return NULL;
    }
    nb_tensor *x = tensor_empty_in(fn, t, ndim, shape);
    if (x && x->numel)
        memcpy(x->data, data, (size_t)x->numel * nb_dtype_size(t));
    return x;
}

nb_tensor *nb_tensor_from_buffer(nb_dtype t, int ndim, const int64_t *shape, const void *data)
{
    return from_buffer_in("nb_tensor_from_buffer", t, ndim, shape, data);
}

nb_tensor *nb_tensor_clone(const nb_tensor *x)
{
    if (nb_check_tensor("nb_tensor_clone", "x", x) != NB_OK)
        return NULL;
    return from_buffer_in("nb_tensor_clone", x->dtype, x->ndim, x->shape, x->data);
}

nb_tensor *nb_tensor_to_dtype(const nb_tensor *x, nb_dtype t)
{
    if (nb_check_tensor("nb_tensor_to_dtype", "x", x) != NB_OK)
        return NULL;
    nb_tensor *y = tensor_empty_in("nb_tensor_to_dtype", t, x->ndim, x->shape);
    for (int64_t i = 0; y && i < x->numel; i++) {
        double v = nb_tensor_get(x, i);
        if (!fits_dtype(t, v)) {
            nb_error(NB_ERR_RANGE, "nb_tensor_to_dtype: element %lld = %g does not fit in %s",
                     (long long)i, v, nb_dtype_name(t));
            nb_tensor_free(y);
            return NULL;
        }
        nb_tensor_set(y, i, v);
    }
    return y;
}

void nb_tensor_free(nb_tensor *x)
{
    if (!x || !(x->flags & NB_TFLAG_OWNED))
        return;
    free(x->grad);
    free(x->data);
    free(x);
}

nb_status nb_tensor_view(nb_tensor *out, nb_dtype t, int ndim, const int64_t *shape, void *data)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "nb_tensor_view: out is NULL");
    int64_t numel;
    nb_status s = shape_numel_in("nb_tensor_view", ndim, shape, t, &numel);
    if (s != NB_OK)
        return s;
    if (!data && numel > 0)
        return nb_error(NB_ERR_ARG, "nb_tensor_view: data is NULL for %lld elements",
                        (long long)numel);
    memset(out, 0, sizeof *out);
    out->dtype = t;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out->shape[i] = shape[i];
    out->numel = numel;
    out->data = data;
    out->node = -1;
    return NB_OK;
}

nb_status nb_tensor_set_requires_grad(nb_tensor *x, bool on)
{
    nb_status s = nb_check_tensor("nb_tensor_set_requires_grad", "x", x);
    if (s != NB_OK)
        return s;
    if (on && !nb_dtype_is_float(x->dtype))
        return nb_error(NB_ERR_DTYPE,
                        "nb_tensor_set_requires_grad: only float tensors can require grad (got %s)",
                        nb_dtype_name(x->dtype));
    if (on && !x->grad) {
        if (x->flags & NB_TFLAG_ARENA)
            return nb_error(NB_ERR_STATE, "nb_tensor_set_requires_grad: requires_grad can only "
                                          "be set on caller-owned leaves");
        size_t bytes = (size_t)x->numel * nb_dtype_size(nb_dtype_compute(x->dtype));
        x->grad = nb_aligned_alloc(bytes);
        if (!x->grad)
            return nb_error(NB_ERR_NOMEM, "out of memory allocating a %zu-byte gradient", bytes);
        memset(x->grad, 0, bytes);
        x->flags |= NB_TFLAG_OWNS_GRAD;
    }
    x->requires_grad = on;
    return NB_OK;
}

void nb_tensor_zero_grad(nb_tensor *x)
{
    if (nb_check_tensor("nb_tensor_zero_grad", "x", x) != NB_OK)
        return;
    if (x->grad)
        memset(x->grad, 0, (size_t)x->numel * nb_dtype_size(nb_dtype_compute(x->dtype)));
}

/* The element accessors check the index (an O(1) test, no per-tensor pass). */
static bool index_ok(const char *fn, const nb_tensor *x, int64_t i)
{
    if (!x) {
        nb_error_null(fn, "x");
        return false;
    }
    if (i < 0 || i >= x->numel || x->numel < 0) {
        char b[96];
        nb_error(NB_ERR_RANGE, "%s: index %lld out of range [0, %lld) for tensor %s", fn,
                 (long long)i, (long long)(x->numel > 0 ? x->numel : 0),
                 nb_shape_str(x, b, sizeof b));
        return false;
    }
    if (!x->data || (unsigned)x->dtype >= NB_DTYPE_COUNT) {
        nb_check_tensor(fn, "x", x); /* says which */
        return false;
    }
    return true;
}

double nb_tensor_get(const nb_tensor *x, int64_t i)
{
    if (!index_ok("nb_tensor_get", x, i))
        return NAN;
    const void *p = x->data;
    switch (x->dtype) {
    case NB_F32: return ((const float *)p)[i];
    case NB_F64: return ((const double *)p)[i];
    case NB_F16: return nb_f16_to_f32(((const uint16_t *)p)[i]);
    case NB_BF16: return nb_bf16_to_f32(((const uint16_t *)p)[i]);
    case NB_I32: return ((const int32_t *)p)[i];
    case NB_I64: return (double)((const int64_t *)p)[i];
    case NB_U8: return ((const uint8_t *)p)[i];
    case NB_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return NAN;
    }
}

void nb_tensor_set(nb_tensor *x, int64_t i, double v)
{
    if (!index_ok("nb_tensor_set", x, i))
        return;
    if (!fits_dtype(x->dtype, v)) {
        nb_error(NB_ERR_RANGE, "nb_tensor_set: value %g does not fit in dtype %s", v,
                 nb_dtype_name(x->dtype));
        return;
    }
    void *p = x->data;
    switch (x->dtype) {
    case NB_F32: ((float *)p)[i] = (float)v; break;
    case NB_F64: ((double *)p)[i] = v; break;
    case NB_F16: ((uint16_t *)p)[i] = nb_f32_to_f16((float)v); break;
    case NB_BF16: ((uint16_t *)p)[i] = nb_f32_to_bf16((float)v); break;
    case NB_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case NB_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case NB_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case NB_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: break;
    }
}

double nb_tensor_grad_get(const nb_tensor *x, int64_t i)
{
    if (!index_ok("nb_tensor_grad_get", x, i))
        return NAN;
    if (!x->grad)
        return 0.0;
    if (x->dtype == NB_F64)
        return ((const double *)x->grad)[i];
    return ((const float *)x->grad)[i];
}

char *nb_shape_str(const nb_tensor *x, char *buf, size_t len)
{
    if (!buf || len == 0) {
        nb_error(NB_ERR_ARG, "nb_shape_str: %s", !buf ? "buf is NULL" : "len is 0");
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    /* a NULL tensor prints as "[]"; a bad ndim prints its value (used in messages) */
    if (x && (x->ndim < 0 || x->ndim > NB_MAX_DIMS)) {
        snprintf(buf, len, "[ndim %d]", x->ndim);
        return buf;
    }
    for (int i = 0; x && i < x->ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "",
                                 (long long)x->shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

bool nb_shape_equal(const nb_tensor *a, const nb_tensor *b)
{
    if (!a || !b) {
        nb_error_null("nb_shape_equal", !a ? "a" : "b");
        return false;
    }
    if (a->ndim < 0 || a->ndim > NB_MAX_DIMS || b->ndim < 0 || b->ndim > NB_MAX_DIMS) {
        nb_error(NB_ERR_ARG, "nb_shape_equal: ndim %d and %d, out of range [0, %d]", a->ndim,
                 b->ndim, NB_MAX_DIMS);
        return false;
    }
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}
