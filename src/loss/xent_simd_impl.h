/* xent_simd_impl.h - what the instruction-set files of the fused loss's inner loops share
 * (xent_simd.c: the scalar version and the dispatch; xent_simd_avx2.c; xent_simd_avx512.c).
 * Only those files include it. */
#ifndef NABLA_XENT_SIMD_IMPL_H
#define NABLA_XENT_SIMD_IMPL_H

#include <stdint.h>

#include "xent_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define NB_X86 1
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

/* The scalar kernels (xent_simd.c); the vector ones finish a row's tail with them, and fall back
 * to nb_xs_sumdiff_wide when an f32 sum overflows. Same contracts as the table's entries. */
float nb_xs_max_scalar(const float *x, int64_t n);
double nb_xs_sumdiff_wide(const float *x, int64_t n, float m, const float *w);
double nb_xs_sumdiff_scalar(const float *x, int64_t n, float m, const float *w);
void nb_xs_grad_scalar(float *dz, const float *x, int64_t n, float c, float r, float base, float sw,
                       const float *w, int accumulate);
void nb_xs_vexp_scalar(float *y, const float *x, int64_t n);
/* sums of exps; e (store the exps) and ones (count the x_i == m, leave them out) may be NULL */
double nb_xs_sumexp_impl_scalar(const float *x, int64_t n, float m, float *e, int64_t *ones);
void nb_xs_scale_scalar(float *dz, int64_t n, float scale, float sw, const float *w);
void nb_xs_gradstore_scalar(float *dz, const float *e, int64_t n, float scale, float sw,
                            const float *w);
void nb_xs_f16_scalar(float *y, const uint16_t *h, int64_t n);

/* The tables. The vector ones exist on x86-64 only; use them only where the CPU has the
 * instructions (nb_xent_simd_get and nb_xent_simd_by_name check). */
extern const nb_xent_simd nb_xent_simd_scalar;
#ifdef NB_X86
extern const nb_xent_simd nb_xent_simd_avx2;
extern const nb_xent_simd nb_xent_simd_avx512;
#endif

#endif
