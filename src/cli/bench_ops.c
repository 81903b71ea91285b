/* bench_ops.c - `nabla bench ops`: add, mul, relu, tanh, softmax and sum on n f32 elements,
 * forward and backward, in GB/s beside a memcpy of the same size.
 *
 * Bytes counted are the arrays each pass reads and writes once (4 bytes per element each): add
 * forward reads a, b and writes y (3); its backward seeds dy into y's gradient (read dy, write:
 * 2) then adds it into a's and b's gradients (read dy, read and write g, twice: 6). The machine is
 * shared and noisy, so every figure is the minimum over the runs, memcpy's too. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_ops.h"
#include "cli.h"
#include "nabla.h"

typedef enum { B_ADD, B_MUL, B_RELU, B_TANH, B_SOFTMAX, B_SUM, B_COUNT } bop;
static const char *const names[B_COUNT] = {"add", "mul", "relu", "tanh", "softmax", "sum"};
/* arrays of n elements moved by forward and by backward (seeding dy included) */
static const int fwd_arrays[B_COUNT] = {3, 3, 2, 2, 2, 1};
static const int bwd_arrays[B_COUNT] = {2 + 6, 2 + 8, 2 + 4, 2 + 4, 2 + 4, 2};

static nb_tensor *forward(nb_graph *g, bop k, nb_tensor *a, nb_tensor *b)
{
    switch (k) {
    case B_ADD: return nb_add(g, a, b);
    case B_MUL: return nb_mul(g, a, b);
    case B_RELU: return nb_relu(g, a);
    case B_TANH: return nb_tanh(g, a);
    case B_SOFTMAX: return nb_softmax(g, a);
    default: return nb_sum(g, a);
    }
}

static double memcpy_gbps(size_t bytes, long long repeat)
{
    char *src = malloc(bytes), *dst = malloc(bytes);
    double best = 1e30;
    if (!src || !dst) {
        free(src);
        free(dst);
        return 0;
    }
    memset(src, 1, bytes);
    memset(dst, 0, bytes);
    for (long long k = -1; k < repeat; k++) {
        double t0 = nb_cli_now();
        memcpy(dst, src, bytes);
        double t = nb_cli_now() - t0;
        if (k >= 0 && t < best)
            best = t;
        src[k & 1023] ^= 1; /* keep the copies from being folded */
    }
    free(src);
    free(dst);
    return 2.0 * (double)bytes / best / 1e9;
}

/* min forward and backward seconds of op k */
static int time_op(bop k, nb_tensor *a, nb_tensor *b, nb_tensor *up, long long repeat, double *tf,
                   double *tb)
{
    nb_graph *g = nb_graph_new();
    if (!g)
        return 1;
    *tf = *tb = 1e30;
    for (long long r = -1; r < repeat; r++) {
        double t0 = nb_cli_now();
        nb_tensor *y = forward(g, k, a, b);
        double t1 = nb_cli_now();
        if (!y || nb_backward(g, y, k == B_SUM ? NULL : up) != NB_OK) {
            fprintf(stderr, "nabla bench ops: %s: %s\n", names[k], nb_last_error());
            nb_graph_free(g);
            return 1;
        }
        double t2 = nb_cli_now();
        if (r >= 0) {
            *tf = t1 - t0 < *tf ? t1 - t0 : *tf;
            *tb = t2 - t1 < *tb ? t2 - t1 : *tb;
        }
        nb_graph_reset(g);
    }
    nb_graph_free(g);
    return 0;
}

int nb_bench_ops(long long n, long long repeat, int threads, bool json)
{
    nb_set_num_threads(threads);
    int64_t cols = 1024, rows = (n + cols - 1) / cols, shape[2] = {rows, cols};
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *a = nb_tensor_rand(NB_F32, 2, shape, &rng, -2, 2);
    nb_tensor *b = nb_tensor_rand(NB_F32, 2, shape, &rng, -2, 2);
    nb_tensor *up = nb_tensor_rand(NB_F32, 2, shape, &rng, -1, 1);
    int rc = 0;
    if (!a || !b || !up || nb_tensor_set_requires_grad(a, true) != NB_OK ||
        nb_tensor_set_requires_grad(b, true) != NB_OK) {
        fprintf(stderr, "nabla bench ops: %s\n", nb_last_error());
        rc = 1;
        goto out;
    }
    int64_t elems = rows * cols;
    double mc = memcpy_gbps((size_t)elems * sizeof(float), repeat);
    if (!json)
        printf("bench ops: %lld f32 elements ([%lld, %lld]), min of %lld runs (shared machine: "
               "the minimum is the least disturbed), %d thread%s, BLAS core %s\n"
               "memcpy of %.1f MB: %.2f GB/s (read + write)\n"
               "%-8s %-4s %10s %9s %10s\n",
               (long long)elems, (long long)rows, (long long)cols, repeat, threads,
               threads == 1 ? "" : "s", nb_blas_core_name(), (double)elems * 4 / (1 << 20), mc,
               "op", "pass", "ms", "GB/s", "% memcpy");
    for (int k = 0; k < B_COUNT && rc == 0; k++) {
        double tf, tb;
        rc = time_op((bop)k, a, b, up, repeat, &tf, &tb);
        if (rc)
            break;
        for (int pass = 0; pass < 2; pass++) {
            double t = pass ? tb : tf;
            int arrays = pass ? bwd_arrays[k] : fwd_arrays[k];
            double gbps = (double)arrays * 4.0 * (double)elems / t / 1e9;
            if (json)
                printf("{\"bench\": \"ops\", \"op\": \"%s\", \"pass\": \"%s\", \"elements\": %lld, "
                       "\"threads\": %d, \"ms_min\": %.4f, \"gbps\": %.2f, \"memcpy_gbps\": %.2f, "
                       "\"pct_memcpy\": %.1f, \"blas_core\": \"%s\"}\n",
                       names[k], pass ? "bwd" : "fwd", (long long)elems, threads, t * 1e3, gbps, mc,
                       100.0 * gbps / mc, nb_blas_core_name());
            else
                printf("%-8s %-4s %10.4f %9.2f %9.0f%%\n", names[k], pass ? "bwd" : "fwd", t * 1e3,
                       gbps, 100.0 * gbps / mc);
        }
    }
out:
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(up);
    return rc;
}
