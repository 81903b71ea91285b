/* test_files.h - temporary directories and whole-file helpers shared by the tests that write
 * files (npy, safetensors, checkpoint). Define NB_TEST_TMP_TEMPLATE (a mkdtemp template) before
 * including it. The helpers fail the running cmocka test on error. */
#ifndef NABLA_TEST_FILES_H
#define NABLA_TEST_FILES_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NB_TEST_TMP_TEMPLATE
#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_XXXXXX"
#endif

static char tmp_dir[64];

static inline void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

/* Reads a whole file into a malloc'd buffer (test helper; fails the test on error). */
static inline unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    assert_int_equal(ferror(f), 0);
    assert_int_equal(fclose(f), 0);
    *len = n;
    return buf;
}

static inline void write_all(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static inline bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Number of entries (other than . and ..) in a directory. */
static inline int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Removes every plain file in tmp_dir (subdirectories are removed by the tests that make them). */
static inline void clean_tmp_dir(void)
{
    DIR *d = opendir(tmp_dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
        if (unlink(p) != 0)
            (void)rmdir(p);
    }
    closedir(d);
}

static inline int setup_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s", NB_TEST_TMP_TEMPLATE);
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static inline int teardown_dir(void **state)
{
    (void)state;
    clean_tmp_dir();
    return rmdir(tmp_dir);
}

static inline int clean_each(void **state)
{
    (void)state;
    clean_tmp_dir();
    return 0;
}

#endif
