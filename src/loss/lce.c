/* lce.c - the fused linear + cross-entropy head: checks, tile logits, online log-sum-exp over the
 * vocabulary tiles, and the tiled forward (no graph; the op is lce_op.c).
 *
 * Forward, per block of BR rows (notation of lce_internal.h):
 *   for each tile of TV classes [v0, v0 + nv):
 *     z_tile [BR, nv] = b[v0 ..) + x_blk [BR, D] W[v0 ..)^T [D, nv]     (one GEMM, beta = 1)
 *     (soft-cap: z = cap tanh(z / cap))
 *     per row: fold the tile into the running (m, s) as xent.c's row_shift_f32 folds a chunk:
 *       m' = max(m, max_j z_j),  s = s exp(m - m') + sum_j exp(z_j - m')
 *     pick up z_y when y is in the tile; with smoothing add sum_j w_j (R - z_j) for the row's
 *     first tile max R (so sum_c w_c (m - z_c) = that + (m - R) Wc at the end).
 *   then per row, exactly as xent.c's row_loss: lse = m + log s and
 *     L = (1-a) w_y ((m - z_y) + log s) + (a/V) (sum_c w_c (m - z_c) + Wc log s) + zc lse^2.
 * Memory: the tile (BR x TV) and BR row states, plus 2N doubles of shifts and 2N of row losses. */
#include <math.h>
#include <string.h>

#include "../ops/ops_internal.h"
#include "lce_internal.h"

/* The tiled path's tile of BR rows x TV classes holds about LCE_TILE_BYTES of logits. Rows go
 * first: the tile takes every row (up to the budget) and TV = budget / rows classes, at least
 * LCE_TILE_MIN; then each tile's GEMMs are large in every dimension (the dW GEMM's inner
 * dimension is BR, and each tile of dW is written once per block of rows). */
#define LCE_TILE_BYTES ((size_t)4 << 20)
#define LCE_TILE_MIN 256
#define LCE_TILE_MAX 2048
/* A one-pass block holds every class of BR rows: at most this much of logits, and at most an
 * eighth of all the logits (so the op holds at most 1/16 of what the unfused path's logits and
 * their gradient take) ... */
#define LCE_ONE_PASS_BYTES ((size_t)16 << 20)
/* ... unless the eighth is below this: a small head (a batch of 128 rows, 10 classes) is one
 * block, not eight tiny GEMMs */
#define LCE_ONE_PASS_FLOOR ((int64_t)1 << 20)

nb_lce_opts nb_lce_defaults(void)
{
    nb_lce_opts o;
    memset(&o, 0, sizeof o);
    o.xent = nb_xent_defaults();
    return o;
}

/* ---- checks ---- */

static nb_status check_shapes(const nb_tensor *x, const nb_tensor *w, const nb_tensor *b)
{
    const char *fn = "linear_cross_entropy";
    if (x->dtype != NB_F32 && x->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE, "%s: x must be f32 or f64, got %s", fn,
                        nb_dtype_name(x->dtype));
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return nb_error(NB_ERR_DTYPE, "%s: W (%s) and b (%s) must have x's dtype %s", fn,
                        nb_dtype_name(w->dtype), b ? nb_dtype_name(b->dtype) : "none",
                        nb_dtype_name(x->dtype));
    if (x->ndim != 2 && x->ndim != 3)
        return nb_error(NB_ERR_SHAPE, "%s: x %s must be [N,D] or [B,T,D]", fn, nb_shp(x));
    int64_t D = x->shape[x->ndim - 1];
    if (D < 1)
        return nb_error(NB_ERR_SHAPE, "%s: x %s has no features (D = 0)", fn, nb_shp(x));
    if (w->ndim != 2 || w->shape[1] != D || w->shape[0] < 1)
        return nb_error(NB_ERR_SHAPE, "%s: W %s must be [V,D] with V >= 1 and D = %lld (x %s)", fn,
                        nb_shp(w), (long long)D, nb_shp(x));
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return nb_error(NB_ERR_SHAPE, "%s: b %s must be [V] = [%lld] (W %s)", fn, nb_shp(b),
                        (long long)w->shape[0], nb_shp(w));
    int64_t N = x->numel / D;
    if (N > INT32_MAX || D > INT32_MAX || w->shape[0] > INT32_MAX)
        return nb_error(NB_ERR_SHAPE, "%s: x %s or W %s has a dimension above %d (BLAS)", fn,
                        nb_shp(x), nb_shp(w), INT32_MAX);
    return NB_OK;
}

static nb_status check_opts(const nb_lce_opts *o)
{
    const char *fn = "linear_cross_entropy";
    if (!(o->softcap >= 0.0) || isinf(o->softcap))
        return nb_error(NB_ERR_ARG, "%s: softcap %g must be finite and >= 0 (0 = none)", fn,
                        o->softcap);
    if (o->block_rows < 0 || o->block_rows > INT32_MAX)
        return nb_error(NB_ERR_ARG, "%s: block_rows %lld outside [0, %d] (0 = chosen)", fn,
                        (long long)o->block_rows, INT32_MAX);
    if (o->tile_classes < 0 || o->tile_classes > INT32_MAX)
        return nb_error(NB_ERR_ARG, "%s: tile_classes %lld outside [0, %d] (0 = chosen)", fn,
                        (long long)o->tile_classes, INT32_MAX);
    return NB_OK;
}

/* the vocabulary slice: [class_offset, class_offset + V) within classes_total, or not sharded */
static nb_status check_shard(const nb_lce_opts *o, int64_t V)
{
    const char *fn = "linear_cross_entropy";
    long long off = (long long)o->class_offset, tot = (long long)o->classes_total;
    if (tot < 0 || tot > INT32_MAX)
        return nb_error(NB_ERR_ARG, "%s: classes_total %lld outside [0, %d] (0 = not sharded)", fn,
                        tot, INT32_MAX);
    if (tot == 0 && off != 0)
        return nb_error(NB_ERR_ARG,
                        "%s: class_offset %lld needs classes_total > 0 (0 = not sharded: the "
                        "offset must be 0)",
                        fn, off);
    if (tot == 0)
        return NB_OK;
    if (off < 0 || off > tot - (long long)V)
        return nb_error(NB_ERR_ARG,
                        "%s: the slice [class_offset %lld, + V %lld) must lie in [0, "
                        "classes_total %lld)",
                        fn, off, (long long)V, tot);
    if (!o->allreduce)
        return nb_error(NB_ERR_ARG,
                        "%s: classes_total %lld shards the classes, which needs an allreduce "
                        "callback (NULL)",
                        fn, tot);
    return NB_OK;
}

/* sum of the weights of classes [off, off + V) (V without weights) */
static double slice_weight_sum(const nb_xent_opts *o, int64_t off, int64_t V)
{
    if (!o->weight)
        return (double)V;
    double acc = 0.0;
    for (int64_t j = 0; j < V; j++)
        acc += nb_xent_weight_at(o, off + j);
    return acc;
}

nb_status nb_lce_setup(lce_ctx *c, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b,
                       const nb_tensor *tgt, const nb_lce_opts *o)
{
    const char *fn = "linear_cross_entropy";
    nb_status s = nb_check_tensor(fn, "x", x);
    if (s == NB_OK)
        s = nb_check_tensor(fn, "W", w);
    if (s == NB_OK && b)
        s = nb_check_tensor(fn, "b", b);
    if (s == NB_OK)
        s = nb_check_tensor(fn, "targets", tgt);
    if (s == NB_OK)
        s = check_shapes(x, w, b);
    if (s == NB_OK)
        s = check_opts(o);
    if (s == NB_OK)
        s = check_shard(o, w->shape[0]);
    if (s != NB_OK)
        return s;
    /* the logits' header (never read), all classes_total of them when sharded: the
     * cross-entropy's own checks of targets (global), weights (the full vector) and options */
    int64_t Vt = o->classes_total > 0 ? o->classes_total : w->shape[0];
    nb_tensor z = *x;
    z.shape[x->ndim - 1] = Vt;
    z.numel = x->numel / x->shape[x->ndim - 1] * Vt;
    z.grad = NULL, z.graph = NULL, z.node = -1, z.flags = 0;
    s = nb_xent_check(&z, tgt, false, &o->xent);
    if (s != NB_OK)
        return nb_error_in(fn, s);
    memset(c, 0, sizeof *c);
    c->x = x, c->w = w, c->b = b, c->tgt = tgt, c->o = &o->xent;
    c->k = nb_xent_simd_get();
    c->cap = o->softcap;
    c->D = x->shape[x->ndim - 1], c->V = w->shape[0], c->N = x->numel / c->D;
    c->f64 = x->dtype == NB_F64;
    c->filter = o->grad_filter && o->xent.label_smoothing == 0.0;
    c->Vt = Vt, c->off = o->classes_total > 0 ? o->class_offset : 0;
    c->reduce = o->classes_total > 0 ? o->allreduce : NULL, c->reduce_ctx = o->allreduce_ctx;
    c->Wc = nb_xent_class_weight_sum(&o->xent, Vt);
    c->Wl = slice_weight_sum(&o->xent, c->off, c->V);
    c->W = 1.0;
    if (o->xent.reduction == NB_REDUCTION_MEAN)
        c->W = nb_xent_normaliser(&z, tgt, NULL, &o->xent);
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    int64_t rows = c->N > 0 ? c->N : 1, tv = o->tile_classes;
    if (tv == 0) {
        tv = (int64_t)(LCE_TILE_BYTES / ((size_t)(o->block_rows > 0 ? o->block_rows : rows) * es));
        tv = tv < LCE_TILE_MIN ? LCE_TILE_MIN : tv > LCE_TILE_MAX ? LCE_TILE_MAX : tv;
    }
    c->TV = tv < c->V ? tv : c->V;
    c->TVb = tv < Vt ? tv : Vt;
    c->BR = nb_lce_block_rows(c, o, false);
    return NB_OK;
}

int64_t nb_lce_block_rows(const lce_ctx *c, const nb_lce_opts *o, bool one_pass)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    int64_t br = o->block_rows;
    /* from N and Vt only (not this rank's V): every rank of a sharded call takes the same blocks;
     * the one pass's: <= 16 MiB and <= 1/8 of the logits, in whole kernel panels */
    if (br == 0 && one_pass) {
        int64_t row = (int64_t)((size_t)c->Vt * es), cap = c->N / 8;
        cap = cap > LCE_ONE_PASS_FLOOR / row ? cap : LCE_ONE_PASS_FLOOR / row;
        br = (int64_t)LCE_ONE_PASS_BYTES / row;
        br = br < cap ? br : cap;
        br = br > 16 ? br / 16 * 16 : br;
    } else if (br == 0)
        br = (int64_t)(LCE_TILE_BYTES / ((size_t)c->TVb * es));
    br = br < 1 ? 1 : br;
    return br < c->N ? br : (c->N > 0 ? c->N : 1);
}

/* ---- tiles ---- */

void nb_lce_logits(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv, void *z)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    /* preload the bias, then the GEMM adds x W^T (beta 1) */
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static)                                                          \
    num_threads(nt) if (nr * nv >= NB_XPAR_MIN_ELEMS && nr > 1)
    for (int64_t i = 0; i < nr; i++) {
        char *zr = (char *)z + (size_t)(i * nv) * es;
        if (c->b)
            memcpy(zr, (const char *)c->b->data + (size_t)v0 * es, (size_t)nv * es);
        else
            memset(zr, 0, (size_t)nv * es);
    }
    const char *xb = (const char *)c->x->data + (size_t)(r0 * c->D) * es;
    const char *wb = (const char *)c->w->data + (size_t)(v0 * c->D) * es;
    nb_gemm(c->x->dtype, false, true, nr, nv, c->D, xb, c->D, wb, c->D, 1.0, z);
    if (c->cap <= 0.0)
        return;
    int64_t n = nr * nv;
    if (c->f64) {
        double *d = z, cap = c->cap;
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= NB_XPAR_MIN_ELEMS)
        for (int64_t i = 0; i < n; i++)
            d[i] = cap * tanh(d[i] / cap);
    } else {
        float *f = z, cap = (float)c->cap;
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= NB_XPAR_MIN_ELEMS)
        for (int64_t i = 0; i < n; i++)
            f[i] = cap * tanhf(f[i] / cap);
    }
}

/* ---- the online log-sum-exp ---- */

/* one f64 tile: its max (NaN: the row is NaN), the running sum rescaled when the max grows, and
 * the tile's sum of exps (the elements equal to the max counted in ones) */
static void fold_f64(const double *z, int64_t nv, lce_row *st)
{
    double bm = -INFINITY;
    for (int64_t j = 0; j < nv; j++) {
        if (z[j] != z[j]) {
            st->nan = true;
            return;
        }
        bm = z[j] > bm ? z[j] : bm;
    }
    if (bm == -INFINITY)
        return; /* exp(-inf) = 0; with smoothing the row's loss is inf (as the unfused one) */
    if (bm > st->m) {
        st->below = (st->below + (double)st->ones) * exp(st->m - bm);
        st->ones = 0;
        st->m = bm;
    }
    double bs = 0.0;
    for (int64_t j = 0; j < nv; j++) {
        if (z[j] < st->m)
            bs += exp(z[j] - st->m);
        else
            st->ones += z[j] == st->m;
    }
    st->below += bs;
}

/* smoothing over a tile whose logits are all -inf: sum_j w_j (R - z_j) = +inf unless every
 * weight is 0 (a term of weight 0 contributes 0), whatever the tile's neighbours hold */
static void fold_all_neg_inf(const lce_ctx *c, int64_t v0, int64_t nv, lce_row *st)
{
    for (int64_t j = 0; j < nv; j++)
        if (nb_lce_w(c, v0 + j) != 0.0) {
            st->swz = INFINITY;
            return;
        }
}

/* with smoothing: sum_j w_j (R - z_j) of a tile holding a finite logit, R set at the first */
static void fold_smoothing(const lce_ctx *c, const void *z, int64_t v0, int64_t nv, lce_row *st)
{
    if (c->f64) {
        const double *d = z;
        double acc = 0.0;
        for (int64_t j = 0; j < nv; j++) {
            double q = nb_lce_w(c, v0 + j);
            if (q != 0.0)
                acc += q * (st->R - d[j]);
        }
        st->swz += acc;
    } else if (!c->o->weight || c->o->weight->dtype == NB_F32) {
        const float *w = c->o->weight ? (const float *)c->o->weight->data + c->off + v0 : NULL;
        st->swz += c->k->sumdiff(z, nv, (float)st->R, w);
    } else {
        const float *f = z;
        for (int64_t j = 0; j < nv; j++) {
            double q = nb_lce_w(c, v0 + j);
            if (q != 0.0)
                st->swz += q * (st->R - (double)f[j]);
        }
    }
}

void nb_lce_fold(const lce_ctx *c, int64_t n, const void *z, int64_t v0, int64_t nv, lce_row *st)
{
    int64_t y = nb_lce_y(c, n);
    if (y >= v0 && y < v0 + nv)
        st->zy = c->f64 ? ((const double *)z)[y - v0] : (double)((const float *)z)[y - v0];
    if (st->nan)
        return;
    double m_before = st->m;
    if (c->f64) {
        fold_f64(z, nv, st);
    } else {
        const float *x = z;
        float bm = c->k->max(x, nv);
        if (bm != bm) {
            st->nan = true;
            return;
        }
        if (bm > st->m) {
            st->below = (st->below + (double)st->ones) * exp(st->m - (double)bm);
            st->ones = 0;
            st->m = bm;
        }
        float m = (float)st->m;
        if (bm != -INFINITY)
            st->below += bm < m ? c->k->sumexp(x, nv, m) : c->k->sumexp_below(x, nv, m, &st->ones);
    }
    if (c->o->label_smoothing <= 0.0 || st->nan)
        return;
    if (m_before == st->m && st->m == -INFINITY) { /* the tile's logits are all -inf */
        fold_all_neg_inf(c, v0, nv, st);
        return;
    }
    if (m_before == -INFINITY)
        st->R = st->m; /* the reference of the smoothing sum: the first finite tile's max */
    fold_smoothing(c, z, v0, nv, st);
}

double nb_lce_row_loss(const lce_ctx *c, int64_t n, const lce_row *st, double *m, double *logs,
                       double *zl)
{
    if (st->nan) {
        *m = *logs = *zl = NAN;
        return NAN;
    }
    const nb_xent_opts *o = c->o;
    double a = o->label_smoothing;
    *m = st->m;
    *logs = nb_xent_log_s(st->m, st->ones, st->below);
    double lse = *m + *logs;
    int64_t y = nb_xent_target_at(c->tgt, n); /* global: its weight from the full vector */
    double L = nb_xent_weighted((1.0 - a) * nb_xent_weight_at(o, y), (*m - st->zy) + *logs);
    if (a > 0.0) /* sum_c w_c ((m - z_c) + log s), the sum taken around R */
        L += a / (double)c->Vt * ((st->swz + (*m - st->R) * c->Wc) + c->Wc * *logs);
    *zl = o->z_loss * lse * lse;
    return L + *zl;
}

/* ---- the tiled forward ---- */

static bool block_has_rows(const lce_ctx *c, int64_t r0, int64_t nr)
{
    for (int64_t i = 0; i < nr; i++)
        if (nb_xent_keep(c->o, c->tgt, r0 + i))
            return true;
    return false;
}

nb_status nb_lce_forward(const lce_ctx *c, nb_tensor *loss, double *shift, double *rows,
                         const lce_scratch *sc, nb_xent_stats *stats)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    int64_t N = c->N;
    lce_row *st = sc->st;
    for (int64_t r0 = 0; r0 < N; r0 += c->BR) {
        int64_t nr = N - r0 < c->BR ? N - r0 : c->BR;
        for (int64_t i = 0; i < nr; i++)
            st[i] = (lce_row){.m = -INFINITY};
        bool any = block_has_rows(c, r0, nr);
        for (int64_t v0 = 0; any && v0 < c->V; v0 += c->TV) {
            int64_t nv = c->V - v0 < c->TV ? c->V - v0 : c->TV;
            nb_lce_logits(c, r0, nr, v0, nv, sc->tile);
            int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static)                                                          \
    num_threads(nt) if (nr * nv >= NB_XPAR_MIN_ELEMS && nr > 1)
            for (int64_t i = 0; i < nr; i++)
                if (nb_xent_keep(c->o, c->tgt, r0 + i))
                    nb_lce_fold(c, r0 + i, (const char *)sc->tile + (size_t)(i * nv) * es, v0, nv,
                                &st[i]);
        }
        if (any && c->reduce) { /* the slices' states into the states over every class */
            nb_status s = nb_lce_combine(c, r0, nr, st, sc->red);
            if (s != NB_OK)
                return s;
        }
        for (int64_t i = 0; i < nr; i++) {
            int64_t n = r0 + i;
            double m = 0.0, logs = 0.0, zl = 0.0, L = 0.0;
            if (nb_xent_keep(c->o, c->tgt, n))
                L = nb_lce_row_loss(c, n, &st[i], &m, &logs, &zl);
            rows[n] = L, rows[N + n] = zl;
            shift[2 * n] = m, shift[2 * n + 1] = logs;
        }
    }
    nb_xent_finish(c->o, c->tgt, false, N, rows, rows + N, loss, stats);
    return NB_OK;
}
