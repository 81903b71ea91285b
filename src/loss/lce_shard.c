/* lce_shard.c - vocabulary parallelism for the fused linear + cross-entropy: the classes split
 * across ranks (nb_lce_opts.classes_total), each rank folding its own slice [off, off + V) of
 * every row, the ranks combining per row through the caller's all-reduce.
 *
 * A rank r has folded row n over its classes C_r into (notation of lce_internal.h)
 *   m_r = max_{c in C_r} z_c,  s_r = ones_r + below_r = sum_{c in C_r} exp(z_c - m_r),
 *   zy_r = z_y if y in C_r (else 0),  swz_r = sum_{c in C_r} w_c (R_r - z_c)  (smoothing).
 * Combined, as one process folding every class would have it:
 *   M = max_r m_r                                        (all-reduce MAX)
 *   s = sum_r s_r exp(m_r - M): a rank with m_r = M adds its ones_r as ones and below_r as below,
 *       any other rank (ones_r + below_r) exp(m_r - M) to below, so s = ones + below with ones
 *       the count of logits equal to M and log s = log1p((ones - 1) + below) keeps a confident
 *       row's tiny below to full precision, as in one process;
 *   z_y = sum_r zy_r (exactly one rank adds a non-zero), and
 *   sum_c w_c (M - z_c) = sum_r [swz_r + (M - R_r) Wl_r]     (all-reduce SUM, one call)
 * A rank whose logits of the row are all -inf has m_r = -inf and adds nothing to s (and to the
 * smoothing sum its swz_r, +inf unless its weights are 0); a NaN anywhere makes the row NaN on
 * every rank (a flag in the MAX call). */
#include <math.h>
#include <string.h>

#include "lce_internal.h"

/* what rank r's row state adds to the SUM reduction, re-referenced to the global max M */
static void row_share(const lce_ctx *c, const lce_row *st, double M, double *ones, double *below,
                      double *swz)
{
    *ones = *below = 0.0;
    *swz = st->swz;
    if (st->m == -INFINITY) /* no finite logit here: exp(-inf) = 0 */
        return;
    if (st->m == M) {
        *ones = (double)st->ones;
        *below = st->below;
    } else {
        *below = (st->below + (double)st->ones) * exp(st->m - M);
    }
    if (c->o->label_smoothing > 0.0)
        *swz = st->swz + (M - st->R) * c->Wl;
}

nb_status nb_lce_combine(const lce_ctx *c, int64_t r0, int64_t nr, lce_row *st, double *red)
{
    /* MAX over [m | nan flag], nr each; padding rows send -inf and 0 */
    double *mx = red, *sum = red + 2 * nr;
    for (int64_t i = 0; i < nr; i++) {
        bool keep = nb_xent_keep(c->o, c->tgt, r0 + i);
        mx[i] = keep && !st[i].nan ? st[i].m : -INFINITY;
        mx[nr + i] = keep && st[i].nan ? 1.0 : 0.0;
    }
    nb_status s = c->reduce(mx, 2 * nr, NB_F64, NB_LCE_MAX, c->reduce_ctx);
    if (s != NB_OK)
        return s;
    /* SUM over [ones | below | z_y | smoothing sum], nr each */
    for (int64_t i = 0; i < nr; i++) {
        sum[i] = sum[nr + i] = sum[2 * nr + i] = sum[3 * nr + i] = 0.0;
        if (!nb_xent_keep(c->o, c->tgt, r0 + i) || mx[nr + i] != 0.0)
            continue;
        row_share(c, &st[i], mx[i], &sum[i], &sum[nr + i], &sum[3 * nr + i]);
        int64_t y = nb_lce_y(c, r0 + i);
        sum[2 * nr + i] = y >= 0 && y < c->V ? st[i].zy : 0.0;
    }
    s = c->reduce(sum, 4 * nr, NB_F64, NB_LCE_SUM, c->reduce_ctx);
    if (s != NB_OK)
        return s;
    for (int64_t i = 0; i < nr; i++)
        st[i] = (lce_row){.m = mx[i],
                          .ones = (int64_t)sum[i],
                          .below = sum[nr + i],
                          .zy = sum[2 * nr + i],
                          .swz = sum[3 * nr + i],
                          .R = mx[i], /* swz is taken around M: (M - R) Wc = 0 */
                          .nan = mx[nr + i] != 0.0};
    return NB_OK;
}

nb_status nb_lce_reduce_dx(const lce_ctx *c, int64_t nr, void *dxb, void *gx_blk)
{
    int64_t n = nr * c->D;
    nb_status s = c->reduce(dxb, n, c->x->dtype, NB_LCE_SUM, c->reduce_ctx);
    if (s != NB_OK)
        return s;
    if (c->f64)
        for (int64_t i = 0; i < n; i++)
            ((double *)gx_blk)[i] += ((const double *)dxb)[i];
    else
        for (int64_t i = 0; i < n; i++)
            ((float *)gx_blk)[i] += ((const float *)dxb)[i];
    return NB_OK;
}
