/* lce_backward.c - the fused linear + cross-entropy's gradients: the recompute backward (any
 * upstream gradient) and the one pass (upstream 1, gradients during the forward).
 *
 * dL/dz of a real row n with coefficient c_n (g / W for the mean, g for sum, g_n for none), as
 * xent_backward.c (p_j = exp((z_j - m) - log s)):
 *   dz_j = base p_j - sw w_j   (j != y),   base = c [(1-a) w_y + (a/V) Wc + 2 zc lse],
 *   dz_y = nb_xent_target_grad(...)        sw = c a / V
 * and through the soft-cap z = cap tanh(u / cap): du_j = dz_j (1 - (z_j / cap)^2).
 * Then with u = x W^T + b:
 *   dx [N,D] += du [N,V] W [V,D],   dW [V,D] += du^T [V,N] x [N,D],   db [V] += sum_n du_n
 * computed a block of rows and a tile of classes at a time: each tile's du is used by two GEMMs
 * and forgotten, so no N x V array exists.
 *
 * Recompute: per block, per tile: the tile's logits again (GEMM 1), du in place, dx and dW
 * (GEMMs 2 and 3), the forward having done a GEMM of its own: four in all.
 * One pass: per block, the logits of all V classes (GEMM 1) into a block x V buffer, each row's
 * lse from them, du in place, dx and dW (GEMMs 2 and 3): three in all. */
#include <math.h>
#include <string.h>

#include "../ops/ops_internal.h"
#include "lce_internal.h"

#define LCE_DB_CHUNK 256 /* columns of db summed by one thread at a time */

double nb_lce_upstream(const lce_ctx *c, int64_t n, const void *dloss)
{
    if (!nb_xent_keep(c->o, c->tgt, n))
        return 0.0;
    double g = 1.0;
    if (dloss) {
        int64_t i = c->o->reduction == NB_REDUCTION_NONE ? n : 0;
        g = c->f64 ? ((const double *)dloss)[i] : (double)((const float *)dloss)[i];
    }
    return c->W != 0.0 ? g / c->W : 0.0;
}

/* du of one real row over classes [v0, v0+nv) in place over its logits z (f64, or f32 with a
 * cap or f64 weights): the general loop, in double */
static void row_dz_general(const lce_ctx *c, void *z, int64_t v0, int64_t nv, int64_t y,
                           double base, double sw, double vy, double m, double logs)
{
    double cap = c->cap;
    for (int64_t j = 0; j < nv; j++) {
        double zj = c->f64 ? ((double *)z)[j] : (double)((float *)z)[j];
        double d = j + v0 == y ? vy : base * exp((zj - m) - logs) - sw * nb_lce_w(c, v0 + j);
        if (cap > 0.0)
            d *= 1.0 - (zj / cap) * (zj / cap);
        if (c->f64)
            ((double *)z)[j] = d;
        else
            ((float *)z)[j] = (float)d;
    }
}

static void row_dz(const lce_ctx *c, int64_t n, void *z, int64_t v0, int64_t nv, double cf,
                   double m, double logs)
{
    const nb_xent_opts *o = c->o;
    double a = o->label_smoothing, lse = m + logs;
    int64_t y = nb_lce_y(c, n); /* in the slice; its weight from the full vector */
    double wy = nb_lce_w(c, y);
    double hit = cf * (1.0 - a) * wy,
           rest = cf * (a / (double)c->Vt * c->Wc + 2.0 * o->z_loss * lse);
    double base = hit + rest, sw = cf * a / (double)c->Vt, vy = 0.0;
    bool has_y = y >= v0 && y < v0 + nv;
    if (has_y) /* the target's entry on its own, in double (see nb_xent_target_grad) */
        vy = nb_xent_target_grad(c->f64 ? ((double *)z)[y - v0] : (double)((float *)z)[y - v0], m,
                                 logs, hit, rest, sw * wy);
    if (c->f64 || c->cap > 0.0 || (o->weight && o->weight->dtype != NB_F32)) {
        row_dz_general(c, z, v0, nv, y, base, sw, vy, m, logs);
        return;
    }
    /* f32: exp((z - c32) - r32) with c32 = m in f32 and r32 = (m - c32) + log s, as row_f32 */
    float c32 = (float)m, r32 = (float)((m - (double)c32) + logs);
    const float *w = o->weight ? (const float *)o->weight->data + c->off + v0 : NULL;
    c->k->grad(z, z, nv, c32, r32, (float)base, (float)sw, w, 0);
    if (has_y)
        ((float *)z)[y - v0] = (float)vy;
}

/* whether row n's tile [v0, v0+nv) of logits z matters: it holds the target, or its largest
 * probability exp((max z - m) - log s) reaches 2^-24 (or is NaN) */
static bool row_matters(const lce_ctx *c, int64_t n, const void *z, int64_t v0, int64_t nv,
                        double m, double logs)
{
    int64_t y = nb_lce_y(c, n);
    if (y >= v0 && y < v0 + nv)
        return true;
    double zmax = -INFINITY;
    if (c->f64)
        for (int64_t j = 0; j < nv; j++)
            zmax = ((const double *)z)[j] > zmax || ((const double *)z)[j] != ((const double *)z)[j]
                       ? ((const double *)z)[j]
                       : zmax;
    else
        zmax = (double)c->k->max(z, nv);
    return !(exp((zmax - m) - logs) < 0x1p-24);
}

/* whether any real row's tile matters (the filter's test, before dz overwrites the logits) */
static bool tile_matters(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv,
                         const void *z, const double *cf, const double *shift)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    for (int64_t i = 0; i < nr; i++) {
        int64_t n = r0 + i;
        if (cf[i] != 0.0 && row_matters(c, n, (const char *)z + (size_t)(i * nv) * es, v0, nv,
                                        shift[2 * n], shift[2 * n + 1]))
            return true;
    }
    return false;
}

bool nb_lce_dz(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv, void *z,
               const double *cf, const double *shift)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    if (c->filter && !tile_matters(c, r0, nr, v0, nv, z, cf, shift))
        return false;
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static)                                                          \
    num_threads(nt) if (nr * nv >= NB_XPAR_MIN_ELEMS && nr > 1)
    for (int64_t i = 0; i < nr; i++) {
        char *zr = (char *)z + (size_t)(i * nv) * es;
        int64_t n = r0 + i;
        if (cf[i] == 0.0)
            memset(zr, 0, (size_t)nv * es);
        else
            row_dz(c, n, zr, v0, nv, cf[i], shift[2 * n], shift[2 * n + 1]);
    }
    return true;
}

void nb_lce_accumulate(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv,
                       const void *dz, void *gx_blk, void *gw, void *gb)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    int64_t D = c->D;
    nb_dtype t = c->x->dtype;
    if (gx_blk) /* dx_blk [nr,D] += dz [nr,nv] W_tile [nv,D] */
        nb_gemm(t, false, false, nr, D, nv, dz, nv,
                (const char *)c->w->data + (size_t)(v0 * D) * es, D, 1.0, gx_blk);
    if (gw) /* dW_tile [nv,D] += dz^T [nv,nr] x_blk [nr,D] */
        nb_gemm(t, true, false, nv, D, nr, dz, nv, (const char *)c->x->data + (size_t)(r0 * D) * es,
                D, 1.0, (char *)gw + (size_t)(v0 * D) * es);
    if (!gb) /* db_tile [nv] += column sums of dz, in chunks of columns (one per thread) */
        return;
    int64_t nch = (nv + LCE_DB_CHUNK - 1) / LCE_DB_CHUNK;
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static)                                                          \
    num_threads(nt) if (nr * nv >= NB_XPAR_MIN_ELEMS && nch > 1)
    for (int64_t ch = 0; ch < nch; ch++) {
        int64_t j0 = ch * LCE_DB_CHUNK, j1 = j0 + LCE_DB_CHUNK < nv ? j0 + LCE_DB_CHUNK : nv;
        for (int64_t i = 0; i < nr; i++)
            if (c->f64)
                for (int64_t j = j0; j < j1; j++)
                    ((double *)gb)[v0 + j] += ((const double *)dz)[i * nv + j];
            else
                for (int64_t j = j0; j < j1; j++)
                    ((float *)gb)[v0 + j] += ((const float *)dz)[i * nv + j];
    }
}

/* where a block's dL/dx goes: straight into gx's rows, or (sharded) into dxb, zeroed, to be
 * summed over the ranks first */
static void *block_dx(const lce_ctx *c, const lce_scratch *sc, void *gx, int64_t r0, int64_t nr)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    if (!gx || !c->reduce)
        return gx ? (char *)gx + (size_t)(r0 * c->D) * es : NULL;
    memset(sc->dxb, 0, (size_t)(nr * c->D) * es);
    return sc->dxb;
}

nb_status nb_lce_backward(const lce_ctx *c, const double *shift, const void *dloss,
                          const lce_scratch *sc, void *gx, void *gw, void *gb)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    double *cf = sc->cf;
    for (int64_t r0 = 0; r0 < c->N; r0 += c->BR) {
        int64_t nr = c->N - r0 < c->BR ? c->N - r0 : c->BR;
        bool any = false;
        for (int64_t i = 0; i < nr; i++) {
            cf[i] = nb_lce_upstream(c, r0 + i, dloss);
            any |= cf[i] != 0.0;
        }
        if (!any)
            continue;
        void *gxb = block_dx(c, sc, gx, r0, nr);
        for (int64_t v0 = 0; v0 < c->V; v0 += c->TV) {
            int64_t nv = c->V - v0 < c->TV ? c->V - v0 : c->TV;
            nb_lce_logits(c, r0, nr, v0, nv, sc->tile);
            if (nb_lce_dz(c, r0, nr, v0, nv, sc->tile, cf, shift))
                nb_lce_accumulate(c, r0, nr, v0, nv, sc->tile, gxb, gw, gb);
        }
        nb_status s = NB_OK;
        if (gx && c->reduce) /* dx = sum over the ranks of dz_slice W_slice */
            s = nb_lce_reduce_dx(c, nr, gxb, (char *)gx + (size_t)(r0 * c->D) * es);
        if (s != NB_OK)
            return s;
    }
    return NB_OK;
}

/* the one pass's loss part of a block: fold every class of each real row (this rank's when
 * sharded, then combined), the row's loss and shift */
static nb_status one_pass_rows(const lce_ctx *c, int64_t r0, int64_t nr, const lce_scratch *sc,
                               double *shift, double *rows)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    int64_t N = c->N, V = c->V;
    lce_row *st = sc->st;
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nr * V >= NB_XPAR_MIN_ELEMS && nr > 1)
    for (int64_t i = 0; i < nr; i++) {
        st[i] = (lce_row){.m = -INFINITY};
        if (nb_xent_keep(c->o, c->tgt, r0 + i))
            nb_lce_fold(c, r0 + i, (const char *)sc->tile + (size_t)(i * V) * es, 0, V, &st[i]);
    }
    if (c->reduce) {
        nb_status s = nb_lce_combine(c, r0, nr, st, sc->red);
        if (s != NB_OK)
            return s;
    }
    for (int64_t i = 0; i < nr; i++) {
        int64_t n = r0 + i;
        if (nb_xent_keep(c->o, c->tgt, n))
            rows[n] = nb_lce_row_loss(c, n, &st[i], &shift[2 * n], &shift[2 * n + 1], &rows[N + n]);
    }
    return NB_OK;
}

nb_status nb_lce_one_pass(const lce_ctx *c, nb_tensor *loss, double *shift, double *rows,
                          const lce_scratch *sc, void *gx, void *gw, void *gb, nb_xent_stats *stats)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    int64_t N = c->N, V = c->V;
    lce_ctx all = *c;
    all.filter = false; /* the one pass keeps every class */
    for (int64_t r0 = 0; r0 < N; r0 += c->BR) {
        int64_t nr = N - r0 < c->BR ? N - r0 : c->BR;
        bool any = false;
        for (int64_t i = 0; i < nr; i++) {
            sc->cf[i] = nb_lce_upstream(c, r0 + i, NULL);
            any |= nb_xent_keep(c->o, c->tgt, r0 + i);
            rows[r0 + i] = rows[N + r0 + i] = shift[2 * (r0 + i)] = shift[2 * (r0 + i) + 1] = 0.0;
        }
        if (!any)
            continue;
        nb_lce_logits(c, r0, nr, 0, V, sc->tile); /* every class of the block: one GEMM */
        nb_status s = one_pass_rows(c, r0, nr, sc, shift, rows);
        if (s != NB_OK)
            return s;
        void *gxb = block_dx(c, sc, gx, r0, nr);
        nb_lce_dz(&all, r0, nr, 0, V, sc->tile, sc->cf, shift);
        nb_lce_accumulate(c, r0, nr, 0, V, sc->tile, gxb, gw, gb);
        if (gx && c->reduce)
            s = nb_lce_reduce_dx(c, nr, gxb, (char *)gx + (size_t)(r0 * c->D) * es);
        if (s != NB_OK)
            return s;
    }
    nb_xent_finish(c->o, c->tgt, false, N, rows, rows + N, loss, stats);
    return NB_OK;
}
