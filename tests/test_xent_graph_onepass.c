/* test_xent_graph_onepass.c - the cross-entropy graph op's one pass (nabla/loss.h at
 * nb_cross_entropy) against its two passes (opts.two_pass), bitwise.
 *
 * The logits are an op's output (z = 1.0 x of a leaf x, exact), as a Linear's are in training.
 * For every option, f32 and f64, hard and soft targets, each upstream (1, a scalar 2.5, a
 * per-row one for reduction none) and each use (the loss alone, logits used twice with the other
 * use's backward running before or after the loss's, the loss scaled in the graph, the sum of two
 * losses), the loss, the stats, dL/dz and dL/dx must be the same bytes. That the one pass ran is
 * checked, not assumed: its forward holds the gradient buffer in the arena (one N x V more), and
 * where the upstream is 1 the logits are overwritten with NaN between forward and backward, which
 * the one pass never reads again (the two passes would read NaN). Evaluation, logits that take no
 * gradient, leaf logits and f16/bf16 (which no op outputs, so they are leaves) keep two passes:
 * no extra arena memory. The one pass's kernel itself is checked on f16/bf16 logits too, against
 * the two kernels, for the day an op makes half logits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "loss/xent_internal.h" /* nb_xent_forward_grad_impl: the one pass's kernel */

enum { W32 = 1, W64 = 2, MASK = 4, IGN0 = 8, ALLPAD = 16, SOFT = 32 };

typedef struct xcase {
    const char *name;
    unsigned flags;
    double a, norm, zl;
    nb_reduction red;
} xcase;

static const xcase cases[] = {
    {"mean", 0, 0, 0, 0, NB_REDUCTION_MEAN},
    {"sum", 0, 0, 0, 0, NB_REDUCTION_SUM},
    {"none", 0, 0, 0, 0, NB_REDUCTION_NONE},
    {"ignore_index 0", IGN0, 0, 0, 0, NB_REDUCTION_MEAN},
    {"u8 mask", MASK, 0, 0, 0, NB_REDUCTION_MEAN},
    {"smoothing 0.1", 0, 0.1, 0, 0, NB_REDUCTION_MEAN},
    {"weights f32", W32, 0, 0, 0, NB_REDUCTION_MEAN},
    {"weights f64 + smoothing", W64, 0.2, 0, 0, NB_REDUCTION_MEAN},
    {"normaliser 7", 0, 0, 7.0, 0, NB_REDUCTION_MEAN},
    {"z-loss", 0, 0, 0, 1e-3, NB_REDUCTION_MEAN},
    {"all options, sum", W32 | MASK | IGN0, 0.1, 0, 1e-3, NB_REDUCTION_SUM},
    {"all options, none", W64 | MASK, 0.1, 0, 1e-3, NB_REDUCTION_NONE},
    {"all options, normaliser", W32 | MASK, 0.1, 5.0, 1e-3, NB_REDUCTION_MEAN},
    {"all padding", ALLPAD, 0.1, 0, 0, NB_REDUCTION_MEAN},
    {"soft targets", SOFT, 0, 0, 0, NB_REDUCTION_MEAN},
    {"soft, all options", SOFT | W32 | MASK, 0.1, 0, 1e-3, NB_REDUCTION_SUM},
};

enum { USE_PLAIN, USE_TWICE_AFTER, USE_TWICE_BEFORE, USE_SCALED, USE_TWO_LOSSES, N_USES };
static const char *use_names[] = {"loss alone", "z used again after", "z used again before",
                                  "scaled loss 2.5", "sum of two losses"};
enum { UP_ONE, UP_SCALAR, UP_ROWS, N_UPS };
static const char *up_names[] = {"upstream 1", "upstream 2.5", "per-row upstream"};

/* the inputs of one case: x0 (values of the leaf), targets (or probabilities), a second target
 * set for the second loss, mask and class weights */
typedef struct xdata {
    nb_tensor *x0, *y, *y2, *probs, *mask, *w;
} xdata;

static xdata make_data(nb_dtype dt, int ndim, const int64_t *shape, const xcase *c)
{
    nb_rng r;
    nb_rng_seed(&r, 2026);
    int64_t V = shape[ndim - 1];
    xdata d = {0};
    nb_tensor *x32 = nb_tensor_randn(dt == NB_F64 ? NB_F64 : NB_F32, ndim, shape, &r, 0, 3);
    assert_non_null(x32);
    d.x0 = dt == NB_F64 || dt == NB_F32 ? x32 : nb_tensor_to_dtype(x32, dt);
    if (d.x0 != x32)
        nb_tensor_free(x32);
    d.y = nb_tensor_empty(NB_I64, ndim - 1, shape);
    d.y2 = nb_tensor_empty(NB_I64, ndim - 1, shape);
    d.mask = nb_tensor_ones(NB_U8, ndim - 1, shape);
    assert_non_null(d.x0);
    assert_non_null(d.y);
    assert_non_null(d.y2);
    assert_non_null(d.mask);
    for (int64_t i = 0; i < d.y->numel; i++) {
        int64_t t = (int64_t)nb_rng_below(&r, (uint64_t)V);
        if (i % 5 == 1)
            t = (c->flags & IGN0) ? 0 : -100; /* padding either way */
        if (c->flags & ALLPAD)
            t = -100;
        nb_tensor_set(d.y, i, (double)t);
        nb_tensor_set(d.y2, i, (double)nb_rng_below(&r, (uint64_t)V));
        if (i % 7 == 3)
            nb_tensor_set(d.mask, i, 0);
    }
    if (c->flags & (W32 | W64)) {
        d.w = nb_tensor_rand(c->flags & W64 ? NB_F64 : NB_F32, 1, &V, &r, 0.2, 2.0);
        assert_non_null(d.w);
    }
    if (c->flags & SOFT) { /* rows of probabilities: softmax of random numbers */
        nb_tensor *u = nb_tensor_randn(dt, ndim, shape, &r, 0, 1);
        d.probs = nb_tensor_empty(dt, ndim, shape);
        assert_non_null(u);
        assert_non_null(d.probs);
        assert_int_equal(nb_softmax_rows(u, d.probs), NB_OK);
        nb_tensor_free(u);
    }
    return d;
}

static void free_data(xdata *d)
{
    nb_tensor_free(d->x0);
    nb_tensor_free(d->y);
    nb_tensor_free(d->y2);
    nb_tensor_free(d->probs);
    nb_tensor_free(d->mask);
    nb_tensor_free(d->w);
}

static nb_xent_opts opts_for(const xcase *c, const xdata *d, bool two_pass, nb_xent_stats *st)
{
    nb_xent_opts o = nb_xent_defaults();
    o.label_smoothing = c->a;
    o.normaliser = c->norm;
    o.z_loss = c->zl;
    o.reduction = c->red;
    o.ignore_index = c->flags & IGN0 ? 0 : -100;
    o.mask = c->flags & MASK ? d->mask : NULL;
    o.weight = d->w;
    o.stats = st;
    o.two_pass = two_pass;
    return o;
}

/* What a run gives: copies of the loss, dL/dz and dL/dx, the stats, and the arena's use after
 * the forward and after the backward. */
typedef struct result {
    void *loss, *gz, *gx;
    size_t loss_bytes, grad_bytes, arena_fwd, arena_bwd;
    nb_xent_stats st;
} result;

static void *copy_of(const void *p, size_t bytes)
{
    void *q = malloc(bytes);
    assert_non_null(q);
    assert_non_null(p);
    memcpy(q, p, bytes);
    return q;
}

static void free_result(result *r)
{
    free(r->loss);
    free(r->gz);
    free(r->gx);
}

/* The upstream gradient of root: NULL for 1 on a scalar, else a tensor (the caller frees). */
static nb_tensor *upstream_for(const nb_tensor *root, int up)
{
    if (up == UP_ONE && root->numel == 1)
        return NULL;
    nb_tensor *u = nb_tensor_empty(root->dtype, root->ndim, root->shape);
    assert_non_null(u);
    for (int64_t i = 0; i < u->numel; i++)
        nb_tensor_set(u, i,
                      up == UP_ONE      ? 1.0
                      : up == UP_SCALAR ? 2.5
                                        : 0.25 * (double)(i % 9) - 1);
    return u;
}

/* One forward and backward; poison: overwrite the logits with NaN between the two. */
static void run(const xcase *c, const xdata *d, bool two_pass, int use, int up, bool poison,
                result *res)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_tensor_empty(d->x0->dtype, d->x0->ndim, d->x0->shape);
    assert_non_null(g);
    assert_non_null(x);
    memcpy(x->data, d->x0->data, (size_t)x->numel * nb_dtype_size(x->dtype));
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    nb_xent_opts o = opts_for(c, d, two_pass, &res->st), o2 = nb_xent_defaults();
    o2.two_pass = two_pass;
    nb_tensor *z = nb_scale(g, x, 1.0);
    nb_tensor *pre = use == USE_TWICE_BEFORE ? nb_sum(g, z) : NULL;
    nb_tensor *L = c->flags & SOFT ? nb_cross_entropy_soft(g, z, d->probs, &o)
                                   : nb_cross_entropy(g, z, d->y, &o);
    assert_non_null(L);
    nb_tensor *root = c->red == NB_REDUCTION_NONE && use != USE_PLAIN ? nb_sum(g, L) : L;
    if (use == USE_TWICE_AFTER)
        root = nb_add(g, root, nb_sum(g, z));
    else if (use == USE_TWICE_BEFORE)
        root = nb_add(g, pre, root);
    else if (use == USE_SCALED)
        root = nb_scale(g, root, 2.5);
    else if (use == USE_TWO_LOSSES)
        root = nb_add(g, root, nb_cross_entropy(g, z, d->y2, &o2));
    assert_non_null(root);
    res->arena_fwd = nb_graph_arena_used(g);
    res->grad_bytes = (size_t)z->numel * nb_dtype_size(z->dtype);
    if (poison)
        for (int64_t i = 0; i < z->numel; i++)
            nb_tensor_set(z, i, NAN);
    nb_tensor *u = upstream_for(root, up);
    assert_int_equal(nb_backward(g, root, u), NB_OK);
    res->arena_bwd = nb_graph_arena_used(g);
    res->loss_bytes = (size_t)L->numel * nb_dtype_size(L->dtype);
    res->loss = copy_of(L->data, res->loss_bytes);
    res->gz = copy_of(z->grad, res->grad_bytes);
    res->gx = copy_of(x->grad, res->grad_bytes);
    nb_tensor_free(u);
    nb_tensor_free(x);
    nb_graph_free(g);
}

/* first differing element of two arrays of dtype dt, or -1 */
static int64_t first_diff(const void *a, const void *b, size_t bytes, nb_dtype dt)
{
    size_t es = nb_dtype_size(dt);
    for (size_t i = 0; i < bytes / es; i++)
        if (memcmp((const char *)a + i * es, (const char *)b + i * es, es))
            return (int64_t)i;
    return -1;
}

static void same_bytes(const char *what, const void *a, const void *b, size_t bytes, nb_dtype dt,
                       const char *ctx)
{
    int64_t i = first_diff(a, b, bytes, dt);
    if (i < 0)
        return;
    double va = dt == NB_F64 ? ((const double *)a)[i] : ((const float *)a)[i];
    double vb = dt == NB_F64 ? ((const double *)b)[i] : ((const float *)b)[i];
    fail_msg("%s: %s differs at element %lld: one pass %.17g, two passes %.17g", ctx, what,
             (long long)i, va, vb);
}

static void compare_case(const xcase *c, nb_dtype dt, int ndim, const int64_t *shape)
{
    xdata d = make_data(dt, ndim, shape, c);
    for (int use = 0; use < N_USES; use++)
        for (int up = 0; up < N_UPS; up++) {
            if (up == UP_ROWS && (c->red != NB_REDUCTION_NONE || use != USE_PLAIN))
                continue; /* a per-row upstream needs the per-row loss as the root */
            char ctx[200];
            snprintf(ctx, sizeof ctx, "%s %s, %s, %s", nb_dtype_name(dt), c->name, use_names[use],
                     up_names[up]);
            /* the loss's upstream is exactly 1: the one pass must not read the logits again */
            bool no_read = up == UP_ONE && use != USE_SCALED;
            result one = {0}, two = {0};
            run(c, &d, false, use, up, no_read, &one);
            run(c, &d, true, use, up, false, &two);
            same_bytes("loss", one.loss, two.loss, one.loss_bytes, dt, ctx);
            same_bytes("dL/dz", one.gz, two.gz, one.grad_bytes, dt, ctx);
            same_bytes("dL/dx", one.gx, two.gx, one.grad_bytes, dt, ctx);
            if (memcmp(&one.st, &two.st, sizeof one.st))
                fail_msg("%s: stats differ", ctx);
            if (one.arena_fwd < two.arena_fwd + one.grad_bytes)
                fail_msg("%s: the one pass's forward holds %zu arena bytes, the two passes' %zu: "
                         "no gradient buffer (%zu bytes)",
                         ctx, one.arena_fwd, two.arena_fwd, one.grad_bytes);
            /* the peak: the buffer is the logits' gradient, taken over or overwritten */
            if ((use == USE_PLAIN || use == USE_SCALED) && one.arena_bwd != two.arena_bwd)
                fail_msg("%s: arena after backward %zu bytes (one pass) vs %zu (two passes)", ctx,
                         one.arena_bwd, two.arena_bwd);
            free_result(&one);
            free_result(&two);
        }
    free_data(&d);
}

static void test_f32_rows(void **state)
{
    (void)state;
    int64_t shape[2] = {37, 300};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        compare_case(&cases[i], NB_F32, 2, shape);
}

static void test_f64_rows(void **state)
{
    (void)state;
    int64_t shape[2] = {37, 300};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        compare_case(&cases[i], NB_F64, 2, shape);
}

/* [B,T,V] with rows longer than one chunk (2048) and enough logits for the threaded loops */
static void test_btv_threaded(void **state)
{
    (void)state;
    int64_t shape[3] = {2, 14, 2500};
    nb_set_num_threads(2);
    compare_case(&cases[0], NB_F32, 3, shape);
    compare_case(&cases[11], NB_F32, 3, shape);
    compare_case(&cases[12], NB_F64, 3, shape);
    nb_set_num_threads(1);
}

/* Arena bytes after the forward on logits that get no one pass: evaluation (recording off),
 * logits that take no gradient, leaf logits. Equal with and without opts.two_pass. */
static size_t arena_after(const xdata *d, bool two_pass, int how)
{
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_tensor_empty(d->x0->dtype, d->x0->ndim, d->x0->shape);
    assert_non_null(g);
    assert_non_null(x);
    memcpy(x->data, d->x0->data, (size_t)x->numel * nb_dtype_size(x->dtype));
    assert_int_equal(nb_tensor_set_requires_grad(x, how != 1), NB_OK);
    if (how == 0)
        nb_graph_set_grad_enabled(g, false);
    nb_xent_opts o = nb_xent_defaults();
    o.two_pass = two_pass;
    nb_tensor *z = how == 2 ? x : nb_scale(g, x, 1.0);
    assert_non_null(nb_cross_entropy(g, z, d->y, &o));
    size_t used = nb_graph_arena_used(g);
    nb_tensor_free(x);
    nb_graph_free(g);
    return used;
}

static void test_no_extra_work(void **state)
{
    (void)state;
    int64_t shape[2] = {37, 300};
    xdata d = make_data(NB_F32, 2, shape, &cases[0]);
    for (int how = 0; how < 3; how++)
        if (arena_after(&d, false, how) != arena_after(&d, true, how))
            fail_msg("case %d (0 evaluation, 1 no grad, 2 leaf): %zu arena bytes vs %zu", how,
                     arena_after(&d, false, how), arena_after(&d, true, how));
    free_data(&d);
}

/* Leaf logits, f16 and bf16 included: the graph gradient (accumulated into the leaf's zeroed
 * buffer) equals the raw two-pass kernels' dL/dz, and the arena holds no gradient buffer. */
static void test_leaf_half(void **state)
{
    (void)state;
    int64_t shape[2] = {37, 300};
    nb_dtype dts[4] = {NB_F16, NB_BF16, NB_F32, NB_F64};
    for (int k = 0; k < 4; k++) {
        xdata d = make_data(dts[k], 2, shape, &cases[12]);
        nb_xent_opts o = opts_for(&cases[12], &d, false, NULL);
        nb_dtype ct = dts[k] == NB_F64 ? NB_F64 : NB_F32;
        nb_tensor *dz = nb_tensor_zeros(ct, 2, shape), *L = nb_tensor_zeros(ct, 0, NULL);
        assert_non_null(dz);
        assert_non_null(L);
        assert_int_equal(nb_xent_forward(d.x0, d.y, &o, L, NULL, NULL), NB_OK);
        assert_int_equal(nb_xent_backward(dz, d.x0, d.y, &o, NULL, NULL), NB_OK);
        nb_graph *g = nb_graph_new();
        assert_non_null(g);
        assert_int_equal(nb_tensor_set_requires_grad(d.x0, true), NB_OK);
        nb_tensor *Lg = nb_cross_entropy(g, d.x0, d.y, &o);
        assert_non_null(Lg);
        size_t fwd = nb_graph_arena_used(g);
        assert_int_equal(nb_backward(g, Lg, NULL), NB_OK);
        assert_true(fwd < (size_t)dz->numel * nb_dtype_size(ct));
        same_bytes("loss", Lg->data, L->data, nb_dtype_size(ct), ct, nb_dtype_name(dts[k]));
        for (int64_t i = 0; i < dz->numel; i++) /* 0 + v: a -0 entry becomes +0, equal values */
            if (!(nb_tensor_grad_get(d.x0, i) == nb_tensor_get(dz, i)))
                fail_msg("%s leaf: dL/dz[%lld] %.9g vs %.9g", nb_dtype_name(dts[k]), (long long)i,
                         nb_tensor_grad_get(d.x0, i), nb_tensor_get(dz, i));
        nb_graph_free(g);
        nb_tensor_free(dz);
        nb_tensor_free(L);
        free_data(&d);
    }
}

/* The one pass's kernel on every logits dtype against the forward and backward kernels (what the
 * graph op's two passes call), bitwise: loss, shifts and dz. */
static void test_kernel_all_dtypes(void **state)
{
    (void)state;
    int64_t shape[2] = {37, 2300}; /* two chunks per row */
    nb_dtype dts[4] = {NB_F16, NB_BF16, NB_F32, NB_F64};
    for (int k = 0; k < 4; k++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const xcase *c = &cases[ci];
            if ((c->flags & SOFT) && dts[k] != NB_F32 && dts[k] != NB_F64)
                continue; /* probabilities are made by the f32/f64 softmax */
            xdata d = make_data(dts[k], 2, shape, c);
            nb_xent_opts o = opts_for(c, &d, false, NULL);
            nb_dtype ct = dts[k] == NB_F64 ? NB_F64 : NB_F32;
            int64_t N = shape[0], ln = c->red == NB_REDUCTION_NONE ? N : 1;
            size_t gb = (size_t)(N * shape[1]) * nb_dtype_size(ct);
            nb_tensor *L1 = nb_tensor_zeros(ct, 1, &ln), *L2 = nb_tensor_zeros(ct, 1, &ln);
            double *sh1 = calloc(4 * (size_t)N, sizeof(double)), *sh2 = sh1 + 2 * N;
            double *scr = calloc(2 * (size_t)N, sizeof(double));
            void *g1 = malloc(gb), *g2 = malloc(gb);
            assert_true(L1 && L2 && sh1 && scr && g1 && g2);
            const nb_tensor *t = c->flags & SOFT ? NULL : d.y, *p = d.probs;
            assert_int_equal(nb_xent_forward_impl(d.x0, t, p, &o, L1, NULL, sh1, scr, NULL), NB_OK);
            assert_int_equal(nb_xent_backward_impl(g1, false, d.x0, t, p, &o, NULL, sh1, NULL),
                             NB_OK);
            nb_xent_forward_grad_impl(d.x0, t, p, &o, L2, sh2, scr, g2, NULL);
            char ctx[160];
            snprintf(ctx, sizeof ctx, "kernel, %s logits, %s", nb_dtype_name(dts[k]), c->name);
            same_bytes("loss", L2->data, L1->data, (size_t)ln * nb_dtype_size(ct), ct, ctx);
            same_bytes("shifts", sh2, sh1, 2 * (size_t)N * sizeof(double), NB_F64, ctx);
            same_bytes("dz", g2, g1, gb, ct, ctx);
            nb_tensor_free(L1);
            nb_tensor_free(L2);
            free(sh1);
            free(scr);
            free(g1);
            free(g2);
            free_data(&d);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_rows),     cmocka_unit_test(test_f64_rows),
        cmocka_unit_test(test_btv_threaded), cmocka_unit_test(test_no_extra_work),
        cmocka_unit_test(test_leaf_half),    cmocka_unit_test(test_kernel_all_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
