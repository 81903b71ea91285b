/* graph.c - the tape, the step arena and reverse-mode backward.
 *
 * Memory layout of a graph:
 *   - arena: chunks of bytes for op outputs, saved values and intermediate gradients. Reset
 *     rewinds it; if a step needed several chunks they are merged into one of the total size, so
 *     from the second step on a steady loop allocates nothing.
 *   - tensor headers: two pools used in alternate generations, in fixed-size blocks that never
 *     move, so a tensor pointer stays readable until nb_graph_free and a stale one (from the
 *     previous step) is recognised by its generation.
 *   - nodes: one growing array, kept across resets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

#define HDR_BLOCK 256

typedef struct chunk {
    char *mem;
    size_t cap, used;
} chunk;

typedef struct hdr_pool {
    nb_tensor **blocks;
    int n_blocks;
    int used; /* headers handed out in this generation */
} hdr_pool;

struct nb_graph {
    chunk *chunks;
    int n_chunks, cur;
    uint64_t n_system_allocs;
    hdr_pool pools[2];
    nb_node *nodes;
    int n_nodes, cap_nodes;
    uint64_t generation;
    bool grad_enabled;
    bool backward_done;
    bool detect_anomaly;
};

nb_graph *nb_graph_new(void)
{
    nb_graph *g = calloc(1, sizeof *g);
    if (!g) {
        nb_error(NB_ERR_NOMEM, "out of memory allocating a graph");
        return NULL;
    }
    g->generation = 1;
    g->grad_enabled = true;
    return g;
}

void nb_graph_free(nb_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_chunks; i++)
        free(g->chunks[i].mem);
    free(g->chunks);
    for (int p = 0; p < 2; p++) {
        for (int b = 0; b < g->pools[p].n_blocks; b++)
            free(g->pools[p].blocks[b]);
        free(g->pools[p].blocks);
    }
    free(g->nodes);
    free(g);
}

void nb_graph_reset(nb_graph *g)
{
    if (!g) {
        nb_error(NB_ERR_ARG, "nb_graph_reset: g is NULL");
        return;
    }
    /* every header handed out this generation becomes stale */
    hdr_pool *cur = &g->pools[g->generation & 1];
    for (int i = 0; i < cur->used; i++) {
        nb_tensor *t = &cur->blocks[i / HDR_BLOCK][i % HDR_BLOCK];
        t->flags |= NB_TFLAG_STALE;
        t->data = NULL;
        t->grad = NULL;
    }
    g->generation++;
    g->pools[g->generation & 1].used = 0;
    g->n_nodes = 0;
    g->backward_done = false;
    /* rewind the arena; merge chunks so the next step fits in one */
    if (g->n_chunks > 1) {
        size_t total = 0;
        for (int i = 0; i < g->n_chunks; i++)
            total += g->chunks[i].cap;
        char *mem = nb_aligned_alloc(total);
        if (mem) {
            for (int i = 0; i < g->n_chunks; i++)
                free(g->chunks[i].mem);
            g->chunks[0].mem = mem;
            g->chunks[0].cap = total;
            g->n_chunks = 1;
            g->n_system_allocs++;
        }
    }
    for (int i = 0; i < g->n_chunks; i++)
        g->chunks[i].used = 0;
    g->cur = 0;
}

bool nb_graph_set_grad_enabled(nb_graph *g, bool enabled)
{
    if (!g) {
        nb_error(NB_ERR_ARG, "nb_graph_set_grad_enabled: g is NULL");
        return false;
    }
    bool prev = g->grad_enabled;
    g->grad_enabled = enabled;
    return prev;
}

/* entry check of the graph accessors, which return 0 / false for a NULL graph */
static bool graph_ok(const char *fn, const nb_graph *g)
{
    if (!g)
        nb_error(NB_ERR_ARG, "%s: g is NULL", fn);
    return g != NULL;
}

bool nb_graph_grad_enabled(const nb_graph *g)
{
    return graph_ok("nb_graph_grad_enabled", g) && g->grad_enabled;
}

void nb_graph_set_anomaly_detection(nb_graph *g, bool on)
{
    if (graph_ok("nb_graph_set_anomaly_detection", g))
        g->detect_anomaly = on;
}

bool nb_graph_anomaly_detection(const nb_graph *g)
{
    return graph_ok("nb_graph_anomaly_detection", g) && g->detect_anomaly;
}

/* index of the first non-finite element of a float buffer of dtype t (-1 if none) */
static int64_t first_nonfinite(nb_dtype t, const void *buf, int64_t n, double *v)
{
    if (!buf || !nb_dtype_is_float(t))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        double x = t == NB_F64   ? ((const double *)buf)[i]
                   : t == NB_F32 ? (double)((const float *)buf)[i]
                   : t == NB_F16 ? (double)nb_f16_to_f32(((const uint16_t *)buf)[i])
                                 : (double)nb_bf16_to_f32(((const uint16_t *)buf)[i]);
        if (!isfinite(x)) {
            *v = x;
            return i;
        }
    }
    return -1;
}

/* forward check: out of op `name` (future node index `idx`) given its inputs */
static nb_status check_forward(const nb_opdef *op, int idx, const nb_tensor *out,
                               nb_tensor *const *in, int n_in)
{
    double v;
    const char *name = op->info.name;
    /* an op that reads only selected rows (the fused loss skips padding): garbage elsewhere is
     * not an anomaly; its output is checked below like any other */
    bool skip_inputs = (op->flags & NB_OPF_READS_SELECTED_ROWS) != 0;
    for (int i = 0; i < n_in && !skip_inputs; i++) {
        if (!in[i])
            continue;
        int64_t k = first_nonfinite(in[i]->dtype, in[i]->data, in[i]->numel, &v);
        if (k >= 0)
            return nb_error(NB_ERR_ANOMALY,
                            "anomaly: input %d of op '%s' (node %d) holds %g at element %lld; it "
                            "came from %s",
                            i, name, idx, v, (long long)k,
                            in[i]->node < 0 ? "outside the graph (data or parameters)"
                                            : "an earlier op that was not checked");
    }
    int64_t k = first_nonfinite(out->dtype, out->data, out->numel, &v);
    if (k >= 0) {
        char extra[128] = "";
        if (n_in >= 1 && in[0] && k < in[0]->numel)
            snprintf(extra, sizeof extra, " (input 0 there: %g)", nb_tensor_get(in[0], k));
        return nb_error(NB_ERR_ANOMALY,
                        "anomaly: op '%s' (node %d) produced %g in its output at element %lld from "
                        "finite inputs%s",
                        name, idx, v, (long long)k, extra);
    }
    return NB_OK;
}
int nb_graph_size(const nb_graph *g)
{
    return graph_ok("nb_graph_size", g) ? g->n_nodes : 0;
}
uint64_t nb_graph_generation(const nb_graph *g)
{
    return graph_ok("nb_graph_generation", g) ? g->generation : 0;
}
uint64_t nb_graph_arena_allocations(const nb_graph *g)
{
    return graph_ok("nb_graph_arena_allocations", g) ? g->n_system_allocs : 0;
}

size_t nb_graph_arena_capacity(const nb_graph *g)
{
    size_t c = 0;
    if (!graph_ok("nb_graph_arena_capacity", g))
        return 0;
    for (int i = 0; g && i < g->n_chunks; i++)
        c += g->chunks[i].cap;
    return c;
}

size_t nb_graph_arena_used(const nb_graph *g)
{
    size_t c = 0;
    if (!graph_ok("nb_graph_arena_used", g))
        return 0;
    for (int i = 0; g && i < g->n_chunks; i++)
        c += g->chunks[i].used;
    return c;
}

void *nb_arena_alloc(nb_graph *g, size_t bytes)
{
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need == 0)
        need = 64;
    for (; g->cur < g->n_chunks; g->cur++) {
        chunk *c = &g->chunks[g->cur];
        if (c->cap - c->used >= need) {
            void *p = c->mem + c->used;
            c->used += need;
            return p;
        }
    }
    /* new chunk: at least double the last one, at least 1 MiB */
    size_t cap = need;
    size_t last = g->n_chunks ? g->chunks[g->n_chunks - 1].cap : 0;
    if (cap < 2 * last)
        cap = 2 * last;
    if (cap < ((size_t)1 << 20))
        cap = (size_t)1 << 20;
    chunk *grown = realloc(g->chunks, (size_t)(g->n_chunks + 1) * sizeof *grown);
    if (!grown) {
        nb_error(NB_ERR_NOMEM, "out of memory growing the graph arena");
        return NULL;
    }
    g->chunks = grown;
    char *mem = nb_aligned_alloc(cap);
    if (!mem) {
        nb_error(NB_ERR_NOMEM, "out of memory: arena chunk of %zu bytes", cap);
        return NULL;
    }
    g->n_system_allocs++;
    g->chunks[g->n_chunks] = (chunk){mem, cap, need};
    g->cur = g->n_chunks;
    g->n_chunks++;
    return mem;
}

static nb_tensor *new_header(nb_graph *g)
{
    hdr_pool *p = &g->pools[g->generation & 1];
    if (p->used == p->n_blocks * HDR_BLOCK) {
        nb_tensor **blocks = realloc(p->blocks, (size_t)(p->n_blocks + 1) * sizeof *blocks);
        if (!blocks) {
            nb_error(NB_ERR_NOMEM, "out of memory growing the tensor header pool");
            return NULL;
        }
        p->blocks = blocks;
        nb_tensor *b = calloc(HDR_BLOCK, sizeof *b);
        if (!b) {
            nb_error(NB_ERR_NOMEM, "out of memory growing the tensor header pool");
            return NULL;
        }
        p->blocks[p->n_blocks++] = b;
        g->n_system_allocs++;
    }
    nb_tensor *t = &p->blocks[p->used / HDR_BLOCK][p->used % HDR_BLOCK];
    p->used++;
    memset(t, 0, sizeof *t);
    return t;
}

nb_tensor *nb_graph_new_tensor(nb_graph *g, nb_dtype t, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (nb_shape_numel(ndim, shape, t, &numel) != NB_OK)
        return NULL;
    void *data = nb_arena_alloc(g, (size_t)numel * nb_dtype_size(t));
    if (!data)
        return NULL;
    nb_tensor *x = new_header(g);
    if (!x)
        return NULL;
    x->dtype = t;
    x->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        x->shape[i] = shape[i];
    x->numel = numel;
    x->data = data;
    x->graph = g;
    x->generation = g->generation;
    x->node = -1;
    x->flags = NB_TFLAG_ARENA;
    return x;
}

nb_tensor *nb_graph_tensor(nb_graph *g, nb_dtype t, int ndim, const int64_t *shape)
{
    if (!g) {
        nb_error(NB_ERR_ARG, "nb_graph_tensor: g is NULL");
        return NULL;
    }
    nb_tensor *x = nb_graph_new_tensor(g, t, ndim, shape);
    if (x)
        memset(x->data, 0, (size_t)x->numel * nb_dtype_size(t));
    else
        nb_error(nb_last_status(), "nb_graph_tensor: %s", nb_last_error());
    return x;
}

/* nb_graph_check without the function name (ops put their own name and input in front) */
static nb_status graph_check(const nb_graph *g, const nb_tensor *x)
{
    if (!(x->flags & NB_TFLAG_ARENA))
        return NB_OK;
    if (x->graph != g)
        return nb_error(NB_ERR_ARG, "tensor belongs to another graph");
    if ((x->flags & NB_TFLAG_STALE) || x->generation != g->generation)
        return nb_error(NB_ERR_STALE,
                        "tensor from graph generation %llu used after nb_graph_reset (the graph "
                        "is now at generation %llu); op outputs live only until the next reset",
                        (unsigned long long)x->generation, (unsigned long long)g->generation);
    return NB_OK;
}

nb_status nb_graph_check(const nb_graph *g, const nb_tensor *x)
{
    if (!g)
        return nb_error(NB_ERR_ARG, "nb_graph_check: g is NULL");
    if (!x)
        return nb_error_null("nb_graph_check", "x");
    nb_status s = graph_check(g, x);
    if (s != NB_OK)
        return nb_error(s, "nb_graph_check: %s", nb_last_error());
    return nb_check_tensor("nb_graph_check", "x", x);
}

bool nb_op_inputs_ok(nb_graph *g, const char *opname, nb_tensor *const *in, int n)
{
    if (!g) {
        nb_error(NB_ERR_ARG, "%s: graph is NULL", opname);
        return false;
    }
    for (int i = 0; i < n; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "input %d", i);
        if (!in[i]) { /* an earlier op failed: its message stays at the end of ours */
            nb_error_null_input(opname, arg);
            return false;
        }
        if (graph_check(g, in[i]) != NB_OK) {
            nb_error(nb_last_status(), "%s: %s: %s", opname, arg, nb_last_error());
            return false;
        }
        if (nb_check_tensor(opname, arg, in[i]) != NB_OK)
            return false;
    }
    return true;
}

nb_status nb_graph_record(nb_graph *g, const nb_opdef *op, nb_tensor *out, nb_tensor *const *in,
                          int n_in, nb_node **node)
{
    *node = NULL;
    /* a node holds at most NB_OP_MAX_INPUTS inputs: more would write past n->in */
    if (n_in < 0 || n_in > NB_OP_MAX_INPUTS)
        return nb_error(NB_ERR_ARG, "op '%s': %d inputs, a tape node holds 0 to %d", op->info.name,
                        n_in, NB_OP_MAX_INPUTS);
    if (g->detect_anomaly) {
        nb_status s = check_forward(op, g->n_nodes, out, in, n_in);
        if (s != NB_OK)
            return s;
    }
    if (!g->grad_enabled)
        return NB_OK;
    bool any = false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad)
            any = true;
    if (!any)
        return NB_OK;
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        nb_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return nb_error(NB_ERR_NOMEM, "out of memory growing the tape to %d nodes", cap);
        g->nodes = nodes;
        g->cap_nodes = cap;
        g->n_system_allocs++;
    }
    nb_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    n->out = out;
    out->requires_grad = true;
    out->node = g->n_nodes;
    g->n_nodes++;
    *node = n;
    return NB_OK;
}

nb_status nb_grad_buffer(nb_graph *g, nb_tensor *t, void **buf)
{
    *buf = NULL;
    if (!t || !t->requires_grad)
        return NB_OK;
    if (!t->grad) {
        if (!(t->flags & NB_TFLAG_ARENA))
            return nb_error(NB_ERR_STATE, "leaf requires grad but has no gradient buffer");
        size_t bytes = (size_t)t->numel * nb_dtype_size(nb_dtype_compute(t->dtype));
        t->grad = nb_arena_alloc(g, bytes);
        if (!t->grad)
            return nb_last_status();
        memset(t->grad, 0, bytes);
    }
    *buf = t->grad;
    return NB_OK;
}

nb_status nb_grad_buffer_for_write(nb_graph *g, nb_tensor *t, void **buf, bool *overwrite)
{
    *overwrite = false;
    if (t && t->requires_grad && !t->grad && (t->flags & NB_TFLAG_ARENA)) {
        size_t bytes = (size_t)t->numel * nb_dtype_size(nb_dtype_compute(t->dtype));
        t->grad = nb_arena_alloc(g, bytes);
        if (!t->grad)
            return nb_last_status();
        *overwrite = true;
    }
    return nb_grad_buffer(g, t, buf);
}

const char *nb_tensor_op_name(const nb_tensor *x)
{
    if (!x) {
        nb_error_null("nb_tensor_op_name", "x");
        return "invalid";
    }
    if (x->node < 0 || !x->graph)
        return "leaf";
    const nb_graph *g = x->graph;
    if (x->generation != g->generation || x->node >= g->n_nodes)
        return "stale";
    return g->nodes[x->node].op->info.name;
}

/* The root's gradient: upstream (n elements of dtype t), or 1 when up is NULL; written into a
 * fresh buffer, else added (a leaf root keeps what it had). Written d = (fresh ? 0 : d) + u with
 * the branches outside the loops, so that each loop is a plain vector loop (the sum with 0 keeps
 * what an upstream -0 gives: +0). */
#define SEED_ROOT(T, d, fresh, u, n)                                                               \
    do {                                                                                           \
        if (fresh && u)                                                                            \
            for (int64_t i = 0; i < n; i++)                                                        \
                d[i] = (T)0 + u[i];                                                                \
        else if (u)                                                                                \
            for (int64_t i = 0; i < n; i++)                                                        \
                d[i] += u[i];                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++)                                                        \
                d[i] = (fresh ? (T)0 : d[i]) + (T)1;                                               \
    } while (0)

static void seed_root(nb_dtype t, void *rg, bool fresh, const void *up, int64_t n)
{
    if (t == NB_F64) {
        double *restrict d = rg;
        const double *restrict u = up;
        SEED_ROOT(double, d, fresh, u, n);
    } else {
        float *restrict d = rg;
        const float *restrict u = up;
        SEED_ROOT(float, d, fresh, u, n);
    }
}

nb_status nb_backward(nb_graph *g, nb_tensor *root, const nb_tensor *upstream)
{
    if (!g)
        return nb_error(NB_ERR_ARG, "nb_backward: g is NULL");
    if (!root)
        return nb_error_null_input("nb_backward", "root");
    nb_status s = graph_check(g, root);
    if (s != NB_OK)
        return nb_error(s, "nb_backward: root: %s", nb_last_error());
    if ((s = nb_check_tensor("nb_backward", "root", root)) != NB_OK)
        return s;
    if (upstream && (s = nb_check_tensor("nb_backward", "upstream", upstream)) != NB_OK)
        return s;
    if (g->backward_done)
        return nb_error(NB_ERR_STATE, "nb_backward called twice in one step: call nb_graph_reset "
                                      "and run the forward again");
    if (!nb_dtype_is_float(root->dtype))
        return nb_error(NB_ERR_DTYPE, "nb_backward: root has dtype %s", nb_dtype_name(root->dtype));
    if (!root->requires_grad)
        return nb_error(NB_ERR_STATE, "nb_backward: root does not depend on any tensor that "
                                      "requires grad (or was computed with grad disabled)");
    nb_dtype gt = nb_dtype_compute(root->dtype);
    if (upstream) {
        if (!nb_shape_equal(upstream, root) || upstream->dtype != gt) {
            char a[64], b[64];
            return nb_error(NB_ERR_SHAPE,
                            "nb_backward: upstream gradient %s %s does not match root "
                            "%s %s",
                            nb_dtype_name(upstream->dtype), nb_shape_str(upstream, a, sizeof a),
                            nb_dtype_name(gt), nb_shape_str(root, b, sizeof b));
        }
    } else if (root->numel != 1) {
        char a[64];
        return nb_error(NB_ERR_SHAPE,
                        "nb_backward: root has shape %s; a root that is not a scalar "
                        "needs an upstream gradient",
                        nb_shape_str(root, a, sizeof a));
    }
    void *rg;
    bool fresh;
    s = nb_grad_buffer_for_write(g, root, &rg, &fresh);
    if (s != NB_OK)
        return s;
    seed_root(gt, rg, fresh, upstream ? upstream->data : NULL, root->numel);
    g->backward_done = true;
    if (root->node < 0)
        return NB_OK; /* a leaf: its gradient is the upstream */
    for (int i = root->node; i >= 0; i--) {
        nb_node *n = &g->nodes[i];
        if (!n->out->grad)
            continue; /* nothing flowed into this node */
        s = n->op->backward(g, n);
        if (s != NB_OK)
            return s;
        if (g->detect_anomaly) {
            double gv = 0.0;
            int64_t k = first_nonfinite(n->out->dtype == NB_F64 ? NB_F64 : NB_F32, n->out->grad,
                                        n->out->numel, &gv);
            if (k >= 0)
                return nb_error(NB_ERR_ANOMALY,
                                "anomaly in backward: the gradient reaching op '%s' (node %d) "
                                "holds %g at output element %lld",
                                n->op->info.name, i, gv, (long long)k);
            for (int j = 0; j < n->n_in; j++) {
                nb_tensor *x = n->in[j];
                if (!x || !x->grad)
                    continue;
                k = first_nonfinite(nb_dtype_compute(x->dtype), x->grad, x->numel, &gv);
                if (k >= 0)
                    return nb_error(NB_ERR_ANOMALY,
                                    "anomaly in backward: op '%s' (node %d) wrote %g into the "
                                    "gradient of its input %d at element %lld (input value %g)",
                                    n->op->info.name, i, gv, j, (long long)k, nb_tensor_get(x, k));
            }
        }
    }
    return NB_OK;
}
