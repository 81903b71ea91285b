/* xent_simd.h - f32 inner loops of the fused cross-entropy: one table per instruction set. */
#ifndef NABLA_XENT_SIMD_H
#define NABLA_XENT_SIMD_H

#include <stdint.h>

/* Rows are processed in chunks of this many logits (32 KiB of f32: stays in L1/L2 between the
 * max and the exp passes over a chunk, so memory sees each logit once). */
#define NB_XCHUNK 2048
/* Sums of exps are taken in f32 lanes over blocks of this many logits, and the blocks are added
 * in double: a sum is then off by ~1e-7 relative, which is all a confident row's loss (= the
 * off-max sum, down to 1e-30) may lose. */
#define NB_XSUM 256

typedef struct nb_xent_simd {
    const char *name;
    /* max of x[0..n), NaN if any element is NaN (-inf for n = 0) */
    float (*max)(const float *x, int64_t n);
    /* sum_i exp(x_i - m): f32 within blocks of NB_XSUM, the blocks added in double */
    double (*sumexp)(const float *x, int64_t n, float m);
    /* the same for a block that holds the max m: the sum over the x_i < m only, and
     * *ones += the number of x_i == m (each adds exactly exp(0) = 1). Kept apart so that
     * s - 1 = (ones - 1) + sum keeps its digits when the max holds almost all the mass (the
     * caller takes log s = log1p(s - 1)); adding 1 to an f32 lane would swallow the rest. */
    double (*sumexp_below)(const float *x, int64_t n, float m, int64_t *ones);
    /* sum_i w_i (m - x_i) (w NULL: all 1), in f32 lanes, redone in double when that sum is not
     * finite (m - x_i overflows f32 for x near -+1.7e38). A term with w_i = 0 is 0 even when
     * x_i = -inf (the limit, not 0 * inf = NaN). */
    double (*sumdiff)(const float *x, int64_t n, float m, const float *w);
    /* dz_i (+)= base exp((x_i - c) - r) - sw w_i (w NULL: all 1) */
    void (*grad)(float *dz, const float *x, int64_t n, float c, float r, float base, float sw,
                 const float *w, int accumulate);
    /* y_i = exp(x_i): the vector exp itself, for tests and benchmarks */
    void (*vexp)(float *y, const float *x, int64_t n);
    /* e_i = exp(x_i - m), returns sum_i e_i (the fused forward+backward keeps the exps) */
    double (*expstore)(const float *x, int64_t n, float m, float *e);
    /* e_i = exp(x_i - m) for every i; returns the sum over x_i < m and counts the x_i == m in
     * *ones, as sumexp_below */
    double (*expstore_below)(const float *x, int64_t n, float m, float *e, int64_t *ones);
    /* dz_i = scale dz_i - sw w_i (w NULL: all 1) */
    void (*scale)(float *dz, int64_t n, float scale, float sw, const float *w);
    /* dz_i = scale e_i - sw w_i, with non-temporal stores where the ISA has them */
    void (*gradstore)(float *dz, const float *e, int64_t n, float scale, float sw, const float *w);
    /* widen IEEE half to float (exact) */
    void (*f16_to_f32)(float *y, const uint16_t *h, int64_t n);
} nb_xent_simd;

/* The best table this CPU supports (AVX-512F, else AVX2+FMA, else scalar). */
const nb_xent_simd *nb_xent_simd_get(void);
/* "scalar", "avx2" or "avx512"; NULL if unknown or not supported by this CPU. */
const nb_xent_simd *nb_xent_simd_by_name(const char *name);
/* Use k from now on (NULL: back to the best); for tests and benchmarks comparing paths. */
void nb_xent_simd_force(const nb_xent_simd *k);

#endif
