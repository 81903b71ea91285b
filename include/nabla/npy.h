/* nabla/npy.h - NumPy .npy files (format 1.0, 2.0 and 3.0), little-endian, C order.
 *
 * Supported descr: <f2 <f4 <f8 <i4 <i8 |u1 |b1 (and |i1 read as i32 is not supported).
 * Rejected with a message: Fortran order, big-endian, object or structured arrays, more than 4
 * dimensions, sizes whose byte count overflows, and truncated or trailing-garbage files.
 */
#ifndef NABLA_NPY_H
#define NABLA_NPY_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a file into a new caller-owned tensor. NULL + nb_last_error() on failure. */
nb_tensor *nb_npy_load(const char *path);
/* Parses an in-memory .npy image (used by the fuzzer and tests). */
nb_tensor *nb_npy_parse(const void *buf, size_t len);
/* Writes x atomically: to "path.tmp.<pid>", fsync, rename. On failure nothing is left at path. */
nb_status nb_npy_save(const char *path, const nb_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
