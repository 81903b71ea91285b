/* elementwise.c - unary ops (neg, scale, relu, leaky_relu, tanh, sigmoid, silu, gelu, exp, log) and
 * binary ops with broadcasting (add, sub, mul, div).
 *
 * A unary op is one block below: its formula in f64 and f32 (y = f(x), with its parameter p),
 * its derivative, its sample cases and its record. UNARY_OP turns the formulas into loops over
 * typed memory (restrict pointers, no calls per element except libm) that the compiler
 * vectorises. The f64 loops are the reference the f32 ones are tested against. Backward
 * accumulates: dx += dy f'(x, y).
 *
 * NaN in, NaN out, as in PyTorch: relu is written x <= 0 ? 0 : x (not x > 0 ? x : 0, which maps
 * NaN to 0 and would let a NaN input give finite logits); leaky_relu's x > 0 ? x : p x already
 * gives p NaN = NaN. The gradients at NaN are PyTorch's too: relu passes dy (threshold_backward
 * zeroes only where x <= 0), leaky_relu gives p dy. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops_internal.h"

/* ---- unary ---- */

typedef struct unary_kernels {
    void (*f64)(double *restrict y, const double *restrict x, int64_t n, double p);
    void (*f32)(float *restrict y, const float *restrict x, int64_t n, float p);
    void (*b64)(double *restrict g, const double *restrict gy, const double *restrict x,
                const double *restrict y, int64_t n, double p);
    void (*b32)(float *restrict g, const float *restrict gy, const float *restrict x,
                const float *restrict y, int64_t n, float p);
} unary_kernels;

static nb_status unary_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    const unary_kernels *k = n->op->kernel;
    if (x->dtype == NB_F64)
        k->b64(gx, y->grad, x->data, y->data, x->numel, n->p[0]);
    else
        k->b32(gx, y->grad, x->data, y->data, x->numel, (float)n->p[0]);
    return NB_OK;
}

static nb_tensor *unary(nb_graph *g, const nb_opdef *op, nb_tensor *x, double p)
{
    const char *name = op->info.name;
    if (!nb_op_inputs_ok(g, name, &x, 1) || nb_check_float_same(name, &x, 1) != NB_OK)
        return NULL;
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    const unary_kernels *k = op->kernel;
    if (x->dtype == NB_F64)
        k->f64(y->data, x->data, x->numel, p);
    else
        k->f32(y->data, x->data, x->numel, (float)p);
    nb_node *n;
    if (nb_graph_record(g, op, y, &x, 1, &n) != NB_OK)
        return NULL;
    if (n)
        n->p[0] = p;
    return y;
}

static nb_tensor *unary_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                              const double *args)
{
    (void)n_in;
    return unary(g, (const nb_opdef *)op, in[0], args[0]);
}

/* One unary op: v = x_i, p its parameter; Y64/Y32 the value, DF64 the derivative (fy = y_i) in
 * f64, G32 the whole f32 increment of the gradient (dy = incoming gradient). */
#define UNARY_OP(NAME, FORMULA, CASES, Y64, DF64, Y32, G32)                                        \
    static void NAME##_f64(double *restrict y, const double *restrict x, int64_t n, double p)      \
    {                                                                                              \
        (void)p;                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const double v = x[i];                                                                 \
            y[i] = (Y64);                                                                          \
        }                                                                                          \
    }                                                                                              \
    NB_VECTOR_CLONES static void NAME##_f32(float *restrict y, const float *restrict x, int64_t n, \
                                            float p)                                               \
    {                                                                                              \
        (void)p;                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const float v = x[i];                                                                  \
            y[i] = (Y32);                                                                          \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_b64(double *restrict g, const double *restrict gy,                          \
                           const double *restrict x, const double *restrict y, int64_t n,          \
                           double p)                                                               \
    {                                                                                              \
        (void)p;                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const double v = x[i], fy = y[i];                                                      \
            (void)v, (void)fy;                                                                     \
            g[i] += gy[i] * (DF64);                                                                \
        }                                                                                          \
    }                                                                                              \
    NB_VECTOR_CLONES static void NAME##_b32(float *restrict g, const float *restrict gy,           \
                                            const float *restrict x, const float *restrict y,      \
                                            int64_t n, float p)                                    \
    {                                                                                              \
        (void)p;                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const float v = x[i], fy = y[i], dy = gy[i];                                           \
            (void)v, (void)fy;                                                                     \
            g[i] += (G32);                                                                         \
        }                                                                                          \
    }                                                                                              \
    static const unary_kernels NAME##_kernels = {NAME##_f64, NAME##_f32, NAME##_b64, NAME##_b32};  \
    static const nb_opdef op_##NAME = {                                                            \
        {#NAME, FORMULA, 1, unary_apply, NB_CASES(CASES)}, unary_backward, 0, &NAME##_kernels}

NB_UNARY_CASES(smooth, -2, 2, 0, 0, 0);       /* U[-2, 2) */
NB_UNARY_CASES(kinked, -1.5, 1.5, 0.1, 0, 0); /* |x| >= 0.1: away from the kink at 0 */
NB_UNARY_CASES(positive, 0.2, 3, 0, 0, 0);    /* log's domain */
NB_UNARY_CASES(scale_cases, -2, 2, 0, -2.5, -2.5);
NB_UNARY_CASES(leaky_cases, -1.5, 1.5, 0.1, 0.01, 0.01);

/* f32 values go through the double formula and round once where there is no f32 one. */
UNARY_OP(neg, "-x", smooth, -v, -1.0, -v, (float)((double)dy * -1.0));
nb_tensor *nb_neg(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_neg, x, 0);
}

UNARY_OP(scale, "s x", scale_cases, p *v, p, (float)((double)p *v), (float)((double)dy *p));
nb_tensor *nb_scale(nb_graph *g, nb_tensor *x, double s)
{
    return unary(g, &op_scale, x, s);
}

UNARY_OP(relu, "max(x, 0)", kinked, v <= 0 ? 0.0 : v, v <= 0 ? 0.0 : 1.0, v <= 0.0f ? 0.0f : v,
         v <= 0.0f ? 0.0f : dy);
nb_tensor *nb_relu(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_relu, x, 0);
}

UNARY_OP(leaky_relu, "x > 0 ? x : 0.01 x", leaky_cases, v > 0 ? v : p * v, v > 0 ? 1.0 : p,
         v > 0.0f ? v : p * v, v > 0.0f ? dy : p * dy);
nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *x, double neg)
{
    return unary(g, &op_leaky_relu, x, neg);
}

/* tanh of an f32, computed in double with no libm call so that the f32 loop is a vector loop
 * (libm's tanhf is a scalar call, ~20 ns an element). With c = min(|x|, 9.1):
 *   c < 0.04:  c - c^3/3 + 2c^5/15 - 17c^7/315       (next term < 2e-13 relative)
 *   else:      1 - 2 / (exp(2c) + 1)                  (c >= 9.1: 1 - 2.5e-8, which is 1.0f)
 *   exp by nb_exp_vec (ops_internal.h), selects by bit masks (nb_select_bits),
 * then the sign of x (-0 stays -0); a NaN goes through every step as NaN. The double result is
 * within ~1e-13 of tanh and is rounded to f32 once: within 1 ulp of tanh, checked on a sweep
 * against the f64 kernel (tests/test_stream_kernels.c). */
static inline float tanh_vec(float v)
{
    double a = fabs((double)v), c = nb_select_bits(a > 9.1, 9.1, a); /* NaN stays NaN below */
    double big = 1.0 - 2.0 / (nb_exp_vec(2.0 * c) + 1.0);
    double c2 = c * c;
    double small = c * (1.0 + c2 * (-1.0 / 3.0 + c2 * (2.0 / 15.0 + c2 * (-17.0 / 315.0))));
    return (float)copysign(nb_select_bits(c < 0.04, small, big), (double)v);
}

UNARY_OP(tanh, "tanh x", smooth, tanh(v), 1.0 - fy * fy, tanh_vec(v), dy *(1.0f - fy * fy));
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_tanh, x, 0);
}

/* stable on both sides: never exp of a large positive number */
static inline double sigmoid64(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static inline float sigmoid32(float x)
{
    float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
UNARY_OP(sigmoid, "1 / (1 + e^-x)", smooth, sigmoid64(v), fy *(1.0 - fy), sigmoid32(v),
         dy *fy *(1.0f - fy));
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_sigmoid, x, 0);
}

/* SiLU (swish): y = x s, s = sigmoid(x); dy/dx = s (1 + x (1 - s)) */
static inline double silu_df64(double x)
{
    double s = sigmoid64(x);
    return s * (1.0 + x * (1.0 - s));
}
static inline float silu_df32(float x)
{
    float s = sigmoid32(x);
    return s * (1.0f + x * (1.0f - s));
}
UNARY_OP(silu, "x sigmoid(x)", smooth, v *sigmoid64(v), silu_df64(v), v *sigmoid32(v),
         dy *silu_df32(v));
nb_tensor *nb_silu(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_silu, x, 0);
}

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715
static inline double gelu_df64(double x)
{
    double t = tanh(GELU_K * (x + GELU_C * x * x * x));
    double du = GELU_K * (1.0 + 3.0 * GELU_C * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}
static inline float gelu_df32(float v)
{
    float t = tanhf((float)GELU_K * (v + (float)GELU_C * v * v * v));
    float du = (float)GELU_K * (1.0f + 3.0f * (float)GELU_C * v * v);
    return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
}
UNARY_OP(gelu, "0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))", smooth,
         0.5 * v * (1.0 + tanh(GELU_K * (v + GELU_C * v * v * v))), gelu_df64(v),
         0.5f * v * (1.0f + tanhf((float)GELU_K * (v + (float)GELU_C * v * v * v))),
         dy *gelu_df32(v));
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_gelu, x, 0);
}

UNARY_OP(exp, "e^x", smooth, exp(v), fy, (float)exp((double)v), (float)((double)dy *fy));
nb_tensor *nb_exp(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_exp, x, 0);
}

UNARY_OP(log, "ln x", positive, log(v), 1.0 / v, (float)log((double)v),
         (float)((double)dy *(1.0 / v)));
nb_tensor *nb_log(nb_graph *g, nb_tensor *x)
{
    return unary(g, &op_log, x, 0);
}

/* ---- binary with broadcasting ----
 * An operand is FULL (the output's shape), ROW (a vector as long as the output's last dim) or
 * SCALAR (one element). Over rows r and columns c of the output, a FULL operand is read at
 * r cols + c, a ROW at c, a SCALAR at 0; its gradient is written where it is read. */

typedef enum { BC_FULL, BC_ROW, BC_SCALAR } bcast;

static bool is_row_of(const nb_tensor *v, const nb_tensor *full)
{
    if (full->ndim == 0)
        return false;
    int64_t cols = full->shape[full->ndim - 1];
    if (v->numel != cols)
        return false;
    for (int i = 0; i + 1 < v->ndim; i++) /* [C], [1,C], [1,1,C] ... */
        if (v->shape[i] != 1)
            return false;
    return v->ndim >= 1 && v->shape[v->ndim - 1] == cols;
}

static nb_status classify(const char *name, const nb_tensor *a, const nb_tensor *b, bcast *ma,
                          bcast *mb, const nb_tensor **outshape)
{
    if (nb_shape_equal(a, b)) {
        *ma = *mb = BC_FULL;
        *outshape = a;
        return NB_OK;
    }
    if (b->numel == 1 && b->ndim <= a->ndim) {
        *ma = BC_FULL, *mb = BC_SCALAR, *outshape = a;
        return NB_OK;
    }
    if (a->numel == 1 && a->ndim <= b->ndim) {
        *ma = BC_SCALAR, *mb = BC_FULL, *outshape = b;
        return NB_OK;
    }
    if (b->ndim <= a->ndim && is_row_of(b, a)) {
        *ma = BC_FULL, *mb = BC_ROW, *outshape = a;
        return NB_OK;
    }
    if (a->ndim <= b->ndim && is_row_of(a, b)) {
        *ma = BC_ROW, *mb = BC_FULL, *outshape = b;
        return NB_OK;
    }
    return nb_error(NB_ERR_SHAPE,
                    "%s: shapes %s and %s do not broadcast (need equal shapes, a row vector of "
                    "the last dim, or a single element)",
                    name, nb_shp(a), nb_shp(b));
}

/* The broadcast walk, for element type T: BODY runs with `ar`, `br` (the row of each operand),
 * `c` and the index expressions IA(c), IB(c), once per output element. */
#define BCAST_WALK(T, A, B, MA, MB, ROWS, COLS, BODY)                                              \
    for (int64_t r = 0; r < (ROWS); r++) {                                                         \
        const T *restrict ar = (A) + ((MA) == BC_FULL ? r * (COLS) : 0);                           \
        const T *restrict br = (B) + ((MB) == BC_FULL ? r * (COLS) : 0);                           \
        const int64_t o = r * (COLS);                                                              \
        if ((MA) != BC_SCALAR && (MB) != BC_SCALAR) {                                              \
            for (int64_t c = 0; c < (COLS); c++) {                                                 \
                const int64_t ia = c, ib = c;                                                      \
                BODY;                                                                              \
            }                                                                                      \
        } else if ((MB) == BC_SCALAR) {                                                            \
            for (int64_t c = 0; c < (COLS); c++) {                                                 \
                const int64_t ia = c, ib = 0;                                                      \
                BODY;                                                                              \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t c = 0; c < (COLS); c++) {                                                 \
                const int64_t ia = 0, ib = c;                                                      \
                BODY;                                                                              \
            }                                                                                      \
        }                                                                                          \
    }

typedef struct bin_kernels {
    void (*f64)(double *restrict y, const double *a, const double *b, bcast ma, bcast mb,
                int64_t rows, int64_t cols);
    void (*f32)(float *restrict y, const float *a, const float *b, bcast ma, bcast mb, int64_t rows,
                int64_t cols);
    /* g (of operand `which`: 0 = a, 1 = b) += dy d(a op b)/d(operand) */
    void (*b64)(int which, double *restrict g, const double *dy, const double *a, const double *b,
                bcast ma, bcast mb, int64_t rows, int64_t cols);
    void (*b32)(int which, float *restrict g, const float *dy, const float *a, const float *b,
                bcast ma, bcast mb, int64_t rows, int64_t cols);
} bin_kernels;

/* One binary op over element type T: Y(x, z) its value at a = x, b = z, GA/GB the increments of
 * the gradients of a and b given d = dy. The f32 versions of + - * equal the double formula
 * rounded once (double rounding is harmless for one operation: 53 >= 2 * 24 + 2). */
#define BIN_FNS(NAME, T, SUF, Y, GA, GB)                                                           \
    NB_VECTOR_CLONES static void NAME##_f##SUF(T *restrict y, const T *a, const T *b, bcast ma,    \
                                               bcast mb, int64_t rows, int64_t cols)               \
    {                                                                                              \
        if (ma == BC_FULL && mb == BC_FULL) { /* the common case: one flat loop */                 \
            for (int64_t i = 0; i < rows * cols; i++) {                                            \
                const T x = a[i], z = b[i];                                                        \
                y[i] = (Y);                                                                        \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        BCAST_WALK(T, a, b, ma, mb, rows, cols, const T x = ar[ia]; const T z = br[ib];            \
                   y[o + c] = (Y))                                                                 \
    }                                                                                              \
    NB_VECTOR_CLONES static void NAME##_b##SUF(int which, T *restrict g, const T *dy, const T *a,  \
                                               const T *b, bcast ma, bcast mb, int64_t rows,       \
                                               int64_t cols)                                       \
    {                                                                                              \
        if (ma == BC_FULL && mb == BC_FULL) { /* the common case: one flat loop per operand */     \
            if (!which)                                                                            \
                for (int64_t i = 0; i < rows * cols; i++) {                                        \
                    const T x = a[i], z = b[i], d = dy[i];                                         \
                    (void)x, (void)z;                                                              \
                    g[i] += (GA);                                                                  \
                }                                                                                  \
            else                                                                                   \
                for (int64_t i = 0; i < rows * cols; i++) {                                        \
                    const T x = a[i], z = b[i], d = dy[i];                                         \
                    (void)x, (void)z;                                                              \
                    g[i] += (GB);                                                                  \
                }                                                                                  \
            return;                                                                                \
        }                                                                                          \
        bcast mg = which ? mb : ma;                                                                \
        BCAST_WALK(T, a, b, ma, mb, rows, cols, const T x = ar[ia]; const T z = br[ib];            \
                   const T d = dy[o + c]; (void)x; (void)z; T *gr = g + (mg == BC_FULL ? o : 0);   \
                   gr[which ? ib : ia] += which ? (GB) : (GA))                                     \
    }

#define BIN_OP(NAME, FORMULA, CASES, Y64, GA64, GB64, Y32, GA32, GB32)                             \
    BIN_FNS(NAME, double, 64, Y64, GA64, GB64)                                                     \
    BIN_FNS(NAME, float, 32, Y32, GA32, GB32)                                                      \
    static const bin_kernels NAME##_kernels = {NAME##_f64, NAME##_f32, NAME##_b64, NAME##_b32};    \
    static const nb_opdef op_##NAME = {                                                            \
        {#NAME, FORMULA, 2, binary_apply, NB_CASES(CASES)}, binary_backward, 0, &NAME##_kernels}

static nb_tensor *binary(nb_graph *g, const nb_opdef *op, nb_tensor *a, nb_tensor *b)
{
    const char *name = op->info.name;
    nb_tensor *in[2] = {a, b};
    if (!nb_op_inputs_ok(g, name, in, 2) || nb_check_float_same(name, in, 2) != NB_OK)
        return NULL;
    bcast ma = BC_FULL, mb = BC_FULL;
    const nb_tensor *os = a;
    if (classify(name, a, b, &ma, &mb, &os) != NB_OK)
        return NULL;
    nb_tensor *y = nb_graph_new_tensor(g, a->dtype, os->ndim, os->shape);
    if (!y)
        return NULL;
    int64_t rows, cols;
    nb_rows_cols(y, &rows, &cols);
    const bin_kernels *k = op->kernel;
    if (a->dtype == NB_F64)
        k->f64(y->data, a->data, b->data, ma, mb, rows, cols);
    else
        k->f32(y->data, a->data, b->data, ma, mb, rows, cols);
    nb_node *n;
    if (nb_graph_record(g, op, y, in, 2, &n) != NB_OK)
        return NULL;
    if (n) {
        n->ip[0] = ma;
        n->ip[1] = mb;
    }
    return y;
}

static nb_status binary_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    const bin_kernels *k = n->op->kernel;
    bcast ma = (bcast)n->ip[0], mb = (bcast)n->ip[1];
    void *gr[2];
    nb_status s = nb_grad_buffer(g, a, &gr[0]);
    if (s == NB_OK)
        s = nb_grad_buffer(g, b, &gr[1]);
    if (s != NB_OK)
        return s;
    int64_t rows, cols;
    nb_rows_cols(y, &rows, &cols);
    for (int which = 0; which < 2; which++) {
        if (!gr[which])
            continue;
        if (y->dtype == NB_F64)
            k->b64(which, gr[which], y->grad, a->data, b->data, ma, mb, rows, cols);
        else
            k->b32(which, gr[which], y->grad, a->data, b->data, ma, mb, rows, cols);
    }
    return NB_OK;
}

static nb_tensor *binary_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                               const double *args)
{
    (void)n_in, (void)args;
    return binary(g, (const nb_opdef *)op, in[0], in[1]);
}

/* same shape, row (bias), scalar, row on the left, 3-D with a row; AWAY keeps b (and a left
 * row) away from 0 for div */
#define BIN_CASES(NAME, L, H, AW)                                                                  \
    static const nb_op_case NAME[] = {                                                             \
        {.n_inputs = 2,                                                                            \
         .in = {NB_SAMPLE_PARAM2(L, H, 0, 3, 4), NB_SAMPLE_PARAM2(L, H, AW, 3, 4)}},               \
        {.n_inputs = 2,                                                                            \
         .in =                                                                                     \
             {NB_SAMPLE_PARAM2(L, H, 0, 3, 4),                                                     \
              {.kind = NB_SAMPLE_PARAM, .ndim = 1, .shape = {4}, .lo = L, .hi = H, .away = AW}}},  \
        {.n_inputs = 2,                                                                            \
         .in =                                                                                     \
             {NB_SAMPLE_PARAM2(L, H, 0, 3, 4),                                                     \
              {.kind = NB_SAMPLE_PARAM, .ndim = 1, .shape = {1}, .lo = L, .hi = H, .away = AW}}},  \
        {.n_inputs = 2,                                                                            \
         .in = {{.kind = NB_SAMPLE_PARAM, .ndim = 1, .shape = {4}, .lo = L, .hi = H, .away = AW},  \
                NB_SAMPLE_PARAM2(L, H, AW, 3, 4)}},                                                \
        {.n_inputs = 2,                                                                            \
         .in =                                                                                     \
             {NB_SAMPLE_PARAM3(L, H, 0, 2, 3, 4),                                                  \
              {.kind = NB_SAMPLE_PARAM, .ndim = 1, .shape = {4}, .lo = L, .hi = H, .away = AW}}},  \
    }
BIN_CASES(bin_cases, -1, 1, 0);
BIN_CASES(div_cases, -1.5, 1.5, 0.5);

BIN_OP(add, "a + b", bin_cases, x + z, d, d, x + z, d, d);
nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, &op_add, a, b);
}

BIN_OP(sub, "a - b", bin_cases, x - z, d, -d, x - z, d, -d);
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, &op_sub, a, b);
}

BIN_OP(mul, "a * b", bin_cases, x *z, d *z, d *x, x *z, d *z, d *x);
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, &op_mul, a, b);
}

/* div's f32 gradient is two operations: computed in double and rounded once, as the f64 one */
BIN_OP(div, "a / b", div_cases, x / z, d *(1.0 / z), d *(-x / (z * z)), x / z,
       (float)((double)d *(1.0 / (double)z)),
       (float)((double)d *(-(double)x / ((double)z * (double)z))));
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, &op_div, a, b);
}

NB_OP_LIST(nb_elementwise_ops, &op_add, &op_sub, &op_mul, &op_div, &op_neg, &op_scale, &op_relu,
           &op_leaky_relu, &op_tanh, &op_sigmoid, &op_gelu, &op_exp, &op_log, &op_silu);
