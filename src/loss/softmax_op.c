/* softmax_op.c - the log-softmax family as graph ops (logsumexp, log_softmax, softmax over the
 * last dim); the forward kernels are in softmax.c, the backward ones here.
 *
 *   logsumexp:   dz_j += dy p_j,                      p = exp(z - y)
 *   log_softmax: dz_j += dy_j - p_j sum_k dy_k,       p = exp(y)
 *   softmax:     dz_j += p_j (dy_j - sum_k dy_k p_k), p = y
 * Row sums are accumulated in double; every loop reads typed f32/f64 memory. */
#include <math.h>

#include "nabla/loss.h"
#include "loss_ops.h"

typedef enum { SM_LOGSUMEXP, SM_LOG_SOFTMAX, SM_SOFTMAX } sm_kind;

static nb_tensor *softmax_family(nb_graph *g, const nb_opdef *op, nb_tensor *z)
{
    const char *name = op->info.name;
    sm_kind k = *(const sm_kind *)op->kernel;
    if (!nb_op_inputs_ok(g, name, &z, 1) || nb_check_float_same(name, &z, 1) != NB_OK)
        return NULL;
    if (z->ndim < 1) {
        nb_error(NB_ERR_SHAPE, "%s: needs at least 1 dimension, got a 0-d tensor", name);
        return NULL;
    }
    nb_tensor *y = k == SM_LOGSUMEXP ? nb_graph_new_tensor(g, z->dtype, z->ndim - 1, z->shape)
                                     : nb_graph_new_tensor(g, z->dtype, z->ndim, z->shape);
    if (!y)
        return NULL;
    nb_status s = k == SM_LOGSUMEXP ? nb_logsumexp_rows(z, y)
                  : k == SM_SOFTMAX ? nb_softmax_rows(z, y)
                                    : nb_log_softmax_rows(z, y);
    if (s != NB_OK)
        return NULL;
    nb_node *n;
    if (nb_graph_record(g, op, y, &z, 1, &n) != NB_OK)
        return NULL;
    return y;
}

/* One row of backward over element type T: Z the row of z, Y of y (logsumexp: its one value),
 * D of dy, G of dz; DOT the lane dot product for T. */
#define SOFTMAX_ROW_BACKWARD(T, DOT, K, Z, Y, D, G, V)                                             \
    do {                                                                                           \
        const T *restrict z_ = (Z), *restrict y_ = (Y), *restrict d_ = (D);                        \
        T *restrict g_ = (G);                                                                      \
        if ((K) == SM_LOGSUMEXP) {                                                                 \
            double lse = y_[0], dy = d_[0];                                                        \
            if (dy == 0.0)                                                                         \
                break;                                                                             \
            for (int64_t j = 0; j < (V); j++)                                                      \
                g_[j] += (T)(dy * exp(z_[j] - lse));                                               \
        } else if ((K) == SM_LOG_SOFTMAX) {                                                        \
            double sdy = 0.0;                                                                      \
            for (int64_t j = 0; j < (V); j++)                                                      \
                sdy += d_[j];                                                                      \
            for (int64_t j = 0; j < (V); j++)                                                      \
                g_[j] += (T)(d_[j] - exp(y_[j]) * sdy);                                            \
        } else {                                                                                   \
            double dot = DOT(d_, y_, (V)); /* sum_j dy_j y_j, in lanes (ops_internal.h) */         \
            for (int64_t j = 0; j < (V); j++)                                                      \
                g_[j] += (T)(y_[j] * (d_[j] - dot));                                               \
        }                                                                                          \
    } while (0)

/* Every row's backward, for one element type: vector loops of the widest vectors the CPU has
 * (NB_VECTOR_CLONES) */
#define SOFTMAX_BACKWARD_ROWS(NAME, T, DOT)                                                        \
    NB_VECTOR_CLONES static void NAME(sm_kind k, const T *z, const T *y, const T *gy, T *gz,       \
                                      int64_t rows, int64_t V)                                     \
    {                                                                                              \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            int64_t o = r * V, oy = k == SM_LOGSUMEXP ? r : o;                                     \
            SOFTMAX_ROW_BACKWARD(T, DOT, k, z + o, y + oy, gy + oy, gz + o, V);                    \
        }                                                                                          \
    }
SOFTMAX_BACKWARD_ROWS(softmax_backward_f64, double, nb_dot_lanes_f64)
SOFTMAX_BACKWARD_ROWS(softmax_backward_f32, float, nb_dot_lanes_f32)

static nb_status softmax_family_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *z = n->in[0], *y = n->out;
    sm_kind k = *(const sm_kind *)n->op->kernel;
    void *gz;
    nb_status s = nb_grad_buffer(g, z, &gz);
    if (s != NB_OK || !gz)
        return s;
    int64_t V = z->shape[z->ndim - 1], rows = V ? z->numel / V : 0;
    if (z->dtype == NB_F64)
        softmax_backward_f64(k, z->data, y->data, y->grad, gz, rows, V);
    else
        softmax_backward_f32(k, z->data, y->data, y->grad, gz, rows, V);
    return NB_OK;
}

static nb_tensor *softmax_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                                const double *args)
{
    (void)n_in, (void)args;
    return softmax_family(g, (const nb_opdef *)op, in[0]);
}

/* ordinary rows, and rows shifted by a large offset (stability) */
static const nb_op_case row_cases[] = {
    {.n_inputs = 1,
     .in = {{.kind = NB_SAMPLE_PARAM, .ndim = 2, .shape = {3, 5}, .lo = -2, .hi = 2}}},
    {.n_inputs = 1,
     .in = {{.kind = NB_SAMPLE_PARAM, .ndim = 3, .shape = {2, 2, 4}, .lo = -2, .hi = 2}}},
    {.note = "offsets +-20",
     .n_inputs = 1,
     .in =
         {{.kind = NB_SAMPLE_PARAM, .ndim = 2, .shape = {3, 5}, .lo = -2, .hi = 2, .offset = 20}}},
};

#define SOFTMAX_OP(NAME, FORMULA, KIND)                                                            \
    static const sm_kind NAME##_kind = KIND;                                                       \
    static const nb_opdef op_##NAME = {{#NAME, FORMULA, 1, softmax_apply,                          \
                                        (int)(sizeof row_cases / sizeof row_cases[0]), row_cases}, \
                                       softmax_family_backward,                                    \
                                       0,                                                          \
                                       &NAME##_kind};                                              \
    nb_tensor *nb_##NAME(nb_graph *g, nb_tensor *z)                                                \
    {                                                                                              \
        return softmax_family(g, &op_##NAME, z);                                                   \
    }

SOFTMAX_OP(logsumexp, "m + log sum_j exp(z_j - m)", SM_LOGSUMEXP)
SOFTMAX_OP(log_softmax, "z - lse(z)", SM_LOG_SOFTMAX)
SOFTMAX_OP(softmax, "exp(z - lse(z))", SM_SOFTMAX)

NB_OP_LIST(nb_softmax_ops, &op_logsumexp, &op_log_softmax, &op_softmax);
