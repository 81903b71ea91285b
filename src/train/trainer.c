/* trainer.c - the training loop: accumulation with the exact token-count normaliser, the
 * data-parallel sum through the caller's all-reduce, anomaly stop, clipping, schedule,
 * validation, patience, checkpoints and callbacks (see nabla/train.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nabla/lce.h"
#include "train/trainer_internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

nb_train_config nb_train_defaults(void)
{
    nb_train_config c;
    memset(&c, 0, sizeof c);
    c.epochs = 10;
    c.batch = 128;
    c.accum = 1;
    c.seed = 1;
    c.shuffle = true;
    c.optim = nb_optim_defaults(NB_OPTIM_ADAMW);
    c.optim.lr = 2e-3;
    c.optim.weight_decay = 1e-4;
    c.schedule.kind = NB_SCHED_COSINE;
    c.schedule.warmup = 200;
    c.schedule.gamma = 0.5;
    c.loss = nb_xent_defaults();
    c.loss.label_smoothing = 0.1;
    c.tokens_per_row = 1;
    c.world_size = 1;
    c.val_batch = 1000;
    return c;
}

/* The forward of an nb_mlp: sequences [n, T, F] are fed as n T rows of F features (a reshape on
 * the graph: the tape keeps the input it saw until the graph is reset, so no view on this
 * function's stack may go in). */
static nb_tensor *mlp_forward(nb_graph *g, nb_tensor *x, void *ctx)
{
    if (x && x->ndim == 3) {
        int64_t s2[2] = {x->shape[0] * x->shape[1], x->shape[2]};
        x = nb_reshape(g, x, 2, s2);
    }
    return nb_mlp_forward(g, (nb_mlp *)ctx, x);
}

static void mlp_set_training(void *ctx, bool training)
{
    nb_mlp_set_training((nb_mlp *)ctx, training);
}

nb_train_model nb_train_model_mlp(nb_mlp *m)
{
    nb_train_model md;
    memset(&md, 0, sizeof md);
    md.mlp = m;
    md.forward = mlp_forward;
    md.ctx = m;
    md.set_training = mlp_set_training;
    md.rng = m ? &m->rng : NULL;
    return md;
}

/* Whether two f32 [D] statistics (or two NULLs) hold the same values. */
static bool same_stats(const nb_tensor *a, const nb_tensor *b)
{
    if (!a || !b)
        return a == b;
    return a->dtype == NB_F32 && b->dtype == NB_F32 && nb_shape_equal(a, b) &&
           !memcmp(a->data, b->data, (size_t)a->numel * sizeof(float));
}

/* The validation set must be fed to the model as the training set is: standardised with the
 * training set's statistics, or neither standardised. */
static nb_status check_val_standardised(const nb_dataset *tr, const nb_dataset *val)
{
    if (same_stats(tr->mean, val->mean) && same_stats(tr->std, val->std))
        return NB_OK;
    return nb_error(NB_ERR_ARG,
                    "nb_trainer_new: the %s set is standardised and the %s set %s; standardise "
                    "both with the training statistics (nb_dataset_standardize(&train, &val, "
                    "NULL))",
                    tr->mean ? "training" : "validation", tr->mean ? "validation" : "training",
                    tr->mean && val->mean ? "with other statistics" : "is not");
}

static nb_status check_config(const nb_train_config *c, const nb_dataset *tr)
{
    const char *fn = "nb_trainer_new";
    if (c->epochs < 1 || c->epochs > NB_CHECKPOINT_MAX_COUNT)
        return nb_error(NB_ERR_RANGE, "%s: epochs %lld outside [1, 2^53]", fn,
                        (long long)c->epochs);
    if (c->batch < 1 || c->batch > ((int64_t)1 << 31))
        return nb_error(NB_ERR_RANGE, "%s: batch %lld outside [1, 2^31]", fn, (long long)c->batch);
    if (c->accum < 1 || c->accum > c->batch)
        return nb_error(NB_ERR_RANGE, "%s: accum %lld outside [1, batch %lld]", fn,
                        (long long)c->accum, (long long)c->batch);
    if (!(c->clip_norm >= 0) || !isfinite(c->clip_norm))
        return nb_error(NB_ERR_RANGE, "%s: clip_norm %g is not a finite number >= 0", fn,
                        c->clip_norm);
    if (c->loss.mask || c->loss.stats)
        return nb_error(NB_ERR_ARG,
                        "%s: loss.%s is set; the trainer makes its own per batch "
                        "(mark padding with ignore_index)",
                        fn, c->loss.mask ? "mask" : "stats");
    if (c->world_size < 1 || c->rank < 0 || c->rank >= c->world_size)
        return nb_error(NB_ERR_RANGE, "%s: rank %d of world_size %d", fn, c->rank, c->world_size);
    if (c->world_size > 1 && !c->allreduce_sum)
        return nb_error(NB_ERR_ARG, "%s: world_size %d needs allreduce_sum", fn, c->world_size);
    if (c->patience < 0 || c->save_every_steps < 0 || c->val_batch < 1)
        return nb_error(NB_ERR_RANGE,
                        "%s: patience %lld, save_every_steps %lld, val_batch %lld: "
                        "expected >= 0, >= 0, >= 1",
                        fn, (long long)c->patience, (long long)c->save_every_steps,
                        (long long)c->val_batch);
    if ((c->patience || c->best_checkpoint) && !c->val)
        return nb_error(NB_ERR_ARG, "%s: patience and best_checkpoint need a validation set (val)",
                        fn);
    if (c->val && c->val->X && check_val_standardised(tr, c->val) != NB_OK)
        return NB_ERR_ARG;
    int64_t T = c->tokens_per_row, D = tr->X->shape[1];
    if (T < 1 || D % T != 0)
        return nb_error(NB_ERR_SHAPE, "%s: tokens_per_row %lld does not divide the %lld features",
                        fn, (long long)T, (long long)D);
    if (T > 1 && (!c->seq_targets || c->seq_targets->dtype != NB_I32 || c->seq_targets->ndim != 2 ||
                  c->seq_targets->shape[1] != T))
        return nb_error(NB_ERR_SHAPE, "%s: tokens_per_row %lld needs seq_targets i32 [S, %lld]", fn,
                        (long long)T, (long long)T);
    return NB_OK;
}

/* The parameters: the MLP's, or the caller's list (one float dtype, all with gradients). */
static nb_status take_params(nb_trainer *t, const nb_train_model *md)
{
    if (md->mlp) {
        t->np = nb_mlp_param_count(md->mlp);
        for (int i = 0; i < t->np; i++)
            t->mlp_params[i] = nb_mlp_param(md->mlp, i, NULL, 0);
        t->params = t->mlp_params;
        t->model = nb_train_model_mlp(md->mlp);
    } else {
        if (!md->forward || !md->params || md->n_params < 1)
            return nb_error(NB_ERR_ARG,
                            "nb_trainer_new: model has no mlp, and forward, params "
                            "or n_params (%d) is missing",
                            md->n_params);
        t->model = *md;
        t->np = md->n_params;
        t->params = md->params;
    }
    t->numel = 0;
    for (int i = 0; i < t->np; i++) {
        const nb_tensor *p = t->params[i];
        if (!p || !p->grad || (p->dtype != t->params[0]->dtype) || !nb_dtype_is_float(p->dtype))
            return nb_error(NB_ERR_ARG,
                            "nb_trainer_new: parameter %d is NULL, has no gradient "
                            "or is not of the first one's float dtype",
                            i);
        t->numel += p->numel;
    }
    t->pdt = t->params[0]->dtype;
    return NB_OK;
}

static nb_status init_buffers(nb_trainer *t)
{
    const nb_train_config *c = &t->c;
    int64_t B = c->batch, sx[2] = {B, t->D}, sy[1] = {B}, st[2] = {B, t->T};
    t->xb = nb_tensor_zeros(NB_F32, 2, sx);
    t->yb = nb_tensor_zeros(NB_I32, 1, sy);
    t->tb = nb_tensor_zeros(NB_I32, 2, st);
    t->g = nb_graph_new();
    if (!t->xb || !t->yb || !t->tb || !t->g || (c->fused_head && !(t->gacc = nb_graph_new())))
        return nb_last_status();
    if (t->gacc)
        nb_graph_set_grad_enabled(t->gacc, false);
    if (c->world_size > 1 &&
        !(t->flat = malloc(nb_dtype_size(t->pdt) * (size_t)(t->numel ? t->numel : 1))))
        return nb_error(NB_ERR_NOMEM, "nb_trainer_new: cannot allocate %lld gradients",
                        (long long)t->numel);
    nb_graph_set_anomaly_detection(t->g, c->detect_anomaly);
    if (!(t->opt = nb_optim_new(&c->optim, t->params, t->np)))
        return nb_last_status();
    t->steps_per_epoch = (t->N + B - 1) / B;
    t->sched = c->schedule;
    if (t->sched.lr <= 0)
        t->sched.lr = c->optim.lr;
    if (t->sched.total_steps <= 0)
        t->sched.total_steps = t->steps_per_epoch * c->epochs;
    if (t->sched.step_size <= 0)
        t->sched.step_size = t->steps_per_epoch * 3;
    return nb_batcher_init(&t->bt, t->train, B, c->shuffle, c->seed);
}

nb_trainer *nb_trainer_new(const nb_train_model *model, const nb_dataset *train,
                           const nb_train_config *c)
{
    if (!model || !train || !c) {
        nb_error(NB_ERR_ARG, "nb_trainer_new: %s is NULL",
                 !model   ? "model"
                 : !train ? "train"
                          : "c");
        return NULL;
    }
    if (!train->X || !train->y || train->X->ndim != 2 || train->X->dtype != NB_F32) {
        nb_error(NB_ERR_ARG, "nb_trainer_new: train is not a loaded data set (X f32 [N, D])");
        return NULL;
    }
    if (check_config(c, train) != NB_OK)
        return NULL;
    if (c->fused_head && !model->mlp) {
        nb_error(NB_ERR_ARG, "nb_trainer_new: fused_head needs an nb_mlp model "
                             "(nb_train_model_mlp): a forward function returns logits, with no "
                             "last layer to fuse with the loss");
        return NULL;
    }
    nb_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        nb_error(NB_ERR_NOMEM, "nb_trainer_new: out of memory");
        return NULL;
    }
    t->c = *c;
    t->train = train;
    t->N = train->X->shape[0];
    t->D = train->X->shape[1];
    t->T = c->tokens_per_row;
    t->F = t->D / t->T;
    t->epoch = 1;
    t->ck_epoch = t->ck_step = -1;
    t->best_val = INFINITY;
    if (take_params(t, model) != NB_OK || init_buffers(t) != NB_OK) {
        nb_trainer_free(t);
        return NULL;
    }
    return t;
}

void nb_trainer_free(nb_trainer *t)
{
    if (!t)
        return;
    nb_batcher_free(&t->bt);
    nb_graph_free(t->g);
    nb_graph_free(t->gacc);
    nb_tensor_free(t->xb);
    nb_tensor_free(t->yb);
    nb_tensor_free(t->tb);
    nb_optim_free(t->opt);
    free(t->flat);
    free(t);
}

/* The targets of the n rows of the batch into tb: the labels, or the sequences' tokens. */
static void batch_targets(nb_trainer *t, int64_t n)
{
    const int32_t *y = t->yb->data;
    int32_t *tt = t->tb->data;
    if (t->T > 1)
        for (int64_t i = 0; i < n; i++)
            memcpy(tt + i * t->T, (int32_t *)t->c.seq_targets->data + (int64_t)y[i] * t->T,
                   sizeof(int32_t) * (size_t)t->T);
    else
        memcpy(tt, y, sizeof(int32_t) * (size_t)n);
}

/* The loss through the model's logits: forward, then nb_cross_entropy; *z = the logits, shaped
 * [n, T, K] for sequences. */
static nb_tensor *plain_loss(nb_trainer *t, nb_tensor *x, const nb_tensor *tv,
                             const nb_xent_opts *xo, nb_tensor **z)
{
    nb_tensor *logits = t->model.forward(t->g, x, t->model.ctx);
    *z = logits;
    if (logits && t->T > 1 && logits->ndim == 2) {
        int64_t s3[3] = {x->shape[0], t->T, logits->shape[1]};
        *z = nb_reshape(t->g, logits, 3, s3);
    }
    return nb_cross_entropy(t->g, *z, tv, xo);
}

/* The fused head's loss: the MLP up to its last hidden activation *h [rows, H] (sequences fed
 * as rows of tokens, as mlp_forward does), then nb_linear_cross_entropy with the last layer in
 * one pass (the gradients made during the forward): the logits are never formed. W's and b's
 * gradients go straight into their buffers (leaf_grads_in_forward): its contract holds here, as
 * every micro-batch's forward is followed by its backward, and the gradients are zeroed only
 * after the optimiser's step. trow holds one target per row. */
static nb_tensor *fused_loss(nb_trainer *t, nb_tensor *x, const nb_tensor *trow,
                             const nb_xent_opts *xo, nb_tensor **h)
{
    nb_mlp *m = t->model.mlp;
    int last = m->n_layers - 1;
    if (x->ndim == 3) {
        int64_t s2[2] = {x->shape[0] * x->shape[1], x->shape[2]};
        x = nb_reshape(t->g, x, 2, s2);
    }
    *h = nb_mlp_forward_hidden(t->g, m, x);
    nb_lce_opts lo = nb_lce_defaults();
    lo.xent = *xo;
    lo.one_pass = true;
    lo.leaf_grads_in_forward = true;
    return nb_linear_cross_entropy(t->g, *h, m->weight[last], m->bias[last], trow, &lo);
}

/* The fused head's training accuracy: the argmax of h W^T + b, the logits the unfused head
 * forms (same h, the weights before the step), recomputed without gradient on a graph of its
 * own, a block of at most 2^20 logits (4 MiB in f32) at a time. *hits: the rows it gets right. */
static nb_status fused_hits(nb_trainer *t, const nb_tensor *h, const nb_tensor *trow, int64_t *hits)
{
    nb_mlp *m = t->model.mlp;
    int last = m->n_layers - 1;
    int64_t rows = h->shape[0], H = h->shape[1], V = m->sizes[m->n_layers];
    int64_t blk = V >= ((int64_t)1 << 20) ? 1 : ((int64_t)1 << 20) / V;
    size_t es = nb_dtype_size(h->dtype);
    *hits = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += blk) {
        int64_t nr = rows - r0 < blk ? rows - r0 : blk, sh[2] = {nr, H}, st[1] = {nr}, k, counted;
        nb_tensor hv, tv;
        nb_tensor_view(&hv, h->dtype, 2, sh, (char *)h->data + (size_t)(r0 * H) * es);
        nb_tensor_view(&tv, NB_I32, 1, st, (int32_t *)trow->data + r0);
        nb_graph_reset(t->gacc);
        nb_tensor *z = nb_linear(t->gacc, &hv, m->weight[last], m->bias[last]);
        nb_status s =
            z ? nb_accuracy(z, &tv, t->c.loss.ignore_index, &k, &counted) : nb_last_status();
        if (s != NB_OK)
            return s;
        *hits += k;
    }
    return NB_OK;
}

/* Forward, loss and backward of rows [a0, a1) of the batch; adds its loss sum and hits to W. */
static nb_status micro_batch(nb_trainer *t, int64_t a0, int64_t a1, double normaliser, double *W)
{
    int64_t T = t->T, F = t->F, n = a1 - a0, rows = n * T;
    int32_t *tt = (int32_t *)t->tb->data + a0 * T;
    int64_t sx3[3] = {n, T, F}, sx2[2] = {n, F}, st[2] = {n, T}, srow[1] = {rows};
    nb_tensor xv, tv, trow; /* trow: one target per row of logits */
    nb_tensor_view(&xv, NB_F32, T > 1 ? 3 : 2, T > 1 ? sx3 : sx2,
                   (float *)t->xb->data + a0 * T * F);
    nb_tensor_view(&tv, NB_I32, T > 1 ? 2 : 1, st, tt);
    nb_tensor_view(&trow, NB_I32, 1, srow, tt);
    nb_xent_stats stats;
    nb_xent_opts xo = t->c.loss;
    xo.normaliser = normaliser;
    xo.reduction = NB_REDUCTION_MEAN;
    xo.stats = &stats;
    nb_graph_reset(t->g);
    nb_tensor *z = NULL, *h = NULL;
    nb_tensor *L =
        t->c.fused_head ? fused_loss(t, &xv, &trow, &xo, &h) : plain_loss(t, &xv, &tv, &xo, &z);
    nb_status s = L ? nb_backward(t->g, L, NULL) : nb_last_status();
    if (s != NB_OK)
        return s;
    int64_t hits, counted;
    if (t->c.fused_head) {
        s = fused_hits(t, h, &trow, &hits);
    } else {
        int64_t s2[2] = {rows, z->shape[z->ndim - 1]};
        nb_tensor lrow;
        nb_tensor_view(&lrow, z->dtype, 2, s2, z->data);
        s = nb_accuracy(&lrow, &trow, xo.ignore_index, &hits, &counted);
    }
    if (s != NB_OK)
        return s;
    W[1] += stats.loss_sum;
    W[2] += (double)hits;
    return NB_OK;
}

/* The real tokens of this rank's rows [lo, hi) (weighted with the class weights, if any). */
static double real_weight(const nb_trainer *t, int64_t lo, int64_t hi)
{
    const int32_t *tt = t->tb->data;
    const nb_tensor *w = t->c.loss.weight;
    double W = 0;
    for (int64_t i = lo * t->T; i < hi * t->T; i++) {
        if (tt[i] == t->c.loss.ignore_index)
            continue;
        if (!w)
            W += 1;
        else if (tt[i] >= 0 && tt[i] < w->numel)
            W += w->dtype == NB_F64 ? ((double *)w->data)[tt[i]] : ((float *)w->data)[tt[i]];
    }
    return W;
}

/* Sums the gradients over ranks through the caller's all-reduce: one call, one flat buffer. */
static nb_status sum_grads(nb_trainer *t)
{
    size_t es = nb_dtype_size(t->pdt);
    char *flat = t->flat;
    int64_t off = 0;
    for (int i = 0; i < t->np; i++) {
        memcpy(flat + off * es, t->params[i]->grad, es * (size_t)t->params[i]->numel);
        off += t->params[i]->numel;
    }
    nb_status s = t->c.allreduce_sum(flat, t->numel, t->pdt, t->c.allreduce_ctx);
    if (s != NB_OK)
        return s;
    off = 0;
    for (int i = 0; i < t->np; i++) {
        memcpy(t->params[i]->grad, flat + off * es, es * (size_t)t->params[i]->numel);
        off += t->params[i]->numel;
    }
    return NB_OK;
}

/* The gradients of one global batch of n rows, summed over micro-batches and ranks, into the
 * parameters; W = {real tokens, loss sum, hits} of the whole batch. */
static nb_status batch_gradients(nb_trainer *t, int64_t n, double *W)
{
    const nb_train_config *c = &t->c;
    int64_t lo = n * c->rank / c->world_size, hi = n * (c->rank + 1) / c->world_size;
    nb_status s;
    /* the whole global batch's real-token count, known before any backward: every micro-batch's
     * loss is divided by it, so the accumulated gradient is the mean */
    W[0] = real_weight(t, lo, hi);
    if (c->world_size > 1 && (s = c->allreduce_sum(W, 1, NB_F64, c->allreduce_ctx)) != NB_OK)
        return s;
    for (int64_t k = 0; k < c->accum; k++) {
        int64_t a0 = lo + (hi - lo) * k / c->accum, a1 = lo + (hi - lo) * (k + 1) / c->accum;
        if (a1 > a0 && (s = micro_batch(t, a0, a1, W[0], W)) != NB_OK)
            return s;
    }
    if (c->world_size > 1 && ((s = sum_grads(t)) != NB_OK ||
                              (s = c->allreduce_sum(W + 1, 2, NB_F64, c->allreduce_ctx)) != NB_OK))
        return s;
    return NB_OK;
}

nb_status nb_trainer_step(nb_trainer *t, bool *epoch_done, bool *stop)
{
    if (epoch_done)
        *epoch_done = false;
    if (stop)
        *stop = false;
    if (!t)
        return nb_error(NB_ERR_ARG, "nb_trainer_step: t is NULL");
    if (t->epoch > t->c.epochs)
        return nb_error(NB_ERR_STATE, "nb_trainer_step: the run's %lld epochs are done",
                        (long long)t->c.epochs);
    if (!t->in_epoch) {
        t->in_epoch = true;
        t->t0 = now();
        t->ck_seconds = 0;
        t->batch_in_epoch = t->bt.pos / t->c.batch;
    }
    if (t->model.set_training)
        t->model.set_training(t->model.ctx, true);
    bool at_end = t->bt.pos >= t->N;
    if (!nb_batcher_next(&t->bt, t->xb, t->yb)) {
        if (!at_end)
            return nb_last_status();
        if (epoch_done)
            *epoch_done = true;
        return NB_OK;
    }
    int64_t n = t->xb->shape[0];
    batch_targets(t, n);
    double W[3] = {0, 0, 0}; /* real tokens; then loss sum and hits of this step */
    nb_status s = batch_gradients(t, n, W);
    if (s != NB_OK)
        return s;
    double lv = W[0] > 0 ? W[1] / W[0] : 0.0;
    if (!isfinite(lv))
        return nb_error(NB_ERR_ANOMALY, "loss became %g at epoch %lld step %lld", lv,
                        (long long)t->epoch, (long long)nb_optim_step_count(t->opt));
    double gn = 0;
    if (t->c.clip_norm > 0)
        nb_clip_grad_norm(t->params, t->np, t->c.clip_norm, &gn);
    nb_optim_set_lr(t->opt, nb_schedule_lr(&t->sched, nb_optim_step_count(t->opt)));
    /* the step, the gradients zeroed and (unless clipping measured it) their norm: one pass */
    if ((s = nb_optim_step_zero_grad(t->opt, t->c.clip_norm > 0 ? NULL : &gn)) != NB_OK)
        return s;
    t->loss_sum += W[1];
    t->weight_sum += W[0];
    t->correct += W[2];
    t->gnorm_sum += gn;
    t->gnorm_n++;
    t->batch_in_epoch++;
    nb_train_progress *p = &t->p;
    double den = t->weight_sum > 0 ? t->weight_sum : 1;
    p->epoch = t->epoch;
    p->epochs = t->c.epochs;
    p->batch = t->batch_in_epoch;
    p->batches = t->steps_per_epoch;
    p->step = nb_optim_step_count(t->opt);
    p->loss = lv;
    p->train_loss = t->loss_sum / den;
    p->train_acc = t->correct / den;
    p->grad_norm = gn;
    p->lr = nb_optim_lr(t->opt);
    p->checkpointed = false;
    if (t->c.checkpoint && t->c.rank == 0 && t->c.save_every_steps &&
        p->step % t->c.save_every_steps == 0) {
        double c0 = now(); /* a checkpoint's writing is not training time (p->seconds) */
        if ((s = nb_trainer_save_(t, t->c.checkpoint)) != NB_OK)
            return s;
        t->ck_seconds += now() - c0;
        p->checkpointed = true;
    }
    if (t->c.on_step && !t->c.on_step(p, t->c.user) && stop)
        *stop = true;
    return NB_OK;
}
