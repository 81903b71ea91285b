/* xent_fused.c - the fused cross-entropy's forward and backward in one pass over each row, and
 * the caller workspace that lets a steady loop of it allocate nothing.
 *
 * Workspace layout (nb_xent_workspace_size): up to 63 bytes to reach a 64-byte boundary, then
 * 4N doubles (the fast path uses 2N of them for the row losses and their z-loss parts; the
 * general path uses 2N for the row shifts (m, log s) and 2N as the forward's scratch), then one
 * scratch row of V floats per thread, each starting on a 64-byte boundary. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../ops/ops_internal.h"
#include "xent_internal.h"

#define FB_MAX_CHUNKS 512 /* rows up to 512 x NB_XCHUNK logits take the one-exp path */

/* One real row, f32 arithmetic, hard target, f32 or no weights. The forward pass stores
 * e_j = exp(z_j - m_c) into a per-thread scratch row e (m_c = the running max when chunk c was
 * read; the scratch stays in cache from row to row); the second pass turns it into the gradient
 *   dz_j = base e_j exp(m_c - m - log s) - sw w_j
 * written with streaming stores. Each logit costs one exp, and memory sees one read of z and one
 * write of dz. The target's entry is not written by that loop: it is computed on its own in
 * double (nb_xent_target_grad) and stored between the two halves of its chunk. It cannot be folded
 * into e_y: the chunk's scale exp(m_c - m - log s) is a subnormal or zero f32 when m_c is 89 or
 * more below m, and e_y - hit / scale then overflows to -inf. Returns L_n; *zl gets its z-loss
 * part. */
static double fused_row_f32(const nb_xent_simd *k, const nb_tensor *z, const nb_tensor *tgt,
                            const nb_xent_opts *o, int64_t n, int64_t V, double c, double Wc,
                            float *d, float *e, double *zl)
{
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
        const float *x = nb_xent_load_f32(k, z, n * V + j0, cnt, tmp);
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
    double a = o->label_smoothing, logs = nb_xent_log_s((double)m, ones, below),
           lse = (double)m + logs;
    int64_t y = nb_xent_target_at(tgt, n);
    double wy = nb_xent_weight_at(o, y), zy = nb_xent_float_at(z, n * V + y);
    double L = nb_xent_weighted((1.0 - a) * wy, ((double)m - zy) + logs);
    if (a > 0.0) {
        double acc = 0.0;
        for (int64_t j0 = 0; j0 < V; j0 += NB_XCHUNK) {
            int64_t cnt = V - j0 < NB_XCHUNK ? V - j0 : NB_XCHUNK;
            const float *x = nb_xent_load_f32(k, z, n * V + j0, cnt, tmp);
            acc += k->sumdiff(x, cnt, m, w ? w + j0 : NULL);
        }
        L += a / (double)V * (acc + Wc * logs);
    }
    *zl = o->z_loss * lse * lse;
    L += *zl;
    double hit = c * (1.0 - a) * wy, rest = c * (a / (double)V * Wc + 2.0 * o->z_loss * lse);
    double base = hit + rest, swd = c * a / (double)V;
    float sw = (float)swd;
    float vy =
        (float)nb_xent_target_grad(zy, (double)m, logs, hit, rest, swd * (w ? (double)w[y] : 1.0));
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

/* ---- the workspace ---- */

#define WS_ALIGN 64

static size_t round_up(size_t b)
{
    return (b + WS_ALIGN - 1) & ~(size_t)(WS_ALIGN - 1);
}

/* the doubles part, without the alignment slack */
static size_t ws_doubles(int64_t N)
{
    return round_up(sizeof(double) * 4 * (size_t)(N ? N : 1));
}

/* one thread's scratch row */
static size_t ws_row(int64_t V)
{
    return round_up(sizeof(float) * (size_t)V);
}

static int max_threads(void)
{
    return nb_kernel_threads();
}

static int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

size_t nb_xent_workspace_size(const nb_tensor *logits)
{
    nb_status s = nb_check_tensor("nb_xent_workspace_size", "logits", logits);
    if (s == NB_OK && (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1))
        s = nb_error(NB_ERR_SHAPE, "nb_xent_workspace_size: logits %s have no class dimension",
                     nb_shp(logits));
    if (s != NB_OK)
        return 0;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    return WS_ALIGN + ws_doubles(N) + (size_t)max_threads() * ws_row(V);
}

/* ---- the fused pass ---- */

/* Validated inputs, f32 compute, hard targets, f32 or no weights, V <= FB_MAX_CHUNKS chunks.
 * dbl: 2N doubles; rows: `slots` scratch rows of ws_row(V) bytes, 64-byte aligned. */
static void fused_rows(const nb_tensor *logits, const nb_tensor *targets, const nb_xent_opts *o,
                       nb_tensor *loss, nb_tensor *dlogits, nb_xent_stats *stats, double *dbl,
                       char *rows, int slots)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    const nb_xent_simd *k = nb_xent_simd_get(); /* resolved here, before the parallel region */
    /* The mean's normaliser depends on the targets only, so it is known before any row is
     * read, and each row's gradient is finished while the row is in cache. */
    double W =
        o->reduction == NB_REDUCTION_MEAN ? nb_xent_normaliser(logits, targets, NULL, o) : 1.0;
    double c = W != 0.0 ? 1.0 / W : 0.0, Wc = nb_xent_class_weight_sum(o, V);
    double *rowL = dbl, *rowZ = dbl + N;
    float *dz = dlogits->data;
    int nt = max_threads() < slots ? max_threads() : slots; /* one scratch row per thread */
    (void)nt;
#pragma omp parallel num_threads(nt) if (N * V >= NB_XPAR_MIN_ELEMS && N > 1)
    {
        float *e = (float *)(rows + (size_t)thread_num() * ws_row(V)); /* this thread's row */
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            rowL[n] = rowZ[n] = 0.0;
            if (!nb_xent_keep(o, targets, n))
                memset(dz + n * V, 0, sizeof(float) * (size_t)V);
            else
                rowL[n] =
                    fused_row_f32(k, logits, targets, o, n, V, c, Wc, dz + n * V, e, &rowZ[n]);
        }
    }
    nb_xent_finish(o, targets, false, N, rowL, rowZ, loss, stats);
}

static nb_status check_fb(const nb_tensor *logits, const nb_tensor *targets, const nb_xent_opts *o,
                          const nb_tensor *loss, const nb_tensor *dlogits)
{
    nb_status s = nb_xent_check(logits, targets, false, o);
    if (s != NB_OK)
        return s;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    s = nb_xent_check_out("loss", loss, ct, o->reduction == NB_REDUCTION_NONE ? N : 1, logits);
    if (s == NB_OK)
        s = nb_xent_check_out("dlogits", dlogits, ct, logits->numel, logits);
    if (s == NB_OK && !nb_shape_equal(dlogits, logits))
        s = nb_error(NB_ERR_SHAPE, "cross_entropy: dlogits %s must have the logits' shape %s",
                     nb_shp(dlogits), nb_shp(logits));
    return s;
}

/* Checked inputs; ws of ws_bytes (>= the minimum) laid out as the file's comment says. */
static nb_status run_fb(const nb_tensor *logits, const nb_tensor *targets, const nb_xent_opts *o,
                        nb_tensor *loss, nb_tensor *dlogits, nb_xent_stats *stats, char *ws,
                        size_t ws_bytes)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    char *base = ws + ((WS_ALIGN - (uintptr_t)ws % WS_ALIGN) % WS_ALIGN);
    double *dbl = (double *)(void *)base;
    char *rows = base + ws_doubles(N);
    size_t left = ws_bytes - (size_t)(rows - ws);
    bool fast = nb_dtype_compute(logits->dtype) == NB_F32 &&
                (!o->weight || o->weight->dtype == NB_F32) &&
                V <= (int64_t)FB_MAX_CHUNKS * NB_XCHUNK;
    if (fast) {
        fused_rows(logits, targets, o, loss, dlogits, stats, dbl, rows,
                   (int)(left / ws_row(V) < INT32_MAX ? left / ws_row(V) : INT32_MAX));
        return NB_OK;
    }
    /* forward, then backward with the saved shifts */
    nb_status s =
        nb_xent_forward_impl(logits, targets, NULL, o, loss, NULL, dbl, dbl + 2 * N, stats);
    if (s == NB_OK)
        s = nb_xent_backward_impl(dlogits->data, false, logits, targets, NULL, o, NULL, dbl, NULL);
    return s;
}

/* Both entry points: ws NULL allocates a workspace for this call (one malloc, freed here). */
static nb_status fb_entry(const char *fn, const nb_tensor *logits, const nb_tensor *targets,
                          const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits,
                          nb_xent_stats *stats, void *ws, size_t ws_bytes)
{
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = check_fb(logits, targets, o, loss, dlogits);
    if (s != NB_OK)
        return nb_error_in(fn, s);
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    size_t need = WS_ALIGN + ws_doubles(N) + ws_row(V);
    if (ws && ws_bytes < need)
        return nb_error(NB_ERR_ARG,
                        "%s: workspace of %zu bytes is too small for logits %s: needs at least %zu "
                        "(nb_xent_workspace_size gives the size for every thread)",
                        fn, ws_bytes, nb_shp(logits), need);
    if (ws)
        return run_fb(logits, targets, o, loss, dlogits, stats, ws, ws_bytes);
    size_t bytes = nb_xent_workspace_size(logits);
    char *own = malloc(bytes);
    if (!own)
        return nb_error(NB_ERR_NOMEM, "%s: out of memory for a %zu-byte workspace (logits %s)", fn,
                        bytes, nb_shp(logits));
    s = run_fb(logits, targets, o, loss, dlogits, stats, own, bytes);
    free(own);
    return s;
}

nb_status nb_xent_forward_backward_ws(const nb_tensor *logits, const nb_tensor *targets,
                                      const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits,
                                      nb_xent_stats *stats, void *ws, size_t ws_bytes)
{
    return fb_entry("nb_xent_forward_backward_ws", logits, targets, opts, loss, dlogits, stats, ws,
                    ws_bytes);
}

nb_status nb_xent_forward_backward(const nb_tensor *logits, const nb_tensor *targets,
                                   const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits,
                                   nb_xent_stats *stats)
{
    return fb_entry("nb_xent_forward_backward", logits, targets, opts, loss, dlogits, stats, NULL,
                    0);
}
