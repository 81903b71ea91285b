/* graph_internal.h - the tape's node layout and the helpers ops use to record themselves.
 * Not installed. */
#ifndef NABLA_GRAPH_INTERNAL_H
#define NABLA_GRAPH_INTERNAL_H

#include "nabla/graph.h"
#include "../tensor/tensor_internal.h"

typedef struct nb_node nb_node;

/* Accumulate (+=) the gradients of n's inputs from n->out's gradient. */
typedef nb_status (*nb_backward_fn)(nb_graph *g, nb_node *n);

/* Flags of an op record. */
enum {
    /* Backward computes its input's whole gradient in one go: the first time it may write (=)
     * instead of accumulating (nb_grad_buffer_for_write). */
    NB_OPF_WRITES_INPUT_GRAD = 1u << 0,
    /* Forward reads only the input rows its targets select (the fused loss skips padding), so
     * anomaly detection checks its output, not its inputs. */
    NB_OPF_READS_SELECTED_ROWS = 1u << 1,
};

/* The record of an op: its public part (name, formula, arity, apply, sample cases), and what
 * the tape needs. Each op's file defines its record; the node points at it, so the record is
 * the op's kind. `kernel` is the op family's own data (a unary op's typed loops). */
typedef struct nb_opdef {
    nb_op_info info; /* first: a record is its public info */
    nb_backward_fn backward;
    unsigned flags;
    const void *kernel;
} nb_opdef;

/* The records one file defines, as the op table sees them: a list the file builds with
 * NB_OP_LIST (which checks its size at compile time), and src/loss/op_table.c walks. */
#define NB_OPS_PER_FILE_MAX 32
typedef struct nb_op_list {
    const nb_opdef *const *ops;
    int count;
} nb_op_list;
#define NB_OP_LIST(var, ...)                                                                       \
    static const nb_opdef *const var##_records[] = {__VA_ARGS__};                                  \
    _Static_assert(sizeof var##_records / sizeof var##_records[0] <= NB_OPS_PER_FILE_MAX,          \
                   "more ops in one file than NB_OPS_PER_FILE_MAX");                               \
    const nb_op_list var = {var##_records, (int)(sizeof var##_records / sizeof var##_records[0])}

struct nb_node {
    const nb_opdef *op; /* the op's record: its kind */
    nb_tensor *in[NB_OP_MAX_INPUTS];
    int n_in;
    nb_tensor *out;
    double p[4];        /* scalar parameters (slope, scale, smoothing, ...) */
    int64_t ip[4];      /* integer parameters (transpose flags, ignore_index, ...) */
    void *saved;        /* arena memory the op keeps for backward */
    const void *aux[4]; /* non-differentiable tensors (targets, mask, weight) */
};

/* Memory from the step arena, 64-byte aligned, uninitialised; lives until reset. NULL + error
 * on allocation failure. */
void *nb_arena_alloc(nb_graph *g, size_t bytes);

/* A new arena tensor (data uninitialised) owned by g in the current generation. */
nb_tensor *nb_graph_new_tensor(nb_graph *g, nb_dtype t, int ndim, const int64_t *shape);

/* Checks the inputs of an op: non-NULL (NULL = an earlier op failed: keep its error), not stale,
 * not from another graph. Returns false when the op must return NULL. */
bool nb_op_inputs_ok(nb_graph *g, const char *opname, nb_tensor *const *in, int n);

/* If any input requires grad and recording is on, marks out as requiring grad and appends a node;
 * *node receives it (NULL when nothing is recorded). n_in outside [0, NB_OP_MAX_INPUTS] is
 * NB_ERR_ARG naming the op (nothing is recorded). */
nb_status nb_graph_record(nb_graph *g, const nb_opdef *op, nb_tensor *out, nb_tensor *const *in,
                          int n_in, nb_node **node);

/* The gradient buffer of t for backward to accumulate into, allocated (zeroed) in the arena on
 * first use for arena tensors. *buf = NULL when t does not take a gradient. */
nb_status nb_grad_buffer(nb_graph *g, nb_tensor *t, void **buf);

/* As nb_grad_buffer, for a backward that computes its input's whole gradient in one go: when
 * the buffer does not exist yet it is allocated without zeroing and *overwrite is set, and the
 * caller must write every element (=) instead of accumulating (+=). */
nb_status nb_grad_buffer_for_write(nb_graph *g, nb_tensor *t, void **buf, bool *overwrite);

#endif
