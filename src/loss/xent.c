/* xent.c - the fused cross-entropy kernels (no graph).
 *
 * Notation (one row n of the logits, V classes; see nabla/loss.h for the full formulas):
 *   z     the row of logits            y   its target        keep  0 for padding, else 1
 *   a     label smoothing              w   class weights (all 1 without weights), Wc = sum_c w_c
 *   zc    z-loss coefficient           lse = log sum_j exp(z_j)
 *
 * Forward, per real row, one streaming pass (online log-sum-exp):
 *   keep a running max m and a running sum s = sum_{j seen} exp(z_j - m); when a block of the row
 *   raises the max to m', rescale s *= exp(m - m'). At the end lse = m + log s. Every exponent is
 *   <= 0, so nothing overflows, and the largest term is exactly 1, so log never sees 0.
 *   Then L = (1-a) w_y (lse - z_y) + (a/V) sum_c w_c (lse - z_c) + zc lse^2
 *   (the smoothing sum re-reads the row, which is still in cache, only when a > 0).
 *   Only (m, log s) per row is saved: O(N) numbers, no N x V probabilities. lse = m + log s is
 *   never formed where it would round: losses use (m - z_y) + log s and the backward exp((z - m)
 *   - log s), so rows near 1e38 (f32) or 1e300 (f64) keep their digits.
 *
 * Backward, per real row, one streaming pass writing dL/dz directly, p_j = exp(z_j - lse):
 *   dz_j = c [ (1-a) w_y (p_j - [j=y]) + (a/V)(p_j Wc - w_j) + 2 zc lse p_j ]
 *        = p_j c [ (1-a) w_y + (a/V) Wc + 2 zc lse ] - c (a/V) w_j - [j=y] c (1-a) w_y
 *   with c = g / W (mean), g (sum) or g_n (none). Padding rows are set to exactly 0 and their
 *   logits are never read.
 *
 * Precision: f16/bf16/f32 logits are computed in f32 (blocks of a row are widened on the stack),
 * f64 in f64; the running sum of exps is carried in double across blocks and per-row losses are
 * summed in double, so long rows and large batches do not lose digits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/loss.h"
#include "../ops/ops_internal.h"
#include "xent_internal.h"
#include "xent_simd.h"
#include "../tensor/tensor_internal.h"

#define BLK 64

nb_xent_opts nb_xent_defaults(void)
{
    nb_xent_opts o;
    memset(&o, 0, sizeof o);
    o.ignore_index = -100;
    o.reduction = NB_REDUCTION_MEAN;
    return o;
}

/* ---- reading targets, masks, weights, logits ---- */

static int64_t target_at(const nb_tensor *t, int64_t n)
{
    return t->dtype == NB_I64 ? ((const int64_t *)t->data)[n] : ((const int32_t *)t->data)[n];
}

static bool mask_at(const nb_tensor *m, int64_t n)
{
    switch (m->dtype) {
    case NB_U8:
    case NB_BOOL: return ((const uint8_t *)m->data)[n] != 0;
    case NB_F32: return ((const float *)m->data)[n] != 0.0f;
    case NB_F64: return ((const double *)m->data)[n] != 0.0;
    default: return false;
    }
}

bool nb_xent_keep(const nb_xent_opts *o, const nb_tensor *targets, int64_t n)
{
    if (o->mask && !mask_at(o->mask, n))
        return false;
    return !targets || target_at(targets, n) != o->ignore_index;
}

static double weight_at(const nb_xent_opts *o, int64_t c)
{
    if (!o->weight)
        return 1.0;
    return o->weight->dtype == NB_F64 ? ((const double *)o->weight->data)[c]
                                      : (double)((const float *)o->weight->data)[c];
}

/* Pointer to cnt logits of the row starting at flat index off, as f32 (widening f16/bf16 into
 * tmp). */
static const float *load_f32(const nb_tensor *z, int64_t off, int64_t cnt, float *tmp)
{
    if (z->dtype == NB_F32)
        return (const float *)z->data + off;
    const uint16_t *h = (const uint16_t *)z->data + off;
    const nb_xent_simd *k = nb_xent_simd_get();
    if (z->dtype == NB_F16)
        k->f16_to_f32(tmp, h, cnt);
    else
        for (int64_t i = 0; i < cnt; i++)
            tmp[i] = nb_bf16_to_f32(h[i]);
    return tmp;
}

/* ---- validation ---- */

static nb_status check_common(const nb_tensor *logits, const nb_tensor *tgt, bool soft,
                              const nb_xent_opts *o)
{
    nb_status s = nb_check_tensor("cross_entropy", "logits", logits);
    if (s == NB_OK)
        s = nb_check_tensor("cross_entropy", soft ? "probs" : "targets", tgt);
    if (s == NB_OK && o->mask)
        s = nb_check_tensor("cross_entropy", "opts->mask", o->mask);
    if (s == NB_OK && o->weight)
        s = nb_check_tensor("cross_entropy", "opts->weight", o->weight);
    if (s != NB_OK)
        return s;
    if (!nb_dtype_is_float(logits->dtype))
        return nb_error(NB_ERR_DTYPE, "cross_entropy: logits must be f16, bf16, f32 or f64, got %s",
                        nb_dtype_name(logits->dtype));
    if (logits->ndim < 1)
        return nb_error(NB_ERR_SHAPE, "cross_entropy: logits must be [N,V] or [B,T,V], got a 0-d "
                                      "tensor");
    int64_t V = logits->shape[logits->ndim - 1];
    if (V < 1)
        return nb_error(NB_ERR_SHAPE, "cross_entropy: logits %s have no classes (V = 0)",
                        nb_shp(logits));
    if (soft) {
        if (!nb_dtype_is_float(tgt->dtype))
            return nb_error(NB_ERR_DTYPE,
                            "cross_entropy: probability targets must be float, got %s",
                            nb_dtype_name(tgt->dtype));
        if (!nb_shape_equal(tgt, logits))
            return nb_error(NB_ERR_SHAPE,
                            "cross_entropy: probability targets %s must have the logits' shape %s",
                            nb_shp(tgt), nb_shp(logits));
    } else {
        if (tgt->dtype != NB_I32 && tgt->dtype != NB_I64)
            return nb_error(NB_ERR_DTYPE, "cross_entropy: targets must be i32 or i64, got %s",
                            nb_dtype_name(tgt->dtype));
        if (tgt->ndim != logits->ndim - 1 ||
            memcmp(tgt->shape, logits->shape, sizeof(int64_t) * (size_t)tgt->ndim) != 0)
            return nb_error(NB_ERR_SHAPE,
                            "cross_entropy: targets %s must be shaped like logits %s without the "
                            "last dim",
                            nb_shp(tgt), nb_shp(logits));
    }
    int64_t N = V ? logits->numel / V : 0;
    if (o->mask) {
        const nb_tensor *m = o->mask;
        if (m->dtype != NB_U8 && m->dtype != NB_BOOL && m->dtype != NB_F32 && m->dtype != NB_F64)
            return nb_error(NB_ERR_DTYPE,
                            "cross_entropy: mask must be u8, bool, f32 or f64, got %s",
                            nb_dtype_name(m->dtype));
        if (m->ndim != logits->ndim - 1 ||
            memcmp(m->shape, logits->shape, sizeof(int64_t) * (size_t)m->ndim) != 0)
            return nb_error(NB_ERR_SHAPE,
                            "cross_entropy: mask %s must be shaped like logits %s without the last "
                            "dim",
                            nb_shp(m), nb_shp(logits));
    }
    if (o->weight) {
        const nb_tensor *w = o->weight;
        if (w->dtype != NB_F32 && w->dtype != NB_F64)
            return nb_error(NB_ERR_DTYPE, "cross_entropy: class weights must be f32 or f64, got %s",
                            nb_dtype_name(w->dtype));
        if (w->ndim != 1 || w->shape[0] != V)
            return nb_error(NB_ERR_SHAPE,
                            "cross_entropy: class weights %s must be [V] = [%lld] for logits %s",
                            nb_shp(w), (long long)V, nb_shp(logits));
    }
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing < 1.0))
        return nb_error(NB_ERR_ARG, "cross_entropy: label_smoothing %g outside [0, 1)",
                        o->label_smoothing);
    if (o->reduction != NB_REDUCTION_MEAN && o->reduction != NB_REDUCTION_SUM &&
        o->reduction != NB_REDUCTION_NONE)
        return nb_error(NB_ERR_ARG, "cross_entropy: unknown reduction %d", (int)o->reduction);
    if (!(o->normaliser >= 0.0) || isinf(o->normaliser))
        return nb_error(NB_ERR_ARG,
                        "cross_entropy: normaliser %g must be finite and >= 0 (0 = "
                        "use the count of real tokens)",
                        o->normaliser);
    if (!(o->z_loss >= 0.0) || isinf(o->z_loss))
        return nb_error(NB_ERR_ARG, "cross_entropy: z_loss coefficient %g must be finite and >= 0",
                        o->z_loss);
    if (!soft) {
        for (int64_t n = 0; n < N; n++) {
            if (!nb_xent_keep(o, tgt, n))
                continue;
            int64_t y = target_at(tgt, n);
            if (y < 0 || y >= V) {
                char where[96] = "";
                if (tgt->ndim == 2)
                    snprintf(where, sizeof where, " (batch %lld, position %lld)",
                             (long long)(n / tgt->shape[1]), (long long)(n % tgt->shape[1]));
                return nb_error(NB_ERR_RANGE,
                                "cross_entropy: target %lld out of range [0, %lld) at row %lld%s "
                                "(ignore_index is %lld)",
                                (long long)y, (long long)V, (long long)n, where,
                                (long long)o->ignore_index);
            }
        }
    }
    return NB_OK;
}

nb_status nb_xent_validate(const nb_tensor *logits, const nb_tensor *targets,
                           const nb_xent_opts *opts)
{
    nb_xent_opts d = nb_xent_defaults();
    return nb_error_in("nb_xent_validate", check_common(logits, targets, false, opts ? opts : &d));
}

nb_status nb_xent_validate_soft(const nb_tensor *logits, const nb_tensor *probs,
                                const nb_xent_opts *opts)
{
    nb_xent_opts d = nb_xent_defaults();
    return check_common(logits, probs, true, opts ? opts : &d);
}

/* ---- row kernels ---- */

/* log s from the two parts of s = ones + below: `ones` elements equal to the max m (each adds
 * exp(0) = 1) and the sum of the others. log s = log1p((ones - 1) + below): a confident row
 * (below = 1e-30) keeps its loss log s ~ below to full precision, where log(1 + below) would
 * round to 0 (f64) or to a multiple of 6e-8 (f32). A +inf max makes the row NaN, as
 * exp(inf - inf) would. */
static double log_s(double m, int64_t ones, double below)
{
    if (m == INFINITY)
        return NAN;
    return log1p((double)(ones - 1) + below);
}

/* Online log-sum-exp of row [off, off+V) in f32: per chunk (in cache) its max, rescale the
 * running sum if the max grew, add the chunk's sum of exps (f32 blocks, carried in double). The
 * sum is kept as ones + below (see log_s): rescaling turns the old ones into ordinary terms. */
static void row_shift_f32(const nb_tensor *z, int64_t off, int64_t V, double *m_out, double *logs)
{
    const nb_xent_simd *k = nb_xent_simd_get();
    float tmp[z->dtype == NB_F32 ? 1 : NB_XCHUNK];
    float m = -INFINITY;
    double below = 0.0;
    int64_t ones = 0;
    for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
        int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
        const float *x = load_f32(z, off + j0, cnt, tmp);
        float bm = k->max(x, cnt);
        if (bm != bm) {
            *m_out = *logs = NAN;
            return;
        }
        if (bm == -INFINITY)
            continue; /* a chunk of -inf adds exp(-inf) = 0 */
        if (bm > m) {
            /* exp(-inf) = 0 on the first chunk */
            below = (below + (double)ones) * exp((double)m - (double)bm);
            ones = 0;
            m = bm;
        }
        /* a chunk that holds the max m: its maxima are counted, not summed (see log_s) */
        below += bm < m ? k->sumexp(x, cnt, m) : k->sumexp_below(x, cnt, m, &ones);
    }
    *m_out = (double)m;
    *logs = log_s((double)m, ones, below);
}

static void row_shift_f64(const double *x, int64_t V, double *m_out, double *logs)
{
    double m = -INFINITY, below = 0.0;
    int64_t ones = 0;
    bool nan = false;
    for (int64_t j0 = 0; j0 < V; j0 += BLK) {
        int64_t cnt = V - j0 < BLK ? V - j0 : BLK;
        double bm = -INFINITY;
        for (int64_t i = 0; i < cnt; i++) {
            bm = x[j0 + i] > bm ? x[j0 + i] : bm;
            nan |= x[j0 + i] != x[j0 + i];
        }
        if (bm == -INFINITY)
            continue;
        if (bm > m) {
            below = (below + (double)ones) * exp(m - bm);
            ones = 0;
            m = bm;
        }
        double bs = 0.0;
        for (int64_t i = 0; i < cnt; i++) {
            if (x[j0 + i] < m)
                bs += exp(x[j0 + i] - m);
            else
                ones += x[j0 + i] == m;
        }
        below += bs;
    }
    *m_out = nan ? NAN : m;
    *logs = nan ? NAN : log_s(m, ones, below);
}

void nb_xent_row_shift(const nb_tensor *z, int64_t n, int64_t V, double *m, double *logs)
{
    if (z->dtype == NB_F64)
        row_shift_f64((const double *)z->data + n * V, V, m, logs);
    else
        row_shift_f32(z, n * V, V, m, logs);
}

double nb_xent_row_lse(const nb_tensor *z, int64_t n, int64_t V)
{
    double m, logs;
    nb_xent_row_shift(z, n, V, &m, &logs);
    return m + logs;
}

/* sum_c q_c (lse - z_c) for q = w (hard targets, smoothing term) or q = w t' (soft), each
 * term computed as (m - z_c) + log s so that a huge shift m does not swallow log s. A term with
 * q_c = 0 is 0 whatever z_c is (z_c = -inf: the limit, not 0 * inf = NaN), in every dtype. */
static double row_weighted_nll(const nb_tensor *z, int64_t n, int64_t V, double m, double logs,
                               const nb_xent_opts *o, const nb_tensor *probs, double a, double Wc)
{
    double acc = 0.0;
    if (!probs && z->dtype != NB_F64 && (!o->weight || o->weight->dtype == NB_F32)) {
        /* sum_c w_c (m - z_c) in f32 chunks, + log s sum_c w_c */
        const nb_xent_simd *k = nb_xent_simd_get();
        const float *w = o->weight ? (const float *)o->weight->data : NULL;
        float ctmp[z->dtype == NB_F32 ? 1 : NB_XCHUNK];
        for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
            int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
            const float *x = load_f32(z, n * V + j0, cnt, ctmp);
            acc += k->sumdiff(x, cnt, (float)m, w ? w + j0 : NULL);
        }
        return acc + Wc * logs; /* Wc = sum_c w_c, computed once per call */
    }
    float tmp[BLK];
    for (int64_t j0 = 0; j0 < V; j0 += BLK) {
        int64_t cnt = V - j0 < BLK ? V - j0 : BLK;
        const float *xf = z->dtype == NB_F64 ? NULL : load_f32(z, n * V + j0, cnt, tmp);
        for (int64_t i = 0; i < cnt; i++) {
            int64_t c = j0 + i;
            double zc = xf ? (double)xf[i] : ((const double *)z->data)[n * V + c];
            double q = weight_at(o, c);
            if (probs)
                q *= (1.0 - a) * nb_tensor_get(probs, n * V + c) + a / (double)V;
            if (q != 0.0)
                acc += q * ((m - zc) + logs);
        }
    }
    return acc;
}

/* q (d) with the limit 0 for q = 0 whatever d is (d = +inf for a -inf logit). */
static double weighted(double q, double d)
{
    return q == 0.0 ? 0.0 : q * d;
}

/* Per-row loss L_n of a real row, lse = m + logs; Wc = sum_c w_c. */
static double row_loss(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs, int64_t n,
                       int64_t V, double m, double logs, const nb_xent_opts *o, double Wc)
{
    double a = o->label_smoothing, L;
    if (probs) {
        L = row_weighted_nll(z, n, V, m, logs, o, probs, a, Wc);
    } else {
        int64_t y = target_at(tgt, n);
        double zy = nb_tensor_get(z, n * V + y);
        L = weighted((1.0 - a) * weight_at(o, y), (m - zy) + logs);
        if (a > 0.0)
            L += a / (double)V * row_weighted_nll(z, n, V, m, logs, o, NULL, 0.0, Wc);
    }
    return L;
}

/* ---- forward ---- */

/* Rows run in parallel when the problem is big enough; each row's loss lands in its own slot and
 * the slots are added in row order afterwards, so the result does not depend on the thread
 * count. */
#define PAR_MIN_ELEMS (1 << 16)

nb_status nb_xent_forward_impl(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                               const nb_xent_opts *o, nb_tensor *loss, double *lse_out,
                               double *shift_out, double *scratch, nb_xent_stats *st_out)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    double *rowL = scratch ? scratch : malloc(sizeof(double) * 2 * (size_t)(N ? N : 1));
    if (!rowL)
        return nb_error(NB_ERR_NOMEM, "cross_entropy: out of memory for %lld row losses",
                        (long long)N);
    double *rowZ = rowL + N, Wc = 0.0;
    for (int64_t c = 0; c < V; c++)
        Wc += weight_at(o, c);
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN_ELEMS && N > 1)
    for (int64_t n = 0; n < N; n++) {
        double L = 0.0, zl = 0.0, m = 0.0, logs = 0.0;
        if (nb_xent_keep(o, probs ? NULL : tgt, n)) {
            nb_xent_row_shift(z, n, V, &m, &logs);
            double lse = m + logs;
            zl = o->z_loss * lse * lse;
            L = row_loss(z, tgt, probs, n, V, m, logs, o, Wc) + zl;
        }
        rowL[n] = L;
        rowZ[n] = zl;
        if (lse_out)
            lse_out[n] = m + logs;
        if (shift_out)
            shift_out[2 * n] = m, shift_out[2 * n + 1] = logs;
    }
    nb_xent_stats st = {0, 0, 0, 0};
    for (int64_t n = 0; n < N; n++) {
        if (o->reduction == NB_REDUCTION_NONE)
            nb_tensor_set(loss, n, rowL[n]);
        if (!nb_xent_keep(o, probs ? NULL : tgt, n))
            continue;
        st.loss_sum += rowL[n];
        st.z_loss_sum += rowZ[n];
        st.weight_sum += probs ? 1.0 : weight_at(o, target_at(tgt, n));
        st.n_tokens++;
    }
    if (!scratch)
        free(rowL);
    if (o->reduction != NB_REDUCTION_NONE) {
        double W = o->normaliser > 0.0 ? o->normaliser : st.weight_sum;
        double total = o->reduction == NB_REDUCTION_SUM ? st.loss_sum
                       : W != 0.0                       ? st.loss_sum / W
                                                        : 0.0; /* all padding: 0, not NaN */
        nb_tensor_set(loss, 0, total);
    }
    if (st_out)
        *st_out = st;
    if (o->stats)
        *o->stats = st;
    return NB_OK;
}

static nb_status check_out(const char *what, const nb_tensor *t, nb_dtype dt, int64_t numel,
                           const nb_tensor *like)
{
    nb_status s = nb_check_tensor("cross_entropy", what, t);
    if (s != NB_OK)
        return s;
    if (t->dtype != dt)
        return nb_error(NB_ERR_DTYPE, "cross_entropy: %s must be %s, got %s", what,
                        nb_dtype_name(dt), nb_dtype_name(t->dtype));
    if (t->numel != numel)
        return nb_error(NB_ERR_SHAPE, "cross_entropy: %s %s has %lld elements, expected %lld (%s)",
                        what, nb_shp(t), (long long)t->numel, (long long)numel, nb_shp(like));
    return NB_OK;
}

static nb_status forward_entry(const nb_tensor *logits, const nb_tensor *tgt, bool soft,
                               const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *lse,
                               nb_xent_stats *stats)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = check_common(logits, tgt, soft, o);
    if (s != NB_OK)
        return s;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    s = check_out("loss", loss, ct, o->reduction == NB_REDUCTION_NONE ? N : 1, logits);
    if (s == NB_OK && lse)
        s = check_out("lse", lse, NB_F64, N, logits);
    if (s != NB_OK)
        return s;
    return nb_xent_forward_impl(logits, soft ? NULL : tgt, soft ? tgt : NULL, o, loss,
                                lse ? lse->data : NULL, NULL, NULL, stats);
}

nb_status nb_xent_forward(const nb_tensor *logits, const nb_tensor *targets,
                          const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *lse,
                          nb_xent_stats *stats)
{
    return nb_error_in("nb_xent_forward",
                       forward_entry(logits, targets, false, opts, loss, lse, stats));
}

nb_status nb_xent_soft_forward(const nb_tensor *logits, const nb_tensor *probs,
                               const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *lse,
                               nb_xent_stats *stats)
{
    return nb_error_in("nb_xent_soft_forward",
                       forward_entry(logits, probs, true, opts, loss, lse, stats));
}

/* ---- backward ---- */

/* W for the mean: the caller's normaliser, or sum_n keep_n w_{y_n} (count of real rows for
 * soft targets). */
double nb_xent_normaliser(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                          const nb_xent_opts *o)
{
    if (o->normaliser > 0.0)
        return o->normaliser;
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    double W = 0.0;
    for (int64_t n = 0; n < N; n++)
        if (nb_xent_keep(o, probs ? NULL : tgt, n))
            W += probs ? 1.0 : weight_at(o, target_at(tgt, n));
    return W;
}

/* dL/dz_y of a hard target y, for upstream c folded into hit = c (1-a) w_y, rest = c ((a/V) Wc
 * + 2 zc lse) and swy = c (a/V) w_y: hit (p_y - 1) + rest p_y - swy, in double, with
 * p_y - 1 = expm1(z_y - lse). Written on its own (not as base p_y - hit from the vector loop):
 * for a confident row p_y - 1 is -1e-30 where 1 - p_y in f32 rounds to 0 or 6e-8, and in the
 * fused pass the vector loop's chunk scale may be a subnormal f32 that cannot carry the -1. */
static double target_grad(double zy, double m, double logs, double hit, double rest, double swy)
{
    double x = (zy - m) - logs;
    return hit * expm1(x) + rest * exp(x) - swy;
}

nb_status nb_xent_backward_impl(void *dz, bool accumulate, const nb_tensor *z, const nb_tensor *tgt,
                                const nb_tensor *probs, const nb_xent_opts *o, const double *lse_in,
                                const double *shift_in, const void *dloss)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    bool f64 = z->dtype == NB_F64;
    double a = o->label_smoothing;
    double Wc = 0.0;
    for (int64_t c = 0; c < V; c++)
        Wc += weight_at(o, c);
    double W = o->reduction == NB_REDUCTION_MEAN ? nb_xent_normaliser(z, tgt, probs, o) : 1.0;
    const nb_xent_simd *kern = nb_xent_simd_get();
    bool fast = !probs && (!o->weight || o->weight->dtype == NB_F32);
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN_ELEMS && N > 1)
    for (int64_t n = 0; n < N; n++) {
        bool keep = nb_xent_keep(o, probs ? NULL : tgt, n);
        double g = !dloss ? 1.0
                   : o->reduction == NB_REDUCTION_NONE
                       ? (f64 ? ((const double *)dloss)[n] : ((const float *)dloss)[n])
                       : (f64 ? ((const double *)dloss)[0] : ((const float *)dloss)[0]);
        double c = W != 0.0 ? g / W : 0.0;
        if (!keep || c == 0.0) {
            if (!accumulate) {
                if (f64)
                    memset((double *)dz + n * V, 0, sizeof(double) * (size_t)V);
                else
                    memset((float *)dz + n * V, 0, sizeof(float) * (size_t)V);
            }
            continue;
        }
        /* p_j = exp((z_j - m) - log s); given only lse, m = lse and log s = 0 */
        double m, logs;
        if (shift_in)
            m = shift_in[2 * n], logs = shift_in[2 * n + 1];
        else if (lse_in)
            m = lse_in[n], logs = 0.0;
        else
            nb_xent_row_shift(z, n, V, &m, &logs);
        double lse = m + logs;
        /* dz_j = base p_j - sw q_j - [j=y] hit, where for hard targets q = w and for soft
         * targets the whole target term is folded into q_j = w_j t'_j. */
        int64_t y = probs ? -1 : target_at(tgt, n);
        double base, sw, hit = 0.0, vy = 0.0;
        if (probs) {
            double sq = 0.0;
            for (int64_t j = 0; j < V; j++)
                sq +=
                    weight_at(o, j) * ((1.0 - a) * nb_tensor_get(probs, n * V + j) + a / (double)V);
            base = c * (sq + 2.0 * o->z_loss * lse);
            sw = c;
        } else {
            double wy = weight_at(o, y);
            base = c * ((1.0 - a) * wy + a / (double)V * Wc + 2.0 * o->z_loss * lse);
            sw = c * a / (double)V;
            hit = c * (1.0 - a) * wy;
            vy =
                target_grad(nb_tensor_get(z, n * V + y), m, logs, hit,
                            c * (a / (double)V * Wc + 2.0 * o->z_loss * lse), sw * weight_at(o, y));
        }
        if (f64) {
            const double *x = (const double *)z->data + n * V;
            double *d = (double *)dz + n * V;
            double old_y = y >= 0 && accumulate ? d[y] : 0.0;
            for (int64_t j = 0; j < V; j++) {
                double q = weight_at(o, j);
                if (probs)
                    q *= (1.0 - a) * nb_tensor_get(probs, n * V + j) + a / (double)V;
                double v = base * exp((x[j] - m) - logs) - sw * q;
                d[j] = accumulate ? d[j] + v : v;
            }
            if (y >= 0)
                d[y] = old_y + vy;
        } else {
            float *d = (float *)dz + n * V;
            /* z_j - lse = (z_j - c) - r with c = m rounded to f32 (exact when m is the row max)
             * and r = (m - c) + log s: both steps are accurate in f32 even when |lse| is large
             * (an f32 lse near 1000 alone carries an error of 3e-5). */
            const float c32 = (float)m, r32 = (float)((m - (double)c32) + logs);
            const float fb = (float)base, fsw = (float)sw;
            float old_y = y >= 0 && accumulate ? d[y] : 0.0f;
            if (fast) {
                const float *w = o->weight ? (const float *)o->weight->data : NULL;
                float ctmp[z->dtype == NB_F32 ? 1 : NB_XCHUNK];
                for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
                    int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
                    const float *x = load_f32(z, n * V + j0, cnt, ctmp);
                    kern->grad(d + j0, x, cnt, c32, r32, fb, fsw, w ? w + j0 : NULL, accumulate);
                }
                if (y >= 0)
                    d[y] = old_y + (float)vy;
                continue;
            }
            float tmp[BLK];
            for (int64_t j0 = 0; j0 < V; j0 += BLK) {
                int64_t cnt = V - j0 < BLK ? V - j0 : BLK;
                const float *x = load_f32(z, n * V + j0, cnt, tmp);
                for (int64_t i = 0; i < cnt; i++) {
                    float q = 1.0f;
                    if (o->weight || probs) {
                        double qd = weight_at(o, j0 + i);
                        if (probs)
                            qd *= (1.0 - a) * nb_tensor_get(probs, n * V + j0 + i) + a / (double)V;
                        q = (float)qd;
                    }
                    float v = fb * expf((x[i] - c32) - r32) - fsw * q;
                    d[j0 + i] = accumulate ? d[j0 + i] + v : v;
                }
            }
            if (y >= 0)
                d[y] = old_y + (float)vy;
        }
    }
    return NB_OK;
}

static nb_status backward_entry(nb_tensor *dlogits, const nb_tensor *logits, const nb_tensor *tgt,
                                bool soft, const nb_xent_opts *opts, const nb_tensor *lse,
                                const nb_tensor *dloss)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = check_common(logits, tgt, soft, o);
    if (s != NB_OK)
        return s;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    s = check_out("dlogits", dlogits, ct, logits->numel, logits);
    if (s == NB_OK && !nb_shape_equal(dlogits, logits))
        s = nb_error(NB_ERR_SHAPE, "cross_entropy: dlogits %s must have the logits' shape %s",
                     nb_shp(dlogits), nb_shp(logits));
    if (s == NB_OK && lse)
        s = check_out("lse", lse, NB_F64, N, logits);
    if (s == NB_OK && dloss)
        s = check_out("dloss", dloss, ct, o->reduction == NB_REDUCTION_NONE ? N : 1, logits);
    if (s != NB_OK)
        return s;
    return nb_xent_backward_impl(dlogits->data, false, logits, soft ? NULL : tgt, soft ? tgt : NULL,
                                 o, lse ? lse->data : NULL, NULL, dloss ? dloss->data : NULL);
}

nb_status nb_xent_backward(nb_tensor *dlogits, const nb_tensor *logits, const nb_tensor *targets,
                           const nb_xent_opts *opts, const nb_tensor *lse, const nb_tensor *dloss)
{
    return nb_error_in("nb_xent_backward",
                       backward_entry(dlogits, logits, targets, false, opts, lse, dloss));
}

nb_status nb_xent_soft_backward(nb_tensor *dlogits, const nb_tensor *logits, const nb_tensor *probs,
                                const nb_xent_opts *opts, const nb_tensor *lse,
                                const nb_tensor *dloss)
{
    return nb_error_in("nb_xent_soft_backward",
                       backward_entry(dlogits, logits, probs, true, opts, lse, dloss));
}

/* ---- forward and backward in one pass over each row ---- */

#define FB_MAX_CHUNKS 512 /* rows up to 512 x NB_XCHUNK logits take the one-exp path */

/* One real row, f32 arithmetic, hard target, f32 or no weights. The forward pass stores
 * e_j = exp(z_j - m_c) into a per-thread scratch row e (m_c = the running max when chunk c was
 * read; the scratch stays in cache from row to row); the second pass turns it into the gradient
 *   dz_j = base e_j exp(m_c - m - log s) - sw w_j
 * written with streaming stores. Each logit costs one exp, and memory sees one read of z and one
 * write of dz. The target's entry is not written by that loop: it is computed on its own in
 * double (target_grad) and stored between the two halves of its chunk. It cannot be folded into
 * e_y: the chunk's scale exp(m_c - m - log s) is a subnormal or zero f32 when m_c is 89 or more
 * below m, and e_y - hit / scale then overflows to -inf. Returns L_n; *zl gets its z-loss part. */
static double fused_row_f32(const nb_tensor *z, const nb_tensor *tgt, const nb_xent_opts *o,
                            int64_t n, int64_t V, double c, double Wc, float *d, float *e,
                            double *zl)
{
    const nb_xent_simd *k = nb_xent_simd_get();
    const float *w = o->weight ? (const float *)o->weight->data : NULL;
    float tmp[z->dtype == NB_F32 ? 1 : NB_XCHUNK];
    float cm[FB_MAX_CHUNKS];
    float m = -INFINITY;
    double below = 0.0; /* s = ones + below, as in row_shift_f32 */
    int64_t ones = 0;
    int nc = 0;
    bool nan = false;
    for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK, nc++) {
        int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
        const float *x = load_f32(z, n * V + j0, cnt, tmp);
        float bm = k->max(x, cnt);
        if (bm != bm) {
            nan = true;
            break;
        }
        if (bm == -INFINITY) { /* a chunk of -inf: e = 0 there */
            memset(e + j0, 0, sizeof(float) * (size_t)cnt);
            cm[nc] = -INFINITY;
            continue;
        }
        if (bm > m) {
            below = (below + (double)ones) * exp((double)m - (double)bm);
            ones = 0;
            m = bm;
        }
        cm[nc] = m;
        below +=
            bm < m ? k->expstore(x, cnt, m, e + j0) : k->expstore_below(x, cnt, m, e + j0, &ones);
    }
    if (nan) {
        for (int64_t j = 0; j < V; j++)
            d[j] = NAN;
        *zl = NAN;
        return NAN;
    }
    double a = o->label_smoothing, logs = log_s((double)m, ones, below), lse = (double)m + logs;
    int64_t y = target_at(tgt, n);
    double wy = weight_at(o, y), zy = nb_tensor_get(z, n * V + y);
    double L = weighted((1.0 - a) * wy, ((double)m - zy) + logs);
    if (a > 0.0) {
        double acc = 0.0;
        for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
            int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
            const float *x = load_f32(z, n * V + j0, cnt, tmp);
            acc += k->sumdiff(x, cnt, m, w ? w + j0 : NULL);
        }
        L += a / (double)V * (acc + Wc * logs);
    }
    *zl = o->z_loss * lse * lse;
    L += *zl;
    double hit = c * (1.0 - a) * wy, rest = c * (a / (double)V * Wc + 2.0 * o->z_loss * lse);
    double base = hit + rest, swd = c * a / (double)V;
    float sw = (float)swd;
    float vy = (float)target_grad(zy, (double)m, logs, hit, rest, swd * (w ? (double)w[y] : 1.0));
    nc = 0;
    for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK, nc++) {
        int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
        float sc = (float)(base * exp(((double)cm[nc] - (double)m) - logs));
        if (y >= j0 && y < j0 + cnt) { /* [j0, y), the target, (y, j0 + cnt) */
            int64_t h = y - j0;
            k->gradstore(d + j0, e + j0, h, sc, sw, w ? w + j0 : NULL);
            d[y] = vy;
            k->gradstore(d + y + 1, e + y + 1, cnt - h - 1, sc, sw, w ? w + y + 1 : NULL);
        } else {
            k->gradstore(d + j0, e + j0, cnt, sc, sw, w ? w + j0 : NULL);
        }
    }
    return L;
}

nb_status nb_xent_forward_backward(const nb_tensor *logits, const nb_tensor *targets,
                                   const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits,
                                   nb_xent_stats *stats)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = check_common(logits, targets, false, o);
    if (s != NB_OK)
        return nb_error_in("nb_xent_forward_backward", s);
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    s = check_out("loss", loss, ct, o->reduction == NB_REDUCTION_NONE ? N : 1, logits);
    if (s == NB_OK)
        s = check_out("dlogits", dlogits, ct, logits->numel, logits);
    if (s == NB_OK && !nb_shape_equal(dlogits, logits))
        s = nb_error(NB_ERR_SHAPE, "cross_entropy: dlogits %s must have the logits' shape %s",
                     nb_shp(dlogits), nb_shp(logits));
    if (s != NB_OK)
        return nb_error_in("nb_xent_forward_backward", s);
    bool fast = ct == NB_F32 && (!o->weight || o->weight->dtype == NB_F32) &&
                V <= (int64_t)FB_MAX_CHUNKS * NB_XCHUNK;
    if (!fast) { /* forward, then backward with the saved shifts */
        double *shift = malloc(sizeof(double) * 2 * (size_t)(N ? N : 1));
        if (!shift)
            return nb_error(NB_ERR_NOMEM, "cross_entropy: out of memory for %lld row shifts",
                            (long long)N);
        s = nb_xent_forward_impl(logits, targets, NULL, o, loss, NULL, shift, NULL, stats);
        if (s == NB_OK)
            s = nb_xent_backward_impl(dlogits->data, false, logits, targets, NULL, o, NULL, shift,
                                      NULL);
        free(shift);
        return s;
    }
    /* The mean's normaliser depends on the targets only, so it is known before any row is
     * read, and each row's gradient is finished while the row is in cache. */
    double W =
        o->reduction == NB_REDUCTION_MEAN ? nb_xent_normaliser(logits, targets, NULL, o) : 1.0;
    double c = W != 0.0 ? 1.0 / W : 0.0, Wc = 0.0;
    for (int64_t j = 0; j < V; j++)
        Wc += weight_at(o, j);
    double *rowL = malloc(sizeof(double) * 2 * (size_t)(N ? N : 1));
    if (!rowL)
        return nb_error(NB_ERR_NOMEM, "cross_entropy: out of memory for %lld row losses",
                        (long long)N);
    double *rowZ = rowL + N;
    float *dz = dlogits->data;
    bool oom = false;
#pragma omp parallel if (N * V >= PAR_MIN_ELEMS && N > 1)
    {
        float *e = nb_aligned_alloc(sizeof(float) * (size_t)V); /* this thread's scratch row */
        if (!e) {
#pragma omp atomic write
            oom = true;
        }
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            rowL[n] = rowZ[n] = 0.0;
            bool keep = nb_xent_keep(o, targets, n);
            if (!keep || !e)
                memset(dz + n * V, 0, sizeof(float) * (size_t)V);
            else
                rowL[n] = fused_row_f32(logits, targets, o, n, V, c, Wc, dz + n * V, e, &rowZ[n]);
        }
        free(e);
    }
    if (oom) {
        free(rowL);
        return nb_error(NB_ERR_NOMEM, "cross_entropy: out of memory for a %lld-float scratch row",
                        (long long)V);
    }
    nb_xent_stats st = {0, 0, 0, 0};
    for (int64_t n = 0; n < N; n++) {
        if (o->reduction == NB_REDUCTION_NONE)
            nb_tensor_set(loss, n, rowL[n]);
        if (!nb_xent_keep(o, targets, n))
            continue;
        st.loss_sum += rowL[n];
        st.z_loss_sum += rowZ[n];
        st.weight_sum += weight_at(o, target_at(targets, n));
        st.n_tokens++;
    }
    free(rowL);
    if (o->reduction != NB_REDUCTION_NONE) {
        double Wn = o->normaliser > 0.0 ? o->normaliser : st.weight_sum;
        double total = o->reduction == NB_REDUCTION_SUM ? st.loss_sum
                       : Wn != 0.0                      ? st.loss_sum / Wn
                                                        : 0.0;
        nb_tensor_set(loss, 0, total);
    }
    if (stats)
        *stats = st;
    if (o->stats)
        *o->stats = st;
    return NB_OK;
}
