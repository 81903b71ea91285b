/* custom_op.c - your own layer, with a backward you derived by hand, checked by nb_gradcheck.
 *
 * The layer is layer normalisation over the last dim of x [N, D], with a learnt scale gamma [D]
 * and shift beta [D], written as ONE custom op (nb_custom_op), forward and backward by hand:
 *
 *   mu = mean_j x_j,  var = mean_j (x_j - mu)^2,  rstd = 1 / sqrt(var + eps)
 *   xhat_j = (x_j - mu) rstd,  y_j = gamma_j xhat_j + beta_j
 *
 * and, with g_j = dL/dy_j and dxhat_j = g_j gamma_j (the derivation: xhat depends on every x_k
 * through mu and rstd, d xhat_j / d x_k = rstd ([j = k] - 1/D - xhat_j xhat_k / D)):
 *
 *   dL/dx_j     = rstd (dxhat_j - mean_k dxhat_k - xhat_j mean_k dxhat_k xhat_k)
 *   dL/dgamma_j = sum_rows g_j xhat_j,     dL/dbeta_j = sum_rows g_j
 *
 * The function checked is a pre-norm residual block's output, f(x) = layernorm(x) + x: x is used
 * twice, which is what catches a backward that overwrites gradients instead of adding to them.
 * x, gamma and beta are f32 (as in training) and gradcheck runs the derivation on f64 copies.
 *
 *   example_custom_op                     the right backward: passes, exit 0
 *   example_custom_op --wrong last-column a fencepost bug: the dx loop stops at D - 1
 *   example_custom_op --wrong mean-term   the classic slip: the xhat * mean(dxhat xhat) term
 *                                         (the derivative through rstd) forgotten
 *   example_custom_op --wrong overwrite   dx = ... instead of dx += ...
 * A wrong variant is caught: exit 1, and the report names the input and the elements. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <nabla.h>

enum { RIGHT, LAST_COLUMN, MEAN_TERM, OVERWRITE };

typedef struct ln_ctx {
    int variant;
    double eps;
} ln_ctx;

/* in[0] = x [N, D], in[1] = gamma [D], in[2] = beta [D]; out [N, D] */
static nb_status ln_forward(nb_tensor *out, const nb_tensor *const *in, int n_in, void *vctx)
{
    (void)n_in;
    const ln_ctx *c = vctx;
    const nb_tensor *x = in[0];
    int64_t D = x->shape[1], N = x->shape[0];
    if (in[1]->numel != D || in[2]->numel != D)
        return nb_error(NB_ERR_SHAPE, "layernorm: gamma and beta need %lld elements", (long long)D);
    for (int64_t r = 0; r < N; r++) {
        double mu = 0, var = 0;
        for (int64_t j = 0; j < D; j++)
            mu += nb_tensor_get(x, r * D + j);
        mu /= (double)D;
        for (int64_t j = 0; j < D; j++) {
            double d = nb_tensor_get(x, r * D + j) - mu;
            var += d * d;
        }
        double rstd = 1.0 / sqrt(var / (double)D + c->eps);
        for (int64_t j = 0; j < D; j++) {
            double xhat = (nb_tensor_get(x, r * D + j) - mu) * rstd;
            nb_tensor_set(out, r * D + j, nb_tensor_get(in[1], j) * xhat + nb_tensor_get(in[2], j));
        }
    }
    return NB_OK;
}

static void add_to(nb_tensor *t, int64_t i, double v)
{
    nb_tensor_set(t, i, nb_tensor_get(t, i) + v);
}

static nb_status ln_backward(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                             const nb_tensor *const *in, int n_in, void *vctx)
{
    (void)out;
    (void)n_in;
    const ln_ctx *c = vctx;
    const nb_tensor *x = in[0], *gamma = in[1];
    int64_t D = x->shape[1], N = x->shape[0];
    double xhat[64], dxhat[64];
    if (D > 64)
        return nb_error(NB_ERR_SHAPE, "layernorm example: D = %lld > 64", (long long)D);
    for (int64_t r = 0; r < N; r++) {
        double mu = 0, var = 0, m1 = 0, m2 = 0;
        for (int64_t j = 0; j < D; j++)
            mu += nb_tensor_get(x, r * D + j);
        mu /= (double)D;
        for (int64_t j = 0; j < D; j++) {
            double d = nb_tensor_get(x, r * D + j) - mu;
            var += d * d;
        }
        double rstd = 1.0 / sqrt(var / (double)D + c->eps);
        for (int64_t j = 0; j < D; j++) {
            double g = nb_tensor_get(gout, r * D + j);
            xhat[j] = (nb_tensor_get(x, r * D + j) - mu) * rstd;
            dxhat[j] = g * nb_tensor_get(gamma, j);
            m1 += dxhat[j];
            m2 += dxhat[j] * xhat[j];
            if (gin[1])
                add_to(gin[1], j, g * xhat[j]); /* dgamma: sum over rows */
            if (gin[2])
                add_to(gin[2], j, g); /* dbeta */
        }
        m1 /= (double)D;
        m2 /= (double)D;
        if (c->variant == MEAN_TERM)
            m2 = 0.0;
        if (!gin[0])
            continue;
        int64_t end = c->variant == LAST_COLUMN ? D - 1 : D;
        for (int64_t j = 0; j < end; j++) {
            double dx = rstd * (dxhat[j] - m1 - xhat[j] * m2);
            if (c->variant == OVERWRITE)
                nb_tensor_set(gin[0], r * D + j, dx);
            else
                add_to(gin[0], r * D + j, dx);
        }
    }
    return NB_OK;
}

/* the function under test: a pre-norm residual, layernorm(x) + x */
static nb_tensor *block(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    nb_tensor *y =
        nb_custom_op(g, "layernorm", in, n, 2, in[0]->shape, ln_forward, ln_backward, ctx);
    return nb_add(g, y, in[0]);
}

int main(int argc, char **argv)
{
    ln_ctx c = {RIGHT, 1e-5};
    if (argc == 3 && !strcmp(argv[1], "--wrong")) {
        if (!strcmp(argv[2], "last-column"))
            c.variant = LAST_COLUMN;
        else if (!strcmp(argv[2], "mean-term"))
            c.variant = MEAN_TERM;
        else if (!strcmp(argv[2], "overwrite"))
            c.variant = OVERWRITE;
        else
            return fprintf(stderr, "unknown variant '%s'\n", argv[2]), 2;
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--wrong last-column|mean-term|overwrite]\n", argv[0]);
        return 2;
    }
    nb_rng r;
    nb_rng_seed(&r, 11);
    int64_t sx[2] = {4, 8}, sp[1] = {8};
    nb_tensor *in[3] = {nb_tensor_randn(NB_F32, 2, sx, &r, 0, 1),
                        nb_tensor_rand(NB_F32, 1, sp, &r, 0.5, 1.5),
                        nb_tensor_randn(NB_F32, 1, sp, &r, 0, 0.1)};
    for (int i = 0; i < 3; i++)
        if (!in[i] || nb_tensor_set_requires_grad(in[i], true) != NB_OK)
            return fprintf(stderr, "%s\n", nb_last_error()), 1;

    nb_gradcheck_opts o = {0};
    o.k_worst = 5;
    o.promote_f32 = true;
    nb_gradcheck_result res;
    const char *names[3] = {"x", "gamma", "beta"};
    int rc = 1;
    if (nb_gradcheck(block, in, 3, &c, &o, &res) != NB_OK) {
        fprintf(stderr, "gradcheck: %s\n", nb_last_error());
    } else {
        printf("layernorm(x) + x, %s backward:\n", c.variant == RIGHT ? "the right" : argv[2]);
        nb_gradcheck_print(stdout, &res, names, 1e-6);
        rc = res.max_rel_err < 1e-6 ? 0 : 1;
        printf("%s: max relative error %.3e (bar 1e-6)\n", rc ? "CAUGHT" : "PASSED",
               res.max_rel_err);
    }
    for (int i = 0; i < 3; i++)
        nb_tensor_free(in[i]);
    return rc;
}
