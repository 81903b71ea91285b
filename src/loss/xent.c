/* xent.c - the fused cross-entropy's row shifts (online log-sum-exp) and forward (no graph).
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
 * The backward is in xent_backward.c, the one-pass forward+backward in xent_fused.c (the raw
 * kernel) and xent_backward.c (the graph op's, bitwise the two passes').
 *
 * Precision: f16/bf16/f32 logits are computed in f32 (blocks of a row are widened on the stack),
 * f64 in f64; the running sum of exps is carried in double across blocks and per-row losses are
 * summed in double, so long rows and large batches do not lose digits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/ops_internal.h"
#include "../tensor/tensor_internal.h"
#include "xent_internal.h"

/* ---- row kernels ---- */

/* Online log-sum-exp of row [off, off+V) in f32: per chunk (in cache) its max, rescale the
 * running sum if the max grew, add the chunk's sum of exps (f32 blocks, carried in double). The
 * sum is kept as ones + below (see nb_xent_log_s): rescaling turns the old ones into ordinary
 * terms. */
static void row_shift_f32(const nb_xent_simd *k, const nb_tensor *z, int64_t off, int64_t V,
                          double *m_out, double *logs)
{
    float tmp[z->dtype == NB_F32 ? 1 : NB_XCHUNK];
    float m = -INFINITY;
    double below = 0.0;
    int64_t ones = 0;
    for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
        int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
        const float *x = nb_xent_load_f32(k, z, off + j0, cnt, tmp);
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
        /* a chunk that holds the max m: its maxima are counted, not summed (see nb_xent_log_s) */
        below += bm < m ? k->sumexp(x, cnt, m) : k->sumexp_below(x, cnt, m, &ones);
    }
    *m_out = (double)m;
    *logs = nb_xent_log_s((double)m, ones, below);
}

static void row_shift_f64(const double *x, int64_t V, double *m_out, double *logs)
{
    double m = -INFINITY, below = 0.0;
    int64_t ones = 0;
    bool nan = false;
    for (int64_t j0 = 0; j0 < V; j0 += NB_XBLK) {
        int64_t cnt = V - j0 < NB_XBLK ? V - j0 : NB_XBLK;
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
    *logs = nan ? NAN : nb_xent_log_s(m, ones, below);
}

void nb_xent_row_shift(const nb_xent_simd *k, const nb_tensor *z, int64_t n, int64_t V, double *m,
                       double *logs)
{
    if (z->dtype == NB_F64)
        row_shift_f64((const double *)z->data + n * V, V, m, logs);
    else
        row_shift_f32(k, z, n * V, V, m, logs);
}

double nb_xent_row_lse(const nb_tensor *z, int64_t n, int64_t V)
{
    double m, logs;
    nb_xent_row_shift(nb_xent_simd_get(), z, n, V, &m, &logs);
    return m + logs;
}

/* sum_c q_c (lse - z_c) for q = w (hard targets, smoothing term) or q = w t' (soft), each
 * term computed as (m - z_c) + log s so that a huge shift m does not swallow log s. A term with
 * q_c = 0 is 0 whatever z_c is (z_c = -inf: the limit, not 0 * inf = NaN), in every dtype. */
static double row_weighted_nll(const nb_xent_simd *k, const nb_tensor *z, int64_t n, int64_t V,
                               double m, double logs, const nb_xent_opts *o, const nb_tensor *probs,
                               double a, double Wc)
{
    double acc = 0.0;
    if (!probs && z->dtype != NB_F64 && (!o->weight || o->weight->dtype == NB_F32)) {
        /* sum_c w_c (m - z_c) in f32 chunks, + log s sum_c w_c */
        const float *w = o->weight ? (const float *)o->weight->data : NULL;
        float ctmp[z->dtype == NB_F32 ? 1 : NB_XCHUNK];
        for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
            int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
            const float *x = nb_xent_load_f32(k, z, n * V + j0, cnt, ctmp);
            acc += k->sumdiff(x, cnt, (float)m, w ? w + j0 : NULL);
        }
        return acc + Wc * logs; /* Wc = sum_c w_c, computed once per call */
    }
    float tmp[NB_XBLK];
    for (int64_t j0 = 0; j0 < V; j0 += NB_XBLK) {
        int64_t cnt = V - j0 < NB_XBLK ? V - j0 : NB_XBLK;
        const float *xf = z->dtype == NB_F64 ? NULL : nb_xent_load_f32(k, z, n * V + j0, cnt, tmp);
        for (int64_t i = 0; i < cnt; i++) {
            int64_t c = j0 + i;
            double zc = xf ? (double)xf[i] : ((const double *)z->data)[n * V + c];
            double q = nb_xent_weight_at(o, c);
            if (probs)
                q *= (1.0 - a) * nb_xent_float_at(probs, n * V + c) + a / (double)V;
            if (q != 0.0)
                acc += q * ((m - zc) + logs);
        }
    }
    return acc;
}

double nb_xent_row_loss(const nb_xent_simd *k, const nb_tensor *z, const nb_tensor *tgt,
                        const nb_tensor *probs, int64_t n, int64_t V, double m, double logs,
                        const nb_xent_opts *o, double Wc)
{
    double a = o->label_smoothing, L;
    if (probs) {
        L = row_weighted_nll(k, z, n, V, m, logs, o, probs, a, Wc);
    } else {
        int64_t y = nb_xent_target_at(tgt, n);
        double zy = nb_xent_float_at(z, n * V + y);
        L = nb_xent_weighted((1.0 - a) * nb_xent_weight_at(o, y), (m - zy) + logs);
        if (a > 0.0)
            L += a / (double)V * row_weighted_nll(k, z, n, V, m, logs, o, NULL, 0.0, Wc);
    }
    return L;
}

/* ---- forward ---- */

nb_status nb_xent_forward_impl(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                               const nb_xent_opts *o, nb_tensor *loss, double *lse_out,
                               double *shift_out, double *scratch, nb_xent_stats *st_out)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    double *rowL = scratch ? scratch : malloc(sizeof(double) * 2 * (size_t)(N ? N : 1));
    if (!rowL)
        return nb_error(NB_ERR_NOMEM, "cross_entropy: out of memory for %lld row losses",
                        (long long)N);
    double *rowZ = rowL + N, Wc = nb_xent_class_weight_sum(o, V);
    const nb_xent_simd *k = nb_xent_simd_get(); /* resolved here, before the parallel region */
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (N * V >= NB_XPAR_MIN_ELEMS && N > 1)
    for (int64_t n = 0; n < N; n++) {
        double L = 0.0, zl = 0.0, m = 0.0, logs = 0.0;
        if (nb_xent_keep(o, probs ? NULL : tgt, n)) {
            nb_xent_row_shift(k, z, n, V, &m, &logs);
            double lse = m + logs;
            zl = o->z_loss * lse * lse;
            L = nb_xent_row_loss(k, z, tgt, probs, n, V, m, logs, o, Wc) + zl;
        }
        rowL[n] = L;
        rowZ[n] = zl;
        if (lse_out)
            lse_out[n] = m + logs;
        if (shift_out)
            shift_out[2 * n] = m, shift_out[2 * n + 1] = logs;
    }
    nb_xent_finish(o, tgt, probs != NULL, N, rowL, rowZ, loss, st_out);
    if (!scratch)
        free(rowL);
    return NB_OK;
}

static nb_status forward_entry(const nb_tensor *logits, const nb_tensor *tgt, bool soft,
                               const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *lse,
                               nb_xent_stats *stats)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = nb_xent_check(logits, tgt, soft, o);
    if (s != NB_OK)
        return s;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    s = nb_xent_check_out("loss", loss, ct, o->reduction == NB_REDUCTION_NONE ? N : 1, logits);
    if (s == NB_OK && lse)
        s = nb_xent_check_out("lse", lse, NB_F64, N, logits);
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
