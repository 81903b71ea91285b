/* test_xent_edges.c - the fused cross-entropy at the edges of float arithmetic (issue 10):
 *
 *   - a target whose 2048-logit chunk was read with a running max 89..104 below the row's final
 *     max (the fused forward+backward's chunk scale is a subnormal f32 there): the exact row of
 *     the report, and random N(0, 100^2) rows at V = 50257, on every instruction-set path;
 *   - label smoothing with logits of opposite sign near +-1.7e38 (the smoothing sum overflowed);
 *   - a -inf logit in a class of weight 0 (0 * inf): the same finite limit for every dtype;
 *   - a mean whose real tokens all have weight 0: loss 0 and gradient 0, unless a normaliser is
 *     given (then numerator / normaliser, smoothing included);
 *   - confident rows: per-token losses from 1e-3 down to 1e-30 to ~1e-6 relative (log1p of the
 *     off-max sum), where log(1 + t) in f32 is off by more than 1e-2.
 *
 * Every result is compared with an independent reference written here in long double (max, the
 * off-max sum t, log s = log1p(t)), on the exact values the kernels read (f16/bf16 rounded). The
 * raw kernels (forward, backward, forward_backward) run on each instruction-set path the CPU has,
 * and the graph op runs too. */
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

#include "loss/xent_simd.h"
#include "nabla.h"

static const char *const paths[3] = {"scalar", "avx2", "avx512"};

/* ---- the reference ---- */

typedef struct ref_out {
    double loss;  /* reduced as o->reduction says (mean/sum), or unused for none */
    double *rows; /* per-row losses (0 for padding), N */
    double *grad; /* dL/dz for upstream 1 of the reduced loss (of the sum for none), N x V */
} ref_out;

static long double ref_weight(const nb_xent_opts *o, int64_t c)
{
    return o->weight ? (long double)nb_tensor_get(o->weight, c) : 1.0L;
}

/* q (m - z_c + log s) with the limit 0 for q = 0 whatever z_c is (z_c = -inf included). */
static long double wterm(long double q, long double d)
{
    return q == 0.0L ? 0.0L : q * d;
}

static void reference(const nb_tensor *z, const nb_tensor *y, const nb_xent_opts *o, ref_out *r)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    long double a = o->label_smoothing, total = 0.0L, W = 0.0L, Wc = 0.0L;
    r->rows = calloc((size_t)N, sizeof(double));
    r->grad = calloc((size_t)(N * V), sizeof(double));
    long double *lse = calloc((size_t)N, sizeof(long double));
    long double *shift = calloc((size_t)N, sizeof(long double));
    long double *logs = calloc((size_t)N, sizeof(long double));
    assert_non_null(r->rows);
    assert_non_null(r->grad);
    assert_non_null(lse);
    assert_non_null(shift);
    assert_non_null(logs);
    for (int64_t c = 0; c < V; c++)
        Wc += ref_weight(o, c);
    for (int64_t n = 0; n < N; n++) {
        int64_t t = (int64_t)nb_tensor_get(y, n);
        if (t == o->ignore_index)
            continue;
        long double m = -INFINITY, s = 0.0L;
        int64_t at = 0;
        for (int64_t j = 0; j < V; j++) {
            long double v = nb_tensor_get(z, n * V + j);
            if (v > m)
                m = v, at = j;
        }
        for (int64_t j = 0; j < V; j++) /* t = s - 1: every term but one max */
            if (j != at)
                s += expl((long double)nb_tensor_get(z, n * V + j) - m);
        shift[n] = m;
        logs[n] = log1pl(s);
        lse[n] = m + logs[n];
        long double wy = ref_weight(o, t), L;
        W += wy;
        L = wterm((1.0L - a) * wy, (m - (long double)nb_tensor_get(z, n * V + t)) + logs[n]);
        if (a > 0.0L)
            for (int64_t c = 0; c < V; c++)
                L += wterm(a / (long double)V * ref_weight(o, c),
                           (m - (long double)nb_tensor_get(z, n * V + c)) + logs[n]);
        L += (long double)o->z_loss * lse[n] * lse[n];
        r->rows[n] = (double)L;
        total += L;
    }
    long double norm = o->normaliser > 0.0 ? (long double)o->normaliser : W;
    long double c = o->reduction == NB_REDUCTION_MEAN ? (norm != 0.0L ? 1.0L / norm : 0.0L) : 1.0L;
    r->loss = o->reduction == NB_REDUCTION_SUM ? (double)total
                                               : (norm != 0.0L ? (double)(total / norm) : 0.0);
    for (int64_t n = 0; n < N; n++) {
        int64_t t = (int64_t)nb_tensor_get(y, n);
        if (t == o->ignore_index || c == 0.0L)
            continue;
        long double wy = ref_weight(o, t);
        for (int64_t j = 0; j < V; j++) {
            long double x = ((long double)nb_tensor_get(z, n * V + j) - shift[n]) - logs[n];
            long double p = expl(x);
            /* p_j - [j = y]: for the target expm1, exact even when p_y is 1 - 1e-30 */
            long double ponehot = j == t ? expm1l(x) : p;
            long double g = (1.0L - a) * wy * ponehot +
                            a / (long double)V * (p * Wc - ref_weight(o, j)) +
                            2.0L * (long double)o->z_loss * lse[n] * p;
            r->grad[n * V + j] = (double)(c * g);
        }
    }
    free(lse);
    free(shift);
    free(logs);
}

static void ref_free(ref_out *r)
{
    free(r->rows);
    free(r->grad);
}

/* ---- comparing ---- */

static int close_to(double got, double ref, double rtol, double floor_abs)
{
    if (isnan(ref))
        return isnan(got);
    if (isinf(ref))
        return got == ref;
    return isfinite(got) && fabs(got - ref) <= rtol * fmax(fabs(ref), floor_abs);
}

/* Loss (reduced, or per row for none) and gradient of one kernel's output against r. The
 * gradient floor is 1e-2 (f32) / 1e-4 (f64) of the largest reference entry, as in
 * test_cross_entropy.c: an entry p - 1 is a difference of O(max|g|) numbers. */
static void check_result(const char *what, const nb_tensor *loss, const nb_tensor *grad,
                         bool grad_is_leaf_grad, const ref_out *r, int64_t N, int64_t V,
                         const nb_xent_opts *o, double ltol, double gtol, double gfloor)
{
    if (loss) {
        if (o->reduction == NB_REDUCTION_NONE) {
            for (int64_t n = 0; n < N; n++)
                if (!close_to(nb_tensor_get(loss, n), r->rows[n], ltol, 0.0))
                    fail_msg("%s: row %lld loss %.10g, reference %.10g", what, (long long)n,
                             nb_tensor_get(loss, n), r->rows[n]);
        } else if (!close_to(nb_tensor_get(loss, 0), r->loss, ltol, 0.0)) {
            fail_msg("%s: loss %.10g, reference %.10g", what, nb_tensor_get(loss, 0), r->loss);
        }
    }
    if (grad) {
        double gmax = 0.0;
        for (int64_t i = 0; i < N * V; i++)
            gmax = fmax(gmax, fabs(r->grad[i]));
        for (int64_t i = 0; i < N * V; i++) {
            double g = grad_is_leaf_grad ? nb_tensor_grad_get(grad, i) : nb_tensor_get(grad, i);
            if (r->grad[i] == 0.0 ? g != 0.0 : !close_to(g, r->grad[i], gtol, gfloor * gmax))
                fail_msg("%s: dz[%lld][%lld] = %.10g, reference %.10g", what, (long long)(i / V),
                         (long long)(i % V), g, r->grad[i]);
        }
    }
}

/* Runs forward, backward, forward_backward on every instruction-set path, and the graph op, and
 * compares each with the reference. */
static void check_all(const char *name, const nb_tensor *z, const nb_tensor *y,
                      const nb_xent_opts *o, double ltol, double gtol)
{
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    nb_dtype ct = nb_dtype_compute(z->dtype);
    double gfloor = ct == NB_F64 ? 1e-4 : 1e-2;
    ref_out r;
    reference(z, y, o, &r);
    int64_t ln = o->reduction == NB_REDUCTION_NONE ? N : 1;
    nb_tensor *L = nb_tensor_zeros(ct, 1, &ln), *dz = nb_tensor_zeros(ct, z->ndim, z->shape);
    assert_non_null(L);
    assert_non_null(dz);
    char what[160];
    for (int p = 0; p < 3; p++) {
        const nb_xent_simd *k = nb_xent_simd_by_name(paths[p]);
        if (!k)
            continue; /* this CPU lacks the instruction set */
        nb_xent_simd_force(k);
        snprintf(what, sizeof what, "%s %s %s forward", name, nb_dtype_name(z->dtype), paths[p]);
        if (nb_xent_forward(z, y, o, L, NULL, NULL) != NB_OK)
            fail_msg("%s: %s", what, nb_last_error());
        check_result(what, L, NULL, false, &r, N, V, o, ltol, gtol, gfloor);
        snprintf(what, sizeof what, "%s %s %s backward", name, nb_dtype_name(z->dtype), paths[p]);
        if (nb_xent_backward(dz, z, y, o, NULL, NULL) != NB_OK)
            fail_msg("%s: %s", what, nb_last_error());
        check_result(what, NULL, dz, false, &r, N, V, o, ltol, gtol, gfloor);
        snprintf(what, sizeof what, "%s %s %s forward_backward", name, nb_dtype_name(z->dtype),
                 paths[p]);
        if (nb_xent_forward_backward(z, y, o, L, dz, NULL) != NB_OK)
            fail_msg("%s: %s", what, nb_last_error());
        check_result(what, L, dz, false, &r, N, V, o, ltol, gtol, gfloor);
    }
    nb_xent_simd_force(NULL);
    /* the graph op (forward + saved shifts, backward accumulating into the leaf's gradient) */
    nb_tensor *leaf = nb_tensor_to_dtype(z, z->dtype);
    assert_non_null(leaf);
    nb_tensor_set_requires_grad(leaf, true);
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    snprintf(what, sizeof what, "%s %s graph", name, nb_dtype_name(z->dtype));
    nb_tensor *Lg = nb_cross_entropy(g, leaf, y, o);
    if (!Lg)
        fail_msg("%s: %s", what, nb_last_error());
    nb_tensor *up = NULL;
    if (o->reduction == NB_REDUCTION_NONE) {
        up = nb_tensor_ones(ct, Lg->ndim, Lg->shape);
        assert_non_null(up);
    }
    if (nb_backward(g, Lg, up) != NB_OK)
        fail_msg("%s backward: %s", what, nb_last_error());
    check_result(what, Lg, leaf, true, &r, N, V, o, ltol, gtol, gfloor);
    nb_graph_free(g);
    nb_tensor_free(up);
    nb_tensor_free(leaf);
    nb_tensor_free(L);
    nb_tensor_free(dz);
    ref_free(&r);
}

/* float values -> a tensor of dtype dt (rounded as nb_tensor_to_dtype rounds) */
static nb_tensor *logits_of(nb_dtype dt, int64_t N, int64_t V, const float *v)
{
    int64_t sz[2] = {N, V};
    nb_tensor *f = nb_tensor_from_buffer(NB_F32, 2, sz, v);
    assert_non_null(f);
    nb_tensor *t = dt == NB_F32 ? f : nb_tensor_to_dtype(f, dt);
    assert_non_null(t);
    if (t != f)
        nb_tensor_free(f);
    return t;
}

static nb_tensor *targets_of(int64_t N, const int64_t *v)
{
    nb_tensor *t = nb_tensor_from_buffer(NB_I64, 1, &N, v);
    assert_non_null(t);
    return t;
}

/* ---- 1. the target's chunk far below the row's max ---- */

/* The row of the report: 2049 zeros, z[2048] = 95, target 0. Chunk 0 is read with max 0, 95
 * below the final max; dz[0] = p_0 - 1 = -1 + 2048 e^-95-ish, never -inf. */
static void test_far_chunk_reported_row(void **state)
{
    (void)state;
    enum { V = NB_XCHUNK + 1 };
    static float v[V];
    v[V - 1] = 95.0f;
    int64_t t0 = 0;
    nb_tensor *y = targets_of(1, &t0);
    nb_dtype dts[3] = {NB_F32, NB_F16, NB_BF16};
    for (int d = 0; d < 3; d++) {
        nb_tensor *z = logits_of(dts[d], 1, V, v);
        for (int smooth = 0; smooth < 2; smooth++) {
            nb_xent_opts o = nb_xent_defaults();
            o.label_smoothing = smooth ? 0.1 : 0.0;
            check_all("reported row", z, y, &o, 2e-6, 2e-5);
            /* and the value itself, spelled out */
            nb_tensor *L = nb_tensor_zeros(NB_F32, 0, NULL);
            int64_t sz[2] = {1, V};
            nb_tensor *dz = nb_tensor_zeros(NB_F32, 2, sz);
            assert_int_equal(nb_xent_forward_backward(z, y, &o, L, dz, NULL), NB_OK);
            double want = -(1.0 - o.label_smoothing) + o.label_smoothing / V * (0.0 - 1.0);
            if (!(fabs(nb_tensor_get(dz, 0) - want) <= 1e-6))
                fail_msg("%s smoothing %g: dz[0] = %g, want %g", nb_dtype_name(dts[d]),
                         o.label_smoothing, nb_tensor_get(dz, 0), want);
            nb_tensor_free(L);
            nb_tensor_free(dz);
        }
        nb_tensor_free(z);
    }
    nb_tensor_free(y);
}

/* Random N(0, 100^2) rows at V = 50257 (GPT-2's vocabulary). For each row the target is put in a
 * chunk whose running max was 89..104 below the final max when there is one (the rows the
 * report counted), elsewhere at random; at least a few rows must be of the first kind. */
static void test_far_chunk_random_rows(void **state)
{
    (void)state;
    enum { N = 24, V = 50257, NCH = (V + NB_XCHUNK - 1) / NB_XCHUNK };
    nb_rng r;
    nb_rng_seed(&r, 10);
    float *v = malloc(sizeof(float) * N * V);
    assert_non_null(v);
    int64_t tg[N];
    int far = 0;
    for (int64_t n = 0; n < N; n++) {
        float run[NCH], m = -INFINITY;
        for (int64_t j = 0; j < V; j++) {
            v[n * V + j] = (float)(100.0 * nb_rng_normal(&r));
            if (v[n * V + j] > m)
                m = v[n * V + j];
            if (j % NB_XCHUNK == NB_XCHUNK - 1 || j == V - 1)
                run[j / NB_XCHUNK] = m;
        }
        tg[n] = (int64_t)nb_rng_below(&r, V);
        for (int c = 0; c < NCH; c++) {
            float gap = m - run[c];
            if (gap >= 89.0f && gap <= 104.0f) {
                tg[n] = (int64_t)c * NB_XCHUNK + (int64_t)nb_rng_below(&r, NB_XCHUNK);
                far++;
                break;
            }
        }
    }
    print_message("%d of %d rows have their target in a chunk 89..104 below the max\n", far, N);
    assert_true(far >= 5);
    nb_tensor *y = targets_of(N, tg);
    nb_dtype dts[3] = {NB_F32, NB_F16, NB_BF16};
    for (int d = 0; d < 3; d++) {
        nb_tensor *z = logits_of(dts[d], N, V, v);
        nb_xent_opts o = nb_xent_defaults();
        check_all("N(0,100^2) rows", z, y, &o, 2e-6, 2e-5);
        nb_tensor_free(z);
    }
    free(v);
    nb_tensor_free(y);
}

/* ---- 2. smoothing with logits near +-1.7e38 ---- */

static void test_smoothing_huge_opposite_logits(void **state)
{
    (void)state;
    enum { V = 3, VL = NB_XCHUNK + 40 };
    float v[2 * V] = {1.7e38f, -1.7e38f, 0.0f, -1.6e38f, 1.65e38f, 1.7e38f};
    int64_t tv[2] = {0, 1};
    nb_tensor *y = targets_of(2, tv);
    int64_t wv = V;
    nb_tensor *w = nb_tensor_from_buffer(NB_F32, 1, &wv, (const float[]){0.5f, 2.0f, 1.0f});
    assert_non_null(w);
    /* a long row too: alternating signs across several chunks */
    static float vl[VL];
    for (int j = 0; j < VL; j++)
        vl[j] = j % 2 ? -1.7e38f : 1.69e38f - (float)j * 1e33f;
    int64_t t1 = 7;
    nb_tensor *yl = targets_of(1, &t1);
    nb_dtype dts[2] = {NB_F32, NB_BF16};
    for (int d = 0; d < 2; d++) {
        nb_tensor *z = logits_of(dts[d], 2, V, v), *zl = logits_of(dts[d], 1, VL, vl);
        for (int c = 0; c < 6; c++) {
            nb_xent_opts o = nb_xent_defaults();
            o.label_smoothing = c % 2 ? 0.3 : 0.01;
            o.weight = c >= 2 && c < 4 ? w : NULL;
            o.reduction = c >= 4 ? NB_REDUCTION_NONE : NB_REDUCTION_MEAN;
            ref_out r;
            reference(z, y, &o, &r);
            assert_true(isfinite(r.loss) && r.loss > 1e35); /* the truth is finite */
            ref_free(&r);
            check_all("+-1.7e38", z, y, &o, 2e-6, 2e-5);
            if (!o.weight)
                check_all("+-1.7e38 long row", zl, yl, &o, 2e-6, 2e-5);
        }
        nb_tensor_free(z);
        nb_tensor_free(zl);
    }
    nb_tensor_free(w);
    nb_tensor_free(y);
    nb_tensor_free(yl);
}

/* ---- 3. 0 * (-inf): a -inf logit in a class of weight 0 ---- */

static void test_zero_weight_neg_inf_logit(void **state)
{
    (void)state;
    enum { V = 5 };
    /* row 0: -inf in class 3 (weight 0), target 1; row 1: target 3 itself, at -inf, weight 0 */
    float v[2 * V] = {0.5f, 2.0f, -1.0f, -INFINITY, 0.25f, 1.0f, -2.0f, 0.0f, -INFINITY, 3.0f};
    int64_t tv[2] = {1, 3};
    float wv32[V] = {1.0f, 2.0f, 0.5f, 0.0f, 1.5f};
    double wv64[V] = {1.0, 2.0, 0.5, 0.0, 1.5};
    int64_t vv = V;
    nb_tensor *w32 = nb_tensor_from_buffer(NB_F32, 1, &vv, wv32);
    nb_tensor *w64 = nb_tensor_from_buffer(NB_F64, 1, &vv, wv64);
    nb_tensor *y = targets_of(2, tv);
    nb_dtype dts[4] = {NB_F32, NB_F64, NB_BF16, NB_F16};
    double first = NAN;
    for (int d = 0; d < 4; d++) {
        nb_tensor *z = logits_of(dts[d], 2, V, v);
        for (int wi = 0; wi < 2; wi++)
            for (int red = 0; red < 2; red++) {
                nb_xent_opts o = nb_xent_defaults();
                o.label_smoothing = 0.1;
                o.weight = wi ? w64 : w32;
                o.reduction = red ? NB_REDUCTION_NONE : NB_REDUCTION_SUM;
                check_all("-inf at weight 0", z, y, &o, dts[d] == NB_F64 ? 1e-12 : 2e-6,
                          dts[d] == NB_F64 ? 1e-9 : 2e-5);
                nb_tensor *L = nb_tensor_zeros(nb_dtype_compute(dts[d]), 0, NULL);
                o.reduction = NB_REDUCTION_SUM;
                assert_int_equal(nb_xent_forward(z, y, &o, L, NULL, NULL), NB_OK);
                double got = nb_tensor_get(L, 0);
                if (!isfinite(got))
                    fail_msg("%s logits, %s weights: loss %g, not the finite limit",
                             nb_dtype_name(dts[d]), nb_dtype_name(o.weight->dtype), got);
                if (isnan(first))
                    first = got; /* every dtype gives the same number (f16/bf16: 0.5, 2... exact) */
                else if (!(fabs(got - first) <= 1e-6 * fabs(first)))
                    fail_msg("%s logits, %s weights: loss %.9g, f32/f32 gave %.9g",
                             nb_dtype_name(dts[d]), nb_dtype_name(o.weight->dtype), got, first);
                nb_tensor_free(L);
            }
        nb_tensor_free(z);
    }
    nb_tensor_free(w32);
    nb_tensor_free(w64);
    nb_tensor_free(y);
}

/* ---- 4. a mean whose real tokens all weigh 0 ---- */

static void test_all_zero_target_weights(void **state)
{
    (void)state;
    enum { N = 4, V = 6 };
    nb_rng r;
    nb_rng_seed(&r, 4);
    float v[N * V];
    for (int i = 0; i < N * V; i++)
        v[i] = (float)(3.0 * nb_rng_normal(&r));
    int64_t tv[N] = {2, -100, 2, 5};
    float wv[V] = {1.0f, 1.0f, 0.0f, 3.0f, 1.0f, 0.0f}; /* every real target weighs 0 */
    int64_t vv = V;
    nb_tensor *w = nb_tensor_from_buffer(NB_F32, 1, &vv, wv);
    nb_tensor *y = targets_of(N, tv);
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        nb_tensor *z = logits_of(dts[d], N, V, v);
        nb_dtype ct = dts[d];
        int64_t sz[2] = {N, V};
        for (int c = 0; c < 4; c++) {
            nb_xent_opts o = nb_xent_defaults();
            o.weight = w;
            o.label_smoothing = c & 1 ? 0.2 : 0.0;
            o.normaliser = c & 2 ? 2.5 : 0.0;
            nb_xent_stats st;
            o.stats = &st;
            check_all("all target weights 0", z, y, &o, dts[d] == NB_F64 ? 1e-12 : 2e-6,
                      dts[d] == NB_F64 ? 1e-9 : 2e-5);
            nb_tensor *L = nb_tensor_zeros(ct, 0, NULL), *dz = nb_tensor_zeros(ct, 2, sz);
            assert_int_equal(nb_xent_forward_backward(z, y, &o, L, dz, NULL), NB_OK);
            assert_true(st.weight_sum == 0.0 && st.n_tokens == 3);
            double gabs = 0.0;
            for (int64_t i = 0; i < N * V; i++)
                gabs += fabs(nb_tensor_get(dz, i));
            if (!o.normaliser) {
                /* nothing to average over: 0 and a zero gradient, even with smoothing where
                 * the numerator is not 0 */
                if (o.label_smoothing > 0)
                    assert_true(st.loss_sum > 0.1);
                assert_true(nb_tensor_get(L, 0) == 0.0);
                assert_true(gabs == 0.0);
            } else if (o.label_smoothing > 0) {
                /* with a normaliser the numerator is divided by it as usual */
                assert_true(fabs(nb_tensor_get(L, 0) - st.loss_sum / 2.5) <= 1e-6 * st.loss_sum);
                assert_true(gabs > 0.01);
            } else {
                assert_true(nb_tensor_get(L, 0) == 0.0 && gabs == 0.0); /* numerator 0 */
            }
            nb_tensor_free(L);
            nb_tensor_free(dz);
        }
        nb_tensor_free(z);
    }
    nb_tensor_free(w);
    nb_tensor_free(y);
}

/* ---- 5. confident rows ---- */

/* Row of V logits: target 0 at 0, the others at log(L / (V - 1)) so that the off-max sum is L. */
static void confident_rows(int64_t V, nb_dtype dt)
{
    enum { R = 10 }; /* losses 1e-3, 1e-6, ..., 1e-30 */
    int64_t sz[2] = {R, V}, tv[R];
    nb_tensor *z = nb_tensor_zeros(dt, 2, sz);
    assert_non_null(z);
    for (int n = 0; n < R; n++) {
        double want = pow(10.0, -3.0 * (n + 1));
        double off = log(want / (double)(V - 1));
        tv[n] = n % 3; /* the max sits at the target, wherever that is */
        for (int64_t j = 0; j < V; j++)
            nb_tensor_set(z, n * V + j, j == tv[n] ? 0.0 : off + 0.01 * (double)(j % 5));
    }
    nb_tensor *y = targets_of(R, tv);
    nb_xent_opts o = nb_xent_defaults();
    o.reduction = NB_REDUCTION_NONE;
    char name[64];
    snprintf(name, sizeof name, "confident rows V %lld", (long long)V);
    check_all(name, z, y, &o, dt == NB_F64 ? 1e-12 : 1e-6, 2e-5);
    /* and the naive log(1 + t) in the compute precision is wrong on the same rows: the test
     * above would catch it */
    ref_out r;
    reference(z, y, &o, &r);
    for (int n = dt == NB_F64 ? 5 : 2; n < R; n++) { /* losses <= 1e-9 (f32), 1e-18 (f64) */
        double t = 0.0;
        for (int64_t j = 0; j < V; j++)
            if (j != tv[n])
                t += exp(nb_tensor_get(z, n * V + j));
        double naive = dt == NB_F64 ? log(1.0 + t) : (double)logf(1.0f + (float)t);
        if (!(fabs(naive - r.rows[n]) > 1e-2 * r.rows[n]))
            fail_msg("row %d: naive %g vs %g: the row does not test log1p", n, naive, r.rows[n]);
    }
    ref_free(&r);
    nb_tensor_free(z);
    nb_tensor_free(y);
}

static void test_confident_rows(void **state)
{
    (void)state;
    confident_rows(7, NB_F32);
    confident_rows(1000, NB_F32);
    confident_rows(NB_XCHUNK * 2 + 3, NB_F32); /* several chunks */
    confident_rows(7, NB_F64);
    confident_rows(1000, NB_F64);
}

/* The value of the report: a 2-class row whose loss is 6.89e-8 (f32 log(1 + tiny) gives
 * 1.19e-7). */
static void test_confident_reported_value(void **state)
{
    (void)state;
    float v[2] = {0.0f, -16.49f};
    int64_t t0 = 0;
    nb_tensor *z = logits_of(NB_F32, 1, 2, v), *y = targets_of(1, &t0);
    nb_tensor *L = nb_tensor_zeros(NB_F32, 0, NULL);
    assert_int_equal(nb_xent_forward(z, y, NULL, L, NULL, NULL), NB_OK);
    double truth = log1p(exp((double)v[1]));
    assert_true(fabs(truth - 6.89e-8) < 0.01e-8);
    if (!(fabs(nb_tensor_get(L, 0) - truth) <= 1e-6 * truth))
        fail_msg("loss %.9g, truth %.9g", nb_tensor_get(L, 0), truth);
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_far_chunk_reported_row),
        cmocka_unit_test(test_far_chunk_random_rows),
        cmocka_unit_test(test_smoothing_huge_opposite_logits),
        cmocka_unit_test(test_zero_weight_neg_inf_logit),
        cmocka_unit_test(test_all_zero_target_weights),
        cmocka_unit_test(test_confident_rows),
        cmocka_unit_test(test_confident_reported_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
