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
 * element instead of two, and in f32 with a vector exp (softmax_row_f32). */
#include <math.h>

#include "nabla/loss.h"
#include "../ops/ops_internal.h"
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

enum { SM_LANES = 16 }; /* independent partial results: vector loops */

/* max_j z_j over the row [off, off + V), NaN elements skipped (-inf if all are NaN or -inf):
 * m = z_j > m ? z_j : m in 16 lanes, then across the lanes, which vectorises (one running max
 * is a chain). The same value as one running max (the sign of a zero max aside, which no
 * caller can see: z - (+-0) and exp of it are the same). */
#define ROW_MAX(NAME, T)                                                                           \
    NB_VECTOR_CLONES static double NAME(const T *p, int64_t V)                                     \
    {                                                                                              \
        T lane[SM_LANES];                                                                          \
        for (int j = 0; j < SM_LANES; j++)                                                         \
            lane[j] = -INFINITY;                                                                   \
        int64_t i = 0;                                                                             \
        for (; i + SM_LANES <= V; i += SM_LANES)                                                   \
            for (int j = 0; j < SM_LANES; j++)                                                     \
                lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];                                 \
        for (int j = 0; i < V; i++, j++)                                                           \
            lane[j] = p[i] > lane[j] ? p[i] : lane[j];                                             \
        for (int j = 1; j < SM_LANES; j++)                                                         \
            lane[0] = lane[j] > lane[0] ? lane[j] : lane[0];                                       \
        return lane[0];                                                                            \
    }
ROW_MAX(row_max_f32, float)
ROW_MAX(row_max_f64, double)

static double row_max(const nb_tensor *z, int64_t off, int64_t V)
{
    return z->dtype == NB_F64 ? row_max_f64((const double *)z->data + off, V)
                              : row_max_f32((const float *)z->data + off, V);
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
    /* out [R] in z's dtype: the double lse rounded once to f32 for f32 */
    for (int64_t r = 0; r < R; r++) {
        double v = V ? row_lse(z, r * V, V) : -INFINITY;
        if (out->dtype == NB_F64)
            ((double *)out->data)[r] = v;
        else
            ((float *)out->data)[r] = (float)v;
    }
    return NB_OK;
}

/* softmax of one row z[0..V) whose max m is finite, into out (which may be z):
 *   e_j = exp(z_j - m) in double, kept in out[j];  s = sum_j e_j;  p_j = e_j / s.
 * One exp per element where exp((z_j - m) - log s) takes a second. e_j is in [0, 1] (no
 * overflow) and p_j <= e_j, so keeping e_j in out costs one rounding of its type at most; in f64
 * the result is as exact as the shift-and-log form. Rows whose max is not finite take that form
 * (rows_apply), which gives NaN and 0 where SciPy does. */
static void softmax_row_f64(const double *z, double *out, int64_t V, double m)
{
    double s = 0.0;
    for (int64_t j = 0; j < V; j++) {
        double e = exp(z[j] - m);
        s += e;
        out[j] = e;
    }
    for (int64_t j = 0; j < V; j++)
        out[j] /= s;
}

/* f32: the same in vector loops: e_j = nb_exp_vec(z_j - m) (ops_internal.h; relative error
 * < 1e-14 before the rounding to f32) with z_j - m clamped at -120 (exp(-120) = 8e-53 is 0 in
 * f32, as every smaller one is; NaN stays NaN), s summed in 16 double lanes (the order of
 * nb_sum_lanes_f64). */
#define SOFTMAX_F32_TERM(i, j)                                                                     \
    do {                                                                                           \
        double d = (double)z[i] - m, e = nb_exp_vec(nb_select_bits(d < -120.0, -120.0, d));        \
        out[i] = (float)e;                                                                         \
        lane[j] += e;                                                                              \
    } while (0)
NB_VECTOR_CLONES static void softmax_row_f32(const float *z, float *out, int64_t V, double m)
{
    double lane[SM_LANES] = {0};
    int64_t i = 0;
    for (; i + SM_LANES <= V; i += SM_LANES)
        for (int j = 0; j < SM_LANES; j++)
            SOFTMAX_F32_TERM(i + j, j);
    for (int j = 0; i < V; i++, j++)
        SOFTMAX_F32_TERM(i, j);
    for (int w = SM_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            lane[j] += lane[j + w];
    for (int64_t j = 0; j < V; j++)
        out[j] = (float)((double)out[j] / lane[0]);
}

static nb_status rows_apply(const char *name, const nb_tensor *z, nb_tensor *out, bool soft)
{
    nb_status s = check_rows(name, z, out, false);
    if (s != NB_OK)
        return s;
    int64_t V = z->shape[z->ndim - 1], R = n_rows(z, V);
    /* z, out [R, V]: l_j = (z_j - m) - log s in double, out_j = l_j or exp(l_j) in z's dtype */
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
        if (z->dtype == NB_F64) {
            const double *p = (const double *)z->data + r * V;
            double *o = (double *)out->data + r * V;
            for (int64_t j = 0; j < V; j++) {
                double l = (p[j] - m) - logs;
                o[j] = soft ? exp(l) : l;
            }
        } else {
            const float *p = (const float *)z->data + r * V;
            float *o = (float *)out->data + r * V;
            for (int64_t j = 0; j < V; j++) {
                double l = ((double)p[j] - m) - logs;
                o[j] = (float)(soft ? exp(l) : l);
            }
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
