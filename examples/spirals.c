/* spirals.c - a complete nabla training loop: an MLP learns three interleaved spirals.
 * Build: part of the CMake build (build/example_spirals). Exit status 0 when the model fits the
 * training set (accuracy >= 0.99), 1 otherwise. */
#include <stdio.h>

#include <nabla.h>

int main(void)
{
    nb_tensor *X, *y; /* X f32 [3000, 2], y i32 [3000] */
    if (nb_spirals(1000, 3, 0.2, 42, &X, &y) != NB_OK)
        return fprintf(stderr, "%s\n", nb_last_error()), 1;
    nb_dataset ds;
    nb_dataset_from_tensors(X, y, 3, &ds);

    /* 2 -> 128 -> 128 -> 3, ReLU, PyTorch's default init */
    int64_t sizes[] = {2, 128, 128, 3};
    nb_mlp *m = nb_mlp_new(sizes, 4, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 1);
    nb_tensor *params[6];
    for (int i = 0; i < 6; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAM);
    cfg.lr = 1e-2;
    nb_optim *opt = nb_optim_new(&cfg, params, 6);

    nb_graph *g = nb_graph_new();
    nb_batcher batches;
    nb_batcher_init(&batches, &ds, 100, true, 7);
    int64_t sx[2] = {100, 2}, sy[1] = {100};
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, sx), *yb = nb_tensor_zeros(NB_I32, 1, sy);

    for (int epoch = 1; epoch <= 60; epoch++) {
        double total = 0;
        int n = 0;
        while (nb_batcher_next(&batches, xb, yb)) {
            nb_graph_reset(g); /* rewind last step's arena */
            nb_tensor *logits = nb_mlp_forward(g, m, xb);
            nb_tensor *loss = nb_cross_entropy(g, logits, yb, NULL); /* fused, stable */
            if (!loss || nb_backward(g, loss, NULL) != NB_OK)
                return fprintf(stderr, "%s\n", nb_last_error()), 1;
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            total += nb_tensor_get(loss, 0);
            n++;
        }
        if (epoch % 10 == 0)
            printf("epoch %2d  loss %.4f\n", epoch, total / n);
    }

    /* accuracy on the training set, without recording a tape */
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, false);
    nb_tensor *logits = nb_mlp_forward(g, m, ds.X);
    int64_t correct = 0, N = 0;
    if (nb_accuracy(logits, ds.y, -100, &correct, &N) != NB_OK)
        return fprintf(stderr, "%s\n", nb_last_error()), 1;
    double acc = (double)correct / (double)N;
    printf("training accuracy %.4f\n", acc);

    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_batcher_free(&batches);
    nb_graph_free(g);
    nb_optim_free(opt);
    nb_mlp_free(m);
    nb_dataset_free(&ds);
    nb_tensor_free(X);
    nb_tensor_free(y);
    return acc >= 0.99 ? 0 : 1;
}
