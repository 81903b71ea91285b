/* xent_simd_avx512.c - the fused loss's f32 inner loops for AVX-512F, 16 lanes (masked tails);
 * the algorithm and its accuracy are described in xent_simd.c. */
#include "xent_simd_impl.h"

#ifdef NB_X86
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

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

/* as nb_xs_sumexp_impl_scalar: f32 lanes within a block of NB_XSUM, double across blocks */
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
 * double (nb_xs_sumdiff_wide) */
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
    return isfinite(r) ? (double)r : nb_xs_sumdiff_wide(x, n, m, w);
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
    nb_xs_scale_scalar(dz + i, n - i, scale, sw, w ? w + i : NULL);
}

AVX512 static void vexp_avx512(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, exp_avx512(_mm512_loadu_ps(x + i)));
    nb_xs_vexp_scalar(y + i, x + i, n - i);
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
    nb_xs_gradstore_scalar(dz + i, e + i, n - i, scale, sw, w ? w + i : NULL);
}

AVX512 static void f16_avx512(float *y, const uint16_t *h, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    nb_xs_f16_scalar(y + i, h + i, n - i);
}

const nb_xent_simd nb_xent_simd_avx512 = {.name = "avx512",
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
#else
typedef int nb_xent_no_avx512; /* ISO C: a translation unit declares something */
#endif
