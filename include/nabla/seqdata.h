/* nabla/seqdata.h - a generated sequence task with variable-length padding.
 *
 * seq-toy: sequences of symbols s_t in [0, V), each of a random length L in [2, T]. The target at
 * position t is (s_t + s_{t-1}) mod V (s_0 itself at t = 0), so a model must look at the current
 * and the previous symbol. Each position's features are one-hot(s_t) followed by
 * one-hot(s_{t-1}) (zeros at t = 0): F = 2V. Positions t >= L are padding: features 0 and target
 * -100 (the default ignore_index), so the loss's masks and token-count averaging are used for
 * real in training.
 */
#ifndef NABLA_SEQDATA_H
#define NABLA_SEQDATA_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X f32 [n_seq, T, 2V], Y i32 [n_seq, T] (-100 on padding): new caller-owned tensors, freed with
 * nb_tensor_free; on failure *X and *Y are NULL (what they held before is not freed). */
nb_status nb_seq_toy(int64_t n_seq, int64_t T, int64_t V, uint64_t seed, nb_tensor **X,
                     nb_tensor **Y);

#ifdef __cplusplus
}
#endif
#endif
