/* fileread.c - opening and reading input files with bounds (see fileread.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fileread.h"

const char *nb_file_kind(unsigned mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "not a file of a known kind";
}

FILE *nb_open_regular(const char *path, const char *who, size_t *size)
{
    if (!path) {
        nb_error(NB_ERR_ARG, "%s: path is NULL", who);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        nb_error(NB_ERR_IO, "%s: cannot open '%s': %s", who, path, strerror(e));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        (void)close(fd);
        nb_error(NB_ERR_IO, "%s: cannot stat '%s': %s", who, path, strerror(e));
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        (void)close(fd);
        nb_error(NB_ERR_IO, "%s: '%s' is %s, not a regular file", who, path,
                 nb_file_kind((unsigned)sb.st_mode));
        return NULL;
    }
    if (sb.st_size < 0 || (uintmax_t)sb.st_size >= (uintmax_t)SIZE_MAX) {
        (void)close(fd);
        nb_error(NB_ERR_IO, "%s: '%s': file size %jd is not addressable", who, path,
                 (intmax_t)sb.st_size);
        return NULL;
    }
    /* A regular file never blocks, but clear O_NONBLOCK anyway so stdio sees a plain fd. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        (void)close(fd);
        nb_error(NB_ERR_IO, "%s: '%s': cannot clear O_NONBLOCK: %s", who, path, strerror(e));
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        (void)close(fd);
        nb_error(e == ENOMEM ? NB_ERR_NOMEM : NB_ERR_IO, "%s: '%s': cannot open a stream: %s", who,
                 path, strerror(e));
        return NULL;
    }
    if (size)
        *size = (size_t)sb.st_size;
    return f;
}

uint64_t nb_physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0 || (uint64_t)pages > UINT64_MAX / (uint64_t)page)
        return UINT64_MAX;
    return (uint64_t)pages * (uint64_t)page;
}

const char *nb_bytes_str(char *buf, size_t cap, uint64_t bytes)
{
    static const char *const unit[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
    if (bytes < 1000) {
        snprintf(buf, cap, "%llu bytes", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1000.0;
    int u = 0;
    while (v >= 1000.0 && u < 5) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
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

nb_status nb_read_head(FILE *f, size_t size, void *head, size_t cap, size_t *n, const char *what)
{
    *n = size < cap ? size : cap;
    return nb_read_exact(f, head, *n, what);
}

nb_status nb_read_rest(FILE *f, size_t size, const void *head, size_t nhead, const char *what,
                       unsigned char **out)
{
    /* the file's bytes and what is parsed from them (a tensor of about as many) are held at
     * once: a file above half the memory cannot be loaded, so it is refused before it is read
     * (reading 20 GB of a sparse file took minutes before failing on its first line) */
    uint64_t mem = nb_physical_memory(), limit = mem / 2;
    if ((uint64_t)size > limit) {
        char a[32], b[32], c[32];
        return nb_error(NB_ERR_NOMEM,
                        "file is %s, more than half (%s) of this machine's %s of memory: it is "
                        "read whole and parsed into as much again",
                        nb_bytes_str(a, sizeof a, size), nb_bytes_str(c, sizeof c, limit),
                        nb_bytes_str(b, sizeof b, mem));
    }
    unsigned char *buf = malloc(size > 0 ? size : 1);
    if (!buf)
        return nb_error(NB_ERR_NOMEM, "out of memory for the %zu-byte %s", size, what);
    if (nhead > 0)
        memcpy(buf, head, nhead);
    nb_status st = nb_read_exact(f, buf + nhead, size - nhead, what);
    if (st != NB_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return NB_OK;
}

nb_status nb_read_file(const char *path, const char *who, bool whole,
                       nb_status (*read)(FILE *f, size_t size, void *ctx), void *ctx)
{
    if (!path)
        return nb_error(NB_ERR_ARG, "%s: load path is NULL", who);
    size_t size = 0;
    FILE *f = nb_open_regular(path, who, &size); /* refuses FIFOs, devices, directories */
    if (!f)
        return nb_last_status();
    nb_status st = read(f, size, ctx);
    if (st == NB_OK && whole && fgetc(f) != EOF)
        st = nb_error(NB_ERR_FORMAT, "file grew while it was being read");
    if (fclose(f) != 0 && st == NB_OK)
        st = nb_error(NB_ERR_IO, "cannot close: %s", strerror(errno));
    if (st != NB_OK)
        nb_error_prefix(st, who, path);
    return st;
}

nb_status nb_parse_buffer(const void *buf, size_t len, const char *who,
                          nb_status (*parse)(const unsigned char *buf, size_t len, void *ctx),
                          void *ctx)
{
    if (!buf && len > 0)
        return nb_error(NB_ERR_ARG, "%s: buffer is NULL but length is %zu", who, len);
    static const unsigned char nothing[1] = {0};
    nb_status st = parse(buf ? buf : nothing, len, ctx);
    if (st != NB_OK)
        nb_error_prefix(st, who, NULL);
    return st;
}

const char *nb_printable(char *out, size_t cap, const char *s, size_t n)
{
    size_t keep = n <= cap - 1 ? n : cap - 4; /* room for "..." when cut */
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (keep < n) {
        memcpy(out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
    return out;
}
