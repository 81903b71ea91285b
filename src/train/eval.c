/* eval.c - evaluation and prediction of a classifier (nabla/eval.h).
 *
 * One loop over batches serves both: a view of rows [r0, r0 + n) of X is handed to the caller's
 * forward under no-grad on the caller's graph (reset before each batch), and the logits it
 * returns are checked against the batch's shape before anything reads them.
 *
 *   evaluation: per-row losses from the fused cross-entropy (reduction none, summed in double in
 *     row order, so every batch size gives the same bits), the argmax from nb_argmax_rows, and
 *     the confusion matrix; precision, recall and F1 come from the confusion matrix alone
 *     (nb_eval_metrics_from_confusion), so counts a caller builds get the same figures.
 *   prediction: the logits copied, or the library's softmax (exp(z - lse z)), into one
 *     caller-owned tensor.
 *
 * The confusion matrix has one row and one column per model output K (K >= n_classes): a
 * prediction of an output >= n_classes is wrong and lands in its own column, so row sums are the
 * classes' supports and nothing is dropped. res->n_classes is that K. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/eval.h"
#include "nabla/loss.h"
#include "nabla/nn.h"
#include "nabla/ops.h"
#include "../tensor/tensor_internal.h"

/* The confusion matrix is K x K int64: 16384 classes are 2 GiB. */
#define EVAL_MAX_CLASSES 16384

nb_tensor *nb_forward_mlp(nb_graph *g, nb_tensor *x, void *mlp)
{
    if (!mlp) {
        nb_error(NB_ERR_ARG, "nb_forward_mlp: mlp is NULL");
        return NULL;
    }
    if (!g) {
        nb_error(NB_ERR_ARG, "nb_forward_mlp: g is NULL");
        return NULL;
    }
    if (nb_check_tensor("nb_forward_mlp", "x", x) != NB_OK)
        return NULL;
    nb_tensor *z;
    if (x->ndim == 3) { /* [B, T, F] -> [B T, F] -> the MLP -> [B, T, K] */
        int64_t s2[2] = {x->shape[0] * x->shape[1], x->shape[2]};
        z = nb_mlp_forward(g, mlp, nb_reshape(g, x, 2, s2));
        if (z) {
            int64_t s3[3] = {x->shape[0], x->shape[1], z->shape[1]};
            z = nb_reshape(g, z, 3, s3);
        }
    } else {
        z = nb_mlp_forward(g, mlp, x);
    }
    if (!z)
        nb_error_in("nb_forward_mlp", nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_ARG);
    return z;
}

/* ---- shared checks and the batch loop ---- */

/* The arguments nb_evaluate and nb_predict share. */
static nb_status check_common(const char *fn, const nb_graph *g, nb_forward_fn forward,
                              const nb_tensor *X, int64_t batch)
{
    if (!g)
        return nb_error(NB_ERR_ARG, "%s: g is NULL", fn);
    if (!forward)
        return nb_error(NB_ERR_ARG, "%s: forward is NULL", fn);
    nb_status s = nb_check_tensor(fn, "X", X);
    if (s != NB_OK)
        return s;
    char sh[96];
    if (X->dtype != NB_F32 && X->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE, "%s: X must be f32 or f64, got %s", fn,
                        nb_dtype_name(X->dtype));
    if (X->ndim != 2 && X->ndim != 3)
        return nb_error(NB_ERR_SHAPE, "%s: X must be [N, F] or [N, T, F], got %s", fn,
                        nb_shape_str(X, sh, sizeof sh));
    if (X->graph == g)
        return nb_error(NB_ERR_ARG,
                        "%s: X belongs to the graph g, which is reset before each batch; pass a "
                        "tensor the caller owns",
                        fn);
    if (batch < 1)
        return nb_error(NB_ERR_ARG, "%s: batch %lld must be >= 1", fn, (long long)batch);
    return NB_OK;
}

/* Resets g and runs forward on rows [r0, r0 + n) of X; *z gets logits checked to be a float
 * tensor shaped like the batch with a last dim K >= 1 ([n, K] or [n, T, K]). */
static nb_status run_batch(const char *fn, nb_graph *g, nb_forward_fn forward, void *ctx,
                           const nb_tensor *X, int64_t r0, int64_t n, nb_tensor **z)
{
    int64_t shape[3] = {n, X->shape[1], X->ndim == 3 ? X->shape[2] : 0};
    int64_t per_row = X->shape[0] ? X->numel / X->shape[0] : 0;
    nb_tensor xb;
    char *base = X->data;
    nb_status s =
        nb_tensor_view(&xb, X->dtype, X->ndim, shape,
                       base ? base + r0 * per_row * (int64_t)nb_dtype_size(X->dtype) : NULL);
    if (s != NB_OK)
        return nb_error_in(fn, s);
    nb_graph_reset(g);
    /* the caller's message is put back after a forward that succeeds (success leaves the error
     * state alone); cleared meanwhile, so a failed forward's own message is told apart */
    char saved[1024];
    nb_status saved_status = nb_last_status();
    snprintf(saved, sizeof saved, "%s", nb_last_error());
    nb_clear_error();
    *z = forward(g, &xb, ctx);
    if (*z)
        nb_error(saved_status, "%s", saved);
    if (!*z) {
        nb_status e = nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_ARG;
        return nb_error(e, "%s: the forward failed on rows [%lld, %lld): %s", fn, (long long)r0,
                        (long long)(r0 + n), nb_last_error()[0] ? nb_last_error() : "no message");
    }
    s = nb_check_tensor(fn, "the forward's logits", *z);
    if (s != NB_OK)
        return s;
    bool ok = nb_dtype_is_float((*z)->dtype) && (*z)->ndim == X->ndim && (*z)->shape[0] == n &&
              (X->ndim == 2 || (*z)->shape[1] == X->shape[1]) && (*z)->shape[X->ndim - 1] >= 1;
    if (!ok) {
        char a[96], b[96];
        return nb_error(NB_ERR_SHAPE,
                        "%s: the forward returned %s logits %s for the batch %s (rows [%lld, "
                        "%lld)); expected float logits %s",
                        fn, nb_dtype_name((*z)->dtype), nb_shape_str(*z, a, sizeof a),
                        nb_shape_str(&xb, b, sizeof b), (long long)r0, (long long)(r0 + n),
                        X->ndim == 2 ? "[n, K]" : "[n, T, K]");
    }
    return NB_OK;
}

/* ---- evaluation ---- */

/* y: i32/i64 shaped like X without its last dim, every entry ignore_index or in
 * [0, n_classes). */
static nb_status check_targets(const nb_graph *g, const nb_tensor *X, const nb_tensor *y,
                               int64_t n_classes, int64_t ignore_index)
{
    nb_status s = nb_check_tensor("nb_evaluate", "y", y);
    if (s != NB_OK)
        return s;
    char a[96], b[96];
    if (y->dtype != NB_I32 && y->dtype != NB_I64)
        return nb_error(NB_ERR_DTYPE, "nb_evaluate: targets y must be i32 or i64, got %s",
                        nb_dtype_name(y->dtype));
    if (y->ndim != X->ndim - 1 || y->shape[0] != X->shape[0] ||
        (X->ndim == 3 && y->shape[1] != X->shape[1]))
        return nb_error(NB_ERR_SHAPE,
                        "nb_evaluate: targets y %s do not match inputs X %s (y must be X's shape "
                        "without its last dim)",
                        nb_shape_str(y, a, sizeof a), nb_shape_str(X, b, sizeof b));
    if (y->graph == g)
        return nb_error(NB_ERR_ARG, "nb_evaluate: y belongs to the graph g, which is reset "
                                    "before each batch; pass a tensor the caller owns");
    if (n_classes < 1 || n_classes > EVAL_MAX_CLASSES)
        return nb_error(n_classes < 1 ? NB_ERR_ARG : NB_ERR_RANGE,
                        "nb_evaluate: n_classes %lld out of range [1, %d]", (long long)n_classes,
                        EVAL_MAX_CLASSES);
    int64_t T = X->ndim == 3 ? X->shape[1] : 1;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t t =
            y->dtype == NB_I32 ? ((const int32_t *)y->data)[i] : ((const int64_t *)y->data)[i];
        if (t == ignore_index || (t >= 0 && t < n_classes))
            continue;
        if (X->ndim == 3)
            return nb_error(NB_ERR_RANGE,
                            "nb_evaluate: target %lld at row %lld, position %lld out of range "
                            "[0, %lld) (ignore_index is %lld)",
                            (long long)t, (long long)(i / T), (long long)(i % T),
                            (long long)n_classes, (long long)ignore_index);
        return nb_error(NB_ERR_RANGE,
                        "nb_evaluate: target %lld at row %lld out of range [0, %lld) "
                        "(ignore_index is %lld)",
                        (long long)t, (long long)i, (long long)n_classes, (long long)ignore_index);
    }
    return NB_OK;
}

/* The result's arrays for K classes (the first batch's model outputs). */
static nb_status alloc_result(nb_eval_result *res, int64_t K, int64_t n_classes)
{
    if (K < n_classes)
        return nb_error(NB_ERR_SHAPE,
                        "nb_evaluate: the model has %lld outputs but the data has %lld classes "
                        "(need outputs >= n_classes)",
                        (long long)K, (long long)n_classes);
    if (K > EVAL_MAX_CLASSES)
        return nb_error(NB_ERR_RANGE,
                        "nb_evaluate: the model has %lld outputs; the confusion matrix holds at "
                        "most %d classes",
                        (long long)K, EVAL_MAX_CLASSES);
    res->n_classes = K;
    res->confusion = calloc((size_t)(K * K), sizeof *res->confusion);
    res->precision = calloc((size_t)K, sizeof *res->precision);
    res->recall = calloc((size_t)K, sizeof *res->recall);
    res->f1 = calloc((size_t)K, sizeof *res->f1);
    if (!res->confusion || !res->precision || !res->recall || !res->f1)
        return nb_error(NB_ERR_NOMEM, "nb_evaluate: cannot allocate the results for %lld classes",
                        (long long)K);
    return NB_OK;
}

/* Scores one batch's logits z against rows [r0, r0 + n) of y: loss, argmax, confusion. */
static nb_status score_batch(nb_graph *g, nb_tensor *z, const nb_tensor *y, int64_t r0, int64_t n,
                             int64_t ignore_index, int64_t *pred, nb_eval_result *res)
{
    int64_t T = y->ndim == 2 ? y->shape[1] : 1, rows = n * T, K = res->n_classes;
    int64_t shape[2] = {n, T};
    size_t es = nb_dtype_size(y->dtype);
    nb_tensor yb;
    nb_status s = nb_tensor_view(&yb, y->dtype, y->ndim, shape,
                                 y->data ? (char *)y->data + (size_t)(r0 * T) * es : NULL);
    if (s != NB_OK)
        return nb_error_in("nb_evaluate", s);
    nb_xent_opts o = nb_xent_defaults();
    o.ignore_index = ignore_index;
    o.reduction = NB_REDUCTION_NONE; /* per-row losses, summed below in row order */
    nb_tensor *L = nb_cross_entropy(g, z, &yb, &o);
    if (!L)
        return nb_error_in("nb_evaluate", nb_last_status());
    s = nb_argmax_rows(z, pred, rows);
    if (s != NB_OK)
        return nb_error_in("nb_evaluate", s);
    for (int64_t i = 0; i < rows; i++) {
        int64_t t =
            y->dtype == NB_I32 ? ((const int32_t *)yb.data)[i] : ((const int64_t *)yb.data)[i];
        if (t == ignore_index)
            continue;
        res->loss_sum +=
            L->dtype == NB_F64 ? ((const double *)L->data)[i] : (double)((const float *)L->data)[i];
        res->confusion[t * K + pred[i]]++;
    }
    return NB_OK;
}

static nb_status evaluate_batches(nb_graph *g, nb_forward_fn forward, void *ctx, const nb_tensor *X,
                                  const nb_tensor *y, int64_t n_classes, int64_t batch,
                                  int64_t ignore_index, nb_eval_result *res)
{
    int64_t N = X->shape[0], T = X->ndim == 3 ? X->shape[1] : 1;
    int64_t b = batch < N ? batch : (N > 0 ? N : 1);
    int64_t *pred = malloc(sizeof *pred * (size_t)(b * T > 0 ? b * T : 1));
    if (!pred)
        return nb_error(NB_ERR_NOMEM, "nb_evaluate: cannot allocate %lld predictions",
                        (long long)(b * T));
    nb_status s = NB_OK;
    /* at least one batch, so that N = 0 still learns the model's outputs */
    for (int64_t r0 = 0; s == NB_OK && (r0 < N || r0 == 0); r0 += b) {
        int64_t n = N - r0 < b ? N - r0 : b;
        nb_tensor *z = NULL;
        s = run_batch("nb_evaluate", g, forward, ctx, X, r0, n, &z);
        if (s != NB_OK)
            break;
        int64_t K = z->shape[z->ndim - 1];
        if (!res->confusion)
            s = alloc_result(res, K, n_classes);
        else if (K != res->n_classes)
            s = nb_error(NB_ERR_SHAPE,
                         "nb_evaluate: the forward returned %lld outputs for rows [%lld, %lld) "
                         "but %lld for the first batch",
                         (long long)K, (long long)r0, (long long)(r0 + n),
                         (long long)res->n_classes);
        if (s == NB_OK)
            s = score_batch(g, z, y, r0, n, ignore_index, pred, res);
    }
    free(pred);
    return s;
}

nb_status nb_evaluate(nb_graph *g, nb_forward_fn forward, void *ctx, const nb_tensor *X,
                      const nb_tensor *y, int64_t n_classes, int64_t batch, int64_t ignore_index,
                      nb_eval_result *res)
{
    if (!res)
        return nb_error(NB_ERR_ARG, "nb_evaluate: res is NULL");
    memset(res, 0, sizeof *res);
    nb_status s = check_common("nb_evaluate", g, forward, X, batch);
    if (s == NB_OK)
        s = check_targets(g, X, y, n_classes, ignore_index);
    if (s != NB_OK)
        return s;
    bool prev = nb_graph_set_grad_enabled(g, false);
    s = evaluate_batches(g, forward, ctx, X, y, n_classes, batch, ignore_index, res);
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, prev);
    if (s != NB_OK)
        return s;
    double loss_sum = res->loss_sum;
    s = nb_eval_metrics_from_confusion(res);
    res->loss_sum = loss_sum;
    res->loss = res->count ? loss_sum / (double)res->count : 0.0;
    return s == NB_OK ? s : nb_error_in("nb_evaluate", s);
}

/* ---- metrics from the confusion matrix ---- */

/* tp = C[c][c], support = row sum, predicted = column sum:
 *   precision = tp / predicted, recall = tp / support, F1 = 2 tp / (support + predicted)
 * (the harmonic mean of the two, without rounding them first), each 0 when its denominator is. */
static void class_metrics(nb_eval_result *res, const int64_t *support, const int64_t *predicted)
{
    int64_t K = res->n_classes, present = 0;
    double f1_sum = 0;
    for (int64_t c = 0; c < K; c++) {
        double tp = (double)res->confusion[c * K + c];
        res->precision[c] = predicted[c] ? tp / (double)predicted[c] : 0.0;
        res->recall[c] = support[c] ? tp / (double)support[c] : 0.0;
        int64_t d = support[c] + predicted[c];
        res->f1[c] = d ? 2.0 * tp / (double)d : 0.0;
        if (support[c]) {
            present++;
            f1_sum += res->f1[c];
        }
    }
    res->macro_f1 = present ? f1_sum / (double)present : 0.0;
}

/* Sums of the confusion matrix (per row, per column, total, trace) with every entry >= 0 and no
 * sum past INT64_MAX. */
static nb_status confusion_sums(nb_eval_result *res, int64_t *support, int64_t *predicted)
{
    int64_t K = res->n_classes, total = 0, trace = 0;
    for (int64_t r = 0; r < K; r++)
        for (int64_t c = 0; c < K; c++) {
            int64_t v = res->confusion[r * K + c];
            if (v < 0)
                return nb_error(NB_ERR_RANGE,
                                "nb_eval_metrics_from_confusion: confusion[%lld][%lld] is %lld; "
                                "counts must be >= 0",
                                (long long)r, (long long)c, (long long)v);
            if (v > INT64_MAX - total)
                return nb_error(NB_ERR_RANGE,
                                "nb_eval_metrics_from_confusion: the counts overflow int64 at "
                                "confusion[%lld][%lld] = %lld",
                                (long long)r, (long long)c, (long long)v);
            total += v;
            support[r] += v;
            predicted[c] += v;
            if (r == c)
                trace += v;
        }
    res->count = total;
    res->correct = trace;
    return NB_OK;
}

nb_status nb_eval_metrics_from_confusion(nb_eval_result *res)
{
    const char *fn = "nb_eval_metrics_from_confusion";
    if (!res)
        return nb_error(NB_ERR_ARG, "%s: res is NULL", fn);
    if (!res->confusion)
        return nb_error(NB_ERR_ARG, "%s: res->confusion is NULL", fn);
    if (res->n_classes < 1 || res->n_classes > EVAL_MAX_CLASSES)
        return nb_error(NB_ERR_RANGE, "%s: res->n_classes %lld out of range [1, %d]", fn,
                        (long long)res->n_classes, EVAL_MAX_CLASSES);
    size_t K = (size_t)res->n_classes;
    /* arrays left NULL are allocated here (and released by nb_eval_result_free) */
    if (!res->precision)
        res->precision = calloc(K, sizeof *res->precision);
    if (!res->recall)
        res->recall = calloc(K, sizeof *res->recall);
    if (!res->f1)
        res->f1 = calloc(K, sizeof *res->f1);
    int64_t *sums = calloc(2 * K, sizeof *sums);
    nb_status s = NB_OK;
    if (!res->precision || !res->recall || !res->f1 || !sums)
        s = nb_error(NB_ERR_NOMEM, "%s: cannot allocate the metrics of %zu classes", fn, K);
    if (s == NB_OK)
        s = confusion_sums(res, sums, sums + K);
    if (s == NB_OK) {
        class_metrics(res, sums, sums + K);
        res->accuracy = res->count ? (double)res->correct / (double)res->count : 0.0;
        res->loss = res->count ? res->loss_sum / (double)res->count : 0.0;
    }
    free(sums);
    return s;
}

void nb_eval_result_free(nb_eval_result *res)
{
    if (!res)
        return;
    free(res->confusion);
    free(res->precision);
    free(res->recall);
    free(res->f1);
    memset(res, 0, sizeof *res);
}

/* ---- prediction ---- */

/* dst = src (logits) or softmax(src), converting f32 <-> f64; both float, same numel. */
static nb_status write_batch(nb_graph *g, nb_tensor *z, nb_tensor *dst, bool probs)
{
    if (z->dtype != NB_F32 && z->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE,
                        "nb_predict: the forward returned %s logits; expected f32 "
                        "or f64",
                        nb_dtype_name(z->dtype));
    nb_tensor *src = z;
    if (probs && z->dtype == dst->dtype)
        return nb_error_in("nb_predict", nb_softmax_rows(z, dst));
    if (probs) {
        src = nb_graph_tensor(g, z->dtype, z->ndim, z->shape);
        nb_status s = src ? nb_softmax_rows(z, src) : nb_last_status();
        if (s != NB_OK)
            return nb_error_in("nb_predict", s);
    }
    for (int64_t i = 0; i < src->numel; i++) {
        double v = src->dtype == NB_F64 ? ((const double *)src->data)[i]
                                        : (double)((const float *)src->data)[i];
        if (dst->dtype == NB_F64)
            ((double *)dst->data)[i] = v;
        else
            ((float *)dst->data)[i] = (float)v;
    }
    return NB_OK;
}

static nb_status predict_batches(nb_graph *g, nb_forward_fn forward, void *ctx, const nb_tensor *X,
                                 int64_t batch, bool probs, nb_tensor **out)
{
    int64_t N = X->shape[0], T = X->ndim == 3 ? X->shape[1] : 1;
    int64_t b = batch < N ? batch : (N > 0 ? N : 1);
    nb_status s = NB_OK;
    for (int64_t r0 = 0; s == NB_OK && (r0 < N || r0 == 0); r0 += b) {
        int64_t n = N - r0 < b ? N - r0 : b;
        nb_tensor *z = NULL;
        s = run_batch("nb_predict", g, forward, ctx, X, r0, n, &z);
        if (s != NB_OK)
            break;
        int nd = z->ndim;
        int64_t K = z->shape[nd - 1];
        if (!*out) {
            int64_t shape[3] = {N, T, K};
            shape[nd - 1] = K;
            *out = nb_tensor_empty(X->dtype, nd, shape);
            if (!*out)
                return nb_error_in("nb_predict", nb_last_status());
        } else if (K != (*out)->shape[nd - 1]) {
            return nb_error(NB_ERR_SHAPE,
                            "nb_predict: the forward returned %lld outputs for rows [%lld, "
                            "%lld) but %lld for the first batch",
                            (long long)K, (long long)r0, (long long)(r0 + n),
                            (long long)(*out)->shape[nd - 1]);
        }
        nb_tensor dst;
        size_t es = nb_dtype_size(X->dtype);
        char *base = (*out)->data;
        s = nb_tensor_view(&dst, X->dtype, nd, z->shape,
                           base ? base + (size_t)(r0 * T * K) * es : NULL);
        if (s == NB_OK)
            s = write_batch(g, z, &dst, probs);
    }
    return s;
}

nb_status nb_predict(nb_graph *g, nb_forward_fn forward, void *ctx, const nb_tensor *X,
                     int64_t batch, bool probs, nb_tensor **out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "nb_predict: out is NULL");
    *out = NULL;
    nb_status s = check_common("nb_predict", g, forward, X, batch);
    if (s != NB_OK)
        return s;
    bool prev = nb_graph_set_grad_enabled(g, false);
    s = predict_batches(g, forward, ctx, X, batch, probs, out);
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, prev);
    if (s != NB_OK) {
        nb_tensor_free(*out);
        *out = NULL;
    }
    return s;
}
