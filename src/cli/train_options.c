/* train_options.c - the options of `nabla train` (see train_options.h). */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "train_options.h"

/* name, whether it takes a value, its default text (NULL: none) */
static const struct {
    const char *name;
    bool value;
    const char *dflt;
} opts[OPT_COUNT] = {
    [OPT_RUN_ID] = {"run-id", true, NULL}, /* made up per run (train_cfg_parse) */
    [OPT_DATA] = {"data", true, "auto"},
    [OPT_DATA_DIR] = {"data-dir", true, NULL},
    [OPT_HEADER] = {"header", true, "auto"},
    [OPT_LABEL_COL] = {"label-col", true, "last"},
    [OPT_SKIP_ROWS] = {"skip-rows", true, "0"},
    [OPT_VAL_FRAC] = {"val-frac", true, "0.1"},
    [OPT_TEST_FRAC] = {"test-frac", true, "0.1"},
    [OPT_STANDARDIZE] = {"standardize", false, "no"},
    [OPT_CLASS_NAMES] = {"class-names", true, NULL},
    [OPT_HIDDEN] = {"hidden", true, "256,128"},
    [OPT_ACTIVATION] = {"activation", true, "relu"},
    [OPT_INIT] = {"init", true, "default"},
    [OPT_DROPOUT] = {"dropout", true, "0"},
    [OPT_EPOCHS] = {"epochs", true, "10"},
    [OPT_BATCH] = {"batch", true, "128"},
    [OPT_ACCUM] = {"accum", true, "1"},
    [OPT_OPTIM] = {"optim", true, "adamw"},
    [OPT_LR] = {"lr", true, "default"},
    [OPT_WD] = {"weight-decay", true, "default"},
    [OPT_MOMENTUM] = {"momentum", true, "default"},
    [OPT_NESTEROV] = {"nesterov", false, "no"},
    [OPT_SCHEDULE] = {"schedule", true, "cosine"},
    [OPT_WARMUP] = {"warmup", true, "200"},
    [OPT_SMOOTHING] = {"label-smoothing", true, "0.1"},
    [OPT_CLIP] = {"clip-norm", true, "0"},
    [OPT_FUSED_HEAD] = {"fused-head", false, "no"},
    [OPT_SEED] = {"seed", true, "1"},
    [OPT_THREADS] = {"threads", true, NULL}, /* 2, or 1 on a one-core machine */
    [OPT_PATIENCE] = {"patience", true, "0"},
    [OPT_SAVE_EVERY] = {"save-every", true, "0"},
    [OPT_SAVE_BEST] = {"save-best", false, "no"},
    [OPT_ANOMALY] = {"detect-anomaly", false, "no"},
    [OPT_SAVE] = {"save", true, NULL},
    [OPT_RESUME] = {"resume", true, NULL},
    [OPT_METRICS] = {"metrics", true, NULL},
    [OPT_PLOT] = {"plot", true, NULL},
    [OPT_QUIET] = {"quiet", false, "no"},
};

const char *train_opt_name(int i)
{
    return i >= 0 && i < OPT_COUNT ? opts[i].name : "?";
}

void train_usage(FILE *f)
{
    fprintf(
        f,
        "usage: nabla train [options]\n"
        "  --data SPEC          fashion-mnist | mnist | spirals | seq-toy | FILE.csv | csv:FILE |\n"
        "                       X.npy,y.npy | images:DIR (one subfolder of PNG/PGM per class)\n"
        "                       (default: Fashion-MNIST, or spirals when it is not installed)\n"
        "  --data-dir DIR       where the IDX files are (default %s)\n"
        "  --val-frac F         validation rows carved (seeded) from the training data of every\n"
        "                       data set, scored after each epoch (default 0.1)\n"
        "  --test-frac F        test rows held out of a FILE.csv / .npy data set (default 0.1;\n"
        "                       built-in sets have their own test set), scored at the end only\n"
        "  --standardize        per-feature mean/std of the training rows, applied to every\n"
        "                       split, stored in the checkpoint (eval and predict apply it)\n"
        "  --class-names FILE   one class name per line (class 0 first), shown by train, eval and\n"
        "                       predict and stored in the checkpoint (built in for\n"
        "                       Fashion-MNIST and MNIST)\n"
        "  --label-col N|NAME   the label column of a CSV: 0-based index, last (default) or its\n"
        "                       header name\n"
        "  --skip-rows N        lines at the start of a CSV ignored unread (default 0)\n"
        "  --header yes|no|auto whether line 1 of a CSV is a header (default auto: only when\n"
        "                       none of its fields is a number)\n",
        nb_cli_default_data_dir());
    fputs(
        "  --hidden 256,128     hidden layer sizes (default 256,128)\n"
        "  --activation A       relu | tanh | gelu | sigmoid | leaky_relu (default relu)\n"
        "  --init I             default (PyTorch) | xavier | he\n"
        "  --dropout P          dropout after each hidden layer (default 0)\n"
        "  --epochs E           (default 10; with --resume, a larger E extends a finished run)\n"
        "  --batch B            (default 128)\n"
        "  --accum K            split each batch into K micro-batches (gradient\n"
        "                       accumulation; same gradient as the whole batch)\n"
        "  --optim O            adam | adamw | sgd (default adamw)\n"
        "  --lr LR              peak learning rate (default 2e-3, 0.05 for sgd)\n"
        "  --weight-decay W     (default 1e-4 for adamw, 0 otherwise)\n"
        "  --momentum M         SGD momentum (default 0.9 for sgd)\n"
        "  --nesterov           SGD Nesterov momentum\n"
        "  --schedule S         after the linear warm-up: constant; step (lr halves every 3\n"
        "                       epochs: lr 0.5^floor((t - warmup) / (3 epochs of steps)));\n"
        "                       cosine (default: lr (1 + cos(pi p)) / 2, p the share of the\n"
        "                       steps after warm-up done)\n"
        "  --warmup STEPS       linear warm-up steps (default 200)\n"
        "  --label-smoothing A  (default 0.1)\n"
        "  --clip-norm C        clip the global gradient norm to C (default 0: off)\n"
        "  --fused-head         the last layer and the loss as one fused op that never forms\n"
        "                       the logits (nb_linear_cross_entropy); same training up to f32\n"
        "                       rounding, same checkpoints; the training accuracy costs one\n"
        "                       more product of the last layer. May be added on --resume\n"
        "                       (with a notice: the run is then no longer bit-exact)\n"
        "  --seed S             (default 1)\n"
        "  --threads T          threads for matrix products and the loss (default 2, or 1 on a\n"
        "                       one-core machine; bitwise reproducible per thread count)\n"
        "  --patience N         stop after N epochs without a better validation loss (0: off)\n"
        "  --save MODEL.safetensors   checkpoint after every epoch (atomic); with --resume,\n"
        "                       the default is the resumed checkpoint\n"
        "  --save-every N       also checkpoint every N optimiser steps (with --save)\n"
        "  --save-best          keep the model of the best validation loss beside --save\n"
        "                       MODEL.EXT, as MODEL.best.EXT\n"
        "  --metrics FILE.jsonl the run's configuration, then one JSON object per epoch, then\n"
        "                       the test figures; a resumed run continues the file only if it\n"
        "                       holds this run's (same run-id)\n"
        "  --run-id ID          names the run in checkpoints and metrics (default: made up)\n"
        "  --plot FILE.png      loss and accuracy curves (needs --metrics or writes its own)\n"
        "  --resume CKPT        continue a run from its checkpoint, bit for bit: its options are\n"
        "                       recorded in it; options given again override them (with a notice)\n"
        "  --detect-anomaly     stop at the first op that makes a NaN/inf, naming it\n"
        "  --quiet              no per-epoch output\n"
        "The test set is scored once, at the end; choices (patience, best model) use validation.\n"
        "Under mpirun -np P, each rank takes 1/P of every global batch (data parallel).\n",
        f);
}

static bool parse_ll(const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static bool parse_dbl(const char *v, double lo, double hi, bool lo_open, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
        return false;
    *out = x;
    return true;
}

/* "default" (the optimiser's own value, -1 here) or a number in [lo, hi] */
static bool parse_opt_dbl(const char *v, double lo, double hi, bool lo_open, double *out)
{
    if (!strcmp(v, "default")) {
        *out = -1;
        return true;
    }
    return parse_dbl(v, lo, hi, lo_open, out);
}

static bool parse_flag(const char *v, bool *out)
{
    if (strcmp(v, "yes") && strcmp(v, "no"))
        return false;
    *out = v[0] == 'y';
    return true;
}

/* Sets option i from its text v. False when v is not a value of the option. */
static bool set_opt(train_cfg *c, int i, const char *v)
{
    switch (i) {
    case OPT_RUN_ID:
        c->run_id = v;
        return *v && strlen(v) <= 64 &&
               strspn(v, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") ==
                   strlen(v);
    case OPT_DATA: c->data = v; return strlen(v) < NB_MODEL_DATASET_MAX && *v;
    case OPT_DATA_DIR: c->dir = v; return *v != '\0';
    case OPT_HEADER: return nb_cli_csv_header_option("train", v);
    case OPT_LABEL_COL: return nb_cli_csv_label_option("train", v);
    case OPT_SKIP_ROWS: return nb_cli_csv_skip_rows_option("train", v);
    case OPT_VAL_FRAC: return parse_dbl(v, 0, 0.9, false, &c->val);
    case OPT_TEST_FRAC: return parse_dbl(v, 0, 0.9, true, &c->test);
    case OPT_STANDARDIZE: return parse_flag(v, &c->standardize);
    case OPT_CLASS_NAMES: c->class_names = v; return *v != '\0';
    case OPT_HIDDEN: c->hidden = v; return true; /* checked when the model is built */
    case OPT_ACTIVATION: return nb_activation_parse(v, &c->act);
    case OPT_INIT: return nb_init_parse(v, &c->init);
    case OPT_DROPOUT: return parse_dbl(v, 0, 0.99, false, &c->dropout);
    case OPT_EPOCHS: return parse_ll(v, 1, 100000, &c->epochs);
    case OPT_BATCH: return parse_ll(v, 1, 1000000, &c->batch);
    case OPT_ACCUM: return parse_ll(v, 1, 4096, &c->accum);
    case OPT_OPTIM: return nb_optim_kind_parse(v, &c->okind);
    case OPT_LR: return parse_opt_dbl(v, 0, DBL_MAX, true, &c->lr);
    case OPT_WD: return parse_opt_dbl(v, 0, DBL_MAX, false, &c->wd);
    case OPT_MOMENTUM: return parse_opt_dbl(v, 0, 0.999999, false, &c->momentum);
    case OPT_NESTEROV: return parse_flag(v, &c->nesterov);
    case OPT_SCHEDULE: return nb_sched_kind_parse(v, &c->skind);
    case OPT_WARMUP: return parse_ll(v, 0, 1000000000, &c->warmup);
    case OPT_SMOOTHING: return parse_dbl(v, 0, 0.999999, false, &c->smoothing);
    case OPT_CLIP: return parse_dbl(v, 0, DBL_MAX, false, &c->clip);
    case OPT_FUSED_HEAD: return parse_flag(v, &c->fused_head);
    case OPT_SEED: return parse_ll(v, 0, (1LL << 62), &c->seed);
    case OPT_THREADS: return parse_ll(v, 1, 256, &c->threads);
    case OPT_PATIENCE: return parse_ll(v, 0, 100000, &c->patience);
    case OPT_SAVE_EVERY: return parse_ll(v, 0, 1000000000, &c->save_every);
    case OPT_SAVE_BEST: return parse_flag(v, &c->save_best);
    case OPT_ANOMALY: return parse_flag(v, &c->anomaly);
    case OPT_SAVE: c->save = v; return *v != '\0';
    case OPT_RESUME: c->resume = v; return *v != '\0';
    case OPT_METRICS: c->metrics = v; return *v != '\0';
    case OPT_PLOT: c->plot = v; return *v != '\0';
    case OPT_QUIET: return parse_flag(v, &c->quiet);
    default: return false;
    }
}

/* The option named exactly k ("--name"), or -1 after a message with the nearest names. */
static int find_opt(const char *k)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (!strncmp(k, "--", 2) && !strcmp(k + 2, opts[i].name))
            return i;
    nb_cli_unknown_option("train", k, train_usage);
    return -1;
}

int train_cfg_parse(train_cfg *c, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    static char threads[8], run_id[24];
    snprintf(threads, sizeof threads, "%d", sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t h =
        ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    snprintf(run_id, sizeof run_id, "%016llx", (unsigned long long)(h ^ (h >> 29)));
    for (int i = 0; i < OPT_COUNT; i++) {
        c->text[i] = i == OPT_THREADS ? threads : i == OPT_RUN_ID ? run_id : opts[i].dflt;
        if (c->text[i] && !set_opt(c, i, c->text[i]))
            return 2; /* a default that does not parse: a bug, told by the test suite */
    }
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            train_usage(stdout);
            return 0;
        }
        int o = find_opt(k);
        if (o < 0)
            return 2;
        if (opts[o].value && i + 1 >= argc) {
            fprintf(stderr, "nabla train: %s needs a value (see nabla train --help)\n", k);
            return 2;
        }
        const char *v = opts[o].value ? argv[++i] : "yes";
        if (!set_opt(c, o, v)) {
            fprintf(stderr, "nabla train: bad value for %s: '%s' (see nabla train --help)\n", k, v);
            return 2;
        }
        c->text[o] = v;
        c->given[o] = true;
    }
    c->argc = argc;
    c->argv = argv;
    return -1;
}

/* What a resumed run may not change: a new split would put test rows into training, and the
 * weights, optimiser state and batch position only fit the run's model, optimiser and batch. */
static bool fixed_on_resume(int i)
{
    return i == OPT_DATA || i == OPT_HEADER || i == OPT_LABEL_COL || i == OPT_SKIP_ROWS ||
           i == OPT_VAL_FRAC || i == OPT_TEST_FRAC || i == OPT_STANDARDIZE || i == OPT_HIDDEN ||
           i == OPT_ACTIVATION || i == OPT_INIT || i == OPT_SEED || i == OPT_BATCH ||
           i == OPT_OPTIM;
}

int train_cfg_resume(train_cfg *c, const char *path, bool quiet)
{
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) {
        fprintf(stderr, "nabla train: --resume: %s\n", nb_last_error());
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < OPT_N_RECORDED && rc == 0; i++) {
        char key[48];
        snprintf(key, sizeof key, "train.%s", opts[i].name);
        const char *rec = nb_safetensors_meta(st, key);
        if (!rec)
            continue;
        if (c->given[i]) {
            char canon[NB_MODEL_DATASET_MAX]; /* a data file in another spelling is the same */
            if (i == OPT_DATA && nb_cli_canonical_spec(c->text[i], canon, sizeof canon) &&
                !strcmp(canon, rec))
                continue;
            if (strcmp(rec, c->text[i]) && fixed_on_resume(i)) {
                fprintf(stderr,
                        "nabla train: --resume %s: --%s %s differs from the checkpoint's %s; the "
                        "data, its split, the model and the batch order are fixed for a run "
                        "(start a new run to change them)\n",
                        path, opts[i].name, c->text[i], rec);
                rc = 1;
            } else if (strcmp(rec, c->text[i])) {
                c->changed = true;
                if (!quiet)
                    fprintf(stderr, "nabla train: --%s %s overrides the checkpoint's %s\n",
                            opts[i].name, c->text[i], rec);
            }
            continue;
        }
        if (!(c->owned[i] = strdup(rec))) {
            fprintf(stderr, "nabla train: out of memory\n");
            rc = 1;
        } else if (i == OPT_CLASS_NAMES) {
            c->text[i] = c->owned[i]; /* recorded again; the names come from the checkpoint */
        } else if (!set_opt(c, i, c->owned[i])) {
            fprintf(stderr,
                    "nabla train: --resume %s: metadata '%s' is '%.200s'; not a value of --%s\n",
                    path, key, rec, opts[i].name);
            rc = 1;
        } else
            c->text[i] = c->owned[i];
    }
    nb_safetensors_free(st);
    return rc;
}

void train_cfg_free(train_cfg *c)
{
    for (int i = 0; i < OPT_COUNT; i++)
        free(c->owned[i]);
    memset(c->owned, 0, sizeof c->owned);
    free(c->data_canon);
    c->data_canon = NULL;
}

nb_optim_config train_cfg_optim(const train_cfg *c)
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

char *train_cfg_string(const train_cfg *c)
{
    nb_optim_config oc = train_cfg_optim(c);
#define NB_CONFIG_ARGS                                                                             \
    "data=%s hidden=%s act=%s init=%d optim=%s lr=%.17g wd=%.17g momentum=%.17g "                  \
    "nesterov=%d schedule=%d warmup=%lld epochs=%lld batch=%lld accum=%lld "                       \
    "smoothing=%.17g clip=%.17g dropout=%.17g seed=%lld val=%.17g test=%.17g threads=%lld%s",      \
        c->data_canon ? c->data_canon : c->data, c->hidden, nb_activation_name(c->act),            \
        (int)c->init, nb_optim_kind_name(c->okind), oc.lr, oc.weight_decay, oc.momentum,           \
        oc.nesterov, (int)c->skind, c->warmup, c->epochs, c->batch, c->accum, c->smoothing,        \
        c->clip, c->dropout, c->seed, c->val, c->test, c->threads,                                 \
        c->fused_head ? " fused-head=1" : "" /* only when on: older checkpoints still match */
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

void train_json_string(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3) {
        if (cap)
            out[0] = '\0';
        return;
    }
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 8 < cap; p++) {
        if (*p == '"' || *p == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\%c", *p);
        else if (*p < 0x20)
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
        else
            out[n++] = (char)*p;
    }
    out[n++] = '"';
    out[n] = '\0';
}
