/* custom_op.c - ops with a user-written forward and backward (nabla/custom_op.h).
 *
 * A custom op is recorded like a built-in one: its node points at an nb_opdef that lives in the
 * step arena (so the user's name shows in anomaly messages and nb_tensor_op_name) and whose
 * backward is a trampoline that hands the user views of the gradient buffers. The buffers are
 * the ones built-in backward kernels accumulate into (nb_grad_buffer: zeroed on first use), so
 * the user's += follows exactly the library's rule. */
#include <stdio.h>
#include <string.h>

#include "graph_internal.h"
#include "nabla/custom_op.h"

_Static_assert(NB_CUSTOM_OP_MAX_INPUTS <= NB_OP_MAX_INPUTS, "a node holds NB_OP_MAX_INPUTS inputs");

typedef struct custom_rec {
    nb_opdef def; /* first: node->op points here */
    char name[NB_CUSTOM_OP_MAX_NAME + 1];
    nb_custom_forward_fn forward;
    nb_custom_backward_fn backward;
    void *ctx;
} custom_rec;

/* The caller's error state while a user function runs: cleared for the call, so that the
 * function's own message is told apart, and put back when it succeeds (a successful call
 * leaves the error state alone, nabla/status.h). */
typedef struct saved_error {
    nb_status status;
    char msg[1024];
} saved_error;

static void error_set_aside(saved_error *e)
{
    e->status = nb_last_status();
    snprintf(e->msg, sizeof e->msg, "%s", nb_last_error());
    nb_clear_error();
}

static void error_put_back(const saved_error *e)
{
    nb_error(e->status, "%s", e->msg);
}

/* The message the user's function left, or a stand-in when it returned an error silently. */
static const char *user_message(nb_status s, char *buf, size_t len)
{
    if (nb_last_status() != NB_OK && nb_last_error()[0])
        snprintf(buf, len, "%s", nb_last_error());
    else
        snprintf(buf, len, "it returned %s without a message", nb_status_name(s));
    return buf;
}

static nb_status custom_backward(nb_graph *g, nb_node *n)
{
    const custom_rec *r = n->saved;
    int node = n->out->node;
    if (!r->backward)
        return nb_error(NB_ERR_STATE, "custom op '%s' (node %d) has no backward function", r->name,
                        node);
    nb_tensor gout, gin_view[NB_OP_MAX_INPUTS];
    nb_tensor *gin[NB_OP_MAX_INPUTS] = {0};
    const nb_tensor *in[NB_OP_MAX_INPUTS] = {0};
    nb_dtype gt = nb_dtype_compute(n->out->dtype);
    nb_status s = nb_tensor_view(&gout, gt, n->out->ndim, n->out->shape, n->out->grad);
    if (s != NB_OK)
        return s;
    for (int i = 0; i < n->n_in; i++) {
        nb_tensor *x = n->in[i];
        in[i] = x;
        void *buf;
        s = nb_grad_buffer(g, x, &buf);
        if (s != NB_OK)
            return s;
        if (!buf)
            continue;
        s = nb_tensor_view(&gin_view[i], nb_dtype_compute(x->dtype), x->ndim, x->shape, buf);
        if (s != NB_OK)
            return s;
        gin[i] = &gin_view[i];
    }
    saved_error before;
    error_set_aside(&before);
    s = r->backward(gin, &gout, n->out, in, n->n_in, r->ctx);
    if (s != NB_OK) {
        char msg[400];
        return nb_error(s, "custom op '%s' (node %d) backward failed: %s", r->name, node,
                        user_message(s, msg, sizeof msg));
    }
    error_put_back(&before);
    return NB_OK;
}

static bool name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NB_CUSTOM_OP_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] >= 0x7f)
            return false;
    return true;
}

nb_tensor *nb_custom_op(nb_graph *g, const char *name, nb_tensor *const *inputs, int n_inputs,
                        int out_ndim, const int64_t *out_shape, nb_custom_forward_fn forward,
                        nb_custom_backward_fn backward, void *ctx)
{
    if (!name || !name_ok(name)) {
        nb_error(NB_ERR_ARG,
                 "nb_custom_op: the name must be 1 to %d printable ASCII characters (got %s%s%s)",
                 NB_CUSTOM_OP_MAX_NAME, name ? "'" : "NULL", name ? name : "", name ? "'" : "");
        return NULL;
    }
    if (!forward) {
        nb_error(NB_ERR_ARG, "custom op '%s': forward function is NULL", name);
        return NULL;
    }
    if (n_inputs < 1 || n_inputs > NB_CUSTOM_OP_MAX_INPUTS || !inputs) {
        nb_error(NB_ERR_ARG, "custom op '%s': %d inputs%s; it takes 1 to %d", name, n_inputs,
                 inputs ? "" : " (array NULL)", NB_CUSTOM_OP_MAX_INPUTS);
        return NULL;
    }
    if (out_ndim < 0 || out_ndim > NB_MAX_DIMS || (out_ndim > 0 && !out_shape)) {
        nb_error(NB_ERR_SHAPE, "custom op '%s': output has %d dims%s; at most %d", name, out_ndim,
                 out_ndim > 0 && !out_shape ? " and no shape" : "", NB_MAX_DIMS);
        return NULL;
    }
    char label[NB_CUSTOM_OP_MAX_NAME + 32];
    snprintf(label, sizeof label, "custom op '%s'", name);
    if (!nb_op_inputs_ok(g, label, inputs, n_inputs))
        return NULL;
    nb_dtype t = inputs[0]->dtype;
    bool any_grad = false;
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i]->dtype != t || (t != NB_F32 && t != NB_F64)) {
            nb_error(NB_ERR_DTYPE,
                     "custom op '%s': input %d is %s and input 0 is %s; inputs must be all f32 "
                     "or all f64",
                     name, i, nb_dtype_name(inputs[i]->dtype), nb_dtype_name(t));
            return NULL;
        }
        any_grad |= inputs[i]->requires_grad;
    }
    if (!backward && any_grad && nb_graph_grad_enabled(g)) {
        nb_error(NB_ERR_ARG, "custom op '%s': backward function is NULL but an input requires grad",
                 name);
        return NULL;
    }
    custom_rec *r = nb_arena_alloc(g, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->def.info.name = r->name;
    r->def.info.arity = n_inputs;
    r->def.backward = custom_backward;
    r->forward = forward;
    r->backward = backward;
    r->ctx = ctx;
    nb_tensor *out = nb_graph_tensor(g, t, out_ndim, out_shape);
    if (!out) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        nb_error(nb_last_status(), "custom op '%s': output: %s", name, msg);
        return NULL;
    }
    const nb_tensor *cin[NB_OP_MAX_INPUTS] = {0};
    for (int i = 0; i < n_inputs; i++)
        cin[i] = inputs[i];
    saved_error before;
    error_set_aside(&before);
    nb_status s = forward(out, cin, n_inputs, ctx);
    if (s != NB_OK) {
        char msg[400];
        nb_error(s, "custom op '%s': forward failed: %s", name, user_message(s, msg, sizeof msg));
        return NULL;
    }
    error_put_back(&before);
    nb_node *node;
    if (nb_graph_record(g, &r->def, out, inputs, n_inputs, &node) != NB_OK)
        return NULL;
    if (node)
        node->saved = r;
    return out;
}
