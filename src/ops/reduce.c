/* reduce.c - sum / mean (all, or over the last dim), reshape, 2-D transpose, gather over the
 * last dim, and the graph ops of the log-softmax family.
 *
 * Reductions accumulate in double whatever the dtype. */
#include <math.h>
#include <string.h>

#include "nabla/loss.h"
#include "ops_internal.h"

static double gget(const nb_tensor *t, int64_t i)
{
    return t->dtype == NB_F64 ? ((const double *)t->grad)[i] : ((const float *)t->grad)[i];
}

static void gadd(nb_tensor *t, void *g, int64_t i, double v)
{
    if (t->dtype == NB_F64)
        ((double *)g)[i] += v;
    else
        ((float *)g)[i] += (float)v;
}

/* rows x cols view of x over its last dim; a 0-d tensor is 1 x 1 */
static void rows_cols(const nb_tensor *x, int64_t *rows, int64_t *cols)
{
    *cols = x->ndim ? x->shape[x->ndim - 1] : 1;
    *rows = *cols ? x->numel / *cols : 0;
}

static nb_tensor *reduce(nb_graph *g, nb_opkind k, nb_tensor *x)
{
    const char *name = nb_opdefs[k].name;
    if (!nb_op_inputs_ok(g, name, &x, 1) || nb_check_float_same(name, &x, 1) != NB_OK)
        return NULL;
    bool last = (k == NB_OPK_SUM_LAST || k == NB_OPK_MEAN_LAST);
    bool mean = (k == NB_OPK_MEAN || k == NB_OPK_MEAN_LAST);
    if (last && x->ndim == 0) {
        nb_error(NB_ERR_SHAPE, "%s: needs at least 1 dimension, got a 0-d tensor", name);
        return NULL;
    }
    int64_t rows, cols;
    if (last)
        rows_cols(x, &rows, &cols);
    else
        rows = 1, cols = x->numel;
    nb_tensor *y = last ? nb_graph_new_tensor(g, x->dtype, x->ndim - 1, x->shape)
                        : nb_graph_new_tensor(g, x->dtype, 0, NULL);
    if (!y)
        return NULL;
    for (int64_t r = 0; r < y->numel; r++) {
        double acc = 0.0;
        for (int64_t c = 0; c < cols; c++)
            acc += nb_tensor_get(x, r * cols + c);
        if (mean)
            acc = cols ? acc / (double)cols : NAN; /* mean of nothing is NaN, as in PyTorch */
        nb_tensor_set(y, r, acc);
    }
    (void)rows;
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[k], y, &x, 1, &n) != NB_OK)
        return NULL;
    return y;
}

nb_status nb_reduce_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    nb_opkind k = (nb_opkind)(n->op - nb_opdefs);
    bool mean = (k == NB_OPK_MEAN || k == NB_OPK_MEAN_LAST);
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    int64_t cols = y->numel ? x->numel / y->numel : 0;
    for (int64_t r = 0; r < y->numel; r++) {
        double gy = gget(y, r);
        if (mean)
            gy /= (double)cols;
        for (int64_t c = 0; c < cols; c++)
            gadd(x, gx, r * cols + c, gy);
    }
    return NB_OK;
}

nb_tensor *nb_sum(nb_graph *g, nb_tensor *x)
{
    return reduce(g, NB_OPK_SUM, x);
}
nb_tensor *nb_mean(nb_graph *g, nb_tensor *x)
{
    return reduce(g, NB_OPK_MEAN, x);
}
nb_tensor *nb_sum_last(nb_graph *g, nb_tensor *x)
{
    return reduce(g, NB_OPK_SUM_LAST, x);
}
nb_tensor *nb_mean_last(nb_graph *g, nb_tensor *x)
{
    return reduce(g, NB_OPK_MEAN_LAST, x);
}

/* ---- reshape, transpose ---- */

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
    if (nb_graph_record(g, &nb_opdefs[NB_OPK_RESHAPE], y, &x, 1, &n) != NB_OK)
        return NULL;
    return y;
}

nb_status nb_reshape_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    for (int64_t i = 0; i < x->numel; i++)
        gadd(x, gx, i, gget(y, i));
    return NB_OK;
}

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
    size_t es = nb_dtype_size(x->dtype);
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++)
            memcpy((char *)y->data + (size_t)(c * R + r) * es,
                   (const char *)x->data + (size_t)(r * C + c) * es, es);
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[NB_OPK_TRANSPOSE], y, &x, 1, &n) != NB_OK)
        return NULL;
    return y;
}

nb_status nb_transpose_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    int64_t R = x->shape[0], C = x->shape[1];
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++)
            gadd(x, gx, r * C + c, gget(y, c * R + r));
    return NB_OK;
}

/* ---- gather over the last dim: out[r] = x[r, idx[r]] ---- */

static nb_status read_index(const nb_tensor *idx, int64_t r, int64_t *v)
{
    *v = idx->dtype == NB_I64 ? ((const int64_t *)idx->data)[r] : ((const int32_t *)idx->data)[r];
    return NB_OK;
}

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
        int64_t v;
        read_index(idx, r, &v);
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
        int64_t v;
        read_index(idx, r, &v);
        nb_tensor_set(y, r, nb_tensor_get(x, r * V + v));
    }
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[NB_OPK_GATHER_LAST], y, &x, 1, &n) != NB_OK)
        return NULL;
    if (n)
        n->aux[0] = idx;
    return y;
}

nb_status nb_gather_last_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *y = n->out;
    const nb_tensor *idx = n->aux[0];
    void *gx;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s != NB_OK || !gx)
        return s;
    int64_t V = x->shape[x->ndim - 1];
    for (int64_t r = 0; r < y->numel; r++) {
        int64_t v;
        read_index(idx, r, &v);
        gadd(x, gx, r * V + v, gget(y, r));
    }
    return NB_OK;
}

/* ---- log-softmax family as graph ops (kernels in src/loss/softmax.c) ---- */

static nb_tensor *softmax_family(nb_graph *g, nb_opkind k, nb_tensor *z)
{
    const char *name = nb_opdefs[k].name;
    if (!nb_op_inputs_ok(g, name, &z, 1) || nb_check_float_same(name, &z, 1) != NB_OK)
        return NULL;
    if (z->ndim < 1) {
        nb_error(NB_ERR_SHAPE, "%s: needs at least 1 dimension, got a 0-d tensor", name);
        return NULL;
    }
    nb_tensor *y = k == NB_OPK_LOGSUMEXP ? nb_graph_new_tensor(g, z->dtype, z->ndim - 1, z->shape)
                                         : nb_graph_new_tensor(g, z->dtype, z->ndim, z->shape);
    if (!y)
        return NULL;
    nb_status s = k == NB_OPK_LOGSUMEXP ? nb_logsumexp_rows(z, y)
                  : k == NB_OPK_SOFTMAX ? nb_softmax_rows(z, y)
                                        : nb_log_softmax_rows(z, y);
    if (s != NB_OK)
        return NULL;
    nb_node *n;
    if (nb_graph_record(g, &nb_opdefs[k], y, &z, 1, &n) != NB_OK)
        return NULL;
    return y;
}

nb_tensor *nb_logsumexp(nb_graph *g, nb_tensor *z)
{
    return softmax_family(g, NB_OPK_LOGSUMEXP, z);
}
nb_tensor *nb_log_softmax(nb_graph *g, nb_tensor *z)
{
    return softmax_family(g, NB_OPK_LOG_SOFTMAX, z);
}
nb_tensor *nb_softmax(nb_graph *g, nb_tensor *z)
{
    return softmax_family(g, NB_OPK_SOFTMAX, z);
}

/* logsumexp:   dz_j += dy p_j,                    p = exp(z - y)
 * log_softmax: dz_j += dy_j - p_j sum_k dy_k,     p = exp(y)
 * softmax:     dz_j += p_j (dy_j - sum_k dy_k p_k), p = y */
nb_status nb_softmax_family_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *z = n->in[0], *y = n->out;
    nb_opkind k = (nb_opkind)(n->op - nb_opdefs);
    void *gz;
    nb_status s = nb_grad_buffer(g, z, &gz);
    if (s != NB_OK || !gz)
        return s;
    int64_t rows, V;
    rows_cols(z, &rows, &V);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r * V;
        if (k == NB_OPK_LOGSUMEXP) {
            double lse = nb_tensor_get(y, r), dy = gget(y, r);
            if (dy == 0.0)
                continue;
            for (int64_t j = 0; j < V; j++)
                gadd(z, gz, o + j, dy * exp(nb_tensor_get(z, o + j) - lse));
        } else if (k == NB_OPK_LOG_SOFTMAX) {
            double sdy = 0.0;
            for (int64_t j = 0; j < V; j++)
                sdy += gget(y, o + j);
            for (int64_t j = 0; j < V; j++)
                gadd(z, gz, o + j, gget(y, o + j) - exp(nb_tensor_get(y, o + j)) * sdy);
        } else {
            double dot = 0.0;
            for (int64_t j = 0; j < V; j++)
                dot += gget(y, o + j) * nb_tensor_get(y, o + j);
            for (int64_t j = 0; j < V; j++)
                gadd(z, gz, o + j, nb_tensor_get(y, o + j) * (gget(y, o + j) - dot));
        }
    }
    return NB_OK;
}

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
    rows_cols(x, rows, K);
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
