/* test_simd.c - the vectorised f32 kernels of the fused loss: the vector exp against libm, every
 * instruction-set path against the scalar one, and losses that do not depend on the thread
 * count. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loss/xent_simd.h"
#include "nabla.h"
#include "loss/xent_ref.h" /* nb_xent_reference: test-only */

static const char *const paths[3] = {"scalar", "avx2", "avx512"};

/* distance in ulps between two positive floats (or 0 and a subnormal) */
static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return llabs((long long)ia - (long long)ib);
}

/* exp over the range the loss uses, x in [-103, 0], against libm's expf: at most 2 ulp in the
 * normal range; in the subnormal range (x < -87.3) the absolute error is below 2^-149 * 2. */
static void test_vexp_accuracy(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    assert_non_null(x);
    assert_non_null(y);
    for (int i = 0; i < N; i++)
        x[i] = -103.0f * (float)i / (float)(N - 1);
    x[0] = 0.0f;
    for (int p = 0; p < 3; p++) {
        const nb_xent_simd *k = nb_xent_simd_by_name(paths[p]);
        if (!k)
            continue; /* this CPU lacks the instruction set */
        k->vexp(y, x, N);
        int64_t worst = 0;
        for (int i = 0; i < N; i++) {
            float ref = expf(x[i]);
            if (ref >= FLT_MIN) {
                int64_t u = ulps(y[i], ref);
                if (u > worst)
                    worst = u;
            } else {
                assert_true(fabsf(y[i] - ref) <= 2.0f * 0x1p-149f);
            }
        }
        print_message("vexp %-7s max error %lld ulp over [-103, 0]\n", paths[p], (long long)worst);
        assert_true(worst <= 2);
        /* special values */
        float sx[5] = {-INFINITY, NAN, -200.0f, 0.0f, -1e-30f}, sy[5];
        k->vexp(sy, sx, 5);
        assert_true(sy[0] == 0.0f);
        assert_true(isnan(sy[1]));
        assert_true(sy[2] == 0.0f);
        assert_true(sy[3] == 1.0f);
        assert_true(sy[4] == 1.0f);
    }
    free(x);
    free(y);
}

/* each path's row kernels agree with the scalar path (same algorithm: a few ulp for sums) */
static void test_paths_agree(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 9);
    enum { N = 1000 };
    float x[N], w[N], d0[N], d1[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(10 * nb_rng_normal(&r)), w[i] = (float)nb_rng_uniform(&r);
    const nb_xent_simd *s = nb_xent_simd_by_name("scalar");
    for (int p = 1; p < 3; p++) {
        const nb_xent_simd *k = nb_xent_simd_by_name(paths[p]);
        if (!k)
            continue;
        for (int n = 0; n <= 37; n++) { /* every tail length */
            assert_true(k->max(x, n) == s->max(x, n));
            float m = s->max(x, n);
            if (n) {
                double a = k->sumexp(x, n, m), b = s->sumexp(x, n, m);
                assert_true(fabs(a - b) <= 1e-6 * b);
                double c = k->sumdiff(x, n, m, w), e = s->sumdiff(x, n, m, w);
                assert_true(fabs(c - e) <= 1e-5 * fabs(e) + 1e-5);
                /* the max counted, not summed: below + ones is the plain sum */
                int64_t ka = 0, kb = 0;
                double ba = k->sumexp_below(x, n, m, &ka), bb = s->sumexp_below(x, n, m, &kb);
                assert_true(ka == 1 && kb == 1);
                assert_true(fabs(ba - bb) <= 1e-6 * bb);
                assert_true(fabs((ba + 1.0) - b) <= 1e-6 * b);
                float ea[37], eb[37], ec[37];
                ka = kb = 0;
                a = k->expstore_below(x, n, m, ea, &ka);
                b = s->expstore_below(x, n, m, eb, &kb);
                double pl = k->expstore(x, n, m, ec);
                assert_true(fabs(a - b) <= 1e-6 * b);
                assert_true(ka == 1 && kb == 1);
                assert_true(fabs((a + 1.0) - pl) <= 1e-6 * pl);
                for (int i = 0; i < n; i++)
                    assert_true(fabsf(ea[i] - eb[i]) <= 2e-7f * eb[i] &&
                                memcmp(&ea[i], &ec[i], 4) == 0);
            }
        }
        s->grad(d0, x, N, 30.0f, 0.25f, 0.5f, 0.01f, w, 0);
        k->grad(d1, x, N, 30.0f, 0.25f, 0.5f, 0.01f, w, 0);
        for (int i = 0; i < N; i++)
            assert_true(fabsf(d0[i] - d1[i]) <= 2e-7f * fabsf(d0[i]) + 1e-12f);
        /* f16 widening: all 65536 halves, bit for bit (NaNs: still NaN) */
        static uint16_t h[65536];
        static float a[65536], bb[65536];
        for (int i = 0; i < 65536; i++)
            h[i] = (uint16_t)i;
        s->f16_to_f32(a, h, 65536);
        k->f16_to_f32(bb, h, 65536);
        for (int i = 0; i < 65536; i++)
            assert_true(isnan(a[i]) ? isnan(bb[i]) : memcmp(&a[i], &bb[i], 4) == 0);
        float nan_row[20];
        for (int i = 0; i < 20; i++)
            nan_row[i] = (float)i;
        nan_row[17] = NAN;
        assert_true(isnan(k->max(nan_row, 20)));
    }
}

/* The edge cases of issue 10 on every path: the smoothing sum of logits near -+1.7e38 (f32
 * lanes overflow: redone in double), a weight of 0 at a -inf logit (0, not NaN), and the sum of
 * exps of a block holding the max, which leaves the max out so tiny sums keep their digits. */
static void test_paths_edges(void **state)
{
    (void)state;
    enum { N = 77 };
    float x[N], w[N], e[N];
    for (int i = 0; i < N; i++)
        x[i] = i % 2 ? -1.7e38f : 1.6e38f, w[i] = (float)(i % 3);
    double want = 0.0; /* sum_i w_i (m - x_i), exactly, m = 1.6e38 */
    for (int i = 0; i < N; i++)
        want += (double)w[i] * ((double)1.6e38f - (double)x[i]);
    float t[N], tw[N];
    long double tiny = 0.0L;
    for (int i = 0; i < N; i++) {
        t[i] = i == 40 ? 0.0f : -70.0f - 0.1f * (float)i; /* max 0 at 40, the rest ~1e-31 */
        tw[i] = i % 5 ? 1.0f : 0.0f;
        if (i != 40)
            tiny += expl((long double)t[i]);
    }
    t[13] = -INFINITY; /* tw[13] = 1: +inf term when weighted; below: tw[10] = 0 at -inf */
    tiny -= expl(-70.0L - 1.3L);
    float u[N];
    memcpy(u, t, sizeof u);
    u[13] = -5.0f;
    u[10] = -INFINITY;
    for (int p = 0; p < 3; p++) {
        const nb_xent_simd *k = nb_xent_simd_by_name(paths[p]);
        if (!k)
            continue;
        double got = k->sumdiff(x, N, 1.6e38f, w);
        if (!(isfinite(got) && fabs(got - want) <= 1e-12 * want))
            fail_msg("%s: %.17g vs %.17g", paths[p], got, want);
        got = k->sumdiff(x, N, 1.6e38f, NULL);
        assert_true(isfinite(got));
        assert_true(isinf(k->sumdiff(t, N, 0.0f, tw))); /* w = 1 at -inf: the loss is +inf */
        got = k->sumdiff(u, N, 0.0f, tw);               /* w = 0 at -inf: that term is 0 */
        assert_true(isfinite(got) && got > 0.0);
        int64_t ones = 0;
        double below = k->sumexp_below(t, N, 0.0f, &ones);
        assert_true(ones == 1);
        assert_true(fabsl((long double)below - tiny) <= 1e-6L * tiny);
        ones = 0;
        below = k->expstore_below(t, N, 0.0f, e, &ones);
        assert_true(ones == 1 && e[40] == 1.0f && e[13] == 0.0f);
        assert_true(fabsl((long double)below - tiny) <= 1e-6L * tiny);
        /* the plain sum cannot see them: 1 + 1e-31 is 1 */
        assert_true(k->sumexp(t, N, 0.0f) == 1.0);
    }
}

/* The fused loss and gradient on every path agree with the double-precision reference. */
static void test_fused_on_every_path(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 21);
    int64_t sz[2] = {64, 1001}, st[1] = {64};
    nb_tensor *z = nb_tensor_randn(NB_F32, 2, sz, &r, 0, 4);
    nb_tensor *y = nb_tensor_empty(NB_I64, 1, st);
    for (int i = 0; i < 64; i++)
        nb_tensor_set(y, i, (double)nb_rng_below(&r, 1001));
    nb_tensor *L = nb_tensor_zeros(NB_F32, 0, NULL), *dz = nb_tensor_zeros(NB_F32, 2, sz);
    nb_tensor *Lr = nb_tensor_zeros(NB_F64, 0, NULL), *dzr = nb_tensor_zeros(NB_F64, 2, sz);
    nb_xent_opts o = nb_xent_defaults();
    o.label_smoothing = 0.1;
    assert_int_equal(nb_xent_reference(z, y, &o, Lr, dzr), NB_OK);
    for (int p = 0; p < 3; p++) {
        const nb_xent_simd *k = nb_xent_simd_by_name(paths[p]);
        if (!k)
            continue;
        nb_xent_simd_force(k);
        assert_int_equal(nb_xent_forward(z, y, &o, L, NULL, NULL), NB_OK);
        assert_int_equal(nb_xent_backward(dz, z, y, &o, NULL, NULL), NB_OK);
        double ref = nb_tensor_get(Lr, 0);
        assert_true(fabs(nb_tensor_get(L, 0) - ref) <= 2e-6 * ref);
        double gmax = 0;
        for (int64_t i = 0; i < dz->numel; i++)
            gmax = fmax(gmax, fabs(nb_tensor_get(dzr, i)));
        for (int64_t i = 0; i < dz->numel; i++)
            assert_true(fabs(nb_tensor_get(dz, i) - nb_tensor_get(dzr, i)) <=
                        2e-5 * fabs(nb_tensor_get(dzr, i)) + 1e-7 * gmax);
    }
    nb_xent_simd_force(NULL);
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(L);
    nb_tensor_free(dz);
    nb_tensor_free(Lr);
    nb_tensor_free(dzr);
}

/* Loss and gradient are bitwise the same with 1 and 2 threads (fixed reduction order). */
static void test_thread_count_independent(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 5);
    int64_t sz[2] = {256, 700}, st[1] = {256};
    nb_tensor *z = nb_tensor_randn(NB_F32, 2, sz, &r, 0, 3);
    nb_tensor *y = nb_tensor_empty(NB_I32, 1, st);
    for (int i = 0; i < 256; i++)
        nb_tensor_set(y, i, i % 5 == 0 ? -100 : (double)nb_rng_below(&r, 700));
    nb_tensor *L1 = nb_tensor_zeros(NB_F32, 0, NULL), *L2 = nb_tensor_zeros(NB_F32, 0, NULL);
    nb_tensor *d1 = nb_tensor_zeros(NB_F32, 2, sz), *d2 = nb_tensor_zeros(NB_F32, 2, sz);
    nb_set_num_threads(1);
    assert_int_equal(nb_xent_forward(z, y, NULL, L1, NULL, NULL), NB_OK);
    assert_int_equal(nb_xent_backward(d1, z, y, NULL, NULL, NULL), NB_OK);
    nb_set_num_threads(2);
    assert_int_equal(nb_xent_forward(z, y, NULL, L2, NULL, NULL), NB_OK);
    assert_int_equal(nb_xent_backward(d2, z, y, NULL, NULL, NULL), NB_OK);
    nb_set_num_threads(1);
    assert_memory_equal(L1->data, L2->data, sizeof(float));
    assert_memory_equal(d1->data, d2->data, sizeof(float) * (size_t)d1->numel);
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(L1);
    nb_tensor_free(L2);
    nb_tensor_free(d1);
    nb_tensor_free(d2);
}

/* nb_xent_forward_backward gives the same loss and gradient as forward then backward, for each
 * reduction, with padding, smoothing, weights, and an all-padding batch. */
static void test_forward_backward_matches(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 33);
    int64_t sz[2] = {37, 300}, st[1] = {37}, sw[1] = {300};
    nb_tensor *z = nb_tensor_randn(NB_F32, 2, sz, &r, 0, 3);
    nb_tensor *y = nb_tensor_empty(NB_I64, 1, st);
    nb_tensor *w = nb_tensor_rand(NB_F32, 1, sw, &r, 0.5, 2);
    nb_tensor *mask = nb_tensor_ones(NB_U8, 1, st);
    for (int i = 0; i < 37; i++)
        nb_tensor_set(y, i, (double)nb_rng_below(&r, 300));
    for (int i = 0; i < 37; i += 4)
        nb_tensor_set(mask, i, 0);
    for (int c = 0; c < 8; c++) {
        nb_xent_opts o = nb_xent_defaults();
        o.reduction = (nb_reduction)(c % 3);
        if (c & 1)
            o.label_smoothing = 0.2;
        if (c >= 3)
            o.mask = mask;
        if (c >= 5)
            o.weight = w;
        if (c == 7)
            for (int i = 0; i < 37; i++)
                nb_tensor_set(y, i, -100); /* all padding */
        int64_t ln = o.reduction == NB_REDUCTION_NONE ? 37 : 1;
        nb_tensor *L1 = nb_tensor_zeros(NB_F32, 1, &ln), *L2 = nb_tensor_zeros(NB_F32, 1, &ln);
        nb_tensor *d1 = nb_tensor_zeros(NB_F32, 2, sz), *d2 = nb_tensor_zeros(NB_F32, 2, sz);
        nb_xent_stats s1, s2;
        assert_int_equal(nb_xent_forward(z, y, &o, L1, NULL, &s1), NB_OK);
        assert_int_equal(nb_xent_backward(d1, z, y, &o, NULL, NULL), NB_OK);
        assert_int_equal(nb_xent_forward_backward(z, y, &o, L2, d2, &s2), NB_OK);
        for (int64_t i = 0; i < ln; i++)
            assert_true(fabs(nb_tensor_get(L1, i) - nb_tensor_get(L2, i)) <=
                        1e-6 * fabs(nb_tensor_get(L1, i)));
        assert_int_equal(s1.n_tokens, s2.n_tokens);
        assert_true(fabs(s1.weight_sum - s2.weight_sum) <= 1e-9 * s1.weight_sum);
        /* f32 rounding: the fused path forms base e_j scale - sw in a different order, so
         * compare relative to the entry, with a floor of a few f32 ulps of the largest entry
         * (entries where base p_j and sw nearly cancel) */
        double gmax = 0;
        for (int64_t i = 0; i < d1->numel; i++)
            gmax = fmax(gmax, fabs(nb_tensor_get(d1, i)));
        for (int64_t i = 0; i < d1->numel; i++) {
            double a1 = nb_tensor_get(d1, i), a2 = nb_tensor_get(d2, i);
            if (!(fabs(a1 - a2) <= 1e-5 * fabs(a1) + 4e-7 * gmax))
                fail_msg("case %d element %lld: %.9g vs %.9g", c, (long long)i, a1, a2);
        }
        nb_tensor_free(L1);
        nb_tensor_free(L2);
        nb_tensor_free(d1);
        nb_tensor_free(d2);
    }
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(w);
    nb_tensor_free(mask);
}

/* Rows longer than one chunk whose target sits in a chunk far below the row's max: that
 * chunk's scale underflows to 0, and the gradient at the target must still be -1 (times the
 * scale), not 0. Compared with the double reference. */
static void test_forward_backward_far_chunks(void **state)
{
    (void)state;
    const int64_t V = 2 * NB_XCHUNK + 100;
    int64_t sz[2] = {2, V}, st[1] = {2};
    nb_tensor *z = nb_tensor_full(NB_F32, 2, sz, -300.0);
    for (int64_t j = NB_XCHUNK; j < V; j++) /* the later chunks hold the row's max */
        nb_tensor_set(z, j, (double)(j % 7) - 3.0), nb_tensor_set(z, V + j, 2.0);
    int32_t yv[2] = {5, (int32_t)(NB_XCHUNK + 3)}; /* row 0: target in the low chunk */
    nb_tensor *y = nb_tensor_from_buffer(NB_I32, 1, st, yv);
    nb_tensor *L = nb_tensor_zeros(NB_F32, 0, NULL), *d = nb_tensor_zeros(NB_F32, 2, sz);
    nb_tensor *Lr = nb_tensor_zeros(NB_F64, 0, NULL), *dr = nb_tensor_zeros(NB_F64, 2, sz);
    for (int smooth = 0; smooth < 2; smooth++) {
        nb_xent_opts o = nb_xent_defaults();
        o.label_smoothing = smooth ? 0.05 : 0.0;
        assert_int_equal(nb_xent_forward_backward(z, y, &o, L, d, NULL), NB_OK);
        assert_int_equal(nb_xent_reference(z, y, &o, Lr, dr), NB_OK);
        assert_true(fabs(nb_tensor_get(L, 0) - nb_tensor_get(Lr, 0)) <=
                    1e-5 * nb_tensor_get(Lr, 0));
        for (int64_t i = 0; i < d->numel; i++)
            if (!(fabs(nb_tensor_get(d, i) - nb_tensor_get(dr, i)) <= 1e-6))
                fail_msg("element %lld: %.9g vs %.9g", (long long)i, nb_tensor_get(d, i),
                         nb_tensor_get(dr, i));
        assert_true(nb_tensor_get(d, 5) < -0.4); /* -(1 - a)/2 (mean over 2 rows) */
    }
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(L);
    nb_tensor_free(d);
    nb_tensor_free(Lr);
    nb_tensor_free(dr);
}

/* bf16 and f16 logits: read as stored, computed in f32, gradient in f32; compared with the
 * double reference on the same (rounded) values. */
static void test_half_logits(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 8);
    int64_t sz[2] = {16, 300}, st[1] = {16};
    nb_tensor *z32 = nb_tensor_randn(NB_F32, 2, sz, &r, 0, 4);
    nb_tensor *y = nb_tensor_empty(NB_I32, 1, st);
    for (int i = 0; i < 16; i++)
        nb_tensor_set(y, i, i == 3 ? -100 : (double)nb_rng_below(&r, 300));
    nb_dtype types[2] = {NB_BF16, NB_F16};
    for (int t = 0; t < 2; t++) {
        nb_tensor *zh = nb_tensor_to_dtype(z32, types[t]);
        nb_tensor *z64 = nb_tensor_to_dtype(zh, NB_F64); /* the exact stored values */
        nb_tensor *L = nb_tensor_zeros(NB_F32, 0, NULL), *d = nb_tensor_zeros(NB_F32, 2, sz);
        nb_tensor *Lr = nb_tensor_zeros(NB_F64, 0, NULL), *dr = nb_tensor_zeros(NB_F64, 2, sz);
        nb_xent_opts o = nb_xent_defaults();
        o.label_smoothing = 0.1;
        assert_int_equal(nb_xent_forward_backward(zh, y, &o, L, d, NULL), NB_OK);
        assert_int_equal(nb_xent_reference(z64, y, &o, Lr, dr), NB_OK);
        assert_true(fabs(nb_tensor_get(L, 0) - nb_tensor_get(Lr, 0)) <=
                    2e-5 * nb_tensor_get(Lr, 0));
        double gmax = 0;
        for (int64_t i = 0; i < d->numel; i++)
            gmax = fmax(gmax, fabs(nb_tensor_get(dr, i)));
        for (int64_t i = 0; i < d->numel; i++)
            assert_true(fabs(nb_tensor_get(d, i) - nb_tensor_get(dr, i)) <=
                        2e-5 * fabs(nb_tensor_get(dr, i)) + 1e-7 * gmax);
        /* and through the graph: an f16/bf16 leaf gets an f32 gradient */
        nb_graph *g = nb_graph_new();
        nb_tensor_set_requires_grad(zh, true);
        nb_tensor *Lg = nb_cross_entropy(g, zh, y, &o);
        assert_non_null(Lg);
        assert_int_equal(Lg->dtype, NB_F32);
        assert_int_equal(nb_backward(g, Lg, NULL), NB_OK);
        for (int64_t i = 0; i < d->numel; i++)
            assert_true(fabs(nb_tensor_grad_get(zh, i) - nb_tensor_get(dr, i)) <=
                        2e-5 * fabs(nb_tensor_get(dr, i)) + 1e-7 * gmax);
        nb_graph_free(g);
        nb_tensor_free(zh);
        nb_tensor_free(z64);
        nb_tensor_free(L);
        nb_tensor_free(d);
        nb_tensor_free(Lr);
        nb_tensor_free(dr);
    }
    nb_tensor_free(z32);
    nb_tensor_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vexp_accuracy),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_paths_edges),
        cmocka_unit_test(test_fused_on_every_path),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_forward_backward_matches),
        cmocka_unit_test(test_forward_backward_far_chunks),
        cmocka_unit_test(test_half_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
