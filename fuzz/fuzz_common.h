/* fuzz_common.h - what every libFuzzer harness in fuzz/ checks after calling a reader.
 *
 * On success the harness reads every element of every tensor it got back (under AddressSanitizer
 * a tensor whose numel, shape or dtype disagrees with its allocation is caught here) and frees
 * it; on failure the reader must have left a message (nb_last_error() non-empty). A broken
 * contract calls fuzz_fail, which aborts: libFuzzer then reports it as a crash and saves the input.
 */
#ifndef NABLA_FUZZ_COMMON_H
#define NABLA_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nabla/status.h"
#include "nabla/tensor.h"

/* The sums go here so the compiler cannot drop the reads. */
static volatile double fuzz_sink;

static inline _Noreturn void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz: contract broken: %s (last error: '%s')\n", what, nb_last_error());
    abort();
}

/* Checks that numel is the product of the shape, then sums every element. */
static inline double fuzz_sum_tensor(const nb_tensor *t)
{
    if (!t)
        fuzz_fail("a reader returned success with a NULL tensor");
    if (t->ndim < 0 || t->ndim > NB_MAX_DIMS || (int)t->dtype < 0 || t->dtype >= NB_DTYPE_COUNT)
        fuzz_fail("tensor with a bad ndim or dtype");
    /* numel = product of the shape; a zero dimension makes it 0 whatever the others are (they
     * may be huge: an IDX file can say [0, 4294967295, ...]), else it must not overflow. */
    int64_t n = 1;
    bool empty = false;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            fuzz_fail("tensor with a negative dimension");
        empty = empty || t->shape[i] == 0;
    }
    for (int i = 0; i < t->ndim && !empty; i++)
        if (__builtin_mul_overflow(n, t->shape[i], &n))
            fuzz_fail("tensor shape whose product overflows int64");
    if (empty)
        n = 0;
    if (n != t->numel)
        fuzz_fail("tensor numel is not the product of its shape");
    if (n > 0 && !t->data)
        fuzz_fail("non-empty tensor with NULL data");
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += nb_tensor_get(t, i);
    fuzz_sink = s;
    return s;
}

/* After a failed call: the reader must say why. */
static inline void fuzz_check_error(void)
{
    const char *msg = nb_last_error();
    if (!msg || msg[0] == '\0')
        fuzz_fail("a reader failed without an error message");
    if (nb_last_status() == NB_OK)
        fuzz_fail("a reader failed but nb_last_status() is NB_OK");
}

#endif
