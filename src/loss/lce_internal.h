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
} lce_ctx;

/* Per-row running state of the online log-sum-exp over the tiles (as row_shift_f32 in xent.c:
 * s = ones + below), the target's logit and, with smoothing, sum_c w_c z_c. */
typedef struct lce_row {
    double m, below, zy, swz, R; /* R: the first finite tile's max, swz = sum w_c (R - z_c) */
    int64_t ones;
    bool nan;
} lce_row;

/* ---- lce.c ---- */

/* Checks every argument (x, w, b, targets, opts) and says what is wrong ("linear_cross_entropy:
 * ..."), then fills c. */
nb_status nb_lce_setup(lce_ctx *c, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b,
                       const nb_tensor *tgt, const nb_lce_opts *o);
/* Row-block size: the tiled path's (BR x TV, about 4 MiB), or with one_pass a block of BR x V
 * (at most 16 MiB and N / 8 rows). */
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
 * row scratch 2N doubles; work: BR x TV compute-dtype logits and BR lce_row. */
void nb_lce_forward(const lce_ctx *c, nb_tensor *loss, double *shift, double *rows, void *work,
                    lce_row *st, nb_xent_stats *stats);

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
/* gx [N,D] += dz x W_tile, gw[v0 ..) += dz^T x_blk, gb[v0 ..) += column sums (any may be NULL). */
void nb_lce_accumulate(const lce_ctx *c, int64_t r0, int64_t nr, int64_t v0, int64_t nv,
                       const void *dz, void *gx, void *gw, void *gb);
/* The recompute backward for upstream dloss (NULL: 1); work as nb_lce_forward, cf BR doubles. */
void nb_lce_backward(const lce_ctx *c, const double *shift, const void *dloss, void *work,
                     double *cf, void *gx, void *gw, void *gb);
/* The one pass: loss and (upstream 1) gradients, per block of BR rows with a BR x V buffer
 * work; rows and shift as nb_lce_forward, cf BR doubles. */
void nb_lce_one_pass(const lce_ctx *c, nb_tensor *loss, double *shift, double *rows, void *work,
                     lce_row *st, double *cf, void *gx, void *gw, void *gb, nb_xent_stats *stats);

#endif
