/* cmd_demo.c - `nabla demo`: a 2-64-64-K ReLU MLP trained by SGD on the built-in spirals, to
 * show the whole loop (graph, fused loss, backward, step, reset) in one screen of code. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nabla.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla demo [--epochs E] [--lr LR] [--classes K] [--seed S]\n"
               "  Trains a small MLP on generated spirals data and prints loss and accuracy.\n");
}

int nb_cmd_demo(int argc, char **argv)
{
    long long epochs = 300, K = 3, seed = 1;
    double lr = 0.5;
    for (int i = 1; i < argc; i++) {
        bool ok = true;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--epochs") && i + 1 < argc)
            ok = nb_cli_parse_int("demo", "--epochs", argv[++i], &epochs) && epochs > 0;
        else if (!strcmp(argv[i], "--lr") && i + 1 < argc)
            ok = nb_cli_parse_double("demo", "--lr", argv[++i], &lr) && lr > 0;
        else if (!strcmp(argv[i], "--classes") && i + 1 < argc)
            ok = nb_cli_parse_int("demo", "--classes", argv[++i], &K) && K >= 2 && K <= 100;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            ok = nb_cli_parse_int("demo", "--seed", argv[++i], &seed);
        else {
            fprintf(stderr, "nabla demo: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "nabla demo: bad value for %s\n", argv[i - 1]);
            return 2;
        }
    }
    nb_tensor *X, *y;
    if (nb_spirals(100, K, 0.2, (uint64_t)seed, &X, &y) != NB_OK) {
        fprintf(stderr, "nabla demo: %s\n", nb_last_error());
        return 1;
    }
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed + 1);
    const int64_t H = 64;
    int64_t s1[2] = {H, 2}, s2[2] = {H, H}, s3[2] = {K, H}, b1[1] = {H}, b3[1] = {K};
    double a1 = 1 / sqrt(2.0), a2 = 1 / sqrt((double)H); /* PyTorch's Linear init bounds */
    nb_tensor *p[6] = {
        nb_tensor_rand(NB_F32, 2, s1, &r, -a1, a1), nb_tensor_rand(NB_F32, 1, b1, &r, -a1, a1),
        nb_tensor_rand(NB_F32, 2, s2, &r, -a2, a2), nb_tensor_rand(NB_F32, 1, b1, &r, -a2, a2),
        nb_tensor_rand(NB_F32, 2, s3, &r, -a2, a2), nb_tensor_rand(NB_F32, 1, b3, &r, -a2, a2)};
    nb_graph *g = nb_graph_new();
    int rc = 0;
    for (int i = 0; i < 6; i++)
        if (!p[i] || nb_tensor_set_requires_grad(p[i], true) != NB_OK)
            rc = 1;
    if (!g)
        rc = 1;
    printf("training a 2-%lld-%lld-%lld ReLU MLP on %lld spirals (%lld points), full-batch SGD, "
           "lr %g\n",
           (long long)H, (long long)H, K, K, (long long)X->shape[0], lr);
    for (long long e = 1; rc == 0 && e <= epochs; e++) {
        nb_graph_reset(g);
        nb_tensor *h = nb_relu(g, nb_linear(g, X, p[0], p[1]));
        h = nb_relu(g, nb_linear(g, h, p[2], p[3]));
        nb_tensor *logits = nb_linear(g, h, p[4], p[5]);
        nb_tensor *loss = nb_cross_entropy(g, logits, y, NULL);
        if (!loss || nb_backward(g, loss, NULL) != NB_OK || nb_sgd_step(p, 6, lr, 0.0) != NB_OK) {
            fprintf(stderr, "nabla demo: %s\n", nb_last_error());
            rc = 1;
            break;
        }
        for (int i = 0; i < 6; i++)
            nb_tensor_zero_grad(p[i]);
        if (e % (epochs / 10 ? epochs / 10 : 1) == 0 || e == epochs) {
            int64_t correct = 0, N = logits->shape[0];
            for (int64_t n = 0; n < N; n++) {
                int64_t best = 0;
                for (int64_t c = 1; c < K; c++)
                    if (nb_tensor_get(logits, n * K + c) > nb_tensor_get(logits, n * K + best))
                        best = c;
                correct += best == nb_tensor_get(y, n);
            }
            printf("epoch %4lld  loss %.4f  accuracy %.1f%%\n", e, nb_tensor_get(loss, 0),
                   100.0 * (double)correct / (double)N);
        }
    }
    nb_graph_free(g);
    for (int i = 0; i < 6; i++)
        nb_tensor_free(p[i]);
    nb_tensor_free(X);
    nb_tensor_free(y);
    return rc;
}
