/* tests/test_optim.c - optimisers, learning-rate schedules and gradient clipping (nabla/optim.h).
 *
 * What is checked, and against what:
 *   - 6-step trajectories of SGD (plain, momentum, dampening, Nesterov, weight decay), Adam
 *     (defaults, weight decay, betas (0.5, 0.6) eps 1e-3) and AdamW against torch.optim in
 *     float64 (golden files from scripts/gen_optim_golden.py): f64 parameters at 1e-12 relative,
 *     f32 parameters (same, f32-exact inputs) at 1e-5; the state buffers after step 6 against
 *     torch's optimizer.state (momentum_buffer, exp_avg, exp_avg_sq);
 *   - checkpointing: 3 steps, state and step count copied into a fresh optimiser, 3 more steps in
 *     both must give bitwise-identical parameters and state; two controls (nothing restored, and
 *     state without the step count) must differ, which shows both pieces are needed;
 *   - bad configurations and parameters: NULL, NB_ERR_ARG, a message naming the value;
 *   - nb_clip_grad_norm against torch.nn.utils.clip_grad_norm_ (above, below, just below
 *     max_norm, +inf gradient) and by hand (zero and NaN gradients, bad max_norm);
 *   - nb_schedule_lr against torch.optim.lr_scheduler (StepLR, LambdaLR warm-up, SequentialLR,
 *     CosineAnnealingLR) at 1e-12, and the floor after a cosine schedule ends;
 *   - nb_optim_defaults against torch's defaults, the kind parsers.
 *
 * Layout of the golden rows: two parameters, P0 [3,4] and P1 [5], flattened and concatenated
 * (17 values, P0 row-major first).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

#ifndef NB_TEST_DATA_DIR
#error "NB_TEST_DATA_DIR must name the tests/data folder"
#endif

#define NPARAM 2 /* parameters per optimiser */
#define NFLAT 17 /* 3*4 + 5 values in a golden row */
#define STEPS 6  /* steps in a golden trajectory */

static const int PARAM_NDIM[NPARAM] = {2, 1};
static const int64_t PARAM_SHAPE[NPARAM][2] = {{3, 4}, {5, 0}};
static const int64_t PARAM_OFFSET[NPARAM] = {0, 12};

/* ---- helpers ---------------------------------------------------------------------------- */

static nb_tensor *load_golden(const char *file, int64_t rows, int64_t cols)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", NB_TEST_DATA_DIR, file);
    nb_tensor *t = nb_npy_load(path);
    if (!t)
        print_error("cannot load %s: %s\n", path, nb_last_error());
    assert_non_null(t);
    assert_int_equal(t->dtype, NB_F64);
    if (rows > 0) {
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->shape[0], rows);
        assert_int_equal(t->shape[1], cols);
    } else {
        assert_int_equal(t->ndim, 1);
        assert_int_equal(t->shape[0], cols);
    }
    return t;
}

static const double *f64_data(const nb_tensor *t)
{
    return (const double *)t->data;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t k = 0;
        while (k < n && p[k] && tolower((unsigned char)p[k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == n)
            return true;
    }
    return n == 0;
}

/* Compares got with ref: NaN must meet NaN, infinities must be equal, finite values must be
 * within tol. Prints and returns 1 on a mismatch. */
static int mismatch(const char *what, int64_t i, double got, double ref, double tol)
{
    if (isnan(ref)) {
        if (isnan(got))
            return 0;
    } else if (isinf(ref)) {
        if (got == ref)
            return 0;
    } else if (isfinite(got) && fabs(got - ref) <= tol) {
        return 0;
    }
    print_error("%s[%lld]: got %.17g, expected %.17g (|diff| %.3g > tol %.3g)\n", what,
                (long long)i, got, ref, fabs(got - ref), tol);
    return 1;
}

/* The two parameters, f32 or f64, with gradients, set to a golden row. */
static void make_params(nb_tensor *p[NPARAM], nb_dtype dt, const double *row)
{
    for (int k = 0; k < NPARAM; k++) {
        p[k] = nb_tensor_zeros(dt, PARAM_NDIM[k], PARAM_SHAPE[k]);
        assert_non_null(p[k]);
        assert_int_equal(nb_tensor_set_requires_grad(p[k], true), NB_OK);
        for (int64_t j = 0; j < p[k]->numel; j++)
            nb_tensor_set(p[k], j, row[PARAM_OFFSET[k] + j]);
    }
}

static void free_params(nb_tensor *p[NPARAM])
{
    for (int k = 0; k < NPARAM; k++)
        nb_tensor_free(p[k]);
}

/* Writes a golden row into the gradients (f64 for f64 parameters, f32 for f32 ones). */
static void set_grads(nb_tensor *const p[NPARAM], const double *row)
{
    for (int k = 0; k < NPARAM; k++)
        for (int64_t j = 0; j < p[k]->numel; j++) {
            double v = row[PARAM_OFFSET[k] + j];
            if (p[k]->dtype == NB_F64)
                ((double *)p[k]->grad)[j] = v;
            else
                ((float *)p[k]->grad)[j] = (float)v;
        }
}

static double grad_get(const nb_tensor *p, int64_t j)
{
    return p->dtype == NB_F64 ? ((const double *)p->grad)[j] : (double)((const float *)p->grad)[j];
}

/* Relative comparison of the parameters with a golden row (the golden parameters all have
 * |value| > 0.25, so relative error is meaningful; see the script). */
static int compare_params(const char *what, nb_tensor *const p[NPARAM], const double *row,
                          double rtol)
{
    int fails = 0;
    for (int k = 0; k < NPARAM; k++)
        for (int64_t j = 0; j < p[k]->numel; j++) {
            double ref = row[PARAM_OFFSET[k] + j];
            fails +=
                mismatch(what, PARAM_OFFSET[k] + j, nb_tensor_get(p[k], j), ref, rtol * fabs(ref));
        }
    return fails;
}

static nb_optim *new_optim(const nb_optim_config *cfg, nb_tensor *const p[NPARAM])
{
    nb_optim *o = nb_optim_new(cfg, p, NPARAM);
    if (!o)
        print_error("nb_optim_new: %s\n", nb_last_error());
    assert_non_null(o);
    return o;
}

static void step_ok(nb_optim *o)
{
    nb_status s = nb_optim_step(o);
    if (s != NB_OK)
        print_error("nb_optim_step: %s (%s)\n", nb_status_name(s), nb_last_error());
    assert_int_equal(s, NB_OK);
}

/* ---- the configurations of the golden trajectories (same names as the script) ----------- */

typedef struct optim_case {
    const char *name;
    nb_optim_config cfg;
    char label[3][64]; /* cmocka test names */
} optim_case;

#define NCASES 9
static optim_case g_cases[NCASES];

static nb_optim_config sgd(double lr, double momentum, double dampening, bool nesterov, double wd)
{
    nb_optim_config c = nb_optim_defaults(NB_OPTIM_SGD);
    c.lr = lr;
    c.momentum = momentum;
    c.dampening = dampening;
    c.nesterov = nesterov;
    c.weight_decay = wd;
    return c;
}

static nb_optim_config adam(nb_optim_kind kind, double lr, double b1, double b2, double eps,
                            double wd)
{
    nb_optim_config c = nb_optim_defaults(kind);
    c.lr = lr;
    c.beta1 = b1;
    c.beta2 = b2;
    c.eps = eps;
    c.weight_decay = wd;
    return c;
}

static void build_cases(void)
{
    int n = 0;
    g_cases[n++] = (optim_case){"sgd", sgd(0.1, 0.0, 0.0, false, 0.0), {{0}}};
    g_cases[n++] = (optim_case){"sgd_momentum", sgd(0.1, 0.9, 0.0, false, 0.0), {{0}}};
    g_cases[n++] = (optim_case){"sgd_dampening", sgd(0.1, 0.9, 0.5, false, 0.0), {{0}}};
    g_cases[n++] = (optim_case){"sgd_nesterov", sgd(0.1, 0.9, 0.0, true, 0.0), {{0}}};
    g_cases[n++] = (optim_case){"sgd_momentum_wd", sgd(0.1, 0.9, 0.0, false, 0.01), {{0}}};
    /* Adam with nabla's defaults: that they are torch's is checked in test_defaults. */
    g_cases[n++] = (optim_case){"adam", nb_optim_defaults(NB_OPTIM_ADAM), {{0}}};
    g_cases[n++] = (optim_case){"adam_wd", adam(NB_OPTIM_ADAM, 0.01, 0.9, 0.999, 1e-8, 0.1), {{0}}};
    g_cases[n++] = (optim_case){"adamw", adam(NB_OPTIM_ADAMW, 0.01, 0.9, 0.999, 1e-8, 0.1), {{0}}};
    g_cases[n++] =
        (optim_case){"adam_betas", adam(NB_OPTIM_ADAM, 0.01, 0.5, 0.6, 1e-3, 0.0), {{0}}};
    assert_int_equal(n, NCASES);
}

/* ---- golden trajectories ---------------------------------------------------------------- */

/* Buffer names as in torch's optimizer.state, in the row order of optim_<NAME>_state.npy. */
static int state_row(nb_optim_kind kind, const char *name)
{
    static const char *const sgd_rows[] = {"momentum_buffer"};
    static const char *const adam_rows[] = {"exp_avg", "exp_avg_sq"};
    const char *const *rows = kind == NB_OPTIM_SGD ? sgd_rows : adam_rows;
    int nrows = kind == NB_OPTIM_SGD ? 1 : 2;
    size_t len = strcspn(name, ".");
    for (int r = 0; r < nrows; r++)
        if (strlen(rows[r]) == len && !strncmp(rows[r], name, len))
            return r;
    return -1;
}

/* Compares the optimiser's state with torch's after the last step, relative to each entry (the
 * golden state entries all have |value| > 1e-4; see the script). */
static int compare_state(const optim_case *c, nb_optim *o, nb_tensor *const p[NPARAM], double rtol)
{
    const bool stateless = c->cfg.kind == NB_OPTIM_SGD && c->cfg.momentum == 0.0;
    if (stateless) {
        assert_int_equal(nb_optim_state_count(o), 0);
        return 0;
    }
    const int64_t nbuf = c->cfg.kind == NB_OPTIM_SGD ? 1 : 2;
    char file[128], what[128];
    snprintf(file, sizeof file, "optim_%s_state.npy", c->name);
    nb_tensor *ref = load_golden(file, nbuf, NFLAT);
    assert_int_equal(nb_optim_state_count(o), nbuf * NPARAM);
    bool seen[2][NPARAM] = {{false}};
    int fails = 0;
    for (int i = 0; i < nb_optim_state_count(o); i++) {
        const char *name = NULL;
        nb_tensor *t = nb_optim_state_tensor(o, i, &name);
        assert_non_null(t);
        assert_non_null(name);
        int r = state_row(c->cfg.kind, name);
        if (r < 0)
            print_error("[%s] state tensor %d has an unknown name \"%s\"\n", c->name, i, name);
        assert_true(r >= 0);
        /* Which parameter: the two have different shapes. */
        int k = nb_shape_equal(t, p[0]) ? 0 : nb_shape_equal(t, p[1]) ? 1 : -1;
        assert_true(k >= 0);
        assert_int_equal(t->dtype, p[k]->dtype);
        assert_false(seen[r][k]);
        seen[r][k] = true;
        const double *row = f64_data(ref) + r * NFLAT + PARAM_OFFSET[k];
        snprintf(what, sizeof what, "[%s %s] state %s of P%d", c->name, nb_dtype_name(p[k]->dtype),
                 name, k);
        for (int64_t j = 0; j < t->numel; j++)
            fails += mismatch(what, j, nb_tensor_get(t, j), row[j], rtol * fabs(row[j]));
    }
    nb_tensor_free(ref);
    return fails;
}

static void check_trajectory(const optim_case *c, nb_dtype dt, double rtol)
{
    char file[128], what[128];
    snprintf(file, sizeof file, "optim_%s.npy", c->name);
    nb_tensor *traj = load_golden(file, STEPS + 1, NFLAT);
    nb_tensor *grads = load_golden("optim_grads.npy", STEPS, NFLAT);
    nb_tensor *p[NPARAM];
    make_params(p, dt, f64_data(traj));
    nb_optim *o = new_optim(&c->cfg, p);
    assert_int_equal(nb_optim_step_count(o), 0);
    int fails = 0;
    for (int s = 0; s < STEPS; s++) {
        set_grads(p, f64_data(grads) + s * NFLAT);
        step_ok(o);
        assert_int_equal(nb_optim_step_count(o), s + 1);
        snprintf(what, sizeof what, "[%s %s] params after step %d", c->name, nb_dtype_name(dt),
                 s + 1);
        fails += compare_params(what, p, f64_data(traj) + (s + 1) * NFLAT, rtol);
    }
    fails += compare_state(c, o, p, rtol);
    nb_optim_free(o);
    free_params(p);
    nb_tensor_free(traj);
    nb_tensor_free(grads);
    assert_int_equal(fails, 0);
}

static void test_golden_f64(void **state)
{
    check_trajectory(*state, NB_F64, 1e-12);
}
/* f32 parameters and state, updated in double: the inputs are exact in f32, so the only
 * differences from the f64 golden values are the roundings of p, m, v to f32 after each step
 * (about 6e-8 relative each). */
static void test_golden_f32(void **state)
{
    check_trajectory(*state, NB_F32, 1e-5);
}

/* ---- checkpoint: state and step count restored into a fresh optimiser ------------------- */

static void copy_data(nb_tensor *dst, const nb_tensor *src)
{
    assert_true(nb_shape_equal(dst, src));
    assert_int_equal(dst->dtype, src->dtype);
    memcpy(dst->data, src->data, (size_t)src->numel * nb_dtype_size(src->dtype));
}

static bool bitwise_equal(const nb_tensor *a, const nb_tensor *b)
{
    return nb_shape_equal(a, b) && a->dtype == b->dtype &&
           !memcmp(a->data, b->data, (size_t)a->numel * nb_dtype_size(a->dtype));
}

/* Largest relative difference between two parameter sets. */
static double max_rel_diff(nb_tensor *const a[NPARAM], nb_tensor *const b[NPARAM])
{
    double d = 0.0;
    for (int k = 0; k < NPARAM; k++)
        for (int64_t j = 0; j < a[k]->numel; j++) {
            double x = nb_tensor_get(a[k], j), y = nb_tensor_get(b[k], j);
            d = fmax(d, fabs(x - y) / fabs(x));
        }
    return d;
}

static void check_restore(const optim_case *c, nb_dtype dt)
{
    char file[128], what[128];
    snprintf(file, sizeof file, "optim_%s.npy", c->name);
    nb_tensor *traj = load_golden(file, STEPS + 1, NFLAT);
    nb_tensor *grads = load_golden("optim_grads.npy", STEPS, NFLAT);
    const double *g = f64_data(grads);

    /* a: runs all 6 steps. b: gets a's parameters, state and step count after step 3.
     * c0: a's parameters only. d: parameters and state but not the step count. */
    nb_tensor *pa[NPARAM], *pb[NPARAM], *pc[NPARAM], *pd[NPARAM];
    make_params(pa, dt, f64_data(traj));
    nb_optim *a = new_optim(&c->cfg, pa);
    for (int s = 0; s < 3; s++) {
        set_grads(pa, g + s * NFLAT);
        step_ok(a);
    }
    assert_int_equal(nb_optim_step_count(a), 3);

    make_params(pb, dt, f64_data(traj));
    make_params(pc, dt, f64_data(traj));
    make_params(pd, dt, f64_data(traj));
    for (int k = 0; k < NPARAM; k++) {
        copy_data(pb[k], pa[k]);
        copy_data(pc[k], pa[k]);
        copy_data(pd[k], pa[k]);
    }
    nb_optim *b = new_optim(&c->cfg, pb), *c0 = new_optim(&c->cfg, pc), *d = new_optim(&c->cfg, pd);
    const int ns = nb_optim_state_count(a);
    assert_int_equal(nb_optim_state_count(b), ns);
    for (int i = 0; i < ns; i++) {
        const char *na = NULL, *nb = NULL;
        nb_tensor *ta = nb_optim_state_tensor(a, i, &na);
        nb_tensor *tb = nb_optim_state_tensor(b, i, &nb);
        nb_tensor *td = nb_optim_state_tensor(d, i, NULL);
        assert_non_null(ta);
        assert_non_null(tb);
        assert_non_null(td);
        assert_string_equal(na, nb);
        assert_true(ta != tb);
        copy_data(tb, ta);
        copy_data(td, ta);
    }
    assert_null(nb_optim_state_tensor(a, ns, NULL));
    assert_null(nb_optim_state_tensor(a, -1, NULL));
    nb_optim_set_step_count(b, nb_optim_step_count(a));
    assert_int_equal(nb_optim_step_count(b), 3);

    for (int s = 3; s < STEPS; s++) {
        set_grads(pa, g + s * NFLAT);
        set_grads(pb, g + s * NFLAT);
        set_grads(pc, g + s * NFLAT);
        set_grads(pd, g + s * NFLAT);
        step_ok(a);
        step_ok(b);
        step_ok(c0);
        step_ok(d);
    }
    assert_int_equal(nb_optim_step_count(b), STEPS);
    for (int k = 0; k < NPARAM; k++)
        if (!bitwise_equal(pa[k], pb[k])) {
            print_error("[%s %s] P%d after a restore differs from the uninterrupted run "
                        "(max rel diff %.3g)\n",
                        c->name, nb_dtype_name(dt), k, max_rel_diff(pa, pb));
            fail();
        }
    for (int i = 0; i < ns; i++)
        assert_true(
            bitwise_equal(nb_optim_state_tensor(a, i, NULL), nb_optim_state_tensor(b, i, NULL)));
    /* The uninterrupted run is still torch's. */
    snprintf(what, sizeof what, "[%s %s] restore run, step 6", c->name, nb_dtype_name(dt));
    assert_int_equal(
        compare_params(what, pa, f64_data(traj) + STEPS * NFLAT, dt == NB_F64 ? 1e-12 : 1e-5), 0);
    /* Controls: with state, leaving out the buffers or the step count changes the result
     * (SGD: the first-step rule b = g; Adam: zero moments, or bias corrections for t = 1..3). */
    if (ns > 0) {
        double dc = max_rel_diff(pa, pc), dd = max_rel_diff(pa, pd);
        if (!(dc > 1e-6 && dd > 1e-6))
            print_error("[%s %s] controls: no restore differs by %.3g, no step count by %.3g\n",
                        c->name, nb_dtype_name(dt), dc, dd);
        assert_true(dc > 1e-6);
        assert_true(dd > 1e-6);
    }
    nb_optim_free(a);
    nb_optim_free(b);
    nb_optim_free(c0);
    nb_optim_free(d);
    free_params(pa);
    free_params(pb);
    free_params(pc);
    free_params(pd);
    nb_tensor_free(traj);
    nb_tensor_free(grads);
}

static void test_restore(void **state)
{
    check_restore(*state, NB_F64);
    check_restore(*state, NB_F32);
}

/* State tensors are named "<buffer>.<parameter index>" (optim.h), so that a checkpoint keyed by
 * name holds one entry per tensor. */
static void test_state_names(void **state)
{
    (void)state;
    nb_tensor *grads = load_golden("optim_grads.npy", STEPS, NFLAT);
    nb_tensor *p[NPARAM];
    make_params(p, NB_F64, f64_data(grads)); /* any values */
    const nb_optim_config cfgs[2] = {sgd(0.1, 0.9, 0.0, false, 0.0),
                                     nb_optim_defaults(NB_OPTIM_ADAM)};
    int fails = 0;
    for (int c = 0; c < 2; c++) {
        nb_optim *o = new_optim(&cfgs[c], p);
        for (int i = 0; i < nb_optim_state_count(o); i++) {
            const char *name = NULL;
            nb_tensor *t = nb_optim_state_tensor(o, i, &name);
            assert_non_null(t);
            assert_non_null(name);
            int k = nb_shape_equal(t, p[0]) ? 0 : 1;
            int r = state_row(cfgs[c].kind, name);
            char want[64];
            snprintf(want, sizeof want, "%s.%d",
                     cfgs[c].kind == NB_OPTIM_SGD ? "momentum_buffer"
                     : r == 1                     ? "exp_avg_sq"
                                                  : "exp_avg",
                     k);
            if (r < 0 || strcmp(name, want) != 0) {
                print_error("%s state tensor %d (parameter %d): name \"%s\", expected \"%s\"\n",
                            nb_optim_kind_name(cfgs[c].kind), i, k, name, want);
                fails++;
            }
        }
        nb_optim_free(o);
    }
    free_params(p);
    nb_tensor_free(grads);
    assert_int_equal(fails, 0);
}

/* ---- bad configurations and parameters -------------------------------------------------- */

typedef struct bad_config {
    const char *label;
    nb_optim_config cfg;
    const char *words[2]; /* must appear in the message (case-insensitive) */
} bad_config;

static int expect_rejected(const char *label, nb_optim *o, const char *const *words, int nwords)
{
    const char *msg = nb_last_error();
    bool ok = o == NULL && nb_last_status() == NB_ERR_ARG && msg && msg[0];
    for (int i = 0; ok && i < nwords; i++)
        ok = !words[i] || contains_ci(msg, words[i]);
    if (!ok) {
        print_error("bad config '%s': %s, status %s, message \"%s\"", label,
                    o ? "accepted" : "rejected", nb_status_name(nb_last_status()),
                    msg ? msg : "(null)");
        for (int i = 0; i < nwords; i++)
            if (words[i])
                print_error(" [needs \"%s\"]", words[i]);
        print_error("\n");
    }
    nb_optim_free(o);
    return !ok;
}

static void test_bad_configs(void **state)
{
    (void)state;
    const nb_optim_config S = sgd(0.1, 0.0, 0.0, false, 0.0);
    const nb_optim_config A = nb_optim_defaults(NB_OPTIM_ADAM);
    const nb_optim_config W = nb_optim_defaults(NB_OPTIM_ADAMW);
    bad_config bad[32];
    int nb = 0;
#define BAD(lbl, base, field, value, w1, w2)                                                       \
    do {                                                                                           \
        bad[nb] = (bad_config){lbl, base, {w1, w2}};                                               \
        bad[nb].cfg.field = value;                                                                 \
        nb++;                                                                                      \
    } while (0)
    BAD("negative lr (sgd)", S, lr, -0.1, "learning rate", "-0.1");
    BAD("negative lr (adam)", A, lr, -1e-3, "learning rate", "-0.001");
    BAD("NaN lr", S, lr, NAN, "learning rate", "nan");
    BAD("infinite lr", A, lr, INFINITY, "learning rate", "inf");
    BAD("negative weight decay", S, weight_decay, -0.01, "weight decay", "-0.01");
    BAD("momentum 1", S, momentum, 1.0, "momentum", "1");
    BAD("momentum 1.5", S, momentum, 1.5, "momentum", "1.5");
    BAD("negative momentum", S, momentum, -0.5, "momentum", "-0.5");
    BAD("NaN momentum", S, momentum, NAN, "momentum", "nan");
    BAD("dampening 1.5", S, dampening, 1.5, "dampening", "1.5");
    BAD("Nesterov without momentum", S, nesterov, true, "nesterov", "momentum");
    BAD("beta1 1", A, beta1, 1.0, "beta", "1");
    BAD("beta2 1", A, beta2, 1.0, "beta", "1");
    BAD("beta2 1.5", W, beta2, 1.5, "beta", "1.5");
    BAD("negative beta1", W, beta1, -0.1, "beta", "-0.1");
    BAD("NaN beta2", A, beta2, NAN, "beta", "nan");
    BAD("negative eps", A, eps, -1e-8, "eps", "-1e-08");
    BAD("unknown kind", S, kind, (nb_optim_kind)7, "kind", "7");
    /* Nesterov with dampening: torch refuses it too. */
    bad[nb] = (bad_config){
        "Nesterov with dampening", sgd(0.1, 0.9, 0.5, true, 0.0), {"nesterov", "dampening"}};
    nb++;
#undef BAD
    nb_tensor *grads = load_golden("optim_grads.npy", STEPS, NFLAT);
    nb_tensor *p[NPARAM];
    make_params(p, NB_F64, f64_data(grads));
    int fails = 0;
    for (int i = 0; i < nb; i++) {
        nb_clear_error();
        fails +=
            expect_rejected(bad[i].label, nb_optim_new(&bad[i].cfg, p, NPARAM), bad[i].words, 2);
    }

    /* Edge values torch accepts are accepted too. */
    const nb_optim_config good[] = {
        sgd(0.0, 0.0, 0.0, false, 0.0),
        sgd(0.1, 0.999, 1.0, false, 0.5),
        sgd(0.1, 0.5, 0.0, true, 0.0),
        adam(NB_OPTIM_ADAM, 0.0, 0.0, 0.0, 0.0, 0.0),
        adam(NB_OPTIM_ADAMW, 1.0, 0.999999, 0.999999, 1.0, 1.0),
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        nb_optim *o = nb_optim_new(&good[i], p, NPARAM);
        if (!o) {
            print_error("good config %zu rejected: %s\n", i, nb_last_error());
            fails++;
        }
        nb_optim_free(o);
    }

    /* Parameters: without requires_grad, not a float tensor, f16, NULL; NULL config. */
    const char *const w_param1[2] = {"requires_grad", "1"};
    const char *const w_param0[2] = {"parameter 0", NULL};
    const char *const w_null[2] = {"NULL", NULL};
    nb_tensor *plain = nb_tensor_zeros(NB_F64, 1, PARAM_SHAPE[1]);
    nb_tensor *ints = nb_tensor_zeros(NB_I32, 1, PARAM_SHAPE[1]);
    nb_tensor *half = nb_tensor_zeros(NB_F16, 1, PARAM_SHAPE[1]);
    assert_non_null(plain);
    assert_non_null(ints);
    assert_non_null(half);
    assert_int_equal(nb_tensor_set_requires_grad(half, true), NB_OK);
    nb_tensor *mixed[NPARAM] = {p[0], plain};
    nb_clear_error();
    fails += expect_rejected("parameter without requires_grad", nb_optim_new(&S, mixed, NPARAM),
                             w_param1, 2);
    nb_tensor *bad_ints[NPARAM] = {ints, p[1]};
    nb_clear_error();
    fails += expect_rejected("i32 parameter", nb_optim_new(&A, bad_ints, NPARAM), w_param0, 2);
    nb_tensor *bad_half[NPARAM] = {half, p[1]};
    nb_clear_error();
    fails += expect_rejected("f16 parameter", nb_optim_new(&A, bad_half, NPARAM), w_param0, 2);
    nb_tensor *nulls[NPARAM] = {NULL, p[1]};
    nb_clear_error();
    fails += expect_rejected("NULL parameter", nb_optim_new(&A, nulls, NPARAM), w_param0, 2);
    nb_clear_error();
    fails += expect_rejected("NULL config", nb_optim_new(NULL, p, NPARAM), w_null, 2);
    nb_clear_error();
    fails += expect_rejected("NULL parameter list", nb_optim_new(&S, NULL, NPARAM), w_null, 2);
    assert_int_equal(nb_optim_step(NULL), NB_ERR_ARG);

    nb_tensor_free(plain);
    nb_tensor_free(ints);
    nb_tensor_free(half);
    free_params(p);
    nb_tensor_free(grads);
    assert_int_equal(fails, 0);
}

/* A parameter whose requires_grad was switched off keeps its gradient buffer, but it no longer
 * has requires_grad, which optim.h asks for. */
static void test_requires_grad_turned_off(void **state)
{
    (void)state;
    nb_tensor *p = nb_tensor_zeros(NB_F64, 1, PARAM_SHAPE[1]);
    assert_non_null(p);
    assert_int_equal(nb_tensor_set_requires_grad(p, true), NB_OK);
    assert_int_equal(nb_tensor_set_requires_grad(p, false), NB_OK);
    assert_false(p->requires_grad);
    const nb_optim_config S = sgd(0.1, 0.0, 0.0, false, 0.0);
    const char *const words[2] = {"requires_grad", "0"};
    nb_clear_error();
    int fails = expect_rejected("requires_grad switched off", nb_optim_new(&S, &p, 1), words, 2);
    nb_tensor_free(p);
    assert_int_equal(fails, 0);
}

/* ---- gradient clipping ------------------------------------------------------------------ */

#define CLIP_CASES 4

static void test_clip_golden(void **state)
{
    (void)state;
    nb_tensor *before = load_golden("optim_clip_before.npy", CLIP_CASES, NFLAT);
    nb_tensor *after = load_golden("optim_clip_after.npy", CLIP_CASES, NFLAT);
    nb_tensor *norms = load_golden("optim_clip_norm.npy", CLIP_CASES, 2);
    const nb_dtype dts[2] = {NB_F64, NB_F32};
    int fails = 0;
    for (int c = 0; c < CLIP_CASES; c++)
        for (int d = 0; d < 2; d++) {
            const double rtol = dts[d] == NB_F64 ? 1e-12 : 1e-6;
            const double max_norm = f64_data(norms)[2 * c], ref_norm = f64_data(norms)[2 * c + 1];
            const double *g0 = f64_data(before) + c * NFLAT, *g1 = f64_data(after) + c * NFLAT;
            nb_tensor *p[NPARAM];
            make_params(p, dts[d], g0); /* parameter values do not matter */
            set_grads(p, g0);
            double total = -1.0;
            nb_status s = nb_clip_grad_norm(p, NPARAM, max_norm, &total);
            if (s != NB_OK)
                print_error("nb_clip_grad_norm: %s\n", nb_last_error());
            assert_int_equal(s, NB_OK);
            char what[96];
            snprintf(what, sizeof what, "[clip case %d %s] total norm", c, nb_dtype_name(dts[d]));
            fails += mismatch(what, 0, total, ref_norm, rtol * fabs(ref_norm));
            snprintf(what, sizeof what, "[clip case %d %s] grad", c, nb_dtype_name(dts[d]));
            for (int k = 0; k < NPARAM; k++)
                for (int64_t j = 0; j < p[k]->numel; j++) {
                    double ref = g1[PARAM_OFFSET[k] + j];
                    fails += mismatch(what, PARAM_OFFSET[k] + j, grad_get(p[k], j), ref,
                                      rtol * fabs(ref));
                }
            /* The case just below max_norm is still scaled (by 1 / (1 + 4e-7)): torch's rule
             * is coef = max_norm / (norm + 1e-6) < 1, not norm > max_norm. */
            if (c == 2 && dts[d] == NB_F64)
                assert_true(grad_get(p[0], 0) != g0[0]);
            free_params(p);
        }
    nb_tensor_free(before);
    nb_tensor_free(after);
    nb_tensor_free(norms);
    assert_int_equal(fails, 0);
}

static void test_clip_by_hand(void **state)
{
    (void)state;
    nb_tensor *p[NPARAM];
    double zeros[NFLAT] = {0};
    make_params(p, NB_F64, zeros);

    /* All-zero gradients: norm 0, nothing changes (torch: coefficient 1e6 clamped to 1). */
    double total = -1.0;
    assert_int_equal(nb_clip_grad_norm(p, NPARAM, 1.0, &total), NB_OK);
    assert_true(total == 0.0);
    for (int k = 0; k < NPARAM; k++)
        for (int64_t j = 0; j < p[k]->numel; j++)
            assert_true(grad_get(p[k], j) == 0.0);

    /* 3-4-12 triangle: norm 13, scaled by 1 / (13 + 1e-6); total_norm may be NULL. */
    ((double *)p[0]->grad)[0] = 3.0;
    ((double *)p[0]->grad)[5] = 4.0;
    ((double *)p[1]->grad)[2] = -12.0;
    assert_int_equal(nb_clip_grad_norm(p, NPARAM, 1.0, &total), NB_OK);
    assert_true(fabs(total - 13.0) <= 1e-15 * 13.0);
    const double coef = 1.0 / (13.0 + 1e-6);
    assert_true(fabs(grad_get(p[0], 0) - 3.0 * coef) <= 1e-16);
    assert_true(fabs(grad_get(p[0], 5) - 4.0 * coef) <= 1e-16);
    assert_true(fabs(grad_get(p[1], 2) + 12.0 * coef) <= 1e-16);
    const double coef2 = 0.5 / (13.0 * coef + 1e-6);
    assert_int_equal(nb_clip_grad_norm(p, NPARAM, 0.5, NULL), NB_OK);
    assert_true(fabs(grad_get(p[1], 2) + 12.0 * coef * coef2) <= 1e-15);

    /* A NaN gradient gives a NaN norm. (torch 1.13 then multiplies every gradient by a NaN
     * coefficient; optim.h only scales when the norm exceeds max_norm, which NaN does not, so
     * what happens to the gradients is not checked here.) */
    ((double *)p[1]->grad)[4] = NAN;
    total = 0.0;
    assert_int_equal(nb_clip_grad_norm(p, NPARAM, 1.0, &total), NB_OK);
    assert_true(isnan(total));

    /* max_norm must be > 0. */
    const double bad[] = {0.0, -1.0, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_clear_error();
        assert_int_equal(nb_clip_grad_norm(p, NPARAM, bad[i], &total), NB_ERR_ARG);
        assert_true(contains_ci(nb_last_error(), "max_norm"));
    }
    free_params(p);
}

/* ---- learning-rate schedules ------------------------------------------------------------ */

typedef struct sched_case {
    const char *file;
    nb_schedule s;
    int64_t T;
} sched_case;

static void test_schedules(void **state)
{
    (void)state;
    /* kind, lr, warmup, total_steps, step_size, gamma, min_lr (see the script for the torch
     * schedulers each one is compared with). */
    const sched_case cases[] = {
        {"optim_sched_step.npy", {NB_SCHED_STEP, 0.1, 0, 0, 3, 0.5, 0.0}, 20},
        {"optim_sched_step_warmup.npy", {NB_SCHED_STEP, 0.1, 4, 0, 3, 0.3, 0.0}, 20},
        {"optim_sched_cosine.npy", {NB_SCHED_COSINE, 0.1, 0, 20, 0, 0.0, 0.0}, 21},
        {"optim_sched_cosine_warmup.npy", {NB_SCHED_COSINE, 0.1, 5, 20, 0, 0.0, 1e-3}, 21},
        {"optim_sched_constant_warmup.npy", {NB_SCHED_CONSTANT, 0.1, 4, 0, 0, 0.0, 0.0}, 12},
    };
    int fails = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const sched_case *sc = &cases[c];
        nb_tensor *ref = load_golden(sc->file, 0, sc->T);
        for (int64_t t = 0; t < sc->T; t++) {
            double r = f64_data(ref)[t];
            /* 1e-12 relative, with a floor of 1e-15 lr for torch's recursive cosine at 0. */
            fails += mismatch(sc->file, t, nb_schedule_lr(&sc->s, t), r,
                              1e-12 * fabs(r) + 1e-15 * sc->s.lr);
        }
        /* After a cosine run ends, lr stays at min_lr (the floor); torch's CosineAnnealingLR
         * would rise again, so this part is checked by hand. */
        if (sc->s.kind == NB_SCHED_COSINE)
            for (int64_t t = sc->s.total_steps; t < sc->s.total_steps + 10; t++)
                fails += mismatch("cosine after total_steps", t, nb_schedule_lr(&sc->s, t),
                                  sc->s.min_lr, 1e-15 * sc->s.lr);
        nb_tensor_free(ref);
    }
    assert_true(nb_schedule_lr(NULL, 0) == 0.0);
    assert_int_equal(fails, 0);
}

/* ---- defaults, parsers, accessors ------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    /* torch.optim.Adam / AdamW defaults: (lr, beta1, beta2, eps, weight_decay). */
    nb_tensor *ref = load_golden("optim_defaults.npy", 2, 5);
    const nb_optim_kind kinds[2] = {NB_OPTIM_ADAM, NB_OPTIM_ADAMW};
    for (int r = 0; r < 2; r++) {
        nb_optim_config c = nb_optim_defaults(kinds[r]);
        const double *d = f64_data(ref) + 5 * r;
        assert_int_equal(c.kind, kinds[r]);
        assert_true(c.lr == d[0]);
        assert_true(c.beta1 == d[1]);
        assert_true(c.beta2 == d[2]);
        assert_true(c.eps == d[3]);
        assert_true(c.weight_decay == d[4]);
    }
    nb_tensor_free(ref);
    /* SGD: torch has no default lr; optim.h says 1e-2, and no momentum, dampening, decay. */
    nb_optim_config s = nb_optim_defaults(NB_OPTIM_SGD);
    assert_int_equal(s.kind, NB_OPTIM_SGD);
    assert_true(s.lr == 1e-2);
    assert_true(s.momentum == 0.0 && s.dampening == 0.0 && s.weight_decay == 0.0);
    assert_false(s.nesterov);

    /* Accessors: the optimiser keeps a copy of the config; set_lr changes the lr it uses. */
    nb_tensor *p = nb_tensor_zeros(NB_F64, 1, PARAM_SHAPE[1]);
    assert_non_null(p);
    assert_int_equal(nb_tensor_set_requires_grad(p, true), NB_OK);
    nb_optim *o = nb_optim_new(&s, &p, 1);
    assert_non_null(o);
    s.lr = 5.0; /* the caller's copy, not the optimiser's */
    assert_true(nb_optim_lr(o) == 1e-2);
    assert_true(nb_optim_get_config(o)->lr == 1e-2);
    nb_optim_set_lr(o, 0.25);
    assert_true(nb_optim_lr(o) == 0.25);
    ((double *)p->grad)[0] = 2.0;
    step_ok(o);
    assert_true(nb_tensor_get(p, 0) == -0.5);
    nb_optim_zero_grad(o);
    assert_true(((double *)p->grad)[0] == 0.0);
    nb_optim_free(o);
    nb_optim_free(NULL);
    nb_tensor_free(p);
}

static void test_parse(void **state)
{
    (void)state;
    const char *const onames[] = {"sgd", "adam", "adamw"};
    const nb_optim_kind okinds[] = {NB_OPTIM_SGD, NB_OPTIM_ADAM, NB_OPTIM_ADAMW};
    for (int i = 0; i < 3; i++) {
        nb_optim_kind k = (nb_optim_kind)99;
        assert_true(nb_optim_kind_parse(onames[i], &k));
        assert_int_equal(k, okinds[i]);
        assert_string_equal(nb_optim_kind_name(k), onames[i]);
    }
    const char *const obad[] = {"", "adagrad", "sgd ", "adamww", "ada"};
    for (size_t i = 0; i < sizeof obad / sizeof obad[0]; i++) {
        nb_optim_kind k = (nb_optim_kind)99;
        assert_false(nb_optim_kind_parse(obad[i], &k));
        assert_int_equal(k, 99);
    }
    nb_optim_kind ko = (nb_optim_kind)99;
    assert_false(nb_optim_kind_parse(NULL, &ko));

    const char *const snames[] = {"constant", "step", "cosine"};
    const nb_sched_kind skinds[] = {NB_SCHED_CONSTANT, NB_SCHED_STEP, NB_SCHED_COSINE};
    for (int i = 0; i < 3; i++) {
        nb_sched_kind k = (nb_sched_kind)99;
        assert_true(nb_sched_kind_parse(snames[i], &k));
        assert_int_equal(k, skinds[i]);
    }
    const char *const sbad[] = {"", "linear", "cos", "steps", "cosine "};
    for (size_t i = 0; i < sizeof sbad / sizeof sbad[0]; i++) {
        nb_sched_kind k = (nb_sched_kind)99;
        assert_false(nb_sched_kind_parse(sbad[i], &k));
        assert_int_equal(k, 99);
    }
    nb_sched_kind ks = (nb_sched_kind)99;
    assert_false(nb_sched_kind_parse(NULL, &ks));
}

int main(void)
{
    build_cases();
    static struct CMUnitTest tests[3 * NCASES + 16];
    size_t n = 0;
    void (*const per_case[3])(void **) = {test_golden_f64, test_golden_f32, test_restore};
    const char *const prefix[3] = {"golden_f64", "golden_f32", "restore"};
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < NCASES; i++) {
            snprintf(g_cases[i].label[f], sizeof g_cases[i].label[f], "%s/%s", prefix[f],
                     g_cases[i].name);
            tests[n++] =
                (struct CMUnitTest){g_cases[i].label[f], per_case[f], NULL, NULL, &g_cases[i]};
        }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_requires_grad_turned_off),
        cmocka_unit_test(test_clip_golden),
        cmocka_unit_test(test_clip_by_hand),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("test_optim", tests, n, NULL, NULL);
}
