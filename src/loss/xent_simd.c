/* xent_simd.c - the f32 inner loops of the fused cross-entropy, vectorised for AVX-512 and AVX2
 * (chosen at run time) with a portable scalar version of the same algorithm.
 *
 * exp(x) for x <= 0 (every exponent the loss takes is z - max z <= 0):
 *   k = round(x log2 e), r = x - k ln2 (ln2 split in two, Cody-Waite, so r is nearly exact),
 *   exp(r) by its Taylor polynomial of degree 7 on |r| <= ln2/2 (truncation < 6e-9 relative),
 *   then scaled by 2^k in two steps 2^(k/2) 2^(k - k/2) so that results down to the subnormal
 *   range (x > -103.9) come out right. Inputs below -104 give 0, NaN gives NaN.
 *   Measured against libm expf over [-103, 0]: max error 1 ulp (tests/test_simd.c).
 * Everything runs in f32; sums are carried per lane within a chunk (at most NB_XCHUNK elements)
 * and the callers add chunk sums in double. Two refinements, both cheap: the block of a row that
 * holds the max has its sum of exps taken without the elements equal to the max (the *_below
 * kernels count them instead: each adds exactly 1, and adding 1 to f32 lanes would swallow an
 * off-max sum below 6e-8), and the smoothing sum
 * sum_i w_i (m - x_i) is redone in double when its f32 lanes overflow (m - x_i is inf in f32
 * for logits of opposite sign near +-1.7e38, and the true loss may still be finite). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nabla/tensor.h"
#include "xent_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define NB_X86 1

/* F16C from CPUID leaf 1, ECX bit 29: clang before 16 has no "f16c" for __builtin_cpu_supports. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_LO -104.0f
/* 1/k! for k = 7 .. 0, Horner order */
#define C7 (1.0f / 5040.0f)
#define C6 (1.0f / 720.0f)
#define C5 (1.0f / 120.0f)
#define C4 (1.0f / 24.0f)
#define C3 (1.0f / 6.0f)
#define C2 0.5f

/* ---- portable scalar version (the reference for the vector ones) ---- */

static inline float exp_scalar(float x)
{
    if (x != x)
        return x;
    if (x < EXP_LO)
        return 0.0f;
    if (x > 88.0f)
        x = 88.0f;
    float k = nearbyintf(x * LOG2E);
    float r = (x - k * LN2_HI) - k * LN2_LO;
    float p = C7;
    p = p * r + C6;
    p = p * r + C5;
    p = p * r + C4;
    p = p * r + C3;
    p = p * r + C2;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int ki = (int)k, k1 = ki / 2, k2 = ki - k1;
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    return p * s1 * s2;
}

static float max_scalar(const float *x, int64_t n)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] != x[i])
            return NAN;
        m = x[i] > m ? x[i] : m;
    }
    return m;
}

/* 8 partial sums, added pairwise: a sum of n terms in one f32 accumulator is off by up to n/2
 * ulps, in 8 by n/16 (the vector paths carry 16 or 32 the same way) */
static float sum8(const float *p)
{
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

/* sum_i w_i (m - x_i) in double: m - x_i is exact there and cannot overflow as it can in f32
 * (1.7e38 - -1.7e38 = inf). Every path falls back to it for a block whose f32 sum is not
 * finite, so the f32 lanes serve every ordinary row at full speed. A term with w_i = 0 is 0. */
static double sumdiff_wide(const float *x, int64_t n, float m, const float *w)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!w)
            s += (double)m - (double)x[i];
        else if (w[i] != 0.0f)
            s += (double)w[i] * ((double)m - (double)x[i]);
    }
    return s;
}

static double sumdiff_scalar(const float *x, int64_t n, float m, const float *w)
{
    float s[8] = {0};
    for (int64_t i = 0; i < n; i++)
        if (!w || w[i] != 0.0f)
            s[i & 7] += (w ? w[i] : 1.0f) * (m - x[i]);
    float r = sum8(s);
    return isfinite(r) ? (double)r : sumdiff_wide(x, n, m, w);
}

static void grad_scalar(float *dz, const float *x, int64_t n, float c, float r, float base,
                        float sw, const float *w, int accumulate)
{
    for (int64_t i = 0; i < n; i++) {
        float v = base * exp_scalar((x[i] - c) - r) - sw * (w ? w[i] : 1.0f);
        dz[i] = accumulate ? dz[i] + v : v;
    }
}

static void vexp_scalar(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = exp_scalar(x[i]);
}

/* The sums of exps, one body for the four kernels: e (store the exps) and ones (leave out the
 * elements equal to m and count them) may be NULL. Blocks of NB_XSUM terms are summed in f32
 * (8 partial sums) and the blocks in double. */
static double sumexp_impl_scalar(const float *x, int64_t n, float m, float *e, int64_t *ones)
{
    double acc = 0.0;
    int64_t eq = 0;
    for (int64_t i0 = 0; i0 < n; i0 += NB_XSUM) {
        int64_t end = n - i0 < NB_XSUM ? n : i0 + NB_XSUM;
        float s[8] = {0};
        for (int64_t i = i0; i < end; i++) {
            float v = exp_scalar(x[i] - m);
            if (e)
                e[i] = v;
            if (!ones || x[i] < m)
                s[i & 7] += v;
            else
                eq += x[i] == m;
        }
        acc += (double)sum8(s);
    }
    if (ones)
        *ones += eq;
    return acc;
}

static double sumexp_scalar(const float *x, int64_t n, float m)
{
    return sumexp_impl_scalar(x, n, m, NULL, NULL);
}

static double sumexp_below_scalar(const float *x, int64_t n, float m, int64_t *ones)
{
    return sumexp_impl_scalar(x, n, m, NULL, ones);
}

static double expstore_scalar(const float *x, int64_t n, float m, float *e)
{
    return sumexp_impl_scalar(x, n, m, e, NULL);
}

static double expstore_below_scalar(const float *x, int64_t n, float m, float *e, int64_t *ones)
{
    return sumexp_impl_scalar(x, n, m, e, ones);
}

static void scale_scalar(float *dz, int64_t n, float scale, float sw, const float *w)
{
    for (int64_t i = 0; i < n; i++)
        dz[i] = scale * dz[i] - sw * (w ? w[i] : 1.0f);
}

static void gradstore_scalar(float *dz, const float *e, int64_t n, float scale, float sw,
                             const float *w)
{
    for (int64_t i = 0; i < n; i++)
        dz[i] = scale * e[i] - sw * (w ? w[i] : 1.0f);
}

static void f16_scalar(float *y, const uint16_t *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = nb_f16_to_f32(h[i]);
}

static const nb_xent_simd simd_scalar = {.name = "scalar",
                                         .max = max_scalar,
                                         .sumexp = sumexp_scalar,
                                         .sumexp_below = sumexp_below_scalar,
                                         .sumdiff = sumdiff_scalar,
                                         .grad = grad_scalar,
                                         .vexp = vexp_scalar,
                                         .expstore = expstore_scalar,
                                         .expstore_below = expstore_below_scalar,
                                         .scale = scale_scalar,
                                         .gradstore = gradstore_scalar,
                                         .f16_to_f32 = f16_scalar};

#ifdef NB_X86
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
    float t = max_scalar(x + i, n - i);
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

/* as sumexp_impl_scalar: f32 lanes within a block of NB_XSUM, double across blocks */
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
    return hsum_pd_avx2(acc) + sumexp_impl_scalar(x + nv, n - nv, m, e ? e + nv : NULL, ones);
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
    scale_scalar(dz + i, n - i, scale, sw, w ? w + i : NULL);
}

/* f32 lanes; a term with w_i = 0 is 0 (masked, not 0 * inf); a non-finite sum is redone in
 * double (sumdiff_wide) */
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
        return sumdiff_wide(x, n, m, w);
    return (double)r + sumdiff_scalar(x + i, n - i, m, w ? w + i : NULL);
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
    grad_scalar(dz + i, x + i, n - i, c, r, base, sw, w ? w + i : NULL, accumulate);
}

AVX2 static void vexp_avx2(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp_avx2(_mm256_loadu_ps(x + i)));
    vexp_scalar(y + i, x + i, n - i);
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
    gradstore_scalar(dz + i, e + i, n - i, scale, sw, w ? w + i : NULL);
}

__attribute__((target("avx2,fma,f16c"))) static void f16_avx2(float *y, const uint16_t *h,
                                                              int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    f16_scalar(y + i, h + i, n - i);
}

static const nb_xent_simd simd_avx2 = {.name = "avx2",
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

/* ---- AVX-512F, 16 lanes ---- */

#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline __m512 exp_avx512(__m512 x)
{
    /* clamp below (keeps NaN: second operand); x <= 0 is all the loss needs, but clamp above
     * too so vexp stays finite-safe. Below -105, p 2^k rounds to 0 by itself. */
    x = _mm512_max_ps(_mm512_set1_ps(EXP_LO - 1.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k); /* p 2^k, with correct subnormals; 0 below -104 */
}

AVX512 static float max_avx512(const float *x, int64_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    if (n - i > 0) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    return nan ? NAN : _mm512_reduce_max_ps(m);
}

/* one vector (the lanes of k) of the sums of exps: e_i = exp(x_i - m) stored if e; with eq,
 * the lanes where x == m are counted and left out */
AVX512 static inline __attribute__((always_inline)) __m512
sumexp_step_avx512(__m512 s, __mmask16 k, const float *x, __m512 vm, float *e, int *eq)
{
    __m512 xv = k == 0xFFFF ? _mm512_loadu_ps(x) : _mm512_maskz_loadu_ps(k, x);
    __m512 v = exp_avx512(_mm512_sub_ps(xv, vm));
    if (e) {
        if (k == 0xFFFF)
            _mm512_storeu_ps(e, v);
        else
            _mm512_mask_storeu_ps(e, k, v);
    }
    if (eq) {
        *eq += __builtin_popcount((unsigned)_mm512_mask_cmp_ps_mask(k, xv, vm, _CMP_EQ_OQ));
        k = _mm512_mask_cmp_ps_mask(k, xv, vm, _CMP_LT_OQ);
    }
    return k == 0xFFFF ? _mm512_add_ps(s, v) : _mm512_mask_add_ps(s, k, s, v);
}

/* s (16 floats) added to acc (8 doubles) */
AVX512 static inline __m512d widen_add_avx512(__m512d acc, __m512 s)
{
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(s)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(hi));
}

/* as sumexp_impl_scalar: f32 lanes within a block of NB_XSUM, double across blocks */
AVX512 static inline __attribute__((always_inline)) double
sumexp_impl_avx512(const float *x, int64_t n, float m, float *e, int64_t *ones)
{
    __m512 vm = _mm512_set1_ps(m);
    __m512d acc = _mm512_setzero_pd();
    int eq = 0; /* n <= NB_XCHUNK: no overflow */
    int *peq = ones ? &eq : NULL;
    for (int64_t i = 0; i < n;) {
        int64_t end = n - i < NB_XSUM ? n : i + NB_XSUM;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (; i + 32 <= end; i += 32) { /* two accumulators: the adds do not wait on each other */
            /* while this chunk (already in cache) is computed, pull the next one in from memory:
             * the exps are compute-bound, and memory would otherwise sit idle meanwhile */
            _mm_prefetch((const char *)(x + i + NB_XCHUNK), _MM_HINT_T0);
            _mm_prefetch((const char *)(x + i + NB_XCHUNK + 16), _MM_HINT_T0);
            s0 = sumexp_step_avx512(s0, 0xFFFF, x + i, vm, e ? e + i : NULL, peq);
            s1 = sumexp_step_avx512(s1, 0xFFFF, x + i + 16, vm, e ? e + i + 16 : NULL, peq);
        }
        for (; i + 16 <= end; i += 16)
            s0 = sumexp_step_avx512(s0, 0xFFFF, x + i, vm, e ? e + i : NULL, peq);
        if (end - i > 0) {
            __mmask16 k = (__mmask16)((1u << (end - i)) - 1);
            s0 = sumexp_step_avx512(s0, k, x + i, vm, e ? e + i : NULL, peq);
            i = end;
        }
        acc = widen_add_avx512(acc, _mm512_add_ps(s0, s1));
    }
    if (ones)
        *ones += eq;
    return _mm512_reduce_add_pd(acc);
}

AVX512 static double sumexp_avx512(const float *x, int64_t n, float m)
{
    return sumexp_impl_avx512(x, n, m, NULL, NULL);
}

AVX512 static double sumexp_below_avx512(const float *x, int64_t n, float m, int64_t *ones)
{
    return sumexp_impl_avx512(x, n, m, NULL, ones);
}

AVX512 static double expstore_avx512(const float *x, int64_t n, float m, float *e)
{
    return sumexp_impl_avx512(x, n, m, e, NULL);
}

AVX512 static double expstore_below_avx512(const float *x, int64_t n, float m, float *e,
                                           int64_t *ones)
{
    return sumexp_impl_avx512(x, n, m, e, ones);
}

/* f32 lanes; a term with w_i = 0 is 0 (masked, not 0 * inf); a non-finite sum is redone in
 * double (sumdiff_wide) */
AVX512 static double sumdiff_avx512(const float *x, int64_t n, float m, const float *w)
{
    __m512 s = _mm512_setzero_ps(), vm = _mm512_set1_ps(m), zero = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(vm, _mm512_loadu_ps(x + i));
        if (w) {
            __m512 wv = _mm512_loadu_ps(w + i);
            s = _mm512_mask3_fmadd_ps(wv, d, s, _mm512_cmp_ps_mask(wv, zero, _CMP_NEQ_UQ));
        } else {
            s = _mm512_add_ps(s, d);
        }
    }
    if (n - i > 0) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_sub_ps(vm, _mm512_maskz_loadu_ps(k, x + i));
        if (w) {
            __m512 wv = _mm512_maskz_loadu_ps(k, w + i);
            k &= _mm512_cmp_ps_mask(wv, zero, _CMP_NEQ_UQ);
            s = _mm512_mask3_fmadd_ps(wv, d, s, k);
        } else {
            s = _mm512_mask_add_ps(s, k, s, d);
        }
    }
    float r = _mm512_reduce_add_ps(s);
    return isfinite(r) ? (double)r : sumdiff_wide(x, n, m, w);
}

AVX512 static void grad_avx512(float *dz, const float *x, int64_t n, float c, float r, float base,
                               float sw, const float *w, int accumulate)
{
    __m512 vc = _mm512_set1_ps(c), vr = _mm512_set1_ps(r), vb = _mm512_set1_ps(base);
    __m512 vsw = _mm512_set1_ps(sw);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 p = exp_avx512(_mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vc), vr));
        __m512 q = w ? _mm512_mul_ps(vsw, _mm512_loadu_ps(w + i)) : vsw;
        __m512 v = _mm512_fmsub_ps(vb, p, q);
        if (accumulate)
            v = _mm512_add_ps(_mm512_loadu_ps(dz + i), v);
        _mm512_storeu_ps(dz + i, v);
    }
    if (n - i > 0) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 p =
            exp_avx512(_mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vc), vr));
        __m512 q = w ? _mm512_mul_ps(vsw, _mm512_maskz_loadu_ps(k, w + i)) : vsw;
        __m512 v = _mm512_fmsub_ps(vb, p, q);
        if (accumulate)
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dz + i), v);
        _mm512_mask_storeu_ps(dz + i, k, v);
    }
}

AVX512 static void scale_avx512(float *dz, int64_t n, float scale, float sw, const float *w)
{
    __m512 vs = _mm512_set1_ps(scale), vsw = _mm512_set1_ps(sw);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 q = w ? _mm512_mul_ps(vsw, _mm512_loadu_ps(w + i)) : vsw;
        _mm512_storeu_ps(dz + i, _mm512_fmsub_ps(vs, _mm512_loadu_ps(dz + i), q));
    }
    scale_scalar(dz + i, n - i, scale, sw, w ? w + i : NULL);
}

AVX512 static void vexp_avx512(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, exp_avx512(_mm512_loadu_ps(x + i)));
    vexp_scalar(y + i, x + i, n - i);
}

AVX512 static void gradstore_avx512(float *dz, const float *e, int64_t n, float scale, float sw,
                                    const float *w)
{
    int64_t i = 0;
    while (i < n && ((uintptr_t)(dz + i) & 63u)) {
        dz[i] = scale * e[i] - sw * (w ? w[i] : 1.0f);
        i++;
    }
    __m512 vs = _mm512_set1_ps(scale), vsw = _mm512_set1_ps(sw);
    for (; i + 16 <= n; i += 16) {
        __m512 q = w ? _mm512_mul_ps(vsw, _mm512_loadu_ps(w + i)) : vsw;
        _mm512_stream_ps(dz + i, _mm512_fmsub_ps(vs, _mm512_loadu_ps(e + i), q));
    }
    gradstore_scalar(dz + i, e + i, n - i, scale, sw, w ? w + i : NULL);
}

AVX512 static void f16_avx512(float *y, const uint16_t *h, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    f16_scalar(y + i, h + i, n - i);
}

static const nb_xent_simd simd_avx512 = {.name = "avx512",
                                         .max = max_avx512,
                                         .sumexp = sumexp_avx512,
                                         .sumexp_below = sumexp_below_avx512,
                                         .sumdiff = sumdiff_avx512,
                                         .grad = grad_avx512,
                                         .vexp = vexp_avx512,
                                         .expstore = expstore_avx512,
                                         .expstore_below = expstore_below_avx512,
                                         .scale = scale_avx512,
                                         .gradstore = gradstore_avx512,
                                         .f16_to_f32 = f16_avx512};
#endif

static const nb_xent_simd *forced;

const nb_xent_simd *nb_xent_simd_get(void)
{
    if (forced)
        return forced;
#ifdef NB_X86
    static const nb_xent_simd *best;
    if (!best) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f"))
            best = &simd_avx512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
            best = &simd_avx2;
        else
            best = &simd_scalar;
    }
    return best;
#else
    return &simd_scalar;
#endif
}

const nb_xent_simd *nb_xent_simd_by_name(const char *name)
{
    if (!name || !strcmp(name, "scalar"))
        return name ? &simd_scalar : NULL;
#ifdef NB_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c())
        return &simd_avx2;
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f"))
        return &simd_avx512;
#endif
    return NULL;
}

void nb_xent_simd_force(const nb_xent_simd *k)
{
    forced = k;
}
