/* cmd_bench.c - `nabla bench`: speed of the fused loss, of a training step, and of the machine's
 * own memory copy, so every figure can be read as a fraction of what the hardware allows. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_lce.h"
#include "bench_ops.h"
#include "bench_train.h"
#include "cli.h"
#include "nabla.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: nabla bench xent   [--n N] [--v V] [--threads T] [--variant "
        "mean|ignore25|smooth01]\n"
        "                          [--dtype f32|f16] [--impl fused|unfused|graph|all] [--repeat R] "
        "[--json]\n"
        "       nabla bench train  [--hidden 256,128] [--batch B] [--threads T] [--steps S] "
        "[--json]\n"
        "       nabla bench memcpy [--mb MB] [--threads T] [--repeat R] [--json]\n"
        "       nabla bench ops    [--n N] [--threads T] [--repeat R] [--json]\n"
        "                          (add, mul, relu, tanh, softmax, sum on N f32 elements,\n"
        "                          default 1M, fwd and bwd, in GB/s and in %% of memcpy's)\n"
        "       nabla bench lce    [--n N] [--d D] [--v V] [--threads T] [--repeat R] [--block B]\n"
        "                          [--impl fused|fused-saved|fused-recompute|unfused|all] "
        "[--json]\n"
        "                          (a classifier head's training step: time and peak extra\n"
        "                          memory; fused: one pass, gradients into the leaves;\n"
        "                          fused-saved: one pass, gradients saved; fused-recompute:\n"
        "                          the tiled forward and a recomputing backward;\n"
        "                          --filter 1: gradient filtering, the upper half of the classes\n"
        "                          made rare (bias -40); --wscale S: W's init range times S;\n"
        "                          --vocab-parallel: under mpirun -np P each rank holds V/P\n"
        "                          classes, fused paths only, one line per rank)\n"
        "       nabla bench        (all three with their defaults)\n"
        "Times are min/median/max over R runs after one warm-up. gbps counts the minimal\n"
        "traffic: one read of the logits (fwd), plus one write of the f32 gradient (fwd_bwd).\n"
        "xent's graph rows time nb_cross_entropy (+ nb_backward) on logits an op made, as in\n"
        "training: graph is the one pass (the default), graph-2pass the op with opts.two_pass.\n");
}

typedef struct bargs {
    long long n, v, threads, repeat, batch, steps, mb, d, block, filter;
    double wscale;
    const char *variant, *dtype, *impl, *hidden;
    bool json, vocab_parallel;
} bargs;

static int parse(int argc, char **argv, bargs *a)
{
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--json")) {
            a->json = true;
            continue;
        }
        if (!strcmp(k, "--vocab-parallel")) {
            a->vocab_parallel = true;
            continue;
        }
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla bench: unknown option or missing value: '%s'\n", k);
            return 2;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(k, "--n"))
            ok = nb_cli_parse_int("bench", k, v, &a->n) && a->n >= 1;
        else if (!strcmp(k, "--v"))
            ok = nb_cli_parse_int("bench", k, v, &a->v) && a->v >= 1;
        else if (!strcmp(k, "--threads"))
            ok = nb_cli_parse_int("bench", k, v, &a->threads) && a->threads >= 1 &&
                 a->threads <= 256;
        else if (!strcmp(k, "--repeat"))
            ok = nb_cli_parse_int("bench", k, v, &a->repeat) && a->repeat >= 1 &&
                 a->repeat <= 100000;
        else if (!strcmp(k, "--batch"))
            ok = nb_cli_parse_int("bench", k, v, &a->batch) && a->batch >= 1;
        else if (!strcmp(k, "--steps"))
            ok = nb_cli_parse_int("bench", k, v, &a->steps) && a->steps >= 1;
        else if (!strcmp(k, "--filter"))
            ok = nb_cli_parse_int("bench", k, v, &a->filter) && (a->filter == 0 || a->filter == 1);
        else if (!strcmp(k, "--wscale"))
            ok = nb_cli_parse_double("bench", k, v, &a->wscale) && a->wscale > 0 && a->wscale < 1e6;
        else if (!strcmp(k, "--block"))
            ok = nb_cli_parse_int("bench", k, v, &a->block) && a->block >= 0 && a->block <= 1 << 20;
        else if (!strcmp(k, "--d"))
            ok = nb_cli_parse_int("bench", k, v, &a->d) && a->d >= 1;
        else if (!strcmp(k, "--mb"))
            ok = nb_cli_parse_int("bench", k, v, &a->mb) && a->mb >= 1 && a->mb <= 65536;
        else if (!strcmp(k, "--variant"))
            ok = !strcmp(v, "mean") || !strcmp(v, "ignore25") || !strcmp(v, "smooth01"),
            a->variant = v;
        else if (!strcmp(k, "--dtype"))
            ok = !strcmp(v, "f32") || !strcmp(v, "f16"), a->dtype = v;
        else if (!strcmp(k, "--impl"))
            ok = !strcmp(v, "fused") || !strcmp(v, "unfused") || !strcmp(v, "all") ||
                 !strcmp(v, "fused-recompute") || !strcmp(v, "fused-saved") || !strcmp(v, "graph"),
            a->impl = v;
        else if (!strcmp(k, "--hidden"))
            a->hidden = v;
        else {
            nb_cli_unknown_option("bench", k, usage);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "nabla bench: bad value for %s: '%s'\n", k, v);
            return 2;
        }
    }
    return -1;
}

static void report_xent(const bargs *a, const char *impl, const char *mode, nb_cli_timing t,
                        double bytes)
{
    double gbps = bytes / (t.median * 1e-3) / 1e9;
    if (a->json)
        printf("{\"bench\": \"xent\", \"impl\": \"%s\", \"n\": %lld, \"v\": %lld, \"threads\": "
               "%lld, \"variant\": \"%s\", \"dtype\": \"%s\", \"mode\": \"%s\", \"ms_min\": %.3f, "
               "\"ms_median\": %.3f, \"ms_max\": %.3f, \"gbps\": %.2f}\n",
               impl, a->n, a->v, a->threads, a->variant, a->dtype, mode, t.min, t.median, t.max,
               gbps);
    else
        printf("xent   %-11s %-8s n %-6lld v %-7lld %-8s %-4s threads %lld  ms min %8.2f median "
               "%8.2f max %8.2f  %6.2f GB/s\n",
               impl, mode, a->n, a->v, a->variant, a->dtype, a->threads, t.min, t.median, t.max,
               gbps);
    fflush(stdout);
}

/* The graph rows' producer of the logits: a custom op that copies the bench's logits (ctx) into
 * its arena output, standing in for the Linear that makes them in training, so that the loss
 * sees an op's output as there. It runs before the clock starts; its backward does nothing
 * (the logits' gradient is the loss's product, not passed on). */
static nb_status logits_fwd(nb_tensor *out, const nb_tensor *const *in, int n_in, void *ctx)
{
    (void)in, (void)n_in;
    const nb_tensor *z = ctx;
    memcpy(out->data, z->data, (size_t)z->numel * sizeof(float));
    return NB_OK;
}

static nb_status logits_bwd(nb_tensor *const *gin, const nb_tensor *gout, const nb_tensor *out,
                            const nb_tensor *const *in, int n_in, void *ctx)
{
    (void)gin, (void)gout, (void)out, (void)in, (void)n_in, (void)ctx;
    return NB_OK;
}

/* t[0..repeat) = nb_cross_entropy (+ nb_backward when grad) through a graph, after two warm-up
 * steps: the first sizes the arena, whose chunks the next reset merges into one new block, and
 * the second touches that block's pages; later steps allocate nothing, as training's. */
static int time_graph(const bargs *a, nb_tensor *z, const nb_tensor *y, const nb_xent_opts *o,
                      bool two_pass, bool grad, double *t)
{
    nb_graph *g = nb_graph_new();
    int64_t one = 1;
    nb_tensor *p = nb_tensor_zeros(NB_F32, 1, &one);
    nb_xent_opts go = *o;
    go.two_pass = two_pass;
    int rc = !g || !p || nb_tensor_set_requires_grad(p, true) != NB_OK;
    for (int k = -2; k < a->repeat && !rc; k++) {
        nb_graph_reset(g);
        nb_graph_set_grad_enabled(g, grad);
        nb_tensor *zz = nb_custom_op(g, "logits", &p, 1, 2, z->shape, logits_fwd, logits_bwd, z);
        double t0 = nb_cli_now();
        nb_tensor *L = zz ? nb_cross_entropy(g, zz, y, &go) : NULL;
        rc = !L || (grad && nb_backward(g, L, NULL) != NB_OK);
        if (k >= 0)
            t[k] = nb_cli_now() - t0;
    }
    if (rc)
        fprintf(stderr, "nabla bench: graph: %s\n", nb_last_error());
    nb_graph_free(g);
    nb_tensor_free(p);
    return rc;
}

/* impl graph (fwd: evaluation, fwd_bwd: the one pass) and graph-2pass (fwd_bwd: two passes) */
static int bench_xent_graph(const bargs *a, nb_tensor *z, const nb_tensor *y, const nb_xent_opts *o,
                            double *t, double fwd_bytes, double grad_bytes)
{
    int rc = 0;
    for (int mode = 0; mode < 3 && !rc; mode++) {
        rc = time_graph(a, z, y, o, mode == 2, mode > 0, t);
        if (!rc)
            report_xent(a, mode == 2 ? "graph-2pass" : "graph", mode ? "fwd_bwd" : "fwd",
                        nb_cli_summarise(t, (int)a->repeat),
                        mode ? fwd_bytes + grad_bytes : fwd_bytes);
    }
    return rc;
}

static int bench_xent(bargs *a)
{
    nb_set_num_threads((int)a->threads);
    nb_dtype dt = !strcmp(a->dtype, "f16") ? NB_F16 : NB_F32;
    int64_t sz[2] = {a->n, a->v}, st[1] = {a->n};
    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_tensor *z32 = nb_tensor_randn(NB_F32, 2, sz, &r, 0, 2);
    nb_tensor *z = dt == NB_F32 ? z32 : (z32 ? nb_tensor_to_dtype(z32, dt) : NULL);
    nb_tensor *y = nb_tensor_empty(NB_I32, 1, st);
    nb_tensor *dz = nb_tensor_zeros(NB_F32, 2, sz), *L = nb_tensor_zeros(NB_F32, 0, NULL);
    double *t = malloc(sizeof(double) * (size_t)a->repeat);
    if (!z || !y || !dz || !L || !t) {
        fprintf(stderr, "nabla bench: %s\n", nb_last_error());
        return 1;
    }
    nb_xent_opts o = nb_xent_defaults();
    for (int64_t i = 0; i < a->n; i++)
        nb_tensor_set(y, i, (double)nb_rng_below(&r, (uint64_t)a->v));
    if (!strcmp(a->variant, "ignore25"))
        for (int64_t i = 0; i < a->n; i += 4)
            nb_tensor_set(y, i, -100);
    if (!strcmp(a->variant, "smooth01"))
        o.label_smoothing = 0.1;
    double logits_bytes = (double)a->n * (double)a->v * (double)nb_dtype_size(dt);
    double grad_bytes = (double)a->n * (double)a->v * 4.0;
    bool all = !strcmp(a->impl, "all"), fused = all || !strcmp(a->impl, "fused");
    bool unfused = all || !strcmp(a->impl, "unfused"), graph = all || !strcmp(a->impl, "graph");
    int rc = 0;
    if (fused) {
        for (int k = -1; k < a->repeat; k++) {
            double t0 = nb_cli_now();
            if (nb_xent_forward(z, y, &o, L, NULL, NULL) != NB_OK)
                rc = 1;
            if (k >= 0)
                t[k] = nb_cli_now() - t0;
        }
        report_xent(a, "fused", "fwd", nb_cli_summarise(t, (int)a->repeat), logits_bytes);
        for (int k = -1; k < a->repeat; k++) {
            double t0 = nb_cli_now();
            if (nb_xent_forward_backward(z, y, &o, L, dz, NULL) != NB_OK)
                rc = 1;
            if (k >= 0)
                t[k] = nb_cli_now() - t0;
        }
        report_xent(a, "fused", "fwd_bwd", nb_cli_summarise(t, (int)a->repeat),
                    logits_bytes + grad_bytes);
    }
    if (dt != NB_F32 && (!strcmp(a->impl, "graph") || !strcmp(a->impl, "unfused")))
        fprintf(stderr,
                "nabla bench xent: --impl %s runs f32 logits only (no op makes %s logits "
                "in a graph): nothing to time for --dtype %s\n",
                a->impl, a->dtype, a->dtype);
    if (graph && dt == NB_F32)
        rc |= bench_xent_graph(a, z, y, &o, t, logits_bytes, grad_bytes);
    if (unfused && dt == NB_F32) {
        /* the same loss from nabla's own building blocks: -mean(gather(log_softmax(z), y)) over
         * the real tokens, via the graph (smoothing adds -(a/V) mean(sum log_softmax)) */
        nb_graph *g = nb_graph_new();
        nb_tensor_set_requires_grad(z, true);
        nb_tensor *yk = nb_tensor_empty(NB_I32, 1, st), *keep = nb_tensor_zeros(NB_F32, 1, st);
        int64_t real = 0;
        for (int64_t i = 0; i < a->n; i++) {
            int64_t yi = (int64_t)nb_tensor_get(y, i);
            nb_tensor_set(yk, i, yi < 0 ? 0 : (double)yi);
            nb_tensor_set(keep, i, yi < 0 ? 0 : 1);
            real += yi >= 0;
        }
        double a_s = o.label_smoothing;
        for (int mode = 0; mode < 2 && g && yk && keep; mode++) {
            for (int k = -1; k < a->repeat; k++) {
                double t0 = nb_cli_now();
                nb_graph_reset(g);
                nb_graph_set_grad_enabled(g, mode == 1);
                nb_tensor *ls = nb_log_softmax(g, z);
                nb_tensor *nll = nb_mul(g, nb_gather_last(g, ls, yk), keep);
                nb_tensor *Ls = nb_scale(g, nb_sum(g, nll), -(1.0 - a_s) / (double)real);
                if (a_s > 0)
                    Ls = nb_add(g, Ls,
                                nb_scale(g, nb_sum(g, nb_mul(g, nb_mean_last(g, ls), keep)),
                                         -a_s / (double)real));
                if (!Ls || (mode == 1 && nb_backward(g, Ls, NULL) != NB_OK)) {
                    fprintf(stderr, "nabla bench: %s\n", nb_last_error());
                    rc = 1;
                    break;
                }
                if (k >= 0)
                    t[k] = nb_cli_now() - t0;
            }
            report_xent(a, "unfused", mode ? "fwd_bwd" : "fwd", nb_cli_summarise(t, (int)a->repeat),
                        mode ? logits_bytes + grad_bytes : logits_bytes);
        }
        nb_graph_free(g);
        nb_tensor_free(yk);
        nb_tensor_free(keep);
    }
    if (dt != NB_F32)
        nb_tensor_free(z32);
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(dz);
    nb_tensor_free(L);
    free(t);
    return rc;
}

static int bench_train(bargs *a)
{
    nb_bench_train_args ta = {a->hidden, a->batch, a->threads, a->steps, a->json};
    return nb_bench_train(&ta);
}

static int bench_memcpy(bargs *a)
{
    size_t bytes = (size_t)a->mb << 20;
    char *src = malloc(bytes), *dst = malloc(bytes);
    double *t = malloc(sizeof(double) * (size_t)a->repeat);
    if (!src || !dst || !t) {
        fprintf(stderr, "nabla bench: out of memory for 2 x %lld MB\n", a->mb);
        free(src);
        free(dst);
        free(t);
        return 1;
    }
    memset(src, 1, bytes);
    memset(dst, 0, bytes);
    int T = (int)a->threads;
    for (int k = -1; k < a->repeat; k++) {
        double t0 = nb_cli_now();
#pragma omp parallel for num_threads(T) schedule(static)
        for (int p = 0; p < T; p++) {
            size_t lo = bytes / (size_t)T * (size_t)p;
            size_t hi = p == T - 1 ? bytes : bytes / (size_t)T * (size_t)(p + 1);
            memcpy(dst + lo, src + lo, hi - lo);
        }
        if (k >= 0)
            t[k] = nb_cli_now() - t0;
    }
    nb_cli_timing tm = nb_cli_summarise(t, (int)a->repeat);
    /* a copy moves the bytes twice: read and write, as the loss's fwd_bwd does */
    double gbps = 2.0 * (double)bytes / (tm.median * 1e-3) / 1e9;
    if (a->json)
        printf("{\"bench\": \"memcpy\", \"mb\": %lld, \"threads\": %lld, \"ms_min\": %.3f, "
               "\"ms_median\": %.3f, \"ms_max\": %.3f, \"gbps\": %.2f}\n",
               a->mb, a->threads, tm.min, tm.median, tm.max, gbps);
    else
        printf("memcpy %lld MB threads %lld  ms median %.2f  %.2f GB/s (read + write)\n", a->mb,
               a->threads, tm.median, gbps);
    free(src);
    free(dst);
    free(t);
    return 0;
}

int nb_cmd_bench(int argc, char **argv)
{
    bargs a = {2048, 32768, 1,      10,    128,   200,       256,   256,  0,
               0,    1.0,   "mean", "f32", "all", "256,128", false, false};
    const char *what = argc > 1 && argv[1][0] != '-' ? argv[1] : "all";
    int first = strcmp(what, "all") || (argc > 1 && !strcmp(argv[1], "all")) ? 2 : 1;
    if (argc > 1 && argv[1][0] == '-')
        first = 1;
    int rc = parse(argc - first, argv + first, &a);
    bool n_given = a.n != 2048; /* --n: xent's rows, or the ops' elements */
    if (rc >= 0)
        return rc;
    if (!strcmp(what, "xent"))
        return bench_xent(&a);
    if (!strcmp(what, "train"))
        return bench_train(&a);
    if (!strcmp(what, "lce")) {
        nb_bench_lce_args la = {
            a.n,      a.d,           a.v,    a.threads, a.repeat,        a.block,
            a.wscale, a.filter != 0, a.impl, a.json,    a.vocab_parallel};
        return nb_bench_lce(&la);
    }
    if (!strcmp(what, "memcpy"))
        return bench_memcpy(&a);
    if (!strcmp(what, "ops"))
        return nb_bench_ops(n_given ? a.n : 1 << 20, a.repeat, (int)a.threads, a.json);
    if (strcmp(what, "all")) {
        fprintf(stderr, "nabla bench: unknown benchmark '%s' (xent, train, memcpy, ops, lce)\n",
                what);
        return 2;
    }
    rc = bench_memcpy(&a);
    rc |= bench_xent(&a);
    rc |= bench_train(&a);
    return rc;
}
