/* fileread.h - opening input files so that no path can make a reader block or allocate beyond
 * the machine: shared by every reader (.npy, IDX, CSV, safetensors, the plot's metrics file).
 * Not installed. */
#ifndef NABLA_FILEREAD_H
#define NABLA_FILEREAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla/status.h"

/* Opens `path` for reading a regular file, never blocking: open(2) with
 * O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY (a FIFO without a writer would otherwise block in
 * open forever, a terminal or /dev/zero never end), fstat, refusal of anything but a regular file,
 * then O_NONBLOCK cleared and the descriptor wrapped in a FILE ("rb"). *size (may be NULL) gets
 * the file's size at open. On failure returns NULL with nb_last_error() set to
 *   "<who>: cannot open '<path>': <errno text>"                          (NB_ERR_IO)
 *   "<who>: '<path>' is a FIFO (named pipe), not a regular file"          (NB_ERR_IO)
 * (or a directory, a character device, a block device, a socket). The caller fcloses. */
FILE *nb_open_regular(const char *path, const char *who, size_t *size);

/* "a directory", "a FIFO (named pipe)", "a character device", ... for a st_mode value. */
const char *nb_file_kind(unsigned mode);

/* The machine's physical memory in bytes (sysconf), or SIZE_MAX when it cannot be told. */
uint64_t nb_physical_memory(void);

/* "24.0 GB", "512.0 MB", "3.0 KB", "17 bytes" for messages (decimal units). */
const char *nb_bytes_str(char *buf, size_t cap, uint64_t bytes);

#endif
