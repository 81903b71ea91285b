/* xent_simd.c - the f32 inner loops of the fused cross-entropy, vectorised for AVX-512 and AVX2
 * (chosen at run time) with a portable scalar version of the same algorithm.
 *
 * exp(x) for x <= 0 (every exponent the loss takes is z - max z <= 0):
 *   k = round(x log2 e), r = x - k ln2 (ln2 split in two, Cody-Waite, so r is nearly exact),
 *   exp(r) by its Taylor polynomial of degree 7 on |r| <= ln2/2 (truncation < 6e-9 relative),
 *   then scaled by 2^k in two steps 2^(k/2) 2^(k - k/2) so that results down to the subnormal
 *   range (x > -103.9) come out right. Inputs below -104 give 0, NaN gives NaN.
 *   Measured against libm expf over [-103, 0]: max error 1 ulp (tests/test_simd.c).
 * Everything runs in f32; sums of exps are carried per lane within blocks of NB_XSUM (256)
 * elements and the blocks are added in double (the smoothing sum per lane within a chunk of at
 * most NB_XCHUNK), and the callers add chunk sums in double. Two refinements, both cheap: the block
 * of a row that holds the max has its sum of exps taken without the elements equal to the max (the
 * *_below kernels count them instead: each adds exactly 1, and adding 1 to f32 lanes would swallow
 * an off-max sum below 6e-8), and the smoothing sum sum_i w_i (m - x_i) is redone in double when
 * its f32 lanes overflow (m - x_i is inf in f32 for logits of opposite sign near +-1.7e38, and the
 * true loss may still be finite).
 *
 * This file: the portable scalar version (the reference for the vector ones) and the choice of
 * table; xent_simd_avx2.c and xent_simd_avx512.c hold the vector versions. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "nabla/tensor.h"
#include "xent_simd_impl.h"

#ifdef NB_X86
#include <cpuid.h>

/* F16C from CPUID leaf 1, ECX bit 29: clang before 16 has no "f16c" for
   __builtin_cpu_supports. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

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

float nb_xs_max_scalar(const float *x, int64_t n)
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
double nb_xs_sumdiff_wide(const float *x, int64_t n, float m, const float *w)
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

double nb_xs_sumdiff_scalar(const float *x, int64_t n, float m, const float *w)
{
    float s[8] = {0};
    for (int64_t i = 0; i < n; i++)
        if (!w || w[i] != 0.0f)
            s[i & 7] += (w ? w[i] : 1.0f) * (m - x[i]);
    float r = sum8(s);
    return isfinite(r) ? (double)r : nb_xs_sumdiff_wide(x, n, m, w);
}

void nb_xs_grad_scalar(float *dz, const float *x, int64_t n, float c, float r, float base, float sw,
                       const float *w, int accumulate)
{
    for (int64_t i = 0; i < n; i++) {
        float v = base * exp_scalar((x[i] - c) - r) - sw * (w ? w[i] : 1.0f);
        dz[i] = accumulate ? dz[i] + v : v;
    }
}

void nb_xs_vexp_scalar(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = exp_scalar(x[i]);
}

/* The sums of exps, one body for the four kernels: e (store the exps) and ones (leave out the
 * elements equal to m and count them) may be NULL. Blocks of NB_XSUM terms are summed in f32
 * (8 partial sums) and the blocks in double. */
double nb_xs_sumexp_impl_scalar(const float *x, int64_t n, float m, float *e, int64_t *ones)
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
    return nb_xs_sumexp_impl_scalar(x, n, m, NULL, NULL);
}

static double sumexp_below_scalar(const float *x, int64_t n, float m, int64_t *ones)
{
    return nb_xs_sumexp_impl_scalar(x, n, m, NULL, ones);
}

static double expstore_scalar(const float *x, int64_t n, float m, float *e)
{
    return nb_xs_sumexp_impl_scalar(x, n, m, e, NULL);
}

static double expstore_below_scalar(const float *x, int64_t n, float m, float *e, int64_t *ones)
{
    return nb_xs_sumexp_impl_scalar(x, n, m, e, ones);
}

void nb_xs_scale_scalar(float *dz, int64_t n, float scale, float sw, const float *w)
{
    for (int64_t i = 0; i < n; i++)
        dz[i] = scale * dz[i] - sw * (w ? w[i] : 1.0f);
}

void nb_xs_gradstore_scalar(float *dz, const float *e, int64_t n, float scale, float sw,
                            const float *w)
{
    for (int64_t i = 0; i < n; i++)
        dz[i] = scale * e[i] - sw * (w ? w[i] : 1.0f);
}

void nb_xs_f16_scalar(float *y, const uint16_t *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = nb_f16_to_f32(h[i]);
}

const nb_xent_simd nb_xent_simd_scalar = {.name = "scalar",
                                          .max = nb_xs_max_scalar,
                                          .sumexp = sumexp_scalar,
                                          .sumexp_below = sumexp_below_scalar,
                                          .sumdiff = nb_xs_sumdiff_scalar,
                                          .grad = nb_xs_grad_scalar,
                                          .vexp = nb_xs_vexp_scalar,
                                          .expstore = expstore_scalar,
                                          .expstore_below = expstore_below_scalar,
                                          .scale = nb_xs_scale_scalar,
                                          .gradstore = nb_xs_gradstore_scalar,
                                          .f16_to_f32 = nb_xs_f16_scalar};

/* ---- choosing the table ---- */

/* The table for this CPU, resolved once: the first call stores it and every later call, from any
 * thread, loads it. The kernels fetch it at their entry, before any parallel region, and hand it
 * to their threads; the pointers are atomic all the same, so that two threads of a program that
 * call the kernels for the first time at once (or a test forcing a table) are well defined in
 * C11 (both would store the same pointer). */
static _Atomic(const nb_xent_simd *) best;
static _Atomic(const nb_xent_simd *) forced;

static const nb_xent_simd *detect(void)
{
#ifdef NB_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return &nb_xent_simd_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        return &nb_xent_simd_avx2;
#endif
    return &nb_xent_simd_scalar;
}

const nb_xent_simd *nb_xent_simd_get(void)
{
    const nb_xent_simd *k = atomic_load_explicit(&forced, memory_order_acquire);
    if (k)
        return k;
    k = atomic_load_explicit(&best, memory_order_acquire);
    if (!k) {
        k = detect();
        atomic_store_explicit(&best, k, memory_order_release);
    }
    return k;
}

const nb_xent_simd *nb_xent_simd_by_name(const char *name)
{
    if (!name || !strcmp(name, "scalar"))
        return name ? &nb_xent_simd_scalar : NULL;
#ifdef NB_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c())
        return &nb_xent_simd_avx2;
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f"))
        return &nb_xent_simd_avx512;
#endif
    return NULL;
}

void nb_xent_simd_force(const nb_xent_simd *k)
{
    atomic_store_explicit(&forced, k, memory_order_release);
}
