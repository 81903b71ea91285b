/* test_trainer.c - the trainer (nabla/train.h) against the loop written by hand:
 *   - nb_train and nb_trainer_step driven by hand give weights bitwise equal to a hand-written
 *     loop with the same seed;
 *   - accumulation K = 1, 2, 4 through the trainer gives the gradient of the whole batch's mean
 *     (the figures of test_accum: f32 1e-5), not the mean of the micro-batch means;
 *   - data parallel through the allreduce_sum callback: two ranks (threads here, summing through
 *     a barrier) give the single-process weights (1e-5) and identical weights on both ranks;
 *   - early stopping and the best model on a validation set that gets worse;
 *   - a resume from every checkpoint of a run ends bitwise equal to the uninterrupted run. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla.h"

/* spirals: 3 classes, n per class, 2 features */
static void spirals(int64_t n, double noise, uint64_t seed, nb_dataset *ds)
{
    nb_tensor *X, *y;
    assert_int_equal(nb_spirals(n, 3, noise, seed, &X, &y), NB_OK);
    assert_int_equal(nb_dataset_from_tensors(X, y, 3, ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);
}

static nb_mlp *mlp(int64_t in, int64_t out, double dropout)
{
    int64_t sizes[3] = {in, 16, out};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, dropout, NB_F32, 7);
    assert_non_null(m);
    return m;
}

/* all weights of m, as doubles (caller frees) */
static double *weights(const nb_mlp *m)
{
    int64_t n = nb_mlp_numel(m), off = 0;
    double *w = malloc(sizeof(double) * (size_t)n);
    assert_non_null(w);
    for (int i = 0; i < nb_mlp_param_count(m); i++) {
        nb_tensor *p = nb_mlp_param(m, i, NULL, 0);
        for (int64_t j = 0; j < p->numel; j++)
            w[off++] = ((float *)p->data)[j];
    }
    return w;
}

static void assert_bitwise(const nb_mlp *a, const nb_mlp *b)
{
    for (int i = 0; i < nb_mlp_param_count(a); i++) {
        nb_tensor *p = nb_mlp_param(a, i, NULL, 0), *q = nb_mlp_param(b, i, NULL, 0);
        assert_int_equal(p->numel, q->numel);
        assert_memory_equal(p->data, q->data, sizeof(float) * (size_t)p->numel);
    }
}

static nb_train_config small_config(void)
{
    nb_train_config c = nb_train_defaults();
    c.epochs = 3;
    c.batch = 16;
    c.seed = 5;
    c.schedule.warmup = 4;
    return c;
}

/* ---- the trainer and the loop written by hand ---- */

/* What the trainer does, written out: batcher, forward, the fused loss with the batch's token
 * count as normaliser, backward, schedule, optimiser. */
static void hand_loop(nb_mlp *m, const nb_dataset *ds, const nb_train_config *c)
{
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    int np = nb_mlp_param_count(m);
    for (int i = 0; i < np; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim *opt = nb_optim_new(&c->optim, params, np);
    int64_t N = ds->X->shape[0], D = ds->X->shape[1], B = c->batch, steps = (N + B - 1) / B;
    nb_schedule sched = c->schedule;
    sched.lr = c->optim.lr;
    sched.total_steps = steps * c->epochs;
    sched.step_size = steps * 3;
    nb_batcher bt;
    assert_int_equal(nb_batcher_init(&bt, ds, B, true, c->seed), NB_OK);
    int64_t sx[2] = {B, D}, sy[1] = {B};
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, sx), *yb = nb_tensor_zeros(NB_I32, 1, sy);
    nb_graph *g = nb_graph_new();
    for (int64_t e = 0; e < c->epochs; e++) {
        nb_mlp_set_training(m, true);
        while (nb_batcher_next(&bt, xb, yb)) {
            nb_xent_opts o = c->loss;
            o.normaliser = (double)xb->shape[0];
            nb_graph_reset(g);
            nb_tensor *L = nb_cross_entropy(g, nb_mlp_forward(g, m, xb), yb, &o);
            assert_int_equal(nb_backward(g, L, NULL), NB_OK);
            nb_optim_set_lr(opt, nb_schedule_lr(&sched, nb_optim_step_count(opt)));
            assert_int_equal(nb_optim_step(opt), NB_OK);
            nb_optim_zero_grad(opt);
        }
    }
    nb_graph_free(g);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_batcher_free(&bt);
    nb_optim_free(opt);
}

static void test_trainer_equals_hand_loop(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(40, 0.2, 3, &ds);
    nb_train_config c = small_config();
    nb_mlp *a = mlp(2, 3, 0.0), *b = mlp(2, 3, 0.0), *h = mlp(2, 3, 0.0);
    /* one call */
    nb_train_model ma = nb_train_model_mlp(a);
    nb_train_result r;
    assert_int_equal(nb_train(&ma, &ds, &c, &r), NB_OK);
    assert_int_equal(r.epochs_done, 3);
    assert_int_equal(r.steps, 3 * 8);
    /* each step by hand */
    nb_train_model mb = nb_train_model_mlp(b);
    nb_trainer *t = nb_trainer_new(&mb, &ds, &c);
    assert_non_null(t);
    int64_t steps = 0;
    for (int e = 0; e < 3; e++) {
        bool done = false, stop = false;
        for (;;) {
            assert_int_equal(nb_trainer_step(t, &done, &stop), NB_OK);
            if (done)
                break;
            steps++;
        }
        assert_int_equal(nb_trainer_end_epoch(t, &stop), NB_OK);
        assert_false(stop);
    }
    assert_int_equal(steps, 24);
    assert_int_equal(nb_trainer_step(t, NULL, NULL), NB_ERR_STATE); /* the run is over */
    nb_trainer_free(t);
    /* the loop written out */
    hand_loop(h, &ds, &c);
    assert_bitwise(a, h);
    assert_bitwise(b, h);
    /* and training changed the weights */
    nb_mlp *fresh = mlp(2, 3, 0.0);
    double *w0 = weights(fresh), *w1 = weights(h);
    double moved = 0;
    for (int64_t i = 0; i < nb_mlp_numel(h); i++)
        moved = fmax(moved, fabs(w0[i] - w1[i]));
    assert_true(moved > 1e-3);
    free(w0);
    free(w1);
    nb_mlp_free(fresh);
    nb_mlp_free(a);
    nb_mlp_free(b);
    nb_mlp_free(h);
    nb_dataset_free(&ds);
}

/* ---- accumulation: padded sequences, as test_accum ---- */

enum { SB = 8, ST = 6, SV = 5, SF = 2 * SV };

typedef struct seqfix {
    nb_dataset ds; /* X [SB, ST * SF], labels = sequence index */
    nb_tensor *Y;  /* [SB, ST], -100 on padding */
} seqfix;

static void seq_make(seqfix *f)
{
    nb_tensor *X, *Y;
    assert_int_equal(nb_seq_toy(SB, ST, SV, 3, &X, &Y), NB_OK);
    /* unequal padding: sequence b keeps b % 5 + 1 tokens, sequences 2 and 3 are all padding */
    for (int b = 0; b < SB; b++)
        for (int t = 0; t < ST; t++)
            if (t >= b % 5 + 1 || b == 2 || b == 3)
                ((int32_t *)Y->data)[b * ST + t] = -100;
    int64_t sx[2] = {SB, ST * SF}, si[1] = {SB};
    nb_tensor Xv, *ids = nb_tensor_zeros(NB_I32, 1, si);
    for (int b = 0; b < SB; b++)
        ((int32_t *)ids->data)[b] = b;
    nb_tensor_view(&Xv, NB_F32, 2, sx, X->data);
    assert_int_equal(nb_dataset_from_tensors(&Xv, ids, SB, &f->ds), NB_OK);
    f->Y = Y;
    nb_tensor_free(X);
    nb_tensor_free(ids);
}

/* One SGD step of lr 1 through the trainer with K micro-batches: the weight change is the
 * gradient. */
static double *seq_step(seqfix *f, int K, int world, int rank, nb_allreduce_fn ar, void *ctx)
{
    nb_mlp *m = mlp(SF, SV, 0.0);
    double *w0 = weights(m);
    nb_train_config c = nb_train_defaults();
    c.epochs = 1;
    c.batch = SB;
    c.accum = K;
    c.shuffle = false;
    c.optim = nb_optim_defaults(NB_OPTIM_SGD);
    c.optim.lr = 1.0;
    c.schedule.kind = NB_SCHED_CONSTANT;
    c.schedule.warmup = 0;
    c.tokens_per_row = ST;
    c.seq_targets = f->Y;
    c.world_size = world;
    c.rank = rank;
    c.allreduce_sum = ar;
    c.allreduce_ctx = ctx;
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_result r;
    assert_int_equal(nb_train(&md, &f->ds, &c, &r), NB_OK);
    assert_int_equal(r.steps, 1);
    double *w1 = weights(m);
    for (int64_t i = 0; i < nb_mlp_numel(m); i++)
        w0[i] -= w1[i];
    free(w1);
    nb_mlp_free(m);
    return w0;
}

/* The reference gradient, by hand: the whole batch at once, mean over its real tokens; or
 * (mean_of_means) the well-known mistake, the mean of the two halves' means. */
static double *seq_reference(seqfix *f, bool mean_of_means)
{
    nb_mlp *m = mlp(SF, SV, 0.0);
    nb_graph *g = nb_graph_new();
    int parts = mean_of_means ? 2 : 1;
    for (int k = 0; k < parts; k++) {
        int b0 = SB * k / parts, b1 = SB * (k + 1) / parts;
        int64_t sx[2] = {(b1 - b0) * ST, SF}, sy[2] = {b1 - b0, ST}, s3[3] = {b1 - b0, ST, SV};
        nb_tensor xv, yv;
        nb_tensor_view(&xv, NB_F32, 2, sx, (float *)f->ds.X->data + b0 * ST * SF);
        nb_tensor_view(&yv, NB_I32, 2, sy, (int32_t *)f->Y->data + b0 * ST);
        nb_xent_opts o = nb_xent_defaults();
        o.label_smoothing = 0.1;
        nb_graph_reset(g);
        nb_tensor *L =
            nb_cross_entropy(g, nb_reshape(g, nb_mlp_forward(g, m, &xv), 3, s3), &yv, &o);
        if (mean_of_means)
            L = nb_scale(g, L, 0.5);
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
    }
    int64_t n = nb_mlp_numel(m), off = 0;
    double *gr = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < nb_mlp_param_count(m); i++) {
        nb_tensor *p = nb_mlp_param(m, i, NULL, 0);
        for (int64_t j = 0; j < p->numel; j++)
            gr[off++] = nb_tensor_grad_get(p, j);
    }
    nb_graph_free(g);
    nb_mlp_free(m);
    return gr;
}

static double max_rel(const double *a, const double *b, int64_t n)
{
    double gmax = 0, worst = 0;
    for (int64_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(a[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]) / gmax);
    return worst;
}

static void test_accumulation_exact(void **state)
{
    (void)state;
    seqfix f;
    seq_make(&f);
    int64_t n = (int64_t)SF * 16 + 16 + 16 * SV + SV;
    double *ref = seq_reference(&f, false), *wrong = seq_reference(&f, true);
    print_message("mean of means vs whole batch: max rel diff %.3g\n", max_rel(ref, wrong, n));
    assert_true(max_rel(ref, wrong, n) > 1e-2);
    for (int K = 1; K <= 4; K *= 2) {
        double *got = seq_step(&f, K, 1, 0, NULL, NULL);
        double err = max_rel(ref, got, n);
        print_message("trainer accum K=%d: max rel diff to the whole batch's gradient %.3g\n", K,
                      err);
        assert_true(err <= 1e-5);
        for (int64_t i = 0; i < n; i++)
            assert_false(isnan(got[i]));
        free(got);
    }
    free(ref);
    free(wrong);
    nb_dataset_free(&f.ds);
    nb_tensor_free(f.Y);
}

/* ---- data parallel: two ranks as two threads summing through a barrier ---- */

typedef struct world {
    pthread_barrier_t bar;
    void *slot[2];
    int calls[2];
} world;

typedef struct rank_arg {
    world *w;
    int rank;
    seqfix *f;
    int K;
    double *out;
} rank_arg;

static __thread int my_rank;

static nb_status thread_allreduce(void *buf, int64_t n, nb_dtype dt, void *ctx)
{
    world *w = ctx;
    w->slot[my_rank] = buf;
    w->calls[my_rank]++;
    pthread_barrier_wait(&w->bar);
    size_t es = nb_dtype_size(dt);
    char *sum = malloc(es * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) { /* rank 0's + rank 1's on both ranks: the same bits */
        if (dt == NB_F64)
            ((double *)sum)[i] = ((double *)w->slot[0])[i] + ((double *)w->slot[1])[i];
        else
            ((float *)sum)[i] = ((float *)w->slot[0])[i] + ((float *)w->slot[1])[i];
    }
    pthread_barrier_wait(&w->bar);
    memcpy(buf, sum, es * (size_t)n);
    free(sum);
    pthread_barrier_wait(&w->bar);
    return NB_OK;
}

static void *rank_main(void *p)
{
    rank_arg *a = p;
    my_rank = a->rank;
    a->out = seq_step(a->f, a->K, 2, a->rank, thread_allreduce, a->w);
    return NULL;
}

static void test_data_parallel_callback(void **state)
{
    (void)state;
    seqfix f;
    seq_make(&f);
    int64_t n = (int64_t)SF * 16 + 16 + 16 * SV + SV;
    double *one = seq_step(&f, 1, 1, 0, NULL, NULL);
    world w;
    memset(&w, 0, sizeof w);
    pthread_barrier_init(&w.bar, NULL, 2);
    rank_arg a[2] = {{&w, 0, &f, 2, NULL}, {&w, 1, &f, 2, NULL}};
    pthread_t th[2];
    for (int r = 0; r < 2; r++)
        assert_int_equal(pthread_create(&th[r], NULL, rank_main, &a[r]), 0);
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w.bar);
    /* token count, gradients, loss and hits: three sums per step */
    assert_int_equal(w.calls[0], 3);
    assert_int_equal(w.calls[1], 3);
    assert_memory_equal(a[0].out, a[1].out, sizeof(double) * (size_t)n);
    double err = max_rel(one, a[0].out, n);
    print_message("2 ranks x accum 2 vs 1 process: max rel diff %.3g\n", err);
    assert_true(err <= 1e-5);
    free(one);
    free(a[0].out);
    free(a[1].out);
    nb_dataset_free(&f.ds);
    nb_tensor_free(f.Y);
}

/* ---- early stopping and the best model ---- */

typedef struct watch {
    nb_mlp *m;
    double *best; /* the weights of the last improved epoch */
    int64_t best_epoch, epochs_seen;
} watch;

static bool on_epoch_watch(const nb_train_progress *p, void *user)
{
    watch *w = user;
    w->epochs_seen++;
    assert_true(p->has_val);
    if (p->improved) {
        free(w->best);
        w->best = weights(w->m);
        w->best_epoch = p->epoch;
    }
    return true;
}

static void test_early_stop_and_best_model(void **state)
{
    (void)state;
    nb_dataset tr, val;
    spirals(60, 0.1, 3, &tr);
    spirals(30, 0.1, 4, &val);
    /* the validation labels are shifted by one class: the better the model fits the training
     * data, the worse it does on these, so the validation loss gets worse after a while */
    for (int64_t i = 0; i < val.y->numel; i++)
        ((int32_t *)val.y->data)[i] = (((int32_t *)val.y->data)[i] + 1) % 3;
    char best[] = "/tmp/nabla_trainer_best_XXXXXX";
    int fd = mkstemp(best);
    assert_true(fd >= 0);
    close(fd);
    nb_mlp *m = mlp(2, 3, 0.0);
    watch w = {m, NULL, 0, 0};
    nb_train_config c = small_config();
    c.epochs = 60;
    c.optim.lr = 0.02;
    c.val = &val;
    c.patience = 3;
    c.best_checkpoint = best;
    c.on_epoch = on_epoch_watch;
    c.user = &w;
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_result r;
    assert_int_equal(nb_train(&md, &tr, &c, &r), NB_OK);
    print_message("best epoch %lld (val loss %.4f), stopped after %lld\n", (long long)r.best_epoch,
                  r.best_val_loss, (long long)r.epochs_done);
    assert_true(r.early_stopped && r.stopped);
    assert_true(r.epochs_done < 60);
    assert_int_equal(r.epochs_done, r.best_epoch + 3);
    assert_int_equal(w.best_epoch, r.best_epoch);
    assert_int_equal(w.epochs_seen, r.epochs_done);
    assert_true(r.last.val_loss > r.best_val_loss);
    /* the best checkpoint holds the weights of the best epoch, not the last ones */
    nb_model_info info;
    nb_mlp *b = nb_model_load(best, &info, NULL);
    assert_non_null(b);
    assert_int_equal(info.epoch, r.best_epoch);
    double *wb = weights(b), *wl = weights(m);
    int64_t n = nb_mlp_numel(m);
    assert_memory_equal(wb, w.best, sizeof(double) * (size_t)n);
    assert_memory_not_equal(wb, wl, sizeof(double) * (size_t)n);
    free(wb);
    free(wl);
    free(w.best);
    nb_mlp_free(b);
    nb_mlp_free(m);
    unlink(best);
    nb_dataset_free(&tr);
    nb_dataset_free(&val);
}

/* A callback stops the run: after the step it returned false. */
static bool stop_at_5(const nb_train_progress *p, void *user)
{
    (void)user;
    return p->step < 5;
}

static void test_callback_stops(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(40, 0.2, 3, &ds);
    nb_mlp *m = mlp(2, 3, 0.0);
    nb_train_config c = small_config();
    c.on_step = stop_at_5;
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_result r;
    assert_int_equal(nb_train(&md, &ds, &c, &r), NB_OK);
    assert_true(r.stopped && !r.early_stopped);
    assert_int_equal(r.steps, 5);
    nb_mlp_free(m);
    nb_dataset_free(&ds);
}

/* ---- resume from every checkpoint ---- */

typedef struct keeper {
    const char *path;
    char names[64][64];
    int n;
} keeper;

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, k, b), k);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

static bool keep_checkpoint(const nb_train_progress *p, void *user)
{
    keeper *k = user;
    if (p->checkpointed && k->n < 64) {
        snprintf(k->names[k->n], 64, "%s.%d", k->path, k->n);
        copy_file(k->path, k->names[k->n++]);
    }
    return true;
}

static bool keep_epoch_checkpoint(const nb_train_progress *p, void *user)
{
    (void)p;
    return keep_checkpoint(&(nb_train_progress){.checkpointed = true}, user);
}

static void test_resume_from_every_checkpoint(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(20, 0.2, 3, &ds); /* 60 rows, batch 16: 4 steps per epoch, the last one short */
    char path[] = "/tmp/nabla_trainer_ck_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    keeper k = {path, {{0}}, 0};
    nb_train_config c = small_config();
    c.run_config = "test run";
    c.checkpoint = path;
    c.save_every_steps = 3;
    c.on_step = keep_checkpoint;
    c.on_epoch = keep_epoch_checkpoint;
    c.user = &k;
    nb_mlp *ref = mlp(2, 3, 0.3); /* dropout: its generator is part of the run's state */
    nb_train_model md = nb_train_model_mlp(ref);
    assert_int_equal(nb_train(&md, &ds, &c, NULL), NB_OK);
    assert_true(k.n >= 6);
    char path2[] = "/tmp/nabla_trainer_ck2_XXXXXX";
    fd = mkstemp(path2);
    close(fd);
    for (int i = 0; i < k.n; i++) {
        nb_mlp *m = mlp(2, 3, 0.3);
        nb_train_model mm = nb_train_model_mlp(m);
        nb_train_config c2 = small_config();
        c2.run_config = "test run";
        c2.checkpoint = path2;
        c2.save_every_steps = 3;
        nb_trainer *t = nb_trainer_new(&mm, &ds, &c2);
        assert_non_null(t);
        assert_int_equal(nb_trainer_resume(t, k.names[i]), NB_OK);
        assert_int_equal(nb_trainer_run(t, NULL), NB_OK);
        nb_trainer_free(t);
        assert_bitwise(ref, m);
        nb_mlp_free(m);
    }
    /* another run configuration is refused, naming the first difference */
    nb_mlp *m = mlp(2, 3, 0.3);
    nb_train_model mm = nb_train_model_mlp(m);
    c.run_config = "test other";
    c.on_step = NULL;
    c.on_epoch = NULL;
    nb_trainer *t = nb_trainer_new(&mm, &ds, &c);
    assert_int_equal(nb_trainer_resume(t, k.names[0]), NB_ERR_STATE);
    assert_non_null(strstr(nb_last_error(), "other options ('run' there, 'other' now)"));
    assert_non_null(strstr(nb_last_error(), k.names[0]));
    nb_trainer_free(t);
    nb_mlp_free(m);
    for (int i = 0; i < k.n; i++)
        unlink(k.names[i]);
    unlink(path);
    unlink(path2);
    nb_mlp_free(ref);
    nb_dataset_free(&ds);
}

/* ---- a model of the caller's own: forward + parameter list ---- */

typedef struct linear_model {
    nb_tensor *W, *b; /* [2, 3], [3] */
} linear_model;

static nb_tensor *linear_forward(nb_graph *g, nb_tensor *x, void *ctx)
{
    linear_model *lm = ctx;
    return nb_add(g, nb_matmul(g, x, lm->W, false, false), lm->b);
}

static void test_own_forward(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(40, 0.2, 3, &ds);
    int64_t sw[2] = {2, 3}, sb[1] = {3};
    linear_model lm = {nb_tensor_zeros(NB_F32, 2, sw), nb_tensor_zeros(NB_F32, 1, sb)};
    nb_tensor_set_requires_grad(lm.W, true);
    nb_tensor_set_requires_grad(lm.b, true);
    nb_tensor *params[2] = {lm.W, lm.b};
    nb_train_model md = {.forward = linear_forward, .ctx = &lm, .params = params, .n_params = 2};
    nb_train_config c = small_config();
    c.epochs = 10;
    c.optim.lr = 0.05;
    c.val = &ds;
    nb_train_result r;
    assert_int_equal(nb_train(&md, &ds, &c, &r), NB_OK);
    /* from all-zero weights (loss log 3 = 1.0986) it learned something */
    print_message("own forward: val loss %.4f acc %.4f\n", r.last.val_loss, r.last.val_acc);
    assert_true(r.last.val_loss < 1.05);
    /* checkpoints need an nb_mlp */
    c.checkpoint = "/tmp/never-written.st";
    nb_trainer *t = nb_trainer_new(&md, &ds, &c);
    assert_int_equal(nb_trainer_resume(t, "/tmp/x.st"), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "only an nb_mlp"));
    nb_trainer_free(t);
    nb_tensor_free(lm.W);
    nb_tensor_free(lm.b);
    nb_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trainer_equals_hand_loop),
        cmocka_unit_test(test_accumulation_exact),
        cmocka_unit_test(test_data_parallel_callback),
        cmocka_unit_test(test_early_stop_and_best_model),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_resume_from_every_checkpoint),
        cmocka_unit_test(test_own_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
