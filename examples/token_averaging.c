/* token_averaging.c - what the mean over tokens does under gradient accumulation, measured.
 *
 * A padded [B, T, V] batch of the seq-toy task (sequences of very different lengths) goes
 * through a small MLP three ways:
 *   whole batch      the loss is the mean over all real tokens (the reference);
 *   exact, K parts   each micro-batch's summed loss is divided by the whole batch's real-token
 *                    count (nb_xent_opts.normaliser), gradients accumulate;
 *   mean of means    each micro-batch takes its own mean, and the K means are averaged.
 * It prints the relative gradient error of each against the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <nabla.h>

enum { B = 16, T = 24, V = 8, F = 2 * V };

static nb_tensor *X, *Y;
static nb_mlp *m;

static void grads(int K, int exact, double *out, int64_t n)
{
    nb_graph *g = nb_graph_new();
    for (int i = 0; i < nb_mlp_param_count(m); i++)
        nb_tensor_zero_grad(nb_mlp_param(m, i, NULL, 0));
    double total = 0;
    for (int64_t i = 0; i < Y->numel; i++)
        total += ((int32_t *)Y->data)[i] >= 0;
    for (int k = 0; k < K; k++) {
        int b0 = B * k / K, b1 = B * (k + 1) / K;
        int64_t sx[2] = {(b1 - b0) * T, F}, sy[2] = {b1 - b0, T}, s3[3] = {b1 - b0, T, V};
        nb_tensor xv, yv;
        nb_tensor_view(&xv, NB_F64, 2, sx, (double *)X->data + b0 * T * F);
        nb_tensor_view(&yv, NB_I32, 2, sy, (int32_t *)Y->data + b0 * T);
        nb_xent_opts o = nb_xent_defaults();
        if (exact)
            o.normaliser = total;
        nb_graph_reset(g);
        nb_tensor *L =
            nb_cross_entropy(g, nb_reshape(g, nb_mlp_forward(g, m, &xv), 3, s3), &yv, &o);
        if (!exact)
            L = nb_scale(g, L, 1.0 / K);
        if (!L || nb_backward(g, L, NULL) != NB_OK)
            exit(fprintf(stderr, "%s\n", nb_last_error()));
    }
    for (int i = 0, off = 0; i < nb_mlp_param_count(m); i++) {
        nb_tensor *p = nb_mlp_param(m, i, NULL, 0);
        for (int64_t j = 0; j < p->numel && off < n; j++)
            out[off++] = nb_tensor_grad_get(p, j);
    }
    nb_graph_free(g);
}

static double rel_err(const double *a, const double *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++)
        num += (a[i] - b[i]) * (a[i] - b[i]), den += a[i] * a[i];
    return sqrt(num / den);
}

int main(void)
{
    nb_tensor *Xs;
    if (nb_seq_toy(B, T, V, 1, &Xs, &Y) != NB_OK)
        return fprintf(stderr, "%s\n", nb_last_error()), 1;
    /* make the lengths very unequal: the first half of the batch keeps 2 tokens per sequence */
    for (int b = 0; b < B / 2; b++)
        for (int t = 2; t < T; t++)
            ((int32_t *)Y->data)[b * T + t] = -100;
    X = nb_tensor_to_dtype(Xs, NB_F64);
    int64_t sizes[3] = {F, 32, V};
    m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0.0, NB_F64, 3);
    int64_t n = nb_mlp_numel(m);
    double *ref = malloc(sizeof(double) * (size_t)n), *g = malloc(sizeof(double) * (size_t)n);
    grads(1, 1, ref, n);
    printf("padded batch: %d sequences, real tokens per sequence 2 (half) and up to %d\n", B, T);
    printf("%-16s %3s  %s\n", "method", "K", "relative gradient error vs whole batch (L2)");
    for (int K = 2; K <= 8; K *= 2) {
        grads(K, 1, g, n);
        printf("%-16s %3d  %.3e\n", "exact (nabla)", K, rel_err(ref, g, n));
        grads(K, 0, g, n);
        printf("%-16s %3d  %.3e\n", "mean of means", K, rel_err(ref, g, n));
    }
    free(ref);
    free(g);
    nb_mlp_free(m);
    nb_tensor_free(X);
    nb_tensor_free(Xs);
    nb_tensor_free(Y);
    return 0;
}
