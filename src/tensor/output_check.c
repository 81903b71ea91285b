/* output_check.c - what is known about an output before it is written: whether it can be
 * written, whether it is a stream, whether two paths name one file, and the lock that keeps a
 * second writer away (see fileio.h). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* flock */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "output_internal.h"

/* ---- checks made before any work ---- */

nb_status nb_output_check(const char *path, const char *who)
{
    if (!who)
        who = "write";
    if (!path || !*path)
        return nb_error(NB_ERR_ARG, "%s: the output file name is empty", who);
    if (!strcmp(path, "-"))
        return NB_OK;
    struct stat sb;
    bool exists;
    char *target, *dir = NULL, *base = NULL;
    int e = nb_resolve_target(path, &target, &sb, &exists);
    if (e)
        return nb_error(NB_ERR_IO, "%s: '%s': %s", who, path, strerror(e));
    nb_status st = NB_OK;
    if (exists && S_ISDIR(sb.st_mode)) {
        st = nb_error(NB_ERR_IO, "%s: '%s': is a directory", who, path);
        goto out;
    }
    if (exists && S_ISSOCK(sb.st_mode)) {
        st = nb_error(NB_ERR_IO, "%s: '%s': is a socket, which cannot be written as a file", who,
                      path);
        goto out;
    }
    if (exists && !S_ISREG(sb.st_mode)) { /* a device or FIFO: written in place */
        if (access(target, W_OK) != 0)
            st =
                nb_error(NB_ERR_IO, "%s: '%s': cannot write to it: %s", who, path, strerror(errno));
        goto out;
    }
    if (!nb_split_path(target, &dir, &base)) {
        st = nb_error(NB_ERR_NOMEM, "%s: '%s': out of memory", who, path);
        goto out;
    }
    if (!*base) {
        st =
            nb_error(NB_ERR_IO, "%s: '%s': names a directory (ends in '/'), not a file", who, path);
        goto out;
    }
    struct stat ds;
    if (stat(dir, &ds) != 0) {
        e = errno;
        st = nb_error(NB_ERR_IO, "%s: '%s': directory '%s': %s", who, path, dir, strerror(e));
    } else if (!S_ISDIR(ds.st_mode)) {
        st = nb_error(NB_ERR_IO, "%s: '%s': '%s' is not a directory", who, path, dir);
    } else if (access(dir, W_OK | X_OK) != 0) {
        st = nb_error(NB_ERR_IO, "%s: '%s': cannot create files in directory '%s': %s", who, path,
                      dir, strerror(errno));
    }
out:
    free(target);
    free(dir);
    free(base);
    return st;
}

bool nb_output_is_stream(const char *path)
{
    if (!path || !strcmp(path, "-"))
        return path != NULL;
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode);
}

/* The identity of an output path: (st_dev, st_ino) of what it names, or, when that does not
 * exist yet, the real path of its directory and its base name. */
typedef struct out_id {
    bool exists, is_chr;
    dev_t dev;
    ino_t ino;
    char *where; /* when !exists: realpath(dir) + "/" + base, or NULL */
} out_id;

static void out_id_get(const char *path, out_id *id)
{
    memset(id, 0, sizeof *id);
    struct stat sb;
    bool ok = !strcmp(path, "-") ? fstat(STDOUT_FILENO, &sb) == 0 : stat(path, &sb) == 0;
    if (ok) {
        id->exists = true;
        id->is_chr = S_ISCHR(sb.st_mode);
        id->dev = sb.st_dev;
        id->ino = sb.st_ino;
        return;
    }
    char *target, *dir, *base;
    bool exists;
    if (nb_resolve_target(path, &target, &sb, &exists) != 0)
        return;
    if (nb_split_path(target, &dir, &base)) {
        char *real = realpath(dir, NULL);
        if (real) {
            size_t n = strlen(real) + strlen(base) + 2;
            if ((id->where = malloc(n)))
                snprintf(id->where, n, "%s/%s", real, base);
            free(real);
        }
        free(dir);
        free(base);
    }
    free(target);
}

bool nb_output_same_file(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    out_id x, y;
    out_id_get(a, &x);
    out_id_get(b, &y);
    bool same;
    if (!strcmp(a, "-") && !strcmp(b, "-"))
        same = true;
    else if (x.exists && y.exists) /* character devices (/dev/null) take any number of writers */
        same = x.dev == y.dev && x.ino == y.ino && !x.is_chr;
    else if (!x.exists && !y.exists)
        same = !strcmp(a, b) || (x.where && y.where && !strcmp(x.where, y.where));
    else
        same = false;
    free(x.where);
    free(y.where);
    return same;
}

/* ---- one writer per target ---- */

/* The lock file beside path's target, ".<base>.nabla-lock", malloc'ed in *out; *out stays NULL
 * when nothing is locked (devices, FIFOs). */
static nb_status lock_file_name(const char *path, const char *who, char **out)
{
    *out = NULL;
    struct stat sb;
    bool exists;
    char *target, *dir, *base;
    int e = nb_resolve_target(path, &target, &sb, &exists);
    if (e)
        return nb_error(NB_ERR_IO, "%s: '%s': %s", who, path, strerror(e));
    if (exists && !S_ISREG(sb.st_mode)) { /* devices, FIFOs: no lock beside them */
        free(target);
        return NB_OK;
    }
    bool split = nb_split_path(target, &dir, &base);
    free(target);
    if (!split)
        return nb_error(NB_ERR_NOMEM, "%s: '%s': out of memory", who, path);
    size_t bl = strlen(base), cap = strlen(dir) + NB_NAME_BASE_MAX + 32;
    *out = malloc(cap);
    if (*out)
        snprintf(*out, cap, "%s/.%.*s.nabla-lock", dir,
                 (int)(bl < NB_NAME_BASE_MAX ? bl : NB_NAME_BASE_MAX), base);
    free(dir);
    free(base);
    return *out ? NB_OK : nb_error(NB_ERR_NOMEM, "%s: '%s': out of memory", who, path);
}

/* The message for a lock that flock refused with errno e (fd is closed here). */
static nb_status lock_refused(int fd, int e, const char *who, const char *path, const char *lock)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    long pid = strtol(buf, NULL, 10);
    (void)close(fd);
    if (e == EWOULDBLOCK && pid > 0)
        return nb_error(NB_ERR_IO,
                        "%s: '%s': another nabla process (pid %ld) is writing it; wait for "
                        "it to finish or choose another path (lock file '%s')",
                        who, path, pid, lock);
    if (e == EWOULDBLOCK)
        return nb_error(NB_ERR_IO,
                        "%s: '%s': another nabla process is writing it; wait for it to "
                        "finish or choose another path (lock file '%s')",
                        who, path, lock);
    return nb_error(NB_ERR_IO, "%s: '%s': cannot lock '%s': %s", who, path, lock, strerror(e));
}

nb_status nb_output_lock_take(nb_output_lock *l, const char *path, const char *who)
{
    l->fd = -1;
    l->path = NULL;
    if (!who)
        who = "write";
    if (!path || !strcmp(path, "-"))
        return NB_OK;
    nb_status st = lock_file_name(path, who, &l->path);
    if (st != NB_OK || !l->path)
        return st;
    /* The lock file is removed by its holder when done; a process that opened it just before
     * that would lock a file no longer linked, so the lock counts only while the file we hold
     * is still the one at the name. */
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            st = nb_error(NB_ERR_IO, "%s: '%s': cannot create the lock file '%s': %s", who, path,
                          l->path, strerror(errno));
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            st = lock_refused(fd, errno, who, path, l->path);
            break;
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(l->path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
                /* the pid is only for the other process's message */
            }
            l->fd = fd;
            return NB_OK;
        }
        (void)close(fd); /* removed under us: try the new one */
    }
    if (st == NB_OK)
        st = nb_error(NB_ERR_IO, "%s: '%s': cannot take the lock file '%s' (it keeps changing)",
                      who, path, l->path);
    free(l->path);
    l->path = NULL;
    return st;
}

void nb_output_lock_release(nb_output_lock *l)
{
    if (l->fd >= 0) {
        (void)unlink(l->path); /* while still held: see nb_output_lock_take */
        (void)close(l->fd);
    }
    free(l->path);
    l->fd = -1;
    l->path = NULL;
}
