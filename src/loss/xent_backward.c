/* xent_backward.c - the fused cross-entropy's backward (no graph).
 *
 * Per real row, one streaming pass writing dL/dz directly, p_j = exp(z_j - lse) (notation of
 * xent.c):
 *   dz_j = c [ (1-a) w_y (p_j - [j=y]) + (a/V)(p_j Wc - w_j) + 2 zc lse p_j ]
 *        = p_j c [ (1-a) w_y + (a/V) Wc + 2 zc lse ] - c (a/V) w_j - [j=y] c (1-a) w_y
 *   with c = g / W (mean), g (sum) or g_n (none). When overwriting, padding rows are set to
 *   exactly 0 (when accumulating they are left as they are); their logits are never read.
 *   The target's entry is computed on its own in double (nb_xent_target_grad). */
#include <math.h>
#include <string.h>

#include "../ops/ops_internal.h"
#include "xent_internal.h"

/* What every row's gradient needs, fixed for the call. */
typedef struct bwd_ctx {
    const nb_xent_simd *k;
    const nb_tensor *z, *tgt, *probs;
    const nb_xent_opts *o;
    const double *lse_in, *shift_in;
    const void *dloss;
    double a, Wc, W;
    int64_t V;
    bool accumulate, f64, fast;
} bwd_ctx;

/* One real row's coefficients: dz_j = base p_j - sw q_j - [j=y] hit, where for hard targets
 * q = w and for soft targets the whole target term is folded into q_j = w_j t'_j; vy is the
 * target's entry (y = -1 for soft targets). */
typedef struct bwd_row {
    double m, logs, base, sw, vy;
    int64_t y;
} bwd_row;

/* c for row n: upstream g (1 when dloss is NULL, per row for NB_REDUCTION_NONE) over W */
static double row_upstream(const bwd_ctx *b, int64_t n)
{
    double g = 1.0;
    if (b->dloss) {
        int64_t i = b->o->reduction == NB_REDUCTION_NONE ? n : 0;
        g = b->f64 ? ((const double *)b->dloss)[i] : ((const float *)b->dloss)[i];
    }
    return b->W != 0.0 ? g / b->W : 0.0;
}

/* q_j of a soft row: w_j ((1-a) t_j + a/V) */
static double soft_q(const bwd_ctx *b, int64_t n, int64_t j)
{
    return nb_xent_weight_at(b->o, j) *
           ((1.0 - b->a) * nb_xent_float_at(b->probs, n * b->V + j) + b->a / (double)b->V);
}

static void row_coefs(const bwd_ctx *b, int64_t n, double c, bwd_row *r)
{
    const nb_xent_opts *o = b->o;
    int64_t V = b->V;
    double a = b->a;
    /* p_j = exp((z_j - m) - log s); given only lse, m = lse and log s = 0 */
    if (b->shift_in)
        r->m = b->shift_in[2 * n], r->logs = b->shift_in[2 * n + 1];
    else if (b->lse_in)
        r->m = b->lse_in[n], r->logs = 0.0;
    else
        nb_xent_row_shift(b->k, b->z, n, V, &r->m, &r->logs);
    double lse = r->m + r->logs;
    r->y = b->probs ? -1 : nb_xent_target_at(b->tgt, n);
    r->vy = 0.0;
    if (b->probs) {
        double sq = 0.0;
        for (int64_t j = 0; j < V; j++)
            sq += soft_q(b, n, j);
        r->base = c * (sq + 2.0 * o->z_loss * lse);
        r->sw = c;
        return;
    }
    double wy = nb_xent_weight_at(o, r->y);
    double hit = c * (1.0 - a) * wy, rest = c * (a / (double)V * b->Wc + 2.0 * o->z_loss * lse);
    r->base = c * ((1.0 - a) * wy + a / (double)V * b->Wc + 2.0 * o->z_loss * lse);
    r->sw = c * a / (double)V;
    r->vy = nb_xent_target_grad(nb_xent_float_at(b->z, n * V + r->y), r->m, r->logs, hit, rest,
                                r->sw * wy);
}

static void row_f64(const bwd_ctx *b, int64_t n, const bwd_row *r, double *d)
{
    const double *x = (const double *)b->z->data + n * b->V;
    double old_y = r->y >= 0 && b->accumulate ? d[r->y] : 0.0;
    for (int64_t j = 0; j < b->V; j++) {
        double q = b->probs ? soft_q(b, n, j) : nb_xent_weight_at(b->o, j);
        double v = r->base * exp((x[j] - r->m) - r->logs) - r->sw * q;
        d[j] = b->accumulate ? d[j] + v : v;
    }
    if (r->y >= 0)
        d[r->y] = old_y + r->vy;
}

static void row_f32(const bwd_ctx *b, int64_t n, const bwd_row *r, float *d)
{
    int64_t V = b->V;
    /* z_j - lse = (z_j - c) - r with c = m rounded to f32 (exact when m is the row max) and
     * r = (m - c) + log s: both steps are accurate in f32 even when |lse| is large (an f32 lse
     * near 1000 alone carries an error of 3e-5). */
    const float c32 = (float)r->m, r32 = (float)((r->m - (double)c32) + r->logs);
    const float fb = (float)r->base, fsw = (float)r->sw;
    float old_y = r->y >= 0 && b->accumulate ? d[r->y] : 0.0f;
    if (b->fast) {
        const float *w = b->o->weight ? (const float *)b->o->weight->data : NULL;
        float ctmp[b->z->dtype == NB_F32 ? 1 : NB_XCHUNK];
        for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
            int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
            const float *x = nb_xent_load_f32(b->k, b->z, n * V + j0, cnt, ctmp);
            b->k->grad(d + j0, x, cnt, c32, r32, fb, fsw, w ? w + j0 : NULL, b->accumulate);
        }
    } else {
        float tmp[NB_XBLK];
        for (int64_t j0 = 0; j0 < V; j0 += NB_XBLK) {
            int64_t cnt = V - j0 < NB_XBLK ? V - j0 : NB_XBLK;
            const float *x = nb_xent_load_f32(b->k, b->z, n * V + j0, cnt, tmp);
            for (int64_t i = 0; i < cnt; i++) {
                float q = 1.0f;
                if (b->o->weight || b->probs)
                    q = (float)(b->probs ? soft_q(b, n, j0 + i) : nb_xent_weight_at(b->o, j0 + i));
                float v = fb * expf((x[i] - c32) - r32) - fsw * q;
                d[j0 + i] = b->accumulate ? d[j0 + i] + v : v;
            }
        }
    }
    if (r->y >= 0)
        d[r->y] = old_y + (float)r->vy;
}

static bwd_ctx bwd_setup(bool accumulate, const nb_tensor *z, const nb_tensor *tgt,
                         const nb_tensor *probs, const nb_xent_opts *o, const double *lse_in,
                         const double *shift_in, const void *dloss)
{
    int64_t V = z->shape[z->ndim - 1];
    bwd_ctx b = {.k = nb_xent_simd_get(), /* resolved here, before the parallel region */
                 .z = z,
                 .tgt = tgt,
                 .probs = probs,
                 .o = o,
                 .lse_in = lse_in,
                 .shift_in = shift_in,
                 .dloss = dloss,
                 .a = o->label_smoothing,
                 .Wc = nb_xent_class_weight_sum(o, V),
                 .W =
                     o->reduction == NB_REDUCTION_MEAN ? nb_xent_normaliser(z, tgt, probs, o) : 1.0,
                 .V = V,
                 .accumulate = accumulate,
                 .f64 = z->dtype == NB_F64,
                 .fast = !probs && (!o->weight || o->weight->dtype == NB_F32)};
    return b;
}

/* Row n's gradient dz (the row's V entries, compute dtype) for upstream c over W: zeros for
 * padding (when overwriting), else the row's coefficients and the streaming loop. */
static void grad_row(const bwd_ctx *b, int64_t n, double c, void *dz)
{
    if (!nb_xent_keep(b->o, b->probs ? NULL : b->tgt, n) || c == 0.0) {
        if (!b->accumulate)
            memset(dz, 0, (b->f64 ? sizeof(double) : sizeof(float)) * (size_t)b->V);
        return;
    }
    bwd_row r;
    row_coefs(b, n, c, &r);
    if (b->f64)
        row_f64(b, n, &r, dz);
    else
        row_f32(b, n, &r, dz);
}

/* Row n's slice of dz. */
static void *dz_row(const bwd_ctx *b, void *dz, int64_t n)
{
    return b->f64 ? (void *)((double *)dz + n * b->V) : (void *)((float *)dz + n * b->V);
}

nb_status nb_xent_backward_impl(void *dz, bool accumulate, const nb_tensor *z, const nb_tensor *tgt,
                                const nb_tensor *probs, const nb_xent_opts *o, const double *lse_in,
                                const double *shift_in, const void *dloss)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    bwd_ctx b = bwd_setup(accumulate, z, tgt, probs, o, lse_in, shift_in, dloss);
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (N * V >= NB_XPAR_MIN_ELEMS && N > 1)
    for (int64_t n = 0; n < N; n++)
        grad_row(&b, n, row_upstream(&b, n), dz_row(&b, dz, n));
    return NB_OK;
}

/* The graph op's one pass. Per row: the forward's shift and loss (nb_xent_forward_impl's loop
 * body), then the backward's row for upstream 1 (nb_xent_backward_impl's, overwriting), which
 * reads the row again while it is still in cache: memory sees one read of the logits and one
 * write of dz, where the two passes read the logits twice. */
void nb_xent_forward_grad_impl(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                               const nb_xent_opts *o, nb_tensor *loss, double *shift_out,
                               double *scratch, void *dz, nb_xent_stats *st_out)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    bwd_ctx b = bwd_setup(false, z, tgt, probs, o, NULL, shift_out, NULL);
    double *rowL = scratch, *rowZ = scratch + N;
    int nt = nb_kernel_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (N * V >= NB_XPAR_MIN_ELEMS && N > 1)
    for (int64_t n = 0; n < N; n++) {
        double L = 0.0, zl = 0.0, m = 0.0, logs = 0.0;
        if (nb_xent_keep(o, probs ? NULL : tgt, n)) {
            nb_xent_row_shift(b.k, z, n, V, &m, &logs);
            double lse = m + logs;
            zl = o->z_loss * lse * lse;
            L = nb_xent_row_loss(b.k, z, tgt, probs, n, V, m, logs, o, b.Wc) + zl;
        }
        rowL[n] = L;
        rowZ[n] = zl;
        shift_out[2 * n] = m, shift_out[2 * n + 1] = logs;
        grad_row(&b, n, row_upstream(&b, n), dz_row(&b, dz, n));
    }
    nb_xent_finish(o, tgt, probs != NULL, N, rowL, rowZ, loss, st_out);
}

static nb_status backward_entry(nb_tensor *dlogits, const nb_tensor *logits, const nb_tensor *tgt,
                                bool soft, const nb_xent_opts *opts, const nb_tensor *lse,
                                const nb_tensor *dloss)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = nb_xent_check(logits, tgt, soft, o);
    if (s != NB_OK)
        return s;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    s = nb_xent_check_out("dlogits", dlogits, ct, logits->numel, logits);
    if (s == NB_OK && !nb_shape_equal(dlogits, logits))
        s = nb_error(NB_ERR_SHAPE, "cross_entropy: dlogits %s must have the logits' shape %s",
                     nb_shp(dlogits), nb_shp(logits));
    if (s == NB_OK && lse)
        s = nb_xent_check_out("lse", lse, NB_F64, N, logits);
    if (s == NB_OK && dloss)
        s = nb_xent_check_out("dloss", dloss, ct, o->reduction == NB_REDUCTION_NONE ? N : 1,
                              logits);
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
