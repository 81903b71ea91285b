/* rng.c - xoshiro256** seeded by splitmix64; uniform and normal variates that are bit-identical
 * on every IEEE-754 machine (no libm: the polar method needs only sqrt, which IEEE rounds
 * exactly, and a logarithm we compute here with + - * / alone). */
#include <math.h>
#include <string.h>

#include "nabla/tensor.h"
#include "tensor_internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void nb_rng_seed(nb_rng *r, uint64_t seed)
{
    if (!r) {
        nb_error(NB_ERR_ARG, "nb_rng_seed: r is NULL");
        return;
    }
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->has_spare = false;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t nb_rng_u64(nb_rng *r)
{
    if (!r) {
        nb_error(NB_ERR_ARG, "nb_rng_u64: r is NULL");
        return 0;
    }
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nb_rng_uniform(nb_rng *r)
{
    if (!r) {
        nb_error(NB_ERR_ARG, "nb_rng_uniform: r is NULL");
        return NAN;
    }
    return (double)(nb_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t nb_rng_below(nb_rng *r, uint64_t n)
{
    if (!r || n == 0) {
        nb_error(NB_ERR_ARG, "nb_rng_below: %s", !r ? "r is NULL" : "n is 0 (needs n > 0)");
        return 0;
    }
    /* rejection: discard the top partial block so every residue is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = nb_rng_u64(r);
    } while (x >= limit);
    return x % n;
}

/* ln x for finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), and
 * ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1), |s| < 0.1716,
 * so 12 terms leave a truncation error below 1e-19. Each operation is IEEE-rounded, so the result
 * is the same everywhere (accurate to a few ulp; we need reproducibility, not correct rounding). */
double nb_det_log(double x)
{
    if (!(x > 0.0))
        return x == 0.0 ? -INFINITY : NAN;
    if (x == INFINITY)
        return x;
    int e = 0;
    double m = frexp(x, &e); /* exact: m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double term = s, sum = 0.0;
    for (int k = 1; k <= 23; k += 2) {
        sum += term / (double)k;
        term *= s2;
    }
    const double ln2_hi = 6.93147180369123816490e-01; /* ln 2 split so e*ln2_hi is exact */
    const double ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + (2.0 * sum + (double)e * ln2_lo);
}

double nb_rng_normal(nb_rng *r)
{
    if (!r) {
        nb_error(NB_ERR_ARG, "nb_rng_normal: r is NULL");
        return NAN;
    }
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) { /* all-zero state: only zeros, never ends */
        nb_error(NB_ERR_ARG, "nb_rng_normal: generator state is all zero (not seeded with "
                             "nb_rng_seed)");
        return NAN;
    }
    double u, v, q;
    do {
        u = 2.0 * nb_rng_uniform(r) - 1.0;
        v = 2.0 * nb_rng_uniform(r) - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    double f = sqrt(-2.0 * nb_det_log(q) / q);
    r->spare = v * f;
    r->has_spare = true;
    return u * f;
}

nb_status nb_tensor_fill_rand(nb_tensor *x, nb_rng *r, double lo, double hi)
{
    nb_status s = nb_check_tensor("nb_tensor_fill_rand", "x", x);
    if (s != NB_OK)
        return s;
    if (!r)
        return nb_error(NB_ERR_ARG, "nb_tensor_fill_rand: r is NULL");
    if (!nb_dtype_is_float(x->dtype))
        return nb_error(NB_ERR_DTYPE, "nb_tensor_fill_rand: needs a float tensor, got %s",
                        nb_dtype_name(x->dtype));
    if (!(isfinite(lo) && isfinite(hi) && lo <= hi))
        return nb_error(NB_ERR_ARG,
                        "nb_tensor_fill_rand: bounds lo %g, hi %g must be finite with "
                        "lo <= hi",
                        lo, hi);
    for (int64_t i = 0; i < x->numel; i++)
        nb_tensor_set(x, i, lo + (hi - lo) * nb_rng_uniform(r));
    return NB_OK;
}

nb_status nb_tensor_fill_randn(nb_tensor *x, nb_rng *r, double mean, double std)
{
    nb_status s = nb_check_tensor("nb_tensor_fill_randn", "x", x);
    if (s != NB_OK)
        return s;
    if (!r)
        return nb_error(NB_ERR_ARG, "nb_tensor_fill_randn: r is NULL");
    if (!nb_dtype_is_float(x->dtype))
        return nb_error(NB_ERR_DTYPE, "nb_tensor_fill_randn: needs a float tensor, got %s",
                        nb_dtype_name(x->dtype));
    if (!(isfinite(mean) && isfinite(std) && std >= 0))
        return nb_error(NB_ERR_ARG,
                        "nb_tensor_fill_randn: mean %g, std %g must be finite with "
                        "std >= 0",
                        mean, std);
    if (x->numel > 0 && !(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        return nb_error(NB_ERR_ARG, "nb_tensor_fill_randn: generator state is all zero (not "
                                    "seeded with nb_rng_seed)");
    for (int64_t i = 0; i < x->numel; i++)
        nb_tensor_set(x, i, mean + std * nb_rng_normal(r));
    return NB_OK;
}

nb_tensor *nb_tensor_rand(nb_dtype t, int ndim, const int64_t *shape, nb_rng *r, double lo,
                          double hi)
{
    nb_tensor *x = nb_tensor_empty(t, ndim, shape);
    if (x && nb_tensor_fill_rand(x, r, lo, hi) != NB_OK) {
        nb_tensor_free(x);
        x = NULL;
    }
    if (!x)
        nb_error_in("nb_tensor_rand", nb_last_status());
    return x;
}

nb_tensor *nb_tensor_randn(nb_dtype t, int ndim, const int64_t *shape, nb_rng *r, double mean,
                           double std)
{
    nb_tensor *x = nb_tensor_empty(t, ndim, shape);
    if (x && nb_tensor_fill_randn(x, r, mean, std) != NB_OK) {
        nb_tensor_free(x);
        x = NULL;
    }
    if (!x)
        nb_error_in("nb_tensor_randn", nb_last_status());
    return x;
}
