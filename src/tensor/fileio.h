/* fileio.h - the file-I/O layer's writing half: byte order of tensor data, crash-safe writing
 * of every output, and the message helper all readers and writers share. Reading input files is
 * in fileread.h; the shape validator in tensor_internal.h. Not installed. */
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
/* Brings t's freshly read little-endian bytes into host form: bools become a clean 0/1 (any
 * nonzero byte is true), multi-byte elements are swapped on a big-endian host. */
void nb_tensor_from_le(nb_tensor *t);
/* Re-emits the current error as "<who>: '<path>': <message>" ("<who>: <message>" without path). */
void nb_error_prefix(nb_status st, const char *who, const char *path);

/* v as a JSON number printed with the printf format fmt into buf[n], or "null" when v is NaN
 * or infinite (JSON has no such numbers: a bare nan or inf makes the whole line invalid).
 * Returns the text to print. */
const char *nb_json_number(char *buf, size_t n, const char *fmt, double v);

/* ---- writing outputs ----
 *
 * Every file nabla writes goes through one writer, which looks at what the path names:
 *   "-"                        standard output (flushed, never closed);
 *   absent or a regular file   replaced atomically: a temporary file
 * ".<base>.nabla.tmp.<pid>.XXXXXX" is created with mkstemp (O_CREAT|O_EXCL) in the target's
 *                              directory, written, flushed, fsynced, closed and renamed onto
 *                              the target, and the directory is fsynced; an existing file's
 *                              permission bits (and owner, when allowed) are kept, a new one
 *                              gets 0666 & ~umask. Whatever was at the path is untouched until
 *                              the rename, and a failure removes the temporary file;
 *   a symlink (also chains)    followed: its final target is replaced as above, the link stays;
 *   a device or FIFO           written in place, never renamed over (a FIFO nobody reads fails
 *                              at once instead of blocking);
 *   a directory or socket      refused.
 * Errors read "<who>: '<path>': <step> failed: <errno text>" (e.g. "writing failed: No space
 * left on device"). Stale temporary files of the same target left by dead processes (also the
 * "<path>.tmp.<pid>" names of earlier versions) are removed when it is next written. */
typedef enum { NB_OUTPUT_STDOUT, NB_OUTPUT_REPLACE, NB_OUTPUT_DIRECT } nb_output_kind;

typedef struct nb_output {
    FILE *f; /* write the contents here */
    nb_output_kind kind;
    const char *path; /* as given (the caller's string), for messages */
    const char *who;  /* the caller's string, for messages */
    char *target;     /* the file written: path with symlinks followed (owned) */
    char *tmp;        /* NB_OUTPUT_REPLACE: the temporary file until committed (owned) */
    char *dir;        /* NB_OUTPUT_REPLACE: the target's directory (owned) */
} nb_output;

/* Opens path for writing (see above); o->f is where the contents go. */
nb_status nb_output_open(nb_output *o, const char *path, const char *who);
/* Flushes, fsyncs and closes (filled = false: the caller's writing failed, errno set). On any
 * failure the output is abandoned (temporary file removed) and the error names the step. */
nb_status nb_output_finish(nb_output *o, bool filled);
/* Puts a finished output in place (the rename) and releases o. Several outputs can be
 * finished first and committed together, so a failure leaves none of them. */
nb_status nb_output_commit(nb_output *o);
/* Abandons an output (opened or finished): nothing at the path changes. */
void nb_output_abort(nb_output *o);

/* open + fill + finish + commit. fill returns false on a write error (errno set). */
nb_status nb_write_atomically(const char *path, const char *who, bool (*fill)(FILE *f, void *ctx),
                              void *ctx);

/* Can path be written (checked before any work)? "-" yes; an existing directory or socket no;
 * a missing or non-directory parent no; an absent or regular file in a writable directory,
 * a device or FIFO yes. Error: "<who>: '<path>': is a directory" and the like. */
nb_status nb_output_check(const char *path, const char *who);
/* Is path written as a stream ("-", a device, a FIFO: in place, as it comes) rather than
 * replaced as a whole? */
bool nb_output_is_stream(const char *path);
/* Do two output paths name the same file (same string, or same file through symlinks, "..",
 * hard links; for absent files the same real directory and name)? Character devices such as
 * /dev/null may be named twice; "-" twice may not. */
bool nb_output_same_file(const char *a, const char *b);
/* Removes the temporary files of target dir/base left by processes that no longer exist. */
void nb_output_sweep_stale(const char *dir, const char *base);

/* An advisory lock (flock) on ".<base>.nabla-lock" beside a target, held while a long run
 * writes it; a second writer is refused with a message naming the holder's pid. Nothing is
 * locked for "-", devices and FIFOs. The lock dies with its process. */
typedef struct nb_output_lock {
    int fd;
    char *path;
} nb_output_lock;
nb_status nb_output_lock_take(nb_output_lock *l, const char *path, const char *who);
void nb_output_lock_release(nb_output_lock *l);

#endif
