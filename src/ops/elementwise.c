/* elementwise.c - unary ops (neg, scale, relu, leaky_relu, tanh, sigmoid, gelu, exp, log) and
 * binary ops with broadcasting (add, sub, mul, div).
 *
 * Each unary op is a pair: y = f(x) and dy/dx = f'(x, y). Kernels run over x in its own dtype
 * (f32 or f64) and evaluate f in double, then round once. Backward accumulates dx += dy f'. */
#include <math.h>
#include <string.h>

#include "ops_internal.h"

static _Thread_local char shp_buf[2][96];
static _Thread_local int shp_slot;

const char *nb_shp(const nb_tensor *x)
{
    shp_slot ^= 1;
    return nb_shape_str(x, shp_buf[shp_slot], sizeof shp_buf[shp_slot]);
}

nb_status nb_check_float_same(const char *opname, nb_tensor *const *in, int n)
{
    for (int i = 0; i < n; i++) {
        if (in[i]->dtype != NB_F32 && in[i]->dtype != NB_F64)
            return nb_error(NB_ERR_DTYPE,
                            "%s: input %d has dtype %s; only f32 and f64 are supported", opname, i,
                            nb_dtype_name(in[i]->dtype));
        if (in[i]->dtype != in[0]->dtype)
            return nb_error(NB_ERR_DTYPE, "%s: inputs have different dtypes (%s and %s)", opname,
                            nb_dtype_name(in[0]->dtype), nb_dtype_name(in[i]->dtype));
    }
    return NB_OK;
}

/* ---- unary ---- */

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715

static double unary_f(nb_opkind k, double x, double p)
{
    switch (k) {
    case NB_OPK_NEG: return -x;
    case NB_OPK_SCALE: return p * x;
    case NB_OPK_RELU: return x <= 0 ? 0.0 : x; /* NaN stays NaN (PyTorch) */
    case NB_OPK_LEAKY_RELU: return x > 0 ? x : p * x;
    case NB_OPK_TANH: return tanh(x);
    case NB_OPK_SIGMOID: /* stable on both sides: never exp of a large positive number */
        if (x >= 0)
            return 1.0 / (1.0 + exp(-x));
        else {
            double e = exp(x);
            return e / (1.0 + e);
        }
    case NB_OPK_GELU: return 0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_C * x * x * x)));
    case NB_OPK_EXP: return exp(x);
    case NB_OPK_LOG: return log(x);
    default: return NAN;
    }
}

/* derivative at x, with y = f(x) */
static double unary_df(nb_opkind k, double x, double y, double p)
{
    switch (k) {
    case NB_OPK_NEG: return -1.0;
    case NB_OPK_SCALE: return p;
    case NB_OPK_RELU: return x <= 0 ? 0.0 : 1.0;    /* at NaN: 1, dy passes (PyTorch) */
    case NB_OPK_LEAKY_RELU: return x > 0 ? 1.0 : p; /* at NaN: p (PyTorch) */
    case NB_OPK_TANH: return 1.0 - y * y;
    case NB_OPK_SIGMOID: return y * (1.0 - y);
    case NB_OPK_GELU: {
        double u = GELU_K * (x + GELU_C * x * x * x);
        double t = tanh(u);
        double du = GELU_K * (1.0 + 3.0 * GELU_C * x * x);
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    case NB_OPK_EXP: return y;
    case NB_OPK_LOG: return 1.0 / x;
    default: return NAN;
    }
}

/* f32 kernels of the activations an MLP uses, in f32 arithmetic (the f64 path above is the
 * reference they are tested against); the rest go through the double formulas.
 *
 * NaN in, NaN out, as in PyTorch: relu is written x <= 0 ? 0 : x (not x > 0 ? x : 0, which maps
 * NaN to 0 and would let a NaN input give finite logits); leaky_relu's x > 0 ? x : p x already
 * gives p NaN = NaN. The gradients at NaN are PyTorch's too: relu passes dy (threshold_backward
 * zeroes only where x <= 0), leaky_relu gives p dy. */
static void unary_f32(nb_opkind k, float *y, const float *x, int64_t n, float p)
{
    switch (k) {
    case NB_OPK_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] <= 0.0f ? 0.0f : x[i];
        return;
    case NB_OPK_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : p * x[i];
        return;
    case NB_OPK_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        return;
    case NB_OPK_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float e = expf(-fabsf(x[i])); /* never exp of a large positive number */
            y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        }
        return;
    case NB_OPK_GELU:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + tanhf((float)GELU_K * (v + (float)GELU_C * v * v * v)));
        }
        return;
    default:
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)unary_f(k, x[i], p);
    }
}

/* g += gy f'(x, y) in f32 */
static void unary_df_f32(nb_opkind k, float *g, const float *gy, const float *x, const float *y,
                         int64_t n, float p)
{
    switch (k) {
    case NB_OPK_RELU:
        for (int64_t i = 0; i < n; i++)
            g[i] += x[i] <= 0.0f ? 0.0f : gy[i];
        return;
    case NB_OPK_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            g[i] += x[i] > 0.0f ? gy[i] : p * gy[i];
        return;
    case NB_OPK_TANH:
        for (int64_t i = 0; i < n; i++)
            g[i] += gy[i] * (1.0f - y[i] * y[i]);
        return;
    case NB_OPK_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            g[i] += gy[i] * y[i] * (1.0f - y[i]);
        return;
    case NB_OPK_GELU:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], t = tanhf((float)GELU_K * (v + (float)GELU_C * v * v * v));
            float du = (float)GELU_K * (1.0f + 3.0f * (float)GELU_C * v * v);
            g[i] += gy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
        }
        return;
    default:
        for (int64_t i = 0; i < n; i++)
            g[i] += (float)((double)gy[i] * unary_df(k, x[i], y[i], p));
    }
}

static nb_status unary_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    nb_opkind k = (nb_opkind)(n->op - nb_opdefs);
    double p = n->p[0];
    if (x->dtype == NB_F64) {
        const double *xv = x->data, *yv = y->data, *gy = y->grad;
        double *g64 = gx;
        for (int64_t i = 0; i < x->numel; i++)
            g64[i] += gy[i] * unary_df(k, xv[i], yv[i], p);
    } else {
        unary_df_f32(k, gx, y->grad, x->data, y->data, x->numel, (float)p);
    }
    return NB_OK;
}

static nb_tensor *unary(nb_graph *g, nb_opkind k, nb_tensor *x, double p)
{
    const char *name = nb_opdefs[k].name;
    if (!nb_op_inputs_ok(g, name, &x, 1) || nb_check_float_same(name, &x, 1) != NB_OK)
        return NULL;
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (x->dtype == NB_F64) {
        const double *xv = x->data;
        double *yv = y->data;
        for (int64_t i = 0; i < x->numel; i++)
            yv[i] = unary_f(k, xv[i], p);
    } else {
        const float *xv = x->data;
        float *yv = y->data;
        unary_f32(k, yv, xv, x->numel, (float)p);
    }
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[k], y, &x, 1, &n) != NB_OK)
        return NULL;
    if (n)
        n->p[0] = p;
    return y;
}

nb_status nb_unary_backward_entry(nb_graph *g, nb_node *n)
{
    return unary_backward(g, n);
}

nb_tensor *nb_neg(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_NEG, x, 0);
}
nb_tensor *nb_scale(nb_graph *g, nb_tensor *x, double s)
{
    return unary(g, NB_OPK_SCALE, x, s);
}
nb_tensor *nb_relu(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_RELU, x, 0);
}
nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *x, double neg)
{
    return unary(g, NB_OPK_LEAKY_RELU, x, neg);
}
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_TANH, x, 0);
}
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_SIGMOID, x, 0);
}
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_GELU, x, 0);
}
nb_tensor *nb_exp(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_EXP, x, 0);
}
nb_tensor *nb_log(nb_graph *g, nb_tensor *x)
{
    return unary(g, NB_OPK_LOG, x, 0);
}

/* ---- binary with broadcasting ----
 * An operand is FULL (the output's shape), ROW (a vector as long as the output's last dim) or
 * SCALAR (one element). Element i of the output reads a[ia(i)] and b[ib(i)]. */

typedef enum { BC_FULL, BC_ROW, BC_SCALAR } bcast;

static int64_t bidx(bcast m, int64_t i, int64_t cols)
{
    return m == BC_FULL ? i : m == BC_ROW ? i % cols : 0;
}

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

static double bin_f(nb_opkind k, double a, double b)
{
    switch (k) {
    case NB_OPK_ADD: return a + b;
    case NB_OPK_SUB: return a - b;
    case NB_OPK_MUL: return a * b;
    case NB_OPK_DIV: return a / b;
    default: return NAN;
    }
}

static nb_tensor *binary(nb_graph *g, nb_opkind k, nb_tensor *a, nb_tensor *b)
{
    const char *name = nb_opdefs[k].name;
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
    int64_t cols = y->ndim ? y->shape[y->ndim - 1] : 1;
    if (a->dtype == NB_F64) {
        const double *av = a->data, *bv = b->data;
        double *yv = y->data;
        for (int64_t i = 0; i < y->numel; i++)
            yv[i] = bin_f(k, av[bidx(ma, i, cols)], bv[bidx(mb, i, cols)]);
    } else {
        const float *av = a->data, *bv = b->data;
        float *yv = y->data;
        if (k == NB_OPK_ADD && ma == BC_FULL) { /* bias add, f32: stay in f32 */
            for (int64_t i = 0; i < y->numel; i++)
                yv[i] = av[i] + bv[bidx(mb, i, cols)];
        } else {
            for (int64_t i = 0; i < y->numel; i++)
                yv[i] = (float)bin_f(k, av[bidx(ma, i, cols)], bv[bidx(mb, i, cols)]);
        }
    }
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[k], y, in, 2, &n) != NB_OK)
        return NULL;
    if (n) {
        n->ip[0] = ma;
        n->ip[1] = mb;
    }
    return y;
}

/* d(a op b)/da and /db at (a, b) */
static void bin_df(nb_opkind k, double a, double b, double *da, double *db)
{
    switch (k) {
    case NB_OPK_ADD: *da = 1, *db = 1; break;
    case NB_OPK_SUB: *da = 1, *db = -1; break;
    case NB_OPK_MUL: *da = b, *db = a; break;
    case NB_OPK_DIV: *da = 1.0 / b, *db = -a / (b * b); break;
    default: *da = *db = NAN; break;
    }
}

nb_status nb_binary_backward_entry(nb_graph *g, nb_node *n)
{
    nb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    nb_opkind k = (nb_opkind)(n->op - nb_opdefs);
    bcast ma = (bcast)n->ip[0], mb = (bcast)n->ip[1];
    void *ga, *gb;
    nb_status s = nb_grad_buffer(g, a, &ga);
    if (s == NB_OK)
        s = nb_grad_buffer(g, b, &gb);
    if (s != NB_OK)
        return s;
    int64_t cols = y->ndim ? y->shape[y->ndim - 1] : 1;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t ia = bidx(ma, i, cols), ib = bidx(mb, i, cols);
        double av = nb_tensor_get(a, ia), bv = nb_tensor_get(b, ib);
        double gy = y->dtype == NB_F64 ? ((double *)y->grad)[i] : ((float *)y->grad)[i];
        double da, db;
        bin_df(k, av, bv, &da, &db);
        if (y->dtype == NB_F64) {
            if (ga)
                ((double *)ga)[ia] += gy * da;
            if (gb)
                ((double *)gb)[ib] += gy * db;
        } else {
            if (ga)
                ((float *)ga)[ia] += (float)(gy * da);
            if (gb)
                ((float *)gb)[ib] += (float)(gy * db);
        }
    }
    return NB_OK;
}

nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, NB_OPK_ADD, a, b);
}
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, NB_OPK_SUB, a, b);
}
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, NB_OPK_MUL, a, b);
}
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return binary(g, NB_OPK_DIV, a, b);
}
