/* optable.c - the one table of ops: what the tape can record (nb_opdefs, with each op's backward)
 * and, for each op, sample problems that `nabla gradcheck` and tests/test_gradcheck.c check by
 * central differences in float64. */
#include <math.h>
#include <string.h>

#include "backward_fns.h"
#include "nabla/loss.h"
#include "nabla/nn.h"

const nb_opdef nb_opdefs[NB_OPK_COUNT] = {
    [NB_OPK_MATMUL] = {"matmul", nb_matmul_backward},
    [NB_OPK_LINEAR] = {"linear", nb_linear_backward},
    [NB_OPK_ADD] = {"add", nb_binary_backward_entry},
    [NB_OPK_SUB] = {"sub", nb_binary_backward_entry},
    [NB_OPK_MUL] = {"mul", nb_binary_backward_entry},
    [NB_OPK_DIV] = {"div", nb_binary_backward_entry},
    [NB_OPK_NEG] = {"neg", nb_unary_backward_entry},
    [NB_OPK_SCALE] = {"scale", nb_unary_backward_entry},
    [NB_OPK_RELU] = {"relu", nb_unary_backward_entry},
    [NB_OPK_LEAKY_RELU] = {"leaky_relu", nb_unary_backward_entry},
    [NB_OPK_TANH] = {"tanh", nb_unary_backward_entry},
    [NB_OPK_SIGMOID] = {"sigmoid", nb_unary_backward_entry},
    [NB_OPK_GELU] = {"gelu", nb_unary_backward_entry},
    [NB_OPK_EXP] = {"exp", nb_unary_backward_entry},
    [NB_OPK_LOG] = {"log", nb_unary_backward_entry},
    [NB_OPK_SUM] = {"sum", nb_reduce_backward},
    [NB_OPK_MEAN] = {"mean", nb_reduce_backward},
    [NB_OPK_SUM_LAST] = {"sum_last", nb_reduce_backward},
    [NB_OPK_MEAN_LAST] = {"mean_last", nb_reduce_backward},
    [NB_OPK_RESHAPE] = {"reshape", nb_reshape_backward},
    [NB_OPK_TRANSPOSE] = {"transpose", nb_transpose_backward},
    [NB_OPK_LOGSUMEXP] = {"logsumexp", nb_softmax_family_backward},
    [NB_OPK_LOG_SOFTMAX] = {"log_softmax", nb_softmax_family_backward},
    [NB_OPK_SOFTMAX] = {"softmax", nb_softmax_family_backward},
    [NB_OPK_GATHER_LAST] = {"gather_last", nb_gather_last_backward},
    [NB_OPK_CROSS_ENTROPY] = {"cross_entropy", nb_xent_op_backward},
    [NB_OPK_CROSS_ENTROPY_SOFT] = {"cross_entropy_soft", nb_xent_op_backward},
    [NB_OPK_DROPOUT] = {"dropout", nb_dropout_backward},
};

const char *const *nb_op_kernel_names(void)
{
    static const char *names[NB_OPK_COUNT + 1];
    for (int i = 0; i < NB_OPK_COUNT; i++)
        names[i] = nb_opdefs[i].name;
    names[NB_OPK_COUNT] = NULL;
    return names;
}

/* ---- sample problems ---- */

/* A differentiable f64 input: uniform in [lo, hi), or with |x| >= away when away > 0 (keeps
 * relu/leaky_relu/div away from their kinks and poles). */
static nb_tensor *param(nb_rng *r, int ndim, const int64_t *shape, double lo, double hi,
                        double away)
{
    nb_tensor *t = nb_tensor_rand(NB_F64, ndim, shape, r, lo, hi);
    if (!t)
        return NULL;
    if (away > 0)
        for (int64_t i = 0; i < t->numel; i++) {
            double v = nb_tensor_get(t, i);
            nb_tensor_set(t, i, v >= 0 ? v + away : v - away);
        }
    if (nb_tensor_set_requires_grad(t, true) != NB_OK) {
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}

static nb_status done(nb_tensor **in, int n, int *n_inputs)
{
    *n_inputs = n;
    for (int i = 0; i < n; i++)
        if (!in[i]) {
            for (int j = 0; j < n; j++)
                nb_tensor_free(in[j]), in[j] = NULL;
            return nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
        }
    return NB_OK;
}

static void describe(char *desc, size_t len, nb_tensor *const *in, int n, const char *extra)
{
    size_t used = 0;
    desc[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        if (!in[i])
            continue;
        char s[64];
        used += (size_t)snprintf(desc + used, len - used, "%s%s", used ? " " : "",
                                 nb_shape_str(in[i], s, sizeof s));
    }
    if (extra && *extra && used < len)
        snprintf(desc + used, len - used, " %s", extra);
}

/* matmul: the four transpose combinations of [3,4] x [4,5] */
static nb_status mk_matmul(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    bool ta = k & 1, tb = k & 2;
    int64_t sa[2] = {ta ? 4 : 3, ta ? 3 : 4}, sb[2] = {tb ? 5 : 4, tb ? 4 : 5};
    in[0] = param(r, 2, sa, -1, 1, 0);
    in[1] = param(r, 2, sb, -1, 1, 0);
    describe(d, dl, in, 2, ta && tb ? "A^T B^T" : ta ? "A^T B" : tb ? "A B^T" : "A B");
    return done(in, 2, n);
}
static nb_tensor *ap_matmul(nb_graph *g, int k, nb_tensor *const *in)
{
    return nb_matmul(g, in[0], in[1], k & 1, k & 2);
}

static nb_status mk_linear(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    int64_t sx[2] = {3, 4}, sw[2] = {5, 4}, sb[1] = {5};
    in[0] = param(r, 2, sx, -1, 1, 0);
    in[1] = param(r, 2, sw, -1, 1, 0);
    in[2] = k == 0 ? param(r, 1, sb, -1, 1, 0) : NULL;
    describe(d, dl, in, 3, k == 0 ? "x W^T + b" : "x W^T");
    return done(in, k == 0 ? 3 : 2, n);
}
static nb_tensor *ap_linear(nb_graph *g, int k, nb_tensor *const *in)
{
    return nb_linear(g, in[0], in[1], k == 0 ? in[2] : NULL);
}

/* binary: same shape, row (bias), scalar, row on the left, 3-D with a row */
static nb_status mk_binary(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl,
                           double away)
{
    int64_t full[2] = {3, 4}, row[1] = {4}, one[1] = {1}, cube[3] = {2, 3, 4};
    double lo = away > 0 ? -1.5 : -1, hi = away > 0 ? 1.5 : 1;
    switch (k) {
    case 0: in[0] = param(r, 2, full, lo, hi, 0), in[1] = param(r, 2, full, lo, hi, away); break;
    case 1: in[0] = param(r, 2, full, lo, hi, 0), in[1] = param(r, 1, row, lo, hi, away); break;
    case 2: in[0] = param(r, 2, full, lo, hi, 0), in[1] = param(r, 1, one, lo, hi, away); break;
    case 3: in[0] = param(r, 1, row, lo, hi, away), in[1] = param(r, 2, full, lo, hi, away); break;
    default: in[0] = param(r, 3, cube, lo, hi, 0), in[1] = param(r, 1, row, lo, hi, away); break;
    }
    describe(d, dl, in, 2, NULL);
    return done(in, 2, n);
}
static nb_status mk_addsubmul(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    return mk_binary(k, r, in, n, d, dl, 0);
}
static nb_status mk_div(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    return mk_binary(k, r, in, n, d, dl, 0.5);
}
static nb_tensor *ap_add(nb_graph *g, int k, nb_tensor *const *in)
{
    (void)k;
    return nb_add(g, in[0], in[1]);
}
static nb_tensor *ap_sub(nb_graph *g, int k, nb_tensor *const *in)
{
    (void)k;
    return nb_sub(g, in[0], in[1]);
}
static nb_tensor *ap_mul(nb_graph *g, int k, nb_tensor *const *in)
{
    (void)k;
    return nb_mul(g, in[0], in[1]);
}
static nb_tensor *ap_div(nb_graph *g, int k, nb_tensor *const *in)
{
    (void)k;
    return nb_div(g, in[0], in[1]);
}

/* unary: [3,4] and [2,3,2]; kinked ops keep inputs away from 0, log gets positive inputs */
static nb_status mk_unary_range(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl,
                                double lo, double hi, double away)
{
    int64_t s2[2] = {3, 4}, s3[3] = {2, 3, 2};
    in[0] = k == 0 ? param(r, 2, s2, lo, hi, away) : param(r, 3, s3, lo, hi, away);
    describe(d, dl, in, 1, NULL);
    return done(in, 1, n);
}
static nb_status mk_smooth(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    return mk_unary_range(k, r, in, n, d, dl, -2, 2, 0);
}
static nb_status mk_kinked(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    return mk_unary_range(k, r, in, n, d, dl, -1.5, 1.5, 0.1);
}
static nb_status mk_positive(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    return mk_unary_range(k, r, in, n, d, dl, 0.2, 3, 0);
}
#define AP1(NAME, CALL)                                                                            \
    static nb_tensor *ap_##NAME(nb_graph *g, int k, nb_tensor *const *in)                          \
    {                                                                                              \
        (void)k;                                                                                   \
        return CALL;                                                                               \
    }
AP1(neg, nb_neg(g, in[0]))
AP1(scale, nb_scale(g, in[0], -2.5))
AP1(relu, nb_relu(g, in[0]))
AP1(leaky_relu, nb_leaky_relu(g, in[0], 0.01))
AP1(tanh, nb_tanh(g, in[0]))
AP1(sigmoid, nb_sigmoid(g, in[0]))
AP1(gelu, nb_gelu(g, in[0]))
AP1(exp, nb_exp(g, in[0]))
AP1(log, nb_log(g, in[0]))
AP1(sum, nb_sum(g, in[0]))
AP1(mean, nb_mean(g, in[0]))
AP1(sum_last, nb_sum_last(g, in[0]))
AP1(mean_last, nb_mean_last(g, in[0]))
AP1(transpose, nb_transpose(g, in[0]))
AP1(logsumexp, nb_logsumexp(g, in[0]))
AP1(log_softmax, nb_log_softmax(g, in[0]))
AP1(softmax, nb_softmax(g, in[0]))

static nb_tensor *ap_reshape(nb_graph *g, int k, nb_tensor *const *in)
{
    (void)k;
    int64_t s[2] = {2, in[0]->numel / 2};
    return nb_reshape(g, in[0], 2, s);
}

static nb_status mk_transpose(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    int64_t s[2] = {3, 5};
    (void)k;
    in[0] = param(r, 2, s, -1, 1, 0);
    describe(d, dl, in, 1, NULL);
    return done(in, 1, n);
}

/* softmax family: ordinary rows, and rows shifted by a large offset (stability) */
static nb_status mk_rows(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    int64_t s2[2] = {3, 5}, s3[3] = {2, 2, 4};
    in[0] = k == 1 ? param(r, 3, s3, -2, 2, 0) : param(r, 2, s2, -2, 2, 0);
    if (in[0] && k == 2)
        for (int64_t i = 0; i < in[0]->numel; i++)
            nb_tensor_set(in[0], i, nb_tensor_get(in[0], i) + (i % 2 ? 20.0 : -20.0));
    describe(d, dl, in, 1, k == 2 ? "offsets +-20" : NULL);
    return done(in, 1, n);
}

static nb_tensor *targets_for(nb_rng *r, int ndim, const int64_t *shape, int64_t V)
{
    nb_tensor *t = nb_tensor_empty(NB_I64, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            nb_tensor_set(t, i, (double)nb_rng_below(r, (uint64_t)V));
    return t;
}

static nb_status mk_gather(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    int64_t s[2] = {4, 5};
    (void)k;
    in[0] = param(r, 2, s, -1, 1, 0);
    in[1] = targets_for(r, 1, s, 5);
    describe(d, dl, in, 2, NULL);
    return done(in, 2, n);
}
static nb_tensor *ap_gather(nb_graph *g, int k, nb_tensor *const *in)
{
    (void)k;
    return nb_gather_last(g, in[0], in[1]);
}

/* ---- cross-entropy: one case per option combination ---- */

enum {
    XC_PLAIN,
    XC_IGNORE,
    XC_MASK_U8_BTV,
    XC_MASK_F64,
    XC_WEIGHT,
    XC_SMOOTH,
    XC_SMOOTH_WEIGHT_PAD,
    XC_SUM,
    XC_NONE_PAD,
    XC_NORMALISER,
    XC_ZLOSS_ALL,
    XC_ALL_PADDING,
    XC_V1,
    XC_VIA_OP,
    XC_COUNT
};
static const char *const xc_names[XC_COUNT] = {
    "mean",       "ignore_index=0",   "[B,T,V] u8 mask",    "f64 mask",
    "weights",    "smoothing 0.1",    "weights+smooth+pad", "sum",
    "none + pad", "normaliser 7",     "z_loss+all options", "all padding",
    "V=1",        "logits from an op"};

static nb_status mk_xent(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    int64_t V = k == XC_V1 ? 1 : 5;
    int64_t s2[2] = {6, V}, s3[3] = {2, 3, V};
    bool btv = k == XC_MASK_U8_BTV;
    in[0] = btv ? param(r, 3, s3, -3, 3, 0) : param(r, 2, s2, -3, 3, 0);
    in[1] = btv ? targets_for(r, 2, s3, V) : targets_for(r, 1, s2, V);
    in[2] = in[3] = NULL;
    if (in[1]) {
        if (k == XC_IGNORE || k == XC_SMOOTH_WEIGHT_PAD || k == XC_NONE_PAD)
            nb_tensor_set(in[1], 1, k == XC_IGNORE ? 0 : -100), nb_tensor_set(in[1], 4, 0);
        if (k == XC_IGNORE) /* make sure some targets are real: 0 is the pad id here */
            nb_tensor_set(in[1], 2, 3), nb_tensor_set(in[1], 3, 2);
        if (k == XC_ALL_PADDING || k == XC_ZLOSS_ALL)
            for (int64_t i = 0; i < in[1]->numel; i++)
                if (k == XC_ALL_PADDING || i == 5)
                    nb_tensor_set(in[1], i, -100);
    }
    if (k == XC_MASK_U8_BTV || k == XC_MASK_F64 || k == XC_ZLOSS_ALL) {
        in[2] = nb_tensor_ones(k == XC_MASK_U8_BTV ? NB_U8 : NB_F64, in[1] ? in[1]->ndim : 1,
                               in[1] ? in[1]->shape : s2);
        if (in[2]) /* variable lengths: drop the tail of each sequence */
            nb_tensor_set(in[2], 2, 0), nb_tensor_set(in[2], in[2]->numel - 1, 0);
    }
    if (k == XC_WEIGHT || k == XC_SMOOTH_WEIGHT_PAD || k == XC_ZLOSS_ALL) {
        int64_t sw[1] = {V};
        in[3] = nb_tensor_rand(NB_F64, 1, sw, r, 0.2, 2.0);
    }
    *n = 4;
    describe(d, dl, in, 1, xc_names[k]);
    for (int i = 0; i < 2; i++)
        if (!in[i]) {
            for (int j = 0; j < 4; j++)
                nb_tensor_free(in[j]), in[j] = NULL;
            return NB_ERR_NOMEM;
        }
    return NB_OK;
}

static nb_tensor *ap_xent(nb_graph *g, int k, nb_tensor *const *in)
{
    nb_xent_opts o = nb_xent_defaults();
    o.mask = in[2];
    o.weight = in[3];
    if (k == XC_IGNORE)
        o.ignore_index = 0;
    if (k == XC_SMOOTH || k == XC_SMOOTH_WEIGHT_PAD || k == XC_ZLOSS_ALL)
        o.label_smoothing = 0.1;
    if (k == XC_SUM)
        o.reduction = NB_REDUCTION_SUM;
    if (k == XC_NONE_PAD)
        o.reduction = NB_REDUCTION_NONE;
    if (k == XC_NORMALISER)
        o.normaliser = 7.0;
    if (k == XC_ZLOSS_ALL)
        o.z_loss = 1e-2;
    if (k == XC_VIA_OP) { /* logits made by an op: the backward writes their gradient (=) */
        o.label_smoothing = 0.2;
        return nb_cross_entropy(g, nb_scale(g, in[0], 1.5), in[1], &o);
    }
    return nb_cross_entropy(g, in[0], in[1], &o);
}

enum { XS_PLAIN, XS_SMOOTH_WEIGHT, XS_MASK_ZLOSS, XS_COUNT };

static nb_status mk_xent_soft(int k, nb_rng *r, nb_tensor **in, int *n, char *d, size_t dl)
{
    int64_t s[2] = {4, 5}, sw[1] = {5}, sm[1] = {4};
    in[0] = param(r, 2, s, -3, 3, 0);
    in[1] = nb_tensor_rand(NB_F64, 2, s, r, 0, 1);
    in[2] = in[3] = NULL;
    if (in[1]) /* normalise each row of targets to a distribution */
        for (int64_t i = 0; i < 4; i++) {
            double t = 0;
            for (int64_t j = 0; j < 5; j++)
                t += nb_tensor_get(in[1], i * 5 + j);
            for (int64_t j = 0; j < 5; j++)
                nb_tensor_set(in[1], i * 5 + j, nb_tensor_get(in[1], i * 5 + j) / t);
        }
    if (k == XS_MASK_ZLOSS) {
        in[2] = nb_tensor_ones(NB_BOOL, 1, sm);
        if (in[2])
            nb_tensor_set(in[2], 1, 0);
    }
    if (k == XS_SMOOTH_WEIGHT)
        in[3] = nb_tensor_rand(NB_F64, 1, sw, r, 0.2, 2.0);
    *n = 4;
    describe(d, dl, in, 1,
             k == XS_PLAIN           ? "probabilities"
             : k == XS_SMOOTH_WEIGHT ? "smooth+weights"
                                     : "mask+z_loss");
    for (int i = 0; i < 2; i++)
        if (!in[i]) {
            for (int j = 0; j < 4; j++)
                nb_tensor_free(in[j]), in[j] = NULL;
            return NB_ERR_NOMEM;
        }
    return NB_OK;
}

static nb_tensor *ap_xent_soft(nb_graph *g, int k, nb_tensor *const *in)
{
    nb_xent_opts o = nb_xent_defaults();
    o.mask = in[2];
    o.weight = in[3];
    if (k == XS_SMOOTH_WEIGHT)
        o.label_smoothing = 0.2;
    if (k == XS_MASK_ZLOSS)
        o.z_loss = 1e-2;
    return nb_cross_entropy_soft(g, in[0], in[1], &o);
}

/* dropout: the generator is re-seeded on every call, so each evaluation draws the same mask */
static nb_tensor *ap_dropout(nb_graph *g, int k, nb_tensor *const *in)
{
    nb_rng r;
    nb_rng_seed(&r, 77);
    return nb_dropout(g, in[0], k == 0 ? 0.5 : 0.1, &r);
}

static const nb_op_info table[] = {
    {"matmul", "C = op(A) op(B)", 4, mk_matmul, ap_matmul},
    {"linear", "y = x W^T + b", 2, mk_linear, ap_linear},
    {"add", "a + b", 5, mk_addsubmul, ap_add},
    {"sub", "a - b", 5, mk_addsubmul, ap_sub},
    {"mul", "a * b", 5, mk_addsubmul, ap_mul},
    {"div", "a / b", 5, mk_div, ap_div},
    {"neg", "-x", 2, mk_smooth, ap_neg},
    {"scale", "s x", 2, mk_smooth, ap_scale},
    {"relu", "max(x, 0)", 2, mk_kinked, ap_relu},
    {"leaky_relu", "x > 0 ? x : 0.01 x", 2, mk_kinked, ap_leaky_relu},
    {"tanh", "tanh x", 2, mk_smooth, ap_tanh},
    {"sigmoid", "1 / (1 + e^-x)", 2, mk_smooth, ap_sigmoid},
    {"gelu", "0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))", 2, mk_smooth, ap_gelu},
    {"exp", "e^x", 2, mk_smooth, ap_exp},
    {"log", "ln x", 2, mk_positive, ap_log},
    {"sum", "sum_i x_i", 2, mk_smooth, ap_sum},
    {"mean", "sum_i x_i / n", 2, mk_smooth, ap_mean},
    {"sum_last", "sum_j x_ij", 2, mk_smooth, ap_sum_last},
    {"mean_last", "sum_j x_ij / V", 2, mk_smooth, ap_mean_last},
    {"reshape", "same data, new shape", 2, mk_smooth, ap_reshape},
    {"transpose", "x^T", 1, mk_transpose, ap_transpose},
    {"logsumexp", "m + log sum_j exp(z_j - m)", 3, mk_rows, ap_logsumexp},
    {"log_softmax", "z - lse(z)", 3, mk_rows, ap_log_softmax},
    {"softmax", "exp(z - lse(z))", 3, mk_rows, ap_softmax},
    {"gather_last", "x[..., idx]", 1, mk_gather, ap_gather},
    {"cross_entropy", "fused log-softmax + NLL", XC_COUNT, mk_xent, ap_xent},
    {"cross_entropy_soft", "fused, probability targets", XS_COUNT, mk_xent_soft, ap_xent_soft},
    {"dropout", "x m / (1 - p), m ~ Bernoulli(1 - p)", 2, mk_smooth, ap_dropout},
};

const nb_op_info *nb_op_table(int *count)
{
    if (count)
        *count = (int)(sizeof table / sizeof table[0]);
    return table;
}

const nb_op_info *nb_op_find(const char *name)
{
    if (!name) {
        nb_error(NB_ERR_ARG, "nb_op_find: name is NULL");
        return NULL;
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    nb_error(NB_ERR_ARG, "nb_op_find: no op named '%s' in the op table", name);
    return NULL;
}
