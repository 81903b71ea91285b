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
 * and the callers add chunk sums in double. */
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

static float sumexp_scalar(const float *x, int64_t n, float m)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += exp_scalar(x[i] - m);
    return s;
}

static float sumdiff_scalar(const float *x, int64_t n, float m, const float *w)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += (w ? w[i] : 1.0f) * (m - x[i]);
    return s;
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

static float expstore_scalar(const float *x, int64_t n, float m, float *e)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        e[i] = exp_scalar(x[i] - m);
        s += e[i];
    }
    return s;
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

static const nb_xent_simd simd_scalar = {
    "scalar",    max_scalar,      sumexp_scalar, sumdiff_scalar,   grad_scalar,
    vexp_scalar, expstore_scalar, scale_scalar,  gradstore_scalar, f16_scalar};

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

AVX2 static float sumexp_avx2(const float *x, int64_t n, float m)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) { /* two accumulators: the adds do not wait on each other */
        _mm_prefetch((const char *)(x + i + NB_XCHUNK), _MM_HINT_T0);
        s0 = _mm256_add_ps(s0, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
        s1 = _mm256_add_ps(s1, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm)));
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_add_ps(s0, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    return hsum_avx2(_mm256_add_ps(s0, s1)) + sumexp_scalar(x + i, n - i, m);
}

AVX2 static float expstore_avx2(const float *x, int64_t n, float m, float *e)
{
    __m256 s = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if (!(i & 15))
            _mm_prefetch((const char *)(x + i + NB_XCHUNK), _MM_HINT_T0);
        __m256 v = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(e + i, v);
        s = _mm256_add_ps(s, v);
    }
    return hsum_avx2(s) + expstore_scalar(x + i, n - i, m, e + i);
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

AVX2 static float sumdiff_avx2(const float *x, int64_t n, float m, const float *w)
{
    __m256 s = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(vm, _mm256_loadu_ps(x + i));
        s = w ? _mm256_fmadd_ps(_mm256_loadu_ps(w + i), d, s) : _mm256_add_ps(s, d);
    }
    return hsum_avx2(s) + sumdiff_scalar(x + i, n - i, m, w ? w + i : NULL);
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

static const nb_xent_simd simd_avx2 = {"avx2",         max_avx2,  sumexp_avx2,   sumdiff_avx2,
                                       grad_avx2,      vexp_avx2, expstore_avx2, scale_avx2,
                                       gradstore_avx2, f16_avx2};

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

AVX512 static float sumexp_avx512(const float *x, int64_t n, float m)
{
    __m512 s = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), vm = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) { /* two accumulators: the adds do not wait on each other */
        /* while this chunk (already in cache) is computed, pull the next one in from memory:
         * the exps are compute-bound, and memory would otherwise sit idle meanwhile */
        _mm_prefetch((const char *)(x + i + NB_XCHUNK), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i + NB_XCHUNK + 16), _MM_HINT_T0);
        s = _mm512_add_ps(s, exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
        s1 = _mm512_add_ps(s1, exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm)));
    }
    s = _mm512_add_ps(s, s1);
    for (; i + 16 <= n; i += 16)
        s = _mm512_add_ps(s, exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
    if (n - i > 0) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        s = _mm512_mask_add_ps(s, k, s, exp_avx512(_mm512_sub_ps(v, vm)));
    }
    return _mm512_reduce_add_ps(s);
}

AVX512 static float sumdiff_avx512(const float *x, int64_t n, float m, const float *w)
{
    __m512 s = _mm512_setzero_ps(), vm = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(vm, _mm512_loadu_ps(x + i));
        s = w ? _mm512_fmadd_ps(_mm512_loadu_ps(w + i), d, s) : _mm512_add_ps(s, d);
    }
    return _mm512_reduce_add_ps(s) + sumdiff_scalar(x + i, n - i, m, w ? w + i : NULL);
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

AVX512 static float expstore_avx512(const float *x, int64_t n, float m, float *e)
{
    __m512 s = _mm512_setzero_ps(), vm = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm_prefetch((const char *)(x + i + NB_XCHUNK), _MM_HINT_T0);
        __m512 v = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(e + i, v);
        s = _mm512_add_ps(s, v);
    }
    if (n - i > 0) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        _mm512_mask_storeu_ps(e + i, k, v);
        s = _mm512_mask_add_ps(s, k, s, v);
    }
    return _mm512_reduce_add_ps(s);
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

static const nb_xent_simd simd_avx512 = {
    "avx512",    max_avx512,      sumexp_avx512, sumdiff_avx512,   grad_avx512,
    vexp_avx512, expstore_avx512, scale_avx512,  gradstore_avx512, f16_avx512};
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
