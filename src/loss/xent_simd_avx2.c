/* xent_simd_avx2.c - the fused loss's f32 inner loops for AVX2 + FMA (+ F16C for the half
 * conversion), 8 lanes; the algorithm and its accuracy are described in xent_simd.c. */
#include "xent_simd_impl.h"

#ifdef NB_X86
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* ---- AVX2 + FMA, 8 lanes ---- */

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 exp_avx2(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO - 1.0f), x); /* keeps NaN (second operand) */
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i ki = _mm256_cvtps_epi32(k);
    __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    /* below EXP_LO: exactly 0 */
    return _mm256_and_ps(y, _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_NLT_UQ));
}

AVX2 static float hsum_avx2(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

AVX2 static float max_avx2(const float *x, int64_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        m = _mm256_max_ps(m, v);
    }
    if (_mm256_movemask_ps(nan))
        return NAN;
    float buf[8], r = -INFINITY;
    _mm256_storeu_ps(buf, m);
    for (int j = 0; j < 8; j++)
        r = buf[j] > r ? buf[j] : r;
    float t = nb_xs_max_scalar(x + i, n - i);
    if (t != t)
        return NAN;
    return t > r ? t : r;
}

/* one vector of the sums of exps: e_i = exp(x_i - m) stored if e; with eq, the lanes where
 * x == m are counted and left out */
AVX2 static inline __attribute__((always_inline)) __m256
sumexp_step_avx2(__m256 s, const float *x, __m256 vm, float *e, int *eq)
{
    __m256 xv = _mm256_loadu_ps(x);
    __m256 v = exp_avx2(_mm256_sub_ps(xv, vm));
    if (e)
        _mm256_storeu_ps(e, v);
    if (eq) {
        *eq += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(xv, vm, _CMP_EQ_OQ)));
        v = _mm256_and_ps(v, _mm256_cmp_ps(xv, vm, _CMP_LT_OQ));
    }
    return _mm256_add_ps(s, v);
}

/* s (8 floats) added to acc (2 x 4 doubles) */
AVX2 static inline __m256d widen_add_avx2(__m256d acc, __m256 s)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(s)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
}

AVX2 static double hsum_pd_avx2(__m256d v)
{
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

/* as nb_xs_sumexp_impl_scalar: f32 lanes within a block of NB_XSUM, double across blocks */
AVX2 static inline __attribute__((always_inline)) double
sumexp_impl_avx2(const float *x, int64_t n, float m, float *e, int64_t *ones)
{
    __m256 vm = _mm256_set1_ps(m);
    __m256d acc = _mm256_setzero_pd();
    int64_t nv = n - n % 8;
    int eq = 0; /* n <= NB_XCHUNK: no overflow */
    int *peq = ones ? &eq : NULL;
    for (int64_t i = 0; i < nv;) {
        int64_t end = nv - i < NB_XSUM ? nv : i + NB_XSUM;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (; i + 16 <= end; i += 16) { /* two accumulators: the adds do not wait on each other */
            _mm_prefetch((const char *)(x + i + NB_XCHUNK), _MM_HINT_T0);
            s0 = sumexp_step_avx2(s0, x + i, vm, e ? e + i : NULL, peq);
            s1 = sumexp_step_avx2(s1, x + i + 8, vm, e ? e + i + 8 : NULL, peq);
        }
        for (; i + 8 <= end; i += 8)
            s0 = sumexp_step_avx2(s0, x + i, vm, e ? e + i : NULL, peq);
        acc = widen_add_avx2(acc, _mm256_add_ps(s0, s1));
    }
    if (ones)
        *ones += eq;
    return hsum_pd_avx2(acc) + nb_xs_sumexp_impl_scalar(x + nv, n - nv, m, e ? e + nv : NULL, ones);
}

AVX2 static double sumexp_avx2(const float *x, int64_t n, float m)
{
    return sumexp_impl_avx2(x, n, m, NULL, NULL);
}

AVX2 static double sumexp_below_avx2(const float *x, int64_t n, float m, int64_t *ones)
{
    return sumexp_impl_avx2(x, n, m, NULL, ones);
}

AVX2 static double expstore_avx2(const float *x, int64_t n, float m, float *e)
{
    return sumexp_impl_avx2(x, n, m, e, NULL);
}

AVX2 static double expstore_below_avx2(const float *x, int64_t n, float m, float *e, int64_t *ones)
{
    return sumexp_impl_avx2(x, n, m, e, ones);
}

AVX2 static void scale_avx2(float *dz, int64_t n, float scale, float sw, const float *w)
{
    __m256 vs = _mm256_set1_ps(scale), vsw = _mm256_set1_ps(sw);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 q = w ? _mm256_mul_ps(vsw, _mm256_loadu_ps(w + i)) : vsw;
        _mm256_storeu_ps(dz + i, _mm256_fmsub_ps(vs, _mm256_loadu_ps(dz + i), q));
    }
    nb_xs_scale_scalar(dz + i, n - i, scale, sw, w ? w + i : NULL);
}

/* f32 lanes; a term with w_i = 0 is 0 (masked, not 0 * inf); a non-finite sum is redone in
 * double (nb_xs_sumdiff_wide) */
AVX2 static double sumdiff_avx2(const float *x, int64_t n, float m, const float *w)
{
    __m256 s = _mm256_setzero_ps(), vm = _mm256_set1_ps(m), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(vm, _mm256_loadu_ps(x + i));
        if (w) {
            __m256 wv = _mm256_loadu_ps(w + i);
            d = _mm256_and_ps(_mm256_mul_ps(wv, d), _mm256_cmp_ps(wv, zero, _CMP_NEQ_UQ));
        }
        s = _mm256_add_ps(s, d);
    }
    float r = hsum_avx2(s);
    if (!isfinite(r))
        return nb_xs_sumdiff_wide(x, n, m, w);
    return (double)r + nb_xs_sumdiff_scalar(x + i, n - i, m, w ? w + i : NULL);
}

AVX2 static void grad_avx2(float *dz, const float *x, int64_t n, float c, float r, float base,
                           float sw, const float *w, int accumulate)
{
    __m256 vc = _mm256_set1_ps(c), vr = _mm256_set1_ps(r), vb = _mm256_set1_ps(base);
    __m256 vsw = _mm256_set1_ps(sw);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 p = exp_avx2(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vc), vr));
        __m256 q = w ? _mm256_mul_ps(vsw, _mm256_loadu_ps(w + i)) : vsw;
        __m256 v = _mm256_fmsub_ps(vb, p, q);
        if (accumulate)
            v = _mm256_add_ps(_mm256_loadu_ps(dz + i), v);
        _mm256_storeu_ps(dz + i, v);
    }
    nb_xs_grad_scalar(dz + i, x + i, n - i, c, r, base, sw, w ? w + i : NULL, accumulate);
}

AVX2 static void vexp_avx2(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp_avx2(_mm256_loadu_ps(x + i)));
    nb_xs_vexp_scalar(y + i, x + i, n - i);
}

/* dz = scale e - sw w with non-temporal stores: dz is written once and not read again soon, so
 * it should not evict the logits' rows from cache nor be read from memory first (no
 * read-for-ownership) */
AVX2 static void gradstore_avx2(float *dz, const float *e, int64_t n, float scale, float sw,
                                const float *w)
{
    int64_t i = 0;
    while (i < n && ((uintptr_t)(dz + i) & 31u)) {
        dz[i] = scale * e[i] - sw * (w ? w[i] : 1.0f);
        i++;
    }
    __m256 vs = _mm256_set1_ps(scale), vsw = _mm256_set1_ps(sw);
    for (; i + 8 <= n; i += 8) {
        __m256 q = w ? _mm256_mul_ps(vsw, _mm256_loadu_ps(w + i)) : vsw;
        _mm256_stream_ps(dz + i, _mm256_fmsub_ps(vs, _mm256_loadu_ps(e + i), q));
    }
    nb_xs_gradstore_scalar(dz + i, e + i, n - i, scale, sw, w ? w + i : NULL);
}

__attribute__((target("avx2,fma,f16c"))) static void f16_avx2(float *y, const uint16_t *h,
                                                              int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    nb_xs_f16_scalar(y + i, h + i, n - i);
}

const nb_xent_simd nb_xent_simd_avx2 = {.name = "avx2",
                                        .max = max_avx2,
                                        .sumexp = sumexp_avx2,
                                        .sumexp_below = sumexp_below_avx2,
                                        .sumdiff = sumdiff_avx2,
                                        .grad = grad_avx2,
                                        .vexp = vexp_avx2,
                                        .expstore = expstore_avx2,
                                        .expstore_below = expstore_below_avx2,
                                        .scale = scale_avx2,
                                        .gradstore = gradstore_avx2,
                                        .f16_to_f32 = f16_avx2};
#else
typedef int nb_xent_no_avx2; /* ISO C: a translation unit declares something */
#endif
