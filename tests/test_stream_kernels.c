/* test_stream_kernels.c - the streaming kernels `nabla bench ops` measures, against plain
 * references written here: sum and mean (16 double lanes added pairwise, the order reduce.c
 * documents) bit for bit, and within the error bound of a long double serial sum; add, sub, mul
 * and relu forward and backward bit for bit against their scalar formulas; the root seeding of
 * backward (fresh, accumulated into a leaf, the implicit 1 of a scalar root); softmax forward
 * (exp(z - m) / sum exp(z - m), one vector exp per element) within 1 ulp of the formula with
 * libm's exp and 2 ulp of a long double softmax, and backward (its dot product in lanes) bit
 * for bit; tanh's f32
 * kernel (no libm call) within 1 ulp of the f64 one over a sweep of every 509th f32. The kernels
 * are compiled for several instruction sets (NB_VECTOR_CLONES, src/ops/ops_internal.h); the one
 * this CPU runs must give the bits of the scalar formula. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

enum { LANES = 16 };

/* The documented order: lane j sums x[i] for i = j mod 16 in index order, the lanes then
 * added pairwise (j += j + 8, then j + 4, j + 2, j + 1). */
static double lane_sum(const void *x, nb_dtype t, int64_t n)
{
    double lane[LANES] = {0};
    for (int64_t i = 0; i < n; i++)
        lane[i % LANES] += t == NB_F64 ? ((const double *)x)[i] : (double)((const float *)x)[i];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            lane[j] += lane[j + w];
    return lane[0];
}

/* Values whose sum depends on the order: mixed signs over six orders of magnitude. */
static void fill(void *x, nb_dtype t, int64_t n, unsigned seed)
{
    srand(seed);
    for (int64_t i = 0; i < n; i++) {
        double v = ((double)rand() / RAND_MAX - 0.5) * pow(10.0, (double)(rand() % 7) - 3.0);
        if (t == NB_F64)
            ((double *)x)[i] = v;
        else
            ((float *)x)[i] = (float)v;
    }
}

static void test_sum_lane_order(void **state)
{
    (void)state;
    static const int64_t sizes[] = {0, 1, 5, 15, 16, 17, 31, 33, 1000, 65537};
    const nb_dtype types[2] = {NB_F32, NB_F64};
    for (int ti = 0; ti < 2; ti++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int64_t n = sizes[k], shape[1] = {n};
            void *buf = malloc((size_t)(n ? n : 1) * 8);
            assert_non_null(buf);
            fill(buf, types[ti], n, (unsigned)(k + 1));
            nb_tensor *x = nb_tensor_from_buffer(types[ti], 1, shape, buf);
            assert_non_null(x);
            nb_graph *g = nb_graph_new();
            nb_tensor *s = nb_sum(g, x), *m = nb_mean(g, x);
            assert_non_null(s);
            assert_non_null(m);
            double want = lane_sum(buf, types[ti], n), wmean = n ? want / (double)n : NAN;
            if (types[ti] == NB_F32)
                want = (float)want, wmean = (float)wmean;
            double got = nb_tensor_get(s, 0), gmean = nb_tensor_get(m, 0);
            if (got != want || !(gmean == wmean || (isnan(gmean) && isnan(wmean))))
                fail_msg("%s n=%lld: sum %.17g (want %.17g), mean %.17g (want %.17g)",
                         nb_dtype_name(types[ti]), (long long)n, got, want, gmean, wmean);
            /* the order is harmless: within n eps sum|x| of a long double serial sum */
            long double ref = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                double v = nb_tensor_get(x, i);
                ref += v;
                mag += fabsl((long double)v);
            }
            long double bound = (long double)n * DBL_EPSILON * mag +
                                (types[ti] == NB_F32 ? fabsl(ref) * FLT_EPSILON : 0);
            assert_true(fabsl((long double)got - ref) <= bound);
            nb_graph_free(g);
            nb_tensor_free(x);
            free(buf);
        }
    }
}

/* sum_last / mean_last: each row of 37 summed in the lane order */
static void test_sum_last_rows(void **state)
{
    (void)state;
    enum { R = 7, C = 37 };
    float buf[R * C];
    fill(buf, NB_F32, R * C, 99);
    int64_t shape[2] = {R, C};
    nb_tensor *x = nb_tensor_from_buffer(NB_F32, 2, shape, buf);
    nb_graph *g = nb_graph_new();
    nb_tensor *s = nb_sum_last(g, x), *m = nb_mean_last(g, x);
    assert_non_null(s);
    assert_non_null(m);
    for (int r = 0; r < R; r++) {
        double want = lane_sum(buf + r * C, NB_F32, C);
        assert_true(nb_tensor_get(s, r) == (float)want);
        assert_true(nb_tensor_get(m, r) == (float)(want / C));
    }
    nb_graph_free(g);
    nb_tensor_free(x);
}

/* add, sub, mul, relu on f32 vectors of an odd length: forward and backward bits equal the
 * scalar formulas (in f32: the f64 formula rounded once is the same number). */
static void test_elementwise_bits(void **state)
{
    (void)state;
    enum { N = (1 << 16) + 5 };
    float *a = malloc(N * 4), *b = malloc(N * 4), *u = malloc(N * 4);
    assert_true(a && b && u);
    fill(a, NB_F32, N, 1);
    fill(b, NB_F32, N, 2);
    fill(u, NB_F32, N, 3);
    a[0] = 0.0f, a[1] = -0.0f, a[2] = NAN, b[3] = INFINITY;
    int64_t shape[1] = {N};
    for (int op = 0; op < 4; op++) {
        nb_tensor *ta = nb_tensor_from_buffer(NB_F32, 1, shape, a);
        nb_tensor *tb = nb_tensor_from_buffer(NB_F32, 1, shape, b);
        nb_tensor *tu = nb_tensor_from_buffer(NB_F32, 1, shape, u);
        assert_int_equal(nb_tensor_set_requires_grad(ta, true), NB_OK);
        assert_int_equal(nb_tensor_set_requires_grad(tb, true), NB_OK);
        nb_graph *g = nb_graph_new();
        nb_tensor *y = op == 0   ? nb_add(g, ta, tb)
                       : op == 1 ? nb_sub(g, ta, tb)
                       : op == 2 ? nb_mul(g, ta, tb)
                                 : nb_relu(g, ta);
        assert_non_null(y);
        assert_int_equal(nb_backward(g, y, tu), NB_OK);
        const float *yd = y->data, *ga = ta->grad, *gb = tb->grad;
        for (int64_t i = 0; i < N; i++) {
            float x = a[i], z = b[i], d = u[i];
            float want = op == 0 ? x + z : op == 1 ? x - z : op == 2 ? x * z : x <= 0.0f ? 0.0f : x;
            float wga = op == 2 ? d * z : op == 3 ? (x <= 0.0f ? 0.0f : d) : d;
            float wgb = op == 0 ? d : op == 1 ? -d : d * x;
            if (memcmp(&yd[i], &want, 4) && !(isnan(yd[i]) && isnan(want)))
                fail_msg("op %d: y[%lld] = %a, want %a", op, (long long)i, yd[i], want);
            if (memcmp(&ga[i], &wga, 4) && !(isnan(ga[i]) && isnan(wga)))
                fail_msg("op %d: da[%lld] = %a, want %a", op, (long long)i, ga[i], wga);
            if (op < 3 && memcmp(&gb[i], &wgb, 4) && !(isnan(gb[i]) && isnan(wgb)))
                fail_msg("op %d: db[%lld] = %a, want %a", op, (long long)i, gb[i], wgb);
        }
        nb_graph_free(g);
        nb_tensor_free(ta);
        nb_tensor_free(tb);
        nb_tensor_free(tu);
    }
    free(a);
    free(b);
    free(u);
}

/* backward's root gradient: the upstream (fresh), added to what a leaf root holds, 1 for a
 * scalar root without upstream */
static void test_seed_root(void **state)
{
    (void)state;
    enum { N = 37 };
    float xv[N], uv[N];
    fill(xv, NB_F32, N, 5);
    fill(uv, NB_F32, N, 6);
    int64_t shape[1] = {N};
    nb_tensor *x = nb_tensor_from_buffer(NB_F32, 1, shape, xv);
    nb_tensor *up = nb_tensor_from_buffer(NB_F32, 1, shape, uv);
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    nb_graph *g = nb_graph_new();
    for (int step = 1; step <= 2; step++) { /* a leaf root: its gradient += upstream */
        assert_int_equal(nb_backward(g, x, up), NB_OK);
        for (int i = 0; i < N; i++)
            assert_true(((float *)x->grad)[i] == (step == 1 ? uv[i] : uv[i] + uv[i]));
        nb_graph_reset(g);
    }
    nb_tensor_zero_grad(x);
    nb_tensor *y = nb_neg(g, x); /* fresh root: grad = upstream, x gets -upstream */
    assert_int_equal(nb_backward(g, y, up), NB_OK);
    for (int i = 0; i < N; i++) {
        assert_true(((float *)y->grad)[i] == uv[i]);
        assert_true(((float *)x->grad)[i] == -uv[i]);
    }
    nb_graph_reset(g);
    nb_tensor_zero_grad(x);
    nb_tensor *s = nb_sum(g, x); /* scalar root, no upstream: 1 */
    assert_int_equal(nb_backward(g, s, NULL), NB_OK);
    assert_true(((float *)s->grad)[0] == 1.0f);
    for (int i = 0; i < N; i++)
        assert_true(((float *)x->grad)[i] == 1.0f);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(up);
}

/* The documented lane order for a dot product (exact f32 products in double) */
static double lane_dot(const float *a, const float *b, int64_t n)
{
    double lane[LANES] = {0};
    for (int64_t i = 0; i < n; i++)
        lane[i % LANES] += (double)a[i] * (double)b[i];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            lane[j] += lane[j + w];
    return lane[0];
}

static void test_softmax_f32(void **state)
{
    (void)state;
    enum { R = 9, V = 1003 };
    float *z = malloc(R * V * 4), *u = malloc(R * V * 4);
    assert_true(z && u);
    srand(11);
    for (int i = 0; i < R * V; i++) {
        z[i] = (float)(40.0 * rand() / RAND_MAX - 20.0);
        u[i] = (float)(2.0 * rand() / RAND_MAX - 1.0);
    }
    int64_t shape[2] = {R, V};
    nb_tensor *tz = nb_tensor_from_buffer(NB_F32, 2, shape, z);
    nb_tensor *tu = nb_tensor_from_buffer(NB_F32, 2, shape, u);
    assert_int_equal(nb_tensor_set_requires_grad(tz, true), NB_OK);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_softmax(g, tz);
    assert_non_null(y);
    assert_int_equal(nb_backward(g, y, tu), NB_OK);
    const float *p = y->data, *gz = tz->grad;
    for (int r = 0; r < R; r++) {
        const float *zr = z + r * V, *pr = p + r * V, *ur = u + r * V;
        double m = -INFINITY, s = 0;
        long double ls = 0;
        for (int j = 0; j < V; j++)
            m = zr[j] > m ? zr[j] : m;
        for (int j = 0; j < V; j++) {
            s += exp((double)zr[j] - m);
            ls += expl((long double)zr[j] - m);
        }
        double dot = lane_dot(ur, pr, V);
        for (int j = 0; j < V; j++) {
            float want = (float)((double)(float)exp((double)zr[j] - m) / s);
            long double ref = expl((long double)zr[j] - m) / ls;
            float wg = (float)(pr[j] * ((double)ur[j] - dot));
            int32_t ip, iw;
            memcpy(&ip, &pr[j], 4);
            memcpy(&iw, &want, 4);
            if (llabs((long long)ip - iw) > 1 || fabsl(pr[j] - ref) > 2.0L * FLT_EPSILON * ref)
                fail_msg("softmax [%d, %d] = %a, want %a (long double %Lg)", r, j, pr[j], want,
                         ref);
            if (gz[r * V + j] != wg)
                fail_msg("softmax grad [%d, %d] = %a, want %a", r, j, gz[r * V + j], wg);
        }
    }
    nb_graph_free(g);
    nb_tensor_free(tz);
    nb_tensor_free(tu);
    free(z);
    free(u);
}

/* Rows whose max is not finite keep SciPy's answers: +inf gives NaN there and 0 elsewhere, an
 * all -inf row and a row with NaN give NaN everywhere. */
static void test_softmax_nonfinite_rows(void **state)
{
    (void)state;
    const float z[3][3] = {{INFINITY, 1, 100}, {-INFINITY, -INFINITY, -INFINITY}, {NAN, 1, 2}};
    int64_t shape[2] = {3, 3};
    nb_tensor *tz = nb_tensor_from_buffer(NB_F32, 2, shape, z);
    nb_graph *g = nb_graph_new();
    nb_tensor *y = nb_softmax(g, tz);
    assert_non_null(y);
    const float *p = y->data;
    assert_true(isnan(p[0]) && p[1] == 0.0f && p[2] == 0.0f);
    for (int j = 3; j < 9; j++)
        assert_true(isnan(p[j]));
    nb_graph_free(g);
    nb_tensor_free(tz);
}

/* f32 tanh against tanh in double rounded to f32: at most 1 ulp over every 509th bit pattern of
 * both signs (~8.4M values, subnormals and the branch points 0.04 and 9.1 included); exact on the
 * special values. */
static void test_tanh_f32(void **state)
{
    (void)state;
    enum { CHUNK = 1 << 20 };
    float *x = malloc(CHUNK * 4);
    assert_non_null(x);
    int64_t shape[1] = {CHUNK};
    long long n = 0, worst = 0;
    uint32_t b = 0;
    while (b < 0x7f800000u) {
        int k = 0;
        for (; k < CHUNK && b < 0x7f800000u; k += 2, b += 509) {
            memcpy(&x[k], &b, 4);
            x[k + 1] = -x[k];
        }
        nb_tensor *t = nb_tensor_from_buffer(NB_F32, 1, shape, x);
        nb_graph *g = nb_graph_new();
        nb_tensor *y = nb_tanh(g, t);
        assert_non_null(y);
        const float *yd = y->data;
        for (int i = 0; i < k; i++) {
            float want = (float)tanh((double)x[i]);
            int32_t ig, iw;
            memcpy(&ig, &yd[i], 4);
            memcpy(&iw, &want, 4);
            long long d = llabs((long long)ig - iw);
            if (d > 1)
                fail_msg("tanh(%a) = %a, want %a (%lld ulp)", x[i], yd[i], want, d);
            worst = d > worst ? d : worst;
        }
        n += k;
        nb_graph_free(g);
        nb_tensor_free(t);
    }
    const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, 0.04f, 9.1f, -9.1f, 1e-45f, 20.0f, NAN};
    int64_t ns[1] = {10};
    nb_tensor *t = nb_tensor_from_buffer(NB_F32, 1, ns, sp);
    nb_graph *g = nb_graph_new();
    const float *yd = nb_tanh(g, t)->data;
    for (int i = 0; i < 9; i++) {
        float want = (float)tanh((double)sp[i]);
        assert_memory_equal(&yd[i], &want, 4); /* the sign of -0 too */
    }
    assert_true(isnan(yd[9]));
    nb_graph_free(g);
    nb_tensor_free(t);
    free(x);
    print_message("tanh f32: %lld values, worst %lld ulp\n", n, worst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_lane_order),   cmocka_unit_test(test_sum_last_rows),
        cmocka_unit_test(test_elementwise_bits), cmocka_unit_test(test_seed_root),
        cmocka_unit_test(test_softmax_f32),      cmocka_unit_test(test_softmax_nonfinite_rows),
        cmocka_unit_test(test_tanh_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
