/* output.c - the one writer: opening, finishing and committing an output (see fileio.h).
 * Checks made before any work and the per-target lock are in output_check.c. */
#define _POSIX_C_SOURCE 200809L
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

/* ---- writing outputs ----
 *
 * What a target path is decides how it is written (see fileio.h): "-" is standard output; an
 * absent or regular file is replaced atomically through a temporary file made with mkstemp
 * (O_CREAT|O_EXCL, so nothing planted at a guessable name is ever written through) beside it;
 * a symlink is followed, through chains, and its final target replaced, the link kept; a
 * device or FIFO is written in place, never renamed over; a directory or socket is refused. */

char *nb_dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

bool nb_split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    size_t dn = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    *dir = malloc(dn + 1);
    *base = nb_dup_str(slash ? slash + 1 : path);
    if (!*dir || !*base) {
        free(*dir);
        free(*base);
        *dir = *base = NULL;
        return false;
    }
    memcpy(*dir, slash ? path : ".", dn);
    (*dir)[dn] = '\0';
    return true;
}

int nb_resolve_target(const char *path, char **out, struct stat *sb, bool *exists)
{
    char *cur = nb_dup_str(path);
    if (!cur)
        return ENOMEM;
    for (int hop = 0; hop <= NB_MAX_LINKS; hop++) {
        if (lstat(cur, sb) != 0) {
            int e = errno;
            if (e != ENOENT && e != ENOTDIR) { /* ENOTDIR: a parent is a file */
                free(cur);
                return e;
            }
            *exists = false;
            *out = cur;
            return 0;
        }
        if (!S_ISLNK(sb->st_mode)) {
            *exists = true;
            *out = cur;
            return 0;
        }
        size_t cap = sb->st_size > 0 && sb->st_size < 65536 ? (size_t)sb->st_size + 1 : 65536;
        char *link = malloc(cap);
        if (!link) {
            free(cur);
            return ENOMEM;
        }
        ssize_t n = readlink(cur, link, cap);
        if (n < 0 || (size_t)n >= cap) {
            int e = n < 0 ? errno : ENAMETOOLONG;
            free(link);
            free(cur);
            return e;
        }
        link[n] = '\0';
        char *next = link;
        if (link[0] != '/') { /* relative to the directory holding the link */
            const char *slash = strrchr(cur, '/');
            size_t dn = slash ? (size_t)(slash - cur) + 1 : 0;
            next = malloc(dn + (size_t)n + 1);
            if (!next) {
                free(link);
                free(cur);
                return ENOMEM;
            }
            memcpy(next, cur, dn);
            memcpy(next + dn, link, (size_t)n + 1);
            free(link);
        }
        free(cur);
        cur = next;
    }
    free(cur);
    return ELOOP;
}

/* True if s[0..n) is the decimal pid of a process that no longer exists (never our own). */

static bool pid_gone(const char *s, size_t n)
{
    if (n == 0 || n > 9)
        return false;
    long pid = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        pid = pid * 10 + (s[i] - '0');
    }
    if (pid <= 0 || pid == (long)getpid())
        return false;
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

void nb_output_sweep_stale(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t bl = strlen(base), tl = bl < NB_NAME_BASE_MAX ? bl : NB_NAME_BASE_MAX;
    static const char mark[] = ".nabla.tmp.";
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        bool stale = false;
        if (n[0] == '.' && !strncmp(n + 1, base, tl) &&
            !strncmp(n + 1 + tl, mark, sizeof mark - 1)) {
            /* ".<base>.nabla.tmp.<pid>.XXXXXX" */
            const char *p = n + 1 + tl + sizeof mark - 1, *dot = strchr(p, '.');
            stale = dot && strlen(dot + 1) == 6 && pid_gone(p, (size_t)(dot - p));
        } else if (bl > 0 && !strncmp(n, base, bl)) {
            /* made by earlier versions: "<base>.tmp.<pid>", "<base>.partial.<pid>",
             * "<base>.probe.<pid>" */
            static const char *const old[] = {".tmp.", ".partial.", ".probe."};
            for (size_t i = 0; i < sizeof old / sizeof old[0] && !stale; i++) {
                size_t ol = strlen(old[i]);
                if (!strncmp(n + bl, old[i], ol))
                    stale = pid_gone(n + bl + ol, strlen(n + bl + ol));
            }
        }
        struct stat sb;
        if (stale && fstatat(dirfd(d), n, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            (S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)))
            (void)unlinkat(dirfd(d), n, 0);
    }
    (void)closedir(d);
}

static mode_t new_file_mode(void)
{
    mode_t mask = umask(0);
    (void)umask(mask);
    return 0666 & ~mask;
}

/* fsync errors that only say the file cannot be synced (a device, a pipe), not lost data */
static bool fsync_not_supported(int e)
{
    return e == EINVAL || e == EROFS || e == ENOTSUP || e == EOPNOTSUPP || e == ENOTTY ||
           e == ESPIPE;
}

static nb_status open_direct(nb_output *o, const struct stat *sb)
{
    /* O_NONBLOCK: a FIFO nobody reads fails with ENXIO at once instead of blocking */
    int fd = open(o->target, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENXIO && S_ISFIFO(sb->st_mode))
            return nb_error(NB_ERR_IO,
                            "%s: '%s': cannot write to the named pipe: no process is "
                            "reading it",
                            o->who, o->path);
        return nb_error(NB_ERR_IO, "%s: '%s': cannot open for writing: %s", o->who, o->path,
                        strerror(e));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1 || !(o->f = fdopen(fd, "wb"))) {
        int e = errno;
        (void)close(fd);
        return nb_error(NB_ERR_IO, "%s: '%s': cannot open for writing: %s", o->who, o->path,
                        strerror(e));
    }
    o->kind = NB_OUTPUT_DIRECT;
    return NB_OK;
}

static nb_status open_replace(nb_output *o, const struct stat *sb, bool exists)
{
    char *dir, *base;
    if (!nb_split_path(o->target, &dir, &base))
        return nb_error(NB_ERR_NOMEM, "%s: '%s': out of memory", o->who, o->path);
    nb_status st = NB_OK;
    if (!*base) {
        st = nb_error(NB_ERR_IO, "%s: '%s': names a directory (ends in '/'), not a file", o->who,
                      o->path);
        goto out;
    }
    nb_output_sweep_stale(dir, base);
    size_t bl = strlen(base), cap = strlen(dir) + NB_NAME_BASE_MAX + 64;
    o->tmp = malloc(cap);
    if (!o->tmp) {
        st = nb_error(NB_ERR_NOMEM, "%s: '%s': out of memory", o->who, o->path);
        goto out;
    }
    snprintf(o->tmp, cap, "%s/.%.*s.nabla.tmp.%ld.XXXXXX", dir,
             (int)(bl < NB_NAME_BASE_MAX ? bl : NB_NAME_BASE_MAX), base, (long)getpid());
    int fd = mkstemp(o->tmp); /* O_CREAT|O_EXCL, mode 0600 */
    if (fd < 0) {
        int e = errno;
        st = nb_error(NB_ERR_IO, "%s: '%s': cannot create temporary file in '%s': %s", o->who,
                      o->path, dir, strerror(e));
        free(o->tmp);
        o->tmp = NULL;
        goto out;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* the replacement keeps an existing file's owner (when allowed) and permission bits */
    if (exists && (sb->st_uid != geteuid() || sb->st_gid != getegid()))
        if (fchown(fd, sb->st_uid, sb->st_gid) != 0) {
            /* not allowed (not root): the file becomes ours, as with any rewrite */
        }
    (void)fchmod(fd, exists ? (sb->st_mode & 07777) : new_file_mode());
    if (!(o->f = fdopen(fd, "wb"))) {
        int e = errno;
        (void)close(fd);
        (void)unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        st = nb_error(NB_ERR_IO, "%s: '%s': cannot open the temporary file: %s", o->who, o->path,
                      strerror(e));
        goto out;
    }
    o->kind = NB_OUTPUT_REPLACE;
    o->dir = dir; /* for the fsync after the rename, which must not allocate */
    dir = NULL;
out:
    free(dir);
    free(base);
    return st;
}

nb_status nb_output_open(nb_output *o, const char *path, const char *who)
{
    memset(o, 0, sizeof *o);
    o->who = who ? who : "write";
    o->path = path;
    if (!path || !*path)
        return nb_error(NB_ERR_ARG, "%s: the output file name is empty", o->who);
    if (!strcmp(path, "-")) {
        o->kind = NB_OUTPUT_STDOUT;
        o->f = stdout;
        return NB_OK;
    }
    struct stat sb;
    bool exists;
    int e = nb_resolve_target(path, &o->target, &sb, &exists);
    if (e)
        return nb_error(e == ENOMEM ? NB_ERR_NOMEM : NB_ERR_IO, "%s: '%s': %s", o->who, path,
                        strerror(e));
    nb_status st;
    if (exists && S_ISDIR(sb.st_mode))
        st = nb_error(NB_ERR_IO, "%s: '%s': is a directory", o->who, path);
    else if (exists && S_ISSOCK(sb.st_mode))
        st = nb_error(NB_ERR_IO, "%s: '%s': is a socket, which cannot be written as a file", o->who,
                      path);
    else if (exists && !S_ISREG(sb.st_mode))
        st = open_direct(o, &sb);
    else
        st = open_replace(o, &sb, exists);
    if (st != NB_OK) {
        free(o->target);
        o->target = NULL;
    }
    return st;
}

void nb_output_abort(nb_output *o)
{
    if (o->f && o->kind != NB_OUTPUT_STDOUT)
        (void)fclose(o->f);
    o->f = NULL;
    if (o->tmp)
        (void)unlink(o->tmp);
    free(o->tmp);
    free(o->target);
    free(o->dir);
    o->tmp = o->target = o->dir = NULL;
}

nb_status nb_output_finish(nb_output *o, bool filled)
{
    int e = errno;
    const char *failed = NULL; /* the step that failed, for the message */
    if (!filled)
        failed = "writing";
    else if (fflush(o->f) != 0 || ferror(o->f)) {
        failed = "writing";
        e = errno;
    } else if (o->kind != NB_OUTPUT_STDOUT && fsync(fileno(o->f)) != 0 &&
               !(o->kind == NB_OUTPUT_DIRECT && fsync_not_supported(errno))) {
        failed = "fsync";
        e = errno;
    }
    if (o->kind == NB_OUTPUT_STDOUT) {
        if (failed)
            clearerr(stdout);
        o->f = NULL; /* finished; standard output itself stays open */
    } else {
        FILE *f = o->f;
        o->f = NULL;
        if (fclose(f) != 0 && !failed) {
            failed = "closing";
            e = errno;
        }
    }
    if (!failed)
        return NB_OK;
    nb_status st = nb_error(NB_ERR_IO, "%s: '%s': %s failed: %s", o->who, o->path, failed,
                            e ? strerror(e) : "write error");
    nb_output_abort(o);
    return st;
}

/* Makes a rename durable; best effort, the data is already safe in the file. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        (void)close(fd);
    }
}

nb_status nb_output_commit(nb_output *o)
{
    nb_status st = NB_OK;
    if (o->f) /* not finished: a caller error, never a partial file in place */
        st = nb_error(NB_ERR_ARG, "%s: '%s': committed before it was finished", o->who, o->path);
    else if (o->kind == NB_OUTPUT_REPLACE && o->tmp) {
        if (rename(o->tmp, o->target) != 0) {
            int e = errno;
            st = nb_error(NB_ERR_IO,
                          "%s: '%s': renaming the temporary file onto the target failed: %s",
                          o->who, o->path, strerror(e));
        } else {
            free(o->tmp);
            o->tmp = NULL;
            sync_dir(o->dir);
        }
    }
    nb_output_abort(o); /* frees; removes the temporary file only if it is still there */
    return st;
}

nb_status nb_write_atomically(const char *path, const char *who, bool (*fill)(FILE *f, void *ctx),
                              void *ctx)
{
    nb_output o;
    nb_status st = nb_output_open(&o, path, who);
    if (st != NB_OK)
        return st;
    errno = 0;
    if ((st = nb_output_finish(&o, fill(o.f, ctx))) != NB_OK)
        return st;
    return nb_output_commit(&o);
}
