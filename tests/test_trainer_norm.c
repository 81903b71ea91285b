/* test_trainer_norm.c - the gradient norm the trainer reports (nb_train_progress.grad_norm) without
 * clipping, however it is summed (the optimiser's pass computes it), against nb_clip_grad_norm's
 * one running sum:
 *   - a run without clipping and the same run with a clip bound no gradient reaches
 *     (nb_clip_grad_norm computes the norm, scales nothing) report the same norm at every step
 *     (relative 1e-12: only the order of the additions differs) and end with bitwise equal
 *     weights;
 *   - parameter sizes that are not multiples of a vector's lanes (14, 7, 21, 3 elements), so
 *     the tail of every tensor counts;
 *   - the f32 model nabla train makes (a model of f64 parameters needs f64 data, which the data
 *     sets are not). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

#define STEPS_MAX 64

typedef struct norms {
    double v[STEPS_MAX];
    int n;
} norms;

static bool record(const nb_train_progress *p, void *user)
{
    norms *r = user;
    if (r->n < STEPS_MAX)
        r->v[r->n++] = p->grad_norm;
    return true;
}

/* spirals (2 features, 3 classes) through 2-7-3: parameters of 14, 7, 21 and 3 elements */
static nb_mlp *run(nb_dtype dt, double clip, norms *r)
{
    nb_tensor *X, *y;
    nb_dataset ds;
    assert_int_equal(nb_spirals(40, 3, 0.1, 3, &X, &y), NB_OK);
    assert_int_equal(nb_dataset_from_tensors(X, y, 3, &ds), NB_OK);
    int64_t sizes[3] = {2, 7, 3};
    nb_mlp *m = nb_mlp_new(sizes, 3, NB_ACT_TANH, NB_INIT_DEFAULT, 0, dt, 7);
    assert_non_null(m);
    nb_train_config c = nb_train_defaults();
    c.epochs = 2;
    c.batch = 16; /* 120 rows: 8 steps an epoch, the last one of 8 rows */
    c.clip_norm = clip;
    c.on_step = record;
    c.user = r;
    memset(r, 0, sizeof *r);
    nb_train_model md = nb_train_model_mlp(m);
    nb_train_result res;
    assert_int_equal(nb_train(&md, &ds, &c, &res), NB_OK);
    assert_int_equal(r->n, 16);
    nb_dataset_free(&ds);
    nb_tensor_free(X);
    nb_tensor_free(y);
    return m;
}

static void check(nb_dtype dt)
{
    norms lanes, one_sum;
    nb_mlp *a = run(dt, 0, &lanes), *b = run(dt, 1e300, &one_sum);
    for (int i = 0; i < lanes.n; i++) {
        assert_true(lanes.v[i] > 0 && isfinite(lanes.v[i]));
        assert_true(fabs(lanes.v[i] - one_sum.v[i]) <= 1e-12 * one_sum.v[i]);
    }
    size_t es = dt == NB_F64 ? sizeof(double) : sizeof(float);
    for (int i = 0; i < nb_mlp_param_count(a); i++) {
        nb_tensor *p = nb_mlp_param(a, i, NULL, 0), *q = nb_mlp_param(b, i, NULL, 0);
        assert_int_equal(p->numel, q->numel);
        assert_memory_equal(p->data, q->data, es * (size_t)p->numel);
    }
    nb_mlp_free(a);
    nb_mlp_free(b);
}

static void norm_f32(void **state)
{
    (void)state;
    check(NB_F32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(norm_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
