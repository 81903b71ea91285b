/* fileio.c - byte order and crash-safe writing (see fileio.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

bool nb_host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void nb_swap_elements(unsigned char *buf, size_t count, size_t size)
{
    if (size < 2)
        return;
    for (size_t i = 0; i < count; i++) {
        unsigned char *e = buf + i * size;
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = e[a];
            e[a] = e[b];
            e[b] = t;
        }
    }
}

bool nb_write_tensor_le(FILE *f, const nb_tensor *x)
{
    size_t esize = nb_dtype_size(x->dtype);
    size_t bytes = (size_t)x->numel * esize;
    if (bytes == 0)
        return true;
    if (x->dtype != NB_BOOL && (nb_host_little_endian() || esize == 1))
        return fwrite(x->data, 1, bytes, f) == bytes;
    unsigned char chunk[4096];
    const unsigned char *src = x->data;
    for (size_t off = 0; off < bytes;) {
        size_t n = bytes - off < sizeof chunk ? bytes - off : sizeof chunk;
        memcpy(chunk, src + off, n);
        if (x->dtype == NB_BOOL)
            for (size_t i = 0; i < n; i++)
                chunk[i] = chunk[i] != 0;
        else
            nb_swap_elements(chunk, n / esize, esize);
        if (fwrite(chunk, 1, n, f) != n)
            return false;
        off += n;
    }
    return true;
}

/* Makes the rename itself durable; best effort, the data is already safe in the file. The
 * directory name is built in `buf` (room for strlen(path) + 2 bytes: the temporary-name
 * buffer), so nothing is allocated after the rename and a save cannot skip this silently. */
static void sync_parent_dir(const char *path, char *buf)
{
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    memcpy(buf, slash ? path : ".", n);
    buf[n] = '\0';
    int fd = open(buf, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        (void)close(fd);
    }
}

nb_status nb_write_atomically(const char *path, const char *who, bool (*fill)(FILE *f, void *ctx),
                              void *ctx)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp)
        return nb_error(NB_ERR_NOMEM, "%s: '%s': out of memory for a temporary file name", who,
                        path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        nb_status s = nb_error(NB_ERR_IO, "%s: '%s': cannot create temporary file '%s': %s", who,
                               path, tmp, strerror(e));
        free(tmp);
        return s;
    }
    const char *failed = NULL; /* the step that failed, for the message */
    if (!fill(f, ctx))
        failed = "writing";
    else if (fflush(f) != 0)
        failed = "flushing";
    else if (fsync(fileno(f)) != 0)
        failed = "fsync";
    int e = errno;
    if (fclose(f) != 0 && !failed) {
        failed = "closing";
        e = errno;
    }
    if (!failed && rename(tmp, path) != 0) {
        failed = "renaming the temporary file onto the target";
        e = errno;
    }
    if (failed) {
        (void)unlink(tmp);
        free(tmp);
        return nb_error(NB_ERR_IO, "%s: '%s': %s failed: %s", who, path, failed, strerror(e));
    }
    sync_parent_dir(path, tmp);
    free(tmp);
    return NB_OK;
}

nb_status nb_read_exact(FILE *f, void *dst, size_t n, const char *what)
{
    if (n == 0)
        return NB_OK;
    size_t got = fread(dst, 1, n, f);
    if (got == n)
        return NB_OK;
    if (ferror(f))
        return nb_error(NB_ERR_IO, "read error in the %s: %s", what, strerror(errno));
    return nb_error(NB_ERR_FORMAT, "truncated: end of file inside the %s (%zu of %zu bytes)", what,
                    got, n);
}

nb_status nb_regular_file_size(FILE *f, size_t *size)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return nb_error(NB_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return nb_error(NB_ERR_IO, "not a regular file");
    if (sb.st_size < 0 || (uintmax_t)sb.st_size > (uintmax_t)SIZE_MAX)
        return nb_error(NB_ERR_IO, "file size %jd is not addressable", (intmax_t)sb.st_size);
    *size = (size_t)sb.st_size;
    return NB_OK;
}

void nb_error_prefix(nb_status st, const char *who, const char *path)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    if (path)
        nb_error(st, "%s: '%s': %s", who, path, msg);
    else
        nb_error(st, "%s: %s", who, msg);
}
