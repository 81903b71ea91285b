/* xent_op.c - the fused cross-entropy as a graph op.
 *
 * Forward runs the fused kernel and keeps, in the arena, per row the shift m and log s (2N
 * numbers: lse = m + log s) and a copy
 * of the options. Backward writes dL/dz straight into the logits' gradient: it overwrites the
 * buffer when it did not exist yet (the usual case: logits made by an op, whose gradient this op
 * writes first, so no zeroing pass is needed) and accumulates into an existing one (a leaf's,
 * or one another op's backward has already written into).
 * Targets, mask and weight are borrowed: keep them alive and unchanged until backward has run. */
#include <string.h>

#include "../ops/ops_internal.h"
#include "xent_internal.h"

typedef struct saved_xent {
    nb_xent_opts opts;
    double *shift; /* m, log s per row */
} saved_xent;

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
    if (!loss || !sv || !shift || !scratch)
        return NULL;
    if (nb_xent_forward_impl(logits, soft ? NULL : tgt, soft ? tgt : NULL, o, loss, NULL, shift,
                             scratch, NULL) != NB_OK)
        return NULL;
    nb_node *n;
    nb_opkind k = soft ? NB_OPK_CROSS_ENTROPY_SOFT : NB_OPK_CROSS_ENTROPY;
    if (nb_graph_record(g, &nb_opdefs[k], loss, &logits, 1, &n) != NB_OK)
        return NULL;
    if (n) {
        sv->opts = *o;
        sv->opts.stats = NULL;
        sv->shift = shift;
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

nb_status nb_xent_op_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *z = n->in[0], *loss = n->out;
    const saved_xent *sv = n->saved;
    bool soft = n->op == &nb_opdefs[NB_OPK_CROSS_ENTROPY_SOFT];
    void *gz;
    bool overwrite; /* logits made by an op (a Linear): their gradient is ours alone to write */
    nb_status s = nb_grad_buffer_for_write(g, z, &gz, &overwrite);
    if (s != NB_OK || !gz)
        return s;
    const nb_tensor *t = n->aux[0];
    return nb_xent_backward_impl(gz, !overwrite, z, soft ? NULL : t, soft ? t : NULL, &sv->opts,
                                 NULL, sv->shift, loss->grad);
}
