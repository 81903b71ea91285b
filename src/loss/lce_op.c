/* lce_op.c - the fused linear + cross-entropy as a graph op (nabla/lce.h).
 *
 * Forward: the tiled kernel (lce.c), keeping (m, log s) per row in the arena; or, with
 * opts->one_pass, the one pass (lce_backward.c), which also computes the gradients of x, W and b
 * for an upstream gradient of 1 into arena buffers (as Liger's fused linear cross-entropy keeps
 * grad_input and grad_weight). Backward: with those, g times them (an op output without a
 * gradient yet takes the buffer itself when g = 1: no copy); without them, or for a per-row
 * upstream that is not all ones, the recompute path. Every buffer lives in the graph's arena:
 * O(N) for the shifts and row losses, one tile (BR x TV) or one block (BR x V) of logits, and for
 * the one pass the saved gradients (x's, W's and b's sizes). */
#include <string.h>

#include "loss_ops.h"
#include "lce_internal.h"

static const nb_opdef op_lce;

typedef struct saved_lce {
    nb_lce_opts opts; /* the copy the context points into */
    lce_ctx c;
    double *shift;  /* m, log s per row */
    bool one_pass;  /* the forward has computed the gradients for upstream 1 into saved */
    void *saved[3]; /* dx, dW, db (NULL for an input that takes no gradient) */
    bool direct[3]; /* leaf_grads_in_forward: the forward added into this input's own gradient */
    void *work;     /* the tiled forward's tile (BR x TV), reused by the backward */
} saved_lce;

/* the sharded scratch of sc for BR rows: the reduction buffer, and dxb when x takes a gradient */
static nb_status shard_scratch(nb_graph *g, const lce_ctx *c, int64_t BR, bool dx, lce_scratch *sc)
{
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    if (!c->reduce)
        return NB_OK;
    sc->red = nb_arena_alloc(g, sizeof(double) * 6 * (size_t)BR);
    if (dx)
        sc->dxb = nb_arena_alloc(g, (size_t)(BR * c->D) * es);
    return sc->red && (!dx || sc->dxb) ? NB_OK : nb_last_status();
}

static bool wants_grad(nb_graph *g, nb_tensor *const *in, int n_in)
{
    bool any = false;
    for (int i = 0; i < n_in; i++)
        any |= in[i]->requires_grad;
    return any && nb_graph_grad_enabled(g);
}

static nb_status run_forward(nb_graph *g, saved_lce *sv, nb_tensor *const *in, int n_in,
                             nb_tensor *loss, nb_xent_stats *stats)
{
    lce_ctx c = sv->c;
    size_t es = c.f64 ? sizeof(double) : sizeof(float);
    int64_t N = c.N ? c.N : 1;
    double *rows = nb_arena_alloc(g, sizeof(double) * 2 * (size_t)N);
    sv->shift = nb_arena_alloc(g, sizeof(double) * 2 * (size_t)N);
    if (!rows || !sv->shift)
        return nb_last_status();
    lce_scratch sc = {0};
    if (sv->one_pass) {
        c.BR = nb_lce_block_rows(&c, &sv->opts, true);
        void *gr[3];
        sc.tile = nb_arena_alloc(g, (size_t)(c.BR * c.V) * es);
        sc.st = nb_arena_alloc(g, sizeof(lce_row) * (size_t)c.BR);
        sc.cf = nb_arena_alloc(g, sizeof(double) * (size_t)c.BR);
        if (!sc.tile || !sc.st || !sc.cf ||
            shard_scratch(g, &c, c.BR, in[0]->requires_grad, &sc) != NB_OK)
            return nb_last_status();
        for (int i = 0; i < 3; i++) {
            size_t bytes = i < n_in && in[i]->requires_grad ? (size_t)in[i]->numel * es : 0;
            sv->direct[i] = bytes && sv->opts.leaf_grads_in_forward &&
                            !(in[i]->flags & NB_TFLAG_ARENA) && in[i]->grad;
            if (sv->direct[i]) { /* a leaf's own gradient: += as a backward would */
                gr[i] = in[i]->grad, sv->saved[i] = NULL;
                continue;
            }
            gr[i] = sv->saved[i] = bytes ? nb_arena_alloc(g, bytes) : NULL;
            if (bytes && !gr[i])
                return nb_last_status();
            if (bytes)
                memset(gr[i], 0, bytes);
        }
        return nb_lce_one_pass(&c, loss, sv->shift, rows, &sc, gr[0], gr[1], gr[2], stats);
    }
    sc.tile = sv->work = nb_arena_alloc(g, (size_t)(c.BR * c.TV) * es);
    sc.st = nb_arena_alloc(g, sizeof(lce_row) * (size_t)c.BR);
    if (!sc.tile || !sc.st || shard_scratch(g, &c, c.BR, false, &sc) != NB_OK)
        return nb_last_status();
    return nb_lce_forward(&c, loss, sv->shift, rows, &sc, stats);
}

nb_tensor *nb_linear_cross_entropy(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                                   const nb_tensor *targets, const nb_lce_opts *opts)
{
    const char *fn = "linear_cross_entropy";
    nb_tensor *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    if (!nb_op_inputs_ok(g, fn, in, n_in))
        return NULL;
    saved_lce *sv = nb_arena_alloc(g, sizeof *sv);
    if (!sv)
        return NULL;
    memset(sv, 0, sizeof *sv);
    sv->opts = opts ? *opts : nb_lce_defaults();
    nb_xent_stats *stats = sv->opts.xent.stats;
    sv->opts.xent.stats = NULL;
    if (nb_lce_setup(&sv->c, x, w, b, targets, &sv->opts) != NB_OK)
        return NULL;
    sv->one_pass = sv->opts.one_pass && wants_grad(g, in, n_in);
    nb_dtype ct = x->dtype;
    nb_tensor *loss = sv->opts.xent.reduction == NB_REDUCTION_NONE
                          ? nb_graph_new_tensor(g, ct, targets->ndim, targets->shape)
                          : nb_graph_new_tensor(g, ct, 0, NULL);
    if (!loss || run_forward(g, sv, in, n_in, loss, stats) != NB_OK)
        return NULL;
    nb_node *n;
    if (nb_graph_record(g, &op_lce, loss, in, n_in, &n) != NB_OK)
        return NULL;
    if (n)
        n->saved = sv, n->aux[0] = targets;
    return loss;
}

/* whether every element of the upstream gradient is exactly 1 */
static bool upstream_is_one(const nb_tensor *loss)
{
    for (int64_t i = 0; i < loss->numel; i++)
        if ((loss->dtype == NB_F64 ? ((const double *)loss->grad)[i]
                                   : (double)((const float *)loss->grad)[i]) != 1.0)
            return false;
    return true;
}

/* gradient += g saved for each input (an op output with no gradient yet and g = 1: the saved
 * buffer becomes its gradient) */
static nb_status add_saved(nb_graph *g, nb_node *n, double up)
{
    saved_lce *sv = n->saved;
    for (int i = 0; i < n->n_in; i++) {
        nb_tensor *t = n->in[i];
        void *gt;
        if (!sv->saved[i])
            continue;
        if (up == 1.0 && !t->grad && (t->flags & NB_TFLAG_ARENA)) {
            t->grad = sv->saved[i];
            continue;
        }
        nb_status s = nb_grad_buffer(g, t, &gt);
        if (s != NB_OK)
            return s;
        for (int64_t k = 0; gt && k < t->numel; k++)
            if (sv->c.f64)
                ((double *)gt)[k] += up * ((const double *)sv->saved[i])[k];
            else
                ((float *)gt)[k] += (float)up * ((const float *)sv->saved[i])[k];
    }
    return NB_OK;
}

/* the recompute backward with upstream dloss (NULL: 1) into the gradients of every input (all:
 * true) or only of those the forward wrote into directly */
static nb_status recompute(nb_graph *g, nb_node *n, const void *dloss, bool all)
{
    saved_lce *sv = n->saved;
    lce_ctx *c = &sv->c;
    void *gr[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n->n_in; i++) {
        nb_status s = all || sv->direct[i] ? nb_grad_buffer(g, n->in[i], &gr[i]) : NB_OK;
        if (s != NB_OK)
            return s;
    }
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    lce_scratch sc = {0};
    sc.tile = sv->work ? sv->work : nb_arena_alloc(g, (size_t)(c->BR * c->TV) * es);
    sc.cf = nb_arena_alloc(g, sizeof(double) * (size_t)c->BR);
    if (!sc.tile || !sc.cf || shard_scratch(g, c, c->BR, gr[0] != NULL, &sc) != NB_OK)
        return nb_last_status();
    sv->work = sc.tile;
    return nb_lce_backward(c, sv->shift, dloss, &sc, gr[0], gr[1], gr[2]);
}

/* one rank's all-reduce: the values are already the result */
static nb_status one_rank_allreduce(void *buf, int64_t n, nb_dtype dt, nb_lce_reduce_op op,
                                    void *ctx)
{
    (void)buf, (void)n, (void)dt, (void)op, (void)ctx;
    return NB_OK;
}

/* The one pass with gradients written into leaves (leaf_grads_in_forward): the forward gave
 * every input the gradient of upstream 1 (saved or in place); for an upstream u that is not
 * all ones the rest, u - 1, comes from the recompute path. */
static nb_status backward_direct(nb_graph *g, nb_node *n, bool ones)
{
    nb_status s = add_saved(g, n, 1.0);
    if (s != NB_OK || ones)
        return s;
    nb_tensor *loss = n->out;
    size_t es = nb_dtype_size(loss->dtype);
    void *rest = nb_arena_alloc(g, (size_t)loss->numel * es);
    if (!rest)
        return nb_last_status();
    for (int64_t i = 0; i < loss->numel; i++)
        if (loss->dtype == NB_F64)
            ((double *)rest)[i] = ((const double *)loss->grad)[i] - 1.0;
        else
            ((float *)rest)[i] = ((const float *)loss->grad)[i] - 1.0f;
    return recompute(g, n, rest, true);
}

static nb_status lce_backward(nb_graph *g, nb_node *n)
{
    saved_lce *sv = n->saved;
    nb_tensor *loss = n->out;
    if (sv->one_pass && (sv->direct[0] || sv->direct[1] || sv->direct[2]))
        return backward_direct(g, n, upstream_is_one(loss));
    if (sv->one_pass && (loss->numel == 1 || upstream_is_one(loss)))
        return add_saved(g, n,
                         loss->dtype == NB_F64 ? ((const double *)loss->grad)[0]
                                               : (double)((const float *)loss->grad)[0]);
    return recompute(g, n, loss->grad, true);
}

/* ---- the record: gradcheck cases as data ----
 * Inputs: x, W, b (or none), targets. Arguments: label smoothing, reduction, z-loss, soft-cap,
 * flags (1: class weights w_c = 0.5 + 0.25 c, 2: a mask dropping rows 1 and the last, 4: one
 * pass, 8: ignore_index 0, 16: normaliser 7, 32: x made by an op, 1.5 x, 64: the sharded code
 * path on one rank: classes_total = V, a no-op all-reduce, 128: leaf gradients in the forward),
 * block and tile size
 * (0: the op's own). The
 * weights and the mask are made here, in the graph's arena, as the record holds four inputs. */
static nb_tensor *lce_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                            const double *args)
{
    (void)op, (void)n_in;
    nb_lce_opts o = nb_lce_defaults();
    int flags = (int)args[4];
    o.xent.label_smoothing = args[0];
    o.xent.reduction = (nb_reduction)args[1];
    o.xent.z_loss = args[2];
    o.softcap = args[3];
    o.one_pass = flags & 4;
    o.leaf_grads_in_forward = flags & 128;
    o.xent.ignore_index = flags & 8 ? 0 : -100;
    o.xent.normaliser = flags & 16 ? 7.0 : 0.0;
    o.block_rows = o.tile_classes = (int64_t)args[5];
    if (flags & 64)
        o.classes_total = in[1] ? in[1]->shape[0] : 0, o.allreduce = one_rank_allreduce;
    if (in[0] && in[1] && (flags & 1)) {
        nb_tensor *wt = nb_graph_tensor(g, NB_F64, 1, &in[1]->shape[0]);
        for (int64_t c = 0; wt && c < wt->numel; c++)
            ((double *)wt->data)[c] = 0.5 + 0.25 * (double)c;
        o.xent.weight = wt;
    }
    if (in[3] && (flags & 2)) {
        nb_tensor *mk = nb_graph_tensor(g, NB_U8, in[3]->ndim, in[3]->shape);
        for (int64_t i = 0; mk && i < mk->numel; i++)
            ((uint8_t *)mk->data)[i] = i != 1 && i != mk->numel - 1;
        o.xent.mask = mk;
    }
    nb_tensor *x = flags & 32 ? nb_scale(g, in[0], 1.5) : in[0];
    return nb_linear_cross_entropy(g, x, in[1], in[2], in[3], &o);
}

#define LX(...)                                                                                    \
    {                                                                                              \
        .kind = NB_SAMPLE_PARAM, .lo = -1, .hi = 1, __VA_ARGS__                                    \
    }
#define LT(...)                                                                                    \
    {                                                                                              \
        .kind = NB_SAMPLE_TARGETS, .hi = 7, __VA_ARGS__                                            \
    }
/* x [5,3], W [7,3], b [7], targets [5] */
#define L2(NOTE, ...)                                                                              \
    {                                                                                              \
        .note = NOTE, .n_inputs = 4, .n_shown = 3,                                                 \
        .in = {LX(.ndim = 2, .shape = {5, 3}), LX(.ndim = 2, .shape = {7, 3}),                     \
               LX(.ndim = 1, .shape = {7}), LT(.ndim = 1, .shape = {5})},                          \
        __VA_ARGS__                                                                                \
    }
static const nb_op_case lce_cases[] = {
    L2("mean", .args = {0}),
    {.note = "no bias",
     .n_inputs = 4,
     .n_shown = 2,
     .in = {LX(.ndim = 2, .shape = {5, 3}),
            LX(.ndim = 2, .shape = {7, 3}),
            {0},
            LT(.ndim = 1, .shape = {5})}},
    L2("tiles 2x2", .args = {[5] = 2}),
    L2("smoothing 0.1", .args = {0.1, [5] = 3}),
    L2("weights+mask", .args = {[4] = 3, [5] = 2}),
    L2("sum, z-loss", .args = {[1] = NB_REDUCTION_SUM, [2] = 1e-2}),
    L2("none, ignore_index=0", .args = {[1] = NB_REDUCTION_NONE, [4] = 8}),
    L2("soft-cap 1.5", .args = {0.1, [3] = 1.5, [5] = 2}),
    L2("normaliser 7, all options", .args = {0.1, [2] = 1e-2, [3] = 2.0, [4] = 19, [5] = 3}),
    L2("one pass", .args = {0.1, [2] = 1e-2, [4] = 4, [5] = 2}),
    L2("one pass, none", .args = {[1] = NB_REDUCTION_NONE, [3] = 2.0, [4] = 7}),
    L2("one pass, x from an op", .args = {0.1, [4] = 36, [5] = 2}),
    L2("x from an op", .args = {[4] = 32, [5] = 3}),
    L2("sharded, 1 rank", .args = {0.1, [2] = 1e-2, [3] = 2.0, [4] = 67, [5] = 2}),
    L2("sharded, one pass", .args = {0.1, [1] = NB_REDUCTION_NONE, [4] = 71, [5] = 3}),
    L2("one pass in leaves", .args = {0.1, [2] = 1e-2, [3] = 2.0, [4] = 132, [5] = 2}),
    L2("one pass in leaves, none", .args = {[1] = NB_REDUCTION_NONE, [4] = 135, [5] = 3}),
    L2("one pass in leaves, x from an op", .args = {0.1, [4] = 164, [5] = 2}),
    L2("one pass in leaves, sharded", .args = {0.1, [2] = 1e-2, [4] = 196, [5] = 2}),
    {.note = "[B,T,D]",
     .n_inputs = 4,
     .n_shown = 3,
     .in = {LX(.ndim = 3, .shape = {2, 3, 3}), LX(.ndim = 2, .shape = {7, 3}),
            LX(.ndim = 1, .shape = {7}), LT(.ndim = 2, .shape = {2, 3})},
     .args = {0.1, [4] = 2, [5] = 4}},
};

static const nb_opdef op_lce = {
    {"linear_cross_entropy", "cross_entropy(x W^T + b), tiled", 4, lce_apply, NB_CASES(lce_cases)},
    lce_backward,
    0,
    NULL};

NB_OP_LIST(nb_lce_ops, &op_lce);
