/* softmax.c - log-sum-exp, log-softmax and softmax over the last dim, and the textbook version
 * they replace.
 *
 * For a row z of length V:
 *   m   = max_j z_j              (the shift; 0 if m is not finite, so inf/-inf rows behave as
 *                                 scipy.special.log_softmax does)
 *   lse = m + log(sum_j exp(z_j - m))      every exp argument is <= 0: no overflow, and the
 *                                          largest term is exactly 1, so log never sees 0
 *   log_softmax_j = z_j - lse,  softmax_j = exp(z_j - lse)
 * The sum of exps is accumulated in double for both f32 and f64. Softmax of a row with a finite
 * max is computed as exp(z_j - m) / sum_k exp(z_k - m), the same number with one exp per
 * element instead of two (softmax_row). */
#include <math.h>

#include "nabla/loss.h"
#include "../tensor/tensor_check.h"

static nb_status check_rows(const char *name, const nb_tensor *z, const nb_tensor *out,
                            bool reduce_last)
{
    nb_status s = nb_check_tensor(name, "z", z);
    if (s == NB_OK)
        s = nb_check_tensor(name, "out", out);
    if (s != NB_OK)
        return s;
    if (z->dtype != NB_F32 && z->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE, "%s: input must be f32 or f64, got %s", name,
                        nb_dtype_name(z->dtype));
    if (out->dtype != z->dtype)
        return nb_error(NB_ERR_DTYPE, "%s: output dtype %s differs from input dtype %s", name,
                        nb_dtype_name(out->dtype), nb_dtype_name(z->dtype));
    if (z->ndim < 1)
        return nb_error(NB_ERR_SHAPE, "%s: input must have at least 1 dimension", name);
    int64_t V = z->shape[z->ndim - 1];
    int64_t want = reduce_last ? (V ? z->numel / V : 0) : z->numel;
    if (reduce_last && V == 0) {
        want = 1;
        for (int i = 0; i + 1 < z->ndim; i++)
            want *= z->shape[i];
    }
    if (out->numel != want)
        return nb_error(NB_ERR_SHAPE, "%s: output %s has %lld elements, expected %lld for input %s",
                        name, nb_shp(out), (long long)out->numel, (long long)want, nb_shp(z));
    return NB_OK;
}

/* max_j z_j over the row [off, off + V), NaN elements skipped (-inf if all are NaN or -inf) */
static double row_max(const nb_tensor *z, int64_t off, int64_t V)
{
    if (z->dtype == NB_F64) {
        const double *p = (const double *)z->data + off;
        double m = -INFINITY;
        for (int64_t j = 0; j < V; j++)
            m = p[j] > m ? p[j] : m;
        return m;
    }
    const float *p = (const float *)z->data + off;
    float m = -INFINITY;
    for (int64_t j = 0; j < V; j++)
        m = p[j] > m ? p[j] : m;
    return m;
}

/* Shift m and log of the shifted sum s = sum_j exp(z_j - m) of one row, in double. Callers use
 * (z_j - m) - log s, never z_j - (m + log s): the latter rounds m + log s to the precision of m
 * first, which loses everything when |m| is huge (1e300) and ~1e-11 when it is 1e6. */
static void row_shift(const nb_tensor *z, int64_t off, int64_t V, double *m_out, double *logs)
{
    double m = row_max(z, off, V);
    if (!isfinite(m))
        m = 0.0;
    double s = 0.0;
    if (z->dtype == NB_F64) {
        const double *p = (const double *)z->data + off;
        for (int64_t j = 0; j < V; j++)
            s += exp(p[j] - m);
    } else {
        const float *p = (const float *)z->data + off;
        for (int64_t j = 0; j < V; j++)
            s += exp((double)p[j] - m);
    }
    *m_out = m;
    *logs = log(s);
}

static double row_lse(const nb_tensor *z, int64_t off, int64_t V)
{
    double m, logs;
    row_shift(z, off, V, &m, &logs);
    return m + logs;
}

static int64_t n_rows(const nb_tensor *z, int64_t V)
{
    int64_t r = 1;
    for (int i = 0; i + 1 < z->ndim; i++)
        r *= z->shape[i];
    (void)V;
    return r;
}

nb_status nb_logsumexp_rows(const nb_tensor *z, nb_tensor *out)
{
    nb_status s = check_rows("nb_logsumexp_rows", z, out, true);
    if (s != NB_OK)
        return s;
    int64_t V = z->shape[z->ndim - 1], R = n_rows(z, V);
    for (int64_t r = 0; r < R; r++)
        nb_tensor_set(out, r, V ? row_lse(z, r * V, V) : -INFINITY);
    return NB_OK;
}

/* softmax of one row z[0..V) of T whose max m is finite, into out (which may be z):
 *   e_j = exp(z_j - m) in double, kept in out[j];  s = sum_j e_j;  p_j = e_j / s.
 * One exp per element where exp((z_j - m) - log s) takes a second. e_j is in [0, 1] (no
 * overflow) and p_j <= e_j, so keeping e_j in T costs one rounding of T at most; in f64 the
 * result is as exact as the shift-and-log form. Rows whose max is not finite take that form
 * (rows_apply), which gives NaN and 0 where SciPy does. */
#define SOFTMAX_ROW(NAME, T)                                                                       \
    static void NAME(const T *z, T *out, int64_t V, double m)                                      \
    {                                                                                              \
        double s = 0.0;                                                                            \
        for (int64_t j = 0; j < V; j++) {                                                          \
            double e = exp((double)z[j] - m);                                                      \
            s += e;                                                                                \
            out[j] = (T)e;                                                                         \
        }                                                                                          \
        for (int64_t j = 0; j < V; j++)                                                            \
            out[j] = (T)((double)out[j] / s);                                                      \
    }
SOFTMAX_ROW(softmax_row_f32, float)
SOFTMAX_ROW(softmax_row_f64, double)

static nb_status rows_apply(const char *name, const nb_tensor *z, nb_tensor *out, bool soft)
{
    nb_status s = check_rows(name, z, out, false);
    if (s != NB_OK)
        return s;
    int64_t V = z->shape[z->ndim - 1], R = n_rows(z, V);
    for (int64_t r = 0; r < R && V > 0; r++) {
        double m, logs;
        if (soft && isfinite(m = row_max(z, r * V, V))) {
            if (z->dtype == NB_F64)
                softmax_row_f64((const double *)z->data + r * V, (double *)out->data + r * V, V, m);
            else
                softmax_row_f32((const float *)z->data + r * V, (float *)out->data + r * V, V, m);
            continue;
        }
        row_shift(z, r * V, V, &m, &logs);
        for (int64_t j = 0; j < V; j++) {
            double l = (nb_tensor_get(z, r * V + j) - m) - logs;
            nb_tensor_set(out, r * V + j, soft ? exp(l) : l);
        }
    }
    return NB_OK;
}

nb_status nb_log_softmax_rows(const nb_tensor *z, nb_tensor *out)
{
    return rows_apply("nb_log_softmax_rows", z, out, false);
}

nb_status nb_softmax_rows(const nb_tensor *z, nb_tensor *out)
{
    return rows_apply("nb_softmax_rows", z, out, true);
}

/* The textbook formula, deliberately unshifted and in z's own precision:
 *   softmax_j = exp(z_j) / sum_k exp(z_k),  log_softmax_j = log(softmax_j).
 * exp(1000) = inf gives inf/inf = NaN; exp(-1000) = 0 gives 0/0 = NaN; a tiny probability that
 * underflows to 0 gives log(0) = -inf. */
nb_status nb_log_softmax_naive(const nb_tensor *z, nb_tensor *out)
{
    nb_status s = check_rows("nb_log_softmax_naive", z, out, false);
    if (s != NB_OK)
        return s;
    int64_t V = z->shape[z->ndim - 1], R = n_rows(z, V);
    for (int64_t r = 0; r < R; r++) {
        if (z->dtype == NB_F64) {
            const double *p = (const double *)z->data + r * V;
            double *o = (double *)out->data + r * V, sum = 0.0;
            for (int64_t j = 0; j < V; j++)
                sum += exp(p[j]);
            for (int64_t j = 0; j < V; j++)
                o[j] = log(exp(p[j]) / sum);
        } else {
            const float *p = (const float *)z->data + r * V;
            float *o = (float *)out->data + r * V, sum = 0.0f;
            for (int64_t j = 0; j < V; j++)
                sum += expf(p[j]);
            for (int64_t j = 0; j < V; j++)
                o[j] = logf(expf(p[j]) / sum);
        }
    }
    return NB_OK;
}
