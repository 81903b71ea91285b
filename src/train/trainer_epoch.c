/* trainer_epoch.c - the end of an epoch (validation, best model, checkpoint, patience) and the
 * whole run (see nabla/train.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>
#include <time.h>

#include "train/trainer_internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Plain cross-entropy (mean) and accuracy of the model on ds, no gradient, inference mode. */
static nb_status score(nb_trainer *t, const nb_dataset *ds, double *loss, double *acc)
{
    int64_t N = ds->X->shape[0], D = ds->X->shape[1], B = t->c.val_batch;
    double loss_sum = 0;
    int64_t hits_all = 0, count_all = 0;
    if (t->model.set_training)
        t->model.set_training(t->model.ctx, false);
    bool prev = nb_graph_set_grad_enabled(t->g, false);
    nb_status s = NB_OK;
    nb_xent_opts o = nb_xent_defaults();
    o.ignore_index = t->c.loss.ignore_index;
    o.reduction = NB_REDUCTION_SUM;
    for (int64_t r0 = 0; r0 < N && s == NB_OK; r0 += B) {
        int64_t n = N - r0 < B ? N - r0 : B, sx[2] = {n, D}, sy[1] = {n}, hits, count;
        nb_tensor xv, yv;
        nb_tensor_view(&xv, NB_F32, 2, sx, (float *)ds->X->data + r0 * D);
        nb_tensor_view(&yv, NB_I32, 1, sy, (int32_t *)ds->y->data + r0);
        nb_graph_reset(t->g);
        nb_tensor *logits = t->model.forward(t->g, &xv, t->model.ctx);
        nb_tensor *L = nb_cross_entropy(t->g, logits, &yv, &o);
        if (!L) {
            s = nb_last_status();
            break;
        }
        if ((s = nb_accuracy(logits, &yv, o.ignore_index, &hits, &count)) != NB_OK)
            break;
        loss_sum += nb_tensor_get(L, 0);
        hits_all += hits;
        count_all += count;
    }
    nb_graph_reset(t->g);
    nb_graph_set_grad_enabled(t->g, prev);
    *loss = count_all ? loss_sum / (double)count_all : 0;
    *acc = count_all ? (double)hits_all / (double)count_all : 0;
    return s;
}

/* The best-model checkpoint: weights and the caller's metadata, no optimiser. */
static nb_status save_best(nb_trainer *t)
{
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
    info.epoch = t->epoch;
    return nb_model_save_ex(t->c.best_checkpoint, t->model.mlp, &info, NULL, t->c.checkpoint_meta);
}

/* Validation of the finished epoch into t->p; the best model and the patience count. */
static nb_status validate(nb_trainer *t)
{
    nb_train_progress *p = &t->p;
    p->has_val = t->c.val != NULL;
    p->improved = false;
    if (!p->has_val)
        return NB_OK;
    nb_status s = score(t, t->c.val, &p->val_loss, &p->val_acc);
    if (s != NB_OK)
        return s;
    if (p->val_loss < t->best_val) {
        t->best_val = p->val_loss;
        t->best_acc = p->val_acc;
        t->best_epoch = t->epoch;
        t->bad_epochs = 0;
        p->improved = true;
        if (t->c.best_checkpoint && t->c.rank == 0 && t->model.mlp && (s = save_best(t)) != NB_OK)
            return s;
    } else {
        t->bad_epochs++;
    }
    p->bad_epochs = t->bad_epochs;
    return NB_OK;
}

nb_status nb_trainer_end_epoch(nb_trainer *t, bool *stop)
{
    if (stop)
        *stop = false;
    if (!t)
        return nb_error(NB_ERR_ARG, "nb_trainer_end_epoch: t is NULL");
    if (t->epoch > t->c.epochs)
        return nb_error(NB_ERR_STATE, "nb_trainer_end_epoch: the run's %lld epochs are done",
                        (long long)t->c.epochs);
    nb_train_progress *p = &t->p;
    double den = t->weight_sum > 0 ? t->weight_sum : 1;
    p->seconds = t->in_epoch ? now() - t->t0 - t->ck_seconds : 0;
    p->epoch = t->epoch;
    p->epochs = t->c.epochs;
    p->batch = t->batch_in_epoch;
    p->batches = t->steps_per_epoch;
    p->step = nb_optim_step_count(t->opt);
    p->train_loss = t->loss_sum / den;
    p->train_acc = t->correct / den;
    p->epoch_grad_norm = t->gnorm_n ? t->gnorm_sum / (double)t->gnorm_n : 0;
    p->lr = nb_optim_lr(t->opt);
    p->checkpointed = false;
    nb_status s = validate(t);
    if (s != NB_OK)
        return s;
    bool go_on = !t->c.on_epoch || t->c.on_epoch(p, t->c.user);
    /* the next epoch starts here: its sums are zero */
    t->epoch++;
    t->loss_sum = t->weight_sum = t->correct = t->gnorm_sum = 0;
    t->gnorm_n = 0;
    t->batch_in_epoch = 0;
    t->in_epoch = false;
    if (t->c.checkpoint && t->c.rank == 0) {
        if ((s = nb_trainer_save_(t, t->c.checkpoint)) != NB_OK)
            return s;
        p->checkpointed = true;
    }
    t->early = t->c.patience > 0 && t->bad_epochs >= t->c.patience;
    t->stopped = !go_on || t->early;
    if (stop)
        *stop = t->stopped;
    return NB_OK;
}

nb_status nb_trainer_run(nb_trainer *t, nb_train_result *r)
{
    if (!t)
        return nb_error(NB_ERR_ARG, "nb_trainer_run: t is NULL");
    nb_status s = NB_OK;
    bool stop = false;
    while (s == NB_OK && !stop && !t->early && t->epoch <= t->c.epochs) {
        bool done = false;
        while (s == NB_OK && !done && !stop)
            s = nb_trainer_step(t, &done, &stop);
        if (stop)
            t->stopped = true;
        else if (s == NB_OK)
            s = nb_trainer_end_epoch(t, &stop);
    }
    /* a finished run resumed with another checkpoint path: it is written all the same */
    if (s == NB_OK && (!t->stopped || t->early) && t->c.checkpoint && t->c.rank == 0 &&
        t->ck_step < 0)
        s = nb_trainer_save_(t, t->c.checkpoint);
    if (r)
        nb_trainer_result(t, r);
    return s;
}

void nb_trainer_result(const nb_trainer *t, nb_train_result *r)
{
    if (!r)
        return;
    memset(r, 0, sizeof *r);
    if (!t) {
        nb_error(NB_ERR_ARG, "nb_trainer_result: t is NULL");
        return;
    }
    r->epochs_done = t->epoch - 1;
    r->steps = nb_optim_step_count(t->opt);
    r->stopped = t->stopped;
    r->early_stopped = t->early;
    r->best_epoch = t->best_epoch;
    r->best_val_loss = t->best_epoch ? t->best_val : 0;
    r->best_val_acc = t->best_acc;
    r->last = t->p;
}

int64_t nb_trainer_epoch(const nb_trainer *t)
{
    if (!t) {
        nb_error(NB_ERR_ARG, "nb_trainer_epoch: t is NULL");
        return -1;
    }
    return t->epoch;
}

const nb_optim *nb_trainer_optim(const nb_trainer *t)
{
    if (!t)
        nb_error(NB_ERR_ARG, "nb_trainer_optim: t is NULL");
    return t ? t->opt : NULL;
}

void nb_trainer_last_checkpoint(const nb_trainer *t, int64_t *epoch, int64_t *step)
{
    if (!t)
        nb_error(NB_ERR_ARG, "nb_trainer_last_checkpoint: t is NULL");
    if (epoch)
        *epoch = t ? t->ck_epoch : -1;
    if (step)
        *step = t ? t->ck_step : -1;
}

nb_status nb_train(const nb_train_model *model, const nb_dataset *train, const nb_train_config *c,
                   nb_train_result *r)
{
    if (!model || !train || !c)
        return nb_error(NB_ERR_ARG, "nb_train: %s is NULL",
                        !model   ? "model"
                        : !train ? "train"
                                 : "c");
    nb_trainer *t = nb_trainer_new(model, train, c);
    if (!t)
        return nb_last_status();
    nb_status s = nb_trainer_run(t, r);
    nb_trainer_free(t);
    return s;
}
