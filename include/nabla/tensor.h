/* nabla/tensor.h - dense tensors: dtype, shape, creation, seeded random numbers.
 *
 * A tensor is contiguous and row-major, with 0 to 4 dimensions. Float tensors (f32, f64) take part
 * in autograd; f16/bf16 are storage types (read by the loss, computed in f32); i32/i64 hold class
 * targets; u8/bool hold masks and raw images.
 *
 * Ownership: tensors made by nb_tensor_* creation functions (empty, zeros, ones, full,
 * from_buffer, clone, to_dtype, rand, randn) are owned by the caller and released with
 * nb_tensor_free (which also frees their gradient). Tensors returned by ops belong to the graph
 * that made them and live until nb_graph_reset / nb_graph_free; never free them (nb_tensor_free
 * ignores them). nb_tensor_view wraps a caller's buffer without copying: the view borrows the
 * buffer, which must outlive every use of the view, and there is nothing to free. Pointer
 * arguments (shape, data to copy, x) are borrowed for the call only. The strings nb_dtype_name
 * returns are static.
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_DIMS 4

typedef enum nb_dtype {
    NB_F32 = 0,
    NB_F64,
    NB_F16,  /* IEEE binary16, storage only */
    NB_BF16, /* bfloat16, storage only */
    NB_I32,
    NB_I64,
    NB_U8,
    NB_BOOL, /* one byte, 0 = false */
    NB_DTYPE_COUNT
} nb_dtype;

typedef struct nb_graph nb_graph;

typedef struct nb_tensor {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    void *data;
    /* Gradient: same shape; dtype f64 for f64 tensors, f32 for every other float type
     * (half-precision tensors get fp32 gradients: nb_dtype_compute). NULL until needed. Owned
     * like the data: freed by nb_tensor_free, or by the graph for arena tensors. */
    void *grad;
    bool requires_grad;
    /* Bookkeeping, not for callers to change. */
    nb_graph *graph;     /* graph that owns this tensor, NULL for caller-owned tensors */
    uint64_t generation; /* the graph's generation when this tensor was made */
    int32_t node;        /* index of the tape node that produced it, -1 for leaves */
    uint32_t flags;
} nb_tensor;

/* Size in bytes of one element; 0 and NB_ERR_ARG for a dtype outside [0, NB_DTYPE_COUNT). */
size_t nb_dtype_size(nb_dtype t);
/* "f32", "f64", "f16", "bf16", "i32", "i64", "u8", "bool"; "invalid" for anything else (no error
 * is recorded: messages print bad dtypes through this). */
const char *nb_dtype_name(nb_dtype t);
/* false for every non-float value, valid or not. */
bool nb_dtype_is_float(nb_dtype t);
/* dtype used for arithmetic and gradients: f64 for f64, f32 for f32/f16/bf16 (and NB_F32 with
 * NB_ERR_ARG for an invalid dtype). */
nb_dtype nb_dtype_compute(nb_dtype t);

/* Creation (caller owns; free with nb_tensor_free). `shape` has `ndim` entries, each >= 0.
 * Returns NULL and sets nb_last_error on bad arguments (dtype, ndim outside [0, 4], a NULL shape,
 * a negative or overflowing size; for nb_tensor_full a value the dtype cannot hold, such as NaN
 * or 1e30 for i32: NB_ERR_RANGE) or allocation failure. */
nb_tensor *nb_tensor_empty(nb_dtype t, int ndim, const int64_t *shape);
nb_tensor *nb_tensor_zeros(nb_dtype t, int ndim, const int64_t *shape);
nb_tensor *nb_tensor_ones(nb_dtype t, int ndim, const int64_t *shape);
nb_tensor *nb_tensor_full(nb_dtype t, int ndim, const int64_t *shape, double value);
/* Copies `numel * nb_dtype_size(t)` bytes from `data` (NULL only if numel is 0). */
nb_tensor *nb_tensor_from_buffer(nb_dtype t, int ndim, const int64_t *shape, const void *data);
/* Deep copy (data only; the copy has no gradient and no graph). */
nb_tensor *nb_tensor_clone(const nb_tensor *x);
/* Converts to another dtype (float <-> float, int -> float, ...). An element the new dtype cannot
 * hold (NaN or out of range for an integer dtype) fails with NB_ERR_RANGE naming it. */
nb_tensor *nb_tensor_to_dtype(const nb_tensor *x, nb_dtype t);
void nb_tensor_free(nb_tensor *x); /* NULL-safe; ignores tensors it does not own */

/* A non-owning view of a caller's buffer, returned by value: no allocation, nothing to free.
 * Used to call the raw kernels (nb_xent_forward ...) on plain arrays. */
nb_status nb_tensor_view(nb_tensor *out, nb_dtype t, int ndim, const int64_t *shape, void *data);

/* Marks a caller-owned float tensor as a leaf whose gradient is accumulated by backward. The
 * gradient buffer is allocated here, once, and zeroed. */
nb_status nb_tensor_set_requires_grad(nb_tensor *x, bool on);
/* Sets the gradient of x to zero (no-op if it has none; a NULL or bad x sets the error). */
void nb_tensor_zero_grad(nb_tensor *x);

/* Element access as double (any dtype), by flat row-major index, bounds-checked: a NULL x or an
 * index outside [0, numel) returns NaN and sets the error (NB_ERR_ARG / NB_ERR_RANGE:
 * "nb_tensor_get: index 100 out of range [0, 6) for tensor [2, 3]"). nb_tensor_set writes
 * nothing and sets the error on the same conditions, and also when v does not fit the dtype
 * (NaN or out of range for i32/i64/u8: NB_ERR_RANGE). */
double nb_tensor_get(const nb_tensor *x, int64_t i);
void nb_tensor_set(nb_tensor *x, int64_t i, double v);
/* Gradient element as double (0 if the tensor has no gradient; NaN and the error as
 * nb_tensor_get for a NULL x or a bad index). */
double nb_tensor_grad_get(const nb_tensor *x, int64_t i);

/* Writes "[2, 3, 4]" into the caller's buf of len bytes (always NUL-terminated; "[]" for a NULL
 * x). Returns buf; a NULL buf or len 0 sets the error and writes nothing. */
char *nb_shape_str(const nb_tensor *x, char *buf, size_t len);
/* false, with the error set, if a or b is NULL or has ndim outside [0, 4]. */
bool nb_shape_equal(const nb_tensor *a, const nb_tensor *b);

/* ---- half precision conversions (round to nearest even; total: defined for every input) ---- */
float nb_f16_to_f32(uint16_t h);
uint16_t nb_f32_to_f16(float f);
float nb_bf16_to_f32(uint16_t h);
uint16_t nb_f32_to_bf16(float f);

/* ---- seeded random numbers ----
 * xoshiro256** seeded through splitmix64. The same seed gives the same numbers on every machine:
 * uniforms are built from integer bits, normals by the polar method with a logarithm computed in
 * plain IEEE arithmetic (no libm), so results do not depend on the platform's libm. */
typedef struct nb_rng {
    uint64_t s[4];
    double spare;
    bool has_spare;
} nb_rng;

/* The generator is a plain struct the caller owns (no allocation, nothing to free); every
 * function below borrows it for the call and advances it. A NULL r sets the error (NB_ERR_ARG);
 * the draws then return 0 (u64, below) or NaN. */
void nb_rng_seed(nb_rng *r, uint64_t seed);
uint64_t nb_rng_u64(nb_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double nb_rng_uniform(nb_rng *r);
/* Standard normal. An all-zero (never seeded) state gives NaN and the error: it would draw 0
 * forever. */
double nb_rng_normal(nb_rng *r);
/* Uniform integer in [0, n), unbiased. n must be > 0 (n = 0: 0 and NB_ERR_ARG). */
uint64_t nb_rng_below(nb_rng *r, uint64_t n);

/* U(lo, hi) and N(mean, std) tensors (f32 or f64), caller-owned. */
nb_tensor *nb_tensor_rand(nb_dtype t, int ndim, const int64_t *shape, nb_rng *r, double lo,
                          double hi);
nb_tensor *nb_tensor_randn(nb_dtype t, int ndim, const int64_t *shape, nb_rng *r, double mean,
                           double std);
/* Fill an existing float tensor. lo <= hi and mean finite, std >= 0 finite, else NB_ERR_ARG
 * (the same for nb_tensor_rand / nb_tensor_randn, which return NULL). */
nb_status nb_tensor_fill_rand(nb_tensor *x, nb_rng *r, double lo, double hi);
nb_status nb_tensor_fill_randn(nb_tensor *x, nb_rng *r, double mean, double std);

#ifdef __cplusplus
}
#endif
#endif
