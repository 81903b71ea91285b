/* train_options.h - the options of `nabla train`: parsed from the command line, recorded whole
 * in every checkpoint (metadata "train.NAME"), and read back by --resume so that a run continues
 * with nothing retyped (an option given again overrides the recorded one, with a notice). */
#ifndef NABLA_TRAIN_OPTIONS_H
#define NABLA_TRAIN_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "nabla.h"

/* The options, in --help order. Those before OPT_N_RECORDED describe the run and are recorded;
 * the rest name its files and its console. */
enum {
    OPT_RUN_ID,
    OPT_DATA,
    OPT_DATA_DIR,
    OPT_HEADER,
    OPT_LABEL_COL,
    OPT_SKIP_ROWS,
    OPT_VAL_FRAC,
    OPT_TEST_FRAC,
    OPT_STANDARDIZE,
    OPT_CLASS_NAMES,
    OPT_HIDDEN,
    OPT_ACTIVATION,
    OPT_INIT,
    OPT_DROPOUT,
    OPT_EPOCHS,
    OPT_BATCH,
    OPT_ACCUM,
    OPT_OPTIM,
    OPT_LR,
    OPT_WD,
    OPT_MOMENTUM,
    OPT_NESTEROV,
    OPT_SCHEDULE,
    OPT_WARMUP,
    OPT_SMOOTHING,
    OPT_CLIP,
    OPT_FUSED_HEAD,
    OPT_SEED,
    OPT_THREADS,
    OPT_PATIENCE,
    OPT_SAVE_EVERY,
    OPT_SAVE_BEST,
    OPT_ANOMALY,
    OPT_METRICS,
    OPT_PLOT,
    OPT_N_RECORDED,
    OPT_SAVE = OPT_N_RECORDED,
    OPT_RESUME,
    OPT_QUIET,
    OPT_COUNT
};

typedef struct train_cfg {
    /* each option as text (a default, an argv word or a recorded value), and whether given */
    const char *text[OPT_COUNT];
    bool given[OPT_COUNT];
    char *owned[OPT_COUNT]; /* recorded values read by --resume (freed by train_cfg_free) */
    /* what the texts mean */
    const char *run_id, *data, *dir, *class_names, *save, *metrics, *plot, *hidden, *resume;
    nb_activation act;
    nb_init init;
    nb_optim_kind okind;
    nb_sched_kind skind;
    long long epochs, batch, warmup, seed, threads, save_every, accum, patience;
    double lr, wd, momentum, smoothing, clip, dropout, val, test;
    bool nesterov, quiet, anomaly, save_best, standardize, fused_head;
    char *data_canon; /* NULL, or a file spec's absolute form (recorded; freed by train_cfg_free) */
    bool changed;     /* --resume: an option differs from the checkpoint's */
    int argc;         /* the command line, for the resume hint after an interruption */
    char **argv;
} train_cfg;

/* The option's name without "--", e.g. "lr". */
const char *train_opt_name(int i);
void train_usage(FILE *f);
/* Parses argv (argv[0] is "train"). Returns -1 to go on, else the exit status (0 after --help,
 * 2 after a message on bad usage). */
int train_cfg_parse(train_cfg *c, int argc, char **argv);
/* --resume: the recorded options of the checkpoint for every option not given, a notice on
 * stderr for each given one that differs (unless quiet; `nabla train` always tells). A checkpoint
 * of an older nabla records none: then nothing changes. 0 ok, 1 after a message naming the file,
 * the key and the value. */
int train_cfg_resume(train_cfg *c, const char *path, bool quiet);
void train_cfg_free(train_cfg *c);
/* The optimiser of the options: nabla's defaults per kind, then the values given. */
nb_optim_config train_cfg_optim(const train_cfg *c);
/* The options that must match for a bit-exact resume, as one string (malloc'd; NULL with a
 * message when out of memory). */
char *train_cfg_string(const train_cfg *c);
/* `s` as a JSON string with its quotes into out (cap bytes, truncated safely). */
void train_json_string(char *out, size_t cap, const char *s);

#endif
