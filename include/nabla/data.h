/* nabla/data.h - built-in data sets. */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* K interleaved spirals in the plane, n points per class (cs231n's toy problem): point i of class
 * k sits at radius r = i/n and angle t = 4k + 4r (radians) plus N(0, noise^2), at
 * (r sin t, r cos t). X is f32 [K n, 2], y is i32 [K n]. Both are new caller-owned tensors, freed
 * with nb_tensor_free; on failure *X and *y are NULL (what they held before is not freed). */
nb_status nb_spirals(int64_t n_per_class, int64_t K, double noise, uint64_t seed, nb_tensor **X,
                     nb_tensor **y);

#ifdef __cplusplus
}
#endif
#endif
