/* xent_op.c - the fused cross-entropy as a graph op.
 *
 * Forward runs the fused kernel and keeps, in the arena, per row the shift m and log s (2N
 * numbers: lse = m + log s) and a copy of the options. When the graph records gradients and the
 * logits are an op's output that requires grad, it is the one pass (nb_xent_forward_grad_impl):
 * it also writes dL/dz for an upstream gradient of 1 into an arena buffer of the gradient's size
 * (as lce_op.c's one pass keeps the head's gradients). Backward, with that buffer and an upstream
 * of exactly 1: the buffer becomes the logits' gradient when they have none yet (no copy, no
 * pass), else it is added into it. Otherwise (no buffer, or another upstream) the backward
 * kernel writes dL/dz straight into the logits' gradient: it overwrites the buffer when it did
 * not exist yet (logits made by an op, whose gradient this op writes first, so no zeroing pass
 * is needed) and accumulates into an existing one (a leaf's, or one another op's backward has
 * already written into). Why one pass equals two bitwise, and what it costs: nabla/loss.h at
 * nb_cross_entropy.
 * Targets, mask and weight are borrowed: keep them alive and unchanged until backward has run. */
#include <string.h>

#include "../ops/ops_internal.h"
#include "loss_ops.h"
#include "xent_internal.h"

static const nb_opdef op_cross_entropy, op_cross_entropy_soft;

typedef struct saved_xent {
    nb_xent_opts opts;
    double *shift; /* m, log s per row */
    void *dz;      /* dL/dz for upstream 1 from the one pass (compute dtype), or NULL */
} saved_xent;

/* Whether the forward computes the gradient too: recorded, logits an op's output requiring
 * grad without a gradient yet, and no opt-out. */
static bool one_pass(const nb_graph *g, const nb_tensor *z, const nb_xent_opts *o)
{
    return !o->two_pass && nb_graph_grad_enabled(g) && z->requires_grad && !z->grad &&
           (z->flags & NB_TFLAG_ARENA);
}

static nb_tensor *xent_op(nb_graph *g, nb_tensor *logits, const nb_tensor *tgt, bool soft,
                          const nb_xent_opts *opts)
{
    const char *name = soft ? "cross_entropy_soft" : "cross_entropy";
    if (!nb_op_inputs_ok(g, name, &logits, 1))
        return NULL;
    nb_xent_opts d = nb_xent_defaults();
    const nb_xent_opts *o = opts ? opts : &d;
    nb_status s = soft ? nb_xent_validate_soft(logits, tgt, o) : nb_xent_validate(logits, tgt, o);
    if (s != NB_OK)
        return NULL;
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    nb_dtype ct = nb_dtype_compute(logits->dtype);
    nb_tensor *loss = o->reduction == NB_REDUCTION_NONE
                          ? nb_graph_new_tensor(g, ct, logits->ndim - 1, logits->shape)
                          : nb_graph_new_tensor(g, ct, 0, NULL);
    saved_xent *sv = nb_arena_alloc(g, sizeof *sv);
    double *shift = nb_arena_alloc(g, (size_t)N * 2 * sizeof(double));
    double *scratch = nb_arena_alloc(g, (size_t)N * 2 * sizeof(double)); /* no malloc per step */
    void *dz = one_pass(g, logits, o) ? nb_arena_alloc(g, (size_t)logits->numel * nb_dtype_size(ct))
                                      : NULL;
    if (!loss || !sv || !shift || !scratch || (one_pass(g, logits, o) && !dz))
        return NULL;
    const nb_tensor *t = soft ? NULL : tgt, *p = soft ? tgt : NULL;
    if (dz)
        nb_xent_forward_grad_impl(logits, t, p, o, loss, shift, scratch, dz, NULL);
    else if (nb_xent_forward_impl(logits, t, p, o, loss, NULL, shift, scratch, NULL) != NB_OK)
        return NULL;
    nb_node *n;
    const nb_opdef *op = soft ? &op_cross_entropy_soft : &op_cross_entropy;
    if (nb_graph_record(g, op, loss, &logits, 1, &n) != NB_OK)
        return NULL;
    if (n) {
        sv->opts = *o;
        sv->opts.stats = NULL;
        sv->shift = shift;
        sv->dz = dz;
        n->saved = sv;
        n->aux[0] = tgt;
    }
    return loss;
}

nb_tensor *nb_cross_entropy(nb_graph *g, nb_tensor *logits, const nb_tensor *targets,
                            const nb_xent_opts *opts)
{
    return xent_op(g, logits, targets, false, opts);
}

nb_tensor *nb_cross_entropy_soft(nb_graph *g, nb_tensor *logits, const nb_tensor *probs,
                                 const nb_xent_opts *opts)
{
    return xent_op(g, logits, probs, true, opts);
}

/* whether every element of the loss's upstream gradient is exactly 1 */
static bool upstream_is_one(const nb_tensor *loss)
{
    for (int64_t i = 0; i < loss->numel; i++)
        if ((loss->dtype == NB_F64 ? ((const double *)loss->grad)[i]
                                   : (double)((const float *)loss->grad)[i]) != 1.0)
            return false;
    return true;
}

/* gz += dz over n elements of the compute dtype (f64 or f32): the backward kernel's own
 * accumulation, d + v with v the value it would have computed */
static void add_grad(void *gz, const void *dz, int64_t n, bool f64)
{
    int nt = nb_kernel_threads();
    if (f64) {
        double *restrict a = gz;
        const double *restrict b = dz;
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= NB_XPAR_MIN_ELEMS)
        for (int64_t i = 0; i < n; i++)
            a[i] = a[i] + b[i];
    } else {
        float *restrict a = gz;
        const float *restrict b = dz;
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= NB_XPAR_MIN_ELEMS)
        for (int64_t i = 0; i < n; i++)
            a[i] = a[i] + b[i];
    }
}

/* Another upstream u (a scaled loss, a per-row upstream) runs the backward kernel rather than
 * scaling the saved buffer: u times the gradient for 1 is not what the kernel computes for u
 * (it rounds (u/W) base to f32 before the product, and fuses the product with the smoothing
 * term), and differs in the last bits of ~40 % of the entries for u = 2.5 or 1/3 (up to 0.9 %
 * relative where the two terms cancel); only powers of two agree. A scale would move as many
 * bytes as the kernel (read N x V, write N x V) anyway. */
static nb_status xent_op_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *z = n->in[0], *loss = n->out;
    const saved_xent *sv = n->saved;
    bool soft = n->op == &op_cross_entropy_soft, one = sv->dz && upstream_is_one(loss);
    void *gz;
    bool overwrite = false; /* logits made by an op (a Linear): their gradient is ours to write */
    nb_status s = NB_OK;
    if (sv->dz && !z->grad && (z->flags & NB_TFLAG_ARENA)) {
        z->grad = gz = sv->dz; /* the forward's buffer becomes the gradient ... */
        if (one)
            return NB_OK; /* ... and holds it already: no pass at all */
        overwrite = true; /* ... to be overwritten for this upstream */
    } else if (one) {
        if ((s = nb_grad_buffer(g, z, &gz)) == NB_OK && gz)
            add_grad(gz, sv->dz, z->numel, nb_dtype_compute(z->dtype) == NB_F64);
        return s;
    } else {
        s = nb_grad_buffer_for_write(g, z, &gz, &overwrite);
    }
    if (s != NB_OK || !gz)
        return s;
    const nb_tensor *t = n->aux[0];
    return nb_xent_backward_impl(gz, !overwrite, z, soft ? NULL : t, soft ? t : NULL, &sv->opts,
                                 NULL, sv->shift, loss->grad);
}

/* ---- records: gradcheck cases as data, one per option combination ----
 * Inputs: logits, targets (or probabilities), mask, class weights. Arguments: label smoothing,
 * reduction, normaliser, z-loss, ignore_index = 0 (else -100), a scale applied to the logits
 * by an op first (0: none). */
static nb_tensor *xent_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                             const double *args)
{
    (void)n_in;
    nb_xent_opts o = nb_xent_defaults();
    o.mask = in[2];
    o.weight = in[3];
    o.label_smoothing = args[0];
    o.reduction = (nb_reduction)args[1];
    o.normaliser = args[2];
    o.z_loss = args[3];
    if (args[4] != 0)
        o.ignore_index = 0;
    nb_tensor *z = args[5] != 0 ? nb_scale(g, in[0], args[5]) : in[0];
    return op == &op_cross_entropy_soft.info ? nb_cross_entropy_soft(g, z, in[1], &o)
                                             : nb_cross_entropy(g, z, in[1], &o);
}

#define XL(V)                                                                                      \
    {                                                                                              \
        .kind = NB_SAMPLE_PARAM, .ndim = 2, .shape = {6, V}, .lo = -3, .hi = 3                     \
    }
#define XT(V)                                                                                      \
    {                                                                                              \
        .kind = NB_SAMPLE_TARGETS, .ndim = 1, .shape = {6}, .hi = V                                \
    }
#define XTP(V, ...)                                                                                \
    {                                                                                              \
        .kind = NB_SAMPLE_TARGETS, .ndim = 1, .shape = {6}, .hi = V, __VA_ARGS__                   \
    }
#define XPOKES(...)                                                                                \
    .n_pokes = (int)(sizeof(nb_sample_poke[]){__VA_ARGS__} / sizeof(nb_sample_poke)),              \
    .pokes = {__VA_ARGS__}
#define XMASK(T, ...)                                                                              \
    {                                                                                              \
        .kind = NB_SAMPLE_ONES, .dtype = T, __VA_ARGS__, XPOKES({2, 0}, {-1, 0})                   \
    }
#define XW                                                                                         \
    {                                                                                              \
        .kind = NB_SAMPLE_RAND, .ndim = 1, .shape = {5}, .lo = 0.2, .hi = 2.0                      \
    }
#define XCASE(NOTE, ...)                                                                           \
    {                                                                                              \
        .note = NOTE, .n_inputs = 4, .n_shown = 1, __VA_ARGS__                                     \
    }
static const nb_op_case xent_cases[] = {
    XCASE("mean", .in = {XL(5), XT(5)}),
    XCASE("ignore_index=0", .in = {XL(5), XTP(5, XPOKES({1, 0}, {4, 0}, {2, 3}, {3, 2}))},
          .args = {[4] = 1}),
    XCASE("[B,T,V] u8 mask",
          .in = {{.kind = NB_SAMPLE_PARAM, .ndim = 3, .shape = {2, 3, 5}, .lo = -3, .hi = 3},
                 {.kind = NB_SAMPLE_TARGETS, .ndim = 2, .shape = {2, 3}, .hi = 5},
                 XMASK(NB_U8, .ndim = 2, .shape = {2, 3})}),
    XCASE("f64 mask", .in = {XL(5), XT(5), XMASK(NB_F64, .ndim = 1, .shape = {6})}),
    XCASE("weights", .in = {XL(5), XT(5), {0}, XW}),
    XCASE("smoothing 0.1", .in = {XL(5), XT(5)}, .args = {0.1}),
    XCASE("weights+smooth+pad", .in = {XL(5), XTP(5, XPOKES({1, -100}, {4, 0})), {0}, XW},
          .args = {0.1}),
    XCASE("sum", .in = {XL(5), XT(5)}, .args = {[1] = NB_REDUCTION_SUM}),
    XCASE("none + pad", .in = {XL(5), XTP(5, XPOKES({1, -100}, {4, 0}))},
          .args = {[1] = NB_REDUCTION_NONE}),
    XCASE("normaliser 7", .in = {XL(5), XT(5)}, .args = {[2] = 7.0}),
    XCASE("z_loss+all options",
          .in = {XL(5), XTP(5, XPOKES({5, -100})), XMASK(NB_F64, .ndim = 1, .shape = {6}), XW},
          .args = {0.1, [3] = 1e-2}),
    XCASE("all padding", .in = {XL(5), XTP(5, XPOKES({0, -100}, {1, -100}, {2, -100}, {3, -100},
                                                     {4, -100}, {5, -100}))}),
    XCASE("V=1", .in = {XL(1), XT(1)}),
    /* logits made by an op: the backward writes their gradient (=) */
    XCASE("logits from an op", .in = {XL(5), XT(5)}, .args = {0.2, [5] = 1.5}),
};

#define SL                                                                                         \
    {                                                                                              \
        .kind = NB_SAMPLE_PARAM, .ndim = 2, .shape = {4, 5}, .lo = -3, .hi = 3                     \
    }
#define SP                                                                                         \
    {                                                                                              \
        .kind = NB_SAMPLE_PROBS, .ndim = 2, .shape = { 4, 5 }                                      \
    }
static const nb_op_case xent_soft_cases[] = {
    XCASE("probabilities", .in = {SL, SP}),
    XCASE("smooth+weights", .in = {SL, SP, {0}, XW}, .args = {0.2}),
    XCASE(
        "mask+z_loss",
        .in = {SL,
               SP,
               {.kind = NB_SAMPLE_ONES, .dtype = NB_BOOL, .ndim = 1, .shape = {4}, XPOKES({1, 0})}},
        .args = {[3] = 1e-2}),
};

/* The fused loss writes the logits' whole gradient, and reads only the rows its targets keep. */
static const nb_opdef op_cross_entropy = {
    {"cross_entropy", "fused log-softmax + NLL", 4, xent_apply, NB_CASES(xent_cases)},
    xent_op_backward,
    NB_OPF_WRITES_INPUT_GRAD | NB_OPF_READS_SELECTED_ROWS,
    NULL};
static const nb_opdef op_cross_entropy_soft = {
    {"cross_entropy_soft", "fused, probability targets", 4, xent_apply, NB_CASES(xent_soft_cases)},
    xent_op_backward,
    NB_OPF_WRITES_INPUT_GRAD | NB_OPF_READS_SELECTED_ROWS,
    NULL};

NB_OP_LIST(nb_xent_ops, &op_cross_entropy, &op_cross_entropy_soft);
