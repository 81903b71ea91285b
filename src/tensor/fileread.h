/* fileread.h - the file-I/O layer's reading half: opening input files so that no path can make
 * a reader block or allocate beyond the machine, reading with bounds, and the one wrapper around
 * a reader's file or in-memory image. Shared by every reader (.npy, IDX, CSV, safetensors, the
 * plot's metrics file). Not installed. */
#ifndef NABLA_FILEREAD_H
#define NABLA_FILEREAD_H

#include <stdbool.h>
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

/* ---- reading with bounds ---- */

/* Reads exactly n bytes, or fails saying what was being read ("truncated: end of file inside
 * the <what> (k of n bytes)", NB_ERR_FORMAT, or the read error, NB_ERR_IO). */
nb_status nb_read_exact(FILE *f, void *dst, size_t n, const char *what);
/* The first min(size, cap) bytes of a file of `size` bytes into head; *n says how many. */
nb_status nb_read_head(FILE *f, size_t size, void *head, size_t cap, size_t *n, const char *what);
/* The whole of a file of `size` bytes (its size at open) in a new malloc'ed buffer *out (free
 * it), of which the first nhead bytes were already read into head. A size beyond half the
 * machine's memory is refused before anything is allocated or read ("file is 24.0 GB, more than
 * half (8.0 GB) of this machine's 16.0 GB of memory: ...", NB_ERR_NOMEM). */
nb_status nb_read_rest(FILE *f, size_t size, const void *head, size_t nhead, const char *what,
                       unsigned char **out);

/* ---- one wrapper per reader ---- */

/* Reads one file: opens path with nb_open_regular, calls read(f, size at open, ctx) and closes
 * it. With `whole`, read must have consumed the file: a byte after it fails "file grew while it
 * was being read". Errors of read, that check and the close read "<who>: '<path>': <message>";
 * a NULL path "<who>: load path is NULL" (NB_ERR_ARG); a refused open as nb_open_regular says.
 * What read made belongs to the caller, also when this fails afterwards. */
nb_status nb_read_file(const char *path, const char *who, bool whole,
                       nb_status (*read)(FILE *f, size_t size, void *ctx), void *ctx);
/* Parses one in-memory image: buf NULL with len 0 is an empty image, NULL with len > 0 fails
 * "<who>: buffer is NULL but length is <len>" (NB_ERR_ARG); parse's errors read
 * "<who>: <message>". */
nb_status nb_parse_buffer(const void *buf, size_t len, const char *who,
                          nb_status (*parse)(const unsigned char *buf, size_t len, void *ctx),
                          void *ctx);

/* s[0..n) copied into out[cap] for an error message: bytes outside printable ASCII become '?',
 * and text longer than cap - 1 is cut to end in "...". File contents are never printed raw. */
const char *nb_printable(char *out, size_t cap, const char *s, size_t n);

#endif
