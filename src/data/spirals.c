/* spirals.c - the K-spirals toy classification set, seeded. */
#include <math.h>

#include "nabla/data.h"

nb_status nb_spirals(int64_t n_per_class, int64_t K, double noise, uint64_t seed, nb_tensor **X,
                     nb_tensor **y)
{
    if (!X || !y)
        return nb_error(NB_ERR_ARG, "nb_spirals: %s is NULL", !X ? "X" : "y");
    *X = *y = NULL;
    if (n_per_class < 1 || K < 2 || K > 1000 || n_per_class > 10000000)
        return nb_error(NB_ERR_ARG,
                        "nb_spirals: need n_per_class >= 1 and 2 <= K <= 1000 (got %lld, "
                        "%lld)",
                        (long long)n_per_class, (long long)K);
    if (!(noise >= 0.0) || isinf(noise))
        return nb_error(NB_ERR_ARG, "nb_spirals: noise %g must be finite and >= 0", noise);
    int64_t N = n_per_class * K, sx[2] = {N, 2}, sy[1] = {N};
    *X = nb_tensor_empty(NB_F32, 2, sx);
    *y = nb_tensor_empty(NB_I32, 1, sy);
    if (!*X || !*y) {
        nb_tensor_free(*X);
        nb_tensor_free(*y);
        *X = *y = NULL;
        return nb_last_status();
    }
    nb_rng r;
    nb_rng_seed(&r, seed);
    float *xv = (*X)->data;
    int32_t *yv = (*y)->data;
    for (int64_t k = 0; k < K; k++)
        for (int64_t i = 0; i < n_per_class; i++) {
            int64_t p = k * n_per_class + i;
            double rad = n_per_class > 1 ? (double)i / (double)(n_per_class - 1) : 0.0;
            double t = 4.0 * (double)k + 4.0 * rad + noise * nb_rng_normal(&r);
            xv[2 * p] = (float)(rad * sin(t));
            xv[2 * p + 1] = (float)(rad * cos(t));
            yv[p] = (int32_t)k;
        }
    return NB_OK;
}
