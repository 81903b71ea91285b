/* trainer_ckpt.c - the run checkpoint: weights, optimiser and the run's position (epoch, batch
 * order, dropout generator, the epoch's running sums), and the exact resume from it. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

/* the extra metadata pairs of a run checkpoint, before the caller's */
#define RUN_PAIRS 15

static void rng_string(const nb_rng *r, char *buf, size_t len)
{
    snprintf(buf, len, "%016llx,%016llx,%016llx,%016llx", (unsigned long long)r->s[0],
             (unsigned long long)r->s[1], (unsigned long long)r->s[2], (unsigned long long)r->s[3]);
}

nb_status nb_trainer_save_(nb_trainer *t, const char *path)
{
    if (!t->model.mlp)
        return nb_error(NB_ERR_ARG,
                        "nb_trainer: checkpoint %s: only an nb_mlp model can be "
                        "checkpointed by the trainer",
                        path);
    nb_rng zero = {{0, 0, 0, 0}, false, 0.0};
    char v[14][128];
    snprintf(v[0], 128, "%lld", (long long)t->epoch);
    snprintf(v[1], 128, "%lld", (long long)t->bt.epoch);
    snprintf(v[2], 128, "%lld", (long long)t->bt.pos);
    rng_string(&t->bt.rng, v[3], 128);
    rng_string(t->model.rng ? t->model.rng : &zero, v[4], 128);
    snprintf(v[5], 128, "%.17g", t->loss_sum);
    snprintf(v[6], 128, "%.17g", t->weight_sum);
    snprintf(v[7], 128, "%.17g", t->correct);
    /* the validation history, so that patience and the best model go on as if uninterrupted */
    snprintf(v[8], 128, "%.17g", t->best_epoch ? t->best_val : 0.0);
    snprintf(v[9], 128, "%.17g", t->best_epoch ? t->best_acc : 0.0);
    snprintf(v[10], 128, "%lld", (long long)t->best_epoch);
    snprintf(v[11], 128, "%lld", (long long)t->bad_epochs);
    /* the epoch's gradient norms so far, so that its mean is the uninterrupted run's */
    snprintf(v[12], 128, "%.17g", t->gnorm_sum);
    snprintf(v[13], 128, "%lld", (long long)t->gnorm_n);
    const char *all[2 * NB_CHECKPOINT_MAX_EXTRA + 1] = {
        "run_epoch",           v[0],
        "run_batcher_epoch",   v[1],
        "run_batcher_pos",     v[2],
        "run_batcher_rng",     v[3],
        "run_dropout_rng",     v[4],
        "run_loss_sum",        v[5],
        "run_weight_sum",      v[6],
        "run_correct",         v[7],
        "run_config",          t->c.run_config ? t->c.run_config : "",
        "run_best_val_loss",   v[8],
        "run_best_val_acc",    v[9],
        "run_best_epoch",      v[10],
        "run_bad_epochs",      v[11],
        "run_grad_norm_sum",   v[12],
        "run_grad_norm_steps", v[13]};
    int n = 2 * RUN_PAIRS;
    for (const char *const *m = t->c.checkpoint_meta; m && m[0] && m[1]; m += 2) {
        if (n + 2 > 2 * NB_CHECKPOINT_MAX_EXTRA)
            return nb_error(NB_ERR_RANGE, "nb_trainer: checkpoint %s: more than %d metadata pairs",
                            path, NB_CHECKPOINT_MAX_EXTRA - RUN_PAIRS);
        all[n++] = m[0];
        all[n++] = m[1];
    }
    all[n] = NULL;
    nb_model_info info = t->c.info;
    info.input_scale = t->train->input_scale;
    info.input_shift = t->train->input_shift;
    info.input_mean = t->train->mean; /* borrowed: NULL when the data is not standardised */
    info.input_std = t->train->std;
    if (info.n_classes <= 0)
        info.n_classes = t->model.mlp->sizes[t->model.mlp->n_layers];
    /* the training set's names (borrowed, as mean and std) when they name every class */
    if (!info.class_names && t->train->class_names && info.n_classes == t->train->n_classes &&
        info.n_classes <= NB_CKPT_MAX_NAMED_CLASSES)
        info.class_names = t->train->class_names;
    info.epoch = t->epoch - 1;
    nb_status s = nb_model_save_ex(path, t->model.mlp, &info, t->opt, all);
    if (s == NB_OK) {
        /* after an epoch the batcher is at the start of the next one */
        t->ck_epoch = t->bt.pos == 0 ? t->epoch - 1 : t->epoch;
        t->ck_step = nb_optim_step_count(t->opt);
    }
    return s;
}

/* A failed field: the message names the checkpoint first. */
static nb_status field_error(nb_status s, const char *path)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    return nb_error(s, "%s: %s", path, msg);
}

/* An RNG state exactly as rng_string writes it: four fields of 16 lowercase hex digits, not all
 * zero (xoshiro256** never leaves the all-zero state: it would give only zeros). */
static nb_status rng_parse(const nb_safetensors *st, const char *key, const char *path, nb_rng *r)
{
    const char *s = nb_safetensors_meta(st, key);
    bool ok = s && strlen(s) == 4 * 17 - 1;
    for (int i = 0; ok && i < 4 * 17 - 1; i++)
        ok = i % 17 == 16 ? s[i] == ','
                          : (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok)
        return nb_error(NB_ERR_FORMAT,
                        "%s: metadata '%s' is %s%.80s%s; expected four 64-bit states of 16 hex "
                        "digits, like 0123456789abcdef,...",
                        path, key, s ? "'" : "", s ? s : "missing", s ? "'" : "");
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) {
        r->s[i] = strtoull(s + 17 * i, NULL, 16);
        any |= r->s[i];
    }
    if (!any)
        return nb_error(NB_ERR_FORMAT,
                        "%s: metadata '%s' is all zero, which is not a valid xoshiro256** state",
                        path, key);
    r->has_spare = false;
    r->spare = 0.0;
    return NB_OK;
}

/* A count kept in a double (tokens, hits): a finite integer in [0, hi]. */
static nb_status run_count(const nb_safetensors *st, const char *key, double hi, const char *what,
                           const char *path, double *out)
{
    nb_status s = nb_safetensors_meta_number(st, key, 0, hi, out);
    if (s != NB_OK)
        return field_error(s, path);
    if (*out != floor(*out))
        return nb_error(NB_ERR_FORMAT, "%s: metadata '%s' is '%s'; expected an integer (%s)", path,
                        key, nb_safetensors_meta(st, key), what);
    return NB_OK;
}

typedef struct run_pos {
    int64_t epoch, be, bp, best_epoch, bad_epochs, gnorm_n;
    double loss_sum, weight_sum, correct, best_val, best_acc, gnorm_sum;
    nb_rng brng, drng;
} run_pos;

/* The validation history (the best epoch so far, the epochs since it); a
 * checkpoint written before it was recorded has none: the history starts afresh. */
static nb_status read_val_history(const nb_safetensors *st, const char *path, run_pos *r)
{
    r->best_epoch = r->bad_epochs = r->gnorm_n = 0;
    r->best_val = INFINITY;
    r->best_acc = r->gnorm_sum = 0;
    nb_status s;
    if (nb_safetensors_meta(st, "run_grad_norm_steps") &&
        ((s = nb_safetensors_meta_int(st, "run_grad_norm_steps", 0, NB_CHECKPOINT_MAX_COUNT,
                                      &r->gnorm_n)) != NB_OK ||
         (s = nb_safetensors_meta_number(st, "run_grad_norm_sum", 0, DBL_MAX, &r->gnorm_sum)) !=
             NB_OK))
        return field_error(s, path);
    if (!nb_safetensors_meta(st, "run_best_epoch"))
        return NB_OK;
    /* an epoch's own checkpoint is written after its validation, before the epoch count moves */
    if ((s = nb_safetensors_meta_int(st, "run_best_epoch", 0, r->epoch, &r->best_epoch)) != NB_OK ||
        (s = nb_safetensors_meta_int(st, "run_bad_epochs", 0, r->epoch - r->best_epoch,
                                     &r->bad_epochs)) != NB_OK)
        return field_error(s, path);
    if (!r->best_epoch)
        return NB_OK;
    if ((s = nb_safetensors_meta_number(st, "run_best_val_loss", 0, DBL_MAX, &r->best_val)) !=
            NB_OK ||
        (s = nb_safetensors_meta_number(st, "run_best_val_acc", 0, 1, &r->best_acc)) != NB_OK)
        return field_error(s, path);
    return NB_OK;
}

/* The run's position from a checkpoint, every field checked against what this run (epochs,
 * N rows, batch B, T tokens per row) can hold. */
static nb_status read_run_pos(const nb_trainer *t, const nb_safetensors *st, const char *path,
                              run_pos *r)
{
    nb_status s;
    int64_t B = t->c.batch, N = t->N;
    int64_t done;
    if (nb_safetensors_meta_int(st, "run_epoch", 1, NB_CHECKPOINT_MAX_COUNT, &done) == NB_OK &&
        done > t->c.epochs + 1)
        return nb_error(NB_ERR_RANGE,
                        "%s: metadata 'run_epoch' is '%lld': the run has done %lld epochs; a run "
                        "of %lld epochs cannot continue it (give at least %lld)",
                        path, (long long)done, (long long)done - 1, (long long)t->c.epochs,
                        (long long)done - 1);
    if ((s = nb_safetensors_meta_int(st, "run_epoch", 1, t->c.epochs + 1, &r->epoch)) != NB_OK ||
        (s = nb_safetensors_meta_int(st, "run_batcher_epoch", 0, NB_CHECKPOINT_MAX_COUNT,
                                     &r->be)) != NB_OK ||
        (s = nb_safetensors_meta_int(st, "run_batcher_pos", 0, N, &r->bp)) != NB_OK)
        return field_error(s, path);
    /* the batcher starts epoch e (1-based) as its epoch e - 1 */
    if (r->be != r->epoch - 1)
        return nb_error(NB_ERR_FORMAT,
                        "%s: metadata 'run_batcher_epoch' is '%lld'; with run_epoch %lld it must "
                        "be %lld",
                        path, (long long)r->be, (long long)r->epoch, (long long)r->epoch - 1);
    /* checkpoints are made after whole batches */
    if (r->bp % B != 0 && r->bp != N)
        return nb_error(NB_ERR_FORMAT,
                        "%s: metadata 'run_batcher_pos' is '%lld'; expected a multiple of the "
                        "batch %lld or the row count %lld",
                        path, (long long)r->bp, (long long)B, (long long)N);
    if ((s = run_count(st, "run_weight_sum", (double)r->bp * (double)t->T,
                       "tokens of the rows done", path, &r->weight_sum)) != NB_OK ||
        (s = run_count(st, "run_correct", r->weight_sum, "hits among those tokens", path,
                       &r->correct)) != NB_OK)
        return s;
    if ((s = nb_safetensors_meta_number(st, "run_loss_sum", 0, r->weight_sum > 0 ? DBL_MAX : 0,
                                        &r->loss_sum)) != NB_OK)
        return field_error(s, path);
    if ((s = rng_parse(st, "run_batcher_rng", path, &r->brng)) != NB_OK)
        return s;
    if ((s = rng_parse(st, "run_dropout_rng", path, &r->drng)) != NB_OK)
        return s;
    return read_val_history(st, path, r);
}

/* The first option (space-separated field) that differs between a and b, for the message. */
static void first_difference(const char *a, const char *b, char *out, size_t len)
{
    while (*a && *a == *b) {
        const char *ea = strchr(a, ' '), *eb = strchr(b, ' ');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la))
            break;
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
    }
    size_t la = strcspn(a, " "), lb = strcspn(b, " ");
    snprintf(out, len, "'%.*s' there, '%.*s' now", (int)(la > 200 ? 200 : la), a,
             (int)(lb > 200 ? 200 : lb), b);
}

static nb_status check_config_string(const nb_trainer *t, const nb_safetensors *st,
                                     const char *path)
{
    const char *saved = nb_safetensors_meta(st, "run_config");
    const char *now = t->c.run_config ? t->c.run_config : "";
    if (!saved)
        return nb_error(NB_ERR_FORMAT,
                        "%s: not a training checkpoint (no run state; it was not written by a "
                        "trainer with a checkpoint path: a best-model file holds the weights "
                        "only, resume from the run's own checkpoint)",
                        path);
    if (strcmp(saved, now) && !t->c.resume_any_config) {
        char diff[512];
        first_difference(saved, now, diff, sizeof diff);
        return nb_error(NB_ERR_STATE,
                        "%s: the checkpoint was made with other options (%s); resume with the "
                        "same ones",
                        path, diff);
    }
    return NB_OK;
}

nb_status nb_trainer_resume(nb_trainer *t, const char *path)
{
    if (!t || !path)
        return nb_error(NB_ERR_ARG, "nb_trainer_resume: %s is NULL", !t ? "t" : "path");
    if (!t->model.mlp)
        return nb_error(NB_ERR_ARG, "nb_trainer_resume: %s: only an nb_mlp model can be resumed",
                        path);
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st)
        return nb_last_status();
    run_pos r;
    nb_status s = check_config_string(t, st, path);
    if (s == NB_OK)
        s = read_run_pos(t, st, path, &r);
    nb_safetensors_free(st);
    if (s != NB_OK)
        return s;
    nb_model_info info;
    if ((s = nb_model_load_into(path, t->model.mlp, &info, t->opt)) != NB_OK)
        return s; /* the message names the file */
    nb_model_info_free(&info);
    if ((s = nb_batcher_seek(&t->bt, r.be, r.bp, &r.brng)) != NB_OK)
        return field_error(s, path);
    if (t->model.rng)
        *t->model.rng = r.drng;
    t->epoch = r.epoch;
    t->loss_sum = r.loss_sum;
    t->weight_sum = r.weight_sum;
    t->correct = r.correct;
    t->best_val = r.best_val;
    t->best_acc = r.best_acc;
    t->best_epoch = r.best_epoch;
    t->bad_epochs = r.bad_epochs;
    t->gnorm_sum = r.gnorm_sum;
    t->gnorm_n = r.gnorm_n;
    /* an early-stopped run stays stopped unless the patience was raised */
    t->early = t->c.patience > 0 && t->best_epoch > 0 && t->bad_epochs >= t->c.patience;
    t->stopped = t->early;
    t->in_epoch = false;
    return NB_OK;
}
