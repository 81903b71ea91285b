/* seqtoy.c - the seq-toy task (see nabla/seqdata.h). */
#include <string.h>

#include "nabla/seqdata.h"

nb_status nb_seq_toy(int64_t n_seq, int64_t T, int64_t V, uint64_t seed, nb_tensor **X,
                     nb_tensor **Y)
{
    if (!X || !Y)
        return nb_error(NB_ERR_ARG, "nb_seq_toy: %s is NULL", !X ? "X" : "Y");
    *X = *Y = NULL;
    if (n_seq < 1 || n_seq > 10000000 || T < 2 || T > 4096 || V < 2 || V > 4096)
        return nb_error(NB_ERR_ARG,
                        "nb_seq_toy: need 1 <= n_seq <= 1e7, 2 <= T <= 4096, 2 <= V <= 4096 "
                        "(got %lld, %lld, %lld)",
                        (long long)n_seq, (long long)T, (long long)V);
    int64_t sx[3] = {n_seq, T, 2 * V}, sy[2] = {n_seq, T};
    *X = nb_tensor_zeros(NB_F32, 3, sx);
    *Y = nb_tensor_empty(NB_I32, 2, sy);
    if (!*X || !*Y) {
        nb_tensor_free(*X);
        nb_tensor_free(*Y);
        *X = *Y = NULL;
        return nb_last_status();
    }
    nb_rng r;
    nb_rng_seed(&r, seed);
    float *x = (*X)->data;
    int32_t *y = (*Y)->data;
    for (int64_t n = 0; n < n_seq; n++) {
        int64_t L = 2 + (int64_t)nb_rng_below(&r, (uint64_t)(T - 1)), prev = -1;
        for (int64_t t = 0; t < T; t++) {
            float *f = x + (n * T + t) * 2 * V;
            if (t >= L) {
                y[n * T + t] = -100;
                continue;
            }
            int64_t s = (int64_t)nb_rng_below(&r, (uint64_t)V);
            f[s] = 1.0f;
            if (prev >= 0)
                f[V + prev] = 1.0f;
            y[n * T + t] = (int32_t)(prev >= 0 ? (s + prev) % V : s);
            prev = s;
        }
    }
    return NB_OK;
}
