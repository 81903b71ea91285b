/* xent_ref.c - the slow, obvious cross-entropy in double, to test the fused kernels against.
 *
 * Per real row: l = log_softmax(z) by the two-pass formula (max, then sum of shifted exps), the
 * smoothed target row t_c = (1-a)[c=y] + a/V, then L = -sum_c w_c t_c l_c (with the nll weight
 * being w_y for the one-hot part) and dL/dz from the chain rule written out element by element.
 * It allocates one row of V doubles. Hard targets only. */
#include <math.h>
#include <stdlib.h>

#include "xent_internal.h"
#include "xent_ref.h"
#include "../ops/ops_internal.h"

/* dL/dz of every row, element by element: d/dz_j of -sum_c q_c l_c is (sum_c q_c) p_j - q_j,
 * with q the weighted smoothed target; plus the z-loss 2 zc lse p_j. sum_c q_c is the same for
 * every j of a row, so it is taken once per row: O(V) per row. */
static void reference_grad(const nb_tensor *logits, const nb_tensor *targets, const nb_xent_opts *o,
                           double norm, nb_tensor *dlogits)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    double a = o->label_smoothing;
    double scale = o->reduction == NB_REDUCTION_MEAN ? (norm != 0.0 ? 1.0 / norm : 0.0) : 1.0;
    for (int64_t n = 0; n < N; n++) {
        bool keep = nb_xent_keep(o, targets, n);
        int64_t y = keep ? (int64_t)nb_tensor_get(targets, n) : -1;
        double lse = keep ? nb_xent_row_lse(logits, n, V) : 0.0;
        double wy = keep && o->weight ? nb_tensor_get(o->weight, y) : 1.0;
        double sumq = (1.0 - a) * wy;
        for (int64_t c = 0; c < V && keep; c++)
            sumq += a / (double)V * (o->weight ? nb_tensor_get(o->weight, c) : 1.0);
        for (int64_t j = 0; j < V; j++) {
            double gj = 0.0;
            if (keep) {
                double p = exp(nb_tensor_get(logits, n * V + j) - lse);
                double wj = o->weight ? nb_tensor_get(o->weight, j) : 1.0;
                double qj = (1.0 - a) * wy * (j == y) + a / (double)V * wj;
                gj = scale * (sumq * p - qj + 2.0 * o->z_loss * lse * p);
            }
            nb_tensor_set(dlogits, n * V + j, gj);
        }
    }
}

nb_status nb_xent_reference(const nb_tensor *logits, const nb_tensor *targets,
                            const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = nb_xent_validate(logits, targets, o);
    if (s == NB_OK)
        s = nb_check_tensor("nb_xent_reference", "loss", loss);
    if (s == NB_OK && dlogits)
        s = nb_check_tensor("nb_xent_reference", "dlogits", dlogits);
    if (s != NB_OK)
        return nb_error_in("nb_xent_reference", s);
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    if (loss->numel != (o->reduction == NB_REDUCTION_NONE ? N : 1) ||
        !nb_dtype_is_float(loss->dtype))
        return nb_error(NB_ERR_SHAPE,
                        "nb_xent_reference: loss %s %s, expected a float tensor of %lld elements",
                        nb_dtype_name(loss->dtype), nb_shp(loss),
                        (long long)(o->reduction == NB_REDUCTION_NONE ? N : 1));
    if (dlogits && (dlogits->numel != logits->numel || !nb_dtype_is_float(dlogits->dtype)))
        return nb_error(NB_ERR_SHAPE, "nb_xent_reference: dlogits %s %s, expected a float %s",
                        nb_dtype_name(dlogits->dtype), nb_shp(dlogits), nb_shp(logits));
    double *l = malloc(sizeof(double) * (size_t)V);
    double *Ls = malloc(sizeof(double) * (size_t)N);
    if (!l || !Ls) {
        free(l);
        free(Ls);
        return nb_error(NB_ERR_NOMEM, "xent_reference: out of memory");
    }
    double a = o->label_smoothing, W = 0.0, total = 0.0;
    for (int64_t n = 0; n < N; n++) {
        Ls[n] = 0.0;
        if (!nb_xent_keep(o, targets, n))
            continue;
        int64_t y = (int64_t)nb_tensor_get(targets, n);
        double wy = o->weight ? nb_tensor_get(o->weight, y) : 1.0;
        W += wy;
        /* sum = s - 1: every exp(z_j - m) but one of the max (which is exactly 1), so that
         * log s = log1p(sum) keeps the digits of a confident row's tiny loss */
        double m = -INFINITY, sum = 0.0;
        int64_t at = 0;
        for (int64_t j = 0; j < V; j++)
            if (nb_tensor_get(logits, n * V + j) > m)
                m = nb_tensor_get(logits, n * V + j), at = j;
        for (int64_t j = 0; j < V; j++)
            if (j != at)
                sum += exp(nb_tensor_get(logits, n * V + j) - m);
        double logs = log1p(sum), lse = m + logs;
        for (int64_t j = 0; j < V; j++)
            l[j] = (nb_tensor_get(logits, n * V + j) - m) - logs;
        /* a term whose weight is 0 is 0 even for l = -inf (the limit, not 0 * inf = NaN) */
        double L = wy != 0.0 ? -(1.0 - a) * wy * l[y] : 0.0;
        for (int64_t c = 0; c < V && a > 0.0; c++) {
            double wc = o->weight ? nb_tensor_get(o->weight, c) : 1.0;
            if (wc != 0.0)
                L -= a / (double)V * wc * l[c];
        }
        L += o->z_loss * lse * lse;
        Ls[n] = L;
        total += L;
    }
    double norm = o->normaliser > 0.0 ? o->normaliser : W;
    if (o->reduction == NB_REDUCTION_NONE)
        for (int64_t n = 0; n < N; n++)
            nb_tensor_set(loss, n, Ls[n]);
    else
        nb_tensor_set(
            loss, 0, o->reduction == NB_REDUCTION_SUM ? total : (norm != 0.0 ? total / norm : 0.0));
    if (dlogits)
        reference_grad(logits, targets, o, norm, dlogits);
    free(l);
    free(Ls);
    return NB_OK;
}
