/* mlp.c - the MLP builder and PyTorch's initialisers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nn.h"
#include "nabla/ops.h"
#include "../tensor/tensor_internal.h"

bool nb_activation_parse(const char *s, nb_activation *a)
{
    static const char *const names[] = {"relu", "tanh", "gelu", "sigmoid", "leaky_relu"};
    if (!s || !a) {
        nb_error(NB_ERR_ARG, "nb_activation_parse: %s is NULL", !s ? "s" : "a");
        return false;
    }
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *a = (nb_activation)i;
            return true;
        }
    nb_error(NB_ERR_ARG,
             "nb_activation_parse: unknown activation '%s' (relu, tanh, gelu, sigmoid, leaky_relu)",
             s);
    return false;
}

const char *nb_activation_name(nb_activation a)
{
    static const char *const names[] = {"relu", "tanh", "gelu", "sigmoid", "leaky_relu"};
    if ((unsigned)a >= 5) {
        nb_error(NB_ERR_ARG, "nb_activation_name: activation %d out of range [0, 5)", (int)a);
        return "unknown";
    }
    return names[a];
}

bool nb_init_parse(const char *s, nb_init *i)
{
    if (!s || !i) {
        nb_error(NB_ERR_ARG, "nb_init_parse: %s is NULL", !s ? "s" : "i");
        return false;
    }
    if (!strcmp(s, "default") || !strcmp(s, "pytorch"))
        *i = NB_INIT_DEFAULT;
    else if (!strcmp(s, "xavier"))
        *i = NB_INIT_XAVIER;
    else if (!strcmp(s, "he") || !strcmp(s, "kaiming"))
        *i = NB_INIT_HE;
    else {
        nb_error(NB_ERR_ARG,
                 "nb_init_parse: unknown init '%s' (default, pytorch, xavier, he, "
                 "kaiming)",
                 s);
        return false;
    }
    return true;
}

void nb_mlp_free(nb_mlp *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++) {
        nb_tensor_free(m->weight[i]);
        nb_tensor_free(m->bias[i]);
    }
    free(m);
}

static nb_mlp *mlp_new(const int64_t *sizes, int n_sizes, nb_activation act, nb_init init,
                       double dropout, nb_dtype dtype, uint64_t seed)
{
    if (!sizes || n_sizes < 2 || n_sizes > NB_MLP_MAX_LAYERS + 1) {
        nb_error(NB_ERR_ARG, "mlp: need 2 to %d layer sizes, got %d", NB_MLP_MAX_LAYERS + 1,
                 n_sizes);
        return NULL;
    }
    for (int i = 0; i < n_sizes; i++)
        if (sizes[i] < 1 || sizes[i] > (1 << 24)) {
            nb_error(NB_ERR_ARG, "mlp: layer size %lld at position %d must be in [1, %d]",
                     (long long)sizes[i], i, 1 << 24);
            return NULL;
        }
    if ((unsigned)act > NB_ACT_LEAKY_RELU || (unsigned)init > NB_INIT_HE) {
        nb_error(NB_ERR_ARG, "mlp: unknown activation %d or init %d", (int)act, (int)init);
        return NULL;
    }
    if (!(dropout >= 0.0 && dropout < 1.0)) {
        nb_error(NB_ERR_ARG, "mlp: dropout %g outside [0, 1)", dropout);
        return NULL;
    }
    if (dtype != NB_F32 && dtype != NB_F64) {
        nb_error(NB_ERR_DTYPE, "mlp: parameters must be f32 or f64, got %s", nb_dtype_name(dtype));
        return NULL;
    }
    nb_mlp *m = calloc(1, sizeof *m);
    if (!m) {
        nb_error(NB_ERR_NOMEM, "out of memory allocating an MLP");
        return NULL;
    }
    m->n_layers = n_sizes - 1;
    memcpy(m->sizes, sizes, sizeof(int64_t) * (size_t)n_sizes);
    m->act = act;
    m->dropout = dropout;
    m->training = true;
    m->dtype = dtype;
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_rng_seed(&m->rng, seed ^ 0x5deece66dull);
    for (int i = 0; i < m->n_layers; i++) {
        int64_t in = sizes[i], out = sizes[i + 1], sw[2] = {out, in}, sb[1] = {out};
        m->weight[i] = nb_tensor_empty(dtype, 2, sw);
        m->bias[i] = nb_tensor_empty(dtype, 1, sb);
        if (!m->weight[i] || !m->bias[i])
            goto fail;
        nb_status s;
        if (init == NB_INIT_DEFAULT) {
            double bound = 1.0 / sqrt((double)in);
            s = nb_tensor_fill_rand(m->weight[i], &r, -bound, bound);
            if (s == NB_OK)
                s = nb_tensor_fill_rand(m->bias[i], &r, -bound, bound);
        } else if (init == NB_INIT_XAVIER) {
            double bound = sqrt(6.0 / (double)(in + out));
            s = nb_tensor_fill_rand(m->weight[i], &r, -bound, bound);
            memset(m->bias[i]->data, 0, (size_t)out * nb_dtype_size(dtype));
        } else {
            s = nb_tensor_fill_randn(m->weight[i], &r, 0.0, sqrt(2.0 / (double)in));
            memset(m->bias[i]->data, 0, (size_t)out * nb_dtype_size(dtype));
        }
        if (s != NB_OK || nb_tensor_set_requires_grad(m->weight[i], true) != NB_OK ||
            nb_tensor_set_requires_grad(m->bias[i], true) != NB_OK)
            goto fail;
    }
    return m;
fail:
    nb_mlp_free(m);
    return NULL;
}

nb_mlp *nb_mlp_new(const int64_t *sizes, int n_sizes, nb_activation act, nb_init init,
                   double dropout, nb_dtype dtype, uint64_t seed)
{
    nb_mlp *m = mlp_new(sizes, n_sizes, act, init, dropout, dtype, seed);
    if (!m)
        nb_error_in("nb_mlp_new", nb_last_status());
    return m;
}

/* entry check of a model argument: non-NULL and a layer count in range */
static bool mlp_ok(const char *fn, const nb_mlp *m)
{
    if (!m)
        nb_error(NB_ERR_ARG, "%s: m is NULL", fn);
    else if (m->n_layers < 1 || m->n_layers > NB_MLP_MAX_LAYERS)
        nb_error(NB_ERR_ARG, "%s: m has %d layers, out of range [1, %d]", fn, m->n_layers,
                 NB_MLP_MAX_LAYERS);
    else
        return true;
    return false;
}

void nb_mlp_set_training(nb_mlp *m, bool training)
{
    if (mlp_ok("nb_mlp_set_training", m))
        m->training = training;
}

static nb_tensor *activate(nb_graph *g, nb_activation a, nb_tensor *x)
{
    switch (a) {
    case NB_ACT_TANH: return nb_tanh(g, x);
    case NB_ACT_GELU: return nb_gelu(g, x);
    case NB_ACT_SIGMOID: return nb_sigmoid(g, x);
    case NB_ACT_LEAKY_RELU: return nb_leaky_relu(g, x, 0.01);
    default: return nb_relu(g, x);
    }
}

/* The layers before the last: x [N, sizes[0]] -> h [N, sizes[n_layers - 1]], each a Linear,
 * the activation and (training) dropout; x itself when the model has one layer. fn names the
 * public caller in messages. */
static nb_tensor *forward_hidden(const char *fn, nb_graph *g, nb_mlp *m, nb_tensor *x)
{
    if (!g) {
        nb_error(NB_ERR_ARG, "%s: g is NULL", fn);
        return NULL;
    }
    if (!mlp_ok(fn, m) || nb_check_tensor(fn, "x", x) != NB_OK)
        return NULL;
    if (x && (x->ndim != 2 || x->shape[1] != m->sizes[0])) {
        char s[64];
        nb_error(NB_ERR_SHAPE,
                 "%s: input %s does not match the model's input size %lld (need [N, %lld])", fn,
                 nb_shape_str(x, s, sizeof s), (long long)m->sizes[0], (long long)m->sizes[0]);
        return NULL;
    }
    nb_tensor *h = x;
    for (int i = 0; i + 1 < m->n_layers; i++) {
        if (m->act == NB_ACT_RELU) /* one op, the same bits, fewer passes */
            h = nb_linear_relu(g, h, m->weight[i], m->bias[i]);
        else
            h = activate(g, m->act, nb_linear(g, h, m->weight[i], m->bias[i]));
        if (m->training && m->dropout > 0.0)
            h = nb_dropout(g, h, m->dropout, &m->rng);
    }
    return h;
}

nb_tensor *nb_mlp_forward_hidden(nb_graph *g, nb_mlp *m, nb_tensor *x)
{
    return forward_hidden("nb_mlp_forward_hidden", g, m, x);
}

nb_tensor *nb_mlp_forward(nb_graph *g, nb_mlp *m, nb_tensor *x)
{
    nb_tensor *h = forward_hidden("nb_mlp_forward", g, m, x);
    if (!h)
        return NULL;
    int last = m->n_layers - 1;
    return nb_linear(g, h, m->weight[last], m->bias[last]);
}

int nb_mlp_param_count(const nb_mlp *m)
{
    return mlp_ok("nb_mlp_param_count", m) ? 2 * m->n_layers : 0;
}

nb_tensor *nb_mlp_param(const nb_mlp *m, int i, char *name, size_t name_len)
{
    if (!mlp_ok("nb_mlp_param", m))
        return NULL;
    if (i < 0 || i >= 2 * m->n_layers) {
        nb_error(NB_ERR_RANGE, "nb_mlp_param: index %d out of range [0, %d)", i, 2 * m->n_layers);
        return NULL;
    }
    if (name && name_len)
        snprintf(name, name_len, "layers.%d.%s", i / 2, i % 2 ? "bias" : "weight");
    return i % 2 ? m->bias[i / 2] : m->weight[i / 2];
}

int64_t nb_mlp_numel(const nb_mlp *m)
{
    int64_t n = 0;
    if (!mlp_ok("nb_mlp_numel", m))
        return 0;
    for (int i = 0; i < 2 * m->n_layers; i++) {
        const nb_tensor *p = nb_mlp_param(m, i, NULL, 0);
        if (p)
            n += p->numel;
    }
    return n;
}
