/* cmd_train.c - `nabla train`: an MLP classifier from the command line. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
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
#include "tensor/fileio.h"
#include "train_outputs.h"

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
        "  --header yes|no|auto whether line 1 of a CSV is a header (default auto: only when\n"
        "                       none of its fields is a number)\n"
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
    int argc; /* the command line, for the resume hint after an interruption */
    char **argv;
} cfg;

/* The options that must match for a bit-exact resume, as one string, whole (malloc'd; NULL
 * with a message when out of memory). */
static char *config_string(const cfg *c, const nb_optim_config *oc)
{
#define NB_CONFIG_ARGS                                                                             \
    "data=%s hidden=%s act=%s init=%d optim=%s lr=%.17g wd=%.17g momentum=%.17g "                  \
    "nesterov=%d schedule=%d warmup=%lld epochs=%lld batch=%lld accum=%lld "                       \
    "smoothing=%.17g clip=%.17g dropout=%.17g seed=%lld val=%.17g",                                \
        c->data, c->hidden, nb_activation_name(c->act), (int)c->init,                              \
        nb_optim_kind_name(c->okind), oc->lr, oc->weight_decay, oc->momentum, oc->nesterov,        \
        (int)c->skind, c->warmup, c->epochs, c->batch, c->accum, c->smoothing, c->clip,            \
        c->dropout, c->seed, c->val
    int n = snprintf(NULL, 0, NB_CONFIG_ARGS);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf) {
        fprintf(stderr, "nabla train: out of memory for the %d-byte run options\n", n);
        return NULL;
    }
    snprintf(buf, (size_t)n + 1, NB_CONFIG_ARGS);
#undef NB_CONFIG_ARGS
    return buf;
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

/* ---- the run: the library's trainer does the work; this file parses, prints and writes ---- */

static nb_status dist_allreduce(void *buf, int64_t n, nb_dtype dt, void *ctx)
{
    const nb_dist *d = ctx;
    bool ok = dt == NB_F64   ? nb_dist_sum_doubles(d, buf, (int)n)
              : dt == NB_F32 ? nb_dist_sum_floats(d, buf, n)
                             : false;
    return ok ? NB_OK : nb_error(NB_ERR_IO, "MPI_Allreduce failed (%lld values)", (long long)n);
}

/* What the trainer's callbacks print and write. */
typedef struct run_ui {
    const cfg *c;
    FILE *txt;
    bool quiet, tty, lead, metrics_on;
    double t0;        /* when this epoch's first step started (progress bar) */
    int64_t t0_epoch; /* the epoch t0 is for */
    nb_graph *g;      /* for the test set's figures */
    nb_mlp *m;
    const nb_dataset *te;
    metrics_out mo;
    bool failed; /* a callback failed (message printed) */
} run_ui;

static bool on_step(const nb_train_progress *p, void *user)
{
    run_ui *u = user;
    if (u->t0_epoch != p->epoch) {
        u->t0_epoch = p->epoch;
        u->t0 = now();
    }
    if (u->tty && (p->batch % 20 == 0 || p->batch == p->batches))
        progress((int)p->epoch, (int)p->epochs, p->batch, p->batches, u->t0, p->train_loss);
    return !nb_train_stop_signal;
}

static bool on_epoch(const nb_train_progress *p, void *user)
{
    run_ui *u = user;
    u->t0_epoch = 0;
    if (u->tty)
        fprintf(stderr, "\r%*s\r", 100, "");
    double test_loss = 0;
    int64_t test_correct = 0;
    if (u->lead && nb_cli_evaluate(u->g, u->m, u->te, &test_loss, &test_correct, NULL) != NB_OK) {
        fprintf(stderr, "nabla train: %s\n", nb_last_error());
        u->failed = true;
        return false;
    }
    int64_t NT = u->te->X->shape[0];
    double te_loss = test_loss / (double)NT, te_acc = (double)test_correct / (double)NT;
    if (!u->quiet)
        fprintf(u->txt,
                "epoch %3lld  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.2fs  lr %.3g\n",
                (long long)p->epoch, p->train_loss, p->train_acc, te_loss, te_acc, p->seconds,
                p->lr);
    fflush(u->txt);
    if (u->metrics_on) {
        char line[512], v[6][64];
        snprintf(
            line, sizeof line,
            "{\"epoch\": %lld, \"train_loss\": %s, \"train_acc\": %s, \"test_loss\": "
            "%s, \"test_acc\": %s, \"train_seconds\": %s, \"lr\": %s}\n",
            (long long)p->epoch, nb_json_number(v[0], 64, "%.6f", p->train_loss),
            nb_json_number(v[1], 64, "%.6f", p->train_acc),
            nb_json_number(v[2], 64, "%.6f", te_loss), nb_json_number(v[3], 64, "%.6f", te_acc),
            nb_json_number(v[4], 64, "%.4f", p->seconds), nb_json_number(v[5], 64, "%.6g", p->lr));
        if (nb_train_metrics_line(&u->mo, line) != 0) {
            u->failed = true;
            return false;
        }
    }
    /* a signal during the last epoch's figures lets the run finish */
    return !(nb_train_stop_signal && p->epoch < p->epochs);
}

/* The optimiser of the command line: nabla's defaults per kind, then the options given. */
static nb_optim_config optim_config(const cfg *c)
{
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
    return oc;
}

/* The outputs, checked and locked before any work (the locks are held for the run). --plot
 * without --metrics gets a metrics file beside the PNG (*tmp_metrics, caller frees). 0 ok. */
static int take_outputs(cfg *c, bool lead, nb_output_lock locks[3], char **tmp_metrics)
{
    if (c->plot && !c->metrics) {
        const char *base = strcmp(c->plot, "-") ? c->plot : "plot";
        size_t len = strlen(base) + sizeof ".metrics.jsonl";
        if (!(*tmp_metrics = malloc(len))) {
            fprintf(stderr, "nabla train: out of memory for a %zu-byte path\n", len);
            return 1;
        }
        snprintf(*tmp_metrics, len, "%s.metrics.jsonl", base);
        c->metrics = *tmp_metrics;
    }
    const char *const lock_paths[3] = {c->save, c->metrics, c->plot};
    if (lead && nb_train_check_outputs(c->save, c->metrics, c->plot, c->resume, c->data) != 0)
        return 1;
    for (int i = 0; i < 3 && lead; i++)
        if (lock_paths[i] && nb_output_lock_take(&locks[i], lock_paths[i],
                                                 i == 0   ? "nabla train --save"
                                                 : i == 1 ? "nabla train --metrics"
                                                          : "nabla train --plot") != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
    return 0;
}

static void print_header(const cfg *c, FILE *txt, const nb_dataset *tr, const nb_dataset *te,
                         bool seq, int64_t n_params, const nb_optim_config *oc, int world)
{
    fprintf(txt,
            "nabla train: %s, %lld train / %lld test %s, MLP %s (%lld parameters), %s lr %g, "
            "%s schedule, batch %lld%s, smoothing %g, %lld thread%s%s\n",
            tr->name, (long long)tr->X->shape[0], (long long)te->X->shape[0],
            seq ? "sequences/tokens" : "", c->hidden, (long long)n_params,
            nb_optim_kind_name(c->okind), oc->lr,
            c->skind == NB_SCHED_COSINE ? "cosine"
            : c->skind == NB_SCHED_STEP ? "step"
                                        : "constant",
            c->batch, c->accum > 1 ? " (accumulated)" : "", c->smoothing, c->threads,
            c->threads == 1 ? "" : "s", c->resume ? ", resumed" : "");
    if (world > 1)
        fprintf(txt, "data-parallel over %d MPI ranks\n", world);
}

/* The trainer's configuration from the command line. */
static nb_train_config train_config(const cfg *c, const nb_optim_config *oc, const nb_dist *dist,
                                    const seqset *sq)
{
    nb_train_config tc = nb_train_defaults();
    tc.epochs = c->epochs;
    tc.batch = c->batch;
    tc.accum = c->accum;
    tc.seed = (uint64_t)c->seed;
    tc.optim = *oc;
    tc.schedule.kind = c->skind;
    tc.schedule.warmup = c->warmup;
    tc.clip_norm = c->clip;
    tc.loss.label_smoothing = c->smoothing;
    tc.tokens_per_row = sq->T;
    tc.seq_targets = sq->Y;
    tc.detect_anomaly = c->anomaly;
    tc.rank = dist->rank;
    tc.world_size = dist->size;
    tc.allreduce_sum = dist_allreduce;
    tc.allreduce_ctx = (void *)dist;
    tc.checkpoint = dist->rank == 0 ? c->save : NULL;
    tc.save_every_steps = c->save ? c->save_every : 0;
    return tc;
}

/* What the run's trainer reported: 0, or 1 after the message. */
static int report_failure(nb_status s, const run_ui *u)
{
    if (u->failed)
        return 1;
    if (s == NB_OK)
        return 0;
    if (s == NB_ERR_ANOMALY && strstr(nb_last_error(), "loss became"))
        fprintf(stderr,
                "%snabla train: %s; stopping (the last checkpoint, if any, is kept). Try a lower "
                "--lr, --clip-norm, or --detect-anomaly to find where it started.\n",
                u->tty ? "\n" : "", nb_last_error());
    else
        fprintf(stderr, "%snabla train: %s\n", u->tty ? "\n" : "", nb_last_error());
    return 1;
}

/* The trainer over the loaded data: the model, resume, the run, and what follows it (the
 * checkpoint's last word, the plot, the interruption report). Returns the exit status. */
static int run_trainer(cfg *c, const nb_dist *dist, run_ui *u, const nb_dataset *tr,
                       const seqset *sq, const int64_t *sizes, int n_sizes,
                       const nb_cli_data_id *data_id)
{
    nb_optim_config oc = optim_config(c);
    nb_mlp *m = nb_mlp_new(sizes, n_sizes, c->act, c->init, c->dropout, NB_F32, (uint64_t)c->seed);
    nb_train_config tc = train_config(c, &oc, dist, sq);
    char *config = config_string(c, &oc);
    /* the --data spec, so that `nabla eval --model` finds the same data by itself, and what
     * rebuilds the run's held-out rows exactly (seed, fraction, the file's checksum) */
    const char *spec = c->data;
    if (!strcmp(spec, "auto"))
        spec = nb_cli_mnist_present(c->dir ? c->dir : nb_cli_default_data_dir()) ? "fashion-mnist"
                                                                                 : "spirals";
    char data_num[4][32];
    const char *data_meta[2 * NB_CLI_DATA_KEYS + 1];
    nb_cli_data_meta(spec, data_id, data_num, data_meta);
    data_meta[2 * NB_CLI_DATA_KEYS] = NULL;
    tc.info.n_classes = sizes[n_sizes - 1];
    snprintf(tc.info.dataset, sizeof tc.info.dataset, "%s", spec);
    tc.run_config = config;
    tc.checkpoint_meta = data_meta;
    tc.on_step = on_step;
    tc.on_epoch = on_epoch;
    tc.user = u;
    u->m = m;
    int rc = 1;
    nb_train_model md = nb_train_model_mlp(m);
    nb_trainer *t = m && config ? nb_trainer_new(&md, tr, &tc) : NULL;
    if (!t) {
        if (config)
            fprintf(stderr, "nabla train: %s\n", nb_last_error());
        goto out;
    }
    if (c->resume && nb_trainer_resume(t, c->resume) != NB_OK) {
        fprintf(stderr, "nabla train: --resume: %s\n", nb_last_error());
        goto out;
    }
    if (u->lead && c->metrics) {
        if (nb_train_metrics_open(&u->mo, c->metrics, c->resume ? nb_trainer_epoch(t) : 1) != 0)
            goto out;
        u->metrics_on = true;
    }
    if (!u->quiet)
        print_header(c, u->txt, tr, u->te, sq->Y != NULL, nb_mlp_numel(m), &oc, dist->size);
    nb_train_result res;
    if ((rc = report_failure(nb_trainer_run(t, &res), u)) != 0)
        goto out;
    int64_t ck_epoch, ck_step;
    nb_trainer_last_checkpoint(t, &ck_epoch, &ck_step);
    if (res.stopped && nb_train_stop_signal) {
        if (u->lead)
            nb_train_report_interrupted(c->argc, c->argv, c->save, nb_train_stop_signal,
                                        nb_trainer_epoch(t), (long long)res.steps,
                                        ck_step >= 0 ? c->save : c->resume,
                                        ck_step >= 0 ? ck_epoch : 0, ck_step);
        rc = 128 + nb_train_stop_signal;
        goto out;
    }
    if (u->metrics_on) {
        u->metrics_on = false;
        if ((rc = nb_train_metrics_close(&u->mo, true)) != 0)
            goto out;
    }
    if (u->lead && ck_step >= 0 && !u->quiet)
        fprintf(u->txt, "saved %s\n", c->save);
    if (u->lead && c->plot) {
        rc = nb_cli_plot_metrics(c->metrics, c->plot);
        if (rc == 0 && !u->quiet)
            fprintf(u->txt, "plotted %s\n", c->plot);
    }
out:
    if (u->metrics_on) /* interrupted: keep the finished epochs */
        nb_train_metrics_close(&u->mo, rc == 0 || rc > 128);
    u->metrics_on = false;
    nb_trainer_free(t);
    nb_mlp_free(m);
    free(config);
    return rc;
}

static int train_run(cfg *c)
{
    nb_dist dist;
    int dargc = 0;
    char **dargv = NULL;
    nb_dist_init(&dargc, &dargv, &dist);
    run_ui u;
    memset(&u, 0, sizeof u);
    u.c = c;
    u.lead = dist.rank == 0;
    u.quiet = c->quiet || !u.lead;
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    int nh = parse_sizes(c->hidden, sizes + 1, NB_MLP_MAX_LAYERS - 1);
    if (nh < 0) {
        fprintf(stderr, "nabla train: --hidden '%s': expected sizes like 256,128\n", c->hidden);
        nb_dist_finalize(&dist);
        return 2;
    }
    char *tmp_metrics = NULL;
    nb_output_lock locks[3] = {{-1, NULL}, {-1, NULL}, {-1, NULL}};
    struct sigaction old_sig[2];
    seqset sq = {NULL, 1, 0, 0};
    nb_dataset tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    int rc = take_outputs(c, u.lead, locks, &tmp_metrics);
    if (rc) {
        for (int i = 0; i < 3; i++)
            nb_output_lock_release(&locks[i]);
        free(tmp_metrics);
        nb_dist_finalize(&dist);
        return rc;
    }
    /* what prints for people: stderr when standard output carries --metrics or --plot */
    u.txt = (c->metrics && !strcmp(c->metrics, "-")) || (c->plot && !strcmp(c->plot, "-")) ? stderr
                                                                                           : stdout;
    u.tty = !u.quiet && isatty(fileno(stderr));
    /* SIGINT/SIGTERM from here on stop the run at a step boundary */
    nb_train_signals_install(old_sig);
    nb_set_num_threads((int)c->threads);
    bool seq = !strcmp(c->data, "seq-toy");
    nb_cli_data_id data_id = {(uint64_t)c->seed, c->val, 0, 0};
    rc = seq ? load_seq_toy((uint64_t)c->seed, &tr, &te, &sq)
             : nb_cli_load_data("train", c->data, c->dir, (uint64_t)c->seed, c->val, &tr, &te,
                                u.quiet, &data_id);
    if (rc == 0) {
        sizes[0] = seq ? sq.F : tr.X->shape[1];
        sizes[nh + 1] = seq ? sq.V : (tr.n_classes > te.n_classes ? tr.n_classes : te.n_classes);
        u.te = &te;
        if (!(u.g = nb_graph_new())) {
            fprintf(stderr, "nabla train: %s\n", nb_last_error());
            rc = 1;
        } else
            rc = run_trainer(c, &dist, &u, &tr, &sq, sizes, nh + 2, &data_id);
    }
    nb_train_signals_restore(old_sig);
    for (int i = 0; i < 3; i++)
        nb_output_lock_release(&locks[i]);
    free(tmp_metrics);
    nb_graph_free(u.g);
    nb_tensor_free(sq.Y);
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
             false,
             0,
             NULL};
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
        if (!strcmp(k, "--data")) {
            c.data = v;
            if (strlen(v) >= NB_MODEL_DATASET_MAX) { /* the checkpoint records it whole */
                fprintf(stderr, "nabla train: --data is %zu bytes; the limit is %d\n", strlen(v),
                        NB_MODEL_DATASET_MAX - 1);
                return 2;
            }
        } else if (!strcmp(k, "--data-dir"))
            c.dir = v;
        else if (!strcmp(k, "--header")) {
            if (!nb_cli_csv_header_option("train", v))
                return 2;
        } else if (!strcmp(k, "--save"))
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
    c.argc = argc;
    c.argv = argv;
    return train_run(&c);
}
