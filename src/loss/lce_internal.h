/* lce_internal.h - what the fused linear + cross-entropy files share (lce.c: checks, tiles,
 * forward; lce_backward.c: the recompute backward and the one pass; lce_op.c: the graph op;
 * lce_ref.c: the reference). Not installed.
 *
 * Notation (as xent.c): a row n has logits z_n = cap(x_n W^T + b) over V classes, target y_n,
 * keep_n, weights w_c (1 without), Wc = sum_c w_c, smoothing a, z-loss zc, lse = m + log s. */
#ifndef NABLA_LCE_INTERNAL_H
#define NABLA_LCE_INTERNAL_H

#include "nabla/lce.h"
#include "xent_internal.h"

/* The problem, fixed for a call: validated inputs and the sizes. */
typedef struct lce_ctx {
    const nb_tensor *x, *w, *b, *tgt;
    const nb_xent_opts *o;
    const nb_xent_simd *k;
    double cap, Wc, W;       /* soft-cap (0: none), sum of class weights, the mean's normaliser */
    int64_t N, D, V, BR, TV; /* rows, features, classes, rows per block, classes per tile */
    bool f64, filter;        /* filter: skip negligible tiles in the recompute backward */
    /* Vocabulary parallelism: this process holds the classes [off, off + V) of Vt (Vt = V, off
     * = 0 when not sharded). Wc and W are global (over all Vt classes and all targets), Wl the
     * sum of the slice's weights. TVb: the tile width the block size is chosen from (from N and
     * Vt only, so every rank takes the same blocks). reduce non-NULL: sharded. */
    int64_t off, Vt, TVb;
    double Wl;
    nb_lce_allreduce_fn reduce;
    void *reduce_ctx;
} lce_ctx;

/* Per-row running state of the online log-sum-exp over the tiles (as row_shift_f32 in xent.c:
 * s = ones + below), the target's logit and, with smoothing, sum_c w_c z_c. */
typedef struct lce_row {
    double m, below, zy, swz, R; /* R: the first finite tile's max, swz = sum w_c (R - z_c) */
    int64_t ones;
    bool nan;
} lce_row;

/* Scratch the kernels use, sized by the op (BR rows): the tile of logits (BR x TV, or BR x V for
 * the one pass), row states, coefficients; when sharded, the per-row reduction buffer (6 BR
 * doubles) and, when dL/dx is wanted, this rank's part of a block's dL/dx (BR x D). */
typedef struct lce_scratch {
    void *tile;
    lce_row *st;
    double *cf, *red;
    void *dxb;
} lce_scratch;

/* The target of row n as an index into this process's slice (outside [0, V) when another rank
 * holds it, or for padding). */
static inline int64_t nb_lce_y(const lce_ctx *c, int64_t n)
{
    return nb_xent_target_at(c->tgt, n) - c->off;
}

/* Weight of the slice's class j (global class off + j). */
static inline double nb_lce_w(const lce_ctx *c, int64_t j)
{
    return nb_xent_weight_at(c->o, c->off + j);
}

/* ---- lce.c ---- */

/* Checks every argument (x, w, b, targets, opts) and says what is wrong ("linear_cross_entropy:
 * ..."), then fills c. */
nb_status nb_lce_setup(lce_ctx *c, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b,
                       const nb_tensor *tgt, const nb_lce_opts *o);
/* Row-block size: the tiled path's (BR x TV, about 4 MiB), or with one_pass a block of BR x V
 * (at most 16 MiB and N / 8 rows, or 1 MiB when N / 8 rows are less). */
int64_t nb_lce_block_rows(const lce_ctx *c, const nb_lce_opts *o, bool one_pass);
/* z[nr, nv] (leading dim nv) = cap(x[r0 .. r0+nr) W[v0 .. v0+nv)^T + b[v0 ..)), compute dtype. */
void nb_lce_logits(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv, void *z);
/* Folds the nv logits z (classes v0 ..) of row n into its running state. */
void nb_lce_fold(const lce_ctx *c, int64_t n, const void *z, int64_t v0, int64_t nv, lce_row *st);
/* The loss L_n of a real row from its folded state; *m, *logs get its shift (lse = m + log s),
 * *zl its z-loss part. */
double nb_lce_row_loss(const lce_ctx *c, int64_t n, const lce_row *st, double *m, double *logs,
                       double *zl);
/* The tiled forward: loss (as nb_cross_entropy), shift (2N: m, log s per row, 0 for padding),
 * row scratch 2N doubles; sc: tile (BR x TV), st, red when sharded. Fails only when the
 * reduction does. */
nb_status nb_lce_forward(const lce_ctx *c, nb_tensor *loss, double *shift, double *rows,
                         const lce_scratch *sc, nb_xent_stats *stats);

/* ---- lce_shard.c ---- */

/* Sharded: combines the block's row states st[0 .. nr) (rows r0 ..) folded over this rank's
 * slice into the states over all classes, identical on every rank (two reductions: a MAX of
 * 2 nr doubles, a SUM of 4 nr). red: 6 nr doubles. */
nb_status nb_lce_combine(const lce_ctx *c, int64_t r0, int64_t nr, lce_row *st, double *red);
/* Sharded: dxb [nr,D] (this rank's part of the block's dL/dx) summed over the ranks, then
 * added to gx_blk [nr,D]. */
nb_status nb_lce_reduce_dx(const lce_ctx *c, int64_t nr, void *dxb, void *gx_blk);

/* ---- lce_backward.c ---- */

/* Coefficient c_n of row n: upstream g (dloss NULL: 1; per row for reduction none) / W (1 for
 * sum and none); 0 for padding. */
double nb_lce_upstream(const lce_ctx *c, int64_t n, const void *dloss);
/* dL/dz of rows [r0, r0+nr) over classes [v0, v0+nv), in place over their logits z (leading dim
 * nv), with cf[i] = c_n of row r0+i and shift from the forward; padding rows (cf 0) get 0.
 * Returns false when c->filter is set and the tile is negligible (see nb_lce_opts.grad_filter;
 * z is then left as the logits). */
bool nb_lce_dz(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv, void *z,
               const double *cf, const double *shift);
/* gx_blk [nr,D] (the block's rows of dL/dx) += dz W_tile, gw[v0 ..) += dz^T x_blk, gb[v0 ..)
 * += column sums (any may be NULL). */
void nb_lce_accumulate(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv,
                       const void *dz, void *gx, void *gw, void *gb);
/* The recompute backward for upstream dloss (NULL: 1); sc: tile, cf, dxb when sharded. */
nb_status nb_lce_backward(const lce_ctx *c, const double *shift, const void *dloss,
                          const lce_scratch *sc, void *gx, void *gw, void *gb);
/* The one pass: loss and (upstream 1) gradients, per block of BR rows with a BR x V tile; rows
 * and shift as nb_lce_forward; sc: every field (red and dxb when sharded). */
nb_status nb_lce_one_pass(const lce_ctx *c, nb_tensor *loss, double *shift, double *rows,
                          const lce_scratch *sc, void *gx, void *gw, void *gb,
                          nb_xent_stats *stats);

#endif
