/* test_api_args.c - every public function, called with NULL and out-of-range arguments.
 *
 * One row per function declared in include/nabla.h and the headers in include/nabla/.
 * test_every_function_ has_a_row parses those headers and fails when a declared function has no row
 * here (or a row names a function that is not declared), so a new public function cannot be added
 * without saying what it does with bad arguments.
 *
 * Each bad call is made after planting a sentinel message (nb_error(NB_OK, SENTINEL)): the call
 * must fail with the expected status AND replace the message with its own, which must name the
 * function (or, for the file readers and writers, their module) and the offending argument or
 * value. Functions that cannot fail (conversions, names of codes) have rows that show it.
 * The whole file runs under ASan/UBSan (make sanitize) and valgrind (scripts/valgrind.sh).
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "tensor/tensor_internal.h" /* nb_det_log */
#include "loss/xent_ref.h"          /* nb_xent_reference: test-only */
#include "optim/optim_internal.h"   /* nb_optim_step_reference: test-only */
#include "loss/lce_ref.h"           /* nb_lce_reference: test-only */

#define SENTINEL "SENTINEL-MESSAGE"

static int n_bad; /* failed checks, counted so that one run lists them all */

static void plant(void)
{
    nb_error(NB_OK, SENTINEL); /* a message with no failure: "nothing failed yet" */
}

/* The last call failed with `want`, its message is its own (not the sentinel), and it holds
 * both substrings. */
static void check_msg(const char *what, int line, nb_status got, nb_status want, const char *name,
                      const char *detail)
{
    const char *msg = nb_last_error();
    bool ok = got == want && nb_last_status() == want && !strstr(msg, SENTINEL) &&
              strstr(msg, name) && (!detail || strstr(msg, detail));
    if (!ok) {
        print_error("line %d: %s\n  got status %d (%s), last status %d, message \"%s\"\n"
                    "  want status %d (%s), message naming \"%s\" and \"%s\"\n",
                    line, what, (int)got, nb_status_name(got), (int)nb_last_status(), msg,
                    (int)want, nb_status_name(want), name, detail ? detail : "");
        n_bad++;
    }
}

/* a call returning nb_status */
#define ST(call, want, name, detail)                                                               \
    do {                                                                                           \
        plant();                                                                                   \
        nb_status s_ = (call);                                                                     \
        check_msg(#call, __LINE__, s_, want, name, detail);                                        \
    } while (0)

/* a call returning a pointer that must be NULL */
#define NUL(call, want, name, detail)                                                              \
    do {                                                                                           \
        plant();                                                                                   \
        const void *p_ = (const void *)(call);                                                     \
        if (p_) {                                                                                  \
            print_error("line %d: %s returned non-NULL\n", __LINE__, #call);                       \
            n_bad++;                                                                               \
        }                                                                                          \
        check_msg(#call, __LINE__, nb_last_status(), want, name, detail);                          \
    } while (0)

/* a call returning a value or nothing: `cond` (which may use v_) must hold afterwards */
#define VAL(type, call, cond, want, name, detail)                                                  \
    do {                                                                                           \
        plant();                                                                                   \
        type v_ = (call);                                                                          \
        (void)v_;                                                                                  \
        if (!(cond)) {                                                                             \
            print_error("line %d: %s: %s does not hold\n", __LINE__, #call, #cond);                \
            n_bad++;                                                                               \
        }                                                                                          \
        check_msg(#call, __LINE__, nb_last_status(), want, name, detail);                          \
    } while (0)

#define VOID(call, want, name, detail)                                                             \
    do {                                                                                           \
        plant();                                                                                   \
        call;                                                                                      \
        check_msg(#call, __LINE__, nb_last_status(), want, name, detail);                          \
    } while (0)

/* a call that must succeed and leave the (sentinel) message alone */
#define QUIET(call)                                                                                \
    do {                                                                                           \
        plant();                                                                                   \
        call;                                                                                      \
        if (strcmp(nb_last_error(), SENTINEL) != 0 || nb_last_status() != NB_OK)                   \
            print_error("line %d: %s changed the error state: \"%s\"\n", __LINE__, #call,          \
                        nb_last_error());                                                          \
        assert_string_equal(nb_last_error(), SENTINEL);                                            \
    } while (0)

/* ---- fixtures ---- */

static const int64_t s23[2] = {2, 3}, s2[1] = {2}, s3[1] = {3};

static nb_tensor *f32_23(void)
{
    nb_tensor *t = nb_tensor_zeros(NB_F32, 2, s23);
    assert_non_null(t);
    return t;
}

/* a tensor header that is not a tensor: numel disagrees with the shape */
static nb_tensor bad_header(void)
{
    static float data[6];
    nb_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = NB_F32;
    t.ndim = 2;
    t.shape[0] = 2;
    t.shape[1] = 3;
    t.numel = 600;
    t.data = data;
    t.node = -1;
    return t;
}

static nb_tensor *gc_fn(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    return nb_sum(g, in[0]);
}

static nb_tensor *gc_null_fn(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    (void)g, (void)in, (void)n, (void)ctx;
    return NULL;
}

/* ======================================================================================== */
/* status.h                                                                                  */

static void row_nb_last_error(void)
{
    nb_error(NB_ERR_IO, "x%s", "y");
    assert_string_equal(nb_last_error(), "xy");
}
static void row_nb_status_name(void)
{
    assert_string_equal(nb_status_name((nb_status)999), "unknown status"); /* total */
    assert_string_equal(nb_status_name(NB_ERR_RANGE), "value out of range");
}
static void row_nb_error(void)
{
    ST(nb_error(NB_ERR_ARG, NULL), NB_ERR_ARG, "nb_error", "fmt is NULL");
    /* an argument may be the current message itself */
    nb_error(NB_ERR_IO, "first");
    nb_error(NB_ERR_SHAPE, "second after %s", nb_last_error());
    assert_string_equal(nb_last_error(), "second after first");
}
static void row_nb_last_status(void)
{
    nb_error(NB_ERR_FORMAT, "f");
    assert_int_equal(nb_last_status(), NB_ERR_FORMAT);
}
static void row_nb_clear_error(void)
{
    nb_error(NB_ERR_FORMAT, "f");
    nb_clear_error();
    assert_int_equal(nb_last_status(), NB_OK);
    assert_string_equal(nb_last_error(), "");
}

/* ======================================================================================== */
/* tensor.h                                                                                  */

static void row_nb_dtype_size(void)
{
    VAL(size_t, nb_dtype_size((nb_dtype)42), v_ == 0, NB_ERR_ARG, "nb_dtype_size", "42");
    VAL(size_t, nb_dtype_size((nb_dtype)-1), v_ == 0, NB_ERR_ARG, "nb_dtype_size", "-1");
}
static void row_nb_dtype_name(void)
{
    /* total: used inside messages, so it records nothing */
    QUIET(assert_string_equal(nb_dtype_name((nb_dtype)42), "invalid"));
}
static void row_nb_dtype_is_float(void)
{
    QUIET(assert_false(nb_dtype_is_float((nb_dtype)42))); /* total */
}
static void row_nb_dtype_compute(void)
{
    VAL(nb_dtype, nb_dtype_compute((nb_dtype)42), v_ == NB_F32, NB_ERR_ARG, "nb_dtype_compute",
        "42");
}
static void row_nb_tensor_empty(void)
{
    int64_t neg[1] = {-4};
    NUL(nb_tensor_empty(NB_F32, 5, s23), NB_ERR_SHAPE, "nb_tensor_empty", "5 dimensions");
    NUL(nb_tensor_empty(NB_F32, -1, s23), NB_ERR_SHAPE, "nb_tensor_empty", "-1");
    NUL(nb_tensor_empty(NB_F32, 2, NULL), NB_ERR_ARG, "nb_tensor_empty", "shape is NULL");
    NUL(nb_tensor_empty((nb_dtype)42, 2, s23), NB_ERR_DTYPE, "nb_tensor_empty", "42");
    NUL(nb_tensor_empty(NB_F32, 1, neg), NB_ERR_SHAPE, "nb_tensor_empty", "-4");
}
static void row_nb_tensor_zeros(void)
{
    NUL(nb_tensor_zeros(NB_F32, 2, NULL), NB_ERR_ARG, "nb_tensor_zeros", "shape is NULL");
    NUL(nb_tensor_zeros((nb_dtype)42, 2, s23), NB_ERR_DTYPE, "nb_tensor_zeros", "42");
}
static void row_nb_tensor_ones(void)
{
    NUL(nb_tensor_ones(NB_F32, 9, s23), NB_ERR_SHAPE, "nb_tensor_ones", "9 dimensions");
}
static void row_nb_tensor_full(void)
{
    NUL(nb_tensor_full(NB_I32, 2, s23, 1e30), NB_ERR_RANGE, "nb_tensor_full", "i32");
    NUL(nb_tensor_full(NB_U8, 2, s23, NAN), NB_ERR_RANGE, "nb_tensor_full", "nan");
    NUL(nb_tensor_full(NB_F32, 2, NULL, 1), NB_ERR_ARG, "nb_tensor_full", "shape is NULL");
}
static void row_nb_tensor_from_buffer(void)
{
    float d[6] = {0};
    NUL(nb_tensor_from_buffer(NB_F32, 2, s23, NULL), NB_ERR_ARG, "nb_tensor_from_buffer",
        "data is NULL");
    NUL(nb_tensor_from_buffer(NB_F32, 7, s23, d), NB_ERR_SHAPE, "nb_tensor_from_buffer", "7");
}
static void row_nb_tensor_clone(void)
{
    nb_tensor b = bad_header();
    NUL(nb_tensor_clone(NULL), NB_ERR_ARG, "nb_tensor_clone", "x is NULL");
    NUL(nb_tensor_clone(&b), NB_ERR_ARG, "nb_tensor_clone", "numel 600");
}
static void row_nb_tensor_to_dtype(void)
{
    nb_tensor *a = nb_tensor_full(NB_F32, 1, s2, NAN);
    NUL(nb_tensor_to_dtype(NULL, NB_F64), NB_ERR_ARG, "nb_tensor_to_dtype", "x is NULL");
    NUL(nb_tensor_to_dtype(a, (nb_dtype)42), NB_ERR_DTYPE, "nb_tensor_to_dtype", "42");
    NUL(nb_tensor_to_dtype(a, NB_I32), NB_ERR_RANGE, "nb_tensor_to_dtype", "nan");
    nb_tensor_free(a);
}
static void row_nb_tensor_free(void)
{
    QUIET(nb_tensor_free(NULL)); /* NULL-safe, like free() */
}
static void row_nb_tensor_view(void)
{
    nb_tensor v;
    float d[6];
    ST(nb_tensor_view(NULL, NB_F32, 2, s23, d), NB_ERR_ARG, "nb_tensor_view", "out is NULL");
    ST(nb_tensor_view(&v, NB_F32, 2, s23, NULL), NB_ERR_ARG, "nb_tensor_view", "data is NULL");
    ST(nb_tensor_view(&v, NB_F32, 5, s23, d), NB_ERR_SHAPE, "nb_tensor_view", "5 dimensions");
    ST(nb_tensor_view(&v, (nb_dtype)42, 2, s23, d), NB_ERR_DTYPE, "nb_tensor_view", "42");
}
static void row_nb_tensor_set_requires_grad(void)
{
    nb_tensor *i = nb_tensor_zeros(NB_I32, 1, s2);
    nb_tensor b = bad_header();
    ST(nb_tensor_set_requires_grad(NULL, true), NB_ERR_ARG, "nb_tensor_set_requires_grad",
       "x is NULL");
    ST(nb_tensor_set_requires_grad(i, true), NB_ERR_DTYPE, "nb_tensor_set_requires_grad", "i32");
    ST(nb_tensor_set_requires_grad(&b, true), NB_ERR_ARG, "nb_tensor_set_requires_grad",
       "numel 600");
    nb_tensor_free(i);
}
static void row_nb_tensor_zero_grad(void)
{
    VOID(nb_tensor_zero_grad(NULL), NB_ERR_ARG, "nb_tensor_zero_grad", "x is NULL");
}
static void row_nb_tensor_get(void)
{
    nb_tensor *a = f32_23();
    VAL(double, nb_tensor_get(a, 100), isnan(v_), NB_ERR_RANGE, "nb_tensor_get",
        "index 100 out of range [0, 6) for tensor [2, 3]");
    VAL(double, nb_tensor_get(a, -1), isnan(v_), NB_ERR_RANGE, "nb_tensor_get", "index -1");
    VAL(double, nb_tensor_get(a, 6), isnan(v_), NB_ERR_RANGE, "nb_tensor_get", "index 6");
    VAL(double, nb_tensor_get(NULL, 0), isnan(v_), NB_ERR_ARG, "nb_tensor_get", "x is NULL");
    nb_tensor_free(a);
}
static void row_nb_tensor_set(void)
{
    nb_tensor *a = f32_23(), *i = nb_tensor_zeros(NB_I32, 1, s2);
    VOID(nb_tensor_set(a, 6, 1.0), NB_ERR_RANGE, "nb_tensor_set", "index 6");
    VOID(nb_tensor_set(a, -3, 1.0), NB_ERR_RANGE, "nb_tensor_set", "index -3");
    VOID(nb_tensor_set(NULL, 0, 1.0), NB_ERR_ARG, "nb_tensor_set", "x is NULL");
    VOID(nb_tensor_set(i, 0, 1e20), NB_ERR_RANGE, "nb_tensor_set", "i32");
    assert_true(nb_tensor_get(i, 0) == 0.0); /* nothing written */
    nb_tensor_free(a);
    nb_tensor_free(i);
}
static void row_nb_tensor_grad_get(void)
{
    nb_tensor *a = f32_23();
    VAL(double, nb_tensor_grad_get(NULL, 0), isnan(v_), NB_ERR_ARG, "nb_tensor_grad_get",
        "x is NULL");
    VAL(double, nb_tensor_grad_get(a, 100), isnan(v_), NB_ERR_RANGE, "nb_tensor_grad_get",
        "index 100");
    QUIET(assert_true(nb_tensor_grad_get(a, 0) == 0.0)); /* no gradient: 0, not an error */
    nb_tensor_free(a);
}
static void row_nb_shape_str(void)
{
    char buf[8];
    nb_tensor b = bad_header();
    b.ndim = 99;
    VAL(char *, nb_shape_str(NULL, NULL, 8), v_ == NULL, NB_ERR_ARG, "nb_shape_str", "buf is NULL");
    VAL(char *, nb_shape_str(NULL, buf, 0), v_ == buf, NB_ERR_ARG, "nb_shape_str", "len is 0");
    QUIET(assert_string_equal(nb_shape_str(NULL, buf, sizeof buf), "[]"));
    QUIET(assert_string_equal(nb_shape_str(&b, buf, sizeof buf), "[ndim 9")); /* truncated */
}
static void row_nb_shape_equal(void)
{
    nb_tensor *a = f32_23();
    nb_tensor b = bad_header();
    b.ndim = -7;
    VAL(bool, nb_shape_equal(NULL, a), !v_, NB_ERR_ARG, "nb_shape_equal", "a is NULL");
    VAL(bool, nb_shape_equal(a, NULL), !v_, NB_ERR_ARG, "nb_shape_equal", "b is NULL");
    VAL(bool, nb_shape_equal(a, &b), !v_, NB_ERR_ARG, "nb_shape_equal", "-7");
    nb_tensor_free(a);
}
static void row_nb_f16_to_f32(void)
{
    QUIET(assert_true(isnan(nb_f16_to_f32(0x7e00)))); /* total over all 65536 inputs */
}
static void row_nb_f32_to_f16(void)
{
    QUIET(assert_int_equal(nb_f32_to_f16(1e30f), 0x7c00)); /* total: overflow is inf */
}
static void row_nb_bf16_to_f32(void)
{
    QUIET(assert_true(isnan(nb_bf16_to_f32(0x7fc0))));
}
static void row_nb_f32_to_bf16(void)
{
    QUIET(assert_true(isnan(nb_bf16_to_f32(nb_f32_to_bf16(NAN)))));
}
static void row_nb_rng_seed(void)
{
    VOID(nb_rng_seed(NULL, 1), NB_ERR_ARG, "nb_rng_seed", "r is NULL");
}
static void row_nb_rng_u64(void)
{
    VAL(uint64_t, nb_rng_u64(NULL), v_ == 0, NB_ERR_ARG, "nb_rng_u64", "r is NULL");
}
static void row_nb_rng_uniform(void)
{
    VAL(double, nb_rng_uniform(NULL), isnan(v_), NB_ERR_ARG, "nb_rng_uniform", "r is NULL");
}
static void row_nb_rng_normal(void)
{
    nb_rng zero;
    memset(&zero, 0, sizeof zero);
    VAL(double, nb_rng_normal(NULL), isnan(v_), NB_ERR_ARG, "nb_rng_normal", "r is NULL");
    /* an unseeded all-zero state only ever gives 0: the polar method would never end */
    VAL(double, nb_rng_normal(&zero), isnan(v_), NB_ERR_ARG, "nb_rng_normal", "all zero");
}
static void row_nb_rng_below(void)
{
    nb_rng r;
    nb_rng_seed(&r, 1);
    VAL(uint64_t, nb_rng_below(&r, 0), v_ == 0, NB_ERR_ARG, "nb_rng_below", "n is 0");
    VAL(uint64_t, nb_rng_below(NULL, 5), v_ == 0, NB_ERR_ARG, "nb_rng_below", "r is NULL");
}
static void row_nb_tensor_rand(void)
{
    nb_rng r;
    nb_rng_seed(&r, 1);
    NUL(nb_tensor_rand(NB_F32, 2, s23, NULL, 0, 1), NB_ERR_ARG, "nb_tensor_rand", "r is NULL");
    NUL(nb_tensor_rand(NB_F32, 2, s23, &r, 1, 0), NB_ERR_ARG, "nb_tensor_rand", "lo <= hi");
    NUL(nb_tensor_rand(NB_F32, 2, s23, &r, 0, INFINITY), NB_ERR_ARG, "nb_tensor_rand", "inf");
    NUL(nb_tensor_rand(NB_I32, 2, s23, &r, 0, 1), NB_ERR_DTYPE, "nb_tensor_rand", "i32");
    NUL(nb_tensor_rand(NB_F32, 6, s23, &r, 0, 1), NB_ERR_SHAPE, "nb_tensor_rand", "6");
}
static void row_nb_tensor_randn(void)
{
    nb_rng r;
    nb_rng_seed(&r, 1);
    NUL(nb_tensor_randn(NB_F32, 2, s23, NULL, 0, 1), NB_ERR_ARG, "nb_tensor_randn", "r is NULL");
    NUL(nb_tensor_randn(NB_F32, 2, s23, &r, 0, -1), NB_ERR_ARG, "nb_tensor_randn", "std -1");
    NUL(nb_tensor_randn(NB_F32, 2, s23, &r, NAN, 1), NB_ERR_ARG, "nb_tensor_randn", "nan");
}
static void row_nb_tensor_fill_rand(void)
{
    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_tensor *a = f32_23();
    ST(nb_tensor_fill_rand(NULL, &r, 0, 1), NB_ERR_ARG, "nb_tensor_fill_rand", "x is NULL");
    ST(nb_tensor_fill_rand(a, NULL, 0, 1), NB_ERR_ARG, "nb_tensor_fill_rand", "r is NULL");
    ST(nb_tensor_fill_rand(a, &r, NAN, 1), NB_ERR_ARG, "nb_tensor_fill_rand", "nan");
    nb_tensor_free(a);
}
static void row_nb_tensor_fill_randn(void)
{
    nb_rng r, zero;
    nb_rng_seed(&r, 1);
    memset(&zero, 0, sizeof zero);
    nb_tensor *a = f32_23();
    ST(nb_tensor_fill_randn(NULL, &r, 0, 1), NB_ERR_ARG, "nb_tensor_fill_randn", "x is NULL");
    ST(nb_tensor_fill_randn(a, NULL, 0, 1), NB_ERR_ARG, "nb_tensor_fill_randn", "r is NULL");
    ST(nb_tensor_fill_randn(a, &r, 0, INFINITY), NB_ERR_ARG, "nb_tensor_fill_randn", "inf");
    ST(nb_tensor_fill_randn(a, &zero, 0, 1), NB_ERR_ARG, "nb_tensor_fill_randn", "all zero");
    nb_tensor_free(a);
}
static void row_nb_det_log(void)
{
    QUIET(assert_true(isnan(nb_det_log(-1.0)))); /* total: a value for every input */
    QUIET(assert_true(nb_det_log(0.0) == -INFINITY));
}

/* ======================================================================================== */
/* graph.h                                                                                   */

static void row_nb_graph_new(void)
{
    nb_graph *g = nb_graph_new(); /* no arguments; NB_ERR_NOMEM is covered by test_alloc_fail */
    assert_non_null(g);
    nb_graph_free(g);
}
static void row_nb_graph_free(void)
{
    QUIET(nb_graph_free(NULL));
}
static void row_nb_graph_reset(void)
{
    VOID(nb_graph_reset(NULL), NB_ERR_ARG, "nb_graph_reset", "g is NULL");
}
static void row_nb_graph_set_grad_enabled(void)
{
    VAL(bool, nb_graph_set_grad_enabled(NULL, true), !v_, NB_ERR_ARG, "nb_graph_set_grad_enabled",
        "g is NULL");
}
static void row_nb_graph_grad_enabled(void)
{
    VAL(bool, nb_graph_grad_enabled(NULL), !v_, NB_ERR_ARG, "nb_graph_grad_enabled", "g is NULL");
}
static void row_nb_graph_set_anomaly_detection(void)
{
    VOID(nb_graph_set_anomaly_detection(NULL, true), NB_ERR_ARG, "nb_graph_set_anomaly_detection",
         "g is NULL");
}
static void row_nb_graph_anomaly_detection(void)
{
    VAL(bool, nb_graph_anomaly_detection(NULL), !v_, NB_ERR_ARG, "nb_graph_anomaly_detection",
        "g is NULL");
}
static void row_nb_graph_size(void)
{
    VAL(int, nb_graph_size(NULL), v_ == 0, NB_ERR_ARG, "nb_graph_size", "g is NULL");
}
static void row_nb_graph_generation(void)
{
    VAL(uint64_t, nb_graph_generation(NULL), v_ == 0, NB_ERR_ARG, "nb_graph_generation",
        "g is NULL");
}
static void row_nb_graph_arena_capacity(void)
{
    VAL(size_t, nb_graph_arena_capacity(NULL), v_ == 0, NB_ERR_ARG, "nb_graph_arena_capacity",
        "g is NULL");
}
static void row_nb_graph_arena_used(void)
{
    VAL(size_t, nb_graph_arena_used(NULL), v_ == 0, NB_ERR_ARG, "nb_graph_arena_used", "g is NULL");
}
static void row_nb_graph_arena_allocations(void)
{
    VAL(uint64_t, nb_graph_arena_allocations(NULL), v_ == 0, NB_ERR_ARG,
        "nb_graph_arena_allocations", "g is NULL");
}
static void row_nb_backward(void)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *a = f32_23(), *b = nb_tensor_zeros(NB_F32, 1, s2);
    assert_int_equal(nb_tensor_set_requires_grad(a, true), NB_OK);
    nb_tensor *y = nb_relu(g, a);
    assert_non_null(y);
    nb_tensor bad = bad_header();
    ST(nb_backward(NULL, y, NULL), NB_ERR_ARG, "nb_backward", "g is NULL");
    ST(nb_backward(g, NULL, NULL), NB_ERR_ARG, "nb_backward", "root is NULL");
    ST(nb_backward(g, y, NULL), NB_ERR_SHAPE, "nb_backward", "[2, 3]");
    ST(nb_backward(g, y, b), NB_ERR_SHAPE, "nb_backward", "[2]");
    ST(nb_backward(g, y, &bad), NB_ERR_ARG, "nb_backward", "numel 600");
    nb_graph_reset(g);
    ST(nb_backward(g, y, NULL), NB_ERR_STALE, "nb_backward", "nb_graph_reset");
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}
static void row_nb_graph_check(void)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *a = f32_23();
    nb_tensor bad = bad_header();
    ST(nb_graph_check(NULL, a), NB_ERR_ARG, "nb_graph_check", "g is NULL");
    ST(nb_graph_check(g, NULL), NB_ERR_ARG, "nb_graph_check", "x is NULL");
    ST(nb_graph_check(g, &bad), NB_ERR_ARG, "nb_graph_check", "numel 600");
    nb_graph_free(g);
    nb_tensor_free(a);
}
static void row_nb_graph_tensor(void)
{
    nb_graph *g = nb_graph_new();
    NUL(nb_graph_tensor(NULL, NB_F32, 2, s23), NB_ERR_ARG, "nb_graph_tensor", "g is NULL");
    NUL(nb_graph_tensor(g, NB_F32, 2, NULL), NB_ERR_ARG, "nb_graph_tensor", "shape is NULL");
    NUL(nb_graph_tensor(g, (nb_dtype)42, 2, s23), NB_ERR_DTYPE, "nb_graph_tensor", "42");
    nb_graph_free(g);
}
static void row_nb_tensor_op_name(void)
{
    VAL(const char *, nb_tensor_op_name(NULL), !strcmp(v_, "invalid"), NB_ERR_ARG,
        "nb_tensor_op_name", "x is NULL");
}

/* ======================================================================================== */
/* gradcheck.h                                                                               */

static void row_nb_gradcheck(void)
{
    nb_tensor *x = nb_tensor_zeros(NB_F64, 1, s3);
    nb_gradcheck_result res;
    nb_tensor bad = bad_header();
    nb_tensor *in[1] = {x}, *badin[1] = {&bad};
    ST(nb_gradcheck(NULL, in, 1, NULL, NULL, &res), NB_ERR_ARG, "nb_gradcheck", "f is NULL");
    ST(nb_gradcheck(gc_fn, NULL, 1, NULL, NULL, &res), NB_ERR_ARG, "nb_gradcheck",
       "inputs is NULL");
    ST(nb_gradcheck(gc_fn, in, 0, NULL, NULL, &res), NB_ERR_ARG, "nb_gradcheck", "n_inputs = 0");
    ST(nb_gradcheck(gc_fn, in, 1, NULL, NULL, NULL), NB_ERR_ARG, "nb_gradcheck", "res is NULL");
    ST(nb_gradcheck(gc_fn, badin, 1, NULL, NULL, &res), NB_ERR_ARG, "nb_gradcheck",
       "input 0 has numel 600");
    ST(nb_gradcheck(gc_null_fn, in, 1, NULL, NULL, &res), NB_ERR_STATE, "nb_gradcheck",
       "f returned NULL");
    nb_tensor_free(x);
}

/* ======================================================================================== */
/* ops.h: every op checks its graph and inputs the same way                                  */

typedef nb_tensor *(*unary_op)(nb_graph *, nb_tensor *);

static void check_unary(unary_op op, const char *name)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *a = f32_23(), *i = nb_tensor_zeros(NB_I32, 2, s23);
    nb_tensor bad = bad_header();
    NUL(op(NULL, a), NB_ERR_ARG, name, "graph is NULL");
    NUL(op(g, NULL), NB_ERR_ARG, name, "input 0 is NULL");
    NUL(op(g, i), NB_ERR_DTYPE, name, "i32");
    NUL(op(g, &bad), NB_ERR_ARG, name, "numel 600");
    nb_tensor *y = op(g, a);
    assert_non_null(y);
    nb_graph_reset(g);
    NUL(op(g, y), NB_ERR_STALE, name, "input 0");
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(i);
}

typedef nb_tensor *(*binary_op)(nb_graph *, nb_tensor *, nb_tensor *);

static void check_binary(binary_op op, const char *name)
{
    nb_graph *g = nb_graph_new(), *g2 = nb_graph_new();
    nb_tensor *a = f32_23(), *d = nb_tensor_zeros(NB_F64, 2, s23),
              *c = nb_tensor_zeros(NB_F32, 1, s2);
    NUL(op(NULL, a, a), NB_ERR_ARG, name, "graph is NULL");
    NUL(op(g, NULL, a), NB_ERR_ARG, name, "input 0 is NULL");
    NUL(op(g, a, NULL), NB_ERR_ARG, name, "input 1 is NULL");
    NUL(op(g, a, d), NB_ERR_DTYPE, name, "f32 and f64");
    NUL(op(g, a, c), NB_ERR_SHAPE, name, "[2]");
    nb_tensor *y = nb_relu(g2, a);
    NUL(op(g, a, y), NB_ERR_ARG, name, "another graph");
    nb_graph_free(g);
    nb_graph_free(g2);
    nb_tensor_free(a);
    nb_tensor_free(c);
    nb_tensor_free(d);
}

static nb_tensor *scale2(nb_graph *g, nb_tensor *x)
{
    return nb_scale(g, x, 2.0);
}
static nb_tensor *leaky(nb_graph *g, nb_tensor *x)
{
    return nb_leaky_relu(g, x, 0.1);
}
static nb_tensor *matmul_nn(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return nb_matmul(g, a, b, false, false);
}
static nb_tensor *linear_nobias(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return nb_linear(g, a, b, NULL);
}

static void row_nb_matmul(void)
{
    check_binary(matmul_nn, "matmul");
}
static void row_nb_linear(void)
{
    check_binary(linear_nobias, "linear");
    nb_graph *g = nb_graph_new();
    nb_tensor *x = f32_23(), *w = f32_23(), *b = nb_tensor_zeros(NB_F32, 1, s3);
    NUL(nb_linear(g, x, w, b), NB_ERR_SHAPE, "linear", "bias [3]");
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
}
static nb_tensor *linear_relu_nobias(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return nb_linear_relu(g, a, b, NULL);
}
static void row_nb_linear_relu(void)
{
    check_binary(linear_relu_nobias, "linear_relu");
    nb_graph *g = nb_graph_new();
    nb_tensor *x = f32_23(), *w = f32_23(), *b = nb_tensor_zeros(NB_F32, 1, s3);
    NUL(nb_linear_relu(g, x, w, b), NB_ERR_SHAPE, "linear_relu", "bias [3]");
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
}
static void row_nb_add(void)
{
    check_binary(nb_add, "add");
}
static void row_nb_sub(void)
{
    check_binary(nb_sub, "sub");
}
static void row_nb_mul(void)
{
    check_binary(nb_mul, "mul");
}
static void row_nb_div(void)
{
    check_binary(nb_div, "div");
}
static void row_nb_neg(void)
{
    check_unary(nb_neg, "neg");
}
static void row_nb_scale(void)
{
    check_unary(scale2, "scale");
}
static void row_nb_relu(void)
{
    check_unary(nb_relu, "relu");
}
static void row_nb_leaky_relu(void)
{
    check_unary(leaky, "leaky_relu");
}
static void row_nb_tanh(void)
{
    check_unary(nb_tanh, "tanh");
}
static void row_nb_sigmoid(void)
{
    check_unary(nb_sigmoid, "sigmoid");
}
static void row_nb_gelu(void)
{
    check_unary(nb_gelu, "gelu");
}
static void row_nb_silu(void)
{
    check_unary(nb_silu, "silu");
}
static void row_nb_exp(void)
{
    check_unary(nb_exp, "exp");
}
static void row_nb_log(void)
{
    check_unary(nb_log, "log");
}
static void row_nb_sum(void)
{
    check_unary(nb_sum, "sum");
}
static void row_nb_mean(void)
{
    check_unary(nb_mean, "mean");
}
static void row_nb_sum_last(void)
{
    check_unary(nb_sum_last, "sum_last");
}
static void row_nb_mean_last(void)
{
    check_unary(nb_mean_last, "mean_last");
}
static nb_tensor *reshape6(nb_graph *g, nb_tensor *x)
{
    static const int64_t s6[1] = {6};
    return nb_reshape(g, x, 1, s6);
}
static void row_nb_reshape(void)
{
    check_unary(reshape6, "reshape");
    nb_graph *g = nb_graph_new();
    nb_tensor *a = f32_23();
    int64_t s7[1] = {7};
    NUL(nb_reshape(g, a, 1, s7), NB_ERR_SHAPE, "reshape", "[7]");
    NUL(nb_reshape(g, a, 1, NULL), NB_ERR_ARG, "reshape", "shape is NULL");
    NUL(nb_reshape(g, a, 5, s7), NB_ERR_SHAPE, "reshape", "5 dimensions");
    nb_graph_free(g);
    nb_tensor_free(a);
}
static void row_nb_transpose(void)
{
    check_unary(nb_transpose, "transpose");
}
static void row_nb_logsumexp(void)
{
    check_unary(nb_logsumexp, "logsumexp");
}
static void row_nb_log_softmax(void)
{
    check_unary(nb_log_softmax, "log_softmax");
}
static void row_nb_softmax(void)
{
    check_unary(nb_softmax, "softmax");
}
static void row_nb_gather_last(void)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *a = f32_23(), *idx = nb_tensor_full(NB_I32, 1, s2, 7), *f = f32_23();
    NUL(nb_gather_last(NULL, a, idx), NB_ERR_ARG, "gather_last", "graph is NULL");
    NUL(nb_gather_last(g, NULL, idx), NB_ERR_ARG, "gather_last", "input 0 is NULL");
    NUL(nb_gather_last(g, a, NULL), NB_ERR_ARG, "gather_last", "idx is NULL");
    NUL(nb_gather_last(g, a, f), NB_ERR_DTYPE, "gather_last", "f32");
    NUL(nb_gather_last(g, a, idx), NB_ERR_RANGE, "gather_last", "7");
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(f);
    nb_tensor_free(idx);
}
static void row_nb_argmax_rows(void)
{
    nb_tensor *a = f32_23(), *i = nb_tensor_zeros(NB_I32, 2, s23);
    nb_tensor bad = bad_header();
    int64_t out[2];
    ST(nb_argmax_rows(NULL, out, 2), NB_ERR_ARG, "nb_argmax_rows", "x is NULL");
    ST(nb_argmax_rows(a, NULL, 2), NB_ERR_ARG, "nb_argmax_rows", "out is NULL");
    ST(nb_argmax_rows(a, out, 1), NB_ERR_ARG, "nb_argmax_rows", "room for 1");
    ST(nb_argmax_rows(i, out, 2), NB_ERR_DTYPE, "nb_argmax_rows", "i32");
    ST(nb_argmax_rows(&bad, out, 2), NB_ERR_ARG, "nb_argmax_rows", "numel 600");
    nb_tensor_free(a);
    nb_tensor_free(i);
}
static void row_nb_accuracy(void)
{
    nb_tensor *a = f32_23(), *t = nb_tensor_full(NB_I32, 1, s2, 4);
    nb_tensor *t3 = nb_tensor_zeros(NB_I32, 1, s3);
    int64_t h, c;
    ST(nb_accuracy(NULL, t, -100, &h, &c), NB_ERR_ARG, "nb_accuracy", "logits is NULL");
    ST(nb_accuracy(a, NULL, -100, &h, &c), NB_ERR_ARG, "nb_accuracy", "targets is NULL");
    ST(nb_accuracy(a, t, -100, NULL, &c), NB_ERR_ARG, "nb_accuracy", "hits is NULL");
    ST(nb_accuracy(a, t, -100, &h, NULL), NB_ERR_ARG, "nb_accuracy", "count is NULL");
    ST(nb_accuracy(a, t3, -100, &h, &c), NB_ERR_SHAPE, "nb_accuracy", "[3]");
    ST(nb_accuracy(a, t, -100, &h, &c), NB_ERR_RANGE, "nb_accuracy", "target 4 out of range");
    nb_tensor_free(a);
    nb_tensor_free(t);
    nb_tensor_free(t3);
}
static void row_nb_set_num_threads(void)
{
    int before = nb_num_threads();
    VOID(nb_set_num_threads(0), NB_ERR_ARG, "nb_set_num_threads", "n = 0");
    VOID(nb_set_num_threads(-5), NB_ERR_ARG, "nb_set_num_threads", "n = -5");
    assert_int_equal(nb_num_threads(), before);
}
static void row_nb_num_threads(void)
{
    QUIET(assert_true(nb_num_threads() >= 1)); /* no arguments */
}
static void row_nb_blas_core_name(void)
{
    QUIET(assert_non_null(nb_blas_core_name())); /* no arguments */
}
static void row_nb_op_count(void)
{
    QUIET(assert_true(nb_op_count() > 0)); /* no arguments */
}
static void row_nb_op_at(void)
{
    NUL(nb_op_at(-1), NB_ERR_ARG, "nb_op_at", "index -1 outside");
    NUL(nb_op_at(nb_op_count()), NB_ERR_ARG, "nb_op_at", "outside [0, ");
    QUIET(assert_non_null(nb_op_at(0)));
}
static void row_nb_op_find(void)
{
    NUL(nb_op_find(NULL), NB_ERR_ARG, "nb_op_find", "name is NULL");
    NUL(nb_op_find("no_such_op"), NB_ERR_ARG, "nb_op_find", "no_such_op");
}

/* ======================================================================================== */
/* loss.h                                                                                    */

typedef nb_status (*rows_fn)(const nb_tensor *, nb_tensor *);

static void check_rows(rows_fn f, const char *name, bool reduce)
{
    nb_tensor *z = f32_23(), *out = reduce ? nb_tensor_zeros(NB_F32, 1, s2) : f32_23();
    nb_tensor *wrong = nb_tensor_zeros(NB_F32, 1, s3), *d = nb_tensor_zeros(NB_F64, 2, s23);
    nb_tensor bad = bad_header();
    ST(f(NULL, out), NB_ERR_ARG, name, "z is NULL");
    ST(f(z, NULL), NB_ERR_ARG, name, "out is NULL");
    ST(f(&bad, out), NB_ERR_ARG, name, "numel 600");
    ST(f(z, wrong), NB_ERR_SHAPE, name, "[3]");
    ST(f(z, d), NB_ERR_DTYPE, name, "f64");
    nb_tensor_free(z);
    nb_tensor_free(out);
    nb_tensor_free(wrong);
    nb_tensor_free(d);
}
static void row_nb_logsumexp_rows(void)
{
    check_rows(nb_logsumexp_rows, "nb_logsumexp_rows", true);
}
static void row_nb_log_softmax_rows(void)
{
    check_rows(nb_log_softmax_rows, "nb_log_softmax_rows", false);
}
static void row_nb_softmax_rows(void)
{
    check_rows(nb_softmax_rows, "nb_softmax_rows", false);
}
static void row_nb_log_softmax_naive(void)
{
    check_rows(nb_log_softmax_naive, "nb_log_softmax_naive", false);
}
static void row_nb_xent_defaults(void)
{
    QUIET(assert_int_equal(nb_xent_defaults().ignore_index, -100)); /* no arguments */
}

/* the shared checks of the cross-entropy entry points, through a small adapter */
typedef nb_status (*xent_call)(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o);

static void check_xent(xent_call f, const char *name, bool soft, bool op)
{
    int64_t s1[1] = {2};
    nb_tensor *z = f32_23();
    nb_tensor *t = soft ? f32_23() : nb_tensor_full(NB_I32, 1, s1, soft ? 0 : 5);
    nb_tensor bad = bad_header();
    nb_xent_opts o = nb_xent_defaults();
    ST(f(NULL, t, NULL), NB_ERR_ARG, name, op ? "input 0 is NULL" : "logits is NULL");
    ST(f(z, NULL, NULL), NB_ERR_ARG, name, soft ? "probs is NULL" : "targets is NULL");
    ST(f(&bad, t, NULL), NB_ERR_ARG, name, "numel 600");
    o.label_smoothing = 1.5;
    ST(f(z, t, &o), NB_ERR_ARG, name, "1.5");
    o = nb_xent_defaults();
    o.reduction = (nb_reduction)9;
    ST(f(z, t, &o), NB_ERR_ARG, name, "reduction 9");
    o = nb_xent_defaults();
    o.weight = &bad;
    ST(f(z, t, &o), NB_ERR_ARG, name, "opts->weight has numel 600");
    if (!soft)
        ST(f(z, t, NULL), NB_ERR_RANGE, name, "target 5 out of range [0, 3)");
    nb_tensor_free(z);
    nb_tensor_free(t);
}

static nb_tensor *xent_out(const nb_tensor *z, const nb_xent_opts *o, bool rows)
{
    int64_t s1[1] = {z && z->ndim == 2 ? z->shape[0] : 1};
    bool none = o && o->reduction == NB_REDUCTION_NONE;
    return nb_tensor_zeros(NB_F32, rows || none ? 1 : 0, s1);
}
static nb_status a_validate(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    return nb_xent_validate(z, t, o);
}
static nb_status a_forward(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_tensor *loss = xent_out(z, o, false);
    nb_status s = nb_xent_forward(z, t, o, loss, NULL, NULL);
    nb_tensor_free(loss);
    return s;
}
static nb_status a_soft_forward(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_tensor *loss = xent_out(z, o, false);
    nb_status s = nb_xent_soft_forward(z, t, o, loss, NULL, NULL);
    nb_tensor_free(loss);
    return s;
}
static nb_status a_backward(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_tensor *dz = f32_23();
    nb_status s = nb_xent_backward(dz, z, t, o, NULL, NULL);
    nb_tensor_free(dz);
    return s;
}
static nb_status a_soft_backward(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_tensor *dz = f32_23();
    nb_status s = nb_xent_soft_backward(dz, z, t, o, NULL, NULL);
    nb_tensor_free(dz);
    return s;
}
static nb_status a_forward_backward(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_tensor *dz = f32_23(), *loss = xent_out(z, o, false);
    nb_status s = nb_xent_forward_backward(z, t, o, loss, dz, NULL);
    nb_tensor_free(dz);
    nb_tensor_free(loss);
    return s;
}
static nb_status a_forward_backward_ws(const nb_tensor *z, const nb_tensor *t,
                                       const nb_xent_opts *o)
{
    nb_tensor *dz = f32_23(), *loss = xent_out(z, o, false);
    static char ws[1 << 14];
    nb_status s = nb_xent_forward_backward_ws(z, t, o, loss, dz, NULL, ws, sizeof ws);
    nb_tensor_free(dz);
    nb_tensor_free(loss);
    return s;
}
static nb_status a_reference(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_tensor *loss = xent_out(z, o, false);
    nb_status s = nb_xent_reference(z, t, o, loss, NULL);
    nb_tensor_free(loss);
    return s;
}
static nb_tensor *op_graph_last; /* a_op's graph, for its result's lifetime */
static nb_status op_status(nb_tensor *y)
{
    return y ? NB_OK : nb_last_status();
}
static nb_status a_op(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_graph *g = nb_graph_new();
    nb_status s = op_status(nb_cross_entropy(g, (nb_tensor *)z, t, o));
    nb_graph_free(g);
    op_graph_last = NULL;
    return s;
}
static nb_status a_op_soft(const nb_tensor *z, const nb_tensor *t, const nb_xent_opts *o)
{
    nb_graph *g = nb_graph_new();
    nb_status s = op_status(nb_cross_entropy_soft(g, (nb_tensor *)z, t, o));
    nb_graph_free(g);
    return s;
}

static void row_nb_xent_validate(void)
{
    check_xent(a_validate, "nb_xent_validate", false, false);
}
static void row_nb_cross_entropy(void)
{
    check_xent(a_op, "cross_entropy", false, true);
    nb_tensor *z = f32_23();
    int64_t s1[1] = {2};
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, s1);
    NUL(nb_cross_entropy(NULL, z, t, NULL), NB_ERR_ARG, "cross_entropy", "graph is NULL");
    nb_tensor_free(z);
    nb_tensor_free(t);
}
static void row_nb_cross_entropy_soft(void)
{
    check_xent(a_op_soft, "cross_entropy", true, true); /* the shared validator speaks */
}
static void row_nb_xent_forward(void)
{
    check_xent(a_forward, "nb_xent_forward", false, false);
    nb_tensor *z = f32_23(), *wrong = nb_tensor_zeros(NB_F32, 1, s3);
    int64_t s1[1] = {2};
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, s1);
    ST(nb_xent_forward(z, t, NULL, NULL, NULL, NULL), NB_ERR_ARG, "nb_xent_forward",
       "loss is NULL");
    ST(nb_xent_forward(z, t, NULL, wrong, NULL, NULL), NB_ERR_SHAPE, "nb_xent_forward", "[3]");
    nb_tensor_free(z);
    nb_tensor_free(t);
    nb_tensor_free(wrong);
}
static void row_nb_xent_backward(void)
{
    check_xent(a_backward, "nb_xent_backward", false, false);
    nb_tensor *z = f32_23();
    int64_t s1[1] = {2};
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, s1);
    ST(nb_xent_backward(NULL, z, t, NULL, NULL, NULL), NB_ERR_ARG, "nb_xent_backward",
       "dlogits is NULL");
    nb_tensor_free(z);
    nb_tensor_free(t);
}
static void row_nb_xent_forward_backward(void)
{
    check_xent(a_forward_backward, "nb_xent_forward_backward", false, false);
    nb_tensor *z = f32_23(), *loss = nb_tensor_zeros(NB_F32, 0, NULL);
    int64_t s1[1] = {2};
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, s1);
    ST(nb_xent_forward_backward(z, t, NULL, loss, NULL, NULL), NB_ERR_ARG,
       "nb_xent_forward_backward", "dlogits is NULL");
    nb_tensor_free(z);
    nb_tensor_free(t);
    nb_tensor_free(loss);
}
static void row_nb_xent_forward_backward_ws(void)
{
    check_xent(a_forward_backward_ws, "nb_xent_forward_backward_ws", false, false);
    nb_tensor *z = f32_23(), *dz = f32_23(), *loss = nb_tensor_zeros(NB_F32, 0, NULL);
    int64_t s1[1] = {2};
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, s1);
    char ws[64];
    ST(nb_xent_forward_backward_ws(z, t, NULL, loss, NULL, NULL, ws, sizeof ws), NB_ERR_ARG,
       "nb_xent_forward_backward_ws", "dlogits is NULL");
    ST(nb_xent_forward_backward_ws(z, t, NULL, loss, dz, NULL, ws, sizeof ws), NB_ERR_ARG,
       "nb_xent_forward_backward_ws", "workspace of 64 bytes is too small");
    nb_tensor_free(z);
    nb_tensor_free(dz);
    nb_tensor_free(t);
    nb_tensor_free(loss);
}
static void row_nb_xent_workspace_size(void)
{
    VAL(size_t, nb_xent_workspace_size(NULL), v_ == 0, NB_ERR_ARG, "nb_xent_workspace_size",
        "logits is NULL");
    nb_tensor *z = nb_tensor_zeros(NB_F32, 0, NULL);
    VAL(size_t, nb_xent_workspace_size(z), v_ == 0, NB_ERR_SHAPE, "nb_xent_workspace_size",
        "no class dimension");
    nb_tensor_free(z);
}
static void row_nb_xent_soft_forward(void)
{
    check_xent(a_soft_forward, "nb_xent_soft_forward", true, false);
}
static void row_nb_xent_soft_backward(void)
{
    check_xent(a_soft_backward, "nb_xent_soft_backward", true, false);
}
static void row_nb_xent_reference(void)
{
    check_xent(a_reference, "nb_xent_reference", false, false);
    nb_tensor *z = f32_23();
    int64_t s1[1] = {2};
    nb_tensor *t = nb_tensor_zeros(NB_I32, 1, s1);
    ST(nb_xent_reference(z, t, NULL, NULL, NULL), NB_ERR_ARG, "nb_xent_reference", "loss is NULL");
    nb_tensor_free(z);
    nb_tensor_free(t);
}

/* ======================================================================================== */
/* optim.h                                                                                   */

static nb_tensor *param_23(void)
{
    nb_tensor *p = f32_23();
    assert_int_equal(nb_tensor_set_requires_grad(p, true), NB_OK);
    return p;
}

static void row_nb_sgd_step(void)
{
    nb_tensor *p = param_23(), *np = f32_23();
    nb_tensor *ps[1] = {p}, *none[1] = {NULL}, *nograd[1] = {np};
    ST(nb_sgd_step(NULL, 1, 0.1, 0), NB_ERR_ARG, "nb_sgd_step", "params is NULL");
    ST(nb_sgd_step(ps, -1, 0.1, 0), NB_ERR_ARG, "nb_sgd_step", "n_params = -1");
    ST(nb_sgd_step(none, 1, 0.1, 0), NB_ERR_ARG, "nb_sgd_step", "parameter 0 is NULL");
    ST(nb_sgd_step(nograd, 1, 0.1, 0), NB_ERR_ARG, "nb_sgd_step", "parameter 0 has no gradient");
    ST(nb_sgd_step(ps, 1, NAN, 0), NB_ERR_ARG, "nb_sgd_step", "nan");
    nb_tensor_free(p);
    nb_tensor_free(np);
}
/* ---- the trainer (nabla/train.h) ---- */

/* a 4-row, 2-feature data set and a 2 -> 2 MLP for the trainer's rows */
static void small_run(nb_dataset *ds, nb_mlp **m)
{
    int64_t sx[2] = {4, 2}, sy[1] = {4}, sizes[2] = {2, 2};
    nb_tensor *X = nb_tensor_zeros(NB_F32, 2, sx), *y = nb_tensor_zeros(NB_I32, 1, sy);
    assert_non_null(X);
    assert_non_null(y);
    ((int32_t *)y->data)[1] = 1;
    assert_int_equal(nb_dataset_from_tensors(X, y, 2, ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);
    *m = nb_mlp_new(sizes, 2, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1);
    assert_non_null(*m);
}
static void row_nb_train_defaults(void)
{
    QUIET(assert_int_equal(nb_train_defaults().epochs, 10)); /* no arguments */
}
static void row_nb_train_model_mlp(void)
{
    QUIET(assert_null(nb_train_model_mlp(NULL).mlp)); /* a NULL model is refused by its users */
}
static void row_nb_trainer_new(void)
{
    nb_dataset ds;
    nb_mlp *m;
    small_run(&ds, &m);
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_config c = nb_train_defaults();
    NUL(nb_trainer_new(NULL, &ds, &c), NB_ERR_ARG, "nb_trainer_new", "model is NULL");
    NUL(nb_trainer_new(&md, NULL, &c), NB_ERR_ARG, "nb_trainer_new", "train is NULL");
    NUL(nb_trainer_new(&md, &ds, NULL), NB_ERR_ARG, "nb_trainer_new", "c is NULL");
    c.epochs = 0;
    NUL(nb_trainer_new(&md, &ds, &c), NB_ERR_RANGE, "nb_trainer_new", "epochs 0");
    c = nb_train_defaults();
    c.accum = 500;
    NUL(nb_trainer_new(&md, &ds, &c), NB_ERR_RANGE, "nb_trainer_new", "accum 500");
    c = nb_train_defaults();
    c.world_size = 2;
    NUL(nb_trainer_new(&md, &ds, &c), NB_ERR_ARG, "nb_trainer_new", "allreduce_sum");
    c = nb_train_defaults();
    c.patience = 2;
    NUL(nb_trainer_new(&md, &ds, &c), NB_ERR_ARG, "nb_trainer_new", "validation set");
    nb_train_model none = {0};
    c = nb_train_defaults();
    NUL(nb_trainer_new(&none, &ds, &c), NB_ERR_ARG, "nb_trainer_new", "n_params (0)");
    nb_mlp_free(m);
    nb_dataset_free(&ds);
}
static void row_nb_trainer_free(void)
{
    QUIET(nb_trainer_free(NULL));
}
static void row_nb_trainer_resume(void)
{
    nb_dataset ds;
    nb_mlp *m;
    small_run(&ds, &m);
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_config c = nb_train_defaults();
    nb_trainer *t = nb_trainer_new(&md, &ds, &c);
    assert_non_null(t);
    ST(nb_trainer_resume(NULL, "x.st"), NB_ERR_ARG, "nb_trainer_resume", "t is NULL");
    ST(nb_trainer_resume(t, NULL), NB_ERR_ARG, "nb_trainer_resume", "path is NULL");
    ST(nb_trainer_resume(t, "/nonexistent/run.st"), NB_ERR_IO, "/nonexistent/run.st", NULL);
    nb_trainer_free(t);
    nb_mlp_free(m);
    nb_dataset_free(&ds);
}
static void row_nb_trainer_step(void)
{
    bool done = true, stop = true;
    ST(nb_trainer_step(NULL, &done, &stop), NB_ERR_ARG, "nb_trainer_step", "t is NULL");
    assert_false(done || stop);
}
static void row_nb_trainer_end_epoch(void)
{
    ST(nb_trainer_end_epoch(NULL, NULL), NB_ERR_ARG, "nb_trainer_end_epoch", "t is NULL");
}
static void row_nb_trainer_run(void)
{
    ST(nb_trainer_run(NULL, NULL), NB_ERR_ARG, "nb_trainer_run", "t is NULL");
}
static void row_nb_train(void)
{
    nb_train_config c = nb_train_defaults();
    ST(nb_train(NULL, NULL, &c, NULL), NB_ERR_ARG, "nb_train", "model is NULL");
}
static void row_nb_trainer_result(void)
{
    nb_train_result r;
    VOID(nb_trainer_result(NULL, &r), NB_ERR_ARG, "nb_trainer_result", "t is NULL");
    assert_int_equal(r.steps, 0);
}
static void row_nb_trainer_epoch(void)
{
    VAL(int64_t, nb_trainer_epoch(NULL), v_ == -1, NB_ERR_ARG, "nb_trainer_epoch", "t is NULL");
}
static void row_nb_trainer_optim(void)
{
    NUL(nb_trainer_optim(NULL), NB_ERR_ARG, "nb_trainer_optim", "t is NULL");
}
static void row_nb_trainer_last_checkpoint(void)
{
    int64_t e = 0, st = 0;
    VOID(nb_trainer_last_checkpoint(NULL, &e, &st), NB_ERR_ARG, "nb_trainer_last_checkpoint",
         "t is NULL");
    assert_true(e == -1 && st == -1);
}

static void row_nb_optim_defaults(void)
{
    VAL(nb_optim_config, nb_optim_defaults((nb_optim_kind)7), v_.kind == (nb_optim_kind)7,
        NB_ERR_ARG, "nb_optim_defaults", "kind 7");
}
static void row_nb_optim_kind_parse(void)
{
    nb_optim_kind k;
    VAL(bool, nb_optim_kind_parse(NULL, &k), !v_, NB_ERR_ARG, "nb_optim_kind_parse", "s is NULL");
    VAL(bool, nb_optim_kind_parse("sgd", NULL), !v_, NB_ERR_ARG, "nb_optim_kind_parse",
        "kind is NULL");
    VAL(bool, nb_optim_kind_parse("lion", &k), !v_, NB_ERR_ARG, "nb_optim_kind_parse", "'lion'");
}
static void row_nb_optim_kind_name(void)
{
    VAL(const char *, nb_optim_kind_name((nb_optim_kind)7), !strcmp(v_, "invalid"), NB_ERR_ARG,
        "nb_optim_kind_name", "kind 7");
}
static nb_optim *make_optim(nb_tensor **p)
{
    *p = param_23();
    nb_optim_config c = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *o = nb_optim_new(&c, p, 1);
    assert_non_null(o);
    return o;
}
static void row_nb_optim_new(void)
{
    nb_tensor *p = param_23();
    nb_tensor *ps[1] = {p}, *none[1] = {NULL};
    nb_optim_config c = nb_optim_defaults(NB_OPTIM_ADAM);
    NUL(nb_optim_new(NULL, ps, 1), NB_ERR_ARG, "nb_optim_new", "cfg is NULL");
    NUL(nb_optim_new(&c, NULL, 1), NB_ERR_ARG, "nb_optim_new", "params is NULL");
    NUL(nb_optim_new(&c, ps, -2), NB_ERR_ARG, "nb_optim_new", "n = -2");
    NUL(nb_optim_new(&c, none, 1), NB_ERR_ARG, "nb_optim_new", "parameter 0 is NULL");
    c.lr = -1;
    NUL(nb_optim_new(&c, ps, 1), NB_ERR_ARG, "nb_optim_new", "-1");
    c = nb_optim_defaults(NB_OPTIM_ADAM);
    c.kind = (nb_optim_kind)7;
    NUL(nb_optim_new(&c, ps, 1), NB_ERR_ARG, "nb_optim_new", "kind 7");
    nb_tensor_free(p);
}
static void row_nb_optim_free(void)
{
    QUIET(nb_optim_free(NULL));
}
static void row_nb_optim_step(void)
{
    ST(nb_optim_step(NULL), NB_ERR_ARG, "nb_optim_step", "o is NULL");
}
static void row_nb_optim_step_zero_grad(void)
{
    double norm = -1;
    ST(nb_optim_step_zero_grad(NULL, &norm), NB_ERR_ARG, "nb_optim_step_zero_grad", "o is NULL");
    ST(nb_optim_step_zero_grad(NULL, NULL), NB_ERR_ARG, "nb_optim_step_zero_grad", "o is NULL");
}
static void row_nb_optim_step_reference(void)
{
    ST(nb_optim_step_reference(NULL), NB_ERR_ARG, "nb_optim_step_reference", "o is NULL");
}
static void row_nb_optim_set_parallel_min(void)
{
    /* total: n < 1 counts as 1; then the default restored */
    QUIET(nb_optim_set_parallel_min(-5));
    QUIET(nb_optim_set_parallel_min((int64_t)1 << 22));
}
static void row_nb_optim_zero_grad(void)
{
    VOID(nb_optim_zero_grad(NULL), NB_ERR_ARG, "nb_optim_zero_grad", "o is NULL");
}
static void row_nb_optim_set_lr(void)
{
    nb_tensor *p;
    nb_optim *o = make_optim(&p);
    VOID(nb_optim_set_lr(NULL, 0.1), NB_ERR_ARG, "nb_optim_set_lr", "o is NULL");
    VOID(nb_optim_set_lr(o, NAN), NB_ERR_ARG, "nb_optim_set_lr", "nan");
    VOID(nb_optim_set_lr(o, -0.5), NB_ERR_ARG, "nb_optim_set_lr", "-0.5");
    assert_true(nb_optim_lr(o) == 1e-3); /* unchanged */
    nb_optim_free(o);
    nb_tensor_free(p);
}
static void row_nb_optim_lr(void)
{
    VAL(double, nb_optim_lr(NULL), isnan(v_), NB_ERR_ARG, "nb_optim_lr", "o is NULL");
}
static void row_nb_optim_get_config(void)
{
    NUL(nb_optim_get_config(NULL), NB_ERR_ARG, "nb_optim_get_config", "o is NULL");
}
static void row_nb_optim_step_count(void)
{
    VAL(int64_t, nb_optim_step_count(NULL), v_ == -1, NB_ERR_ARG, "nb_optim_step_count",
        "o is NULL");
}
static void row_nb_optim_set_step_count(void)
{
    nb_tensor *p;
    nb_optim *o = make_optim(&p);
    VOID(nb_optim_set_step_count(NULL, 3), NB_ERR_ARG, "nb_optim_set_step_count", "o is NULL");
    VOID(nb_optim_set_step_count(o, -3), NB_ERR_RANGE, "nb_optim_set_step_count", "-3");
    assert_int_equal(nb_optim_step_count(o), 0);
    nb_optim_free(o);
    nb_tensor_free(p);
}
static void row_nb_optim_state_count(void)
{
    VAL(int, nb_optim_state_count(NULL), v_ == 0, NB_ERR_ARG, "nb_optim_state_count", "o is NULL");
}
static void row_nb_optim_state_tensor(void)
{
    nb_tensor *p;
    nb_optim *o = make_optim(&p);
    NUL(nb_optim_state_tensor(NULL, 0, NULL), NB_ERR_ARG, "nb_optim_state_tensor", "o is NULL");
    NUL(nb_optim_state_tensor(o, 2, NULL), NB_ERR_RANGE, "nb_optim_state_tensor",
        "index 2 out of range [0, 2)");
    NUL(nb_optim_state_tensor(o, -1, NULL), NB_ERR_RANGE, "nb_optim_state_tensor", "index -1");
    nb_optim_free(o);
    nb_tensor_free(p);
}
static void row_nb_schedule_lr(void)
{
    nb_schedule s = {NB_SCHED_CONSTANT, 0.1, 0, 0, 0, 0, 0};
    VAL(double, nb_schedule_lr(NULL, 0), v_ == 0.0, NB_ERR_ARG, "nb_schedule_lr", "s is NULL");
    VAL(double, nb_schedule_lr(&s, -4), v_ == 0.0, NB_ERR_RANGE, "nb_schedule_lr", "step -4");
    s.kind = (nb_sched_kind)9;
    VAL(double, nb_schedule_lr(&s, 0), v_ == 0.0, NB_ERR_ARG, "nb_schedule_lr", "kind 9");
}
static void row_nb_sched_kind_parse(void)
{
    nb_sched_kind k;
    VAL(bool, nb_sched_kind_parse(NULL, &k), !v_, NB_ERR_ARG, "nb_sched_kind_parse", "s is NULL");
    VAL(bool, nb_sched_kind_parse("step", NULL), !v_, NB_ERR_ARG, "nb_sched_kind_parse",
        "kind is NULL");
    VAL(bool, nb_sched_kind_parse("linear", &k), !v_, NB_ERR_ARG, "nb_sched_kind_parse",
        "'linear'");
}
static void row_nb_clip_grad_norm(void)
{
    nb_tensor *p = param_23();
    nb_tensor *ps[1] = {p}, *none[1] = {NULL};
    double norm;
    ST(nb_clip_grad_norm(NULL, 1, 1.0, NULL), NB_ERR_ARG, "nb_clip_grad_norm", "params is NULL");
    ST(nb_clip_grad_norm(ps, -1, 1.0, &norm), NB_ERR_ARG, "nb_clip_grad_norm", "n = -1");
    ST(nb_clip_grad_norm(none, 1, 1.0, &norm), NB_ERR_ARG, "nb_clip_grad_norm",
       "parameter 0 is NULL");
    ST(nb_clip_grad_norm(ps, 1, 0.0, &norm), NB_ERR_ARG, "nb_clip_grad_norm", "max_norm 0");
    ST(nb_clip_grad_norm(ps, 1, NAN, &norm), NB_ERR_ARG, "nb_clip_grad_norm", "max_norm nan");
    nb_tensor_free(p);
}

/* ======================================================================================== */
/* nn.h                                                                                      */

static void row_nb_activation_parse(void)
{
    nb_activation a;
    VAL(bool, nb_activation_parse(NULL, &a), !v_, NB_ERR_ARG, "nb_activation_parse", "s is NULL");
    VAL(bool, nb_activation_parse("relu", NULL), !v_, NB_ERR_ARG, "nb_activation_parse",
        "a is NULL");
    VAL(bool, nb_activation_parse("swish", &a), !v_, NB_ERR_ARG, "nb_activation_parse", "'swish'");
}
static void row_nb_activation_name(void)
{
    VAL(const char *, nb_activation_name((nb_activation)12), !strcmp(v_, "unknown"), NB_ERR_ARG,
        "nb_activation_name", "12");
}
static void row_nb_init_parse(void)
{
    nb_init i;
    VAL(bool, nb_init_parse(NULL, &i), !v_, NB_ERR_ARG, "nb_init_parse", "s is NULL");
    VAL(bool, nb_init_parse("he", NULL), !v_, NB_ERR_ARG, "nb_init_parse", "i is NULL");
    VAL(bool, nb_init_parse("orthogonal", &i), !v_, NB_ERR_ARG, "nb_init_parse", "'orthogonal'");
}
static void row_nb_dropout(void)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *a = f32_23();
    nb_rng r;
    nb_rng_seed(&r, 1);
    NUL(nb_dropout(NULL, a, 0.5, &r), NB_ERR_ARG, "dropout", "graph is NULL");
    NUL(nb_dropout(g, NULL, 0.5, &r), NB_ERR_ARG, "dropout", "input 0 is NULL");
    NUL(nb_dropout(g, a, 1.0, &r), NB_ERR_ARG, "dropout", "p = 1");
    NUL(nb_dropout(g, a, NAN, &r), NB_ERR_ARG, "dropout", "nan");
    NUL(nb_dropout(g, a, 0.5, NULL), NB_ERR_ARG, "dropout", "generator is NULL");
    nb_graph_free(g);
    nb_tensor_free(a);
}
static nb_mlp *small_mlp(void)
{
    int64_t sizes[3] = {3, 4, 2};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 1);
    assert_non_null(m);
    return m;
}
static void row_nb_mlp_new(void)
{
    int64_t sizes[3] = {3, 4, 2}, zero[2] = {3, 0};
    NUL(nb_mlp_new(NULL, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1), NB_ERR_ARG, "nb_mlp_new",
        "layer sizes");
    NUL(nb_mlp_new(sizes, 1, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1), NB_ERR_ARG, "nb_mlp_new",
        "got 1");
    NUL(nb_mlp_new(sizes, 99, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1), NB_ERR_ARG, "nb_mlp_new",
        "got 99");
    NUL(nb_mlp_new(zero, 2, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1), NB_ERR_ARG, "nb_mlp_new",
        "layer size 0");
    NUL(nb_mlp_new(sizes, 3, (nb_activation)12, NB_INIT_DEFAULT, 0, NB_F32, 1), NB_ERR_ARG,
        "nb_mlp_new", "activation 12");
    NUL(nb_mlp_new(sizes, 3, NB_ACT_RELU, (nb_init)12, 0, NB_F32, 1), NB_ERR_ARG, "nb_mlp_new",
        "init 12");
    NUL(nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 1.0, NB_F32, 1), NB_ERR_ARG,
        "nb_mlp_new", "dropout 1");
    NUL(nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_I32, 1), NB_ERR_DTYPE,
        "nb_mlp_new", "i32");
}
static void row_nb_mlp_free(void)
{
    QUIET(nb_mlp_free(NULL));
}
static void row_nb_mlp_forward(void)
{
    nb_graph *g = nb_graph_new();
    nb_mlp *m = small_mlp();
    nb_tensor *x = f32_23(), *x2 = nb_tensor_zeros(NB_F32, 1, s3);
    NUL(nb_mlp_forward(NULL, m, x), NB_ERR_ARG, "nb_mlp_forward", "g is NULL");
    NUL(nb_mlp_forward(g, NULL, x), NB_ERR_ARG, "nb_mlp_forward", "m is NULL");
    NUL(nb_mlp_forward(g, m, NULL), NB_ERR_ARG, "nb_mlp_forward", "x is NULL");
    NUL(nb_mlp_forward(g, m, x2), NB_ERR_SHAPE, "nb_mlp_forward", "[3]");
    m->n_layers = 40;
    NUL(nb_mlp_forward(g, m, x), NB_ERR_ARG, "nb_mlp_forward", "40 layers");
    m->n_layers = 2;
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_tensor_free(x);
    nb_tensor_free(x2);
}
static void row_nb_mlp_forward_hidden(void)
{
    nb_graph *g = nb_graph_new();
    nb_mlp *m = small_mlp();
    nb_tensor *x = f32_23(), *x2 = nb_tensor_zeros(NB_F32, 1, s3);
    NUL(nb_mlp_forward_hidden(NULL, m, x), NB_ERR_ARG, "nb_mlp_forward_hidden", "g is NULL");
    NUL(nb_mlp_forward_hidden(g, NULL, x), NB_ERR_ARG, "nb_mlp_forward_hidden", "m is NULL");
    NUL(nb_mlp_forward_hidden(g, m, NULL), NB_ERR_ARG, "nb_mlp_forward_hidden", "x is NULL");
    NUL(nb_mlp_forward_hidden(g, m, x2), NB_ERR_SHAPE, "nb_mlp_forward_hidden", "[3]");
    m->n_layers = 40;
    NUL(nb_mlp_forward_hidden(g, m, x), NB_ERR_ARG, "nb_mlp_forward_hidden", "40 layers");
    m->n_layers = 2;
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_tensor_free(x);
    nb_tensor_free(x2);
}
static void row_nb_mlp_set_training(void)
{
    VOID(nb_mlp_set_training(NULL, true), NB_ERR_ARG, "nb_mlp_set_training", "m is NULL");
}
static void row_nb_mlp_param_count(void)
{
    VAL(int, nb_mlp_param_count(NULL), v_ == 0, NB_ERR_ARG, "nb_mlp_param_count", "m is NULL");
}
static void row_nb_mlp_param(void)
{
    nb_mlp *m = small_mlp();
    char name[32];
    NUL(nb_mlp_param(NULL, 0, name, sizeof name), NB_ERR_ARG, "nb_mlp_param", "m is NULL");
    NUL(nb_mlp_param(m, 4, name, sizeof name), NB_ERR_RANGE, "nb_mlp_param",
        "index 4 out of range [0, 4)");
    NUL(nb_mlp_param(m, -1, name, sizeof name), NB_ERR_RANGE, "nb_mlp_param", "index -1");
    nb_mlp_free(m);
}
static void row_nb_mlp_numel(void)
{
    VAL(int64_t, nb_mlp_numel(NULL), v_ == 0, NB_ERR_ARG, "nb_mlp_numel", "m is NULL");
}

/* ======================================================================================== */
/* dataset.h, data.h, seqdata.h                                                              */

static void row_nb_dataset_free(void)
{
    QUIET(nb_dataset_free(NULL));
}
static void row_nb_idx_load(void)
{
    NUL(nb_idx_load(NULL), NB_ERR_ARG, "idx", "path is NULL");
    NUL(nb_idx_load("/nonexistent/nabla/x.idx"), NB_ERR_IO, "idx", "/nonexistent/nabla/x.idx");
}
static void row_nb_idx_parse(void)
{
    NUL(nb_idx_parse(NULL, 5), NB_ERR_ARG, "idx", "buffer is NULL");
    NUL(nb_idx_parse("", 0), NB_ERR_FORMAT, "idx", NULL);
}
static void row_nb_dataset_load_mnist(void)
{
    nb_dataset ds;
    ST(nb_dataset_load_mnist(NULL, "train", &ds), NB_ERR_ARG, "mnist", "dir is NULL");
    ST(nb_dataset_load_mnist(".", NULL, &ds), NB_ERR_ARG, "mnist", "split is NULL");
    ST(nb_dataset_load_mnist(".", "train", NULL), NB_ERR_ARG, "mnist", "NULL");
    ST(nb_dataset_load_mnist(".", "validation", &ds), NB_ERR_ARG, "mnist", "validation");
}
static void row_nb_dataset_load_csv(void)
{
    nb_dataset ds;
    ST(nb_dataset_load_csv(NULL, -1, false, &ds), NB_ERR_ARG, "csv", "path is NULL");
    ST(nb_dataset_load_csv("x.csv", -1, false, NULL), NB_ERR_ARG, "csv", "NULL");
}
static void row_nb_dataset_parse_csv(void)
{
    nb_dataset ds;
    const char *text = "1,2,0\n3,4,1\n";
    ST(nb_dataset_parse_csv(NULL, 5, -1, false, &ds), NB_ERR_ARG, "csv", "buffer is NULL");
    ST(nb_dataset_parse_csv(text, strlen(text), -1, false, NULL), NB_ERR_ARG, "csv", "NULL");
    ST(nb_dataset_parse_csv(text, strlen(text), 7, false, &ds), NB_ERR_ARG, "csv", "7");
    ST(nb_dataset_parse_csv(text, strlen(text), -5, false, &ds), NB_ERR_ARG, "csv", "-5");
}
static void row_nb_dataset_load_images(void)
{
    nb_dataset ds;
    ST(nb_dataset_load_images(NULL, &ds), NB_ERR_ARG, "images", "path is NULL");
    ST(nb_dataset_load_images(".", NULL), NB_ERR_ARG, "images", "NULL");
    ST(nb_dataset_load_images("/nonexistent/nabla/imgs", &ds), NB_ERR_IO, "images",
       "/nonexistent/nabla/imgs");
}
static void row_nb_image_load(void)
{
    nb_tensor *t;
    ST(nb_image_load(NULL, &t), NB_ERR_ARG, "image", "path is NULL");
    ST(nb_image_load("x.png", NULL), NB_ERR_ARG, "image", "NULL");
    ST(nb_image_load("/nonexistent/nabla/x.png", &t), NB_ERR_IO, "image",
       "/nonexistent/nabla/x.png");
}
static void row_nb_image_parse(void)
{
    nb_tensor *t;
    ST(nb_image_parse(NULL, 5, &t), NB_ERR_ARG, "image", "buffer is NULL");
    ST(nb_image_parse("P5 2 2 255 abcd", 15, NULL), NB_ERR_ARG, "image", "NULL");
    ST(nb_image_parse("P5 0 2 255 ab", 13, &t), NB_ERR_FORMAT, "image",
       "width 0 is not in 1..16384");
    ST(nb_image_parse("P5 99999 2 255 ab", 17, &t), NB_ERR_FORMAT, "image",
       "width 99999 is not in 1..16384");
}
static void row_nb_dataset_load_csv_opts(void)
{
    nb_dataset ds;
    nb_csv_options o = NB_CSV_OPTIONS_DEFAULT;
    ST(nb_dataset_load_csv_opts(NULL, &o, &ds), NB_ERR_ARG, "csv", "path is NULL");
    ST(nb_dataset_load_csv_opts("x.csv", &o, NULL), NB_ERR_ARG, "csv", "NULL");
}
static void row_nb_dataset_parse_csv_opts(void)
{
    nb_dataset ds;
    const char *text = "a,b\n1,0\n";
    nb_csv_options o = NB_CSV_OPTIONS_DEFAULT;
    ST(nb_dataset_parse_csv_opts(text, strlen(text), NULL, &ds), NB_ERR_ARG, "csv",
       "options are NULL");
    ST(nb_dataset_parse_csv_opts(NULL, 3, &o, &ds), NB_ERR_ARG, "csv", "buffer is NULL");
    ST(nb_dataset_parse_csv_opts(text, strlen(text), &o, NULL), NB_ERR_ARG, "csv", "NULL");
    o.skip_rows = -2;
    ST(nb_dataset_parse_csv_opts(text, strlen(text), &o, &ds), NB_ERR_ARG, "csv", "skip_rows -2");
    o.skip_rows = 0;
    o.header = (nb_csv_header)7;
    ST(nb_dataset_parse_csv_opts(text, strlen(text), &o, &ds), NB_ERR_ARG, "csv", "header mode 7");
    o.header = NB_CSV_HEADER_AUTO;
    o.label_name = "c";
    ST(nb_dataset_parse_csv_opts(text, strlen(text), &o, &ds), NB_ERR_ARG, "csv",
       "no column is named 'c'");
    o.label_name = "";
    ST(nb_dataset_parse_csv_opts(text, strlen(text), &o, &ds), NB_ERR_ARG, "csv", "1..127");
}
static void row_nb_dataset_load_npy(void)
{
    nb_dataset ds;
    ST(nb_dataset_load_npy(NULL, "y.npy", &ds), NB_ERR_ARG, "dataset", "X path is NULL");
    ST(nb_dataset_load_npy("x.npy", NULL, &ds), NB_ERR_ARG, "dataset", "y path is NULL");
    ST(nb_dataset_load_npy("x.npy", "y.npy", NULL), NB_ERR_ARG, "dataset", "NULL");
}
static void row_nb_dataset_from_tensors(void)
{
    nb_dataset ds;
    nb_tensor *X = f32_23(), *y = nb_tensor_zeros(NB_I32, 1, s2);
    nb_tensor bad = bad_header();
    ST(nb_dataset_from_tensors(NULL, y, 0, &ds), NB_ERR_ARG, "nb_dataset_from_tensors",
       "X is NULL");
    ST(nb_dataset_from_tensors(X, NULL, 0, &ds), NB_ERR_ARG, "nb_dataset_from_tensors",
       "y is NULL");
    ST(nb_dataset_from_tensors(X, y, 0, NULL), NB_ERR_ARG, "nb_dataset_from_tensors", "NULL");
    ST(nb_dataset_from_tensors(X, y, -3, &ds), NB_ERR_ARG, "nb_dataset_from_tensors", "-3");
    ST(nb_dataset_from_tensors(&bad, y, 0, &ds), NB_ERR_SHAPE, "nb_dataset_from_tensors", "600");
    nb_tensor_free(X);
    nb_tensor_free(y);
}
static void make_ds(nb_dataset *ds)
{
    int64_t sx[2] = {4, 2}, sy[1] = {4};
    nb_tensor *X = nb_tensor_zeros(NB_F32, 2, sx), *y = nb_tensor_zeros(NB_I32, 1, sy);
    assert_int_equal(nb_dataset_from_tensors(X, y, 2, ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);
}
static void row_nb_dataset_split(void)
{
    nb_dataset ds, tr, va;
    make_ds(&ds);
    ST(nb_dataset_split(NULL, 0.5, 1, &tr, &va), NB_ERR_ARG, "split", "data set is NULL");
    ST(nb_dataset_split(&ds, 0.5, 1, NULL, &va), NB_ERR_ARG, "split", "train and val");
    ST(nb_dataset_split(&ds, 0.5, 1, &tr, NULL), NB_ERR_ARG, "split", "train and val");
    ST(nb_dataset_split(&ds, 1.5, 1, &tr, &va), NB_ERR_ARG, "split", "1.5");
    ST(nb_dataset_split(&ds, NAN, 1, &tr, &va), NB_ERR_ARG, "split", "nan");
    nb_dataset_free(&ds);
}
static void row_nb_batcher_init(void)
{
    nb_dataset ds;
    nb_batcher b;
    make_ds(&ds);
    ST(nb_batcher_init(NULL, &ds, 2, false, 1), NB_ERR_ARG, "batcher", "iterator is NULL");
    ST(nb_batcher_init(&b, NULL, 2, false, 1), NB_ERR_ARG, "batcher", "data set is NULL");
    ST(nb_batcher_init(&b, &ds, 0, false, 1), NB_ERR_ARG, "batcher", "batch size 0");
    nb_batcher_free(&b);
    nb_dataset_free(&ds);
}
static void row_nb_batcher_next(void)
{
    nb_dataset ds;
    nb_batcher b;
    make_ds(&ds);
    assert_int_equal(nb_batcher_init(&b, &ds, 2, false, 1), NB_OK);
    int64_t sx[2] = {2, 2}, sy[1] = {2};
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, sx), *yb = nb_tensor_zeros(NB_I32, 1, sy);
    VAL(bool, nb_batcher_next(NULL, xb, yb), !v_, NB_ERR_STATE, "batcher", "NULL");
    VAL(bool, nb_batcher_next(&b, NULL, yb), !v_, NB_ERR_ARG, "batcher", "xb is NULL");
    VAL(bool, nb_batcher_next(&b, xb, NULL), !v_, NB_ERR_ARG, "batcher", "yb is NULL");
    VAL(bool, nb_batcher_next(&b, yb, xb), !v_, NB_ERR_SHAPE, "batcher", "xb is i32");
    assert_int_equal(b.pos, 0);
    nb_batcher_free(&b);
    nb_dataset_free(&ds);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
}
static void row_nb_batcher_seek(void)
{
    nb_dataset ds;
    nb_batcher b;
    make_ds(&ds);
    assert_int_equal(nb_batcher_init(&b, &ds, 2, false, 1), NB_OK);
    nb_rng r = b.rng;
    ST(nb_batcher_seek(NULL, 0, 0, &r), NB_ERR_ARG, "batcher", "iterator");
    ST(nb_batcher_seek(&b, 0, 0, NULL), NB_ERR_ARG, "batcher", "rng");
    ST(nb_batcher_seek(&b, -1, 0, &r), NB_ERR_ARG, "batcher", "epoch -1");
    ST(nb_batcher_seek(&b, 0, 5, &r), NB_ERR_ARG, "batcher", "pos 5");
    nb_batcher_free(&b);
    nb_dataset_free(&ds);
}
static void row_nb_batcher_free(void)
{
    QUIET(nb_batcher_free(NULL));
}
static void row_nb_spirals(void)
{
    nb_tensor *X, *y;
    ST(nb_spirals(10, 3, 0.1, 1, NULL, &y), NB_ERR_ARG, "nb_spirals", "X is NULL");
    ST(nb_spirals(10, 3, 0.1, 1, &X, NULL), NB_ERR_ARG, "nb_spirals", "y is NULL");
    ST(nb_spirals(0, 3, 0.1, 1, &X, &y), NB_ERR_ARG, "nb_spirals", "got 0, 3");
    ST(nb_spirals(10, 1, 0.1, 1, &X, &y), NB_ERR_ARG, "nb_spirals", "got 10, 1");
    ST(nb_spirals(10, 3, -1, 1, &X, &y), NB_ERR_ARG, "nb_spirals", "noise -1");
}
static void row_nb_seq_toy(void)
{
    nb_tensor *X, *Y;
    ST(nb_seq_toy(4, 8, 5, 1, NULL, &Y), NB_ERR_ARG, "nb_seq_toy", "X is NULL");
    ST(nb_seq_toy(4, 8, 5, 1, &X, NULL), NB_ERR_ARG, "nb_seq_toy", "Y is NULL");
    ST(nb_seq_toy(0, 8, 5, 1, &X, &Y), NB_ERR_ARG, "nb_seq_toy", "got 0, 8, 5");
    ST(nb_seq_toy(4, 1, 5, 1, &X, &Y), NB_ERR_ARG, "nb_seq_toy", "got 4, 1, 5");
    ST(nb_seq_toy(4, 8, 99999, 1, &X, &Y), NB_ERR_ARG, "nb_seq_toy", "99999");
}

/* ======================================================================================== */
/* npy.h, safetensors.h, checkpoint.h                                                        */

static void row_nb_npy_load(void)
{
    NUL(nb_npy_load(NULL), NB_ERR_ARG, "npy", "path is NULL");
    NUL(nb_npy_load("/nonexistent/nabla/x.npy"), NB_ERR_IO, "npy", "/nonexistent/nabla/x.npy");
}
static void row_nb_npy_parse(void)
{
    NUL(nb_npy_parse(NULL, 5), NB_ERR_ARG, "npy", "buffer is NULL");
    NUL(nb_npy_parse("", 0), NB_ERR_FORMAT, "npy", NULL);
}
static void row_nb_npy_save(void)
{
    nb_tensor *a = f32_23();
    nb_tensor bad = bad_header();
    ST(nb_npy_save(NULL, a), NB_ERR_ARG, "npy", "path is NULL");
    ST(nb_npy_save("/nonexistent/nabla/x.npy", NULL), NB_ERR_ARG, "npy", "NULL");
    ST(nb_npy_save("/nonexistent/nabla/x.npy", &bad), NB_ERR_SHAPE, "npy", "600");
    nb_tensor_free(a);
}
static void row_nb_safetensors_save(void)
{
    nb_tensor *a = f32_23();
    nb_named_tensor ok[1] = {{"a", a}}, noname[1] = {{NULL, a}}, nott[1] = {{"a", NULL}};
    ST(nb_safetensors_save(NULL, ok, 1, NULL), NB_ERR_ARG, "safetensors", "path is NULL");
    ST(nb_safetensors_save("/nonexistent/nabla/x.st", NULL, 1, NULL), NB_ERR_ARG, "safetensors",
       "NULL");
    ST(nb_safetensors_save("/nonexistent/nabla/x.st", ok, -1, NULL), NB_ERR_ARG, "safetensors",
       "-1");
    ST(nb_safetensors_save("/nonexistent/nabla/x.st", noname, 1, NULL), NB_ERR_ARG, "safetensors",
       "name");
    ST(nb_safetensors_save("/nonexistent/nabla/x.st", nott, 1, NULL), NB_ERR_ARG, "safetensors",
       "NULL");
    nb_tensor_free(a);
}
static void row_nb_safetensors_load(void)
{
    NUL(nb_safetensors_load(NULL), NB_ERR_ARG, "safetensors", "path is NULL");
    NUL(nb_safetensors_load("/nonexistent/nabla/x.st"), NB_ERR_IO, "safetensors",
        "/nonexistent/nabla/x.st");
}
static void row_nb_safetensors_parse(void)
{
    NUL(nb_safetensors_parse(NULL, 9), NB_ERR_ARG, "safetensors", "buffer is NULL");
    NUL(nb_safetensors_parse("", 0), NB_ERR_FORMAT, "safetensors", NULL);
}
static nb_safetensors *tiny_st(void)
{
    /* header {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} + 1 byte */
    static const char hdr[] = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    unsigned char buf[128];
    uint64_t n = sizeof hdr - 1;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)n);
    buf[8 + n] = 7;
    nb_safetensors *st = nb_safetensors_parse(buf, 8 + (size_t)n + 1);
    assert_non_null(st);
    return st;
}
static void row_nb_safetensors_count(void)
{
    VAL(int, nb_safetensors_count(NULL), v_ == 0, NB_ERR_ARG, "nb_safetensors_count", "st is NULL");
}
static void row_nb_safetensors_name(void)
{
    nb_safetensors *st = tiny_st();
    NUL(nb_safetensors_name(NULL, 0), NB_ERR_ARG, "nb_safetensors_name", "st is NULL");
    NUL(nb_safetensors_name(st, 1), NB_ERR_RANGE, "nb_safetensors_name",
        "index 1 out of range [0, 1)");
    NUL(nb_safetensors_name(st, -1), NB_ERR_RANGE, "nb_safetensors_name", "index -1");
    nb_safetensors_free(st);
}
static void row_nb_safetensors_get(void)
{
    nb_safetensors *st = tiny_st();
    NUL(nb_safetensors_get(NULL, "a"), NB_ERR_ARG, "nb_safetensors_get", "st is NULL");
    NUL(nb_safetensors_get(st, NULL), NB_ERR_ARG, "nb_safetensors_get", "name is NULL");
    QUIET(assert_null(nb_safetensors_get(st, "absent"))); /* an answer, not a failure */
    nb_safetensors_free(st);
}
static void row_nb_safetensors_meta(void)
{
    nb_safetensors *st = tiny_st();
    NUL(nb_safetensors_meta(NULL, "k"), NB_ERR_ARG, "nb_safetensors_meta", "st is NULL");
    NUL(nb_safetensors_meta(st, NULL), NB_ERR_ARG, "nb_safetensors_meta", "key is NULL");
    QUIET(assert_null(nb_safetensors_meta(st, "absent")));
    nb_safetensors_free(st);
}
static void row_nb_safetensors_meta_count(void)
{
    VAL(int, nb_safetensors_meta_count(NULL), v_ == 0, NB_ERR_ARG, "nb_safetensors_meta_count",
        "st is NULL");
}
static void row_nb_safetensors_meta_key(void)
{
    nb_safetensors *st = tiny_st();
    NUL(nb_safetensors_meta_key(NULL, 0), NB_ERR_ARG, "nb_safetensors_meta_key", "st is NULL");
    NUL(nb_safetensors_meta_key(st, 0), NB_ERR_RANGE, "nb_safetensors_meta_key",
        "index 0 out of range [0, 0)");
    nb_safetensors_free(st);
}
static void row_nb_safetensors_free(void)
{
    QUIET(nb_safetensors_free(NULL));
}
static nb_model_info tiny_info(void)
{
    nb_model_info info;
    memset(&info, 0, sizeof info);
    info.input_scale = 1;
    info.n_classes = 2;
    return info;
}
static void row_nb_model_save(void)
{
    nb_mlp *m = small_mlp();
    nb_model_info info = tiny_info();
    ST(nb_model_save(NULL, m, &info, NULL), NB_ERR_ARG, "nb_model_save", "path is NULL");
    ST(nb_model_save("/nonexistent/nabla/m.st", NULL, &info, NULL), NB_ERR_ARG, "nb_model_save",
       "m is NULL");
    ST(nb_model_save("/nonexistent/nabla/m.st", m, NULL, NULL), NB_ERR_ARG, "nb_model_save",
       "info is NULL");
    m->n_layers = 40;
    ST(nb_model_save("/nonexistent/nabla/m.st", m, &info, NULL), NB_ERR_ARG, "nb_model_save",
       "40 layers");
    m->n_layers = 2;
    nb_mlp_free(m);
}
static void row_nb_model_save_ex(void)
{
    nb_mlp *m = small_mlp();
    nb_model_info info = tiny_info();
    const char *extra[] = {"k", "v", NULL};
    ST(nb_model_save_ex(NULL, m, &info, NULL, extra), NB_ERR_ARG, "nb_model_save_ex",
       "path is NULL");
    ST(nb_model_save_ex("/nonexistent/nabla/m.st", NULL, &info, NULL, extra), NB_ERR_ARG,
       "nb_model_save_ex", "m is NULL");
    nb_mlp_free(m);
}
static void row_nb_model_load_into(void)
{
    nb_mlp *m = small_mlp();
    nb_model_info info;
    ST(nb_model_load_into(NULL, m, &info, NULL), NB_ERR_ARG, "nb_model_load_into", "path is NULL");
    ST(nb_model_load_into("/nonexistent/nabla/m.st", NULL, &info, NULL), NB_ERR_ARG,
       "nb_model_load_into", "m is NULL");
    ST(nb_model_load_into("/nonexistent/nabla/m.st", m, NULL, NULL), NB_ERR_ARG,
       "nb_model_load_into", "info is NULL");
    ST(nb_model_load_into("/nonexistent/nabla/m.st", m, &info, NULL), NB_ERR_IO,
       "nb_model_load_into", "/nonexistent/nabla/m.st");
    nb_mlp_free(m);
}
static void row_nb_model_load(void)
{
    nb_model_info info;
    NUL(nb_model_load(NULL, &info, NULL), NB_ERR_ARG, "nb_model_load", "path is NULL");
    NUL(nb_model_load("/nonexistent/nabla/m.st", NULL, NULL), NB_ERR_ARG, "nb_model_load",
        "info is NULL");
    NUL(nb_model_load("/nonexistent/nabla/m.st", &info, NULL), NB_ERR_IO, "nb_model_load",
        "/nonexistent/nabla/m.st");
}

/* ---- functions added with issue 10's other branches ---- */

static void row_nb_npy_load_half(void)
{
    NUL(nb_npy_load_half(NULL, NB_BF16), NB_ERR_ARG, "npy", "path is NULL");
    NUL(nb_npy_load_half("x.npy", NB_F32), NB_ERR_ARG, "npy", "dtype f32 is not bf16 or f16");
    NUL(nb_npy_load_half("/nonexistent/nabla/x.npy", NB_F16), NB_ERR_IO, "npy",
        "/nonexistent/nabla/x.npy");
}
static nb_status cop_fwd(nb_tensor *out, const nb_tensor *const *in, int n_in, void *ctx)
{
    (void)out, (void)in, (void)n_in, (void)ctx;
    return NB_OK;
}
static void row_nb_custom_op(void)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_tensor_zeros(NB_F64, 1, s3);
    nb_tensor *x32 = nb_tensor_zeros(NB_F32, 1, s3);
    nb_tensor *in[2] = {x, x32}, *nul[1] = {NULL};
    NUL(nb_custom_op(g, NULL, in, 1, 1, s3, cop_fwd, NULL, NULL), NB_ERR_ARG, "nb_custom_op",
        "got NULL");
    NUL(nb_custom_op(g, "op", in, 1, 1, s3, NULL, NULL, NULL), NB_ERR_ARG, "custom op 'op'",
        "forward function is NULL");
    NUL(nb_custom_op(g, "op", NULL, 1, 1, s3, cop_fwd, NULL, NULL), NB_ERR_ARG, "custom op 'op'",
        "array NULL");
    NUL(nb_custom_op(g, "op", in, 0, 1, s3, cop_fwd, NULL, NULL), NB_ERR_ARG, "custom op 'op'",
        "0 inputs");
    NUL(nb_custom_op(g, "op", in, 1, 9, s3, cop_fwd, NULL, NULL), NB_ERR_SHAPE, "custom op 'op'",
        "output has 9 dims");
    NUL(nb_custom_op(g, "op", in, 2, 1, s3, cop_fwd, NULL, NULL), NB_ERR_DTYPE, "custom op 'op'",
        "input 1 is f32");
    NUL(nb_custom_op(NULL, "op", in, 1, 1, s3, cop_fwd, NULL, NULL), NB_ERR_ARG, "custom op 'op'",
        "NULL");
    NUL(nb_custom_op(g, "op", nul, 1, 1, s3, cop_fwd, NULL, NULL), NB_ERR_ARG, "custom op 'op'",
        "input 0 is NULL");
    nb_tensor_free(x);
    nb_tensor_free(x32);
    nb_graph_free(g);
}
static void row_nb_optim_state_check(void)
{
    nb_tensor *p;
    nb_optim *o = make_optim(&p);
    nb_tensor *wrong = nb_tensor_zeros(NB_F64, 1, s3);
    ST(nb_optim_state_check(NULL, 0, wrong), NB_ERR_ARG, "nb_optim_state_check",
       "no state tensor 0");
    ST(nb_optim_state_check(o, 7, wrong), NB_ERR_ARG, "nb_optim_state_check", "no state tensor 7");
    ST(nb_optim_state_check(o, 0, NULL), NB_ERR_ARG, "nb_optim_state_check", "source is NULL");
    nb_tensor_free(wrong);
    nb_optim_free(o);
    nb_tensor_free(p);
}
static void row_nb_gradcheck_print(void)
{
    nb_gradcheck_result res;
    memset(&res, 0, sizeof res);
    VOID(nb_gradcheck_print(NULL, &res, NULL, 0.0), NB_ERR_ARG, "nb_gradcheck_print",
         "out is NULL");
    VOID(nb_gradcheck_print(stderr, NULL, NULL, 0.0), NB_ERR_ARG, "nb_gradcheck_print",
         "res is NULL");
}
static void row_nb_gradcheck_coords_str(void)
{
    char buf[16];
    nb_gradcheck_element e;
    memset(&e, 0, sizeof e);
    VAL(char *, nb_gradcheck_coords_str(&e, NULL, 16), v_ == NULL, NB_ERR_ARG,
        "nb_gradcheck_coords_str", "buf is NULL");
    VAL(char *, nb_gradcheck_coords_str(&e, buf, 0), v_ == buf, NB_ERR_ARG,
        "nb_gradcheck_coords_str", "len is 0");
    VAL(char *, nb_gradcheck_coords_str(NULL, buf, sizeof buf), !strcmp(v_, "[]"), NB_ERR_ARG,
        "nb_gradcheck_coords_str", "e is NULL");
}
static void row_nb_safetensors_meta_int(void)
{
    nb_safetensors *st = tiny_st();
    int64_t v = 0;
    ST(nb_safetensors_meta_int(NULL, "k", 0, 1, &v), NB_ERR_ARG, "nb_safetensors_meta_int",
       "st is NULL");
    ST(nb_safetensors_meta_int(st, NULL, 0, 1, &v), NB_ERR_ARG, "nb_safetensors_meta_int",
       "key is NULL");
    ST(nb_safetensors_meta_int(st, "k", 0, 1, NULL), NB_ERR_ARG, "nb_safetensors_meta_int",
       "out is NULL");
    ST(nb_safetensors_meta_int(st, "absent", 0, 1, &v), NB_ERR_FORMAT, "absent", NULL);
    nb_safetensors_free(st);
}
static void row_nb_safetensors_meta_number(void)
{
    nb_safetensors *st = tiny_st();
    double v = 0;
    ST(nb_safetensors_meta_number(NULL, "k", 0, 1, &v), NB_ERR_ARG, "nb_safetensors_meta_number",
       "st is NULL");
    ST(nb_safetensors_meta_number(st, NULL, 0, 1, &v), NB_ERR_ARG, "nb_safetensors_meta_number",
       "key is NULL");
    ST(nb_safetensors_meta_number(st, "k", 0, 1, NULL), NB_ERR_ARG, "nb_safetensors_meta_number",
       "out is NULL");
    ST(nb_safetensors_meta_number(st, "absent", 0, 1, &v), NB_ERR_FORMAT, "absent", NULL);
    nb_safetensors_free(st);
}

/* ---- eval.h ---- */
static nb_tensor *null_forward(nb_graph *g, nb_tensor *x, void *ctx)
{
    (void)g;
    (void)x;
    (void)ctx;
    return NULL;
}
static void row_nb_forward_mlp(void)
{
    nb_graph *g = nb_graph_new();
    nb_mlp *m = small_mlp();
    nb_tensor *x = f32_23(), *x2 = nb_tensor_zeros(NB_F32, 1, s3);
    NUL(nb_forward_mlp(g, x, NULL), NB_ERR_ARG, "nb_forward_mlp", "mlp is NULL");
    NUL(nb_forward_mlp(NULL, x, m), NB_ERR_ARG, "nb_forward_mlp", "g is NULL");
    NUL(nb_forward_mlp(g, NULL, m), NB_ERR_ARG, "nb_forward_mlp", "x is NULL");
    NUL(nb_forward_mlp(g, x2, m), NB_ERR_SHAPE, "nb_forward_mlp", "[3]");
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_tensor_free(x);
    nb_tensor_free(x2);
}
static void row_nb_evaluate(void)
{
    nb_graph *g = nb_graph_new();
    nb_mlp *m = small_mlp(); /* 3 inputs, 2 outputs */
    nb_tensor *x = f32_23(), *y = nb_tensor_zeros(NB_I32, 1, s2),
              *y3 = nb_tensor_zeros(NB_I32, 1, s3);
    nb_tensor *yr = nb_tensor_full(NB_I64, 1, s2, 4), *xi = nb_tensor_zeros(NB_I32, 2, s23);
    nb_tensor *x1 = nb_tensor_zeros(NB_F32, 1, s3), bad = bad_header();
    nb_tensor *xg = nb_graph_tensor(g, NB_F32, 2, s23);
    nb_eval_result r;
    nb_forward_fn f = nb_forward_mlp;
    ST(nb_evaluate(g, f, m, x, y, 2, 1, -100, NULL), NB_ERR_ARG, "nb_evaluate", "res is NULL");
    ST(nb_evaluate(NULL, f, m, x, y, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "g is NULL");
    ST(nb_evaluate(g, NULL, m, x, y, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "forward is NULL");
    ST(nb_evaluate(g, f, m, NULL, y, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "X is NULL");
    ST(nb_evaluate(g, f, m, &bad, y, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "numel 600");
    ST(nb_evaluate(g, f, m, xi, y, 2, 1, -100, &r), NB_ERR_DTYPE, "nb_evaluate", "i32");
    ST(nb_evaluate(g, f, m, x1, y, 2, 1, -100, &r), NB_ERR_SHAPE, "nb_evaluate", "[3]");
    ST(nb_evaluate(g, f, m, xg, y, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "belongs to");
    ST(nb_evaluate(g, f, m, x, y, 2, 0, -100, &r), NB_ERR_ARG, "nb_evaluate", "batch 0");
    ST(nb_evaluate(g, f, m, x, NULL, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "y is NULL");
    ST(nb_evaluate(g, f, m, x, x, 2, 1, -100, &r), NB_ERR_DTYPE, "nb_evaluate", "f32");
    ST(nb_evaluate(g, f, m, x, y3, 2, 1, -100, &r), NB_ERR_SHAPE, "nb_evaluate", "[3]");
    ST(nb_evaluate(g, f, m, x, y, 0, 1, -100, &r), NB_ERR_ARG, "nb_evaluate", "n_classes 0");
    ST(nb_evaluate(g, f, m, x, yr, 2, 1, -100, &r), NB_ERR_RANGE, "nb_evaluate",
       "target 4 at row 0");
    ST(nb_evaluate(g, f, m, x, y, 3, 1, -100, &r), NB_ERR_SHAPE, "nb_evaluate", "2 outputs");
    ST(nb_evaluate(g, null_forward, m, x, y, 2, 1, -100, &r), NB_ERR_ARG, "nb_evaluate",
       "forward failed on rows [0, 1)");
    nb_eval_result_free(&r);
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_tensor_free(y3);
    nb_tensor_free(yr);
    nb_tensor_free(xi);
    nb_tensor_free(x1);
}
static void row_nb_eval_metrics_from_confusion(void)
{
    nb_eval_result r;
    memset(&r, 0, sizeof r);
    ST(nb_eval_metrics_from_confusion(NULL), NB_ERR_ARG, "nb_eval_metrics_from_confusion",
       "res is NULL");
    ST(nb_eval_metrics_from_confusion(&r), NB_ERR_ARG, "nb_eval_metrics_from_confusion",
       "confusion is NULL");
    r.confusion = calloc(4, sizeof *r.confusion);
    assert_non_null(r.confusion);
    ST(nb_eval_metrics_from_confusion(&r), NB_ERR_RANGE, "nb_eval_metrics_from_confusion",
       "n_classes 0");
    r.n_classes = 2;
    r.confusion[2] = -3;
    ST(nb_eval_metrics_from_confusion(&r), NB_ERR_RANGE, "nb_eval_metrics_from_confusion",
       "confusion[1][0] is -3");
    nb_eval_result_free(&r);
}
static void row_nb_eval_result_free(void)
{
    QUIET(nb_eval_result_free(NULL));
}
static void row_nb_predict(void)
{
    nb_graph *g = nb_graph_new();
    nb_mlp *m = small_mlp();
    nb_tensor *x = f32_23(), *out = NULL;
    nb_forward_fn f = nb_forward_mlp;
    ST(nb_predict(g, f, m, x, 1, false, NULL), NB_ERR_ARG, "nb_predict", "out is NULL");
    ST(nb_predict(NULL, f, m, x, 1, false, &out), NB_ERR_ARG, "nb_predict", "g is NULL");
    ST(nb_predict(g, NULL, m, x, 1, false, &out), NB_ERR_ARG, "nb_predict", "forward is NULL");
    ST(nb_predict(g, f, m, NULL, 1, false, &out), NB_ERR_ARG, "nb_predict", "X is NULL");
    ST(nb_predict(g, f, m, x, -2, true, &out), NB_ERR_ARG, "nb_predict", "batch -2");
    ST(nb_predict(g, null_forward, m, x, 1, true, &out), NB_ERR_ARG, "nb_predict",
       "forward failed on rows [0, 1)");
    assert_null(out);
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_tensor_free(x);
}

/* ---- per-feature standardisation (issues 11 and 14) ---- */
static void row_nb_dataset_standardize(void)
{
    nb_dataset tr, va;
    make_ds(&tr);
    make_ds(&va);
    ST(nb_dataset_standardize(NULL, &va, NULL), NB_ERR_ARG, "nb_dataset_standardize",
       "train is NULL");
    ST(nb_dataset_standardize(&tr, &tr, NULL), NB_ERR_ARG, "nb_dataset_standardize",
       "val is the same data set as train");
    ST(nb_dataset_standardize(&tr, &va, &va), NB_ERR_ARG, "nb_dataset_standardize",
       "test is the same data set as val");
    nb_tensor *X = va.X;
    va.X = NULL;
    ST(nb_dataset_standardize(&tr, &va, NULL), NB_ERR_ARG, "nb_dataset_standardize",
       "val: X is NULL");
    va.X = X;
    assert_int_equal(nb_dataset_standardize(&tr, NULL, NULL), NB_OK);
    ST(nb_dataset_standardize(&tr, NULL, NULL), NB_ERR_STATE, "nb_dataset_standardize",
       "train is already standardised");
    nb_dataset_free(&tr);
    nb_dataset_free(&va);
}
static void row_nb_dataset_set_class_names(void)
{
    nb_dataset ds;
    make_ds(&ds);
    const char *names[] = {"cat", "dog", "bird", "fish", "cow", "emu", "ant", "bee", "owl", "yak"};
    ST(nb_dataset_set_class_names(NULL, names, 2), NB_ERR_ARG, "nb_dataset_set_class_names",
       "ds is NULL");
    ST(nb_dataset_set_class_names(&ds, names, ds.n_classes + 1), NB_ERR_ARG,
       "nb_dataset_set_class_names", "names for a data set of");
    const char *bad[10] = {"a", "", "c", "d", "e", "f", "g", "h", "i", "j"};
    ST(nb_dataset_set_class_names(&ds, bad, ds.n_classes), NB_ERR_ARG, "class name 1", "printable");
    const char *latin1[10] = {"a", "caf\xe9", "c", "d", "e", "f", "g", "h", "i", "j"};
    ST(nb_dataset_set_class_names(&ds, latin1, ds.n_classes), NB_ERR_ARG, "class name 1",
       "not UTF-8");
    assert_null(ds.class_names);
    assert_true(ds.n_classes <= 10);
    assert_int_equal(nb_dataset_set_class_names(&ds, names, ds.n_classes), NB_OK);
    assert_string_equal(ds.class_names[ds.n_classes - 1], names[ds.n_classes - 1]);
    nb_dataset a, b; /* a split keeps the names */
    assert_int_equal(nb_dataset_split(&ds, 0.5, 1, &a, &b), NB_OK);
    assert_string_equal(a.class_names[0], "cat");
    assert_string_equal(b.class_names[0], "cat");
    nb_dataset_free(&a);
    nb_dataset_free(&b);
    assert_int_equal(nb_dataset_set_class_names(&ds, NULL, 0), NB_OK);
    assert_null(ds.class_names);
    nb_dataset_free(&ds);
}
static void row_nb_mnist_class_names(void)
{
    /* no argument to check: both sets answer with ten names */
    assert_string_equal(nb_mnist_class_names(true)[9], "Ankle boot");
    assert_string_equal(nb_mnist_class_names(false)[9], "9");
}
static void row_nb_dataset_load_class_names(void)
{
    nb_dataset ds;
    make_ds(&ds);
    const char *fn = "nb_dataset_load_class_names";
    ST(nb_dataset_load_class_names(NULL, "x"), NB_ERR_ARG, fn, "ds is NULL");
    ST(nb_dataset_load_class_names(&ds, NULL), NB_ERR_ARG, fn, "path is NULL");
    ST(nb_dataset_load_class_names(&ds, "/nonexistent/names.txt"), NB_ERR_IO, fn, "cannot open");
    assert_null(ds.class_names);
    nb_dataset_free(&ds);
}
static void row_nb_dataset_apply_standardize(void)
{
    nb_dataset ds;
    make_ds(&ds); /* D = 2 */
    nb_tensor *m = nb_tensor_zeros(NB_F32, 1, s2), *sd = nb_tensor_ones(NB_F32, 1, s2);
    nb_tensor *m3 = nb_tensor_zeros(NB_F32, 1, s3);
    const char *fn = "nb_dataset_apply_standardize";
    ST(nb_dataset_apply_standardize(NULL, m, sd), NB_ERR_ARG, fn, "ds is NULL");
    ST(nb_dataset_apply_standardize(&ds, NULL, sd), NB_ERR_ARG, fn, "mean is NULL");
    ST(nb_dataset_apply_standardize(&ds, m, NULL), NB_ERR_ARG, fn, "std is NULL");
    ST(nb_dataset_apply_standardize(&ds, m3, sd), NB_ERR_SHAPE, fn, "mean is f32 [3]");
    nb_tensor_set(sd, 1, 0.0);
    ST(nb_dataset_apply_standardize(&ds, m, sd), NB_ERR_RANGE, fn, "std element 1 is 0");
    nb_tensor_set(sd, 1, 1.0);
    nb_tensor_set(m, 0, NAN);
    ST(nb_dataset_apply_standardize(&ds, m, sd), NB_ERR_RANGE, fn, "mean element 0 is nan");
    nb_tensor_free(m);
    nb_tensor_free(sd);
    nb_tensor_free(m3);
    nb_dataset_free(&ds);
}
static void row_nb_standardize_features(void)
{
    int64_t sx[2] = {2, 2}, s1[1] = {4};
    nb_tensor *m = nb_tensor_zeros(NB_F32, 1, s2), *sd = nb_tensor_full(NB_F32, 1, s2, 1e-30);
    nb_tensor *x = nb_tensor_full(NB_F32, 2, sx, 1e30), *x1 = nb_tensor_zeros(NB_F32, 1, s1);
    const char *fn = "nb_standardize_features";
    ST(nb_standardize_features(NULL, m, sd), NB_ERR_ARG, fn, "X is NULL");
    ST(nb_standardize_features(x1, m, sd), NB_ERR_SHAPE, fn, "X is f32 [4]");
    ST(nb_standardize_features(x, m, NULL), NB_ERR_ARG, fn, "std is NULL");
    ST(nb_standardize_features(x, m, sd), NB_ERR_RANGE, fn, "row 0, column 0 is 1e+30");
    assert_true(nb_tensor_get(x, 0) == (double)1e30f); /* unchanged */
    nb_tensor_free(m);
    nb_tensor_free(sd);
    nb_tensor_free(x);
    nb_tensor_free(x1);
}
static void row_nb_dataset_split3(void)
{
    nb_dataset ds, tr, va, te;
    make_ds(&ds); /* 4 rows */
    const char *fn = "nb_dataset_split3";
    ST(nb_dataset_split3(NULL, 0.25, 0.25, 1, &tr, &va, &te), NB_ERR_ARG, fn, "data set is NULL");
    ST(nb_dataset_split3(&ds, 0.25, 0.25, 1, &tr, NULL, &te), NB_ERR_ARG, fn,
       "three distinct data sets");
    ST(nb_dataset_split3(&ds, 0.25, 0.25, 1, &tr, &va, &va), NB_ERR_ARG, fn,
       "three distinct data sets");
    ST(nb_dataset_split3(&ds, 0.5, 0.5, 1, &tr, &va, &te), NB_ERR_ARG, fn, "sum < 1");
    ST(nb_dataset_split3(&ds, NAN, 0.25, 1, &tr, &va, &te), NB_ERR_ARG, fn, "val_fraction nan");
    ST(nb_dataset_split3(&ds, 0.1, 0.25, 1, &tr, &va, &te), NB_ERR_ARG, fn,
       "give 0 validation, 1 test and 3 training rows");
    nb_dataset_free(&ds);
}
static void row_nb_evaluate_checkpoint(void)
{
    nb_dataset ds;
    nb_eval_result res;
    make_ds(&ds);
    const char *fn = "nb_evaluate_checkpoint";
    ST(nb_evaluate_checkpoint(NULL, &ds, &res), NB_ERR_ARG, fn, "path is NULL");
    ST(nb_evaluate_checkpoint("/nonexistent/nabla/m.st", NULL, &res), NB_ERR_ARG, fn,
       "data is NULL");
    ST(nb_evaluate_checkpoint("/nonexistent/nabla/m.st", &ds, NULL), NB_ERR_ARG, fn, "res is NULL");
    ST(nb_evaluate_checkpoint("/nonexistent/nabla/m.st", &ds, &res), NB_ERR_IO, fn,
       "/nonexistent/nabla/m.st");
    nb_eval_result_free(&res);
    nb_dataset_free(&ds);
}
static void row_nb_model_info_free(void)
{
    QUIET(nb_model_info_free(NULL));
    nb_model_info info = tiny_info();
    QUIET(nb_model_info_free(&info)); /* no standardisation: nothing to free */
    assert_null(info.input_mean);
}

/* ---- lce.h: x [2,3], W [4,3], b [4], targets [2] ---- */

static void row_nb_lce_defaults(void)
{
    QUIET(assert_int_equal(nb_lce_defaults().xent.ignore_index, -100)); /* no arguments */
}

typedef struct lce_args {
    nb_tensor *x, *w, *b, *t, *w3, *bd, *t5;
} lce_args;

static lce_args lce_make(void)
{
    int64_t sw[2] = {4, 3}, sb[1] = {4}, st[1] = {2}, sw3[2] = {4, 2};
    lce_args a = {f32_23(),
                  nb_tensor_zeros(NB_F32, 2, sw),
                  nb_tensor_zeros(NB_F32, 1, sb),
                  nb_tensor_zeros(NB_I32, 1, st),
                  nb_tensor_zeros(NB_F32, 2, sw3),
                  nb_tensor_zeros(NB_F64, 1, sb),
                  nb_tensor_full(NB_I32, 1, st, 5)};
    return a;
}

static void lce_free(lce_args *a)
{
    nb_tensor *all[] = {a->x, a->w, a->b, a->t, a->w3, a->bd, a->t5};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
}

static void row_nb_linear_cross_entropy(void)
{
    const char *f = "linear_cross_entropy";
    lce_args a = lce_make();
    nb_graph *g = nb_graph_new();
    nb_tensor bad = bad_header();
    nb_lce_opts o = nb_lce_defaults();
    NUL(nb_linear_cross_entropy(NULL, a.x, a.w, a.b, a.t, NULL), NB_ERR_ARG, f, "graph is NULL");
    NUL(nb_linear_cross_entropy(g, NULL, a.w, a.b, a.t, NULL), NB_ERR_ARG, f, "input 0 is NULL");
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, NULL, NULL), NB_ERR_ARG, f, "targets is NULL");
    NUL(nb_linear_cross_entropy(g, a.x, &bad, a.b, a.t, NULL), NB_ERR_ARG, f, "numel 600");
    NUL(nb_linear_cross_entropy(g, a.x, a.w3, NULL, a.t, NULL), NB_ERR_SHAPE, f, "D = 3");
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.x, a.t, NULL), NB_ERR_SHAPE, f, "must be [V] = [4]");
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.bd, a.t, NULL), NB_ERR_DTYPE, f, "x's dtype f32");
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t5, NULL), NB_ERR_RANGE, f,
        "target 5 out of range [0, 4)");
    o.softcap = -1.0;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f, "softcap -1");
    o = nb_lce_defaults();
    o.tile_classes = -2;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f, "tile_classes -2");
    o = nb_lce_defaults();
    o.xent.label_smoothing = 1.5;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f, "1.5");
    o = nb_lce_defaults();
    o.classes_total = -4;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f, "classes_total -4");
    o = nb_lce_defaults();
    o.class_offset = 2;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f,
        "class_offset 2 needs classes_total > 0");
    o.classes_total = 5;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f,
        "[class_offset 2, + V 4) must lie in [0, classes_total 5)");
    o.class_offset = 1;
    NUL(nb_linear_cross_entropy(g, a.x, a.w, a.b, a.t, &o), NB_ERR_ARG, f,
        "needs an allreduce callback");
    nb_graph_free(g);
    lce_free(&a);
}

static void row_nb_lce_reference(void)
{
    const char *f = "nb_lce_reference";
    lce_args a = lce_make();
    nb_tensor *loss = nb_tensor_zeros(NB_F64, 0, NULL);
    ST(nb_lce_reference(NULL, a.w, a.b, a.t, NULL, loss, NULL, NULL, NULL), NB_ERR_ARG, f,
       "x is NULL");
    ST(nb_lce_reference(a.x, a.w, a.b, a.t, NULL, NULL, NULL, NULL, NULL), NB_ERR_ARG, f,
       "loss is NULL");
    ST(nb_lce_reference(a.x, a.w, a.b, a.t, NULL, loss, a.w, NULL, NULL), NB_ERR_SHAPE, f,
       "dx f32 [4, 3]");
    ST(nb_lce_reference(a.x, a.w, a.b, a.t5, NULL, loss, NULL, NULL, NULL), NB_ERR_RANGE, f,
       "target 5 out of range");
    nb_lce_opts o = nb_lce_defaults();
    o.classes_total = 4;
    ST(nb_lce_reference(a.x, a.w, a.b, a.t, &o, loss, NULL, NULL, NULL), NB_ERR_ARG, f,
       "classes_total 4");
    nb_tensor_free(loss);
    lce_free(&a);
}

/* ======================================================================================== */
/* The table, and the check that it covers every declared function                           */

typedef struct row {
    const char *name;
    void (*run)(void);
} row;

#define ROW(f)                                                                                     \
    {                                                                                              \
#f, row_##f                                                                                \
    }
static const row rows[] = {
    /* status.h */
    ROW(nb_last_error),
    ROW(nb_status_name),
    ROW(nb_error),
    ROW(nb_last_status),
    ROW(nb_clear_error),
    /* tensor.h */
    ROW(nb_dtype_size),
    ROW(nb_dtype_name),
    ROW(nb_dtype_is_float),
    ROW(nb_dtype_compute),
    ROW(nb_tensor_empty),
    ROW(nb_tensor_zeros),
    ROW(nb_tensor_ones),
    ROW(nb_tensor_full),
    ROW(nb_tensor_from_buffer),
    ROW(nb_tensor_clone),
    ROW(nb_tensor_to_dtype),
    ROW(nb_tensor_free),
    ROW(nb_tensor_view),
    ROW(nb_tensor_set_requires_grad),
    ROW(nb_tensor_zero_grad),
    ROW(nb_tensor_get),
    ROW(nb_tensor_set),
    ROW(nb_tensor_grad_get),
    ROW(nb_shape_str),
    ROW(nb_shape_equal),
    ROW(nb_f16_to_f32),
    ROW(nb_f32_to_f16),
    ROW(nb_bf16_to_f32),
    ROW(nb_f32_to_bf16),
    ROW(nb_rng_seed),
    ROW(nb_rng_u64),
    ROW(nb_rng_uniform),
    ROW(nb_rng_normal),
    ROW(nb_rng_below),
    ROW(nb_tensor_rand),
    ROW(nb_tensor_randn),
    ROW(nb_tensor_fill_rand),
    ROW(nb_tensor_fill_randn),
    /* graph.h */
    ROW(nb_graph_new),
    ROW(nb_graph_free),
    ROW(nb_graph_reset),
    ROW(nb_graph_set_grad_enabled),
    ROW(nb_graph_grad_enabled),
    ROW(nb_graph_set_anomaly_detection),
    ROW(nb_graph_anomaly_detection),
    ROW(nb_graph_size),
    ROW(nb_graph_generation),
    ROW(nb_graph_arena_capacity),
    ROW(nb_graph_arena_used),
    ROW(nb_graph_arena_allocations),
    ROW(nb_backward),
    ROW(nb_graph_check),
    ROW(nb_graph_tensor),
    ROW(nb_tensor_op_name),
    /* gradcheck.h */
    ROW(nb_gradcheck),
    ROW(nb_gradcheck_print),
    ROW(nb_gradcheck_coords_str),
    ROW(nb_custom_op),
    ROW(nb_npy_load_half),
    ROW(nb_optim_state_check),
    ROW(nb_safetensors_meta_int),
    ROW(nb_safetensors_meta_number),
    /* ops.h */
    ROW(nb_matmul),
    ROW(nb_linear),
    ROW(nb_linear_relu),
    ROW(nb_add),
    ROW(nb_sub),
    ROW(nb_mul),
    ROW(nb_div),
    ROW(nb_neg),
    ROW(nb_scale),
    ROW(nb_relu),
    ROW(nb_leaky_relu),
    ROW(nb_tanh),
    ROW(nb_sigmoid),
    ROW(nb_gelu),
    ROW(nb_silu),
    ROW(nb_exp),
    ROW(nb_log),
    ROW(nb_sum),
    ROW(nb_mean),
    ROW(nb_sum_last),
    ROW(nb_mean_last),
    ROW(nb_reshape),
    ROW(nb_transpose),
    ROW(nb_logsumexp),
    ROW(nb_log_softmax),
    ROW(nb_softmax),
    ROW(nb_gather_last),
    ROW(nb_argmax_rows),
    ROW(nb_accuracy),
    ROW(nb_set_num_threads),
    ROW(nb_num_threads),
    ROW(nb_blas_core_name),
    ROW(nb_op_count),
    ROW(nb_op_at),
    ROW(nb_op_find),
    /* loss.h */
    ROW(nb_logsumexp_rows),
    ROW(nb_log_softmax_rows),
    ROW(nb_softmax_rows),
    ROW(nb_log_softmax_naive),
    ROW(nb_xent_defaults),
    ROW(nb_xent_validate),
    ROW(nb_cross_entropy),
    ROW(nb_cross_entropy_soft),
    ROW(nb_xent_forward),
    ROW(nb_xent_backward),
    ROW(nb_xent_forward_backward),
    ROW(nb_xent_forward_backward_ws),
    ROW(nb_xent_workspace_size),
    ROW(nb_xent_soft_forward),
    ROW(nb_xent_soft_backward),
    /* lce.h */
    ROW(nb_lce_defaults),
    ROW(nb_linear_cross_entropy),
    /* optim.h */
    ROW(nb_sgd_step),
    ROW(nb_train_defaults),
    ROW(nb_train_model_mlp),
    ROW(nb_trainer_new),
    ROW(nb_trainer_free),
    ROW(nb_trainer_resume),
    ROW(nb_trainer_step),
    ROW(nb_trainer_end_epoch),
    ROW(nb_trainer_run),
    ROW(nb_train),
    ROW(nb_trainer_result),
    ROW(nb_trainer_epoch),
    ROW(nb_trainer_optim),
    ROW(nb_trainer_last_checkpoint),
    ROW(nb_optim_defaults),
    ROW(nb_optim_kind_parse),
    ROW(nb_optim_kind_name),
    ROW(nb_optim_new),
    ROW(nb_optim_free),
    ROW(nb_optim_step),
    ROW(nb_optim_step_zero_grad),
    ROW(nb_optim_zero_grad),
    ROW(nb_optim_set_lr),
    ROW(nb_optim_lr),
    ROW(nb_optim_get_config),
    ROW(nb_optim_step_count),
    ROW(nb_optim_set_step_count),
    ROW(nb_optim_state_count),
    ROW(nb_optim_state_tensor),
    ROW(nb_schedule_lr),
    ROW(nb_sched_kind_parse),
    ROW(nb_clip_grad_norm),
    /* nn.h */
    ROW(nb_activation_parse),
    ROW(nb_activation_name),
    ROW(nb_init_parse),
    ROW(nb_dropout),
    ROW(nb_mlp_new),
    ROW(nb_mlp_free),
    ROW(nb_mlp_forward),
    ROW(nb_mlp_forward_hidden),
    ROW(nb_mlp_set_training),
    ROW(nb_mlp_param_count),
    ROW(nb_mlp_param),
    ROW(nb_mlp_numel),
    /* dataset.h, data.h, seqdata.h */
    ROW(nb_dataset_free),
    ROW(nb_idx_load),
    ROW(nb_idx_parse),
    ROW(nb_dataset_load_mnist),
    ROW(nb_dataset_load_csv),
    ROW(nb_dataset_parse_csv),
    ROW(nb_dataset_load_csv_opts),
    ROW(nb_dataset_parse_csv_opts),
    ROW(nb_dataset_load_npy),
    ROW(nb_dataset_load_images),
    ROW(nb_image_load),
    ROW(nb_image_parse),
    ROW(nb_dataset_from_tensors),
    ROW(nb_dataset_split),
    ROW(nb_batcher_init),
    ROW(nb_batcher_next),
    ROW(nb_batcher_seek),
    ROW(nb_batcher_free),
    ROW(nb_spirals),
    ROW(nb_seq_toy),
    /* npy.h, safetensors.h, checkpoint.h */
    ROW(nb_npy_load),
    ROW(nb_npy_parse),
    ROW(nb_npy_save),
    ROW(nb_safetensors_save),
    ROW(nb_safetensors_load),
    ROW(nb_safetensors_parse),
    ROW(nb_safetensors_count),
    ROW(nb_safetensors_name),
    ROW(nb_safetensors_get),
    ROW(nb_safetensors_meta),
    ROW(nb_safetensors_meta_count),
    ROW(nb_safetensors_meta_key),
    ROW(nb_safetensors_free),
    ROW(nb_model_save),
    ROW(nb_model_save_ex),
    ROW(nb_model_load_into),
    ROW(nb_model_load),
    /* eval.h */
    ROW(nb_forward_mlp),
    ROW(nb_evaluate),
    ROW(nb_eval_metrics_from_confusion),
    ROW(nb_eval_result_free),
    ROW(nb_predict),
    /* standardisation: dataset.h, checkpoint.h */
    ROW(nb_dataset_standardize),
    ROW(nb_dataset_set_class_names),
    ROW(nb_mnist_class_names),
    ROW(nb_dataset_load_class_names),
    ROW(nb_dataset_apply_standardize),
    ROW(nb_standardize_features),
    ROW(nb_model_info_free),
    ROW(nb_dataset_split3),
    ROW(nb_evaluate_checkpoint),
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

/* Library functions that are not public (declared in src/ headers for the tests, such as the slow
 * cross-entropy reference): checked the same way, but not counted against the public headers. */
static const row internal_rows[] = {
    ROW(nb_det_log),                /* src/tensor/tensor_internal.h */
    ROW(nb_xent_reference),         /* src/loss/xent_ref.h */
    ROW(nb_lce_reference),          /* src/loss/lce_ref.h */
    ROW(nb_optim_step_reference),   /* src/optim/optim_internal.h */
    ROW(nb_optim_set_parallel_min), /* src/optim/optim_internal.h */
};
#define N_INTERNAL_ROWS ((int)(sizeof internal_rows / sizeof internal_rows[0]))

static void test_rows(void **state)
{
    (void)state;
    n_bad = 0;
    for (int i = 0; i < N_ROWS; i++)
        rows[i].run();
    for (int i = 0; i < N_INTERNAL_ROWS; i++)
        internal_rows[i].run();
    assert_int_equal(n_bad, 0);
}

/* ---- the declarations in the public headers ---- */

#define MAX_DECLS 512
static char decls[MAX_DECLS][64];
static int n_decls;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Every identifier nb_... directly followed by '(' outside comments and preprocessor lines is a
 * function declaration (the headers define no inline functions and call nothing). */
static void scan_decls(const char *path)
{
    char *t = read_text(path);
    assert_non_null(t);
    bool line_start = true;
    for (char *p = t; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
            continue;
        }
        if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                p++;
            continue;
        }
        if (line_start && *p == '#') { /* preprocessor line, with continuations */
            while (*p && !(*p == '\n' && p[-1] != '\\'))
                p++;
            continue;
        }
        if (*p == '\n') {
            line_start = true;
            p++;
            continue;
        }
        if (*p != ' ' && *p != '\t')
            line_start = false;
        bool ident_start =
            (p == t || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                         (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9')));
        if (ident_start && strncmp(p, "nb_", 3) == 0) {
            size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
            const char *q = p + n;
            while (*q == ' ')
                q++;
            if (*q == '(' && q[1] != '*' && n < sizeof decls[0]) {
                bool seen = false;
                for (int i = 0; i < n_decls; i++)
                    seen |= strncmp(decls[i], p, n) == 0 && decls[i][n] == '\0';
                if (!seen) {
                    assert_true(n_decls < MAX_DECLS);
                    memcpy(decls[n_decls], p, n);
                    decls[n_decls++][n] = '\0';
                }
            }
            p += n;
            continue;
        }
        p++;
    }
    free(t);
}

static void test_every_function_has_a_row(void **state)
{
    (void)state;
    const char *inc = NB_TEST_DATA_DIR "/../../include";
    char path[1024];
    snprintf(path, sizeof path, "%s/nabla.h", inc);
    scan_decls(path);
    snprintf(path, sizeof path, "%s/nabla", inc);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n_headers = 1;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 2 && strcmp(e->d_name + n - 2, ".h") == 0) {
            snprintf(path, sizeof path, "%s/nabla/%s", inc, e->d_name);
            scan_decls(path);
            n_headers++;
        }
    }
    closedir(d);
    assert_true(n_headers >= 15);
    int missing = 0;
    for (int i = 0; i < n_decls; i++) {
        bool found = false;
        for (int j = 0; j < N_ROWS; j++)
            found |= strcmp(rows[j].name, decls[i]) == 0;
        if (!found) {
            print_error("public function %s has no row in test_api_args.c\n", decls[i]);
            missing++;
        }
    }
    for (int j = 0; j < N_ROWS; j++) {
        bool found = false;
        for (int i = 0; i < n_decls; i++)
            found |= strcmp(rows[j].name, decls[i]) == 0;
        if (!found) {
            print_error("row %s names no declared function\n", rows[j].name);
            missing++;
        }
        for (int k = 0; k < j; k++)
            if (strcmp(rows[j].name, rows[k].name) == 0) {
                print_error("row %s appears twice\n", rows[j].name);
                missing++;
            }
    }
    for (int j = 0; j < N_INTERNAL_ROWS; j++) /* test-only functions stay out of the API */
        for (int i = 0; i < n_decls; i++)
            if (strcmp(internal_rows[j].name, decls[i]) == 0) {
                print_error("internal function %s is declared in a public header\n", decls[i]);
                missing++;
            }
    assert_int_equal(missing, 0);
    assert_int_equal(n_decls, N_ROWS);
}

/* ======================================================================================== */
/* Item 2: the error state is not sticky, and a chain keeps its first failure                */

/* The issue's case: after a failed nb_npy_load, nb_relu(g, NULL) said "i/o error: cannot open".
 * Now it names itself and its NULL input, and keeps the earlier failure as the cause. */
static void test_null_input_after_failed_load(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_npy_load("/nonexistent/nabla/in.npy");
    assert_null(x);
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    assert_null(nb_relu(g, x));
    const char *m = nb_last_error();
    assert_non_null(strstr(m, "relu: input 0 is NULL"));
    assert_true(strstr(m, "relu") == m); /* it speaks first */
    assert_non_null(strstr(m, "earlier error: "));
    assert_non_null(strstr(m, "/nonexistent/nabla/in.npy")); /* the cause is kept */
    assert_int_equal(nb_last_status(), NB_ERR_IO);           /* and its status */
    nb_graph_free(g);
}

/* A long chain: each op names itself, and the first failure stays at the end of the message
 * (not nested once per op). */
static void test_chain_keeps_first_failure(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int64_t sa[2] = {2, 3}, sb[2] = {4, 5};
    nb_tensor *a = nb_tensor_zeros(NB_F32, 2, sa), *b = nb_tensor_zeros(NB_F32, 2, sb);
    nb_tensor *y = nb_sum(g, nb_tanh(g, nb_relu(g, nb_matmul(g, a, b, false, false))));
    assert_null(y);
    const char *m = nb_last_error();
    assert_true(strstr(m, "sum: input 0 is NULL") == m);
    assert_non_null(strstr(m, "earlier error: matmul: inner dimensions differ"));
    assert_null(strstr(m, "relu")); /* intermediate links are not nested */
    assert_int_equal(nb_last_status(), NB_ERR_SHAPE);
    assert_int_equal(nb_backward(g, y, NULL), NB_ERR_SHAPE);
    assert_true(strstr(nb_last_error(), "nb_backward: root is NULL") == nb_last_error());
    assert_non_null(strstr(nb_last_error(), "earlier error: matmul: inner dimensions differ"));
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* Success leaves the message alone (like errno); nb_clear_error forgets it. */
static void test_success_leaves_message(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int64_t s[1] = {3};
    nb_tensor *a = nb_tensor_zeros(NB_F32, 1, s);
    nb_error(NB_ERR_IO, "an old failure");
    assert_non_null(nb_relu(g, a));
    assert_string_equal(nb_last_error(), "an old failure");
    assert_int_equal(nb_last_status(), NB_ERR_IO);
    nb_clear_error();
    assert_null(nb_relu(g, NULL)); /* no earlier failure: plain NB_ERR_ARG */
    assert_string_equal(nb_last_error(), "relu: input 0 is NULL");
    assert_int_equal(nb_last_status(), NB_ERR_ARG);
    nb_graph_free(g);
    nb_tensor_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_function_has_a_row),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_null_input_after_failed_load),
        cmocka_unit_test(test_chain_keeps_first_failure),
        cmocka_unit_test(test_success_leaves_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
