/* tests/test_logsoftmax.c - the log-sum-exp family: log_softmax, softmax, logsumexp.
 *
 * What is checked, and against what:
 *   - shift invariance: log_softmax(z) == log_softmax(z + c) for |c| up to 1e4 (a property);
 *   - a battery of rows (random, huge +/-, mixed +/-1e4, -inf entries, constant, single element)
 *     against SciPy's scipy.special.log_softmax (golden files from scripts/gen_golden.py);
 *   - the classic stress rows [1000, 1001, 1002] and [-1000, -999, -998] against their closed
 *     form, in f32 and f64, and the textbook log(exp(z) / sum exp(z)) shown to break on them;
 *   - the raw row kernels (nb_*_rows) and the graph ops (nb_log_softmax ...), including a
 *     float64 gradcheck of the graph ops on the stress rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

#ifndef NB_TEST_DATA_DIR
#define NB_TEST_DATA_DIR "tests/data"
#endif

/* ---- helpers ---- */

static nb_tensor *load_golden(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", NB_TEST_DATA_DIR, file);
    nb_tensor *t = nb_npy_load(path);
    if (!t)
        print_error("cannot load %s: %s\n", path, nb_last_error());
    assert_non_null(t);
    return t;
}

static nb_tensor *new_tensor(nb_dtype dt, int ndim, const int64_t *shape)
{
    nb_tensor *t = nb_tensor_zeros(dt, ndim, shape);
    if (!t)
        print_error("nb_tensor_zeros: %s\n", nb_last_error());
    assert_non_null(t);
    return t;
}

static void expect_ok(nb_status s, const char *what)
{
    if (s != NB_OK)
        print_error("%s failed: %s (%s)\n", what, nb_status_name(s), nb_last_error());
    assert_int_equal(s, NB_OK);
}

/* Compares one value; prints and returns 1 on a mismatch. ref = -inf must be matched exactly;
 * a finite ref needs a finite got within tol. */
static int mismatch(const char *what, int64_t i, double got, double ref, double tol)
{
    if (isinf(ref) || isnan(ref)) {
        if ((isnan(ref) && isnan(got)) || got == ref)
            return 0;
    } else if (isfinite(got) && fabs(got - ref) <= tol) {
        return 0;
    }
    print_error("%s[%lld]: got %.17g, expected %.17g (|diff| %.3g > tol %.3g)\n", what,
                (long long)i, got, ref, fabs(got - ref), tol);
    return 1;
}

/* max_j |z[r, j]| over finite entries of row r. */
static double row_maxabs(const nb_tensor *z, int64_t r, int64_t V)
{
    double m = 0.0;
    for (int64_t j = 0; j < V; j++) {
        double v = nb_tensor_get(z, r * V + j);
        if (isfinite(v) && fabs(v) > m)
            m = fabs(v);
    }
    return m;
}

static int64_t last_dim(const nb_tensor *z)
{
    return z->shape[z->ndim - 1];
}

/* ---- shift invariance ----
 * log_softmax(z + c) = log_softmax(z) exactly in real arithmetic. In floating point z + c is
 * rounded: each element moves by up to ulp(|z| + |c|)/2 <= (|z| + |c|) DBL_EPSILON / 2, and
 * log_softmax changes by at most twice the largest input perturbation (the element itself and
 * the softmax-weighted mean of the perturbations). Each side also has its own rounding of a few
 * ulps of its largest intermediate (|z| + |c|). So the tolerance is 8 (max|z| + |c|) eps plus
 * 1e-14 for the O(1) output: tight enough that a naive or unshifted kernel (error ~1 or inf at
 * c = 1e4) fails, loose enough to allow the unavoidable input rounding. */
static void test_shift_invariance(void **state)
{
    (void)state;
    const int64_t R = 6, V = 16;
    const int64_t shape[2] = {R, V};
    const double shifts[] = {1e-3, -1e-3, 1.0, -1.0, 37.5, -37.5, 1e2,      -1e2,
                             1e3,  -1e3,  5e3, -5e3, 1e4,  -1e4,  9999.123, -9876.5};
    nb_rng rng;
    nb_rng_seed(&rng, 12345);
    nb_tensor *z = nb_tensor_randn(NB_F64, 2, shape, &rng, 0.0, 5.0);
    assert_non_null(z);
    nb_tensor *zc = new_tensor(NB_F64, 2, shape);
    nb_tensor *a = new_tensor(NB_F64, 2, shape);
    nb_tensor *b = new_tensor(NB_F64, 2, shape);
    expect_ok(nb_log_softmax_rows(z, a), "nb_log_softmax_rows");
    int fails = 0;
    for (size_t k = 0; k < sizeof shifts / sizeof shifts[0]; k++) {
        double c = shifts[k];
        for (int64_t i = 0; i < R * V; i++)
            nb_tensor_set(zc, i, nb_tensor_get(z, i) + c);
        expect_ok(nb_log_softmax_rows(zc, b), "nb_log_softmax_rows (shifted)");
        for (int64_t r = 0; r < R; r++) {
            double tol = 8.0 * (row_maxabs(z, r, V) + fabs(c)) * DBL_EPSILON + 1e-14;
            for (int64_t j = 0; j < V; j++) {
                int64_t i = r * V + j;
                if (mismatch("shifted log_softmax", i, nb_tensor_get(b, i), nb_tensor_get(a, i),
                             tol)) {
                    print_error("  shift c = %g\n", c);
                    fails++;
                }
            }
        }
    }
    /* A random shift per row, same argument. */
    for (int64_t r = 0; r < R; r++) {
        double c = (nb_rng_uniform(&rng) * 2.0 - 1.0) * 1e4;
        for (int64_t j = 0; j < V; j++)
            nb_tensor_set(zc, r * V + j, nb_tensor_get(z, r * V + j) + c);
    }
    expect_ok(nb_log_softmax_rows(zc, b), "nb_log_softmax_rows (row shifts)");
    for (int64_t i = 0; i < R * V; i++)
        fails += mismatch("row-shifted log_softmax", i, nb_tensor_get(b, i), nb_tensor_get(a, i),
                          8.0 * (row_maxabs(z, i / V, V) + 1e4) * DBL_EPSILON + 1e-14);
    assert_int_equal(fails, 0);
    nb_tensor_free(z);
    nb_tensor_free(zc);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* ---- SciPy battery ----
 * Tolerances. f64: 1e-12 relative with a 1e-12 absolute floor (outputs of size ~1). The
 * shift-first formula (z - m) - log(sum exp(z - m)), m = max z, is accurate to a few ulps of the
 * output whatever the magnitude of z, because z - m is exact for z near m (Sterbenz) and the
 * log term is O(1): that is how SciPy and PyTorch compute it, and the battery's huge and
 * constant rows (1e6 + N(0,1), all 1e300) are there to hold the kernel to it. (Computing
 * z - (m + log s) instead rounds m + log s to ulp(m) first, and loses everything at 1e300.)
 * f32: 2e-6 relative with a 2e-6 absolute floor: ~16 f32 ulps (FLT_EPSILON = 1.2e-7) of an O(1)
 * output, room for the exp/log/sum roundings over 8 terms. References for the f32 inputs are
 * computed in f64 from the very same f32 values, so they are exact answers for those inputs. */
typedef struct battery {
    const char *in_file, *ref_file;
    double rtol;
} battery;

static const battery batteries[] = {
    {"lsm_inputs.npy", "lsm_ref.npy", 1e-12},
    {"lsm_inputs_f32.npy", "lsm_ref_f32.npy", 2e-6},
    {"lsm_v1_inputs.npy", "lsm_v1_ref.npy", 1e-12},
};

/* Checks log_softmax, softmax and logsumexp outputs of one battery against the reference. The
 * softmax reference is exp(ref), and the logsumexp reference z_m - ref_m at the row's argmax m
 * (where ref_m = -log sum exp(z - z_m) is O(1), so the difference is exact to an ulp). */
static int check_battery_outputs(const char *tag, const nb_tensor *z, const nb_tensor *ref,
                                 const nb_tensor *lsm, const nb_tensor *sm, const nb_tensor *lse,
                                 double rtol)
{
    int64_t V = last_dim(z), R = z->numel / V;
    int fails = 0;
    char what[128];
    for (int64_t r = 0; r < R; r++) {
        int64_t am = r * V;
        for (int64_t j = 0; j < V; j++) {
            int64_t i = r * V + j;
            double rv = nb_tensor_get(ref, i);
            double tol = rtol * fmax(1.0, fabs(rv));
            snprintf(what, sizeof what, "%s log_softmax (row %lld)", tag, (long long)r);
            fails += mismatch(what, i, nb_tensor_get(lsm, i), rv, tol);
            snprintf(what, sizeof what, "%s softmax (row %lld)", tag, (long long)r);
            double p = exp(rv);
            fails += mismatch(what, i, nb_tensor_get(sm, i), p, rtol * fmax(p, 1e-300));
            if (nb_tensor_get(z, i) > nb_tensor_get(z, am))
                am = i;
        }
        double lse_ref = nb_tensor_get(z, am) - nb_tensor_get(ref, am);
        snprintf(what, sizeof what, "%s logsumexp", tag);
        fails += mismatch(what, r, nb_tensor_get(lse, r), lse_ref, rtol * fmax(1.0, fabs(lse_ref)));
    }
    return fails;
}

static void test_scipy_battery_kernels(void **state)
{
    (void)state;
    int fails = 0;
    for (size_t b = 0; b < sizeof batteries / sizeof batteries[0]; b++) {
        nb_tensor *z = load_golden(batteries[b].in_file);
        nb_tensor *ref = load_golden(batteries[b].ref_file);
        assert_int_equal(z->ndim, 2);
        assert_true(nb_shape_equal(z, ref));
        nb_tensor *lsm = new_tensor(z->dtype, 2, z->shape);
        nb_tensor *sm = new_tensor(z->dtype, 2, z->shape);
        nb_tensor *lse = new_tensor(z->dtype, 1, z->shape);
        expect_ok(nb_log_softmax_rows(z, lsm), "nb_log_softmax_rows");
        expect_ok(nb_softmax_rows(z, sm), "nb_softmax_rows");
        expect_ok(nb_logsumexp_rows(z, lse), "nb_logsumexp_rows");
        int f =
            check_battery_outputs(batteries[b].in_file, z, ref, lsm, sm, lse, batteries[b].rtol);
        if (f)
            print_error("%s: %d mismatches (raw kernels)\n", batteries[b].in_file, f);
        fails += f;
        nb_tensor_free(z);
        nb_tensor_free(ref);
        nb_tensor_free(lsm);
        nb_tensor_free(sm);
        nb_tensor_free(lse);
    }
    assert_int_equal(fails, 0);
}

static void test_scipy_battery_graph(void **state)
{
    (void)state;
    int fails = 0;
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    for (size_t b = 0; b < sizeof batteries / sizeof batteries[0]; b++) {
        nb_tensor *z = load_golden(batteries[b].in_file);
        nb_tensor *ref = load_golden(batteries[b].ref_file);
        nb_tensor *lsm = nb_log_softmax(g, z);
        nb_tensor *sm = nb_softmax(g, z);
        nb_tensor *lse = nb_logsumexp(g, z);
        if (!lsm || !sm || !lse)
            print_error("graph op failed: %s\n", nb_last_error());
        assert_non_null(lsm);
        assert_non_null(sm);
        assert_non_null(lse);
        assert_true(nb_shape_equal(lsm, z));
        assert_true(nb_shape_equal(sm, z));
        assert_int_equal(lse->ndim, 1);
        assert_int_equal(lse->shape[0], z->shape[0]);
        int f =
            check_battery_outputs(batteries[b].in_file, z, ref, lsm, sm, lse, batteries[b].rtol);
        if (f)
            print_error("%s: %d mismatches (graph ops)\n", batteries[b].in_file, f);
        fails += f;
        nb_graph_reset(g);
        nb_tensor_free(z);
        nb_tensor_free(ref);
    }
    nb_graph_free(g);
    assert_int_equal(fails, 0);
}

/* ---- the stress rows ----
 * log_softmax([1000, 1001, 1002]) = [-2, -1, 0] - log(1 + e^-1 + e^-2)
 *                                 = [-2.40760596, -1.40760596, -0.40760596], and the same for
 * [-1000, -999, -998] (shift invariance). logsumexp = 1002 + k and -998 + k, k = log(1 + e^-1 +
 * e^-2). Tolerances as for the SciPy battery: f64 1e-12 relative, f32 2e-6 relative (the lse of
 * 1002.4 has an f32 ulp of 6e-5, i.e. 6e-8 relative; the O(1) outputs carry a few f32 ulps). */
static const double stress_rows[2][3] = {{1000.0, 1001.0, 1002.0}, {-1000.0, -999.0, -998.0}};

static double stress_k(void)
{
    return log1p(exp(-1.0) + exp(-2.0));
}

static nb_tensor *stress_tensor(nb_dtype dt)
{
    const int64_t shape[2] = {2, 3};
    nb_tensor *z = new_tensor(dt, 2, shape);
    for (int i = 0; i < 6; i++)
        nb_tensor_set(z, i, stress_rows[i / 3][i % 3]);
    return z;
}

static int check_stress(const char *tag, const nb_tensor *lsm, const nb_tensor *sm,
                        const nb_tensor *lse, double rtol)
{
    const double k = stress_k();
    int fails = 0;
    char what[96];
    for (int i = 0; i < 6; i++) {
        double l = (double)(i % 3 - 2) - k;
        snprintf(what, sizeof what, "%s log_softmax", tag);
        fails += mismatch(what, i, nb_tensor_get(lsm, i), l, rtol * fabs(l));
        snprintf(what, sizeof what, "%s softmax", tag);
        fails += mismatch(what, i, nb_tensor_get(sm, i), exp(l), rtol * exp(l));
    }
    for (int r = 0; r < 2; r++) {
        double ref = stress_rows[r][2] + k;
        snprintf(what, sizeof what, "%s logsumexp", tag);
        fails += mismatch(what, r, nb_tensor_get(lse, r), ref, rtol * fabs(ref));
    }
    return fails;
}

static void test_stress_closed_form(void **state)
{
    (void)state;
    /* The closed form itself, against the digits everyone quotes. */
    const double quoted[3] = {-2.40760596, -1.40760596, -0.40760596};
    for (int j = 0; j < 3; j++)
        assert_true(fabs((double)(j - 2) - stress_k() - quoted[j]) < 1e-8);

    const nb_dtype dts[2] = {NB_F64, NB_F32};
    const double rtols[2] = {1e-12, 2e-6};
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    for (int d = 0; d < 2; d++) {
        nb_tensor *z = stress_tensor(dts[d]);
        nb_tensor *lsm = new_tensor(dts[d], 2, z->shape);
        nb_tensor *sm = new_tensor(dts[d], 2, z->shape);
        nb_tensor *lse = new_tensor(dts[d], 1, z->shape);
        expect_ok(nb_log_softmax_rows(z, lsm), "nb_log_softmax_rows");
        expect_ok(nb_softmax_rows(z, sm), "nb_softmax_rows");
        expect_ok(nb_logsumexp_rows(z, lse), "nb_logsumexp_rows");
        char tag[64];
        snprintf(tag, sizeof tag, "stress %s kernel", nb_dtype_name(dts[d]));
        int fails = check_stress(tag, lsm, sm, lse, rtols[d]);

        nb_tensor *glsm = nb_log_softmax(g, z);
        nb_tensor *gsm = nb_softmax(g, z);
        nb_tensor *glse = nb_logsumexp(g, z);
        assert_non_null(glsm);
        assert_non_null(gsm);
        assert_non_null(glse);
        snprintf(tag, sizeof tag, "stress %s graph", nb_dtype_name(dts[d]));
        fails += check_stress(tag, glsm, gsm, glse, rtols[d]);
        assert_int_equal(fails, 0);
        nb_graph_reset(g);
        nb_tensor_free(z);
        nb_tensor_free(lsm);
        nb_tensor_free(sm);
        nb_tensor_free(lse);
    }
    nb_graph_free(g);
}

/* The textbook log(exp(z) / sum exp(z)): exp(1000) = inf gives inf/inf = NaN, and exp(-1000) = 0
 * gives 0/0 = NaN (or log 0 = -inf). Every output on the stress rows is non-finite, in f32 and
 * f64, while the stable kernel's outputs on the same tensor are all finite. On tame inputs the
 * naive kernel agrees with the stable one, so it is not simply broken. */
static void test_naive_breaks_stable_does_not(void **state)
{
    (void)state;
    const nb_dtype dts[2] = {NB_F64, NB_F32};
    for (int d = 0; d < 2; d++) {
        nb_tensor *z = stress_tensor(dts[d]);
        nb_tensor *naive = new_tensor(dts[d], 2, z->shape);
        nb_tensor *stable = new_tensor(dts[d], 2, z->shape);
        expect_ok(nb_log_softmax_naive(z, naive), "nb_log_softmax_naive");
        expect_ok(nb_log_softmax_rows(z, stable), "nb_log_softmax_rows");
        for (int i = 0; i < 6; i++) {
            double n = nb_tensor_get(naive, i), s = nb_tensor_get(stable, i);
            if (isfinite(n) || !isfinite(s))
                print_error("%s element %d: naive %g (should be inf/NaN), stable %g\n",
                            nb_dtype_name(dts[d]), i, n, s);
            assert_false(isfinite(n));
            assert_true(isfinite(s));
        }
        nb_tensor_free(z);
        nb_tensor_free(naive);
        nb_tensor_free(stable);

        /* Tame inputs: the two agree (f64 1e-12, f32 2e-6 relative to max(1, |out|)). */
        const int64_t shape[2] = {4, 7};
        nb_rng rng;
        nb_rng_seed(&rng, 7 + (uint64_t)d);
        nb_tensor *t = nb_tensor_randn(dts[d], 2, shape, &rng, 0.0, 3.0);
        assert_non_null(t);
        naive = new_tensor(dts[d], 2, shape);
        stable = new_tensor(dts[d], 2, shape);
        expect_ok(nb_log_softmax_naive(t, naive), "nb_log_softmax_naive (tame)");
        expect_ok(nb_log_softmax_rows(t, stable), "nb_log_softmax_rows (tame)");
        double rtol = dts[d] == NB_F64 ? 1e-12 : 2e-6;
        int fails = 0;
        for (int64_t i = 0; i < t->numel; i++) {
            double s = nb_tensor_get(stable, i);
            fails += mismatch("naive vs stable (tame)", i, nb_tensor_get(naive, i), s,
                              rtol * fmax(1.0, fabs(s)));
        }
        assert_int_equal(fails, 0);
        nb_tensor_free(t);
        nb_tensor_free(naive);
        nb_tensor_free(stable);
    }
}

/* ---- gradients of the graph ops ----
 * On the stress rows the backward is checked against its closed form (central differences at
 * |z| = 1000 would measure the rounding of z +- eps, not the op): with p = softmax(z) known in
 * closed form and an upstream gradient u,
 *   d(sum u . log_softmax)/dz_j = u_j - p_j sum_k u_k
 *   d(sum u . softmax)/dz_j     = p_j (u_j - sum_k u_k p_k)
 *   d(sum u . logsumexp)/dz_j   = u_row p_j
 * Tolerances as for the forward (f64 1e-12 absolute on O(1) gradients, f32 2e-6), plus, for
 * logsumexp only, eps * |lse| relative: its backward rebuilds p = exp(z - lse) from the saved
 * output lse (as PyTorch does), and lse = 1002.4 itself carries up to half an ulp of rounding
 * (3e-5 in f32), which becomes a relative error of p. (log_softmax and softmax need no such
 * allowance: their saved outputs are O(1).) */
enum { OP_LOG_SOFTMAX, OP_SOFTMAX, OP_LOGSUMEXP, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"log_softmax", "softmax", "logsumexp"};

static nb_tensor *apply_op(nb_graph *g, int op, nb_tensor *z)
{
    switch (op) {
    case OP_LOG_SOFTMAX: return nb_log_softmax(g, z);
    case OP_SOFTMAX: return nb_softmax(g, z);
    default: return nb_logsumexp(g, z);
    }
}

static void test_graph_backward_stress(void **state)
{
    (void)state;
    const nb_dtype dts[2] = {NB_F64, NB_F32};
    const double tols[2] = {1e-12, 2e-6};
    const double u[6] = {0.3, -1.2, 0.7, 2.0, 0.25, -0.6};
    const double k = stress_k();
    double p[3];
    for (int j = 0; j < 3; j++)
        p[j] = exp((double)(j - 2) - k);
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    int fails = 0;
    for (int d = 0; d < 2; d++) {
        for (int op = 0; op < OP_COUNT; op++) {
            nb_tensor *z = stress_tensor(dts[d]);
            expect_ok(nb_tensor_set_requires_grad(z, true), "nb_tensor_set_requires_grad");
            nb_tensor *out = apply_op(g, op, z);
            if (!out)
                print_error("%s: %s\n", op_names[op], nb_last_error());
            assert_non_null(out);
            nb_tensor *up = new_tensor(dts[d], out->ndim, out->shape);
            for (int64_t i = 0; i < up->numel; i++)
                nb_tensor_set(up, i, u[i]);
            expect_ok(nb_backward(g, out, up), "nb_backward");
            for (int r = 0; r < 2; r++) {
                const double *ur = u + 3 * r;
                double su = ur[0] + ur[1] + ur[2];
                double sup = ur[0] * p[0] + ur[1] * p[1] + ur[2] * p[2];
                for (int j = 0; j < 3; j++) {
                    double ref = op == OP_LOG_SOFTMAX ? ur[j] - p[j] * su
                                 : op == OP_SOFTMAX   ? p[j] * (ur[j] - sup)
                                                      : u[r] * p[j];
                    char what[96];
                    snprintf(what, sizeof what, "stress %s d%s/dz", nb_dtype_name(dts[d]),
                             op_names[op]);
                    double tol = tols[d];
                    if (op == OP_LOGSUMEXP)
                        tol += fabs(ref) * (dts[d] == NB_F64 ? DBL_EPSILON : FLT_EPSILON) *
                               fabs(stress_rows[r][2] + k);
                    fails += mismatch(what, 3 * r + j, nb_tensor_grad_get(z, 3 * r + j), ref, tol);
                }
            }
            nb_graph_reset(g);
            nb_tensor_free(up);
            nb_tensor_free(z);
        }
    }
    assert_int_equal(fails, 0);
    nb_graph_free(g);
}

/* float64 central differences, max relative error < 1e-6 (docs/architecture.md), on O(1) rows.
 * Central differences divide the forward's rounding by 2 eps = 2e-6 and gradcheck's relative floor
 * is 1e-3, so a forward rounding of 1e-15 already shows as 5e-7: at |z| ~ 30 one ulp of z (3.6e-15)
 * would be measured instead of the backward. Large magnitudes are checked against the closed
 * form above. */
static nb_tensor *apply_op_ctx(nb_graph *g, nb_tensor *const *inputs, int n_inputs, void *ctx)
{
    (void)n_inputs;
    return apply_op(g, *(const int *)ctx, inputs[0]);
}

static void test_graph_gradcheck(void **state)
{
    (void)state;
    const int64_t shape[2] = {4, 6};
    for (int op = 0; op < OP_COUNT; op++) {
        nb_rng rng;
        nb_rng_seed(&rng, 99 + (uint64_t)op);
        nb_tensor *z = nb_tensor_randn(NB_F64, 2, shape, &rng, 0.0, 3.0);
        assert_non_null(z);
        expect_ok(nb_tensor_set_requires_grad(z, true), "nb_tensor_set_requires_grad");
        nb_tensor *inputs[1] = {z};
        nb_gradcheck_result res;
        memset(&res, 0, sizeof res);
        int opv = op;
        expect_ok(nb_gradcheck(apply_op_ctx, inputs, 1, &opv, NULL, &res), op_names[op]);
        if (!(res.max_rel_err < 1e-6))
            print_error("gradcheck %s: max rel err %g at %lld (analytic %.17g, numeric %.17g)\n",
                        op_names[op], res.max_rel_err, (long long)res.worst_index,
                        res.worst_analytic, res.worst_numeric);
        assert_true(res.max_rel_err < 1e-6);
        assert_int_equal(res.n_checked, z->numel);
        nb_tensor_free(z);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shift_invariance),
        cmocka_unit_test(test_scipy_battery_kernels),
        cmocka_unit_test(test_scipy_battery_graph),
        cmocka_unit_test(test_stress_closed_form),
        cmocka_unit_test(test_naive_breaks_stable_does_not),
        cmocka_unit_test(test_graph_backward_stress),
        cmocka_unit_test(test_graph_gradcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
