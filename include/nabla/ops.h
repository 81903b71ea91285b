/* nabla/ops.h - differentiable ops and the op table.
 *
 * Every op takes the graph first and returns a new tensor in the graph's arena, or NULL with
 * nb_last_error() set. An op given a NULL input returns NULL with the earlier failure's status
 * and a message naming the op that keeps the first failure at its end (see status.h, "Chains"),
 * so a chain of ops can be checked once at the end. A NULL graph, a stale input, one from
 * another graph or a malformed tensor header fail at entry. Inputs must share one float dtype
 * (f32 or f64).
 *
 * Ownership: an op's result belongs to the graph (valid until nb_graph_reset / nb_graph_free,
 * never freed by the caller). Its inputs are borrowed until nb_backward has run or the graph is
 * reset, whichever comes first: the tape keeps pointers to them (and to nb_gather_last's idx)
 * and backward reads their data, so keep them alive and unchanged until then. Other pointers
 * (shape arrays, the generator of nb_dropout, the output buffer of nb_argmax_rows) are borrowed
 * for the call only.
 *
 * NaN propagates as in PyTorch: relu(NaN) = leaky_relu(NaN) = NaN (their gradient at NaN is
 * PyTorch's too: relu passes the incoming gradient, leaky_relu scales it by its slope).
 *
 * Broadcasting (add, sub, mul, div): each operand is either the full shape, a row vector whose
 * length is the last dimension of the other (a bias), or a single element (a scalar).
 */
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = op(A) op(B), A and B 2-D; op(X) = X^T when the flag is set. cblas_sgemm / cblas_dgemm. */
nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b, bool trans_a, bool trans_b);
/* y = x W^T + b for x [N,in], W [out,in], b [out] (b may be NULL): PyTorch's Linear, one node. */
nb_tensor *nb_linear(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b);
/* h = max(x W^T + b, 0): nb_relu(nb_linear(...)) as one node, the ReLU applied in the Linear's
 * output pass and its gradient fused with the bias's; values and gradients bitwise equal. */
nb_tensor *nb_linear_relu(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b);

nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b); /* a + b */
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b); /* a - b */
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b); /* a * b (elementwise) */
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b); /* a / b (elementwise) */

nb_tensor *nb_neg(nb_graph *g, nb_tensor *x);                    /* -x */
nb_tensor *nb_scale(nb_graph *g, nb_tensor *x, double s);        /* s x */
nb_tensor *nb_relu(nb_graph *g, nb_tensor *x);                   /* max(x, 0); NaN -> NaN */
nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *x, double neg); /* x > 0 ? x : neg x */
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *x);                   /* tanh x */
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *x);                /* 1 / (1 + e^-x) */
nb_tensor *nb_silu(nb_graph *g, nb_tensor *x);                   /* x sigmoid(x) (swish) */
/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form (PyTorch approximate='tanh'). */
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *x);
nb_tensor *nb_exp(nb_graph *g, nb_tensor *x); /* e^x */
nb_tensor *nb_log(nb_graph *g, nb_tensor *x); /* ln x */

nb_tensor *nb_sum(nb_graph *g, nb_tensor *x);       /* sum of all elements, shape [] */
nb_tensor *nb_mean(nb_graph *g, nb_tensor *x);      /* mean of all elements, shape [] */
nb_tensor *nb_sum_last(nb_graph *g, nb_tensor *x);  /* sum over the last dim: [...,V] -> [...] */
nb_tensor *nb_mean_last(nb_graph *g, nb_tensor *x); /* mean over the last dim */

/* Same data, new shape (same element count). */
nb_tensor *nb_reshape(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape);
/* 2-D transpose [R,C] -> [C,R] (a copy). */
nb_tensor *nb_transpose(nb_graph *g, nb_tensor *x);

/* y = x * mask / (1 - p) with mask_i ~ Bernoulli(1 - p) from r (inverted dropout, as PyTorch's
 * F.dropout in training mode). p in [0, 1); p = 0 returns x unchanged. */
nb_tensor *nb_dropout(nb_graph *g, nb_tensor *x, double p, nb_rng *r);

/* Over the last dim, max-shifted: lse = m + log sum exp(z - m), m = max z. [...,V] -> [...] */
nb_tensor *nb_logsumexp(nb_graph *g, nb_tensor *z);
/* z - lse(z), never log(softmax(z)). Same shape. */
nb_tensor *nb_log_softmax(nb_graph *g, nb_tensor *z);
/* exp(z - lse(z)). Same shape. */
nb_tensor *nb_softmax(nb_graph *g, nb_tensor *z);
/* out[...] = x[..., idx[...]] for integer idx (i32/i64) shaped like x without the last dim;
 * used to build the unfused cross-entropy (-gather(log_softmax(z), y)) for comparison. */
nb_tensor *nb_gather_last(nb_graph *g, nb_tensor *x, const nb_tensor *idx);

/* ---- evaluation (no gradient, no graph) ---- */

/* out[r] = the index of the largest element of row r of x, a float tensor (f16, bf16, f32 or f64)
 * of shape [..., K] with K >= 1, read as rows of its last dim: [N, K] gives N indices, [B, T, K]
 * gives B*T (in row-major order), [K] gives one. Half-precision values are compared exactly (as
 * stored). Ties: the lowest index. NaN counts as larger than everything, so a row holding a NaN
 * gives the index of its first NaN (as numpy.argmax and torch.argmax do); a row of -inf gives 0.
 * out must have room for n_out >= numel / K indices; nothing past them is written. Errors
 * (NB_ERR_ARG, NB_ERR_DTYPE, NB_ERR_SHAPE) leave out unchanged. */
nb_status nb_argmax_rows(const nb_tensor *x, int64_t *out, int64_t n_out);

/* Top-1 accuracy of logits [..., K] (as nb_argmax_rows) against integer targets (i32 or i64)
 * shaped like logits without the last dim: *count = the rows whose target is not ignore_index,
 * *hits = those of them whose argmax is the target. Every other target must be in [0, K)
 * (NB_ERR_RANGE naming the target and the row otherwise). K may be larger than the number of
 * classes the targets use. */
nb_status nb_accuracy(const nb_tensor *logits, const nb_tensor *targets, int64_t ignore_index,
                      int64_t *hits, int64_t *count);

/* Threads for matrix products (OpenBLAS) and for the row-parallel kernels (OpenMP: the fused
 * loss), n >= 1; n < 1 changes nothing and sets NB_ERR_ARG. Process-wide: every thread's next
 * kernel uses it (not OpenMP's per-thread omp_set_num_threads). Call it before training starts,
 * not while another thread is inside a kernel. Before any call, OpenBLAS's and OpenMP's own
 * defaults hold (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS). nb_num_threads returns OpenBLAS's
 * current count. */
void nb_set_num_threads(int n);
int nb_num_threads(void);
/* The kernel family OpenBLAS chose at load time ("SkylakeX", "Haswell", "Prescott", ...; a
 * string owned by OpenBLAS, never freed). On an
 * unrecognised CPU it falls back to "Prescott" (SSE3, slow); set OPENBLAS_CORETYPE=SkylakeX or
 * Haswell in the environment before the program starts to override (the nabla command does this
 * itself). */
const char *nb_blas_core_name(void);

/* ---- the op table ----
 * Every built-in op the tape can record, as its record (nabla/graph.h): name, formula, arity,
 * apply, gradcheck sample cases. `nabla gradcheck` and tests/test_gradcheck.c walk it, so an op
 * is checked the moment its file lists its record. The records are static (valid for the life
 * of the process; never free or change them). */
int nb_op_count(void);
/* The i-th op, 0 <= i < nb_op_count(); NULL and NB_ERR_ARG outside. */
const nb_op_info *nb_op_at(int i);
/* NULL and NB_ERR_ARG for a NULL or unknown name. */
const nb_op_info *nb_op_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif
