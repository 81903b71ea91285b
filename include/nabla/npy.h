/* nabla/npy.h - NumPy .npy files (format 1.0, 2.0 and 3.0), little-endian, C order.
 *
 * Supported descr: <f2 <f4 <f8 <i4 <i8 |u1 |b1, and <u2 as the bit patterns of bf16 or f16 values
 * through nb_npy_load_half (|i1, <i2 and the other integer widths are refused).
 * Rejected with a message: Fortran order, big-endian, object or structured arrays, more than 4
 * dimensions, sizes whose byte count overflows, and truncated or trailing-garbage files.
 *
 * Ownership: a loaded tensor is new and the caller's (nb_tensor_free). Paths, buffers and the
 * tensor to save are borrowed for the call only (nb_npy_parse copies what it keeps).
 */
#ifndef NABLA_NPY_H
#define NABLA_NPY_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a file into a new caller-owned tensor. NULL + nb_last_error() on failure. */
nb_tensor *nb_npy_load(const char *path);
/* Reads half-precision floats that NumPy cannot name: a uint16 array ('<u2') of the bit patterns
 * of bfloat16 (as = NB_BF16: NumPy has no bfloat16, so bf16 data is saved as x.view(np.uint16))
 * or IEEE float16 (as = NB_F16; a '<f2' array is accepted too). The tensor has dtype `as`. Any
 * other array is refused with a message naming its dtype. */
nb_tensor *nb_npy_load_half(const char *path, nb_dtype as);
/* Parses an in-memory .npy image of len bytes (a file read by other means; the fuzzer's entry
 * point). */
nb_tensor *nb_npy_parse(const void *buf, size_t len);
/* Writes x through the library's one writer: a regular file (or a new one) is replaced
 * atomically (a temporary ".<name>.nabla.tmp.<pid>.XXXXXX" made with mkstemp beside it, written,
 * fsynced, renamed over path, the directory fsynced); a symlink's target is replaced; a device,
 * a FIFO or "-" (standard output) is written in place. On failure what was at path is left
 * unchanged and the temporary file is removed. */
nb_status nb_npy_save(const char *path, const nb_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
