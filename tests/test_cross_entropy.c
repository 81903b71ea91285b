/* tests/test_cross_entropy.c - the fused cross-entropy against PyTorch, and its contract.
 *
 *   - golden cases: one cmocka test per line of tests/data/xent_cases.txt (made by
 *     scripts/gen_golden.py from PyTorch 1.13 in float64): loss, lse, stats and gradient of the
 *     raw kernels (nb_xent_forward / nb_xent_backward), of the slow reference (nb_xent_reference)
 *     and of the graph op (nb_cross_entropy + nb_backward on a leaf);
 *   - stats combine: two halves of a batch add up to the whole; gradient accumulation with the
 *     normaliser option reproduces the whole batch's mean and gradient;
 *   - the normaliser option, all-padding batches (loss 0, gradient exactly 0), garbage in padded
 *     rows (never read: bit-identical results);
 *   - float64 gradcheck (central differences) for every option combination;
 *   - every bad input returns an error status with a message, never crashes.
 *
 * Tolerances (docs/architecture.md: "f64 inputs: 1e-9 rel; f32: 2e-5"). An element passes when
 *     |got - ref| <= rtol * max(|ref|, floor * max_i |ref_i|)
 * with rtol = 1e-9 (f64 logits) or 2e-5 (f32/f16 logits) and floor = 1e-4 (f64) or 1e-2 (f32).
 * The floor is there for near-zero gradient entries: an entry p - 1 with p ~ 1 (or a smoothing
 * term that cancels) is a difference of O(max|g|) numbers, so its rounding error is a few ulps of
 * max|g|, not of the entry itself. With the floor, such entries are held to 1e-13 max|g| (f64,
 * ~450 ulps) or 2e-7 max|g| (f32, ~3 ulps); every other entry to the full relative tolerance.
 * A tensor whose reference is all zeros (all padding, V = 1) must therefore be exactly zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "loss/xent_ref.h" /* nb_xent_reference: test-only */

#ifndef NB_TEST_DATA_DIR
#define NB_TEST_DATA_DIR "tests/data"
#endif

#define MAX_CASES 128

/* Shape argument for 0-d tensors (never read). */
static const int64_t k_scalar[1] = {1};

/* ---- the case list (tests/data/xent_cases.txt) ---- */

typedef struct xcase {
    char name[64];
    nb_reduction reduction;
    int64_t ignore_index;
    double smoothing;
    int has_mask, has_weight;
    double z_loss;
    bool soft; /* NAME starts with "soft_": probability targets */
} xcase;

static xcase g_cases[MAX_CASES];
static int g_ncases = -1; /* -1: the file could not be read */

static int read_cases(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/xent_cases.txt", NB_TEST_DATA_DIR);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (n == MAX_CASES) {
            fprintf(stderr, "%s: more than %d cases\n", path, MAX_CASES);
            n = -1;
            break;
        }
        xcase *c = &g_cases[n];
        char red[16];
        long long ii;
        if (sscanf(line, "%63s %15s %lld %lf %d %d %lf", c->name, red, &ii, &c->smoothing,
                   &c->has_mask, &c->has_weight, &c->z_loss) != 7) {
            fprintf(stderr, "%s: bad line: %s", path, line);
            n = -1;
            break;
        }
        c->ignore_index = ii;
        c->reduction = !strcmp(red, "mean")  ? NB_REDUCTION_MEAN
                       : !strcmp(red, "sum") ? NB_REDUCTION_SUM
                                             : NB_REDUCTION_NONE;
        if (strcmp(red, "mean") && strcmp(red, "sum") && strcmp(red, "none")) {
            fprintf(stderr, "%s: bad reduction '%s'\n", path, red);
            n = -1;
            break;
        }
        c->soft = strncmp(c->name, "soft_", 5) == 0;
        n++;
    }
    fclose(f);
    return n;
}

static const xcase *find_case(const char *name)
{
    for (int i = 0; i < g_ncases; i++)
        if (!strcmp(g_cases[i].name, name))
            return &g_cases[i];
    return NULL;
}

/* ---- small helpers ---- */

static nb_tensor *load_file(const char *file, bool required)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", NB_TEST_DATA_DIR, file);
    if (!required) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return NULL;
        fclose(f);
    }
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

static void fill(nb_tensor *t, double v)
{
    for (int64_t i = 0; i < t->numel; i++)
        nb_tensor_set(t, i, v);
}

static void expect_ok(nb_status s, const char *what, const char *name)
{
    if (s != NB_OK)
        print_error("[%s] %s failed: %s (%s)\n", name, what, nb_status_name(s), nb_last_error());
    assert_int_equal(s, NB_OK);
}

static double rtol_for(nb_dtype logits_dtype)
{
    return logits_dtype == NB_F64 ? 1e-9 : 2e-5;
}
static double floor_for(nb_dtype logits_dtype)
{
    return logits_dtype == NB_F64 ? 1e-4 : 1e-2;
}

/* Compares got (any float dtype, or a gradient read through `grad_of`) with scale * ref under
 * the tolerance described at the top. Returns the number of mismatches (each printed). */
static int compare_values(const char *name, const char *what, int64_t n, const nb_tensor *got,
                          bool use_grad, const nb_tensor *ref, double scale, nb_dtype logits_dt)
{
    double maxabs = 0.0;
    for (int64_t i = 0; i < n; i++)
        maxabs = fmax(maxabs, fabs(scale * nb_tensor_get(ref, i)));
    double rtol = rtol_for(logits_dt), fl = floor_for(logits_dt);
    int fails = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = scale * nb_tensor_get(ref, i);
        double v = use_grad ? nb_tensor_grad_get(got, i) : nb_tensor_get(got, i);
        double tol = rtol * fmax(fabs(r), fl * maxabs);
        if (!(isfinite(v) && fabs(v - r) <= tol)) {
            if (fails < 8)
                print_error("[%s] %s[%lld]: got %.17g, expected %.17g (|diff| %.3g, tol %.3g)\n",
                            name, what, (long long)i, v, r, fabs(v - r), tol);
            fails++;
        }
    }
    if (fails >= 8)
        print_error("[%s] %s: %d mismatches in all\n", name, what, fails);
    return fails;
}

static int compare_tensor(const char *name, const char *what, const nb_tensor *got,
                          const nb_tensor *ref, double scale, nb_dtype logits_dt)
{
    if (got->numel != ref->numel) {
        print_error("[%s] %s: %lld elements, reference has %lld\n", name, what,
                    (long long)got->numel, (long long)ref->numel);
        return 1;
    }
    return compare_values(name, what, ref->numel, got, false, ref, scale, logits_dt);
}

static bool close_rel(double got, double ref, double rtol)
{
    return isfinite(got) && fabs(got - ref) <= rtol * fmax(fabs(ref), 1e-300);
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

/* ---- one golden case in memory ---- */

typedef struct xdata {
    nb_tensor *logits, *targets, *probs, *mask, *weight, *loss_ref, *grad_ref;
    int64_t V, rows;
    int row_ndim; /* logits' shape without the last dim: the targets' / loss-none shape */
    int64_t row_shape[NB_MAX_DIMS];
    unsigned char *keep; /* per row: 1 = real token */
    int64_t n_real;
    double W; /* sum_n keep_n w_{y_n} (hard) or the real-row count (soft) */
} xdata;

static void load_case(const xcase *c, xdata *d)
{
    char f[160];
    memset(d, 0, sizeof *d);
#define LOAD(field, suffix, req)                                                                   \
    do {                                                                                           \
        snprintf(f, sizeof f, "xent_%s_%s.npy", c->name, suffix);                                  \
        d->field = load_file(f, req);                                                              \
    } while (0)
    LOAD(logits, "logits", true);
    LOAD(loss_ref, "loss", true);
    LOAD(grad_ref, "grad", true);
    if (c->soft)
        LOAD(probs, "probs", true);
    else
        LOAD(targets, "targets", true);
    if (c->has_mask)
        LOAD(mask, "mask", true);
    if (c->has_weight)
        LOAD(weight, "weight", true);
#undef LOAD
    const nb_tensor *z = d->logits;
    d->V = z->shape[z->ndim - 1];
    d->rows = d->V ? z->numel / d->V : 0;
    d->row_ndim = z->ndim - 1;
    for (int i = 0; i < d->row_ndim; i++)
        d->row_shape[i] = z->shape[i];
    assert_true(nb_shape_equal(z, d->grad_ref));
    d->keep = calloc((size_t)d->rows + 1, 1);
    assert_non_null(d->keep);
    for (int64_t n = 0; n < d->rows; n++) {
        bool k = !d->mask || nb_tensor_get(d->mask, n) != 0.0;
        if (k && !c->soft) {
            int64_t y = (int64_t)nb_tensor_get(d->targets, n);
            if (y == c->ignore_index)
                k = false;
            else
                d->W += d->weight ? nb_tensor_get(d->weight, y) : 1.0;
        } else if (k) {
            d->W += 1.0;
        }
        d->keep[n] = k;
        d->n_real += k;
    }
}

static void free_case(xdata *d)
{
    nb_tensor_free(d->logits);
    nb_tensor_free(d->targets);
    nb_tensor_free(d->probs);
    nb_tensor_free(d->mask);
    nb_tensor_free(d->weight);
    nb_tensor_free(d->loss_ref);
    nb_tensor_free(d->grad_ref);
    free(d->keep);
}

static nb_xent_opts case_opts(const xcase *c, const xdata *d)
{
    nb_xent_opts o = nb_xent_defaults();
    o.ignore_index = c->ignore_index;
    o.mask = d->mask;
    o.weight = d->weight;
    o.label_smoothing = c->smoothing;
    o.reduction = c->reduction;
    o.z_loss = c->z_loss;
    return o;
}

/* Dispatch hard / soft. */
static nb_status xforward(const xcase *c, const nb_tensor *z, const xdata *d, const nb_xent_opts *o,
                          nb_tensor *loss, nb_tensor *lse, nb_xent_stats *st)
{
    return c->soft ? nb_xent_soft_forward(z, d->probs, o, loss, lse, st)
                   : nb_xent_forward(z, d->targets, o, loss, lse, st);
}

static nb_status xbackward(const xcase *c, nb_tensor *dz, const nb_tensor *z, const xdata *d,
                           const nb_xent_opts *o, const nb_tensor *lse, const nb_tensor *dloss)
{
    return c->soft ? nb_xent_soft_backward(dz, z, d->probs, o, lse, dloss)
                   : nb_xent_backward(dz, z, d->targets, o, lse, dloss);
}

static nb_tensor *xgraph(const xcase *c, nb_graph *g, nb_tensor *z, const xdata *d,
                         const nb_xent_opts *o)
{
    return c->soft ? nb_cross_entropy_soft(g, z, d->probs, o)
                   : nb_cross_entropy(g, z, d->targets, o);
}

/* Slow lse of row n in long double (independent of the library). */
static double row_lse(const nb_tensor *z, int64_t n, int64_t V)
{
    long double m = -INFINITY, s = 0.0L;
    for (int64_t j = 0; j < V; j++)
        m = fmaxl(m, (long double)nb_tensor_get(z, n * V + j));
    for (int64_t j = 0; j < V; j++)
        s += expl((long double)nb_tensor_get(z, n * V + j) - m);
    return (double)(m + logl(s));
}

/* Padding rows of a gradient must be exactly 0 (not -0.0 either way matters: == 0.0). */
static int check_padded_rows_zero(const char *name, const char *what, const xdata *d,
                                  const nb_tensor *got, bool use_grad)
{
    int fails = 0;
    for (int64_t n = 0; n < d->rows; n++) {
        if (d->keep[n])
            continue;
        for (int64_t j = 0; j < d->V; j++) {
            double v =
                use_grad ? nb_tensor_grad_get(got, n * d->V + j) : nb_tensor_get(got, n * d->V + j);
            if (v != 0.0) {
                if (fails < 4)
                    print_error("[%s] %s: padded row %lld col %lld is %g, not 0\n", name, what,
                                (long long)n, (long long)j, v);
                fails++;
            }
        }
    }
    return fails;
}

static int loss_ndim(const xcase *c, const xdata *d, int64_t *shape)
{
    if (c->reduction != NB_REDUCTION_NONE)
        return 0;
    for (int i = 0; i < d->row_ndim; i++)
        shape[i] = d->row_shape[i];
    return d->row_ndim;
}

/* ---- the per-case golden test ---- */

static int check_stats(const xcase *c, const xdata *d, const nb_xent_stats *st, const char *tag)
{
    int fails = 0;
    double rtol = rtol_for(d->logits->dtype);
    if (st->n_tokens != d->n_real) {
        print_error("[%s] %s n_tokens %lld, expected %lld\n", c->name, tag, (long long)st->n_tokens,
                    (long long)d->n_real);
        fails++;
    }
    if (!(fabs(st->weight_sum - d->W) <= 1e-12 * fmax(1.0, d->W))) {
        print_error("[%s] %s weight_sum %.17g, expected %.17g\n", c->name, tag, st->weight_sum,
                    d->W);
        fails++;
    }
    /* loss_sum: the sum-form of the loss. */
    double ref_sum = 0.0;
    if (c->reduction == NB_REDUCTION_MEAN)
        ref_sum = nb_tensor_get(d->loss_ref, 0) * d->W;
    else if (c->reduction == NB_REDUCTION_SUM)
        ref_sum = nb_tensor_get(d->loss_ref, 0);
    else
        for (int64_t i = 0; i < d->loss_ref->numel; i++)
            ref_sum += nb_tensor_get(d->loss_ref, i);
    if (d->n_real == 0 ? st->loss_sum != 0.0 : !close_rel(st->loss_sum, ref_sum, rtol)) {
        print_error("[%s] %s loss_sum %.17g, expected %.17g\n", c->name, tag, st->loss_sum,
                    ref_sum);
        fails++;
    }
    /* z_loss_sum = zc sum_n keep_n lse_n^2, lse in long double from the logits. */
    double zref = 0.0;
    for (int64_t n = 0; n < d->rows && c->z_loss != 0.0; n++)
        if (d->keep[n]) {
            double l = row_lse(d->logits, n, d->V);
            zref += c->z_loss * l * l;
        }
    if (zref == 0.0 ? st->z_loss_sum != 0.0 : !close_rel(st->z_loss_sum, zref, rtol)) {
        print_error("[%s] %s z_loss_sum %.17g, expected %.17g\n", c->name, tag, st->z_loss_sum,
                    zref);
        fails++;
    }
    return fails;
}

static void test_golden_case(void **state)
{
    const xcase *c = *state;
    xdata d;
    load_case(c, &d);
    nb_xent_opts o = case_opts(c, &d);
    const nb_dtype ldt = d.logits->dtype, cdt = nb_dtype_compute(ldt);
    int64_t lshape[NB_MAX_DIMS];
    int lnd = loss_ndim(c, &d, lshape);
    assert_int_equal(d.loss_ref->numel, lnd ? d.rows : 1);
    int fails = 0;

    if (!c->soft)
        expect_ok(nb_xent_validate(d.logits, d.targets, &o), "nb_xent_validate", c->name);

    /* Raw forward: loss, lse (0 for padding rows), stats. */
    nb_tensor *loss = new_tensor(cdt, lnd, lshape);
    nb_tensor *lse = new_tensor(NB_F64, d.row_ndim, d.row_shape); /* lse is f64 for every dtype */
    fill(loss, NAN);
    fill(lse, NAN);
    nb_xent_stats st;
    memset(&st, 0xff, sizeof st);
    expect_ok(xforward(c, d.logits, &d, &o, loss, lse, &st), "forward", c->name);
    fails += compare_tensor(c->name, "forward loss", loss, d.loss_ref, 1.0, ldt);
    for (int64_t n = 0; n < d.rows; n++) {
        double got = nb_tensor_get(lse, n);
        double ref = d.keep[n] ? row_lse(d.logits, n, d.V) : 0.0;
        /* lse rounds like the logits it is made of: relative to max(|lse|, 1). */
        bool ok = d.keep[n]
                      ? isfinite(got) && fabs(got - ref) <= rtol_for(ldt) * fmax(fabs(ref), 1.0)
                      : got == 0.0;
        if (!ok) {
            print_error("[%s] lse[%lld]: got %.17g, expected %.17g\n", c->name, (long long)n, got,
                        ref);
            fails++;
        }
    }
    fails += check_stats(c, &d, &st, "forward stats:");

    /* Raw backward, with the saved lse, then recomputing it (lse NULL). dlogits is pre-filled
     * with NaN: the backward overwrites every element. */
    nb_tensor *dz = new_tensor(cdt, d.logits->ndim, d.logits->shape);
    fill(dz, NAN);
    expect_ok(xbackward(c, dz, d.logits, &d, &o, lse, NULL), "backward (saved lse)", c->name);
    fails += compare_tensor(c->name, "backward grad (saved lse)", dz, d.grad_ref, 1.0, ldt);
    fails += check_padded_rows_zero(c->name, "backward grad", &d, dz, false);
    fill(dz, NAN);
    expect_ok(xbackward(c, dz, d.logits, &d, &o, NULL, NULL), "backward (lse NULL)", c->name);
    fails += compare_tensor(c->name, "backward grad (lse NULL)", dz, d.grad_ref, 1.0, ldt);

    /* An upstream gradient of 2.5 (the loss' shape) scales the gradient by 2.5. */
    nb_tensor *dloss = nb_tensor_full(cdt, lnd, lshape, 2.5);
    assert_non_null(dloss);
    fill(dz, NAN);
    expect_ok(xbackward(c, dz, d.logits, &d, &o, lse, dloss), "backward (dloss 2.5)", c->name);
    fails += compare_tensor(c->name, "backward grad (dloss 2.5)", dz, d.grad_ref, 2.5, ldt);

    /* The slow reference (hard targets only). */
    if (!c->soft) {
        fill(loss, NAN);
        fill(dz, NAN);
        expect_ok(nb_xent_reference(d.logits, d.targets, &o, loss, dz), "nb_xent_reference",
                  c->name);
        fails += compare_tensor(c->name, "reference loss", loss, d.loss_ref, 1.0, ldt);
        fails += compare_tensor(c->name, "reference grad", dz, d.grad_ref, 1.0, ldt);
    }

    /* The graph op on a leaf with requires_grad; stats through opts.stats. */
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    nb_tensor *leaf = nb_tensor_clone(d.logits);
    assert_non_null(leaf);
    expect_ok(nb_tensor_set_requires_grad(leaf, true), "nb_tensor_set_requires_grad", c->name);
    nb_xent_stats gst;
    memset(&gst, 0xff, sizeof gst);
    nb_xent_opts go = o;
    go.stats = &gst;
    nb_tensor *L = xgraph(c, g, leaf, &d, &go);
    if (!L)
        print_error("[%s] graph op: %s\n", c->name, nb_last_error());
    assert_non_null(L);
    assert_int_equal(L->dtype, cdt);
    assert_int_equal(L->ndim, lnd);
    fails += compare_tensor(c->name, "graph loss", L, d.loss_ref, 1.0, ldt);
    fails += check_stats(c, &d, &gst, "graph stats:");
    nb_tensor *up = NULL;
    if (lnd) {
        up = nb_tensor_ones(cdt, lnd, lshape);
        assert_non_null(up);
    }
    expect_ok(nb_backward(g, L, up), "nb_backward", c->name);
    fails +=
        compare_values(c->name, "graph grad", d.grad_ref->numel, leaf, true, d.grad_ref, 1.0, ldt);
    fails += check_padded_rows_zero(c->name, "graph grad", &d, leaf, true);

    nb_graph_free(g);
    nb_tensor_free(leaf);
    nb_tensor_free(up);
    nb_tensor_free(dloss);
    nb_tensor_free(dz);
    nb_tensor_free(loss);
    nb_tensor_free(lse);
    free_case(&d);
    assert_int_equal(fails, 0);
}

/* ---- the case list itself ---- */

static void test_case_list(void **state)
{
    (void)state;
    static const char *const required[] = {
        "default",   "pad_ignore0", "mask_u8",     "mask_bool",         "mask_f32",
        "mask_f64",  "smooth",      "smooth_pad",  "weight_smooth_pad", "weight_smooth_mask",
        "sum_pad",   "none_pad",    "f32_huge",    "neginf_col",        "v1",
        "f16",       "all_pad",     "garbage_pad", "garbage_mask",      "zloss",
        "zloss_all", "soft_plain",  "soft_smooth", "soft_weight",       "soft_weight_smooth",
        "soft_mask",
    };
    if (g_ncases < 0)
        print_error("%s/xent_cases.txt could not be read\n", NB_TEST_DATA_DIR);
    assert_true(g_ncases > 0);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!find_case(required[i]))
            print_error("golden case '%s' missing from xent_cases.txt\n", required[i]);
        assert_non_null(find_case(required[i]));
    }
}

/* ---- stats combine; gradient accumulation with the normaliser ---- */

/* A view of rows [r0, r1) along dim 0 of t (NULL stays NULL). */
static nb_tensor *view_rows(nb_tensor *out, const nb_tensor *t, int64_t r0, int64_t r1)
{
    if (!t)
        return NULL;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    int64_t inner = t->numel / t->shape[0];
    shape[0] = r1 - r0;
    char *base = (char *)t->data + (size_t)(r0 * inner) * nb_dtype_size(t->dtype);
    assert_int_equal(nb_tensor_view(out, t->dtype, t->ndim, shape, base), NB_OK);
    return out;
}

static void test_stats_combine(void **state)
{
    (void)state;
    static const char *const names[] = {
        "default",   "weight_smooth_pad", "smooth_mask", "zloss_all", "f32_smooth_weight_mask",
        "soft_mask", "soft_weight_smooth"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const xcase *c = find_case(names[k]);
        assert_non_null(c);
        assert_int_equal(c->reduction, NB_REDUCTION_MEAN);
        xdata d;
        load_case(c, &d);
        nb_xent_opts o = case_opts(c, &d);
        const nb_dtype ldt = d.logits->dtype, cdt = nb_dtype_compute(ldt);
        const double rtol = rtol_for(ldt);
        int fails = 0;

        nb_tensor *loss = new_tensor(cdt, 0, k_scalar);
        nb_xent_stats whole;
        expect_ok(xforward(c, d.logits, &d, &o, loss, NULL, &whole), "forward (whole)", c->name);

        /* Two halves along dim 0. */
        int64_t B = d.logits->shape[0], cut = B / 2;
        nb_xent_stats part[2];
        double loss_acc = 0.0;
        nb_tensor *dz = new_tensor(cdt, d.logits->ndim, d.logits->shape);
        for (int h = 0; h < 2; h++) {
            int64_t r0 = h ? cut : 0, r1 = h ? B : cut;
            nb_tensor vz, vt, vp, vm, vdz;
            xdata dh = d;
            dh.logits = view_rows(&vz, d.logits, r0, r1);
            dh.targets = view_rows(&vt, d.targets, r0, r1);
            dh.probs = view_rows(&vp, d.probs, r0, r1);
            dh.mask = view_rows(&vm, d.mask, r0, r1);
            nb_xent_opts oh = o;
            oh.mask = dh.mask;
            expect_ok(xforward(c, dh.logits, &dh, &oh, loss, NULL, &part[h]), "forward (half)",
                      c->name);
            /* Gradient accumulation: each half divides by the whole batch's W. */
            oh.normaliser = whole.weight_sum;
            expect_ok(xforward(c, dh.logits, &dh, &oh, loss, NULL, NULL),
                      "forward (half, normaliser)", c->name);
            loss_acc += nb_tensor_get(loss, 0);
            view_rows(&vdz, dz, r0, r1);
            expect_ok(xbackward(c, &vdz, dh.logits, &dh, &oh, NULL, NULL),
                      "backward (half, normaliser)", c->name);
        }
        double ls = part[0].loss_sum + part[1].loss_sum;
        double ws = part[0].weight_sum + part[1].weight_sum;
        if (!close_rel(ls, whole.loss_sum, 1e-12) || !close_rel(ws, whole.weight_sum, 1e-12) ||
            part[0].n_tokens + part[1].n_tokens != whole.n_tokens ||
            fabs(part[0].z_loss_sum + part[1].z_loss_sum - whole.z_loss_sum) >
                1e-12 * fabs(whole.z_loss_sum)) {
            print_error("[%s] halves (%.17g, %.17g, %lld) != whole (%.17g, %.17g, %lld)\n", c->name,
                        ls, ws, (long long)(part[0].n_tokens + part[1].n_tokens), whole.loss_sum,
                        whole.weight_sum, (long long)whole.n_tokens);
            fails++;
        }
        double ref = nb_tensor_get(d.loss_ref, 0);
        if (!close_rel(ls / ws, ref, rtol)) {
            print_error("[%s] combined stats %.17g, golden mean %.17g\n", c->name, ls / ws, ref);
            fails++;
        }
        if (!close_rel(loss_acc, ref, rtol)) {
            print_error("[%s] accumulated halves with normaliser %.17g, golden mean %.17g\n",
                        c->name, loss_acc, ref);
            fails++;
        }
        fails += compare_tensor(c->name, "accumulated grad", dz, d.grad_ref, 1.0, ldt);
        nb_tensor_free(loss);
        nb_tensor_free(dz);
        free_case(&d);
        assert_int_equal(fails, 0);
    }
}

/* The normaliser replaces W in the mean: mean with normaliser c = (sum-form loss) / c. The
 * expected values come from the golden sum-reduction cases divided by c. */
static void test_normaliser(void **state)
{
    (void)state;
    const double norms[] = {7.25, 1.0, 1e3};
    int checked = 0;
    for (int i = 0; i < g_ncases; i++) {
        const xcase *c = &g_cases[i];
        if (c->reduction != NB_REDUCTION_SUM)
            continue;
        xdata d;
        load_case(c, &d);
        const nb_dtype ldt = d.logits->dtype, cdt = nb_dtype_compute(ldt);
        int fails = 0;
        for (size_t k = 0; k < sizeof norms / sizeof norms[0]; k++) {
            nb_xent_opts o = case_opts(c, &d);
            o.reduction = NB_REDUCTION_MEAN;
            o.normaliser = norms[k];
            nb_tensor *loss = new_tensor(cdt, 0, k_scalar);
            nb_tensor *dz = new_tensor(cdt, d.logits->ndim, d.logits->shape);
            expect_ok(xforward(c, d.logits, &d, &o, loss, NULL, NULL), "forward", c->name);
            expect_ok(xbackward(c, dz, d.logits, &d, &o, NULL, NULL), "backward", c->name);
            fails +=
                compare_tensor(c->name, "loss / normaliser", loss, d.loss_ref, 1.0 / norms[k], ldt);
            fails +=
                compare_tensor(c->name, "grad / normaliser", dz, d.grad_ref, 1.0 / norms[k], ldt);
            /* And through the graph op. */
            nb_graph *g = nb_graph_new();
            nb_tensor *leaf = nb_tensor_clone(d.logits);
            assert_non_null(g);
            assert_non_null(leaf);
            expect_ok(nb_tensor_set_requires_grad(leaf, true), "requires_grad", c->name);
            nb_tensor *L = xgraph(c, g, leaf, &d, &o);
            assert_non_null(L);
            fails += compare_tensor(c->name, "graph loss / normaliser", L, d.loss_ref,
                                    1.0 / norms[k], ldt);
            expect_ok(nb_backward(g, L, NULL), "nb_backward", c->name);
            fails += compare_values(c->name, "graph grad / normaliser", d.grad_ref->numel, leaf,
                                    true, d.grad_ref, 1.0 / norms[k], ldt);
            nb_graph_free(g);
            nb_tensor_free(leaf);
            nb_tensor_free(loss);
            nb_tensor_free(dz);
        }
        free_case(&d);
        assert_int_equal(fails, 0);
        checked++;
    }
    assert_true(checked >= 3);
}

/* ---- all padding: loss 0 and gradient exactly 0, for every option combination ----
 * The logits are NaN everywhere: padded rows are never read, so nothing may leak. */
static void test_all_padding(void **state)
{
    (void)state;
    const int64_t zs[3] = {2, 3, 4}, ts[2] = {2, 3};
    nb_tensor *z = nb_tensor_full(NB_F64, 3, zs, NAN);
    nb_tensor *probs = nb_tensor_full(NB_F64, 3, zs, 0.25);
    nb_tensor *y_ign = nb_tensor_full(NB_I64, 2, ts, -100);
    nb_tensor *y_ok = nb_tensor_full(NB_I64, 2, ts, 1);
    nb_tensor *mask0 = nb_tensor_zeros(NB_U8, 2, ts);
    const int64_t vs[1] = {4};
    nb_tensor *w = nb_tensor_full(NB_F64, 1, vs, 2.0);
    nb_tensor *dz = nb_tensor_zeros(NB_F64, 3, zs);
    assert_non_null(z);
    assert_non_null(probs);
    assert_non_null(y_ign);
    assert_non_null(y_ok);
    assert_non_null(mask0);
    assert_non_null(w);
    assert_non_null(dz);
    int fails = 0;
    for (int red = 0; red < 3; red++)
        for (int opt = 0; opt < 8; opt++)
            for (int form = 0; form < 3; form++) { /* ignore_index, mask, soft + mask */
                nb_xent_opts o = nb_xent_defaults();
                o.reduction = (nb_reduction)red;
                o.label_smoothing = (opt & 1) ? 0.1 : 0.0;
                o.weight = (opt & 2) ? w : NULL;
                o.z_loss = (opt & 4) ? 0.01 : 0.0;
                o.mask = form ? mask0 : NULL;
                nb_xent_stats st;
                memset(&st, 0xff, sizeof st);
                nb_tensor *loss = red == NB_REDUCTION_NONE ? nb_tensor_empty(NB_F64, 2, ts)
                                                           : nb_tensor_empty(NB_F64, 0, k_scalar);
                assert_non_null(loss);
                fill(loss, NAN);
                fill(dz, NAN);
                const nb_tensor *y = form == 0 ? y_ign : y_ok;
                nb_status s1, s2;
                if (form == 2) {
                    s1 = nb_xent_soft_forward(z, probs, &o, loss, NULL, &st);
                    s2 = nb_xent_soft_backward(dz, z, probs, &o, NULL, NULL);
                } else {
                    s1 = nb_xent_forward(z, y, &o, loss, NULL, &st);
                    s2 = nb_xent_backward(dz, z, y, &o, NULL, NULL);
                }
                bool bad = s1 != NB_OK || s2 != NB_OK || st.loss_sum != 0.0 ||
                           st.weight_sum != 0.0 || st.n_tokens != 0 || st.z_loss_sum != 0.0;
                for (int64_t i = 0; i < loss->numel; i++)
                    bad |= nb_tensor_get(loss, i) != 0.0;
                for (int64_t i = 0; i < dz->numel; i++)
                    bad |= nb_tensor_get(dz, i) != 0.0;
                /* Graph op. */
                nb_graph *g = nb_graph_new();
                nb_tensor *leaf = nb_tensor_clone(z);
                assert_non_null(g);
                assert_non_null(leaf);
                expect_ok(nb_tensor_set_requires_grad(leaf, true), "requires_grad", "all_padding");
                nb_tensor *L = form == 2 ? nb_cross_entropy_soft(g, leaf, probs, &o)
                                         : nb_cross_entropy(g, leaf, y, &o);
                if (!L) {
                    bad = true;
                } else {
                    for (int64_t i = 0; i < L->numel; i++)
                        bad |= nb_tensor_get(L, i) != 0.0;
                    nb_tensor *up = red == NB_REDUCTION_NONE ? nb_tensor_ones(NB_F64, 2, ts) : NULL;
                    bad |= nb_backward(g, L, up) != NB_OK;
                    for (int64_t i = 0; i < leaf->numel; i++)
                        bad |= nb_tensor_grad_get(leaf, i) != 0.0;
                    nb_tensor_free(up);
                }
                if (bad) {
                    print_error("all padding: reduction %d smoothing %g weight %d z_loss %g form "
                                "%d: loss %g, stats (%g, %g, %lld), status %s/%s (%s)\n",
                                red, o.label_smoothing, o.weight != NULL, o.z_loss, form,
                                nb_tensor_get(loss, 0), st.loss_sum, st.weight_sum,
                                (long long)st.n_tokens, nb_status_name(s1), nb_status_name(s2),
                                nb_last_error());
                    fails++;
                }
                nb_graph_free(g);
                nb_tensor_free(leaf);
                nb_tensor_free(loss);
            }
    nb_tensor_free(z);
    nb_tensor_free(probs);
    nb_tensor_free(y_ign);
    nb_tensor_free(y_ok);
    nb_tensor_free(mask0);
    nb_tensor_free(w);
    nb_tensor_free(dz);
    assert_int_equal(fails, 0);
}

/* ---- garbage in padded rows changes nothing (bit for bit) ----
 * For golden cases with padding, overwrite every padded row with NaN, +inf, -inf and 1e308
 * and compare with the clean run: loss, stats and gradient must be identical, and the padded
 * rows' gradient exactly 0. */
static void test_padded_garbage(void **state)
{
    (void)state;
    static const char *const names[] = {"mask_u8",    "mask_bool",
                                        "smooth_pad", "weight_smooth_mask",
                                        "none_pad",   "sum_pad",
                                        "zloss_all",  "zloss_none",
                                        "f16",        "f32_smooth_weight_mask",
                                        "soft_mask",  "soft_none_mask"};
    const double junk[4] = {NAN, INFINITY, -INFINITY, 1e308};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const xcase *c = find_case(names[k]);
        assert_non_null(c);
        xdata d;
        load_case(c, &d);
        assert_true(d.n_real < d.rows); /* the case has padding */
        nb_xent_opts o = case_opts(c, &d);
        const nb_dtype cdt = nb_dtype_compute(d.logits->dtype);
        int64_t lshape[NB_MAX_DIMS];
        int lnd = loss_ndim(c, &d, lshape);
        nb_tensor *dirty = nb_tensor_clone(d.logits);
        assert_non_null(dirty);
        for (int64_t n = 0; n < d.rows; n++)
            if (!d.keep[n])
                for (int64_t j = 0; j < d.V; j++)
                    nb_tensor_set(dirty, n * d.V + j, junk[(n + j) % 4]);
        nb_tensor *l0 = new_tensor(cdt, lnd, lshape), *l1 = new_tensor(cdt, lnd, lshape);
        nb_tensor *g0 = new_tensor(cdt, d.logits->ndim, d.logits->shape);
        nb_tensor *g1 = new_tensor(cdt, d.logits->ndim, d.logits->shape);
        nb_xent_stats s0, s1;
        expect_ok(xforward(c, d.logits, &d, &o, l0, NULL, &s0), "forward (clean)", c->name);
        expect_ok(xforward(c, dirty, &d, &o, l1, NULL, &s1), "forward (garbage)", c->name);
        expect_ok(xbackward(c, g0, d.logits, &d, &o, NULL, NULL), "backward (clean)", c->name);
        expect_ok(xbackward(c, g1, dirty, &d, &o, NULL, NULL), "backward (garbage)", c->name);
        int fails = 0;
        for (int64_t i = 0; i < l0->numel; i++)
            if (!(nb_tensor_get(l0, i) == nb_tensor_get(l1, i))) {
                print_error("[%s] loss[%lld] clean %.17g, with garbage %.17g\n", c->name,
                            (long long)i, nb_tensor_get(l0, i), nb_tensor_get(l1, i));
                fails++;
            }
        if (!(s0.loss_sum == s1.loss_sum && s0.weight_sum == s1.weight_sum &&
              s0.n_tokens == s1.n_tokens)) {
            print_error("[%s] stats differ with garbage: loss_sum %.17g vs %.17g\n", c->name,
                        s0.loss_sum, s1.loss_sum);
            fails++;
        }
        for (int64_t i = 0; i < g0->numel; i++)
            if (!(nb_tensor_get(g0, i) == nb_tensor_get(g1, i))) {
                if (fails < 8)
                    print_error("[%s] grad[%lld] clean %.17g, with garbage %.17g\n", c->name,
                                (long long)i, nb_tensor_get(g0, i), nb_tensor_get(g1, i));
                fails++;
            }
        fails += check_padded_rows_zero(c->name, "grad with garbage", &d, g1, false);
        fails += compare_tensor(c->name, "loss with garbage", l1, d.loss_ref, 1.0, d.logits->dtype);
        /* Graph op on the dirty leaf. */
        nb_graph *g = nb_graph_new();
        assert_non_null(g);
        expect_ok(nb_tensor_set_requires_grad(dirty, true), "requires_grad", c->name);
        nb_tensor *L = xgraph(c, g, dirty, &d, &o);
        assert_non_null(L);
        nb_tensor *up = lnd ? nb_tensor_ones(cdt, lnd, lshape) : NULL;
        expect_ok(nb_backward(g, L, up), "nb_backward", c->name);
        fails +=
            compare_tensor(c->name, "graph loss with garbage", L, d.loss_ref, 1.0, d.logits->dtype);
        fails += compare_values(c->name, "graph grad with garbage", d.grad_ref->numel, dirty, true,
                                d.grad_ref, 1.0, d.logits->dtype);
        fails += check_padded_rows_zero(c->name, "graph grad with garbage", &d, dirty, true);
        nb_graph_free(g);
        nb_tensor_free(up);
        nb_tensor_free(dirty);
        nb_tensor_free(l0);
        nb_tensor_free(l1);
        nb_tensor_free(g0);
        nb_tensor_free(g1);
        free_case(&d);
        assert_int_equal(fails, 0);
    }
}

/* ---- float64 gradcheck for every option combination ---- */

typedef struct gc_ctx {
    const nb_tensor *targets, *probs;
    nb_xent_opts o;
} gc_ctx;

static nb_tensor *apply_xent(nb_graph *g, nb_tensor *const *inputs, int n_inputs, void *ctx)
{
    (void)n_inputs;
    const gc_ctx *c = ctx;
    return c->probs ? nb_cross_entropy_soft(g, inputs[0], c->probs, &c->o)
                    : nb_cross_entropy(g, inputs[0], c->targets, &c->o);
}

static void test_gradcheck_options(void **state)
{
    (void)state;
    const int64_t zs[3] = {2, 3, 5}, ts[2] = {2, 3}, vs[1] = {5};
    nb_rng rng;
    nb_rng_seed(&rng, 2024);
    nb_tensor *z = nb_tensor_randn(NB_F64, 3, zs, &rng, 0.0, 2.0);
    nb_tensor *y = nb_tensor_zeros(NB_I64, 2, ts);
    nb_tensor *mask = nb_tensor_zeros(NB_U8, 2, ts);
    nb_tensor *w = nb_tensor_rand(NB_F64, 1, vs, &rng, 0.5, 2.0);
    nb_tensor *probs = nb_tensor_rand(NB_F64, 3, zs, &rng, 0.05, 1.0);
    assert_non_null(z);
    assert_non_null(y);
    assert_non_null(mask);
    assert_non_null(w);
    assert_non_null(probs);
    for (int64_t i = 0; i < y->numel; i++)
        nb_tensor_set(y, i, (double)nb_rng_below(&rng, 5));
    nb_tensor_set(y, 4, -100);  /* one ignore_index padding */
    const int lens[2] = {3, 2}; /* mask: last position of row 1 is padding */
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < lens[b]; t++)
            nb_tensor_set(mask, b * 3 + t, 1);
    for (int64_t n = 0; n < 6; n++) { /* normalise the soft targets */
        double s = 0.0;
        for (int j = 0; j < 5; j++)
            s += nb_tensor_get(probs, n * 5 + j);
        for (int j = 0; j < 5; j++)
            nb_tensor_set(probs, n * 5 + j, nb_tensor_get(probs, n * 5 + j) / s);
    }
    expect_ok(nb_tensor_set_requires_grad(z, true), "requires_grad", "gradcheck");

    /* opt bits: 1 mask, 2 weight, 4 smoothing, 8 z_loss, 16 normaliser; plus soft. */
    const int opt_sets[] = {0, 1, 2, 4, 8, 16, 1 | 2, 2 | 4, 1 | 2 | 4 | 8, 1 | 2 | 4 | 8 | 16};
    int fails = 0, runs = 0;
    for (int soft = 0; soft < 2; soft++)
        for (int red = 0; red < 3; red++)
            for (size_t k = 0; k < sizeof opt_sets / sizeof opt_sets[0]; k++) {
                int bits = opt_sets[k];
                if ((bits & 16) && red != NB_REDUCTION_MEAN)
                    continue;
                gc_ctx ctx = {.targets = y, .probs = soft ? probs : NULL};
                ctx.o = nb_xent_defaults();
                ctx.o.reduction = (nb_reduction)red;
                ctx.o.mask = (bits & 1) ? mask : NULL;
                ctx.o.weight = (bits & 2) ? w : NULL;
                ctx.o.label_smoothing = (bits & 4) ? 0.1 : 0.0;
                ctx.o.z_loss = (bits & 8) ? 0.05 : 0.0;
                ctx.o.normaliser = (bits & 16) ? 3.5 : 0.0;
                nb_tensor *inputs[1] = {z};
                nb_gradcheck_result res;
                memset(&res, 0, sizeof res);
                nb_status s = nb_gradcheck(apply_xent, inputs, 1, &ctx, NULL, &res);
                runs++;
                if (s != NB_OK || !(res.max_rel_err < 1e-6) || res.n_checked != z->numel) {
                    print_error("gradcheck soft=%d reduction=%d opts=0x%x: %s, max rel err %g "
                                "at %lld (analytic %.17g, numeric %.17g), %lld checked %s\n",
                                soft, red, bits, nb_status_name(s), res.max_rel_err,
                                (long long)res.worst_index, res.worst_analytic, res.worst_numeric,
                                (long long)res.n_checked, s != NB_OK ? nb_last_error() : "");
                    fails++;
                }
            }
    assert_true(runs >= 50);
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(mask);
    nb_tensor_free(w);
    nb_tensor_free(probs);
    assert_int_equal(fails, 0);
}

/* ---- bad inputs ----
 * Each must return the documented status (status.h) with a message containing a key word, from
 * nb_xent_validate, nb_xent_forward, nb_xent_backward and the graph op (which returns NULL). */

typedef struct bad_input {
    const char *label;
    const nb_tensor *logits, *targets;
    nb_xent_opts o;
    nb_status want;
    const char *words[3]; /* every non-NULL word must appear (case-insensitive) */
} bad_input;

static int check_error(const char *label, const char *fn, nb_status s, nb_status want,
                       const char *const *words)
{
    const char *msg = nb_last_error();
    bool ok = s == want && msg && msg[0];
    for (int i = 0; ok && i < 3 && words[i]; i++)
        ok = contains_ci(msg, words[i]);
    if (!ok) {
        print_error("bad input '%s' via %s: status %s (want %s), message \"%s\"", label, fn,
                    nb_status_name(s), nb_status_name(want), msg ? msg : "(null)");
        for (int i = 0; i < 3 && words[i]; i++)
            print_error(" [needs \"%s\"]", words[i]);
        print_error("\n");
    }
    return !ok;
}

static int run_bad(const bad_input *b)
{
    int fails = 0;
    const int64_t *zs = b->logits ? b->logits->shape : NULL;
    nb_dtype cdt = NB_F64;
    if (b->logits && nb_dtype_is_float(b->logits->dtype))
        cdt = nb_dtype_compute(b->logits->dtype);
    /* Outputs shaped for the logits so that only the named problem is wrong. */
    int64_t rs[NB_MAX_DIMS] = {0};
    int rnd = b->logits ? b->logits->ndim - 1 : 0;
    for (int i = 0; i < rnd; i++)
        rs[i] = zs[i];
    nb_tensor *loss = b->o.reduction == NB_REDUCTION_NONE ? nb_tensor_zeros(cdt, rnd, rs)
                                                          : nb_tensor_zeros(cdt, 0, k_scalar);
    nb_tensor *dz = b->logits ? nb_tensor_zeros(cdt, b->logits->ndim, zs) : NULL;
    assert_non_null(loss);

    nb_clear_error();
    fails += check_error(b->label, "nb_xent_validate",
                         nb_xent_validate(b->logits, b->targets, &b->o), b->want, b->words);
    nb_clear_error();
    fails += check_error(b->label, "nb_xent_forward",
                         nb_xent_forward(b->logits, b->targets, &b->o, loss, NULL, NULL), b->want,
                         b->words);
    if (dz) {
        nb_clear_error();
        fails += check_error(b->label, "nb_xent_backward",
                             nb_xent_backward(dz, b->logits, b->targets, &b->o, NULL, NULL),
                             b->want, b->words);
        nb_clear_error();
        nb_tensor *ref_dz = dz;
        fails += check_error(b->label, "nb_xent_reference",
                             nb_xent_reference(b->logits, b->targets, &b->o, loss, ref_dz), b->want,
                             b->words);
    }
    /* The graph op (ops.h: an op given a NULL input keeps the earlier error, so NULL inputs are
     * only checked not to crash). */
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    nb_clear_error();
    nb_tensor *L = nb_cross_entropy(g, (nb_tensor *)b->logits, b->targets, &b->o);
    if (L) {
        print_error("bad input '%s': nb_cross_entropy returned a tensor\n", b->label);
        fails++;
    } else if (b->logits && b->targets) {
        fails += check_error(b->label, "nb_cross_entropy", nb_last_status(), b->want, b->words);
    }
    nb_graph_free(g);
    nb_tensor_free(loss);
    nb_tensor_free(dz);
    return fails;
}

static void test_bad_inputs(void **state)
{
    (void)state;
    const int64_t zs[2] = {4, 5}, ys[1] = {4}, y3[1] = {3}, y22[2] = {2, 2}, v6[1] = {6},
                  w15[2] = {1, 5};
    nb_tensor *z = nb_tensor_zeros(NB_F64, 2, zs);
    nb_tensor *zi = nb_tensor_zeros(NB_I32, 2, zs);
    nb_tensor *y = nb_tensor_zeros(NB_I64, 1, ys);
    nb_tensor *y_oob = nb_tensor_zeros(NB_I64, 1, ys);
    nb_tensor *y_eqv = nb_tensor_zeros(NB_I32, 1, ys);
    nb_tensor *y_neg = nb_tensor_zeros(NB_I64, 1, ys);
    nb_tensor *y_pad = nb_tensor_zeros(NB_I64, 1, ys);
    nb_tensor *y_short = nb_tensor_zeros(NB_I64, 1, y3);
    nb_tensor *y_2d = nb_tensor_zeros(NB_I64, 2, y22);
    nb_tensor *y_f = nb_tensor_zeros(NB_F32, 1, ys);
    nb_tensor *m_short = nb_tensor_ones(NB_U8, 1, y3);
    nb_tensor *m_i32 = nb_tensor_ones(NB_I32, 1, ys);
    nb_tensor *w6 = nb_tensor_ones(NB_F64, 1, v6);
    nb_tensor *w2d = nb_tensor_ones(NB_F64, 2, w15);
    const int64_t v5[1] = {5};
    nb_tensor *w_i = nb_tensor_ones(NB_I64, 1, v5);
    assert_non_null(z);
    assert_non_null(zi);
    assert_non_null(y);
    assert_non_null(y_oob);
    assert_non_null(y_eqv);
    assert_non_null(y_neg);
    assert_non_null(y_pad);
    assert_non_null(y_short);
    assert_non_null(y_2d);
    assert_non_null(y_f);
    assert_non_null(m_short);
    assert_non_null(m_i32);
    assert_non_null(w6);
    assert_non_null(w2d);
    assert_non_null(w_i);
    for (int i = 0; i < 4; i++) {
        nb_tensor_set(y, i, i);
        nb_tensor_set(y_oob, i, i);
        nb_tensor_set(y_eqv, i, i);
        nb_tensor_set(y_neg, i, i);
        nb_tensor_set(y_pad, i, i + 1);
    }
    nb_tensor_set(y_oob, 3, 17);   /* row 3: 17 for 5 classes */
    nb_tensor_set(y_eqv, 2, 5);    /* row 2: exactly V */
    nb_tensor_set(y_neg, 1, -5);   /* negative, not ignore_index */
    nb_tensor_set(y_pad, 0, -100); /* -100 when ignore_index is 0 */

    nb_xent_opts d = nb_xent_defaults();
    bad_input bad[32];
    int nb = 0;
#define BAD(lbl, L, T, want_, w0, w1, w2, ...)                                                     \
    do {                                                                                           \
        bad_input *b_ = &bad[nb++];                                                                \
        b_->label = lbl;                                                                           \
        b_->logits = L;                                                                            \
        b_->targets = T;                                                                           \
        b_->o = d;                                                                                 \
        __VA_ARGS__;                                                                               \
        b_->want = want_;                                                                          \
        b_->words[0] = w0;                                                                         \
        b_->words[1] = w1;                                                                         \
        b_->words[2] = w2;                                                                         \
    } while (0)
    BAD("target 17 >= V at row 3", z, y_oob, NB_ERR_RANGE, "out of range", "17", "3", (void)0);
    BAD("target == V", z, y_eqv, NB_ERR_RANGE, "out of range", "5", NULL, (void)0);
    BAD("target == V (reduction none)", z, y_eqv, NB_ERR_RANGE, "out of range", NULL, NULL,
        b_->o.reduction = NB_REDUCTION_NONE);
    BAD("negative target", z, y_neg, NB_ERR_RANGE, "-5", NULL, NULL, (void)0);
    BAD("-100 with ignore_index 0", z, y_pad, NB_ERR_RANGE, "-100", NULL, NULL,
        b_->o.ignore_index = 0);
    BAD("smoothing -0.1", z, y, NB_ERR_ARG, "smoothing", NULL, NULL, b_->o.label_smoothing = -0.1);
    BAD("smoothing 1", z, y, NB_ERR_ARG, "smoothing", NULL, NULL, b_->o.label_smoothing = 1.0);
    BAD("smoothing 1.5", z, y, NB_ERR_ARG, "smoothing", NULL, NULL, b_->o.label_smoothing = 1.5);
    BAD("smoothing NaN", z, y, NB_ERR_ARG, "smoothing", NULL, NULL, b_->o.label_smoothing = NAN);
    BAD("normaliser NaN", z, y, NB_ERR_ARG, "normali", NULL, NULL, b_->o.normaliser = NAN);
    BAD("normaliser -1", z, y, NB_ERR_ARG, "normali", NULL, NULL, b_->o.normaliser = -1.0);
    BAD("normaliser inf", z, y, NB_ERR_ARG, "normali", NULL, NULL, b_->o.normaliser = INFINITY);
    BAD("z_loss -1", z, y, NB_ERR_ARG, "z", "loss", NULL, b_->o.z_loss = -1.0);
    BAD("z_loss NaN", z, y, NB_ERR_ARG, "z", "loss", NULL, b_->o.z_loss = NAN);
    BAD("reduction 7", z, y, NB_ERR_ARG, "reduction", NULL, NULL,
        b_->o.reduction = (nb_reduction)7);
    BAD("targets [3] for logits [4,5]", z, y_short, NB_ERR_SHAPE, "target", NULL, NULL, (void)0);
    BAD("targets [2,2] for logits [4,5]", z, y_2d, NB_ERR_SHAPE, "target", NULL, NULL, (void)0);
    BAD("mask [3] for targets [4]", z, y, NB_ERR_SHAPE, "mask", NULL, NULL, b_->o.mask = m_short);
    BAD("mask i32", z, y, NB_ERR_DTYPE, "mask", NULL, NULL, b_->o.mask = m_i32);
    BAD("weight [6] for V 5", z, y, NB_ERR_SHAPE, "weight", NULL, NULL, b_->o.weight = w6);
    BAD("weight [1,5]", z, y, NB_ERR_SHAPE, "weight", NULL, NULL, b_->o.weight = w2d);
    BAD("weight i64", z, y, NB_ERR_DTYPE, "weight", NULL, NULL, b_->o.weight = w_i);
    BAD("logits i32", zi, y, NB_ERR_DTYPE, "logits", NULL, NULL, (void)0);
    BAD("targets f32", z, y_f, NB_ERR_DTYPE, "target", NULL, NULL, (void)0);
    BAD("logits NULL", NULL, y, NB_ERR_ARG, "logits", NULL, NULL, (void)0);
    BAD("targets NULL", z, NULL, NB_ERR_ARG, "target", NULL, NULL, (void)0);
#undef BAD
    int fails = 0;
    for (int i = 0; i < nb; i++)
        fails += run_bad(&bad[i]);

    /* Output tensors of the raw kernels: wrong loss shape / dtype, wrong dlogits / lse shape. */
    const int64_t z54[2] = {5, 4};
    nb_tensor *loss0 = nb_tensor_zeros(NB_F64, 0, k_scalar);
    nb_tensor *loss4 = nb_tensor_zeros(NB_F64, 1, ys);
    nb_tensor *loss_f32 = nb_tensor_zeros(NB_F32, 0, k_scalar);
    nb_tensor *lse3 = nb_tensor_zeros(NB_F64, 1, y3);
    nb_tensor *dz_bad = nb_tensor_zeros(NB_F64, 2, z54);
    nb_tensor *dz_i = nb_tensor_zeros(NB_I32, 2, zs);
    nb_tensor *dloss_bad = nb_tensor_zeros(NB_F64, 1, y3);
    nb_tensor *dz_ok = nb_tensor_zeros(NB_F64, 2, zs);
    assert_non_null(dz_ok);
    assert_non_null(loss0);
    assert_non_null(loss4);
    assert_non_null(loss_f32);
    assert_non_null(lse3);
    assert_non_null(dz_bad);
    assert_non_null(dz_i);
    assert_non_null(dloss_bad);
    nb_xent_opts none = d;
    none.reduction = NB_REDUCTION_NONE;
    const char *const w_loss[3] = {"loss", NULL, NULL};
    const char *const w_lse[3] = {"lse", NULL, NULL};
    const char *const w_dz[3] = {"logits", NULL, NULL};
    const char *const w_any[3] = {NULL, NULL, NULL};
    nb_clear_error();
    fails += check_error("loss [] for reduction none", "nb_xent_forward",
                         nb_xent_forward(z, y, &none, loss0, NULL, NULL), NB_ERR_SHAPE, w_loss);
    nb_clear_error();
    fails += check_error("loss [4] for reduction mean", "nb_xent_forward",
                         nb_xent_forward(z, y, &d, loss4, NULL, NULL), NB_ERR_SHAPE, w_loss);
    nb_clear_error();
    fails += check_error("loss f32 for f64 logits", "nb_xent_forward",
                         nb_xent_forward(z, y, &d, loss_f32, NULL, NULL), NB_ERR_DTYPE, w_loss);
    nb_clear_error();
    fails += check_error("loss NULL", "nb_xent_forward",
                         nb_xent_forward(z, y, &d, NULL, NULL, NULL), NB_ERR_ARG, w_loss);
    nb_clear_error();
    fails += check_error("lse [3] for 4 rows", "nb_xent_forward",
                         nb_xent_forward(z, y, &d, loss0, lse3, NULL), NB_ERR_SHAPE, w_lse);
    nb_clear_error();
    fails += check_error("dlogits [5,4] for logits [4,5]", "nb_xent_backward",
                         nb_xent_backward(dz_bad, z, y, &d, NULL, NULL), NB_ERR_SHAPE, w_dz);
    nb_clear_error();
    fails += check_error("dlogits i32", "nb_xent_backward",
                         nb_xent_backward(dz_i, z, y, &d, NULL, NULL), NB_ERR_DTYPE, w_dz);
    nb_clear_error();
    fails += check_error("dlogits NULL", "nb_xent_backward",
                         nb_xent_backward(NULL, z, y, &d, NULL, NULL), NB_ERR_ARG, w_any);
    nb_clear_error();
    fails += check_error("lse [3] in backward", "nb_xent_backward",
                         nb_xent_backward(dz_ok, z, y, &d, lse3, NULL), NB_ERR_SHAPE, w_any);
    nb_clear_error();
    fails += check_error("dloss [3] for loss []", "nb_xent_backward",
                         nb_xent_backward(dz_ok, z, y, &d, NULL, dloss_bad), NB_ERR_SHAPE, w_any);

    /* Soft targets: probs shape and dtype. */
    const int64_t z45p[2] = {4, 6};
    nb_tensor *p_bad = nb_tensor_zeros(NB_F64, 2, z45p);
    nb_tensor *p_int = nb_tensor_zeros(NB_I64, 2, zs);
    assert_non_null(p_bad);
    assert_non_null(p_int);
    const char *const w_prob[3] = {"prob", NULL, NULL};
    nb_clear_error();
    fails +=
        check_error("probs [4,6] for logits [4,5]", "nb_xent_soft_forward",
                    nb_xent_soft_forward(z, p_bad, &d, loss0, NULL, NULL), NB_ERR_SHAPE, w_prob);
    nb_clear_error();
    fails +=
        check_error("probs i64", "nb_xent_soft_forward",
                    nb_xent_soft_forward(z, p_int, &d, loss0, NULL, NULL), NB_ERR_DTYPE, w_prob);
    nb_clear_error();
    fails +=
        check_error("probs [4,6] (backward)", "nb_xent_soft_backward",
                    nb_xent_soft_backward(dz_ok, z, p_bad, &d, NULL, NULL), NB_ERR_SHAPE, w_prob);
    {
        nb_xent_opts sm = d;
        sm.label_smoothing = 1.0;
        const char *const w_sm[3] = {"smoothing", NULL, NULL};
        nb_tensor *p_ok = nb_tensor_full(NB_F64, 2, zs, 0.2);
        assert_non_null(p_ok);
        nb_clear_error();
        fails +=
            check_error("soft smoothing 1", "nb_xent_soft_forward",
                        nb_xent_soft_forward(z, p_ok, &sm, loss0, NULL, NULL), NB_ERR_ARG, w_sm);
        nb_graph *g = nb_graph_new();
        assert_non_null(g);
        nb_clear_error();
        if (nb_cross_entropy_soft(g, z, p_bad, &d) != NULL) {
            print_error("nb_cross_entropy_soft accepted probs [4,6] for logits [4,5]\n");
            fails++;
        } else {
            fails += check_error("probs [4,6] (graph)", "nb_cross_entropy_soft", nb_last_status(),
                                 NB_ERR_SHAPE, w_prob);
        }
        nb_graph_free(g);
        nb_tensor_free(p_ok);
    }

    nb_tensor *all[] = {z,    zi,      y,     y_oob,     y_eqv, y_neg, y_pad, y_short, y_2d,
                        y_f,  m_short, m_i32, w6,        w2d,   w_i,   loss0, loss4,   loss_f32,
                        lse3, dz_bad,  dz_i,  dloss_bad, p_bad, p_int, dz_ok};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_free(all[i]);
    assert_int_equal(fails, 0);
}

/* A padded row's target is never read, so an out-of-range target there is not an error; the
 * same target on a real row is. */
static void test_padded_target_not_checked(void **state)
{
    (void)state;
    const int64_t zs[2] = {3, 4}, ys[1] = {3};
    nb_tensor *z = nb_tensor_zeros(NB_F64, 2, zs);
    nb_tensor *y = nb_tensor_zeros(NB_I64, 1, ys);
    nb_tensor *m = nb_tensor_ones(NB_U8, 1, ys);
    nb_tensor *loss = nb_tensor_zeros(NB_F64, 0, k_scalar);
    assert_non_null(z);
    assert_non_null(y);
    assert_non_null(m);
    assert_non_null(loss);
    nb_tensor_set(y, 1, 99);
    nb_tensor_set(m, 1, 0);
    nb_xent_opts o = nb_xent_defaults();
    o.mask = m;
    expect_ok(nb_xent_validate(z, y, &o), "validate (masked bad target)", "padded target");
    expect_ok(nb_xent_forward(z, y, &o, loss, NULL, NULL), "forward (masked bad target)",
              "padded target");
    /* Uniform logits: each real row's loss is log 4. */
    assert_true(fabs(nb_tensor_get(loss, 0) - log(4.0)) < 1e-15);
    nb_tensor_set(m, 1, 1);
    nb_clear_error();
    assert_int_not_equal(nb_xent_validate(z, y, &o), NB_OK);
    assert_true(contains_ci(nb_last_error(), "99"));
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(m);
    nb_tensor_free(loss);
}

/* Rows of equal huge logits: loss log V and gradient 1/V - onehot, exactly what the math says.
 * Forming lse = m + log V first would round log V away at 1e38 (f32) and 1e300 (f64); the kernels
 * keep (m, log s) apart. Hand-worked: V = 4, target 1. */
static void test_huge_equal_logits(void **state)
{
    (void)state;
    const double mags[2] = {3e38, 1e300};
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        for (int sign = -1; sign <= 1; sign += 2) {
            int64_t sz[2] = {1, 4}, sy[1] = {1};
            nb_tensor *z = nb_tensor_full(dt, 2, sz, sign * mags[d]);
            int32_t y1 = 1;
            nb_tensor *y = nb_tensor_from_buffer(NB_I32, 1, sy, &y1);
            nb_tensor *loss = nb_tensor_zeros(dt, 0, NULL), *dz = nb_tensor_zeros(dt, 2, sz);
            assert_int_equal(nb_xent_forward(z, y, NULL, loss, NULL, NULL), NB_OK);
            assert_int_equal(nb_xent_backward(dz, z, y, NULL, NULL, NULL), NB_OK);
            double tol = d ? 1e-15 : 1e-6;
            assert_true(fabs(nb_tensor_get(loss, 0) - log(4.0)) < tol);
            for (int j = 0; j < 4; j++)
                assert_true(fabs(nb_tensor_get(dz, j) - (0.25 - (j == 1))) < tol);
            nb_graph *g = nb_graph_new();
            nb_tensor_set_requires_grad(z, true);
            nb_tensor *L = nb_cross_entropy(g, z, y, NULL);
            assert_int_equal(nb_backward(g, L, NULL), NB_OK);
            assert_true(fabs(nb_tensor_get(L, 0) - log(4.0)) < tol);
            for (int j = 0; j < 4; j++)
                assert_true(fabs(nb_tensor_grad_get(z, j) - (0.25 - (j == 1))) < tol);
            nb_graph_free(g);
            nb_tensor_free(z);
            nb_tensor_free(y);
            nb_tensor_free(loss);
            nb_tensor_free(dz);
        }
    }
}

int main(void)
{
    g_ncases = read_cases();
    static struct CMUnitTest tests[MAX_CASES + 16];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_case_list);
    for (int i = 0; i < g_ncases; i++)
        tests[n++] =
            (struct CMUnitTest){g_cases[i].name, test_golden_case, NULL, NULL, &g_cases[i]};
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_stats_combine),
        cmocka_unit_test(test_normaliser),
        cmocka_unit_test(test_all_padding),
        cmocka_unit_test(test_padded_garbage),
        cmocka_unit_test(test_gradcheck_options),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_padded_target_not_checked),
        cmocka_unit_test(test_huge_equal_logits),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("test_cross_entropy", tests, n, NULL, NULL);
}
