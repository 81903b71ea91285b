/* fashion_mnist.c - the default nabla model through the C API: a 784-256-128-10 ReLU MLP on
 * Fashion-MNIST with AdamW, cosine schedule and label smoothing, evaluated on the test set.
 * Usage: example_fashion_mnist [DATA_DIR] [EPOCHS]   (default /usr/share/datasets/fashion-mnist,
 * 10) Exit status 0 when the test accuracy reaches 0.89. */
#include <stdio.h>
#include <stdlib.h>

#include <nabla.h>

static double accuracy(nb_graph *g, nb_mlp *m, const nb_dataset *ds)
{
    nb_graph_reset(g);
    bool prev = nb_graph_set_grad_enabled(g, false);
    nb_mlp_set_training(m, false);
    nb_tensor *logits = nb_mlp_forward(g, m, ds->X);
    int64_t hits = 0, count = 0;
    if (nb_accuracy(logits, ds->y, -100, &hits, &count) != NB_OK)
        fprintf(stderr, "%s\n", nb_last_error());
    nb_graph_set_grad_enabled(g, prev);
    nb_mlp_set_training(m, true);
    return count ? (double)hits / (double)count : 0.0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 10;
    nb_dataset train, test;
    if (nb_dataset_load_mnist(dir, "train", &train) != NB_OK ||
        nb_dataset_load_mnist(dir, "test", &test) != NB_OK)
        return fprintf(stderr, "%s\n", nb_last_error()), 1;

    int64_t sizes[] = {784, 256, 128, 10};
    nb_mlp *m = nb_mlp_new(sizes, 4, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 1);
    nb_tensor *params[6];
    for (int i = 0; i < 6; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW);
    cfg.lr = 2e-3;
    cfg.weight_decay = 1e-4;
    nb_optim *opt = nb_optim_new(&cfg, params, 6);
    const int64_t B = 128, steps = (train.X->shape[0] + B - 1) / B;
    nb_schedule sched = {NB_SCHED_COSINE, cfg.lr, 200, steps * epochs, 0, 0, 0};
    nb_xent_opts xo = nb_xent_defaults();
    xo.label_smoothing = 0.1;

    nb_graph *g = nb_graph_new();
    nb_batcher bt;
    nb_batcher_init(&bt, &train, B, true, 1);
    int64_t sx[2] = {B, 784}, sy[1] = {B};
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, sx), *yb = nb_tensor_zeros(NB_I32, 1, sy);
    for (int e = 1; e <= epochs; e++) {
        while (nb_batcher_next(&bt, xb, yb)) {
            nb_optim_set_lr(opt, nb_schedule_lr(&sched, nb_optim_step_count(opt)));
            nb_graph_reset(g);
            nb_tensor *loss = nb_cross_entropy(g, nb_mlp_forward(g, m, xb), yb, &xo);
            if (!loss || nb_backward(g, loss, NULL) != NB_OK)
                return fprintf(stderr, "%s\n", nb_last_error()), 1;
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
        }
        printf("epoch %2d  test accuracy %.4f\n", e, accuracy(g, m, &test));
    }
    double acc = accuracy(g, m, &test);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_batcher_free(&bt);
    nb_graph_free(g);
    nb_optim_free(opt);
    nb_mlp_free(m);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
    return acc >= 0.89 ? 0 : 1;
}
