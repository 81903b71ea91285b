/* nabla/graph.h - the autograd tape.
 *
 * A graph records every op applied under it, in order (the tape). Because an op's inputs exist
 * before its output, creation order is a topological order, and backward is a reverse walk.
 *
 *     nb_graph *g = nb_graph_new();
 *     for (step...) {
 *         nb_tensor *loss = ...ops on g...;
 *         nb_backward(g, loss, NULL);      // grads accumulate into leaves (parameters)
 *         ...optimiser step, zero grads...
 *         nb_graph_reset(g);               // rewinds the arena: every op output is now stale
 *     }
 *     nb_graph_free(g);
 *
 * Op outputs live in the graph's arena. After nb_graph_reset they are stale: passing one to an op
 * or to backward returns NB_ERR_STALE (the tensor records the graph generation it was made in).
 * Tensor headers are double-buffered across resets and never returned to the system before
 * nb_graph_free, so a stale pointer is detected for at least one full step and never read as
 * freed memory.
 *
 * Ownership: nb_graph_new's graph is the caller's, released with nb_graph_free, which releases
 * every tensor, saved value and gradient buffer in its arena. The graph owns its op outputs and
 * the gradients of them; it only borrows the caller-owned tensors given to its ops (inputs,
 * parameters, targets): the tape keeps pointers to them, so they must stay alive and unchanged
 * until nb_backward has run (or the graph is reset), and backward writes into their gradient
 * buffers, which stay theirs. Nothing the graph made may be passed to nb_tensor_free.
 *
 * Threads: a graph, the tensors it made and the parameters it writes gradients into belong to
 * one thread at a time (nothing inside is locked). Two threads may each run their own graph on
 * their own tensors at once; the kernels' internal tables are resolved thread-safely, and error
 * messages (nb_last_error) are per thread. The thread count of the matrix products is
 * process-wide, that of the fused loss per calling thread (nb_set_num_threads, nabla/ops.h).
 */
#ifndef NABLA_GRAPH_H
#define NABLA_GRAPH_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every function below given a NULL graph sets NB_ERR_ARG ("nb_graph_size: g is NULL") and
 * returns false / 0 or does nothing; nb_graph_free(NULL) is a silent no-op. */
nb_graph *nb_graph_new(void);
void nb_graph_free(nb_graph *g);

/* Forgets the tape and rewinds the arena. After the first few steps the arena has grown to the
 * step's size and a steady training loop allocates nothing. */
void nb_graph_reset(nb_graph *g);

/* Whether ops record on the tape (default true). With recording off (no-grad mode), ops compute
 * their outputs only. Returns the previous setting. */
bool nb_graph_set_grad_enabled(nb_graph *g, bool enabled);
bool nb_graph_grad_enabled(const nb_graph *g);

/* Anomaly detection (default off). When on, every op's output is checked for NaN and infinity
 * as it is computed, and every gradient an op's backward writes is checked too. The first op
 * that turns finite inputs into a non-finite value makes the op (or nb_backward) fail with
 * NB_ERR_ANOMALY and a message naming the op, its node index, the input or output, the element
 * and the value; a non-finite value arriving from outside the graph is reported at the first op
 * that reads it. Costs one pass over each tensor. */
void nb_graph_set_anomaly_detection(nb_graph *g, bool on);
bool nb_graph_anomaly_detection(const nb_graph *g);

/* Number of nodes on the tape, and the generation counter (incremented by every reset). */
int nb_graph_size(const nb_graph *g);
uint64_t nb_graph_generation(const nb_graph *g);
/* Bytes the arena holds (capacity) and uses now. */
size_t nb_graph_arena_capacity(const nb_graph *g);
size_t nb_graph_arena_used(const nb_graph *g);
/* How many times the arena had to ask the system for memory since nb_graph_new. A steady
 * training loop keeps this constant. */
uint64_t nb_graph_arena_allocations(const nb_graph *g);

/* Reverse-mode differentiation of `root`. With `upstream` NULL, root must have one element and
 * dL/droot = 1; otherwise upstream has root's shape and the compute dtype (nb_dtype_compute) and
 * is the incoming gradient, borrowed for the call (it is copied into root's gradient).
 * Gradients accumulate (+=) into every leaf with requires_grad. Backward may be called once per
 * reset (the saved values of the step are consumed). */
nb_status nb_backward(nb_graph *g, nb_tensor *root, const nb_tensor *upstream);

/* Checks that x can be used in g: not stale, owned by g or caller-owned. */
nb_status nb_graph_check(const nb_graph *g, const nb_tensor *x);

/* A new tensor in g's arena (zeroed), not on the tape: scratch that lives until reset. */
nb_tensor *nb_graph_tensor(nb_graph *g, nb_dtype t, int ndim, const int64_t *shape);

/* Name of the op that produced x ("leaf" for leaves, "stale" for a tensor of an earlier
 * generation, "invalid" and the error for NULL). A built-in op's name is static; a custom op's
 * (nabla/custom_op.h) lives in g's arena: valid until nb_graph_reset. */
const char *nb_tensor_op_name(const nb_tensor *x);

/* ---- the op record: what every recordable op says about itself ----
 * An op's file defines its whole record: name, formula, arity, its forward in one calling
 * convention (`apply`, so tools can run any op from data) and its gradcheck sample cases as data.
 * The library keeps the backward and the flags beside it (src/autograd/graph_internal.h). The
 * table of every built-in op is nb_op_count / nb_op_at / nb_op_find (nabla/ops.h), whose records
 * are static: valid for the life of the process, never freed or changed; the code
 * that turns a case into tensors lives with the tools (src/cli/op_samples.c), not in the
 * library. */
#define NB_OP_MAX_INPUTS 4 /* inputs a node holds (and a sample case makes) */
#define NB_OP_MAX_ARGS 6   /* scalar arguments of a sample case */
#define NB_OP_MAX_POKES 6  /* elements a sample input sets after drawing */

typedef enum nb_sample_kind {
    NB_SAMPLE_NONE = 0, /* the slot is NULL (an optional input left out) */
    NB_SAMPLE_PARAM,    /* f64, requires grad, U[lo, hi); |x| >= away when away > 0 */
    NB_SAMPLE_TARGETS,  /* i64 class ids drawn below (int64_t)hi, not differentiable */
    NB_SAMPLE_PROBS,    /* f64 U[0, 1), each row of the last dim divided by its sum */
    NB_SAMPLE_ONES,     /* ones of `dtype` (a mask), then the pokes */
    NB_SAMPLE_RAND      /* f64 U[lo, hi), not differentiable (class weights) */
} nb_sample_kind;

typedef struct nb_sample_poke {
    int64_t at; /* element index; < 0 counts from the end (-1: the last) */
    double value;
} nb_sample_poke;

typedef struct nb_sample_input {
    nb_sample_kind kind;
    nb_dtype dtype; /* NB_SAMPLE_ONES only */
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    double lo, hi, away;
    double offset; /* PARAM: + offset on odd elements, - offset on even ones (large logits) */
    int n_pokes;
    nb_sample_poke pokes[NB_OP_MAX_POKES];
} nb_sample_input;

/* One gradcheck problem: inputs made in slot order from one generator, the arguments `apply`
 * reads, and a note printed after the input shapes. */
typedef struct nb_op_case {
    const char *note; /* NULL: none */
    int n_inputs;     /* inputs passed to the op (NULL slots included) */
    int n_shown;      /* inputs whose shapes describe the case (0: all n_inputs) */
    nb_sample_input in[NB_OP_MAX_INPUTS];
    double args[NB_OP_MAX_ARGS];
} nb_op_case;

typedef struct nb_op_info nb_op_info;
/* The op applied to in[0 .. n_in) with the case's arguments; NULL + error as any op. */
typedef nb_tensor *(*nb_op_apply_fn)(const nb_op_info *op, nb_graph *g, nb_tensor *const *in,
                                     int n_in, const double *args);

struct nb_op_info {
    const char *name;    /* as nb_tensor_op_name reports it */
    const char *formula; /* one line */
    int arity;           /* most inputs */
    nb_op_apply_fn apply;
    int n_cases;
    const nb_op_case *cases;
};

#ifdef __cplusplus
}
#endif
#endif
