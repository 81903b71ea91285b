/* reduce.c - sum / mean (all, or over the last dim), reshape, 2-D transpose and gather over the
 * last dim; argmax and accuracy for evaluation.
 *
 * Reductions accumulate in double whatever the dtype. Every kernel is a loop over typed f32/f64
 * memory. */
#include <math.h>
#include <string.h>

#include "ops_internal.h"

/* ---- sum, mean: y[r] = sum_c x[r, c] (/ cols) over rows of the last dim, or over everything ----
 */

typedef struct reduce_kind {
    bool last, mean;
} reduce_kind;

/* sum_i x[i] and sum_i a[i] b[i] over [0..n), in double. A single running sum waits for every
 * add to finish before the next (a chain of n dependent adds); SUM_LANES independent partial
 * sums (lane j takes the i = j mod SUM_LANES, the lanes then added pairwise) have no such chain
 * and become vector adds, of the widest vectors the CPU has (NB_VECTOR_CLONES). Still double
 * accumulation (an f32 product is exact in double): only the order of the additions differs
 * from the plain loop, the reference the tests compare with (tests/test_stream_kernels.c). */
enum { SUM_LANES = 16 };

#define LANES_KERNEL(NAME, T, TERM, ...)                                                           \
    NB_VECTOR_CLONES double NAME(__VA_ARGS__, int64_t n)                                           \
    {                                                                                              \
        double lane[SUM_LANES] = {0};                                                              \
        int64_t i = 0;                                                                             \
        for (; i + SUM_LANES <= n; i += SUM_LANES)                                                 \
            for (int j = 0; j < SUM_LANES; j++) {                                                  \
                const int64_t k = i + j;                                                           \
                lane[j] += (TERM);                                                                 \
            }                                                                                      \
        for (int j = 0; i < n; i++, j++) {                                                         \
            const int64_t k = i;                                                                   \
            lane[j] += (TERM);                                                                     \
        }                                                                                          \
        for (int w = SUM_LANES / 2; w > 0; w /= 2) /* the lanes, pairwise */                       \
            for (int j = 0; j < w; j++)                                                            \
                lane[j] += lane[j + w];                                                            \
        return lane[0];                                                                            \
    }
LANES_KERNEL(nb_sum_lanes_f32, float, (double)x[k], const float *restrict x)
LANES_KERNEL(nb_sum_lanes_f64, double, x[k], const double *restrict x)
LANES_KERNEL(nb_dot_lanes_f32, float, (double)a[k] * (double)b[k], const float *restrict a,
             const float *restrict b)
LANES_KERNEL(nb_dot_lanes_f64, double, a[k] * b[k], const double *restrict a,
             const double *restrict b)

/* y[r] = sum_c x[r, c] (/ cols) for every row r of cols elements */
static void reduce_rows(const nb_tensor *x, nb_tensor *y, int64_t cols, bool mean)
{
    for (int64_t r = 0; r < y->numel; r++) {
        double acc = x->dtype == NB_F64 ? nb_sum_lanes_f64((const double *)x->data + r * cols, cols)
                                        : nb_sum_lanes_f32((const float *)x->data + r * cols, cols);
        if (mean)
            acc = cols ? acc / (double)cols : NAN; /* mean of nothing is NaN, as in PyTorch */
        if (y->dtype == NB_F64)
            ((double *)y->data)[r] = acc;
        else
            ((float *)y->data)[r] = (float)acc;
    }
}

static nb_tensor *reduce(nb_graph *g, const nb_opdef *op, nb_tensor *x)
{
    const char *name = op->info.name;
    const reduce_kind *k = op->kernel;
    if (!nb_op_inputs_ok(g, name, &x, 1) || nb_check_float_same(name, &x, 1) != NB_OK)
        return NULL;
    if (k->last && x->ndim == 0) {
        nb_error(NB_ERR_SHAPE, "%s: needs at least 1 dimension, got a 0-d tensor", name);
        return NULL;
    }
    int64_t rows, cols;
    if (k->last)
        nb_rows_cols(x, &rows, &cols);
    else
        rows = 1, cols = x->numel;
    (void)rows;
    nb_tensor *y = k->last ? nb_graph_new_tensor(g, x->dtype, x->ndim - 1, x->shape)
                           : nb_graph_new_tensor(g, x->dtype, 0, NULL);
    if (!y)
        return NULL;
    reduce_rows(x, y, cols, k->mean);
    nb_node *n;
    if (nb_graph_record(g, op, y, &x, 1, &n) != NB_OK)
        return NULL;
    return y;
}

/* dx[r, c] += dy[r] (/ cols) */
static nb_status reduce_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    const reduce_kind *k = n->op->kernel;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    int64_t cols = y->numel ? x->numel / y->numel : 0;
    for (int64_t r = 0; r < y->numel; r++) {
        if (x->dtype == NB_F64) {
            double gy = ((const double *)y->grad)[r], *gr = (double *)gx + r * cols;
            if (k->mean)
                gy /= (double)cols;
            for (int64_t c = 0; c < cols; c++)
                gr[c] += gy;
        } else {
            double gy = ((const float *)y->grad)[r];
            if (k->mean)
                gy /= (double)cols;
            const float gf = (float)gy;
            float *gr = (float *)gx + r * cols;
            for (int64_t c = 0; c < cols; c++)
                gr[c] += gf;
        }
    }
    return NB_OK;
}

static nb_tensor *reduce_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                               const double *args)
{
    (void)n_in, (void)args;
    return reduce(g, (const nb_opdef *)op, in[0]);
}

NB_UNARY_CASES(smooth, -2, 2, 0, 0, 0);
#define REDUCE_OP(NAME, FORMULA, LAST, MEAN)                                                       \
    static const reduce_kind NAME##_kind = {LAST, MEAN};                                           \
    static const nb_opdef op_##NAME = {                                                            \
        {#NAME, FORMULA, 1, reduce_apply, NB_CASES(smooth)}, reduce_backward, 0, &NAME##_kind};    \
    nb_tensor *nb_##NAME(nb_graph *g, nb_tensor *x)                                                \
    {                                                                                              \
        return reduce(g, &op_##NAME, x);                                                           \
    }

REDUCE_OP(sum, "sum_i x_i", false, false)
REDUCE_OP(mean, "sum_i x_i / n", false, true)
REDUCE_OP(sum_last, "sum_j x_ij", true, false)
REDUCE_OP(mean_last, "sum_j x_ij / V", true, true)

/* ---- reshape, transpose ---- */

/* dx += dy, element for element (reshape's backward; gx and gy hold n elements of x's dtype) */
static void add_into(nb_dtype t, void *gx, const void *gy, int64_t n)
{
    if (t == NB_F64) {
        double *restrict d = gx;
        const double *restrict s = gy;
        for (int64_t i = 0; i < n; i++)
            d[i] += s[i];
    } else {
        float *restrict d = gx;
        const float *restrict s = gy;
        for (int64_t i = 0; i < n; i++)
            d[i] += s[i];
    }
}

static const nb_opdef op_reshape;

nb_tensor *nb_reshape(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape)
{
    if (!nb_op_inputs_ok(g, "reshape", &x, 1) || nb_check_float_same("reshape", &x, 1) != NB_OK)
        return NULL;
    int64_t numel;
    if (nb_shape_numel(ndim, shape, x->dtype, &numel) != NB_OK) {
        nb_error(nb_last_status(), "reshape: %s", nb_last_error());
        return NULL;
    }
    if (numel != x->numel) {
        char buf[96] = "[";
        for (int i = 0; i < ndim; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%lld", i ? ", " : "",
                     (long long)shape[i]);
        nb_error(NB_ERR_SHAPE, "reshape: %s (%lld elements) cannot become %s] (%lld elements)",
                 nb_shp(x), (long long)x->numel, buf, (long long)numel);
        return NULL;
    }
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, ndim, shape);
    if (!y)
        return NULL;
    memcpy(y->data, x->data, (size_t)x->numel * nb_dtype_size(x->dtype));
    nb_node *n;
    if (nb_graph_record(g, &op_reshape, y, &x, 1, &n) != NB_OK)
        return NULL;
    return y;
}

static nb_status reshape_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    add_into(x->dtype, gx, y->grad, x->numel);
    return NB_OK;
}

/* the sample: [2, numel / 2] */
static nb_tensor *reshape_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                                const double *args)
{
    (void)op, (void)n_in, (void)args;
    int64_t s[2] = {2, in[0]->numel / 2};
    return nb_reshape(g, in[0], 2, s);
}
static const nb_opdef op_reshape = {
    {"reshape", "same data, new shape", 1, reshape_apply, NB_CASES(smooth)},
    reshape_backward,
    0,
    NULL};

/* out[C, R] = x[R, C]^T; with ACC, out += x^T */
#define TRANSPOSE_LOOP(T, OUT, X, R, C, ACC)                                                       \
    do {                                                                                           \
        T *restrict o_ = (OUT);                                                                    \
        const T *restrict x_ = (X);                                                                \
        for (int64_t r = 0; r < (R); r++)                                                          \
            for (int64_t c = 0; c < (C); c++) {                                                    \
                if (ACC)                                                                           \
                    o_[c * (R) + r] += x_[r * (C) + c];                                            \
                else                                                                               \
                    o_[c * (R) + r] = x_[r * (C) + c];                                             \
            }                                                                                      \
    } while (0)

static const nb_opdef op_transpose;

nb_tensor *nb_transpose(nb_graph *g, nb_tensor *x)
{
    if (!nb_op_inputs_ok(g, "transpose", &x, 1) || nb_check_float_same("transpose", &x, 1) != NB_OK)
        return NULL;
    if (x->ndim != 2) {
        nb_error(NB_ERR_SHAPE, "transpose: needs a 2-D tensor, got %s", nb_shp(x));
        return NULL;
    }
    int64_t R = x->shape[0], C = x->shape[1], shape[2] = {C, R};
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, 2, shape);
    if (!y)
        return NULL;
    if (x->dtype == NB_F64)
        TRANSPOSE_LOOP(double, y->data, x->data, R, C, 0);
    else
        TRANSPOSE_LOOP(float, y->data, x->data, R, C, 0);
    nb_node *n;
    if (nb_graph_record(g, &op_transpose, y, &x, 1, &n) != NB_OK)
        return NULL;
    return y;
}

/* dx[r, c] += dy[c, r]: dx += dy^T with dy [C, R] */
static nb_status transpose_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    int64_t R = x->shape[0], C = x->shape[1];
    if (x->dtype == NB_F64)
        TRANSPOSE_LOOP(double, gx, y->grad, C, R, 1);
    else
        TRANSPOSE_LOOP(float, gx, y->grad, C, R, 1);
    return NB_OK;
}

static nb_tensor *transpose_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                                  const double *args)
{
    (void)op, (void)n_in, (void)args;
    return nb_transpose(g, in[0]);
}
static const nb_op_case transpose_cases[] = {
    {.n_inputs = 1, .in = {NB_SAMPLE_PARAM2(-1, 1, 0, 3, 5)}},
};
static const nb_opdef op_transpose = {
    {"transpose", "x^T", 1, transpose_apply, NB_CASES(transpose_cases)},
    transpose_backward,
    0,
    NULL};

NB_OP_LIST(nb_reduce_ops, &op_sum, &op_mean, &op_sum_last, &op_mean_last, &op_reshape,
           &op_transpose);

/* ---- gather over the last dim: out[r] = x[r, idx[r]] ---- */

static int64_t index_at(const nb_tensor *idx, int64_t r)
{
    return idx->dtype == NB_I64 ? ((const int64_t *)idx->data)[r] : ((const int32_t *)idx->data)[r];
}

static const nb_opdef op_gather_last;

nb_tensor *nb_gather_last(nb_graph *g, nb_tensor *x, const nb_tensor *idx)
{
    if (!nb_op_inputs_ok(g, "gather_last", &x, 1) ||
        nb_check_float_same("gather_last", &x, 1) != NB_OK)
        return NULL;
    if (nb_check_tensor("gather_last", "idx", idx) != NB_OK)
        return NULL;
    if (idx->dtype != NB_I32 && idx->dtype != NB_I64) {
        nb_error(NB_ERR_DTYPE, "gather_last: index must be i32 or i64, got %s",
                 nb_dtype_name(idx->dtype));
        return NULL;
    }
    if (x->ndim < 1 || idx->ndim != x->ndim - 1 ||
        memcmp(idx->shape, x->shape, sizeof(int64_t) * (size_t)idx->ndim) != 0) {
        nb_error(NB_ERR_SHAPE, "gather_last: index %s must be shaped like %s without its last dim",
                 nb_shp(idx), nb_shp(x));
        return NULL;
    }
    int64_t V = x->shape[x->ndim - 1];
    for (int64_t r = 0; r < idx->numel; r++) {
        int64_t v = index_at(idx, r);
        if (v < 0 || v >= V) {
            nb_error(NB_ERR_RANGE, "gather_last: index %lld out of range [0, %lld) at row %lld",
                     (long long)v, (long long)V, (long long)r);
            return NULL;
        }
    }
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, idx->ndim, idx->shape);
    if (!y)
        return NULL;
    for (int64_t r = 0; r < idx->numel; r++) {
        int64_t at = r * V + index_at(idx, r);
        if (x->dtype == NB_F64)
            ((double *)y->data)[r] = ((const double *)x->data)[at];
        else
            ((float *)y->data)[r] = ((const float *)x->data)[at];
    }
    nb_node *n;
    if (nb_graph_record(g, &op_gather_last, y, &x, 1, &n) != NB_OK)
        return NULL;
    if (n)
        n->aux[0] = idx;
    return y;
}

static nb_status gather_last_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    const nb_tensor *idx = n->aux[0];
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    int64_t V = x->shape[x->ndim - 1];
    for (int64_t r = 0; r < y->numel; r++) {
        int64_t at = r * V + index_at(idx, r);
        if (x->dtype == NB_F64)
            ((double *)gx)[at] += ((const double *)y->grad)[r];
        else
            ((float *)gx)[at] += ((const float *)y->grad)[r];
    }
    return NB_OK;
}

static nb_tensor *gather_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                               const double *args)
{
    (void)op, (void)n_in, (void)args;
    return nb_gather_last(g, in[0], in[1]);
}
static const nb_op_case gather_cases[] = {
    {.n_inputs = 2,
     .in = {NB_SAMPLE_PARAM2(-1, 1, 0, 4, 5),
            {.kind = NB_SAMPLE_TARGETS, .ndim = 1, .shape = {4}, .hi = 5}}},
};
static const nb_opdef op_gather_last = {
    {"gather_last", "x[..., idx]", 2, gather_apply, NB_CASES(gather_cases)},
    gather_last_backward,
    0,
    NULL};

/* listed apart so the table keeps its order: gather_last after the softmax family */
NB_OP_LIST(nb_gather_ops, &op_gather_last);

/* ---- argmax and accuracy (evaluation: no graph, no gradient) ---- */

/* Element i of a float tensor, exactly: f16/bf16 widen to f32 and f32 to double without
 * rounding, so comparing the doubles compares the stored values. */
static double float_at(const nb_tensor *x, int64_t i)
{
    switch (x->dtype) {
    case NB_F32: return ((const float *)x->data)[i];
    case NB_F64: return ((const double *)x->data)[i];
    case NB_F16: return nb_f16_to_f32(((const uint16_t *)x->data)[i]);
    default: return nb_bf16_to_f32(((const uint16_t *)x->data)[i]);
    }
}

/* argmax over x[o .. o + K): first NaN if any, else the first index of the maximum */
static int64_t argmax_row(const nb_tensor *x, int64_t o, int64_t K)
{
    double best = float_at(x, o);
    if (isnan(best))
        return 0;
    int64_t bi = 0;
    for (int64_t j = 1; j < K; j++) {
        double v = float_at(x, o + j);
        if (isnan(v))
            return j;
        if (v > best)
            best = v, bi = j;
    }
    return bi;
}

/* The checks nb_argmax_rows and nb_accuracy share: x a float tensor [..., K], K >= 1. */
static nb_status check_rows(const char *name, const nb_tensor *x, int64_t *rows, int64_t *K)
{
    char sh[96];
    if (x->dtype != NB_F32 && x->dtype != NB_F64 && x->dtype != NB_F16 && x->dtype != NB_BF16)
        return nb_error(NB_ERR_DTYPE, "%s: logits must be f16, bf16, f32 or f64, got %s", name,
                        nb_dtype_name(x->dtype));
    if (x->ndim < 1)
        return nb_error(NB_ERR_SHAPE, "%s: needs logits [..., K], got a 0-d tensor", name);
    if (x->shape[x->ndim - 1] < 1)
        return nb_error(NB_ERR_SHAPE, "%s: logits %s have no classes (last dim 0)", name,
                        nb_shape_str(x, sh, sizeof sh));
    nb_rows_cols(x, rows, K);
    return NB_OK;
}

nb_status nb_argmax_rows(const nb_tensor *x, int64_t *out, int64_t n_out)
{
    nb_status s = nb_check_tensor("nb_argmax_rows", "x", x);
    if (s != NB_OK)
        return s;
    if (!out)
        return nb_error(NB_ERR_ARG, "nb_argmax_rows: out is NULL");
    int64_t rows, K;
    s = check_rows("nb_argmax_rows", x, &rows, &K);
    if (s != NB_OK)
        return s;
    if (n_out < rows) {
        char sh[96];
        return nb_error(NB_ERR_ARG,
                        "nb_argmax_rows: output has room for %lld indices; %s has %lld rows",
                        (long long)n_out, nb_shape_str(x, sh, sizeof sh), (long long)rows);
    }
    for (int64_t r = 0; r < rows; r++)
        out[r] = argmax_row(x, r * K, K);
    return NB_OK;
}

nb_status nb_accuracy(const nb_tensor *logits, const nb_tensor *targets, int64_t ignore_index,
                      int64_t *hits, int64_t *count)
{
    nb_status s = nb_check_tensor("nb_accuracy", "logits", logits);
    if (s == NB_OK)
        s = nb_check_tensor("nb_accuracy", "targets", targets);
    if (s != NB_OK)
        return s;
    if (!hits || !count)
        return nb_error(NB_ERR_ARG, "nb_accuracy: %s is NULL", !hits ? "hits" : "count");
    int64_t rows, K;
    s = check_rows("nb_accuracy", logits, &rows, &K);
    if (s != NB_OK)
        return s;
    if (targets->dtype != NB_I32 && targets->dtype != NB_I64)
        return nb_error(NB_ERR_DTYPE, "nb_accuracy: targets must be i32 or i64, got %s",
                        nb_dtype_name(targets->dtype));
    bool shaped = targets->ndim == logits->ndim - 1;
    for (int i = 0; shaped && i < targets->ndim; i++)
        shaped = targets->shape[i] == logits->shape[i];
    if (!shaped) {
        char a[96], b[96];
        return nb_error(
            NB_ERR_SHAPE,
            "nb_accuracy: targets %s must be shaped like logits %s without the last dim",
            nb_shape_str(targets, a, sizeof a), nb_shape_str(logits, b, sizeof b));
    }
    int64_t h = 0, c = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = targets->dtype == NB_I32 ? ((const int32_t *)targets->data)[r]
                                             : ((const int64_t *)targets->data)[r];
        if (t == ignore_index)
            continue;
        if (t < 0 || t >= K)
            return nb_error(NB_ERR_RANGE,
                            "nb_accuracy: target %lld out of range [0, %lld) at row %lld "
                            "(ignore_index is %lld)",
                            (long long)t, (long long)K, (long long)r, (long long)ignore_index);
        c++;
        h += argmax_row(logits, r * K, K) == t;
    }
    *hits = h;
    *count = c;
    return NB_OK;
}
