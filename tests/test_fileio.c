/* test_fileio.c - the one writer every output goes through (src/tensor/fileio.c): what each kind
 * of target gets (regular file replaced atomically, symlink followed and kept, device and FIFO
 * written in place, "-" = standard output, directory refused), how failures read (disk full,
 * file size limit), the up-front checks, same-file detection, the stale temporary-file sweep
 * and the one-writer lock.
 *
 * Devices are private copies made with mknod in the test's directory (the tests run as root), so
 * a broken writer cannot damage the machine's /dev/null or /dev/full; without CAP_MKNOD those
 * tests are skipped. Every wait is bounded with alarm(). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* mknod's makedev */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla/npy.h"
#include "nabla/status.h"
#include "nabla/tensor.h"
#include "tensor/fileio.h"

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_fileio_XXXXXX"
#include "test_files.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static nb_tensor *make_tensor(int64_t n)
{
    int64_t s[1] = {n};
    nb_tensor *x = nb_tensor_empty(NB_F32, 1, s);
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++)
        ((float *)x->data)[i] = (float)i * 0.5f;
    return x;
}

/* x reloaded from path equals x */
static void assert_saved(const char *path, const nb_tensor *x)
{
    nb_tensor *y = nb_npy_load(path);
    if (!y)
        fail_msg("cannot load %s back: %s", path, nb_last_error());
    assert_int_equal(y->numel, x->numel);
    assert_memory_equal(y->data, x->data, sizeof(float) * (size_t)x->numel);
    nb_tensor_free(y);
}

static void assert_error_has(const char *what)
{
    if (!strstr(nb_last_error(), what))
        fail_msg("error '%s' does not mention '%s'", nb_last_error(), what);
}

/* no temporary file of any naming (this writer's or an earlier one's) in tmp_dir */
static void assert_no_temporaries(void)
{
    DIR *d = opendir(tmp_dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") || strstr(e->d_name, "nabla-lock"))
            fail_msg("temporary file '%s' left behind", e->d_name);
    closedir(d);
}

/* A private character device with the numbers of /dev/<name> (1,3 null; 1,7 full). */
static bool make_device(char *path, size_t cap, const char *name, unsigned minor)
{
    tmp_path(path, cap, name);
    if (mknod(path, S_IFCHR | 0666, makedev(1, minor)) != 0) {
        print_message("mknod %s: %s (skipping)\n", path, strerror(errno));
        return false;
    }
    return true;
}

/* the pid of a process that has exited and been reaped */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    int status;
    assert_int_equal(waitpid(p, &status, 0), p);
    return p;
}

/* ---- kinds of target -------------------------------------------------------------------- */

static void test_device_written_in_place(void **state)
{
    (void)state;
    char dev[512];
    if (!make_device(dev, sizeof dev, "null", 3))
        skip();
    nb_tensor *x = make_tensor(10);
    nb_clear_error();
    assert_int_equal(nb_npy_save(dev, x), NB_OK);
    struct stat sb;
    assert_int_equal(lstat(dev, &sb), 0);
    assert_true(S_ISCHR(sb.st_mode)); /* not replaced by a regular file */
    assert_int_equal(major(sb.st_rdev), 1);
    assert_int_equal(minor(sb.st_rdev), 3);
    assert_no_temporaries();
    nb_tensor_free(x);
}

static void test_full_device_fails_with_errno_text(void **state)
{
    (void)state;
    char dev[512];
    if (!make_device(dev, sizeof dev, "full", 7))
        skip();
    nb_tensor *x = make_tensor(100);
    nb_clear_error();
    assert_int_equal(nb_npy_save(dev, x), NB_ERR_IO);
    assert_error_has(dev);
    assert_error_has("writing failed: No space left on device");
    struct stat sb;
    assert_int_equal(lstat(dev, &sb), 0);
    assert_true(S_ISCHR(sb.st_mode));
    assert_no_temporaries();
    nb_tensor_free(x);
}

static void test_symlink_followed_and_kept(void **state)
{
    (void)state;
    char real[512], link1[512], link2[512];
    tmp_path(real, sizeof real, "real.npy");
    tmp_path(link1, sizeof link1, "link1.npy");
    tmp_path(link2, sizeof link2, "link2.npy");
    write_all(real, "old", 3);
    assert_int_equal(symlink("real.npy", link1), 0); /* relative, as users make them */
    assert_int_equal(symlink(link1, link2), 0);      /* a chain */
    nb_tensor *x = make_tensor(7);
    assert_int_equal(nb_npy_save(link2, x), NB_OK);
    struct stat sb;
    assert_int_equal(lstat(link1, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(lstat(link2, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_saved(real, x);
    /* a dangling link: its target is created, the link stays */
    char dangling[512], absent[512];
    tmp_path(dangling, sizeof dangling, "dangling.npy");
    tmp_path(absent, sizeof absent, "created.npy");
    assert_int_equal(symlink("created.npy", dangling), 0);
    assert_int_equal(nb_npy_save(dangling, x), NB_OK);
    assert_int_equal(lstat(dangling, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_saved(absent, x);
    assert_no_temporaries();
    nb_tensor_free(x);
}

static void test_fifo_with_reader_gets_the_data(void **state)
{
    (void)state;
    char fifo[512], ref[512];
    tmp_path(fifo, sizeof fifo, "pipe");
    tmp_path(ref, sizeof ref, "ref.npy");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK); /* a reader, before the writer comes */
    assert_true(rd >= 0);
    nb_tensor *x = make_tensor(50); /* fits in the pipe buffer */
    assert_int_equal(nb_npy_save(fifo, x), NB_OK);
    assert_int_equal(nb_npy_save(ref, x), NB_OK);
    size_t rlen;
    unsigned char *want = read_all(ref, &rlen);
    unsigned char got[4096];
    ssize_t n = read(rd, got, sizeof got);
    assert_int_equal((size_t)n, rlen);
    assert_memory_equal(got, want, rlen);
    close(rd);
    alarm(0);
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    free(want);
    nb_tensor_free(x);
}

static void test_fifo_without_reader_fails_fast(void **state)
{
    (void)state;
    char fifo[512];
    tmp_path(fifo, sizeof fifo, "lonely");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    nb_tensor *x = make_tensor(5);
    alarm(10); /* the old writer blocked here forever */
    nb_clear_error();
    assert_int_equal(nb_npy_save(fifo, x), NB_ERR_IO);
    alarm(0);
    assert_error_has(fifo);
    assert_error_has("no process is reading it");
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    nb_tensor_free(x);
}

static void test_directory_refused(void **state)
{
    (void)state;
    char dir[512];
    tmp_path(dir, sizeof dir, "adir");
    assert_int_equal(mkdir(dir, 0700), 0);
    nb_tensor *x = make_tensor(5);
    nb_clear_error();
    assert_int_equal(nb_npy_save(dir, x), NB_ERR_IO);
    assert_error_has("is a directory");
    assert_error_has(dir);
    nb_clear_error();
    assert_int_equal(nb_output_check(dir, "nabla test --out"), NB_ERR_IO);
    assert_error_has("nabla test --out: '");
    assert_error_has("is a directory");
    assert_int_equal(count_entries(dir), 0);
    assert_int_equal(rmdir(dir), 0);
    nb_tensor_free(x);
}

static void test_stdout_dash(void **state)
{
    (void)state;
    char path[512], ref[512];
    tmp_path(path, sizeof path, "stdout.bin");
    tmp_path(ref, sizeof ref, "ref.npy");
    nb_tensor *x = make_tensor(9);
    assert_int_equal(nb_npy_save(ref, x), NB_OK);
    fflush(stdout);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
            _exit(3);
        if (nb_npy_save("-", x) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            _exit(4);
        }
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(p, &status, 0), p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    size_t a, b;
    unsigned char *got = read_all(path, &a), *want = read_all(ref, &b);
    assert_int_equal(a, b);
    assert_memory_equal(got, want, a);
    free(got);
    free(want);
    nb_tensor_free(x);
}

/* ---- safety of the atomic replace ------------------------------------------------------- */

static void test_planted_symlink_cannot_redirect(void **state)
{
    (void)state;
    char path[512], victim[512], planted[600];
    tmp_path(path, sizeof path, "out.npy");
    tmp_path(victim, sizeof victim, "victim");
    write_all(victim, "precious", 8);
    /* the name the old writer used: PATH.tmp.PID */
    snprintf(planted, sizeof planted, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(symlink(victim, planted), 0);
    nb_tensor *x = make_tensor(100);
    assert_int_equal(nb_npy_save(path, x), NB_OK);
    size_t n;
    unsigned char *v = read_all(victim, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(v, "precious", 8);
    free(v);
    assert_saved(path, x);
    struct stat sb;
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(unlink(planted), 0);
    nb_tensor_free(x);
}

static void test_permissions_kept(void **state)
{
    (void)state;
    char path[512], fresh[512];
    tmp_path(path, sizeof path, "mode.npy");
    tmp_path(fresh, sizeof fresh, "fresh.npy");
    write_all(path, "x", 1);
    assert_int_equal(chmod(path, 0640), 0);
    nb_tensor *x = make_tensor(3);
    assert_int_equal(nb_npy_save(path, x), NB_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640);
    mode_t old = umask(027);
    assert_int_equal(nb_npy_save(fresh, x), NB_OK);
    umask(old);
    assert_int_equal(stat(fresh, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640); /* 0666 & ~027 */
    nb_tensor_free(x);
}

/* In a child: file size limited to 1000 bytes with SIGXFSZ ignored, so write() fails with EFBIG
 * in the middle of the file; the old file must be intact and no temporary file left. */
static void test_file_size_limit_fails_cleanly(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "big.npy");
    write_all(path, "old contents", 12);
    nb_tensor *x = make_tensor(10000);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1000, 1000};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        nb_status st = nb_npy_save(path, x);
        if (st != NB_ERR_IO)
            _exit(4);
        if (!strstr(nb_last_error(), "writing failed: File too large") ||
            !strstr(nb_last_error(), path))
            _exit(5);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(p, &status, 0), p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    size_t n;
    unsigned char *v = read_all(path, &n);
    assert_int_equal(n, 12);
    assert_memory_equal(v, "old contents", 12);
    free(v);
    assert_no_temporaries();
    nb_tensor_free(x);
}

static void test_stale_temporaries_swept(void **state)
{
    (void)state;
    char path[512], a[600], b[600], c[600], live[600], other[600];
    tmp_path(path, sizeof path, "ck.st");
    long dead = (long)dead_pid();
    snprintf(a, sizeof a, "%s/.ck.st.nabla.tmp.%ld.Ab3dE9", tmp_dir, dead);
    snprintf(b, sizeof b, "%s/ck.st.tmp.%ld", tmp_dir, dead); /* earlier versions' name */
    snprintf(c, sizeof c, "%s/ck.st.partial.%ld", tmp_dir, dead);
    snprintf(live, sizeof live, "%s/.ck.st.nabla.tmp.%ld.Zz9zZ9", tmp_dir, (long)getppid());
    snprintf(other, sizeof other, "%s/.other.nabla.tmp.%ld.Ab3dE9", tmp_dir, dead);
    write_all(a, "x", 1);
    write_all(b, "x", 1);
    write_all(c, "x", 1);
    write_all(live, "x", 1);
    write_all(other, "x", 1);
    nb_tensor *x = make_tensor(4);
    assert_int_equal(nb_npy_save(path, x), NB_OK);
    assert_false(file_exists(a));
    assert_false(file_exists(b));
    assert_false(file_exists(c));
    assert_true(file_exists(live));  /* its writer may still be at work */
    assert_true(file_exists(other)); /* another target's */
    assert_saved(path, x);
    nb_tensor_free(x);
}

/* ---- two outputs committed together ----------------------------------------------------- */

static bool fill_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) >= 0;
}

static void test_commit_together_or_not_at_all(void **state)
{
    (void)state;
    char p1[512], p2[512], dev[512];
    tmp_path(p1, sizeof p1, "one");
    tmp_path(p2, sizeof p2, "two");
    write_all(p1, "keep", 4);
    nb_output o1, o2;
    assert_int_equal(nb_output_open(&o1, p1, "t"), NB_OK);
    assert_int_equal(nb_output_finish(&o1, fill_text(o1.f, "new one")), NB_OK);
    /* the second fails: the first is abandoned, its old contents stay */
    if (make_device(dev, sizeof dev, "full", 7)) {
        assert_int_equal(nb_output_open(&o2, dev, "t"), NB_OK);
        assert_int_equal(nb_output_finish(&o2, fill_text(o2.f, "x")), NB_ERR_IO);
        nb_output_abort(&o1);
        size_t n;
        unsigned char *v = read_all(p1, &n);
        assert_int_equal(n, 4);
        assert_memory_equal(v, "keep", 4);
        free(v);
        assert_int_equal(nb_output_open(&o1, p1, "t"), NB_OK);
        assert_int_equal(nb_output_finish(&o1, fill_text(o1.f, "new one")), NB_OK);
    }
    assert_int_equal(nb_output_open(&o2, p2, "t"), NB_OK);
    assert_int_equal(nb_output_finish(&o2, fill_text(o2.f, "new two")), NB_OK);
    assert_int_equal(nb_output_commit(&o1), NB_OK);
    assert_int_equal(nb_output_commit(&o2), NB_OK);
    size_t n;
    unsigned char *v = read_all(p1, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(v, "new one", 7);
    free(v);
    v = read_all(p2, &n);
    assert_memory_equal(v, "new two", 7);
    free(v);
    assert_no_temporaries();
}

/* ---- up-front checks -------------------------------------------------------------------- */

static void test_output_check(void **state)
{
    (void)state;
    char path[512], file[512], in_file[600];
    assert_int_equal(nb_output_check("-", "w"), NB_OK);
    tmp_path(path, sizeof path, "absent.npy");
    assert_int_equal(nb_output_check(path, "w"), NB_OK);
    assert_false(file_exists(path)); /* checking creates nothing */
    tmp_path(file, sizeof file, "plain");
    write_all(file, "x", 1);
    assert_int_equal(nb_output_check(file, "w"), NB_OK);
    tmp_path(path, sizeof path, "no/such/dir/x.npy");
    nb_clear_error();
    assert_int_equal(nb_output_check(path, "nabla x --out"), NB_ERR_IO);
    assert_error_has("nabla x --out: '");
    assert_error_has("No such file or directory");
    assert_error_has("no/such/dir");
    snprintf(in_file, sizeof in_file, "%s/x.npy", file);
    nb_clear_error();
    assert_int_equal(nb_output_check(in_file, "w"), NB_ERR_IO);
    assert_error_has("is not a directory");
    nb_clear_error();
    assert_int_equal(nb_output_check("", "w"), NB_ERR_ARG);
    assert_error_has("empty");
    assert_int_equal(count_entries(tmp_dir), 1);
}

static void test_same_file(void **state)
{
    (void)state;
    char a[512], b[512], sym[512], hard[512], dotdot[600], sub[512], absent1[600], absent2[600];
    tmp_path(a, sizeof a, "a.npy");
    tmp_path(b, sizeof b, "b.npy");
    tmp_path(sym, sizeof sym, "link.npy");
    tmp_path(hard, sizeof hard, "hard.npy");
    tmp_path(sub, sizeof sub, "sub");
    write_all(a, "x", 1);
    write_all(b, "x", 1);
    assert_int_equal(symlink("a.npy", sym), 0);
    assert_int_equal(link(a, hard), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(dotdot, sizeof dotdot, "%s/sub/../a.npy", tmp_dir);
    assert_true(nb_output_same_file(a, a));
    assert_true(nb_output_same_file(a, sym));
    assert_true(nb_output_same_file(hard, a));
    assert_true(nb_output_same_file(dotdot, a));
    assert_false(nb_output_same_file(a, b));
    /* absent files: the same directory and name */
    snprintf(absent1, sizeof absent1, "%s/new.npy", tmp_dir);
    snprintf(absent2, sizeof absent2, "%s/sub/../new.npy", tmp_dir);
    assert_true(nb_output_same_file(absent1, absent2));
    assert_false(nb_output_same_file(absent1, a));
    assert_true(nb_output_same_file("-", "-"));
    assert_false(nb_output_same_file("-", a));
    assert_false(nb_output_same_file("/dev/null", "/dev/null")); /* any number of writers */
    assert_int_equal(rmdir(sub), 0);
}

/* ---- the one-writer lock ---------------------------------------------------------------- */

/* In a child: tries the lock on path; exit 0 = taken, 1 = refused naming `holder`, 2 = other */
static int try_lock_in_child(const char *path, long holder, bool die_holding)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        nb_output_lock l;
        nb_status st = nb_output_lock_take(&l, path, "nabla train --save");
        if (st == NB_OK) {
            if (die_holding)
                _exit(0); /* no release: the lock dies with the process */
            nb_output_lock_release(&l);
            _exit(0);
        }
        char want[64];
        snprintf(want, sizeof want, "(pid %ld)", holder);
        _exit(strstr(nb_last_error(), want) && strstr(nb_last_error(), path) ? 1 : 2);
    }
    int status;
    assert_int_equal(waitpid(p, &status, 0), p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_lock(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "run.st");
    nb_output_lock l;
    assert_int_equal(nb_output_lock_take(&l, path, "nabla train --save"), NB_OK);
    assert_int_equal(try_lock_in_child(path, (long)getpid(), false), 1);
    nb_output_lock_release(&l);
    assert_int_equal(try_lock_in_child(path, 0, false), 0);
    /* a holder that died without releasing leaves its lock file, which does not block */
    assert_int_equal(try_lock_in_child(path, 0, true), 0);
    assert_int_equal(nb_output_lock_take(&l, path, "nabla train --save"), NB_OK);
    nb_output_lock_release(&l);
    assert_no_temporaries();
    /* nothing to lock for "-" */
    assert_int_equal(nb_output_lock_take(&l, "-", "w"), NB_OK);
    nb_output_lock_release(&l);
}

static void test_json_number(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(nb_json_number(buf, sizeof buf, "%.6f", 0.25), "0.250000");
    assert_string_equal(nb_json_number(buf, sizeof buf, "%.6f", NAN), "null");
    assert_string_equal(nb_json_number(buf, sizeof buf, "%.6g", INFINITY), "null");
    assert_string_equal(nb_json_number(buf, sizeof buf, "%.6g", -INFINITY), "null");
    assert_string_equal(nb_json_number(buf, sizeof buf, "%.4f", -0.0), "-0.0000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_device_written_in_place, clean_each),
        cmocka_unit_test_teardown(test_full_device_fails_with_errno_text, clean_each),
        cmocka_unit_test_teardown(test_symlink_followed_and_kept, clean_each),
        cmocka_unit_test_teardown(test_fifo_with_reader_gets_the_data, clean_each),
        cmocka_unit_test_teardown(test_fifo_without_reader_fails_fast, clean_each),
        cmocka_unit_test_teardown(test_directory_refused, clean_each),
        cmocka_unit_test_teardown(test_stdout_dash, clean_each),
        cmocka_unit_test_teardown(test_planted_symlink_cannot_redirect, clean_each),
        cmocka_unit_test_teardown(test_permissions_kept, clean_each),
        cmocka_unit_test_teardown(test_file_size_limit_fails_cleanly, clean_each),
        cmocka_unit_test_teardown(test_stale_temporaries_swept, clean_each),
        cmocka_unit_test_teardown(test_commit_together_or_not_at_all, clean_each),
        cmocka_unit_test_teardown(test_output_check, clean_each),
        cmocka_unit_test_teardown(test_same_file, clean_each),
        cmocka_unit_test_teardown(test_lock, clean_each),
        cmocka_unit_test(test_json_number),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
