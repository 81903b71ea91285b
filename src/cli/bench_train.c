/* bench_train.c - `nabla bench train`: the training step of an MLP on MNIST-shaped batches
 * (784 -> hidden -> 10) timed three ways in one run:
 *   trainer  nb_trainer_step with `nabla train`'s defaults (AdamW, label smoothing, cosine
 *            schedule, shuffled batches): the step users run; and again with fused_head (the
 *            last layer and the loss as one nb_linear_cross_entropy, `nabla train --fused-head`);
 *   loop     the hand-written step (forward, fused loss, backward, Adam), which also reports
 *            whether the graph's arena allocates in steady state;
 *   gemm     the step's matrix products alone, on the same shapes: per layer the forward
 *            Y = X W^T and dW = dY^T X, and dX = dY W for every layer but the first (whose input
 *            needs no gradient); 8 products for two hidden layers.
 * GFLOP/s counts only the products computed (2 B in out each). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_train.h"
#include "cli.h"
#include "nabla.h"
#include "ops/ops_internal.h"

static double median_ms(double *t, int n)
{
    return nb_cli_summarise(t, n).median;
}

typedef struct bench {
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    int ns;
    int64_t B;
    nb_dataset ds;  /* 64 batches of random rows */
    double *t, *t2; /* steps timings (t2: the fused head's) */
} bench;

/* The trainer's step with the plain head (ms[0]) and with the fused one (ms[1]): all the plain
 * trainer's steps, then all the fused one's (stepping them in turn would make each step find the
 * other model's weights and gradients in the cache, as no epoch does; epoch ends, between timed
 * steps, are not timed); *mean: the plain step's mean (what an epoch of train_seconds adds up). */
static int time_trainers(bench *b, const nb_bench_train_args *a, double ms[2], double *mean)
{
    nb_mlp *m[2] = {NULL, NULL};
    nb_train_model md[2];
    nb_trainer *t[2] = {NULL, NULL};
    double *tk[2] = {b->t, b->t2};
    int rc = 0;
    for (int h = 0; h < 2 && rc == 0; h++) {
        nb_train_config c = nb_train_defaults();
        c.batch = b->B;
        c.epochs = 1000000;
        c.fused_head = h == 1;
        m[h] = nb_mlp_new(b->sizes, b->ns, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1);
        md[h] = nb_train_model_mlp(m[h]);
        t[h] = m[h] ? nb_trainer_new(&md[h], &b->ds, &c) : NULL;
        rc = t[h] ? 0 : 1;
    }
    for (int h = 0; h < 2 && rc == 0; h++)
        for (long long k = -3; rc == 0 && k < a->steps; k++) {
            bool done = false;
            double t0 = nb_cli_now();
            if (nb_trainer_step(t[h], &done, NULL) != NB_OK)
                rc = 1;
            else if (done) { /* the epoch's end, then the step again */
                if (nb_trainer_end_epoch(t[h], NULL) != NB_OK)
                    rc = 1;
                t0 = nb_cli_now();
                if (rc == 0 && nb_trainer_step(t[h], &done, NULL) != NB_OK)
                    rc = 1;
            }
            if (k >= 0)
                tk[h][k] = nb_cli_now() - t0;
        }
    if (rc)
        fprintf(stderr, "nabla bench train: %s\n", nb_last_error());
    for (int h = 0; h < 2; h++) {
        if (rc == 0)
            ms[h] = median_ms(tk[h], (int)a->steps);
        nb_trainer_free(t[h]);
        nb_mlp_free(m[h]);
    }
    if (rc == 0) {
        double sum = 0;
        for (long long k = 0; k < a->steps; k++)
            sum += b->t[k];
        *mean = 1e3 * sum / (double)a->steps; /* seconds -> ms */
    }
    return rc;
}

/* The hand-written step on one batch; *steady: no arena allocation after the warm-up. */
static int time_loop(bench *b, const nb_bench_train_args *a, double *ms, bool *steady)
{
    nb_mlp *m = nb_mlp_new(b->sizes, b->ns, NB_ACT_RELU, NB_INIT_DEFAULT, 0, NB_F32, 1);
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    for (int i = 0; m && i < nb_mlp_param_count(m); i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config oc = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *opt = m ? nb_optim_new(&oc, params, nb_mlp_param_count(m)) : NULL;
    nb_graph *g = nb_graph_new();
    int64_t sx[2] = {b->B, b->sizes[0]}, sy[1] = {b->B};
    nb_tensor x, y;
    nb_tensor_view(&x, NB_F32, 2, sx, b->ds.X->data);
    nb_tensor_view(&y, NB_I32, 1, sy, b->ds.y->data);
    int rc = opt && g ? 0 : 1;
    uint64_t allocs = 0;
    for (long long k = -3; rc == 0 && k < a->steps; k++) {
        double t0 = nb_cli_now();
        nb_graph_reset(g);
        nb_tensor *L = nb_cross_entropy(g, nb_mlp_forward(g, m, &x), &y, NULL);
        if (!L || nb_backward(g, L, NULL) != NB_OK || nb_optim_step(opt) != NB_OK) {
            rc = 1;
            break;
        }
        nb_optim_zero_grad(opt);
        if (k >= 0)
            b->t[k] = nb_cli_now() - t0;
        if (k == -1)
            allocs = nb_graph_arena_allocations(g);
    }
    if (rc)
        fprintf(stderr, "nabla bench train: %s\n", nb_last_error());
    else {
        *ms = median_ms(b->t, (int)a->steps);
        *steady = nb_graph_arena_allocations(g) == allocs;
    }
    nb_graph_free(g);
    nb_optim_free(opt);
    nb_mlp_free(m);
    return rc;
}

/* The step's products alone, on buffers of the step's shapes. */
static int time_gemms(bench *b, const nb_bench_train_args *a, double *ms)
{
    int64_t B = b->B, widest = 0;
    for (int i = 0; i < b->ns; i++)
        widest = b->sizes[i] > widest ? b->sizes[i] : widest;
    size_t act = (size_t)(B * widest), wts = (size_t)(widest * widest);
    float *X = calloc(act, 4), *Y = calloc(act, 4), *dY = calloc(act, 4), *dX = calloc(act, 4);
    float *W = calloc(wts, 4), *dW = calloc(wts, 4);
    if (!X || !Y || !dY || !dX || !W || !dW) {
        fprintf(stderr, "nabla bench train: out of memory for the product buffers\n");
        free(X), free(Y), free(dY), free(dX), free(W), free(dW);
        return 1;
    }
    for (long long k = -3; k < a->steps; k++) {
        double t0 = nb_cli_now();
        for (int l = 0; l + 1 < b->ns; l++) { /* forward: Y [B, out] = X [B, in] W^T */
            int64_t in = b->sizes[l], out = b->sizes[l + 1];
            nb_gemm(NB_F32, false, true, B, out, in, X, in, W, in, 0.0, Y);
        }
        for (int l = b->ns - 2; l >= 0; l--) { /* backward: dW = dY^T X, dX = dY W */
            int64_t in = b->sizes[l], out = b->sizes[l + 1];
            nb_gemm(NB_F32, true, false, out, in, B, dY, out, X, in, 0.0, dW);
            if (l > 0)
                nb_gemm(NB_F32, false, false, B, in, out, dY, out, W, in, 0.0, dX);
        }
        if (k >= 0)
            b->t[k] = nb_cli_now() - t0;
    }
    *ms = median_ms(b->t, (int)a->steps);
    free(X), free(Y), free(dY), free(dX), free(W), free(dW);
    return 0;
}

static int parse_hidden(const char *s, bench *b)
{
    b->sizes[0] = 784;
    b->ns = 1;
    for (const char *p = s; *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > 65536 || (*end && *end != ',') || b->ns >= NB_MLP_MAX_LAYERS)
            return -1;
        b->sizes[b->ns++] = v;
        p = *end ? end + 1 : end;
    }
    b->sizes[b->ns++] = 10;
    return 0;
}

int nb_bench_train(const nb_bench_train_args *a)
{
    bench b;
    memset(&b, 0, sizeof b);
    if (parse_hidden(a->hidden, &b) != 0 || a->batch < 1 || a->batch > 65536 || a->steps < 1) {
        fprintf(stderr,
                "nabla bench train: --hidden '%s' --batch %lld --steps %lld: expected "
                "sizes like 256,128, a batch in [1, 65536] and steps >= 1\n",
                a->hidden, a->batch, a->steps);
        return 2;
    }
    nb_set_num_threads((int)a->threads);
    b.B = a->batch;
    nb_rng r;
    nb_rng_seed(&r, 2);
    int64_t N = 64 * b.B, sx[2] = {N, 784}, sy[1] = {N};
    nb_tensor *X = nb_tensor_rand(NB_F32, 2, sx, &r, 0, 1), *y = nb_tensor_empty(NB_I32, 1, sy);
    b.t = malloc(sizeof(double) * (size_t)a->steps);
    b.t2 = malloc(sizeof(double) * (size_t)a->steps);
    int rc = X && y && b.t && b.t2 ? 0 : 1;
    for (int64_t i = 0; rc == 0 && i < N; i++)
        ((int32_t *)y->data)[i] = (int32_t)nb_rng_below(&r, 10);
    if (rc == 0 && nb_dataset_from_tensors(X, y, 10, &b.ds) != NB_OK)
        rc = 1;
    if (rc)
        fprintf(stderr, "nabla bench train: %s\n", nb_last_error());
    double flops = 0, ms_tr[2] = {0, 0}, ms_mean = 0, ms_loop = 0, ms_gemm = 0;
    for (int i = 0; i + 1 < b.ns; i++)
        flops += 2.0 * (double)(b.sizes[i] * b.sizes[i + 1] * b.B) * (i == 0 ? 2.0 : 3.0);
    bool steady = false;
    if (rc == 0)
        rc = time_gemms(&b, a, &ms_gemm) || time_loop(&b, a, &ms_loop, &steady) ||
             time_trainers(&b, a, ms_tr, &ms_mean);
    double ms_trainer = ms_tr[0], ms_fused = ms_tr[1];
    if (rc == 0 && a->json)
        printf("{\"bench\": \"train\", \"impl\": \"nabla\", \"hidden\": \"%s\", \"batch\": %lld, "
               "\"threads\": %lld, \"steps\": %lld, \"ms_per_step\": %.4f, "
               "\"ms_per_step_mean\": %.4f, \"ms_per_step_fused_head\": %.4f, \"ms_loop\": %.4f, "
               "\"ms_gemm_only\": %.4f, \"step_over_gemm\": %.3f, \"gflops\": %.2f, "
               "\"gflops_gemm_only\": %.2f, \"steady_state_allocations\": %s, \"core\": \"%s\"}\n",
               a->hidden, a->batch, a->threads, a->steps, ms_trainer, ms_mean, ms_fused, ms_loop,
               ms_gemm, ms_trainer / ms_gemm, flops / (ms_trainer * 1e6), flops / (ms_gemm * 1e6),
               steady ? "0" : "\"nonzero\"", nb_blas_core_name());
    else if (rc == 0)
        printf(
            "train  MLP 784-%s-10 batch %lld threads %lld (OpenBLAS %s), median of %lld steps:\n"
            "       trainer step %.3f ms (mean %.3f; %.1f GFLOP/s), with the fused head %.3f ms, "
            "hand-written loop %.3f ms, the %d "
            "products alone %.3f ms (%.1f GFLOP/s); step / products %.2f; arena allocations "
            "in steady state: %s\n",
            a->hidden, a->batch, a->threads, nb_blas_core_name(), a->steps, ms_trainer, ms_mean,
            flops / (ms_trainer * 1e6), ms_fused, ms_loop, 3 * (b.ns - 1) - 1, ms_gemm,
            flops / (ms_gemm * 1e6), ms_trainer / ms_gemm, steady ? "0" : "NONZERO");
    nb_dataset_free(&b.ds);
    nb_tensor_free(X);
    nb_tensor_free(y);
    free(b.t);
    free(b.t2);
    return rc;
}
