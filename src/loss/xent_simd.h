/* xent_simd.h - f32 inner loops of the fused cross-entropy: one table per instruction set. */
#ifndef NABLA_XENT_SIMD_H
#define NABLA_XENT_SIMD_H

#include <stdint.h>

/* Rows are processed in chunks of this many logits (32 KiB of f32: stays in L1/L2 between the
 * max and the exp passes over a chunk, so memory sees each logit once). */
#define NB_XCHUNK 2048

typedef struct nb_xent_simd {
    const char *name;
    /* max of x[0..n), NaN if any element is NaN (-inf for n = 0) */
    float (*max)(const float *x, int64_t n);
    /* sum_i exp(x_i - m) */
    float (*sumexp)(const float *x, int64_t n, float m);
    /* sum_i w_i (m - x_i) (w NULL: all 1) */
    float (*sumdiff)(const float *x, int64_t n, float m, const float *w);
    /* dz_i (+)= base exp((x_i - c) - r) - sw w_i (w NULL: all 1) */
    void (*grad)(float *dz, const float *x, int64_t n, float c, float r, float base, float sw,
                 const float *w, int accumulate);
    /* y_i = exp(x_i): the vector exp itself, for tests and benchmarks */
    void (*vexp)(float *y, const float *x, int64_t n);
    /* e_i = exp(x_i - m), returns sum_i e_i (the fused forward+backward keeps the exps) */
    float (*expstore)(const float *x, int64_t n, float m, float *e);
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
