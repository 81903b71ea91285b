/* fileread.c - opening input files safely (see fileread.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
