/* nabla/safetensors.h - Hugging Face safetensors files: named tensors plus string metadata.
 *
 * Layout of a file (the format of the `safetensors` package):
 *
 *   offset 0    N, the header length      8 bytes, unsigned little-endian
 *   offset 8    header                    N bytes of UTF-8 JSON, padded with spaces
 *   offset 8+N  data buffer               every tensor's bytes, little-endian, row-major
 *
 * The header maps each tensor name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
 * with b, e relative to the start of the data buffer, plus an optional "__metadata__" object of
 * string -> string. The tensors' byte ranges tile the buffer exactly: no gap, no overlap, nothing
 * after the last one.
 *
 * dtypes: F32 F64 F16 BF16 I32 I64 U8 BOOL (nabla's eight); shapes of 0 to 4 dimensions.
 *
 * Reading treats the file as hostile: the header length is bounded (at most 100,000,000 bytes,
 * as the reference implementation, and within the file), the JSON must be valid UTF-8 and parse,
 * and every entry is checked (dtype, shape, byte count, offsets, duplicates) before anything is
 * allocated for the data; a failure returns NULL with a message naming the tensor and the values.
 */
#ifndef NABLA_SAFETENSORS_H
#define NABLA_SAFETENSORS_H

#include <stddef.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A tensor and the name it is saved under (neither is copied or owned). */
typedef struct nb_named_tensor {
    const char *name;
    const nb_tensor *tensor;
} nb_named_tensor;

/* Writes n tensors (any dtype) in the order given, with metadata pairs meta[0] = key0,
 * meta[1] = value0, ..., ended by a NULL key (meta may be NULL for none). Names must be unique,
 * non-empty UTF-8, and not "__metadata__" (reserved); metadata keys must be unique.
 * Tensors are laid out in the order given, so a tensor is aligned to its element size in the file
 * only if the ones before it add up to a multiple of that size; the Python package gets this by
 * writing the widest dtypes first, and so can the caller.
 * Atomic: the file is written to a temporary ".<name>.nabla.tmp.<pid>.XXXXXX" (mkstemp) beside
 * it, flushed, fsync'd and renamed onto path, and the directory is fsync'd (a symlink's target is
 * replaced; a device, a FIFO or "-" is written in place). On any failure nothing new is left at
 * path (a file already there is kept intact) and the temporary file is removed; the status says
 * why and nb_last_error() names the file. tensors, their names and meta are borrowed for the
 * call. */
nb_status nb_safetensors_save(const char *path, const nb_named_tensor *tensors, int n,
                              const char *const *meta);

/* A loaded file: it owns its tensors, names and metadata strings, which live until
 * nb_safetensors_free: every pointer the accessors below return is borrowed from it (never free
 * or modify it). nb_safetensors_parse copies what it keeps from buf. */
typedef struct nb_safetensors nb_safetensors;

/* Reads a file. NULL + nb_last_error() (naming the file and the problem) on failure. */
nb_safetensors *nb_safetensors_load(const char *path);
/* The same from an in-memory image of a whole file (the fuzzer's entry point). */
nb_safetensors *nb_safetensors_parse(const void *buf, size_t len);

/* Accessors: a NULL st, name or key sets NB_ERR_ARG and returns 0 / NULL; an index out of range
 * sets NB_ERR_RANGE and returns NULL. A name or key that is simply absent returns NULL without
 * recording an error (it is an answer, not a failure). */
/* Number of tensors. */
int nb_safetensors_count(const nb_safetensors *st);
/* Name of tensor i, in file order (sorted by data offset); NULL if i is out of range. */
const char *nb_safetensors_name(const nb_safetensors *st, int i);
/* The tensor saved under name, NULL if absent. Owned by st: never free it. */
const nb_tensor *nb_safetensors_get(const nb_safetensors *st, const char *name);
/* The metadata value for key, NULL if absent. */
const char *nb_safetensors_meta(const nb_safetensors *st, const char *key);
/* Numeric metadata, read strictly and range-checked (for files that may be crafted):
 * _int: the value of key is an integer as "%lld" writes it (an optional '-' and decimal digits,
 *       nothing else: "1e300", "2.0", " 3" are refused) in [lo, hi];
 * _number: a finite decimal number (no inf, nan or hex) in [lo, hi] (hi >= DBL_MAX: no upper
 *       bound), as "%.17g" writes it.
 * NB_ERR_FORMAT when key is missing or its value is not such a number or is out of range, with
 * a message naming the key, the value and the range ("metadata 'epoch' is '-5'; expected an
 * integer in [0, 9007199254740992]"); *out is written only on success. */
nb_status nb_safetensors_meta_int(const nb_safetensors *st, const char *key, int64_t lo, int64_t hi,
                                  int64_t *out);
nb_status nb_safetensors_meta_number(const nb_safetensors *st, const char *key, double lo,
                                     double hi, double *out);
/* Number of metadata pairs, and key i of them in header order (NULL if out of range). */
int nb_safetensors_meta_count(const nb_safetensors *st);
const char *nb_safetensors_meta_key(const nb_safetensors *st, int i);
/* Releases st and everything it owns (NULL is fine). */
void nb_safetensors_free(nb_safetensors *st);

#ifdef __cplusplus
}
#endif
#endif
