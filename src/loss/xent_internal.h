/* xent_internal.h - what the cross-entropy files (xent*.c, xent_op.c) share. Not installed.
 *
 * The kernels are split by concept: xent_check.c (options, validation), xent.c (row shifts and
 * the forward), xent_backward.c (the backward), xent_fused.c (forward and backward in one pass),
 * xent_ref.c (the slow reference), xent_simd*.c (the f32 inner loops). */
#ifndef NABLA_XENT_INTERNAL_H
#define NABLA_XENT_INTERNAL_H

#include <math.h>

#include "nabla/loss.h"
#include "xent_simd.h"

/* Rows run in parallel when the problem is at least this many logits (and has 2+ rows); each
 * row's loss lands in its own slot and the slots are added in row order afterwards, so results do
 * not depend on the thread count. */
#define NB_XPAR_MIN_ELEMS (1 << 16)
/* Block of a row widened to f32 on the stack by the generic (non-SIMD) loops. */
#define NB_XBLK 64

/* ---- reading targets, weights, logits (validated inputs) ---- */

/* Target of row n (targets i32 or i64). */
static inline int64_t nb_xent_target_at(const nb_tensor *t, int64_t n)
{
    return t->dtype == NB_I64 ? ((const int64_t *)t->data)[n] : ((const int32_t *)t->data)[n];
}

/* Weight of class c, 1 without weights (weights f32 or f64). */
static inline double nb_xent_weight_at(const nb_xent_opts *o, int64_t c)
{
    if (!o->weight)
        return 1.0;
    return o->weight->dtype == NB_F64 ? ((const double *)o->weight->data)[c]
                                      : (double)((const float *)o->weight->data)[c];
}

/* Element i of a validated float tensor (f16, bf16, f32 or f64: logits, probability targets)
 * as double, read from typed memory (no bounds check or error state: the caller validated). */
static inline double nb_xent_float_at(const nb_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case NB_F64: return ((const double *)t->data)[i];
    case NB_F32: return (double)((const float *)t->data)[i];
    case NB_F16: return (double)nb_f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return (double)nb_bf16_to_f32(((const uint16_t *)t->data)[i]);
    }
}

/* Stores v into element i of a validated f32 or f64 tensor (a loss output, compute dtype),
 * rounded once to f32 for f32. */
static inline void nb_xent_store(nb_tensor *t, int64_t i, double v)
{
    if (t->dtype == NB_F64)
        ((double *)t->data)[i] = v;
    else
        ((float *)t->data)[i] = (float)v;
}

/* Pointer to cnt logits of z from flat index off, as f32: z's own memory for f32, else tmp
 * (cnt floats) filled by widening f16/bf16 with the table k. */
static inline const float *nb_xent_load_f32(const nb_xent_simd *k, const nb_tensor *z, int64_t off,
                                            int64_t cnt, float *tmp)
{
    if (z->dtype == NB_F32)
        return (const float *)z->data + off;
    const uint16_t *h = (const uint16_t *)z->data + off;
    if (z->dtype == NB_F16)
        k->f16_to_f32(tmp, h, cnt);
    else
        for (int64_t i = 0; i < cnt; i++)
            tmp[i] = nb_bf16_to_f32(h[i]);
    return tmp;
}

/* log s from the two parts of s = ones + below: `ones` elements equal to the max m (each adds
 * exp(0) = 1) and the sum of the others. log s = log1p((ones - 1) + below): a confident row
 * (below = 1e-30) keeps its loss log s ~ below to full precision, where log(1 + below) would
 * round to 0 (f64) or to a multiple of 6e-8 (f32). A +inf max makes the row NaN, as
 * exp(inf - inf) would. */
static inline double nb_xent_log_s(double m, int64_t ones, double below)
{
    if (m == INFINITY)
        return NAN;
    return log1p((double)(ones - 1) + below);
}

/* q d with the limit 0 for q = 0 whatever d is (d = +inf for a -inf logit). */
static inline double nb_xent_weighted(double q, double d)
{
    return q == 0.0 ? 0.0 : q * d;
}

/* dL/dz_y of a hard target y, for upstream c folded into hit = c (1-a) w_y, rest = c ((a/V) Wc
 * + 2 zc lse) and swy = c (a/V) w_y: hit (p_y - 1) + rest p_y - swy, in double, with
 * p_y - 1 = expm1(z_y - lse). Written on its own (not as base p_y - hit from the vector loop):
 * for a confident row p_y - 1 is -1e-30 where 1 - p_y in f32 rounds to 0 or 6e-8, and in the
 * fused pass the vector loop's chunk scale may be a subnormal f32 that cannot carry the -1. */
static inline double nb_xent_target_grad(double zy, double m, double logs, double hit, double rest,
                                         double swy)
{
    double x = (zy - m) - logs;
    return hit * expm1(x) + rest * exp(x) - swy;
}

/* ---- xent_check.c ---- */

/* Whether row n is a real token (targets NULL for soft targets: only the mask counts). */
bool nb_xent_keep(const nb_xent_opts *o, const nb_tensor *targets, int64_t n);
/* Checks logits, targets (probs when soft), opts and every real target's range. */
nb_status nb_xent_check(const nb_tensor *logits, const nb_tensor *tgt, bool soft,
                        const nb_xent_opts *o);
nb_status nb_xent_validate_soft(const nb_tensor *logits, const nb_tensor *probs,
                                const nb_xent_opts *opts);
/* An output tensor `what` must be dtype dt with numel elements (like: the logits, for the
 * message). */
nb_status nb_xent_check_out(const char *what, const nb_tensor *t, nb_dtype dt, int64_t numel,
                            const nb_tensor *like);
/* Wc = sum_c w_c (V without weights). */
double nb_xent_class_weight_sum(const nb_xent_opts *o, int64_t V);
/* W for the mean: the caller's normaliser, or sum_n keep_n w_{y_n} (count of real rows for
 * soft targets). */
double nb_xent_normaliser(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                          const nb_xent_opts *o);
/* Adds row losses rowL (z-loss parts rowZ) of real rows in row order into *st, writes the loss
 * tensor (per row for NB_REDUCTION_NONE, else the sum or the mean) and the stats outputs. */
void nb_xent_finish(const nb_xent_opts *o, const nb_tensor *tgt, bool soft, int64_t N,
                    const double *rowL, const double *rowZ, nb_tensor *loss, nb_xent_stats *st_out);

/* ---- xent.c ---- */

/* lse of row n of z (any float dtype), in double. */
double nb_xent_row_lse(const nb_tensor *z, int64_t n, int64_t V);
/* The row's shift m (its max) and log s, s = sum_j exp(z_j - m): lse = m + log s. */
void nb_xent_row_shift(const nb_xent_simd *k, const nb_tensor *z, int64_t n, int64_t V, double *m,
                       double *logs);

/* Per-row loss L_n of a real row (z-loss not included), lse = m + logs; Wc = sum_c w_c;
 * exactly one of tgt/probs is non-NULL. */
double nb_xent_row_loss(const nb_xent_simd *k, const nb_tensor *z, const nb_tensor *tgt,
                        const nb_tensor *probs, int64_t n, int64_t V, double m, double logs,
                        const nb_xent_opts *o, double Wc);

/* Validated inputs; exactly one of tgt/probs is non-NULL. lse_out: N doubles, shift_out: 2N
 * doubles (m, log s per row); either may be NULL. scratch: 2N doubles of working space, or NULL
 * to allocate it here (the graph op passes arena memory, so a training step does not malloc). */
nb_status nb_xent_forward_impl(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                               const nb_xent_opts *o, nb_tensor *loss, double *lse_out,
                               double *shift_out, double *scratch, nb_xent_stats *st_out);

/* ---- xent_backward.c ---- */

/* dz in the compute dtype; accumulate adds to it instead of overwriting (padding rows are then
 * left as they are; overwriting sets them to 0). shift_in (2N, from the forward) is preferred,
 * else lse_in (N), else both are recomputed; dloss NULL means 1. */
nb_status nb_xent_backward_impl(void *dz, bool accumulate, const nb_tensor *z, const nb_tensor *tgt,
                                const nb_tensor *probs, const nb_xent_opts *o, const double *lse_in,
                                const double *shift_in, const void *dloss);

/* The forward (as nb_xent_forward_impl: loss, stats, shift_out, scratch) and dz for an upstream
 * gradient of 1 (as nb_xent_backward_impl overwriting, dloss NULL) in one pass over the rows:
 * each row's gradient is written right after its loss, from the same row functions with the
 * same arguments, so loss, shifts and dz are bitwise those of the two calls. shift_out and
 * scratch: 2N doubles each, both required. */
void nb_xent_forward_grad_impl(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                               const nb_xent_opts *o, nb_tensor *loss, double *shift_out,
                               double *scratch, void *dz, nb_xent_stats *st_out);

#endif
