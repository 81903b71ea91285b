/* fileio.h - byte order and crash-safe writing, shared by the .npy and safetensors writers.
 * Not installed. */
#ifndef NABLA_FILEIO_H
#define NABLA_FILEIO_H

#include <stdbool.h>
#include <stdio.h>

#include "nabla/tensor.h"

bool nb_host_little_endian(void);
/* Reverses each `size`-byte element of buf in place (used only on big-endian hosts). */
void nb_swap_elements(unsigned char *buf, size_t count, size_t size);
/* Writes x's elements little-endian (bools as 0/1). False on a write error (errno set). */
bool nb_write_tensor_le(FILE *f, const nb_tensor *x);

/* Reads exactly n bytes, or fails saying what was being read ("truncated: end of file inside
 * the <what> (k of n bytes)", or the read error). */
nb_status nb_read_exact(FILE *f, void *dst, size_t n, const char *what);
/* The size of an open regular file (errors: not a regular file, not addressable). */
nb_status nb_regular_file_size(FILE *f, size_t *size);
/* Re-emits the current error as "<who>: '<path>': <message>" ("<who>: <message>" without path). */
void nb_error_prefix(nb_status st, const char *who, const char *path);

/* Writes a file so that a crash or an error never leaves a partial one at `path`: `fill` writes
 * the contents into "path.tmp.<pid>" (returning false on a write error, errno set), which is then
 * flushed, fsynced, closed and renamed onto path, and the directory is fsynced. On any failure
 * the temporary file is removed, whatever was at path is untouched, and the error reads
 * "<who>: '<path>': <step> failed: <reason>". */
nb_status nb_write_atomically(const char *path, const char *who, bool (*fill)(FILE *f, void *ctx),
                              void *ctx);

#endif
