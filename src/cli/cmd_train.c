/* cmd_train.c - `nabla train`: an MLP classifier from the command line. The library's trainer
 * (nabla/train.h) does the work; this file prints, writes the outputs and reports the test set. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "nabla.h"
#include "tensor/fileio.h"
#include "train_data.h"
#include "train_options.h"
#include "train_outputs.h"

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

/* The terminal's width (stderr), 80 when it cannot tell. */
static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* One line that fits the terminal (it never wraps, so each redraw replaces it): the bar
 * shrinks, then goes, as the width does. */
static void progress(int epoch, int epochs, int64_t b, int64_t nb, double t0, double loss)
{
    double el = nb_cli_now() - t0, rate = el > 0 ? (double)b / el : 0;
    double eta = rate > 0 ? (double)(nb - b) / rate : 0;
    char tail[160], line[512];
    int nt = snprintf(tail, sizeof tail, " %lld/%lld %.0f batch/s loss %.4f ETA %.0fs",
                      (long long)b, (long long)nb, rate, loss, eta);
    int width = term_width() - 1, head = snprintf(line, sizeof line, "epoch %d/%d", epoch, epochs);
    int w = width - head - nt - 3; /* " [" and "]" */
    if (w > 30)
        w = 30;
    if (w >= 5) {
        int fill = (int)(w * b / (nb ? nb : 1));
        head += snprintf(line + head, sizeof line - (size_t)head, " [");
        for (int i = 0; i < w; i++)
            line[head++] = i < fill ? '=' : (i == fill ? '>' : ' ');
        line[head++] = ']';
    }
    snprintf(line + head, sizeof line - (size_t)head, "%s", tail);
    line[width < (int)sizeof line ? width : (int)sizeof line - 1] = '\0';
    fprintf(stderr, "\r%s\033[K", line); /* erase what a longer line left */
    fflush(stderr);
}

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
    const train_cfg *c;
    FILE *txt;
    bool quiet, tty, lead, metrics_on;
    double t0;        /* when this epoch's first step started (progress bar) */
    int64_t t0_epoch; /* the epoch t0 is for */
    nb_graph *g;      /* for the test set's figures */
    metrics_out mo;
    char best[4096]; /* --save-best: MODEL.best.safetensors */
    bool failed;     /* a callback failed (message printed) */
} run_ui;

static bool on_step(const nb_train_progress *p, void *user)
{
    run_ui *u = user;
    if (u->t0_epoch != p->epoch) {
        u->t0_epoch = p->epoch;
        u->t0 = nb_cli_now();
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
        fprintf(stderr, "\r\033[K");
    char val[96] = "";
    if (p->has_val)
        snprintf(val, sizeof val, "  val loss %.4f acc %.4f%s", p->val_loss, p->val_acc,
                 p->improved ? " *" : "");
    if (!u->quiet)
        fprintf(u->txt, "epoch %3lld  train loss %.4f acc %.4f%s  |g| %.3g  %.2fs  lr %.3g\n",
                (long long)p->epoch, p->train_loss, p->train_acc, val, p->epoch_grad_norm,
                p->seconds, p->lr);
    fflush(u->txt);
    if (u->metrics_on) {
        char line[640], v[7][64], vs[160] = "";
        if (p->has_val)
            snprintf(vs, sizeof vs, "\"val_loss\": %s, \"val_acc\": %s, ",
                     nb_json_number(v[5], 64, "%.6f", p->val_loss),
                     nb_json_number(v[6], 64, "%.6f", p->val_acc));
        snprintf(line, sizeof line,
                 "{\"epoch\": %lld, \"train_loss\": %s, \"train_acc\": %s, %s\"grad_norm\": %s, "
                 "\"train_seconds\": %s, \"lr\": %s}\n",
                 (long long)p->epoch, nb_json_number(v[0], 64, "%.6f", p->train_loss),
                 nb_json_number(v[1], 64, "%.6f", p->train_acc), vs,
                 nb_json_number(v[2], 64, "%.6g", p->epoch_grad_norm),
                 nb_json_number(v[3], 64, "%.4f", p->seconds),
                 nb_json_number(v[4], 64, "%.6g", p->lr));
        if (nb_train_metrics_line(&u->mo, line) != 0) {
            u->failed = true;
            return false;
        }
    }
    /* a signal during the last epoch's figures lets the run finish */
    return !(nb_train_stop_signal && p->epoch < p->epochs);
}

/* The outputs, checked and locked before any work (the locks are held for the run). --plot
 * without --metrics gets a metrics file beside the PNG (*tmp_metrics, caller frees). 0 ok. */
static int take_outputs(train_cfg *c, run_ui *u, nb_output_lock locks[4], char **tmp_metrics)
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
    if (c->save_best) { /* MODEL.EXT -> MODEL.best.EXT beside it */
        if (!c->save || strlen(c->save) + 8 > sizeof u->best) {
            fprintf(stderr, "nabla train: --save-best needs --save MODEL.safetensors%s\n",
                    c->save ? " (a shorter path)" : "");
            return 2;
        }
        const char *base = strrchr(c->save, '/'), *dot = strrchr(base ? base : c->save, '.');
        size_t n =
            dot && dot != (base ? base + 1 : c->save) ? (size_t)(dot - c->save) : strlen(c->save);
        snprintf(u->best, sizeof u->best, "%.*s.best%s", (int)n, c->save, c->save + n);
    }
    const char *const paths[4] = {c->save, c->metrics, c->plot, c->save_best ? u->best : NULL};
    static const char *const who[4] = {"nabla train --save", "nabla train --metrics",
                                       "nabla train --plot", "nabla train --save-best"};
    if (u->lead && nb_train_check_outputs(c->save, c->metrics, c->plot, c->resume, c->data) != 0)
        return 1;
    if (u->lead && paths[3] &&
        (nb_output_check(paths[3], who[3]) != NB_OK ||
         (c->resume && nb_output_same_file(paths[3], c->resume) &&
          nb_error(NB_ERR_ARG, "%s '%s' is the --resume checkpoint", who[3], paths[3])))) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    for (int i = 0; i < 4 && u->lead; i++)
        if (paths[i] && nb_output_lock_take(&locks[i], paths[i], who[i]) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
    return 0;
}

static void print_header(const train_cfg *c, FILE *txt, const train_data *d, int64_t n_params,
                         const nb_optim_config *oc, int world)
{
    fprintf(txt,
            "nabla train: %s, %lld train / %lld validation / %lld test %s, MLP %s (%lld "
            "parameters), %s lr %g, %s schedule, batch %lld%s, smoothing %g%s, %lld thread%s%s\n",
            d->spec, (long long)d->tr.X->shape[0], d->va.X ? (long long)d->va.X->shape[0] : 0LL,
            (long long)d->te.X->shape[0], d->seqY ? "(sequences / tokens / tokens)" : "rows",
            c->hidden, (long long)n_params, nb_optim_kind_name(c->okind), oc->lr,
            c->text[OPT_SCHEDULE], c->batch, c->accum > 1 ? " (accumulated)" : "", c->smoothing,
            c->fused_head ? ", fused head" : "", c->threads, c->threads == 1 ? "" : "s",
            c->resume ? ", resumed" : "");
    if (world > 1)
        fprintf(txt, "data-parallel over %d MPI ranks\n", world);
    for (int64_t k = 0; d->tr.class_names && k < d->tr.n_classes && k < 12; k++)
        fprintf(txt, "%s%lld %s%s", k ? ", " : "classes: ", (long long)k, d->tr.class_names[k],
                k + 1 == d->tr.n_classes ? "\n"
                : k == 11                ? ", ...\n"
                                         : "");
}

/* The trainer's configuration from the command line. */
static nb_train_config train_config(const train_cfg *c, const nb_dist *dist, const train_data *d,
                                    run_ui *u)
{
    nb_train_config tc = nb_train_defaults();
    tc.epochs = c->epochs;
    tc.batch = c->batch;
    tc.accum = c->accum;
    tc.seed = (uint64_t)c->seed;
    tc.optim = train_cfg_optim(c);
    tc.schedule.kind = c->skind;
    tc.schedule.warmup = c->warmup;
    tc.clip_norm = c->clip;
    tc.loss.label_smoothing = c->smoothing;
    tc.fused_head = c->fused_head;
    tc.tokens_per_row = d->T;
    tc.seq_targets = d->seqY;
    tc.detect_anomaly = c->anomaly;
    tc.rank = dist->rank;
    tc.world_size = dist->size;
    tc.allreduce_sum = dist_allreduce;
    tc.allreduce_ctx = (void *)dist;
    tc.val = d->va.X ? &d->va : NULL;
    tc.patience = c->patience;
    tc.checkpoint = dist->rank == 0 ? c->save : NULL;
    tc.save_every_steps = c->save ? c->save_every : 0;
    tc.best_checkpoint = dist->rank == 0 && c->save_best ? u->best : NULL;
    tc.resume_any_config = c->changed;
    tc.on_step = on_step;
    tc.on_epoch = on_epoch;
    tc.user = u;
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

/* The data spec a checkpoint records: a file's absolute path, else the spec ("auto" resolved). */
static const char *recorded_spec(const train_cfg *c, const train_data *d)
{
    return c->data_canon && nb_cli_data_is_file(d->spec) ? c->data_canon : d->spec;
}

/* The metadata of the run's checkpoints: the data (spec, split, checksum) and every recorded
 * option as "train.NAME" = its text. keys holds the names; pairs ends with NULL. */
static void run_meta(const train_cfg *c, const train_data *d, char num[4][32],
                     char keys[OPT_N_RECORDED][48],
                     const char *pairs[2 * (NB_CLI_DATA_KEYS + OPT_N_RECORDED) + 1])
{
    nb_cli_data_meta(recorded_spec(c, d), &d->id, num, pairs);
    int n = 2 * NB_CLI_DATA_KEYS;
    for (int i = 0; i < OPT_N_RECORDED; i++) {
        const char *v = i == OPT_DATA ? recorded_spec(c, d) : c->text[i];
        if (!v)
            continue;
        snprintf(keys[i], 48, "train.%s", train_opt_name(i));
        pairs[n++] = keys[i];
        pairs[n++] = v;
    }
    pairs[n] = NULL;
}

/* The first line of --metrics: the run's options and the versions that ran it (malloc'd). */
static char *config_record(const train_cfg *c, const train_data *d, int world)
{
    size_t cap = 1024;
    for (int i = 0; i < OPT_N_RECORDED; i++)
        cap += 64 + 6 * strlen(i == OPT_DATA ? recorded_spec(c, d) : c->text[i] ? c->text[i] : "");
    char *buf = malloc(cap), *val = malloc(cap);
    size_t n = 0;
    if (!buf || !val) {
        free(buf);
        free(val);
        fprintf(stderr, "nabla train: out of memory for the metrics header\n");
        return NULL;
    }
    n += (size_t)snprintf(buf + n, cap - n, "{\"config\": {");
    for (int i = 0, first = 1; i < OPT_N_RECORDED; i++) {
        const char *v = i == OPT_DATA ? recorded_spec(c, d) : c->text[i];
        if (!v)
            continue;
        train_json_string(val, cap, v);
        n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\": %s", first ? "" : ", ",
                              train_opt_name(i), val);
        first = 0;
    }
    train_json_string(val, cap, nb_blas_core_name());
    snprintf(buf + n, cap - n,
             "}, \"nabla\": \"%s\", \"openblas_core\": %s, \"threads\": %lld, \"world_size\": "
             "%d}\n",
             NABLA_VERSION, val, c->threads, world);
    free(val);
    return buf;
}

/* The test set, once, at the end: the last model, and the best validation model when kept. */
static int report_test(run_ui *u, nb_mlp *m, const nb_dataset *te, const nb_train_result *r)
{
    double loss[2] = {0, 0}, acc[2] = {0, 0};
    int64_t correct, NT = te->X->shape[0];
    bool best = u->best[0] && r->best_epoch > 0;
    for (int k = 0; k < 1 + best; k++) {
        nb_model_info info;
        memset(&info, 0, sizeof info);
        nb_mlp *bm = k ? nb_model_load(u->best, &info, NULL) : m;
        if (!bm && k && access(u->best, F_OK) != 0) { /* kept by an earlier run elsewhere */
            fprintf(stderr,
                    "nabla train: the best validation model (epoch %lld) is not at %s: it was "
                    "written before this run, beside the checkpoint it saved to; no test figures "
                    "for it\n",
                    (long long)r->best_epoch, u->best);
            best = false;
            break;
        }
        if (!bm || nb_cli_evaluate(u->g, bm, te, &loss[k], &correct, NULL) != NB_OK) {
            fprintf(stderr, "nabla train: test set: %s\n", nb_last_error());
            if (k)
                nb_mlp_free(bm);
            nb_model_info_free(&info);
            return 1;
        }
        if (k)
            nb_mlp_free(bm);
        nb_model_info_free(&info); /* the best model's standardisation and class names */
        loss[k] /= (double)NT;
        acc[k] = (double)correct / (double)NT;
    }
    if (!u->quiet) {
        if (r->early_stopped)
            fprintf(u->txt, "early stop: no better validation loss for %lld epochs\n",
                    (long long)u->c->patience);
        fprintf(u->txt, "test  loss %.4f acc %.4f  (%lld rows, the model of epoch %lld)\n", loss[0],
                acc[0], (long long)NT, (long long)r->epochs_done);
        if (best)
            fprintf(u->txt,
                    "test  loss %.4f acc %.4f  (the best validation model, epoch %lld: %s)\n",
                    loss[1], acc[1], (long long)r->best_epoch, u->best);
    }
    if (!u->metrics_on)
        return 0;
    char line[512], v[4][64], bs[200] = "";
    if (best)
        snprintf(bs, sizeof bs, ", \"best_test_loss\": %s, \"best_test_acc\": %s",
                 nb_json_number(v[2], 64, "%.6f", loss[1]),
                 nb_json_number(v[3], 64, "%.6f", acc[1]));
    snprintf(line, sizeof line,
             "{\"end\": true, \"epochs_done\": %lld, \"best_epoch\": %lld, \"early_stopped\": %s, "
             "\"test_loss\": %s, \"test_acc\": %s%s}\n",
             (long long)r->epochs_done, (long long)r->best_epoch,
             r->early_stopped ? "true" : "false", nb_json_number(v[0], 64, "%.6f", loss[0]),
             nb_json_number(v[1], 64, "%.6f", acc[0]), bs);
    return nb_train_metrics_line(&u->mo, line);
}

/* After the run: the interruption report, or the test set, the metrics' end and the plot. */
static int finish_run(run_ui *u, nb_trainer *t, nb_mlp *m, const train_data *d,
                      const nb_train_result *res)
{
    const train_cfg *c = u->c;
    int64_t ck_epoch, ck_step;
    nb_trainer_last_checkpoint(t, &ck_epoch, &ck_step);
    if (res->stopped && !res->early_stopped && nb_train_stop_signal) {
        if (u->lead)
            nb_train_report_interrupted(c->argc, c->argv, c->save, nb_train_stop_signal,
                                        nb_trainer_epoch(t), (long long)res->steps,
                                        ck_step >= 0 ? c->save : c->resume,
                                        ck_step >= 0 ? ck_epoch : 0, ck_step);
        return 128 + nb_train_stop_signal;
    }
    int rc = u->lead ? report_test(u, m, &d->te, res) : 0;
    if (rc == 0 && u->metrics_on) {
        u->metrics_on = false;
        rc = nb_train_metrics_close(&u->mo, true);
    }
    if (rc == 0 && u->lead && ck_step >= 0 && !u->quiet)
        fprintf(u->txt, "saved %s\n", c->save);
    if (rc == 0 && u->lead && c->plot) {
        rc = nb_cli_plot_metrics(c->metrics, c->plot);
        if (rc == 0 && !u->quiet)
            fprintf(u->txt, "plotted %s\n", c->plot);
    }
    return rc;
}

/* The trainer over the loaded data: the model, resume, the run and what follows it. Returns
 * the exit status. */
static int run_trainer(const train_cfg *c, const nb_dist *dist, run_ui *u, const train_data *d,
                       const int64_t *sizes, int n_sizes)
{
    nb_mlp *m = nb_mlp_new(sizes, n_sizes, c->act, c->init, c->dropout, NB_F32, (uint64_t)c->seed);
    nb_train_config tc = train_config(c, dist, d, u);
    char *config = train_cfg_string(c), *head = NULL;
    char num[4][32], keys[OPT_N_RECORDED][48];
    const char *meta[2 * (NB_CLI_DATA_KEYS + OPT_N_RECORDED) + 1];
    run_meta(c, d, num, keys, meta);
    tc.info.n_classes = sizes[n_sizes - 1];
    snprintf(tc.info.dataset, sizeof tc.info.dataset, "%s", recorded_spec(c, d));
    tc.run_config = config;
    tc.checkpoint_meta = meta;
    int rc = 1;
    nb_train_model md = nb_train_model_mlp(m);
    nb_trainer *t = m && config ? nb_trainer_new(&md, &d->tr, &tc) : NULL;
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
        char run_key[128];
        snprintf(run_key, sizeof run_key, "\"run-id\": \"%s\"", c->run_id);
        if (!(head = config_record(c, d, dist->size)) ||
            nb_train_metrics_open(&u->mo, c->metrics, c->resume ? nb_trainer_epoch(t) : 1, head,
                                  run_key))
            goto out;
        u->metrics_on = true;
    }
    if (!u->quiet)
        print_header(c, u->txt, d, nb_mlp_numel(m), &tc.optim, dist->size);
    nb_train_result res;
    if ((rc = report_failure(nb_trainer_run(t, &res), u)) == 0)
        rc = finish_run(u, t, m, d, &res);
out:
    if (u->metrics_on) /* interrupted: keep the finished epochs */
        nb_train_metrics_close(&u->mo, rc == 0 || rc > 128);
    u->metrics_on = false;
    nb_trainer_free(t);
    nb_mlp_free(m);
    free(config);
    free(head);
    return rc;
}

/* --resume: the data file must be the one the run split (same rows, same checksum), else its
 * splits would differ silently. 0, or 1 after a message. */
static int check_resumed_data(const train_cfg *c, const train_data *d)
{
    char *spec = NULL;
    nb_cli_data_id then;
    int r = nb_cli_read_data_id("train", c->resume, &spec, &then);
    free(spec);
    if (r < 0)
        return 1;
    if (r > 0 || (then.rows == d->id.rows && then.checksum == d->id.checksum))
        return 0; /* recorded nothing (an older nabla), or the same data */
    fprintf(stderr,
            "nabla train: --resume %s: %s has changed since the checkpoint was written (now %lld "
            "rows, checksum %016llx; then %lld rows, checksum %016llx), so the run's splits "
            "cannot be rebuilt; restore the file or start a new run\n",
            c->resume, d->spec, (long long)d->id.rows, (unsigned long long)d->id.checksum,
            (long long)then.rows, (unsigned long long)then.checksum);
    return 1;
}

static int train_run(train_cfg *c)
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
    nb_output_lock locks[4] = {{-1, NULL}, {-1, NULL}, {-1, NULL}, {-1, NULL}};
    struct sigaction old_sig[2];
    train_data d;
    memset(&d, 0, sizeof d);
    int rc = take_outputs(c, &u, locks, &tmp_metrics);
    if (rc == 0) {
        /* what prints for people: stderr when standard output carries --metrics or --plot */
        bool out_std =
            (c->metrics && !strcmp(c->metrics, "-")) || (c->plot && !strcmp(c->plot, "-"));
        u.txt = out_std ? stderr : stdout;
        u.tty = !u.quiet && isatty(fileno(stderr));
        /* SIGINT/SIGTERM from here on stop the run at a step boundary */
        nb_train_signals_install(old_sig);
        nb_set_num_threads((int)c->threads);
        rc = train_data_load(c, u.quiet, &d);
        if (rc == 0 && c->resume)
            rc = check_resumed_data(c, &d);
        if (rc == 0) {
            sizes[0] = d.seqY ? d.F : d.tr.X->shape[1];
            int64_t K = d.tr.n_classes > d.te.n_classes ? d.tr.n_classes : d.te.n_classes;
            sizes[nh + 1] = d.seqY ? d.V : K;
            if (!(u.g = nb_graph_new())) {
                fprintf(stderr, "nabla train: %s\n", nb_last_error());
                rc = 1;
            } else
                rc = run_trainer(c, &dist, &u, &d, sizes, nh + 2);
        }
        nb_train_signals_restore(old_sig);
    }
    for (int i = 0; i < 4; i++)
        nb_output_lock_release(&locks[i]);
    free(tmp_metrics);
    nb_graph_free(u.g);
    train_data_free(&d);
    nb_dist_finalize(&dist);
    return rc;
}

int nb_cmd_train(int argc, char **argv)
{
    train_cfg c;
    int rc = train_cfg_parse(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if ((c.patience > 0 || c.save_best) && c.val <= 0 && !c.resume) {
        fprintf(stderr, "nabla train: --patience and --save-best choose by the validation set; "
                        "--val-frac must be > 0\n");
        return 2;
    }
    if (c.resume) {
        if (train_cfg_resume(&c, c.resume, false) != 0) {
            train_cfg_free(&c);
            return 1;
        }
        if (!c.save) /* the run continues in its checkpoint */
            c.save = c.resume;
    }
    /* a data file is recorded by its absolute path (it is read as typed): a run resumes, and is
     * evaluated, from any directory */
    if ((c.data_canon = malloc(NB_MODEL_DATASET_MAX)) &&
        !nb_cli_canonical_spec(c.data, c.data_canon, NB_MODEL_DATASET_MAX)) {
        free(c.data_canon);
        c.data_canon = NULL;
    }
    rc = train_run(&c);
    train_cfg_free(&c);
    return rc;
}
