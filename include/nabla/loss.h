/* nabla/loss.h - log-sum-exp, log-softmax, softmax and the fused cross-entropy.
 *
 * The numerical-stability argument in two lines:
 *   - never exponentiate an unshifted logit: exp(1000) overflows; exp(z - max z) <= 1 never does;
 *   - never take the log of a softmax: softmax(-1000 + ...) underflows to 0 and log(0) = -inf;
 *     log_softmax(z) = z - lse(z) is computed from z directly and stays finite.
 *
 * Cross-entropy from logits, one fused op (z = logits [N,V], y = targets [N], a = smoothing,
 * w = class weights (1 if none), keep_n = 0 for padding, l = log_softmax(z), lse_n = lse(z_n)):
 *
 *   L_n  = keep_n [ (1-a) w_{y_n} (-l_{n,y_n}) + (a/V) sum_c w_c (-l_{n,c}) + zc lse_n^2 ]
 *   mean = sum_n L_n / W,   W = sum_n keep_n w_{y_n}   (or the caller's normaliser)
 *   dL/dz_{n,j} = g/W keep_n [ (1-a) w_y (p_{n,j} - [j = y_n]) + (a/V)(p_{n,j} sum_c w_c - w_j)
 *                              + 2 zc lse_n p_{n,j} ],      p_{n,j} = exp(z_{n,j} - lse_n)
 *
 * Semantics are PyTorch's F.cross_entropy (weight, ignore_index, reduction, label_smoothing),
 * plus PaLM's z-loss (zc), with these deliberate differences:
 *   - a mean whose denominator W is 0 (a batch that is all padding, or whose real tokens' targets
 *     all have class weight 0) gives loss 0 and gradient 0: there is nothing to average over,
 *     even when smoothing makes the numerator non-zero (PyTorch: NaN). With a normaliser the
 *     numerator, smoothing terms included, is divided by it as usual;
 *   - padded rows are never read (NaN/inf there change nothing);
 *   - a term whose weight is 0 contributes 0 whatever its logit: a -inf logit in a class of
 *     weight 0 (its own target's, or any class with smoothing) gives the finite limit, not
 *     0 * inf = NaN, for every logits and weights dtype;
 *   - confident rows are more accurate: log s is taken as log1p of the off-max sum, so a
 *     per-token loss keeps ~1e-6 relative accuracy down to 1e-30 in f32 (PyTorch f32 computes
 *     log(1 + tiny): 1.19e-7 where the truth is 6.89e-8, 0 below 6e-8), and the target's
 *     gradient p_y - 1 = expm1(z_y - lse) keeps its digits too.
 *
 * The forward makes one pass per row (online log-sum-exp: running max and running sum of exp) and
 * saves only the row's shift m_n and log s_n (lse_n = m_n + log s_n, 2N numbers): no N x V
 * temporary. The backward rebuilds p on the fly and writes dL/dz directly.
 *
 * Ownership: the row kernels and the raw kernels borrow every tensor (and opts with its mask,
 * weight and stats) for the call only; their outputs are the caller's tensors, written in place.
 * The graph ops are the exception spelled out at nb_cross_entropy.
 *
 * dtypes: logits f16, bf16, f32 or f64. Arithmetic is f32 for f16/bf16/f32 and f64 for f64
 * (sums of exps over more than 256 logits, cross-row sums, and a smoothing sum that would
 * overflow f32 are accumulated in double). The gradient dL/dz is written in that compute
 * dtype (f32 for half logits): softmax - onehot has entries down to ~1e-10 that f16 flushes to
 * zero and an 11-bit mantissa cannot represent the difference of two near-equal probabilities,
 * so a half-precision gradient would throw away exactly what the fused op computed carefully;
 * mixed-precision training keeps fp32 gradients anyway. Convert if you need half storage.
 */
#ifndef NABLA_LOSS_H
#define NABLA_LOSS_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- row kernels (no graph), over the last dim of a f32/f64 tensor ---- */

/* out[r] = lse(z[r,:]), out has z's shape without the last dim (numel = rows), same dtype. */
nb_status nb_logsumexp_rows(const nb_tensor *z, nb_tensor *out);
/* out = z - lse(z), same shape and dtype as z. */
nb_status nb_log_softmax_rows(const nb_tensor *z, nb_tensor *out);
/* out = exp(z - lse(z)). */
nb_status nb_softmax_rows(const nb_tensor *z, nb_tensor *out);
/* The textbook log(softmax(z)) with softmax = exp(z) / sum exp(z), unshifted, in z's precision.
 * For teaching and for `nabla xent --naive` only: it overflows and underflows by design. */
nb_status nb_log_softmax_naive(const nb_tensor *z, nb_tensor *out);

/* ---- fused cross-entropy ---- */

typedef enum nb_reduction {
    NB_REDUCTION_MEAN = 0,
    NB_REDUCTION_SUM,
    NB_REDUCTION_NONE
} nb_reduction;

/* What a forward pass saw, so micro-batches, threads and ranks combine exactly:
 * total loss = sum over parts of loss_sum, divided by the sum over parts of weight_sum. */
typedef struct nb_xent_stats {
    double loss_sum;   /* sum_n L_n over real tokens (z-loss included) */
    double weight_sum; /* W: sum_n keep_n w_{y_n}; the real-token count when no weights */
    int64_t n_tokens;  /* real (non-padding) positions */
    double z_loss_sum; /* sum_n keep_n zc lse_n^2 (part of loss_sum) */
} nb_xent_stats;

typedef struct nb_xent_opts {
    int64_t ignore_index;    /* targets equal to this are padding (default -100) */
    const nb_tensor *mask;   /* optional, targets' shape, u8/bool/f32/f64: 0 = padding */
    const nb_tensor *weight; /* optional class weights [V], f32 or f64 */
    double label_smoothing;  /* a in [0, 1) */
    nb_reduction reduction;  /* mean (default), sum, none */
    double normaliser;       /* > 0: divide the mean by this instead of W (0 = use W) */
    double z_loss;           /* zc >= 0, PaLM's z-loss coefficient (default 0) */
    nb_xent_stats *stats;    /* optional out: filled by every forward */
    bool two_pass;           /* nb_cross_entropy(_soft) only: true = never compute dL/dz in the
                                forward (see there); raw kernels and nb_linear_cross_entropy
                                (its own one_pass) ignore it */
} nb_xent_opts;

/* ignore_index -100, mean, no mask/weight/smoothing/normaliser/z-loss, one pass in graphs. */
nb_xent_opts nb_xent_defaults(void);

/* Checks shapes, dtypes and options (and every real target's range) and says what is wrong. */
nb_status nb_xent_validate(const nb_tensor *logits, const nb_tensor *targets,
                           const nb_xent_opts *o);

/* The op on a graph. logits [N,V] or [B,T,V] (f16/bf16/f32/f64); targets i32/i64 shaped like
 * logits without the last dim. Returns the loss: shape [] for mean/sum, targets' shape for none,
 * in the compute dtype; it lives in the graph's arena (do not free it; stale after
 * nb_graph_reset). opts NULL = defaults. opts is copied, but targets, opts->mask and
 * opts->weight are borrowed: keep them alive and unchanged until nb_backward on this graph has
 * returned (or the graph is reset). opts->stats is written during this call only.
 *
 * One pass (the default): when the graph records gradients and the logits are an op's output
 * that requires grad (a Linear's, the usual training case), the forward also computes dL/dz for
 * an upstream gradient of 1, row by row while each row is in cache, into a buffer of the
 * logits' gradient size in the graph's arena. nb_backward then costs nothing when the loss's
 * upstream gradient is exactly 1 (every element, for reduction none) and the logits have no
 * gradient yet: the buffer becomes their gradient, no copy; it is added into the gradient when
 * one exists already (logits used twice). Any other upstream (a scaled loss) runs the two-pass
 * backward kernel, which reads the logits again: the buffer's work is then wasted (set
 * two_pass if a loss is always scaled). The same row functions run in the same order either
 * way, so loss and gradient are bitwise those of two passes. Memory: the gradient buffer now
 * lives from the forward to the backward instead of only in the backward; at a training step's
 * peak (after the loss's backward) logits and their gradient are both held either way, so the
 * peak is the same. Without gradients (evaluation, nb_graph_set_grad_enabled false, logits that
 * do not require grad) the forward is the plain one: no extra work or memory. Leaf logits (a
 * caller's tensor with a gradient buffer) keep two passes: adding a saved buffer into their
 * gradient moves as many bytes as the backward kernel's second read of the logits, and would
 * hold N x V more memory. */
nb_tensor *nb_cross_entropy(nb_graph *g, nb_tensor *logits, const nb_tensor *targets,
                            const nb_xent_opts *opts);

/* Soft targets: probs has the logits' shape (float). As PyTorch with probability targets:
 * L_n = -keep_n sum_c w_c t'_{n,c} l_{n,c}, t' = (1-a) t + a/V; ignore_index does not apply;
 * mean divides by the number of real rows (PyTorch: N), or the normaliser. Ownership as
 * nb_cross_entropy, with probs in the place of targets. */
nb_tensor *nb_cross_entropy_soft(nb_graph *g, nb_tensor *logits, const nb_tensor *probs,
                                 const nb_xent_opts *opts);

/* Raw kernels, no graph: for people who study the gradient.
 * loss: f32/f64 (compute dtype), shape [] for mean/sum or targets' shape for none.
 * lse: optional, f64 whatever the logits' dtype, numel = rows; receives lse_n (0 for padding
 * rows). It is kept in double because the loss and p = exp(z - lse) are differences of large
 * numbers: an f32 lse near 1000 is off by up to 3e-5 by rounding alone. */
nb_status nb_xent_forward(const nb_tensor *logits, const nb_tensor *targets,
                          const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *lse,
                          nb_xent_stats *stats);
/* dlogits: logits' shape, compute dtype; overwritten (padding rows get exactly 0).
 * lse: from nb_xent_forward, or NULL to recompute. dloss: upstream gradient, shape of the loss
 * (NULL = 1). */
nb_status nb_xent_backward(nb_tensor *dlogits, const nb_tensor *logits, const nb_tensor *targets,
                           const nb_xent_opts *opts, const nb_tensor *lse, const nb_tensor *dloss);

/* Forward and gradient (for an upstream gradient of 1) in one call: each row's gradient is
 * written right after its loss, while the row is still in cache. Same results as
 * nb_xent_forward followed by nb_xent_backward; the fastest path for training. dlogits is
 * overwritten. It allocates one workspace per call (freed before it returns); a loop that must
 * not allocate uses nb_xent_forward_backward_ws. */
nb_status nb_xent_forward_backward(const nb_tensor *logits, const nb_tensor *targets,
                                   const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits,
                                   nb_xent_stats *stats);

/* Bytes of workspace nb_xent_forward_backward_ws needs for these logits with as many threads as
 * it may use now on the calling thread (nb_set_num_threads / OMP_NUM_THREADS): a few doubles per
 * row plus one row of V floats per thread. 0 (and a message) if logits is NULL or has no class
 * dimension. */
size_t nb_xent_workspace_size(const nb_tensor *logits);

/* nb_xent_forward_backward in the caller's workspace ws of ws_bytes bytes (any alignment; its
 * contents on entry do not matter and on return are unspecified): it allocates nothing, so a
 * steady loop that reuses one workspace asks the system for no memory. A workspace smaller than
 * nb_xent_workspace_size but holding at least one thread's row runs on fewer threads (as many
 * rows as fit); below that it fails with NB_ERR_ARG naming both sizes. ws NULL: allocates its
 * own for the call, as nb_xent_forward_backward. ws is borrowed for the call only; the caller
 * owns and frees it, and two calls running at once need two workspaces. */
nb_status nb_xent_forward_backward_ws(const nb_tensor *logits, const nb_tensor *targets,
                                      const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *dlogits,
                                      nb_xent_stats *stats, void *ws, size_t ws_bytes);

nb_status nb_xent_soft_forward(const nb_tensor *logits, const nb_tensor *probs,
                               const nb_xent_opts *opts, nb_tensor *loss, nb_tensor *lse,
                               nb_xent_stats *stats);
nb_status nb_xent_soft_backward(nb_tensor *dlogits, const nb_tensor *logits, const nb_tensor *probs,
                                const nb_xent_opts *opts, const nb_tensor *lse,
                                const nb_tensor *dloss);

#ifdef __cplusplus
}
#endif
#endif
