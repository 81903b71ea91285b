/* nabla/lce.h - the fused linear + cross-entropy head: the loss of logits z = x W^T + b without
 * ever holding z.
 *
 * x [N,D] (or [B,T,D]), W [V,D] (PyTorch's Linear weight: out x in), b [V] or NULL, targets [N]
 * (or [B,T]). With the optional soft-cap c > 0 the logits are z = c tanh((x W^T + b) / c) (as
 * Gemma and Liger do); the loss is then nb_cross_entropy(z, targets, opts->xent), every option
 * included (ignore_index, mask, smoothing, class weights, mean/sum/none, normaliser, stats,
 * z-loss), and the result equals the unfused Linear + nb_cross_entropy up to rounding.
 *
 * Memory beyond inputs, outputs and gradients: O(N + block), never O(N V):
 *   forward   per block of rows, the vocabulary in tiles: z_tile = x_blk W_tile^T + b_tile (one
 *             GEMM), folded into a running max and sum of exps per row (online log-sum-exp); the
 *             target's logit is picked up when its tile passes. Saves (m, log s) per row.
 *   backward  recomputes each tile's logits, turns them into dL/dz in place, then
 *             dx_blk += dz W_tile, dW_tile += dz^T x_blk, db_tile += column sums of dz.
 * The derivation and the memory bound are in docs/fused-linear-xent.md.
 *
 * One pass (opts->one_pass): the usual training step differentiates this loss as the root of
 * backward with upstream gradient 1. Then the forward does it all per block of rows: the block's
 * logits for every class (one GEMM into a block x V buffer), lse, dL/dz in place, dx and dW/db
 * right away (three GEMMs in all, as the unfused path; O(block x V) memory), into arena buffers
 * the size of x, W and b (as Liger keeps grad_input and grad_weight). nb_backward then adds g
 * times them for a scalar upstream g (an op output x with no gradient yet takes the buffer as its
 * gradient when g = 1: no copy); a per-row upstream (reduction none) that is not all ones falls
 * back to the recompute path. Gradients equal those without one_pass for every upstream; the cost
 * is the saved gradient of W (V x D) held from the forward to the backward. Without grad
 * recording (or when no input requires grad) one_pass is ignored. */
#ifndef NABLA_LCE_H
#define NABLA_LCE_H

#include "loss.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Vocabulary parallelism: the classes split across P processes (ranks), each holding a slice
 * W[off .. off+V) of the classifier (and of b), every rank seeing all N rows of x and all targets
 * (global class indices in [0, classes_total)). Each rank computes its own tiles; the per-row
 * values that span the vocabulary (max, sum of exps, target logit, the smoothing sum) and dL/dx
 * are combined through a reduction the caller supplies (an MPI_Allreduce over the ranks, say;
 * the library itself knows nothing of MPI). Loss and dL/dx come out equal on every rank, dL/dW
 * and dL/db for the rank's own slice, and they equal the single-process ones up to rounding
 * (docs/fused-linear-xent.md, "Vocabulary-parallel").
 *
 * The reduction: combine buf[0 .. n) elementwise across all ranks in place (every rank gets the
 * result), dtype NB_F64 for the per-row values or x's dtype for dL/dx, op SUM or MAX. It is
 * called collectively: every rank makes the same calls in the same order with the same n, which
 * holds when every rank passes the same x shape, targets, mask, options (block_rows and
 * tile_classes included; the default block sizes depend only on N and classes_total) and the
 * same requires_grad on x. A non-NB_OK return is the loss's error (the ranks are then out of
 * step: stop them all). The gradients are then partial: with leaf_grads_in_forward a failed
 * forward (NULL) may already have added the finished blocks' share into the leaves' gradients,
 * as a failed nb_backward may have; zero them before any further step. */
typedef enum nb_lce_reduce_op { NB_LCE_SUM, NB_LCE_MAX } nb_lce_reduce_op;
typedef nb_status (*nb_lce_allreduce_fn)(void *buf, int64_t n, nb_dtype dtype, nb_lce_reduce_op op,
                                         void *ctx);

typedef struct nb_lce_opts {
    nb_xent_opts xent; /* the cross-entropy's options (nb_xent_defaults) */
    double softcap;    /* c > 0: z = c tanh(z / c); 0 = no cap */
    bool one_pass;     /* gradients during the forward (see above); default false */
    /* With one_pass: a leaf input (W, b, or x when it is a leaf) that requires grad gets its
     * gradient for upstream 1 added into its own gradient buffer during the forward instead of a
     * saved copy, so the one pass holds no V x D buffer: O(block x V) beyond inputs, outputs and
     * gradients (docs/fused-linear-xent.md). The backward then adds nothing for an upstream of
     * exactly 1 and corrects any other upstream g by the recompute path with g - 1 (gradients
     * equal up to rounding). The contract (why it is not the default): nb_backward from a root
     * that depends on this loss follows before those gradients are read or zeroed; a forward
     * without that backward (a graph reset, nb_backward of another root, a zero_grad in
     * between) leaves the forward's contribution in the leaves' gradients, or loses it. A
     * training step (zero_grad, forward, backward, step) keeps it. Default false. */
    bool leaf_grads_in_forward;
    /* Gradient filtering (as Cut Cross-Entropy does), recompute backward only, default false: a
     * tile whose probabilities p = softmax(z) are all below 2^-24 (f32 resolution next to 1) in
     * every row, holding no row's target, is skipped (no dx/dW/db GEMMs). Only without label
     * smoothing (its gradient a/V w_j does not vanish with p); the dropped gradient is at most
     * 2^-24 c_n |base_n| per entry. */
    bool grad_filter;
    int64_t block_rows;   /* rows per block (BR), 0 = chosen: a tile of BR x TV logits is ~4 MiB,
                             a one-pass block of BR x V at most 16 MiB and N / 8 rows (or 1
                             MiB), a multiple of 16 rows when above 16 */
    int64_t tile_classes; /* classes per vocabulary tile (TV) of the tiled path, 0 = chosen:
                             4 MiB / (BR or N rows), within [256, 2048] */
    /* Vocabulary parallelism (above). classes_total 0: not sharded, this process holds every
     * class (class_offset must be 0, allreduce is not called). classes_total > 0: W is the rows
     * [class_offset, class_offset + V) of a classifier of classes_total classes; allreduce is
     * required. Targets are global (range-checked against classes_total; a target outside the
     * slice is normal). xent.weight, when given, is the FULL [classes_total] vector on every
     * rank (each rank needs the weight of every target for the mean's normaliser and the sum of
     * all weights for smoothing); the normaliser W counts the global real tokens, which every
     * rank knows from the targets. label_smoothing spreads a over classes_total classes. */
    int64_t class_offset;
    int64_t classes_total;
    nb_lce_allreduce_fn allreduce;
    void *allreduce_ctx; /* passed to allreduce as ctx */
} nb_lce_opts;

/* nb_xent_defaults, no cap, no one pass, block and tile sizes chosen by the op. */
nb_lce_opts nb_lce_defaults(void);

/* The op on a graph. x f32 or f64 [N,D] or [B,T,D]; W [V,D] and b [V] (or NULL) of x's dtype;
 * targets i32/i64 shaped like x without the last dim. Returns the loss (shape [] for mean/sum,
 * targets' shape for none) in x's dtype, in the graph's arena. opts NULL = defaults. opts is
 * copied; targets, opts->xent.mask and opts->xent.weight are borrowed until nb_backward has
 * returned (or the graph is reset); opts->xent.stats is written during this call only. */
nb_tensor *nb_linear_cross_entropy(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                                   const nb_tensor *targets, const nb_lce_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
