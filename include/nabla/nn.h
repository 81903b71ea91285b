/* nabla/nn.h - layers: Linear, an MLP builder, initialisers (dropout, the op, is in nabla/ops.h).
 *
 * Parameters are stored as PyTorch stores them: Linear weight [out, in], bias [out], so that
 * y = x W^T + b, and a checkpoint's `layers.0.weight` loads into
 * torch.nn.Linear(in, out).weight unchanged.
 *
 * Ownership: nb_mlp_new's model is the caller's, released with nb_mlp_free, which frees its
 * weight and bias tensors: they belong to the model (never nb_tensor_free them), and
 * nb_mlp_param hands them out borrowed, valid until nb_mlp_free. nb_mlp_forward's x is borrowed
 * as any op input (nabla/ops.h), and the model must outlive the graph's use of its parameters
 * (until nb_backward has run or the graph is reset); the logits belong to the graph.
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_activation {
    NB_ACT_RELU = 0,
    NB_ACT_TANH,
    NB_ACT_GELU,
    NB_ACT_SIGMOID,
    NB_ACT_LEAKY_RELU /* slope 0.01 */
} nb_activation;
/* false / "unknown" and NB_ERR_ARG for a NULL or unknown name / value. Names are static. */
bool nb_activation_parse(const char *s, nb_activation *a);
const char *nb_activation_name(nb_activation a);

typedef enum nb_init {
    NB_INIT_DEFAULT = 0, /* PyTorch's nn.Linear: kaiming_uniform(a = sqrt 5), i.e. weights and
                            biases U(-1/sqrt(in), 1/sqrt(in)) */
    NB_INIT_XAVIER,      /* Glorot uniform: U(-b, b), b = sqrt(6 / (in + out)); biases 0 */
    NB_INIT_HE           /* Kaiming normal for ReLU: N(0, 2 / in); biases 0 */
} nb_init;
bool nb_init_parse(const char *s, nb_init *i);

#define NB_MLP_MAX_LAYERS 16

typedef struct nb_mlp {
    int n_layers; /* Linear layers */
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    nb_tensor *weight[NB_MLP_MAX_LAYERS]; /* [sizes[i+1], sizes[i]] */
    nb_tensor *bias[NB_MLP_MAX_LAYERS];   /* [sizes[i+1]] */
    nb_activation act;
    double dropout; /* after each hidden activation, in training mode */
    bool training;
    nb_rng rng; /* dropout masks */
    nb_dtype dtype;
} nb_mlp;

/* An MLP sizes[0] -> sizes[1] -> ... -> sizes[n-1]: Linear, activation (and dropout) between
 * layers, no activation after the last (it outputs logits). n >= 2. Parameters are f32 or f64,
 * require grad, and are initialised from a generator seeded with `seed`. */
nb_mlp *nb_mlp_new(const int64_t *sizes, int n_sizes, nb_activation act, nb_init init,
                   double dropout, nb_dtype dtype, uint64_t seed);
void nb_mlp_free(nb_mlp *m); /* NULL-safe */
/* x [N, sizes[0]] -> logits [N, sizes[n-1]] on g. The functions below given a NULL model (or
 * one whose n_layers is outside [1, NB_MLP_MAX_LAYERS]) set NB_ERR_ARG and return NULL / 0 or do
 * nothing; nb_mlp_param with i outside [0, 2 n_layers) is NB_ERR_RANGE. */
nb_tensor *nb_mlp_forward(nb_graph *g, nb_mlp *m, nb_tensor *x);
/* The same up to the input of the last layer: x [N, sizes[0]] -> the last hidden activation
 * [N, sizes[n_layers - 1]] (after the activation and, in training mode, the dropout; x itself
 * when the model has one layer), so that nb_mlp_forward = nb_linear(that, weight[n_layers - 1],
 * bias[n_layers - 1]) and a fused head (nb_linear_cross_entropy, nabla/lce.h) can take its
 * place. */
nb_tensor *nb_mlp_forward_hidden(nb_graph *g, nb_mlp *m, nb_tensor *x);
void nb_mlp_set_training(nb_mlp *m, bool training);
/* The parameters in state_dict order (layers.0.weight, layers.0.bias, layers.1.weight, ...). */
int nb_mlp_param_count(const nb_mlp *m);
/* name (may be NULL) is the caller's buffer of name_len bytes, receiving "layers.0.weight". */
nb_tensor *nb_mlp_param(const nb_mlp *m, int i, char *name, size_t name_len);
int64_t nb_mlp_numel(const nb_mlp *m);

#ifdef __cplusplus
}
#endif
#endif
