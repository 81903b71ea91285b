/* cmd_train.c - `nabla train`: an MLP classifier from the command line. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>

#include "cli.h"
#include "dist.h"
#include "nabla.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: nabla train [options]\n"
        "  --data SPEC          fashion-mnist | mnist | spirals | seq-toy | FILE.csv | "
        "X.npy,y.npy\n"
        "                       (default: Fashion-MNIST, or spirals when it is not installed)\n"
        "  --data-dir DIR       where the IDX files are (default %s)\n"
        "  --val-frac F         validation fraction for CSV/.npy data (default 0.1)\n"
        "  --hidden 256,128     hidden layer sizes (default 256,128)\n"
        "  --activation A       relu | tanh | gelu | sigmoid | leaky_relu (default relu)\n"
        "  --init I             default (PyTorch) | xavier | he\n"
        "  --dropout P          dropout after each hidden layer (default 0)\n"
        "  --epochs E           (default 10)\n"
        "  --batch B            (default 128)\n"
        "  --optim O            adam | adamw | sgd (default adamw)\n"
        "  --lr LR              peak learning rate (default 2e-3)\n"
        "  --weight-decay W     (default 1e-4 for adamw, 0 otherwise)\n"
        "  --momentum M         SGD momentum (default 0.9 for sgd)\n"
        "  --nesterov           SGD Nesterov momentum\n"
        "  --schedule S         constant | step | cosine (default cosine)\n"
        "  --warmup STEPS       linear warm-up steps (default 200)\n"
        "  --label-smoothing A  (default 0.1)\n"
        "  --clip-norm C        clip the global gradient norm to C (default off)\n"
        "  --seed S             (default 1)\n"
        "  --threads T          threads for matrix products and the loss (default 2, or 1 on a\n"
        "                       one-core machine; bitwise reproducible per thread count)\n"
        "  --save MODEL.safetensors   checkpoint after every epoch (atomic)\n"
        "  --metrics FILE.jsonl one JSON object per epoch\n"
        "  --plot FILE.png      loss and accuracy curves (needs --metrics or writes its own)\n"
        "  --accum K            split each batch into K micro-batches (gradient\n"
        "                       accumulation; same gradient as the whole batch)\n"
        "  --save-every N       also checkpoint every N optimiser steps (with --save)\n"
        "  --resume CKPT        continue a run from its checkpoint, bit for bit (same options)\n"
        "  --detect-anomaly     stop at the first op that makes a NaN/inf, naming it\n"
        "  --quiet              no per-epoch output\n"
        "Under mpirun -np P, each rank takes 1/P of every global batch (data parallel).\n",
        nb_cli_default_data_dir());
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_sizes(const char *s, int64_t *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > (1 << 20) || (*end && *end != ',') || n >= max)
            return -1;
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

static void progress(int epoch, int epochs, int64_t b, int64_t nb, double t0, double loss)
{
    double el = now() - t0, rate = el > 0 ? (double)b / el : 0;
    double eta = rate > 0 ? (double)(nb - b) / rate : 0;
    int w = 30, fill = (int)(w * b / (nb ? nb : 1));
    char bar[64];
    for (int i = 0; i < w; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[w] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld  %.0f batch/s  loss %.4f  ETA %.0fs ", epoch,
            epochs, bar, (long long)b, (long long)nb, rate, loss, eta);
    fflush(stderr);
}

/* ---- the training run ---- */

typedef struct cfg {
    const char *data, *dir, *save, *metrics, *plot, *hidden, *resume;
    nb_activation act;
    nb_init init;
    nb_optim_kind okind;
    nb_sched_kind skind;
    long long epochs, batch, warmup, seed, threads, save_every, accum;
    double lr, wd, momentum, smoothing, clip, dropout, val;
    bool nesterov, quiet, anomaly;
} cfg;

/* what a checkpoint must hold, beyond weights and optimiser, to continue bit for bit */
typedef struct run_state {
    long long epoch; /* the epoch in progress (1-based) */
    double loss_sum, weight_sum, correct;
} run_state;

static void config_string(const cfg *c, const nb_optim_config *oc, char *buf, size_t len)
{
    snprintf(buf, len,
             "data=%s hidden=%s act=%s init=%d optim=%s lr=%.17g wd=%.17g momentum=%.17g "
             "nesterov=%d schedule=%d warmup=%lld epochs=%lld batch=%lld accum=%lld "
             "smoothing=%.17g clip=%.17g dropout=%.17g seed=%lld val=%.17g",
             c->data, c->hidden, nb_activation_name(c->act), (int)c->init,
             nb_optim_kind_name(c->okind), oc->lr, oc->weight_decay, oc->momentum, oc->nesterov,
             (int)c->skind, c->warmup, c->epochs, c->batch, c->accum, c->smoothing, c->clip,
             c->dropout, c->seed, c->val);
}

static void rng_string(const nb_rng *r, char *buf, size_t len)
{
    snprintf(buf, len, "%016llx,%016llx,%016llx,%016llx", (unsigned long long)r->s[0],
             (unsigned long long)r->s[1], (unsigned long long)r->s[2], (unsigned long long)r->s[3]);
}

static bool rng_parse(const char *s, nb_rng *r)
{
    unsigned long long v[4];
    char tail;
    if (!s || sscanf(s, "%llx,%llx,%llx,%llx%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4)
        return false;
    for (int i = 0; i < 4; i++)
        r->s[i] = v[i];
    r->has_spare = false;
    r->spare = 0.0;
    return true;
}

/* Saves weights, optimiser, the run's position and its data (data_meta: NB_CLI_DATA_KEYS
 * pairs). */
static nb_status save_checkpoint(const char *path, const nb_mlp *m, const nb_model_info *info,
                                 const nb_optim *opt, const nb_batcher *bt, const run_state *rs,
                                 const char *config, const char *const *data_meta)
{
    char v[8][128];
    snprintf(v[0], 128, "%lld", rs->epoch);
    snprintf(v[1], 128, "%lld", (long long)bt->epoch);
    snprintf(v[2], 128, "%lld", (long long)bt->pos);
    rng_string(&bt->rng, v[3], 128);
    rng_string(&m->rng, v[4], 128);
    snprintf(v[5], 128, "%.17g", rs->loss_sum);
    snprintf(v[6], 128, "%.17g", rs->weight_sum);
    snprintf(v[7], 128, "%.17g", rs->correct);
    const char *extra[] = {"run_epoch",
                           v[0],
                           "run_batcher_epoch",
                           v[1],
                           "run_batcher_pos",
                           v[2],
                           "run_batcher_rng",
                           v[3],
                           "run_dropout_rng",
                           v[4],
                           "run_loss_sum",
                           v[5],
                           "run_weight_sum",
                           v[6],
                           "run_correct",
                           v[7],
                           "run_config",
                           config,
                           NULL};
    /* then the data's pairs, and the closing NULL */
    const size_t n_run = sizeof extra / sizeof *extra - 1;
    const char *all[sizeof extra / sizeof *extra + 2 * NB_CLI_DATA_KEYS];
    memcpy(all, extra, sizeof(char *) * n_run);
    memcpy(all + n_run, data_meta, sizeof(char *) * 2 * NB_CLI_DATA_KEYS);
    all[n_run + 2 * NB_CLI_DATA_KEYS] = NULL;
    return nb_model_save_ex(path, m, info, opt, all);
}

static bool meta_ll(const nb_safetensors *st, const char *key, long long *out)
{
    const char *s = nb_safetensors_meta(st, key);
    char *end;
    if (!s)
        return false;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return false;
    *out = v;
    return true;
}

static bool meta_d(const nb_safetensors *st, const char *key, double *out)
{
    const char *s = nb_safetensors_meta(st, key);
    char *end;
    if (!s)
        return false;
    double v = strtod(s, &end);
    if (end == s || *end)
        return false;
    *out = v;
    return true;
}

/* Restores a run from a checkpoint made by save_checkpoint with the same configuration. */
static int resume_run(const char *path, const char *config, nb_mlp *m, nb_optim *opt,
                      nb_batcher *bt, run_state *rs)
{
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) {
        fprintf(stderr, "nabla train: --resume %s: %s\n", path, nb_last_error());
        return 1;
    }
    const char *saved = nb_safetensors_meta(st, "run_config");
    long long be, bp;
    nb_rng brng, drng;
    int rc = 1;
    if (!saved) {
        fprintf(stderr,
                "nabla train: --resume %s: not a training checkpoint (no run state; it "
                "was not written by nabla train --save)\n",
                path);
    } else if (strcmp(saved, config)) {
        fprintf(stderr,
                "nabla train: --resume %s: the checkpoint was made with other options; resume "
                "with the same ones.\n  checkpoint: %s\n  now:        %s\n",
                path, saved, config);
    } else if (!meta_ll(st, "run_epoch", &rs->epoch) || !meta_ll(st, "run_batcher_epoch", &be) ||
               !meta_ll(st, "run_batcher_pos", &bp) ||
               !rng_parse(nb_safetensors_meta(st, "run_batcher_rng"), &brng) ||
               !rng_parse(nb_safetensors_meta(st, "run_dropout_rng"), &drng) ||
               !meta_d(st, "run_loss_sum", &rs->loss_sum) ||
               !meta_d(st, "run_weight_sum", &rs->weight_sum) ||
               !meta_d(st, "run_correct", &rs->correct)) {
        fprintf(stderr, "nabla train: --resume %s: the run state in its metadata is incomplete\n",
                path);
    } else {
        nb_model_info info;
        if (nb_model_load_into(path, m, &info, opt) != NB_OK ||
            nb_batcher_seek(bt, be, bp, &brng) != NB_OK)
            fprintf(stderr, "nabla train: --resume %s: %s\n", path, nb_last_error());
        else {
            m->rng = drng;
            rc = 0;
        }
    }
    nb_safetensors_free(st);
    return rc;
}

/* On resume, keep only the metrics lines of epochs before `first` (a run killed after writing
 * an epoch's line but before its checkpoint would otherwise repeat it). */
static int trim_metrics(const char *path, long long first)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* nothing yet */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "w");
    if (!o) {
        fclose(f);
        fprintf(stderr, "nabla train: cannot rewrite --metrics %s\n", path);
        return 1;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        long long e;
        if (sscanf(line, "{\"epoch\": %lld", &e) == 1 && e < first)
            fputs(line, o);
    }
    fclose(f);
    if (fclose(o) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        fprintf(stderr, "nabla train: cannot rewrite --metrics %s\n", path);
        return 1;
    }
    return 0;
}

/* Can a file be created next to path? Checked before training so a bad --save fails at once. */
static bool writable_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.probe.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fclose(f);
    remove(tmp);
    return true;
}

/* Sequence data (seq-toy) rides on the ordinary batcher: the data set's rows are whole
 * sequences (features [T * F]) and its "label" is the sequence's index, through which the
 * per-token targets [T] are fetched. */
typedef struct seqset {
    nb_tensor *Y; /* i32 [n_seq, T] */
    int64_t T, F, V;
} seqset;

static int load_seq_toy(uint64_t seed, nb_dataset *tr, nb_dataset *te, seqset *sq)
{
    const int64_t T = 12, V = 8, n_train = 6000, n_test = 1000;
    nb_tensor *X = NULL, *Y = NULL, *Xt = NULL, *Yt = NULL, *ids = NULL, *Xf = NULL, *yf = NULL;
    int rc = 1;
    if (nb_seq_toy(n_train, T, V, seed, &X, &Y) != NB_OK ||
        nb_seq_toy(n_test, T, V, seed + 7919, &Xt, &Yt) != NB_OK)
        goto out;
    int64_t sx[2] = {n_train, T * 2 * V}, si[1] = {n_train};
    ids = nb_tensor_empty(NB_I32, 1, si);
    if (!ids)
        goto out;
    for (int64_t i = 0; i < n_train; i++)
        ((int32_t *)ids->data)[i] = (int32_t)i;
    nb_tensor Xv;
    nb_tensor_view(&Xv, NB_F32, 2, sx, X->data);
    if (nb_dataset_from_tensors(&Xv, ids, n_train, tr) != NB_OK)
        goto out;
    /* the test set: every real token of the test sequences, as plain classification rows */
    int64_t ntok = 0;
    for (int64_t i = 0; i < Yt->numel; i++)
        ntok += ((int32_t *)Yt->data)[i] >= 0;
    int64_t sf[2] = {ntok, 2 * V}, sl[1] = {ntok};
    Xf = nb_tensor_empty(NB_F32, 2, sf);
    yf = nb_tensor_empty(NB_I32, 1, sl);
    if (!Xf || !yf)
        goto out;
    for (int64_t i = 0, k = 0; i < Yt->numel; i++)
        if (((int32_t *)Yt->data)[i] >= 0) {
            memcpy((float *)Xf->data + k * 2 * V, (float *)Xt->data + i * 2 * V,
                   sizeof(float) * (size_t)(2 * V));
            ((int32_t *)yf->data)[k++] = ((int32_t *)Yt->data)[i];
        }
    if (nb_dataset_from_tensors(Xf, yf, V, te) != NB_OK)
        goto out;
    snprintf(tr->name, sizeof tr->name, "seq-toy");
    snprintf(te->name, sizeof te->name, "seq-toy");
    sq->Y = Y;
    Y = NULL;
    sq->T = T;
    sq->F = 2 * V;
    sq->V = V;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "nabla train: seq-toy: %s\n", nb_last_error());
    nb_tensor_free(X);
    nb_tensor_free(Y);
    nb_tensor_free(Xt);
    nb_tensor_free(Yt);
    nb_tensor_free(ids);
    nb_tensor_free(Xf);
    nb_tensor_free(yf);
    return rc;
}

static int train_run(cfg *c)
{
    nb_dist dist;
    int dargc = 0;
    char **dargv = NULL;
    nb_dist_init(&dargc, &dargv, &dist);
    bool lead = dist.rank == 0, quiet = c->quiet || !lead;
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    int nh = parse_sizes(c->hidden, sizes + 1, NB_MLP_MAX_LAYERS - 1);
    if (nh < 0) {
        fprintf(stderr, "nabla train: --hidden '%s': expected sizes like 256,128\n", c->hidden);
        nb_dist_finalize(&dist);
        return 2;
    }
    if (c->save && lead && !writable_dir(c->save)) {
        fprintf(stderr, "nabla train: --save %s: cannot create files there (%s)\n", c->save,
                strerror(errno));
        nb_dist_finalize(&dist);
        return 1;
    }
    nb_set_num_threads((int)c->threads);
    bool seq = !strcmp(c->data, "seq-toy");
    seqset sq = {NULL, 1, 0, 0};
    nb_dataset tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    nb_cli_data_id data_id = {(uint64_t)c->seed, c->val, 0, 0};
    int rc = seq ? load_seq_toy((uint64_t)c->seed, &tr, &te, &sq)
                 : nb_cli_load_data("train", c->data, c->dir, (uint64_t)c->seed, c->val, &tr, &te,
                                    quiet, &data_id);
    if (rc) {
        nb_dist_finalize(&dist);
        return rc;
    }
    int64_t F = seq ? sq.F : tr.X->shape[1], T = sq.T; /* features per token, tokens per row */
    sizes[0] = F;
    sizes[nh + 1] = seq ? sq.V : (tr.n_classes > te.n_classes ? tr.n_classes : te.n_classes);
    nb_mlp *m = nb_mlp_new(sizes, nh + 2, c->act, c->init, c->dropout, NB_F32, (uint64_t)c->seed);
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    int np = m ? nb_mlp_param_count(m) : 0;
    for (int i = 0; i < np; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config oc = nb_optim_defaults(c->okind);
    oc.lr = c->okind == NB_OPTIM_SGD ? 0.05 : 2e-3;
    if (c->okind == NB_OPTIM_ADAMW)
        oc.weight_decay = 1e-4;
    if (c->okind == NB_OPTIM_SGD)
        oc.momentum = 0.9;
    if (c->lr > 0)
        oc.lr = c->lr;
    if (c->wd >= 0)
        oc.weight_decay = c->wd;
    if (c->momentum >= 0)
        oc.momentum = c->momentum;
    oc.nesterov = c->nesterov;
    nb_optim *opt = m ? nb_optim_new(&oc, params, np) : NULL;
    int64_t N = tr.X->shape[0], D = tr.X->shape[1], B = c->batch;
    int64_t steps_per_epoch = (N + B - 1) / B;
    nb_schedule sched = {
        c->skind, oc.lr, c->warmup, steps_per_epoch * c->epochs, steps_per_epoch * 3, 0.5, 0.0};
    int64_t sx[2] = {B, D}, sy[1] = {B}, st2[2] = {B, T};
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, sx), *yb = nb_tensor_zeros(NB_I32, 1, sy);
    nb_tensor *tb = nb_tensor_zeros(NB_I32, 2, st2); /* per-token targets of the batch */
    int64_t n_params = m ? nb_mlp_numel(m) : 0;
    float *flat = dist.size > 1 ? malloc(sizeof(float) * (size_t)(n_params ? n_params : 1)) : NULL;
    nb_graph *g = nb_graph_new();
    nb_batcher bt;
    memset(&bt, 0, sizeof bt);
    FILE *mf = NULL;
    char tmp_metrics[1100] = "", config[1024];
    run_state rs = {1, 0, 0, 0};
    rc = 1;
    if (!m || !opt || !xb || !yb || !tb || !g || (dist.size > 1 && !flat) ||
        nb_batcher_init(&bt, &tr, B, true, (uint64_t)c->seed) != NB_OK) {
        fprintf(stderr, "nabla train: %s\n", nb_last_error());
        goto out;
    }
    nb_graph_detect_anomaly(g, c->anomaly);
    config_string(c, &oc, config, sizeof config);
    if (c->resume && resume_run(c->resume, config, m, opt, &bt, &rs) != 0)
        goto out;
    if (c->plot && !c->metrics) {
        snprintf(tmp_metrics, sizeof tmp_metrics, "%s.metrics.jsonl", c->plot);
        c->metrics = tmp_metrics;
    }
    if (lead && c->metrics) {
        if (c->resume && trim_metrics(c->metrics, rs.epoch) != 0)
            goto out;
        if (!(mf = fopen(c->metrics, c->resume ? "a" : "w"))) {
            fprintf(stderr, "nabla train: cannot write --metrics %s (%s)\n", c->metrics,
                    strerror(errno));
            goto out;
        }
    }
    bool tty = !quiet && isatty(fileno(stderr));
    if (!quiet)
        printf("nabla train: %s, %lld train / %lld test %s, MLP %s (%lld parameters), %s lr %g, "
               "%s schedule, batch %lld%s, smoothing %g, %lld thread%s%s\n",
               tr.name, (long long)N, (long long)te.X->shape[0], seq ? "sequences/tokens" : "",
               c->hidden, (long long)n_params, nb_optim_kind_name(c->okind), oc.lr,
               c->skind == NB_SCHED_COSINE ? "cosine"
               : c->skind == NB_SCHED_STEP ? "step"
                                           : "constant",
               (long long)B, c->accum > 1 ? " (accumulated)" : "", c->smoothing, c->threads,
               c->threads == 1 ? "" : "s", c->resume ? ", resumed" : "");
    if (!quiet && dist.size > 1)
        printf("data-parallel over %d MPI ranks\n", dist.size);
    nb_xent_opts xo = nb_xent_defaults();
    xo.label_smoothing = c->smoothing;
    nb_xent_stats stats;
    xo.stats = &stats;
    nb_model_info info = {tr.input_scale, tr.input_shift, sizes[nh + 1], 0, ""};
    /* the --data spec, so that `nabla eval --model` finds the same data by itself */
    const char *spec = c->data;
    if (!strcmp(spec, "auto"))
        spec = nb_cli_mnist_present(c->dir ? c->dir : nb_cli_default_data_dir()) ? "fashion-mnist"
                                                                                 : "spirals";
    snprintf(info.dataset, sizeof info.dataset, "%s", spec);
    /* and what rebuilds the run's held-out rows exactly (seed, fraction, the file's checksum) */
    char data_num[4][32];
    const char *data_meta[2 * NB_CLI_DATA_KEYS];
    nb_cli_data_meta(spec, &data_id, data_num, data_meta);
    for (long long e = rs.epoch; e <= c->epochs; e++) {
        double t0 = now();
        int64_t b = bt.pos / B;
        nb_mlp_set_training(m, true);
        while (nb_batcher_next(&bt, xb, yb)) {
            int64_t n = xb->shape[0]; /* rows (sequences) in this global batch */
            const int32_t *y = yb->data;
            int32_t *tt = tb->data;
            if (seq)
                for (int64_t i = 0; i < n; i++)
                    memcpy(tt + i * T, (int32_t *)sq.Y->data + (int64_t)y[i] * T,
                           sizeof(int32_t) * (size_t)T);
            else
                memcpy(tt, y, sizeof(int32_t) * (size_t)n);
            /* this rank's shard of the global batch, split into micro-batches */
            int64_t lo = n * dist.rank / dist.size, hi = n * (dist.rank + 1) / dist.size;
            /* the whole global batch's real-token count, known before any backward: every
             * micro-batch's loss is divided by it, so the accumulated gradient is the mean */
            double W[3] = {0, 0, 0}; /* real tokens; then loss sum and hits of this step */
            for (int64_t i = lo * T; i < hi * T; i++)
                W[0] += tt[i] >= 0;
            if (!nb_dist_sum_doubles(&dist, W, 1)) {
                fprintf(stderr, "nabla train: MPI_Allreduce failed\n");
                goto out;
            }
            xo.normaliser = W[0];
            xo.reduction = NB_REDUCTION_MEAN;
            for (long long k = 0; k < c->accum; k++) {
                int64_t a0 = lo + (hi - lo) * k / c->accum,
                        a1 = lo + (hi - lo) * (k + 1) / c->accum;
                if (a1 <= a0)
                    continue;
                int64_t rows = (a1 - a0) * T, shx[2] = {rows, F}, sht[2] = {a1 - a0, T};
                nb_tensor xv, tv;
                nb_tensor_view(&xv, NB_F32, 2, shx, (float *)xb->data + a0 * T * F);
                nb_tensor_view(&tv, NB_I32, seq ? 2 : 1, seq ? sht : sht + 0, tt + a0 * T);
                if (!seq)
                    tv.shape[0] = a1 - a0, tv.numel = a1 - a0;
                nb_graph_reset(g);
                nb_tensor *logits = nb_mlp_forward(g, m, &xv);
                nb_tensor *z = logits;
                if (seq && logits) {
                    int64_t s3[3] = {a1 - a0, T, sq.V};
                    z = nb_reshape(g, logits, 3, s3);
                }
                nb_tensor *L = nb_cross_entropy(g, z, &tv, &xo);
                if (!L || nb_backward(g, L, NULL) != NB_OK) {
                    fprintf(stderr, "%snabla train: %s\n", tty ? "\n" : "", nb_last_error());
                    goto out;
                }
                int64_t srow[1] = {rows}, hits, counted;
                nb_tensor trow; /* the targets as one per logits row */
                nb_tensor_view(&trow, NB_I32, 1, srow, tt + a0 * T);
                if (nb_accuracy(logits, &trow, xo.ignore_index, &hits, &counted) != NB_OK) {
                    fprintf(stderr, "%snabla train: %s\n", tty ? "\n" : "", nb_last_error());
                    goto out;
                }
                W[1] += stats.loss_sum;
                W[2] += (double)hits;
            }
            if (dist.size > 1) { /* sum gradients over ranks: one call, one flat buffer */
                int64_t off = 0;
                for (int i = 0; i < np; i++) {
                    memcpy(flat + off, params[i]->grad, sizeof(float) * (size_t)params[i]->numel);
                    off += params[i]->numel;
                }
                if (!nb_dist_sum_floats(&dist, flat, n_params) ||
                    !nb_dist_sum_doubles(&dist, W + 1, 2)) {
                    fprintf(stderr, "nabla train: MPI_Allreduce failed\n");
                    goto out;
                }
                off = 0;
                for (int i = 0; i < np; i++) {
                    memcpy(params[i]->grad, flat + off, sizeof(float) * (size_t)params[i]->numel);
                    off += params[i]->numel;
                }
            }
            double lv = W[0] > 0 ? W[1] / W[0] : 0.0;
            if (!isfinite(lv)) {
                fprintf(stderr,
                        "%snabla train: loss became %g at epoch %lld step %lld; stopping (the "
                        "last checkpoint, if any, is kept). Try a lower --lr, --clip-norm, or "
                        "--detect-anomaly to find where it started.\n",
                        tty ? "\n" : "", lv, e, (long long)nb_optim_step_count(opt));
                goto out;
            }
            if (c->clip > 0)
                nb_clip_grad_norm(params, np, c->clip, NULL);
            nb_optim_set_lr(opt, nb_schedule_lr(&sched, nb_optim_step_count(opt)));
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            rs.loss_sum += W[1];
            rs.weight_sum += W[0];
            rs.correct += W[2];
            b++;
            if (tty && (b % 20 == 0 || b == steps_per_epoch))
                progress((int)e, (int)c->epochs, b, steps_per_epoch, t0,
                         rs.loss_sum / (rs.weight_sum > 0 ? rs.weight_sum : 1));
            if (lead && c->save && c->save_every && nb_optim_step_count(opt) % c->save_every == 0) {
                rs.epoch = e;
                info.epoch = e - 1;
                if (save_checkpoint(c->save, m, &info, opt, &bt, &rs, config, data_meta) != NB_OK) {
                    fprintf(stderr, "%snabla train: --save %s: %s\n", tty ? "\n" : "", c->save,
                            nb_last_error());
                    goto out;
                }
            }
        }
        double train_s = now() - t0;
        if (tty)
            fprintf(stderr, "\r%*s\r", 100, "");
        double test_loss = 0;
        int64_t test_correct = 0;
        if (lead && nb_cli_evaluate(g, m, &te, &test_loss, &test_correct, NULL) != NB_OK) {
            fprintf(stderr, "nabla train: %s\n", nb_last_error());
            goto out;
        }
        int64_t NT = te.X->shape[0];
        double tr_loss = rs.loss_sum / (rs.weight_sum > 0 ? rs.weight_sum : 1);
        double tr_acc = rs.correct / (rs.weight_sum > 0 ? rs.weight_sum : 1);
        double te_loss = test_loss / (double)NT, te_acc = (double)test_correct / (double)NT;
        if (!quiet)
            printf(
                "epoch %3lld  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.2fs  lr %.3g\n",
                e, tr_loss, tr_acc, te_loss, te_acc, train_s, nb_optim_lr(opt));
        fflush(stdout);
        if (mf) {
            fprintf(mf,
                    "{\"epoch\": %lld, \"train_loss\": %.6f, \"train_acc\": %.6f, \"test_loss\": "
                    "%.6f, \"test_acc\": %.6f, \"train_seconds\": %.4f, \"lr\": %.6g}\n",
                    e, tr_loss, tr_acc, te_loss, te_acc, train_s, nb_optim_lr(opt));
            fflush(mf);
        }
        rs = (run_state){e + 1, 0, 0, 0};
        info.epoch = e;
        if (lead && c->save &&
            save_checkpoint(c->save, m, &info, opt, &bt, &rs, config, data_meta) != NB_OK) {
            fprintf(stderr, "nabla train: --save %s: %s\n", c->save, nb_last_error());
            goto out;
        }
    }
    if (c->save && !quiet)
        printf("saved %s\n", c->save);
    if (mf) {
        FILE *f = mf;
        mf = NULL;
        if (fclose(f) != 0) {
            fprintf(stderr, "nabla train: error writing %s\n", c->metrics);
            goto out;
        }
    }
    rc = 0;
    if (lead && c->plot) {
        rc = nb_cli_plot_metrics(c->metrics, c->plot);
        if (rc == 0 && !quiet)
            printf("plotted %s\n", c->plot);
    }
out:
    if (mf)
        fclose(mf);
    free(flat);
    nb_batcher_free(&bt);
    nb_graph_free(g);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_tensor_free(tb);
    nb_tensor_free(sq.Y);
    nb_optim_free(opt);
    nb_mlp_free(m);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
    nb_dist_finalize(&dist);
    return rc;
}

int nb_cmd_train(int argc, char **argv)
{
    cfg c = {"auto",
             NULL,
             NULL,
             NULL,
             NULL,
             "256,128",
             NULL,
             NB_ACT_RELU,
             NB_INIT_DEFAULT,
             NB_OPTIM_ADAMW,
             NB_SCHED_COSINE,
             10,
             128,
             200,
             1,
             0,
             0,
             1,
             -1,
             -1,
             -1,
             0.1,
             0,
             0,
             0.1,
             false,
             false,
             false};
    /* default threads: 2 when the machine has them (measured: 0.82 vs 1.09 ms per step of the
     * default MLP on 2 cores); runs are bitwise reproducible for a given thread count */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c.threads = ncpu >= 2 ? 2 : 1;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(k, "--nesterov") || !strcmp(k, "--quiet") || !strcmp(k, "--detect-anomaly")) {
            *(k[2] == 'n' ? &c.nesterov : k[2] == 'q' ? &c.quiet : &c.anomaly) = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla train: unknown option or missing value: '%s'\n", k);
            return 2;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(k, "--data"))
            c.data = v;
        else if (!strcmp(k, "--data-dir"))
            c.dir = v;
        else if (!strcmp(k, "--save"))
            c.save = v;
        else if (!strcmp(k, "--resume"))
            c.resume = v;
        else if (!strcmp(k, "--metrics"))
            c.metrics = v;
        else if (!strcmp(k, "--plot"))
            c.plot = v;
        else if (!strcmp(k, "--hidden"))
            c.hidden = v;
        else if (!strcmp(k, "--activation"))
            ok = nb_activation_parse(v, &c.act);
        else if (!strcmp(k, "--init"))
            ok = nb_init_parse(v, &c.init);
        else if (!strcmp(k, "--optim"))
            ok = nb_optim_kind_parse(v, &c.okind);
        else if (!strcmp(k, "--schedule"))
            ok = nb_sched_kind_parse(v, &c.skind);
        else if (!strcmp(k, "--epochs"))
            ok = nb_cli_parse_int("train", k, v, &c.epochs) && c.epochs >= 1 && c.epochs <= 100000;
        else if (!strcmp(k, "--batch"))
            ok = nb_cli_parse_int("train", k, v, &c.batch) && c.batch >= 1 && c.batch <= 1000000;
        else if (!strcmp(k, "--accum"))
            ok = nb_cli_parse_int("train", k, v, &c.accum) && c.accum >= 1 && c.accum <= 4096;
        else if (!strcmp(k, "--warmup"))
            ok = nb_cli_parse_int("train", k, v, &c.warmup) && c.warmup >= 0;
        else if (!strcmp(k, "--save-every"))
            ok = nb_cli_parse_int("train", k, v, &c.save_every) && c.save_every >= 1;
        else if (!strcmp(k, "--seed"))
            ok = nb_cli_parse_int("train", k, v, &c.seed);
        else if (!strcmp(k, "--threads"))
            ok = nb_cli_parse_int("train", k, v, &c.threads) && c.threads >= 1 && c.threads <= 256;
        else if (!strcmp(k, "--lr"))
            ok = nb_cli_parse_double("train", k, v, &c.lr) && c.lr > 0 && isfinite(c.lr);
        else if (!strcmp(k, "--weight-decay"))
            ok = nb_cli_parse_double("train", k, v, &c.wd) && c.wd >= 0 && isfinite(c.wd);
        else if (!strcmp(k, "--momentum"))
            ok = nb_cli_parse_double("train", k, v, &c.momentum) && c.momentum >= 0 &&
                 c.momentum < 1;
        else if (!strcmp(k, "--label-smoothing"))
            ok = nb_cli_parse_double("train", k, v, &c.smoothing) && c.smoothing >= 0 &&
                 c.smoothing < 1;
        else if (!strcmp(k, "--clip-norm"))
            ok = nb_cli_parse_double("train", k, v, &c.clip) && c.clip > 0 && isfinite(c.clip);
        else if (!strcmp(k, "--dropout"))
            ok = nb_cli_parse_double("train", k, v, &c.dropout) && c.dropout >= 0 && c.dropout < 1;
        else if (!strcmp(k, "--val-frac"))
            ok = nb_cli_parse_double("train", k, v, &c.val) && c.val > 0 && c.val < 1;
        else {
            fprintf(stderr, "nabla train: unknown option '%s'\n", k);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "nabla train: bad value for %s: '%s' (see nabla train --help)\n", k, v);
            return 2;
        }
    }
    return train_run(&c);
}
