/* test_train_fused.c - the trainer's fused head (nb_train_config.fused_head: the MLP's last
 * Linear and the loss as one nb_linear_cross_entropy, one pass) against the plain head (Linear,
 * then nb_cross_entropy):
 *   - one SGD step of lr 1 (the weight change is the gradient) on padded sequences
 *     (ignore_index), with label smoothing, class weights and z-loss, accumulation K = 1, 2, 4
 *     and a one-layer model: the same gradient within 1e-5 of its largest entry, the same
 *     reported loss (1e-6) and training accuracy;
 *   - twelve steps of SGD with momentum, dropout, clipping and accumulation: the same weights
 *     within 1e-5 of how far they moved;
 *   - data parallel (two ranks as threads) equals one process;
 *   - a fused run resumed from a checkpoint ends bitwise equal to the uninterrupted fused run,
 *     and the checkpoint resumes without the fused head too;
 *   - a model of the caller's own forward is refused.
 * Tolerances: the trainer runs f32 (its inputs are f32, and ops need one dtype). The two heads
 * make the same sums in another order (tiles of the vocabulary, blocks of rows), so each
 * gradient entry differs by rounding: a few f32 ulps of the largest term summed over a batch of
 * at most 48 rows, ~1e-6 of the largest entry; 1e-5 is the figure test_accum and test_trainer
 * use for f32 gradients. SGD keeps such differences linear (Adam would turn a gradient entry
 * at rounding level into a step of lr either way), so the weights are compared after SGD. A
 * dropped option (smoothing) moves the gradient by more than 1e-2, so the bound can fail. */
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

static nb_mlp *mlp3(int64_t in, int64_t out, double dropout)
{
    int64_t sizes[3] = {in, 16, out};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, dropout, NB_F32, 7);
    assert_non_null(m);
    return m;
}

/* all weights of m, as doubles (caller frees) */
static double *weights(const nb_mlp *m)
{
    int64_t off = 0;
    double *w = malloc(sizeof(double) * (size_t)nb_mlp_numel(m));
    assert_non_null(w);
    for (int i = 0; i < nb_mlp_param_count(m); i++) {
        nb_tensor *p = nb_mlp_param(m, i, NULL, 0);
        for (int64_t j = 0; j < p->numel; j++)
            w[off++] = ((float *)p->data)[j];
    }
    return w;
}

/* max |a - b| over max |a - base| (base NULL: over max |a|) */
static double max_rel(const double *a, const double *b, const double *base, int64_t n)
{
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(a[i] - (base ? base[i] : 0)));
        worst = fmax(worst, fabs(a[i] - b[i]));
    }
    return worst / scale;
}

/* ---- one step on padded sequences: the gradient ---- */

enum { SB = 8, ST = 6, SV = 5, SF = 2 * SV };

typedef struct seqfix {
    nb_dataset ds; /* X [SB, ST * SF], labels = sequence index */
    nb_tensor *Y;  /* [SB, ST], -100 on padding */
    nb_tensor *cw; /* class weights [SV] */
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
    int64_t sx[2] = {SB, ST * SF}, si[1] = {SB}, sw[1] = {SV};
    nb_tensor Xv, *ids = nb_tensor_zeros(NB_I32, 1, si);
    for (int b = 0; b < SB; b++)
        ((int32_t *)ids->data)[b] = b;
    nb_tensor_view(&Xv, NB_F32, 2, sx, X->data);
    assert_int_equal(nb_dataset_from_tensors(&Xv, ids, SB, &f->ds), NB_OK);
    f->Y = Y;
    f->cw = nb_tensor_zeros(NB_F32, 1, sw);
    for (int k = 0; k < SV; k++)
        ((float *)f->cw->data)[k] = 0.5f + 0.25f * (float)k;
    nb_tensor_free(X);
    nb_tensor_free(ids);
}

static void seq_free(seqfix *f)
{
    nb_dataset_free(&f->ds);
    nb_tensor_free(f->Y);
    nb_tensor_free(f->cw);
}

typedef struct variant {
    bool fused;
    int K;           /* micro-batches */
    double smooth;   /* label smoothing */
    bool weighted;   /* class weights */
    double z_loss;   /* PaLM's z-loss */
    int layers;      /* 1 (the head alone: h = x) or 2 */
    int world, rank; /* data parallel */
    nb_allreduce_fn ar;
    void *ctx;
} variant;

typedef struct outcome {
    double *grad; /* the weight change of one SGD step of lr 1 */
    double loss, acc;
    int64_t n;
} outcome;

static nb_train_config one_step_config(const seqfix *f, const variant *v)
{
    nb_train_config c = nb_train_defaults();
    c.epochs = 1;
    c.batch = SB;
    c.accum = v->K;
    c.shuffle = false;
    c.optim = nb_optim_defaults(NB_OPTIM_SGD);
    c.optim.lr = 1.0;
    c.schedule.kind = NB_SCHED_CONSTANT;
    c.schedule.warmup = 0;
    c.loss.label_smoothing = v->smooth;
    c.loss.weight = v->weighted ? f->cw : NULL;
    c.loss.z_loss = v->z_loss;
    c.tokens_per_row = ST;
    c.seq_targets = f->Y;
    c.fused_head = v->fused;
    c.world_size = v->world ? v->world : 1;
    c.rank = v->rank;
    c.allreduce_sum = v->ar;
    c.allreduce_ctx = v->ctx;
    return c;
}

static outcome seq_step(seqfix *f, const variant *v)
{
    int64_t s1[2] = {SF, SV};
    nb_mlp *m = v->layers == 1 ? nb_mlp_new(s1, 2, NB_ACT_TANH, NB_INIT_DEFAULT, 0, NB_F32, 7)
                               : mlp3(SF, SV, 0.0);
    assert_non_null(m);
    outcome o = {weights(m), 0, 0, nb_mlp_numel(m)};
    nb_train_config c = one_step_config(f, v);
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_result r;
    assert_int_equal(nb_train(&md, &f->ds, &c, &r), NB_OK);
    assert_int_equal(r.steps, 1);
    double *w1 = weights(m);
    for (int64_t i = 0; i < o.n; i++)
        o.grad[i] -= w1[i];
    free(w1);
    o.loss = r.last.train_loss;
    o.acc = r.last.train_acc;
    nb_mlp_free(m);
    return o;
}

static void test_fused_gradient_matches_plain(void **state)
{
    (void)state;
    seqfix f;
    seq_make(&f);
    const variant cases[] = {
        {.K = 1, .smooth = 0.1, .layers = 2},
        {.K = 2, .smooth = 0.1, .layers = 2},
        {.K = 4, .smooth = 0.1, .layers = 2},
        {.K = 2, .smooth = 0.0, .weighted = true, .z_loss = 1e-2, .layers = 2},
        {.K = 1, .smooth = 0.1, .weighted = true, .layers = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        variant v = cases[i];
        outcome plain = seq_step(&f, &v);
        v.fused = true;
        outcome fused = seq_step(&f, &v);
        double err = max_rel(plain.grad, fused.grad, NULL, plain.n);
        print_message("case %zu (K %d, smoothing %g, weights %d, z-loss %g, %d layers): gradient "
                      "max rel diff %.3g, loss %.9g / %.9g, acc %.4f / %.4f\n",
                      i, v.K, v.smooth, v.weighted, v.z_loss, v.layers, err, plain.loss, fused.loss,
                      plain.acc, fused.acc);
        assert_true(err <= 1e-5);
        assert_true(fabs(plain.loss - fused.loss) <= 1e-6 * fabs(plain.loss));
        assert_true(plain.acc == fused.acc);
        for (int64_t j = 0; j < plain.n; j++)
            assert_false(isnan(fused.grad[j]));
        free(plain.grad);
        free(fused.grad);
    }
    /* the bound tells an option dropped: smoothing 0 vs 0.1 moves the gradient by far more */
    variant a = {.K = 1, .smooth = 0.1, .layers = 2}, b = {.fused = true, .K = 1, .layers = 2};
    outcome oa = seq_step(&f, &a), ob = seq_step(&f, &b);
    double off = max_rel(oa.grad, ob.grad, NULL, oa.n);
    print_message("smoothing 0.1 vs 0: max rel diff %.3g\n", off);
    assert_true(off > 1e-2);
    free(oa.grad);
    free(ob.grad);
    seq_free(&f);
}

/* ---- data parallel: two ranks as two threads summing through a barrier ---- */

typedef struct world {
    pthread_barrier_t bar;
    void *slot[2];
} world;

typedef struct rank_arg {
    world *w;
    int rank;
    seqfix *f;
    outcome out;
} rank_arg;

static __thread int my_rank;

static nb_status thread_allreduce(void *buf, int64_t n, nb_dtype dt, void *ctx)
{
    world *w = ctx;
    w->slot[my_rank] = buf;
    pthread_barrier_wait(&w->bar);
    size_t es = nb_dtype_size(dt);
    char *sum = malloc(es * (size_t)(n ? n : 1));
    assert_non_null(sum);
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
    variant v = {.fused = true,
                 .K = 2,
                 .smooth = 0.1,
                 .layers = 2,
                 .world = 2,
                 .rank = a->rank,
                 .ar = thread_allreduce,
                 .ctx = a->w};
    a->out = seq_step(a->f, &v);
    return NULL;
}

static void test_fused_data_parallel(void **state)
{
    (void)state;
    seqfix f;
    seq_make(&f);
    variant v = {.fused = true, .K = 1, .smooth = 0.1, .layers = 2};
    outcome one = seq_step(&f, &v);
    world w;
    memset(&w, 0, sizeof w);
    pthread_barrier_init(&w.bar, NULL, 2);
    rank_arg a[2] = {{&w, 0, &f, {0}}, {&w, 1, &f, {0}}};
    pthread_t th[2];
    for (int r = 0; r < 2; r++)
        assert_int_equal(pthread_create(&th[r], NULL, rank_main, &a[r]), 0);
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w.bar);
    assert_memory_equal(a[0].out.grad, a[1].out.grad, sizeof(double) * (size_t)one.n);
    double err = max_rel(one.grad, a[0].out.grad, NULL, one.n);
    print_message("fused, 2 ranks x accum 2 vs 1 process: max rel diff %.3g, acc %.4f / %.4f\n",
                  err, a[0].out.acc, one.acc);
    assert_true(err <= 1e-5);
    assert_true(a[0].out.acc == one.acc);
    free(one.grad);
    free(a[0].out.grad);
    free(a[1].out.grad);
    seq_free(&f);
}

/* ---- several steps on spirals: the weights ---- */

static void spirals(int64_t n, uint64_t seed, nb_dataset *ds)
{
    nb_tensor *X, *y;
    assert_int_equal(nb_spirals(n, 3, 0.2, seed, &X, &y), NB_OK);
    assert_int_equal(nb_dataset_from_tensors(X, y, 3, ds), NB_OK);
    nb_tensor_free(X);
    nb_tensor_free(y);
}

/* SGD with momentum, dropout (its generator is drawn from in the hidden layers either way),
 * clipping, accumulation: 3 epochs of 4 steps on 60 rows. */
static nb_train_config sgd_config(bool fused)
{
    nb_train_config c = nb_train_defaults();
    c.epochs = 3;
    c.batch = 16;
    c.accum = 2;
    c.seed = 5;
    c.optim = nb_optim_defaults(NB_OPTIM_SGD);
    c.optim.lr = 0.1;
    c.optim.momentum = 0.9;
    c.schedule.warmup = 4;
    c.clip_norm = 0.5;
    c.fused_head = fused;
    return c;
}

static void test_fused_steps_match_plain(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(20, 3, &ds);
    nb_mlp *p = mlp3(2, 3, 0.2), *q = mlp3(2, 3, 0.2);
    double *w0 = weights(p);
    nb_train_model mp = nb_train_model_mlp(p), mq = nb_train_model_mlp(q);
    nb_train_config cp = sgd_config(false), cq = sgd_config(true);
    nb_train_result rp, rq;
    assert_int_equal(nb_train(&mp, &ds, &cp, &rp), NB_OK);
    assert_int_equal(nb_train(&mq, &ds, &cq, &rq), NB_OK);
    assert_int_equal(rq.steps, 12);
    double *wp = weights(p), *wq = weights(q);
    double err = max_rel(wp, wq, w0, nb_mlp_numel(p));
    print_message("12 SGD steps: weights max diff %.3g of the largest move; last epoch loss "
                  "%.7f / %.7f, acc %.4f / %.4f\n",
                  err, rp.last.train_loss, rq.last.train_loss, rp.last.train_acc,
                  rq.last.train_acc);
    assert_true(err <= 1e-5);
    assert_true(fabs(rp.last.train_loss - rq.last.train_loss) <= 1e-5 * rp.last.train_loss);
    assert_true(rp.last.train_acc == rq.last.train_acc);
    free(w0);
    free(wp);
    free(wq);
    nb_mlp_free(p);
    nb_mlp_free(q);
    nb_dataset_free(&ds);
}

/* ---- resume ---- */

static bool stop_at_5(const nb_train_progress *p, void *user)
{
    (void)user;
    return p->step < 5;
}

static void test_fused_resume(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(20, 3, &ds);
    char path[] = "/tmp/nabla_fused_ck_XXXXXX", path2[] = "/tmp/nabla_fused_ck2_XXXXXX";
    int fd = mkstemp(path), fd2 = mkstemp(path2);
    assert_true(fd >= 0 && fd2 >= 0);
    close(fd);
    close(fd2);
    /* the uninterrupted fused run */
    nb_mlp *ref = mlp3(2, 3, 0.2);
    nb_train_model mr = nb_train_model_mlp(ref);
    nb_train_config c = sgd_config(true);
    assert_int_equal(nb_train(&mr, &ds, &c, NULL), NB_OK);
    /* the same run stopped after step 5, its checkpoint written there */
    nb_mlp *a = mlp3(2, 3, 0.2);
    nb_train_model ma = nb_train_model_mlp(a);
    c.checkpoint = path;
    c.save_every_steps = 5;
    c.on_step = stop_at_5;
    nb_train_result r;
    assert_int_equal(nb_train(&ma, &ds, &c, &r), NB_OK);
    assert_true(r.stopped);
    assert_int_equal(r.steps, 5);
    /* resumed fused: bitwise the uninterrupted run */
    nb_mlp *b = mlp3(2, 3, 0.2);
    nb_train_model mb = nb_train_model_mlp(b);
    c.checkpoint = path2;
    c.on_step = NULL;
    nb_trainer *t = nb_trainer_new(&mb, &ds, &c);
    assert_non_null(t);
    assert_int_equal(nb_trainer_resume(t, path), NB_OK);
    assert_int_equal(nb_trainer_run(t, NULL), NB_OK);
    nb_trainer_free(t);
    for (int i = 0; i < nb_mlp_param_count(ref); i++) {
        nb_tensor *x = nb_mlp_param(ref, i, NULL, 0), *y = nb_mlp_param(b, i, NULL, 0);
        assert_memory_equal(x->data, y->data, sizeof(float) * (size_t)x->numel);
    }
    /* the same checkpoint resumed with the plain head: the same format, the same run up to
     * rounding */
    nb_mlp *d = mlp3(2, 3, 0.2);
    nb_train_model md = nb_train_model_mlp(d);
    c.fused_head = false;
    t = nb_trainer_new(&md, &ds, &c);
    assert_non_null(t);
    assert_int_equal(nb_trainer_resume(t, path), NB_OK);
    assert_int_equal(nb_trainer_run(t, NULL), NB_OK);
    nb_trainer_free(t);
    nb_mlp *fresh = mlp3(2, 3, 0.2);
    double *w0 = weights(fresh), *wr = weights(ref), *wd = weights(d);
    double err = max_rel(wr, wd, w0, nb_mlp_numel(ref));
    print_message("fused checkpoint resumed plain: max diff %.3g of the largest move\n", err);
    assert_true(err <= 1e-5);
    free(w0);
    free(wr);
    free(wd);
    nb_mlp_free(fresh);
    nb_mlp_free(d);
    nb_mlp_free(b);
    nb_mlp_free(a);
    nb_mlp_free(ref);
    unlink(path);
    unlink(path2);
    nb_dataset_free(&ds);
}

/* ---- a forward of the caller's own has no last layer to fuse ---- */

static nb_tensor *identity_forward(nb_graph *g, nb_tensor *x, void *ctx)
{
    (void)ctx;
    return nb_scale(g, x, 1.0);
}

static void test_fused_refuses_own_forward(void **state)
{
    (void)state;
    nb_dataset ds;
    spirals(10, 3, &ds);
    int64_t sb[1] = {3};
    nb_tensor *b = nb_tensor_zeros(NB_F32, 1, sb);
    nb_tensor_set_requires_grad(b, true);
    nb_tensor *params[1] = {b};
    nb_train_model md = {.forward = identity_forward, .params = params, .n_params = 1};
    nb_train_config c = nb_train_defaults();
    c.fused_head = true;
    nb_error(NB_OK, "none");
    assert_null(nb_trainer_new(&md, &ds, &c));
    assert_int_equal(nb_last_status(), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "fused_head needs an nb_mlp model"));
    c.fused_head = false;
    nb_trainer *t = nb_trainer_new(&md, &ds, &c);
    assert_non_null(t); /* the same model without the fused head is fine */
    nb_trainer_free(t);
    nb_tensor_free(b);
    nb_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_gradient_matches_plain),
        cmocka_unit_test(test_fused_data_parallel),
        cmocka_unit_test(test_fused_steps_match_plain),
        cmocka_unit_test(test_fused_resume),
        cmocka_unit_test(test_fused_refuses_own_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
