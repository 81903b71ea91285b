/* test_alloc_fail.c - allocation-failure injection: the n-th allocation fails, for every n.
 *
 * How: this program is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=aligned_alloc,--wrap=free (see tests/CMakeLists.txt), so every allocation that nabla's
 * own code makes (the static library is linked into this program) goes through __wrap_malloc &c.
 * below. While a run is being counted, the wrappers number the allocations 1, 2, ... and make
 * number n return NULL; every block handed out is remembered with the call stack that made it,
 * and forgotten when it is freed. nabla never calls strdup, posix_memalign or the like (checked
 * by grep when this test was written), so those five cover it.
 *
 * cJSON (a shared library, so not reached by --wrap) is given this file's allocator with
 * cJSON_InitHooks: safetensors.c only ever frees cJSON memory with cJSON_Delete / cJSON_free and
 * never installs hooks itself, so its JSON allocations are counted and failed like nabla's own.
 * Allocations inside OpenBLAS, zlib, libgomp and libc (fopen, newlocale, ...) are not reached.
 *
 * Each scenario is a fixed call sequence that cleans up after itself with the library's free
 * functions. The driver runs it once without failures (to count its allocations and record a
 * digest of its results), then for n = 1, 2, ... with the n-th allocation failing, until a run
 * makes fewer than n allocations. For every n:
 *   - the call in which the allocation failed must report it: a non-OK status (or NULL) with
 *     nb_last_status() != NB_OK and a non-empty nb_last_error(), and the status must be
 *     NB_ERR_NOMEM (for an allocation inside cJSON, which cannot tell "out of memory" from "bad
 *     JSON", any error is accepted and the status is printed);
 *   - no call may fail unless an allocation inside it failed, and none may succeed when one did;
 *   - the sequence stops at that call, and after its cleanup every block allocated during the
 *     run has been freed (the leak check; LeakSanitizer repeats it in the sanitizer build);
 *   - a failed save leaves no file behind (neither the target nor a temporary);
 *   - the final run, with no failure, gives the same digest as the first.
 * Every problem is printed with the scenario, n, the call and the failing allocation's stack
 * (addresses resolve with addr2line in a -g build); each scenario prints how many allocation
 * points it exercised. Inputs are tiny, so OpenMP regions run on one thread. The test's own
 * buffers come from __real_malloc &c., so a counted run numbers only the library's allocations.
 *
 * Coverage: every allocation site in src/ outside src/cli is reached except the two in
 * gradcheck.c (not a training-step or reader path) and the chunk merge in nb_graph_reset (only
 * when a step outgrew one arena chunk; reset returns void and keeps the old chunks if it fails).
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <zlib.h>

#include "nabla.h"
#include "loss/xent_ref.h" /* nb_xent_reference: test-only */

/* ---- the allocator wrappers ------------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
void __real_free(void *ptr);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
void *__wrap_aligned_alloc(size_t alignment, size_t size);
void __wrap_free(void *ptr);

#define FA_DEPTH 12       /* frames kept per block and for the failed allocation */
#define FA_MAX_LIVE 16384 /* blocks tracked at once (a run here keeps a few hundred) */

typedef struct fa_block {
    void *p;
    size_t size;
    int depth;
    void *stack[FA_DEPTH];
} fa_block;

static struct {
    atomic_flag lock;
    bool counting;       /* number allocations and track blocks */
    long fail_at;        /* the allocation that fails (1-based), 0 = none */
    long count;          /* allocations numbered so far in this run */
    long in_cjson_count; /* ... of which cJSON's */
    bool injected;       /* allocation fail_at has been failed */
    bool in_cjson;       /* ... and it was one of cJSON's */
    int fail_depth;      /* its stack */
    void *fail_stack[FA_DEPTH];
    int n_live;
    fa_block live[FA_MAX_LIVE];
} fa = {.lock = ATOMIC_FLAG_INIT};

static bool fa_cjson_call; /* set while cJSON's hook is allocating */

static void fa_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&fa.lock, memory_order_acquire))
        ;
}
static void fa_unlock(void)
{
    atomic_flag_clear_explicit(&fa.lock, memory_order_release);
}

/* Numbers one allocation; true if it is the one to fail. */
static bool fa_next_fails(void)
{
    bool fail = false;
    fa_lock();
    if (fa.counting) {
        fa.count++;
        fa.in_cjson_count += fa_cjson_call;
        if (fa.count == fa.fail_at) {
            fail = true;
            fa.injected = true;
            fa.in_cjson = fa_cjson_call;
            fa.fail_depth = backtrace(fa.fail_stack, FA_DEPTH);
        }
    }
    fa_unlock();
    return fail;
}

static void fa_track(void *p, size_t size)
{
    if (!p)
        return;
    fa_lock();
    if (fa.counting) {
        if (fa.n_live == FA_MAX_LIVE) {
            fprintf(stderr, "test_alloc_fail: more than %d live blocks\n", FA_MAX_LIVE);
            abort();
        }
        fa_block *b = &fa.live[fa.n_live++];
        b->p = p;
        b->size = size;
        b->depth = backtrace(b->stack, FA_DEPTH);
    }
    fa_unlock();
}

static void fa_untrack(void *p)
{
    if (!p)
        return;
    fa_lock();
    for (int i = fa.n_live - 1; i >= 0; i--)
        if (fa.live[i].p == p) {
            fa.live[i] = fa.live[--fa.n_live];
            break;
        }
    fa_unlock();
}

void *__wrap_malloc(size_t size)
{
    if (fa_next_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_malloc(size);
    fa_track(p, size);
    return p;
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
    if (fa_next_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_calloc(nmemb, size);
    fa_track(p, nmemb * size);
    return p;
}

void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
    if (fa_next_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_aligned_alloc(alignment, size);
    fa_track(p, size);
    return p;
}

void *__wrap_realloc(void *ptr, size_t size)
{
    if (fa_next_fails()) { /* as realloc: ptr stays valid and owned by the caller */
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_realloc(ptr, size);
    if (p) {
        fa_untrack(ptr);
        fa_track(p, size);
    }
    return p;
}

void __wrap_free(void *ptr)
{
    fa_untrack(ptr);
    __real_free(ptr);
}

static void *cjson_malloc(size_t size)
{
    fa_cjson_call = true;
    void *p = __wrap_malloc(size);
    fa_cjson_call = false;
    return p;
}

static void cjson_free(void *ptr)
{
    __wrap_free(ptr);
}

/* Starts counting a run in which allocation fail_at fails (0: none fails). */
static void fa_begin(long fail_at)
{
    fa_lock();
    fa.counting = true;
    fa.fail_at = fail_at;
    fa.count = 0;
    fa.in_cjson_count = 0;
    fa.injected = false;
    fa.in_cjson = false;
    fa.fail_depth = 0;
    fa.n_live = 0;
    fa_unlock();
}

static void fa_end(void)
{
    fa_lock();
    fa.counting = false;
    fa_unlock();
}

/* ---- runs, checks and problems ---------------------------------------------------------- */

typedef struct run {
    const char *scenario;
    long n;                /* the allocation that fails, 0 = none */
    bool accounted;        /* the injected failure has been attributed to a call */
    const char *failed_at; /* the call that reported the failure */
    uint64_t digest;       /* FNV-1a of the results of a complete run */
    bool reference;        /* the first run, without failures: record what is expected */
} run;

static int problems;     /* in the current scenario */
static int cjson_notes;  /* cJSON failures reported with a status other than NB_ERR_NOMEM */
static bool verbose_run; /* the stack of the failing allocation has been printed for this run */

static void print_stack(void *const *stack, int depth)
{
    fflush(stderr);
    backtrace_symbols_fd(stack, depth, STDERR_FILENO);
}

static void problem(run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "PROBLEM [%s, allocation %ld]: ", r->scenario, r->n);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (fa.injected && !verbose_run) {
        fprintf(stderr, "  the failed allocation was made at:\n");
        print_stack(fa.fail_stack, fa.fail_depth);
        verbose_run = true;
    }
    problems++;
}

/* After each library call: `ok` is whether it reported success. Returns ok. */
static bool check_call(run *r, const char *call, bool ok)
{
    bool fresh = fa.injected && !r->accounted;
    if (fresh)
        r->accounted = true;
    if (ok) {
        if (fresh)
            problem(r, "%s returned success although an allocation inside it failed", call);
        return true;
    }
    r->failed_at = call;
    nb_status st = nb_last_status();
    const char *msg = nb_last_error();
    if (!fresh)
        problem(r, "%s failed although no allocation inside it failed (%s: %s)", call,
                nb_status_name(st), msg);
    else if (st == NB_OK || !msg[0])
        problem(r, "%s failed without an error: status '%s', message '%s'", call,
                nb_status_name(st), msg);
    else if (st != NB_ERR_NOMEM && !fa.in_cjson)
        problem(r, "%s reports '%s' (%s) for an allocation failure, not out of memory", call,
                nb_status_name(st), msg);
    else if (st != NB_ERR_NOMEM && cjson_notes++ == 0)
        fprintf(stderr,
                "note [%s, allocation %ld]: cJSON out of memory in %s reported as '%s': %s\n",
                r->scenario, r->n, call, nb_status_name(st), msg);
    return false;
}

/* Each call starts with a clean error state, so a message comes from that call. */
#define CALL(r, name, expr) (nb_clear_error(), check_call((r), (name), (expr)))

static void verify(run *r, bool cond, const char *what)
{
    if (!cond)
        problem(r, "wrong result: %s", what);
}

static void digest(run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        r->digest = (r->digest ^ b[i]) * 0x100000001b3ull;
}

static void digest_tensor(run *r, const nb_tensor *t)
{
    digest(r, &t->dtype, sizeof t->dtype);
    digest(r, &t->ndim, sizeof t->ndim);
    digest(r, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    digest(r, t->data, (size_t)t->numel * nb_dtype_size(t->dtype));
}

typedef void (*scenario_fn)(run *r);

/* After a run and its cleanup: every block allocated during it must have been freed. */
static void check_leaks(run *r)
{
    if (!fa.n_live)
        return;
    problem(r, "%d block(s) leaked (failing call: %s)", fa.n_live,
            r->failed_at ? r->failed_at : "none");
    for (int i = 0; i < fa.n_live && i < 4; i++) {
        fprintf(stderr, "  leaked %zu bytes allocated at:\n", fa.live[i].size);
        print_stack(fa.live[i].stack, fa.live[i].depth);
    }
}

/* Runs fn for n = 0 (reference), 1, 2, ... and checks every run; see the top of the file. */
static void drive(const char *name, scenario_fn fn)
{
    problems = cjson_notes = 0;
    run r = {.scenario = name, .digest = 0xcbf29ce484222325ull, .reference = true};
    fa_begin(0);
    fn(&r);
    fa_end();
    long total = fa.count, total_cjson = fa.in_cjson_count;
    uint64_t want = r.digest;
    if (r.failed_at)
        fail_msg("%s: the run without failures failed at %s: %s", name, r.failed_at,
                 nb_last_error());
    check_leaks(&r);
    if (total == 0)
        fail_msg("%s: no allocation was counted: is the test linked with --wrap?", name);

    long n;
    for (n = 1; n <= total + 1; n++) {
        r = (run){.scenario = name, .n = n, .digest = 0xcbf29ce484222325ull};
        verbose_run = false;
        fa_begin(n);
        fn(&r);
        fa_end();
        check_leaks(&r);
        if (!fa.injected) { /* fewer than n allocations: the sequence ran to its end */
            if (n != total + 1)
                problem(&r, "only %ld allocations, the run without failures made %ld", n - 1,
                        total);
            if (!r.failed_at && r.digest != want)
                problem(&r, "the run without failures gave other results the second time");
            break;
        }
        if (!r.accounted)
            problem(&r, "the failed allocation was not made inside any checked call");
    }
    if (n > total + 1)
        problem(&r, "allocation %ld still failed: more allocations than the first run's %ld", n - 1,
                total);
    print_message("%-26s %3ld allocation points (%ld nabla, %ld cJSON)", name, total,
                  total - total_cjson, total_cjson);
    if (cjson_notes)
        print_message(" (%d cJSON failures reported as another error than out of memory; the "
                      "first is printed above)",
                      cjson_notes);
    print_message("\n");
    if (problems)
        fail_msg("%s: %d problem(s), printed above", name, problems);
}

/* ---- fixtures (made once, before any run; none of this is counted) ----------------------- */

static struct {
    char dir[64];
    char out[96]; /* saves go here; must be empty after every run */
    char npy_x[128], npy_y[128], idx_plain[128], idx_gz[128], csv[128], st[128], mnist[128];
    nb_tensor *X;  /* f32 [6, 4] */
    nb_tensor *y;  /* i32 [6] */
    nb_dataset ds; /* from X, y */
    unsigned char *npy_buf, *idx_buf, *idx_gz_buf, *st_buf;
    size_t npy_len, idx_len, idx_gz_len, st_len;
} fx;

static const char csv_text[] = "a,b,c,label\n"
                               "0.5,1.5,-2,1\n"
                               "1e-3, 2.25 ,3,0\r\n"
                               "-1,-1,-1,2\n"
                               "4,5,6,1\n";

/* The test's own allocations bypass the counting wrappers (__real_*), so a counted run numbers
 * only the library's; free them with __real_free. */
static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = __real_realloc(buf, cap);
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

static void write_all(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *gzip_bytes(const void *in, size_t n, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    unsigned char *out = __real_malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* An IDX image: u8 with the given dims, element i = (i * 7 + 3) mod 256. */
static unsigned char *idx_image(int ndim, const uint32_t *dims, size_t *len)
{
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= dims[i];
    size_t n = 4 + 4 * (size_t)ndim + numel;
    unsigned char *b = __real_malloc(n);
    assert_non_null(b);
    b[0] = b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    for (size_t i = 0; i < numel; i++)
        b[4 + 4 * (size_t)ndim + i] = (unsigned char)((i * 7 + 3) % 256);
    *len = n;
    return b;
}

static void fixture_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fx.dir, name);
}

static int setup_fixtures(void **state)
{
    (void)state;
    /* counted runs must see every cJSON allocation too */
    cJSON_Hooks hooks = {cjson_malloc, cjson_free};
    cJSON_InitHooks(&hooks);
    void *prime[2]; /* backtrace loads libgcc on first use: not inside a counted run */
    (void)backtrace(prime, 2);

    snprintf(fx.dir, sizeof fx.dir, "/tmp/nabla_allocfail_XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.out, sizeof fx.out, "%s/out", fx.dir);
    if (mkdir(fx.out, 0700) != 0)
        return -1;

    float xv[24];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)((i * 37) % 11) / 4.0f - 1.25f;
    int32_t yv[6] = {0, 2, 1, 1, 0, 2};
    fx.X = nb_tensor_from_buffer(NB_F32, 2, (int64_t[]){6, 4}, xv);
    fx.y = nb_tensor_from_buffer(NB_I32, 1, (int64_t[]){6}, yv);
    if (!fx.X || !fx.y || nb_dataset_from_tensors(fx.X, fx.y, 0, &fx.ds) != NB_OK)
        return -1;

    fixture_path(fx.npy_x, sizeof fx.npy_x, "X.npy");
    fixture_path(fx.npy_y, sizeof fx.npy_y, "y.npy");
    if (nb_npy_save(fx.npy_x, fx.X) != NB_OK || nb_npy_save(fx.npy_y, fx.y) != NB_OK)
        return -1;
    fx.npy_buf = read_all(fx.npy_x, &fx.npy_len);

    /* 4816 bytes: inflating it outgrows the first 4096-byte buffer (the realloc path) */
    fx.idx_buf = idx_image(3, (uint32_t[]){3, 40, 40}, &fx.idx_len);
    fx.idx_gz_buf = gzip_bytes(fx.idx_buf, fx.idx_len, &fx.idx_gz_len);
    fixture_path(fx.idx_plain, sizeof fx.idx_plain, "a.idx");
    fixture_path(fx.idx_gz, sizeof fx.idx_gz, "a.idx.gz");
    write_all(fx.idx_plain, fx.idx_buf, fx.idx_len);
    write_all(fx.idx_gz, fx.idx_gz_buf, fx.idx_gz_len);

    fixture_path(fx.csv, sizeof fx.csv, "d.csv");
    write_all(fx.csv, csv_text, sizeof csv_text - 1);

    fixture_path(fx.st, sizeof fx.st, "t.safetensors");
    nb_named_tensor ts[2] = {{"features", fx.X}, {"labels", fx.y}};
    const char *meta[] = {"format", "pt", "note", "alloc test", NULL};
    if (nb_safetensors_save(fx.st, ts, 2, meta) != NB_OK)
        return -1;
    fx.st_buf = read_all(fx.st, &fx.st_len);

    /* MNIST layout: plain images, gzip labels (both lookups are taken) */
    fixture_path(fx.mnist, sizeof fx.mnist, "mnist");
    if (mkdir(fx.mnist, 0700) != 0)
        return -1;
    char p[192];
    size_t len, gz_len;
    unsigned char *img = idx_image(3, (uint32_t[]){3, 28, 28}, &len);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", fx.mnist);
    write_all(p, img, len);
    __real_free(img);
    unsigned char lab[4 + 4 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9};
    unsigned char *lab_gz = gzip_bytes(lab, sizeof lab, &gz_len);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", fx.mnist);
    write_all(p, lab_gz, gz_len);
    __real_free(lab_gz);
    return 0;
}

static int teardown_fixtures(void **state)
{
    (void)state;
    char p[192];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", fx.mnist);
    unlink(p);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", fx.mnist);
    unlink(p);
    rmdir(fx.mnist);
    const char *files[] = {fx.npy_x, fx.npy_y, fx.idx_plain, fx.idx_gz, fx.csv, fx.st};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(fx.out);
    rmdir(fx.dir);
    nb_dataset_free(&fx.ds);
    nb_tensor_free(fx.X);
    nb_tensor_free(fx.y);
    __real_free(fx.npy_buf);
    __real_free(fx.idx_buf);
    __real_free(fx.idx_gz_buf);
    __real_free(fx.st_buf);
    return 0;
}

static bool same_tensor(const nb_tensor *a, const nb_tensor *b)
{
    return a && b && a->dtype == b->dtype && nb_shape_equal(a, b) &&
           memcmp(a->data, b->data, (size_t)a->numel * nb_dtype_size(a->dtype)) == 0;
}

static void out_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", fx.out, name);
}

/* After a run: the output directory holds nothing (a failed save left no file, temporary or
 * final, and the scenario removed what a successful one wrote). */
static void check_out_dir_empty(run *r)
{
    DIR *d = opendir(fx.out);
    if (!d) {
        problem(r, "cannot open %s", fx.out);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            problem(r, "'%s' was left in the output directory (failing call: %s)", e->d_name,
                    r->failed_at ? r->failed_at : "none");
            char p[400];
            snprintf(p, sizeof p, "%s/%s", fx.out, e->d_name);
            unlink(p);
        }
    closedir(d);
}

/* ---- (a) one full training step, a second one, a checkpoint save and load ---------------- */

static struct {
    float loss[2];
    double norm[2];
    long allocs[2]; /* allocations made by each training step (reference run) */
} train_ref;

static void scenario_train_step(run *r)
{
    static const int64_t sizes[3] = {4, 8, 3};
    nb_graph *g = NULL;
    nb_mlp *m = NULL, *m2 = NULL;
    nb_optim *o = NULL;
    nb_tensor *x = NULL, *y = NULL, *logits = NULL, *loss = NULL;
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    char path[160];
    out_path(path, sizeof path, "model.safetensors");
    nb_model_info info = {.input_scale = 0.5, .input_shift = -1.0, .n_classes = 3, .epoch = 7};
    snprintf(info.dataset, sizeof info.dataset, "alloc-test");
    nb_model_info info2;
    memset(&info2, 0, sizeof info2);
    nb_xent_opts xo = nb_xent_defaults();
    xo.label_smoothing = 0.1;

    if (!CALL(r, "nb_graph_new", (g = nb_graph_new()) != NULL) ||
        !CALL(r, "nb_mlp_new",
              (m = nb_mlp_new(sizes, 3, NB_ACT_RELU, NB_INIT_DEFAULT, 0.25, NB_F32, 42)) != NULL))
        goto out;
    int np = nb_mlp_param_count(m);
    for (int i = 0; i < np; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAM);
    cfg.lr = 0.05;
    if (!CALL(r, "nb_optim_new", (o = nb_optim_new(&cfg, params, np)) != NULL) ||
        !CALL(r, "nb_tensor_from_buffer x",
              (x = nb_tensor_from_buffer(NB_F32, 2, fx.X->shape, fx.X->data)) != NULL) ||
        !CALL(r, "nb_tensor_from_buffer y",
              (y = nb_tensor_from_buffer(NB_I32, 1, fx.y->shape, fx.y->data)) != NULL))
        goto out;
    for (int step = 0; step < 2; step++) {
        double norm = 0.0;
        long before = fa.count;
        if (step > 0 && !CALL(r, "nb_graph_reset", (nb_graph_reset(g), true)))
            goto out;
        if (!CALL(r, "nb_mlp_forward", (logits = nb_mlp_forward(g, m, x)) != NULL) ||
            !CALL(r, "nb_cross_entropy", (loss = nb_cross_entropy(g, logits, y, &xo)) != NULL) ||
            !CALL(r, "nb_backward", nb_backward(g, loss, NULL) == NB_OK) ||
            !CALL(r, "nb_clip_grad_norm", nb_clip_grad_norm(params, np, 1.0, &norm) == NB_OK) ||
            !CALL(r, "nb_optim_step", nb_optim_step(o) == NB_OK))
            goto out;
        float l = ((const float *)loss->data)[0];
        if (r->reference) {
            train_ref.loss[step] = l;
            train_ref.norm[step] = norm;
            train_ref.allocs[step] = fa.count - before;
            verify(r, isfinite(l) && l > 0.0f && norm > 0.0, "finite positive loss and norm");
        }
        verify(r, l == train_ref.loss[step] && norm == train_ref.norm[step],
               "the same loss and gradient norm as the run without failures");
        digest(r, &l, sizeof l);
        nb_optim_zero_grad(o);
    }
    if (!CALL(r, "nb_model_save", nb_model_save(path, m, &info, o) == NB_OK)) {
        verify(r, access(path, F_OK) != 0, "a failed save leaves no checkpoint");
        goto out;
    }
    if (!CALL(r, "nb_model_load", (m2 = nb_model_load(path, &info2, o)) != NULL))
        goto out;
    verify(r,
           m2->n_layers == 2 && info2.n_classes == 3 && info2.epoch == 7 &&
               info2.input_scale == 0.5 && !strcmp(info2.dataset, "alloc-test") &&
               nb_optim_step_count(o) == 2,
           "the loaded checkpoint's info and optimiser step");
    for (int i = 0; i < np; i++) {
        verify(r, same_tensor(nb_mlp_param(m2, i, NULL, 0), params[i]),
               "loaded parameters equal the saved ones");
        digest_tensor(r, params[i]);
    }
out:
    nb_mlp_free(m2);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_optim_free(o);
    nb_mlp_free(m);
    nb_graph_free(g);
    unlink(path);
    check_out_dir_empty(r);
}

static void test_train_step(void **state)
{
    (void)state;
    drive("training step + checkpoint", scenario_train_step);
    /* not a check, a measurement: CONVENTIONS.md says a step allocates nothing after the first */
    print_message("  (training step 1 made %ld allocations, step 2 made %ld)\n",
                  train_ref.allocs[0], train_ref.allocs[1]);
}

/* ---- (b) readers and writers ------------------------------------------------------------- */

static void scenario_npy_parse(run *r)
{
    nb_tensor *t = NULL;
    if (CALL(r, "nb_npy_parse", (t = nb_npy_parse(fx.npy_buf, fx.npy_len)) != NULL)) {
        verify(r, same_tensor(t, fx.X), "parsed .npy equals the saved tensor");
        digest_tensor(r, t);
    }
    nb_tensor_free(t);
}

static void scenario_npy_load(run *r)
{
    nb_tensor *t = NULL;
    if (CALL(r, "nb_npy_load", (t = nb_npy_load(fx.npy_x)) != NULL)) {
        verify(r, same_tensor(t, fx.X), "loaded .npy equals the saved tensor");
        digest_tensor(r, t);
    }
    nb_tensor_free(t);
}

static void scenario_npy_save(run *r)
{
    char path[160];
    out_path(path, sizeof path, "s.npy");
    if (CALL(r, "nb_npy_save", nb_npy_save(path, fx.X) == NB_OK)) {
        size_t len;
        unsigned char *b = read_all(path, &len);
        verify(r, len == fx.npy_len && !memcmp(b, fx.npy_buf, len), "the saved bytes");
        digest(r, b, len);
        __real_free(b);
    } else {
        verify(r, access(path, F_OK) != 0, "a failed save leaves no file");
    }
    unlink(path);
    check_out_dir_empty(r);
}

static void check_idx(run *r, const nb_tensor *t)
{
    bool ok = t->dtype == NB_U8 && t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == 40 &&
              t->shape[2] == 40 && !memcmp(t->data, fx.idx_buf + 16, 4800);
    verify(r, ok, "the IDX tensor is u8 [3, 40, 40] with the file's bytes");
    digest_tensor(r, t);
}

static void scenario_idx_parse_plain(run *r)
{
    nb_tensor *t = NULL;
    if (CALL(r, "nb_idx_parse", (t = nb_idx_parse(fx.idx_buf, fx.idx_len)) != NULL))
        check_idx(r, t);
    nb_tensor_free(t);
}

static void scenario_idx_parse_gzip(run *r)
{
    nb_tensor *t = NULL;
    if (CALL(r, "nb_idx_parse (gzip)", (t = nb_idx_parse(fx.idx_gz_buf, fx.idx_gz_len)) != NULL))
        check_idx(r, t);
    nb_tensor_free(t);
}

static void scenario_idx_load(run *r)
{
    nb_tensor *t = NULL, *u = NULL;
    if (CALL(r, "nb_idx_load", (t = nb_idx_load(fx.idx_plain)) != NULL) &&
        CALL(r, "nb_idx_load (gzip)", (u = nb_idx_load(fx.idx_gz)) != NULL)) {
        check_idx(r, t);
        check_idx(r, u);
    }
    nb_tensor_free(u);
    nb_tensor_free(t);
}

static void check_csv(run *r, const nb_dataset *ds)
{
    static const float xw[12] = {0.5f,  1.5f,  -2.0f, 1e-3f, 2.25f, 3.0f,
                                 -1.0f, -1.0f, -1.0f, 4.0f,  5.0f,  6.0f};
    static const int32_t yw[4] = {1, 0, 2, 1};
    bool ok = ds->X && ds->y && ds->X->numel == 12 && ds->y->numel == 4 &&
              !memcmp(ds->X->data, xw, sizeof xw) && !memcmp(ds->y->data, yw, sizeof yw) &&
              ds->n_classes == 3;
    verify(r, ok, "the CSV data set");
    if (ok) {
        digest_tensor(r, ds->X);
        digest_tensor(r, ds->y);
    }
}

static void scenario_csv_parse(run *r)
{
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (CALL(r, "nb_dataset_parse_csv",
             nb_dataset_parse_csv(csv_text, sizeof csv_text - 1, -1, true, &ds) == NB_OK))
        check_csv(r, &ds);
    else
        verify(r, !ds.X && !ds.y, "a failed parse leaves the data set zeroed");
    nb_dataset_free(&ds);
}

static void scenario_csv_load(run *r)
{
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (CALL(r, "nb_dataset_load_csv", nb_dataset_load_csv(fx.csv, 3, true, &ds) == NB_OK))
        check_csv(r, &ds);
    else
        verify(r, !ds.X && !ds.y, "a failed load leaves the data set zeroed");
    nb_dataset_free(&ds);
}

static void check_st(run *r, const nb_safetensors *st)
{
    bool ok =
        nb_safetensors_count(st) == 2 && same_tensor(nb_safetensors_get(st, "features"), fx.X) &&
        same_tensor(nb_safetensors_get(st, "labels"), fx.y) && nb_safetensors_meta(st, "note") &&
        !strcmp(nb_safetensors_meta(st, "note"), "alloc test");
    verify(r, ok, "the safetensors tensors and metadata");
    if (ok) {
        digest_tensor(r, nb_safetensors_get(st, "features"));
        digest_tensor(r, nb_safetensors_get(st, "labels"));
    }
}

static void scenario_st_parse(run *r)
{
    nb_safetensors *st = NULL;
    if (CALL(r, "nb_safetensors_parse", (st = nb_safetensors_parse(fx.st_buf, fx.st_len)) != NULL))
        check_st(r, st);
    nb_safetensors_free(st);
}

static void scenario_st_load(run *r)
{
    nb_safetensors *st = NULL;
    if (CALL(r, "nb_safetensors_load", (st = nb_safetensors_load(fx.st)) != NULL))
        check_st(r, st);
    nb_safetensors_free(st);
}

static void scenario_st_save(run *r)
{
    char path[160];
    out_path(path, sizeof path, "s.safetensors");
    nb_named_tensor ts[2] = {{"features", fx.X}, {"labels", fx.y}};
    const char *meta[] = {"format", "pt", "note", "alloc test", NULL};
    if (CALL(r, "nb_safetensors_save", nb_safetensors_save(path, ts, 2, meta) == NB_OK)) {
        size_t len;
        unsigned char *b = read_all(path, &len);
        verify(r, len == fx.st_len && !memcmp(b, fx.st_buf, len), "the saved bytes");
        digest(r, b, len);
        __real_free(b);
    } else {
        verify(r, access(path, F_OK) != 0, "a failed save leaves no file");
    }
    unlink(path);
    check_out_dir_empty(r);
}

static void check_ds(run *r, const nb_dataset *ds)
{
    bool ok = same_tensor(ds->X, fx.X) && same_tensor(ds->y, fx.y) && ds->n_classes == 3;
    verify(r, ok, "the data set equals the fixture");
    if (ok) {
        digest_tensor(r, ds->X);
        digest_tensor(r, ds->y);
    }
}

static void scenario_dataset_load_npy(run *r)
{
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (CALL(r, "nb_dataset_load_npy", nb_dataset_load_npy(fx.npy_x, fx.npy_y, &ds) == NB_OK))
        check_ds(r, &ds);
    else
        verify(r, !ds.X && !ds.y, "a failed load leaves the data set zeroed");
    nb_dataset_free(&ds);
}

static void scenario_dataset_from_tensors(run *r)
{
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (CALL(r, "nb_dataset_from_tensors", nb_dataset_from_tensors(fx.X, fx.y, 3, &ds) == NB_OK))
        check_ds(r, &ds);
    else
        verify(r, !ds.X && !ds.y, "a failed build leaves the data set zeroed");
    nb_dataset_free(&ds);
}

static void scenario_mnist(run *r)
{
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (CALL(r, "nb_dataset_load_mnist", nb_dataset_load_mnist(fx.mnist, "train", &ds) == NB_OK)) {
        bool ok = ds.X && ds.X->shape[0] == 3 && ds.X->shape[1] == 784 && ds.y->numel == 3 &&
                  ((const int32_t *)ds.y->data)[2] == 9;
        verify(r, ok, "the MNIST data set is [3, 784] with labels 7 0 9");
        if (ok) {
            digest_tensor(r, ds.X);
            digest_tensor(r, ds.y);
        }
    } else {
        verify(r, !ds.X && !ds.y, "a failed load leaves the data set zeroed");
    }
    nb_dataset_free(&ds);
}

static void scenario_split(run *r)
{
    nb_dataset tr, va;
    memset(&tr, 0, sizeof tr);
    memset(&va, 0, sizeof va);
    if (CALL(r, "nb_dataset_split", nb_dataset_split(&fx.ds, 0.34, 5, &tr, &va) == NB_OK)) {
        bool ok = tr.X->shape[0] == 4 && va.X->shape[0] == 2 && tr.y->numel == 4;
        verify(r, ok, "a 4 / 2 split");
        if (ok) {
            digest_tensor(r, tr.X);
            digest_tensor(r, va.y);
        }
    } else {
        verify(r, !tr.X && !tr.y && !va.X && !va.y, "a failed split leaves both parts zeroed");
    }
    nb_dataset_free(&tr);
    nb_dataset_free(&va);
}

static void scenario_batcher(run *r)
{
    nb_batcher b;
    memset(&b, 0, sizeof b);
    nb_tensor *xb = NULL, *yb = NULL;
    if (CALL(r, "nb_tensor_empty xb",
             (xb = nb_tensor_empty(NB_F32, 2, (int64_t[]){4, 4})) != NULL) &&
        CALL(r, "nb_tensor_empty yb", (yb = nb_tensor_empty(NB_I32, 1, (int64_t[]){4})) != NULL) &&
        CALL(r, "nb_batcher_init", nb_batcher_init(&b, &fx.ds, 4, true, 9) == NB_OK)) {
        int64_t rows = 0, sum = 0;
        for (int epoch = 0; epoch < 2; epoch++) {
            while (nb_batcher_next(&b, xb, yb)) {
                rows += yb->numel;
                for (int64_t i = 0; i < yb->numel; i++)
                    sum += ((const int32_t *)yb->data)[i];
                digest_tensor(r, xb);
            }
        }
        verify(r, rows == 12 && sum == 12, "two epochs visit every row once each");
    }
    nb_batcher_free(&b);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
}

static void scenario_spirals(run *r)
{
    nb_tensor *X = NULL, *y = NULL;
    if (CALL(r, "nb_spirals", nb_spirals(5, 3, 0.1, 11, &X, &y) == NB_OK)) {
        verify(r, X && y && X->numel == 30 && y->numel == 15, "spirals X [15, 2], y [15]");
        digest_tensor(r, X);
    } else {
        verify(r, !X && !y, "a failed nb_spirals leaves both outputs NULL");
    }
    nb_tensor_free(X);
    nb_tensor_free(y);
}

static void test_npy(void **state)
{
    (void)state;
    drive("nb_npy_parse", scenario_npy_parse);
    drive("nb_npy_load", scenario_npy_load);
    drive("nb_npy_save", scenario_npy_save);
}

static void test_idx(void **state)
{
    (void)state;
    drive("nb_idx_parse (plain)", scenario_idx_parse_plain);
    drive("nb_idx_parse (gzip)", scenario_idx_parse_gzip);
    drive("nb_idx_load (plain, gzip)", scenario_idx_load);
}

static void test_csv(void **state)
{
    (void)state;
    drive("nb_dataset_parse_csv", scenario_csv_parse);
    drive("nb_dataset_load_csv", scenario_csv_load);
}

static void test_safetensors(void **state)
{
    (void)state;
    drive("nb_safetensors_parse", scenario_st_parse);
    drive("nb_safetensors_load", scenario_st_load);
    drive("nb_safetensors_save", scenario_st_save);
}

static void test_datasets(void **state)
{
    (void)state;
    drive("nb_dataset_load_npy", scenario_dataset_load_npy);
    drive("nb_dataset_from_tensors", scenario_dataset_from_tensors);
    drive("nb_dataset_load_mnist", scenario_mnist);
    drive("nb_dataset_split", scenario_split);
    drive("nb_batcher_init/next", scenario_batcher);
    drive("nb_spirals", scenario_spirals);
}

/* ---- (c) the fused loss's raw kernels ------------------------------------------------------ */

#define XN 5
#define XV 7

static struct {
    float z32[XN * XV];
    double z64[XN * XV];
    float probs[XN * XV];
    int32_t tgt[XN];
} xk;

static void xent_inputs(void)
{
    for (int i = 0; i < XN * XV; i++) {
        xk.z64[i] = sin(1.7 * i) * 3.0;
        xk.z32[i] = (float)xk.z64[i];
        xk.probs[i] = 1.0f / XV;
    }
    int32_t t[XN] = {3, -100, 0, 6, 2}; /* row 1 is padding */
    memcpy(xk.tgt, t, sizeof t);
}

/* Views over static buffers: nothing here allocates but the kernels. */
static void scenario_xent(run *r)
{
    nb_tensor z32, z64, tg, pr, loss32, loss64, lse, dz32, dz64, rows;
    float l32, d32[XN * XV], d32b[XN * XV];
    double l64, d64[XN * XV], lsev[XN], lrows[XN];
    nb_xent_opts o = nb_xent_defaults();
    o.label_smoothing = 0.1;
    nb_xent_stats stats;
    int64_t s2[2] = {XN, XV}, s1[1] = {XN};
    assert_int_equal(nb_tensor_view(&z32, NB_F32, 2, s2, xk.z32), NB_OK);
    assert_int_equal(nb_tensor_view(&z64, NB_F64, 2, s2, xk.z64), NB_OK);
    assert_int_equal(nb_tensor_view(&pr, NB_F32, 2, s2, xk.probs), NB_OK);
    assert_int_equal(nb_tensor_view(&tg, NB_I32, 1, s1, xk.tgt), NB_OK);
    assert_int_equal(nb_tensor_view(&loss32, NB_F32, 0, NULL, &l32), NB_OK);
    assert_int_equal(nb_tensor_view(&loss64, NB_F64, 0, NULL, &l64), NB_OK);
    assert_int_equal(nb_tensor_view(&lse, NB_F64, 1, s1, lsev), NB_OK);
    assert_int_equal(nb_tensor_view(&dz32, NB_F32, 2, s2, d32), NB_OK);
    assert_int_equal(nb_tensor_view(&dz64, NB_F64, 2, s2, d64), NB_OK);
    assert_int_equal(nb_tensor_view(&rows, NB_F64, 1, s1, lrows), NB_OK);

    if (!CALL(r, "nb_xent_forward", nb_xent_forward(&z32, &tg, &o, &loss32, &lse, &stats) == NB_OK))
        return;
    digest(r, &l32, sizeof l32);
    digest(r, lsev, sizeof lsev);
    if (!CALL(r, "nb_xent_backward", nb_xent_backward(&dz32, &z32, &tg, &o, &lse, NULL) == NB_OK))
        return;
    memcpy(d32b, d32, sizeof d32);
    digest(r, d32, sizeof d32);
    float lf = l32;
    if (!CALL(r, "nb_xent_forward_backward (f32)",
              nb_xent_forward_backward(&z32, &tg, &o, &loss32, &dz32, &stats) == NB_OK))
        return;
    bool close = fabsf(l32 - lf) <= 1e-6f * fabsf(lf);
    for (int i = 0; i < XN * XV; i++)
        close = close && fabsf(d32[i] - d32b[i]) <= 1e-6f;
    verify(r, close, "forward_backward agrees with forward + backward");
    digest(r, d32, sizeof d32);
    if (!CALL(r, "nb_xent_forward_backward (f64)",
              nb_xent_forward_backward(&z64, &tg, &o, &loss64, &dz64, &stats) == NB_OK))
        return;
    digest(r, &l64, sizeof l64);
    digest(r, d64, sizeof d64);
    if (!CALL(r, "nb_xent_soft_forward",
              nb_xent_soft_forward(&z32, &pr, &o, &loss32, NULL, NULL) == NB_OK))
        return;
    digest(r, &l32, sizeof l32);
    o.reduction = NB_REDUCTION_NONE;
    if (!CALL(r, "nb_xent_reference", nb_xent_reference(&z64, &tg, &o, &rows, NULL) == NB_OK))
        return;
    digest(r, lrows, sizeof lrows);
}

static void test_xent_kernels(void **state)
{
    (void)state;
    xent_inputs();
    drive("nb_xent_* raw kernels", scenario_xent);
}

/* A steady training loop asks for no memory: after a few warm-up steps (the arena and the
 * header pools reach their size), steps of forward, fused loss with smoothing, backward,
 * clipping and an Adam update make zero calls to malloc, calloc, realloc or aligned_alloc. */
static void test_steady_step_allocates_nothing(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 4);
    int64_t sizes[4] = {20, 32, 16, 5}, sx[2] = {24, 20}, sy[1] = {24};
    nb_mlp *m = nb_mlp_new(sizes, 4, NB_ACT_GELU, NB_INIT_DEFAULT, 0.1, NB_F32, 2);
    nb_tensor *params[6];
    for (int i = 0; i < 6; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config oc = nb_optim_defaults(NB_OPTIM_ADAMW);
    nb_optim *opt = nb_optim_new(&oc, params, 6);
    nb_tensor *x = nb_tensor_randn(NB_F32, 2, sx, &r, 0, 1), *y = nb_tensor_zeros(NB_I32, 1, sy);
    for (int i = 0; i < 24; i++)
        ((int32_t *)y->data)[i] = i % 7 == 0 ? -100 : i % 5;
    nb_graph *g = nb_graph_new();
    nb_xent_opts o = nb_xent_defaults();
    o.label_smoothing = 0.1;
    long counted = -1;
    for (int step = 0; step < 8; step++) {
        if (step == 3)
            fa_begin(0);
        nb_graph_reset(g);
        nb_tensor *L = nb_cross_entropy(g, nb_mlp_forward(g, m, x), y, &o);
        assert_non_null(L);
        assert_int_equal(nb_backward(g, L, NULL), NB_OK);
        nb_clip_grad_norm(params, 6, 1.0, NULL);
        assert_int_equal(nb_optim_step(opt), NB_OK);
        nb_optim_zero_grad(opt);
    }
    fa_lock();
    counted = fa.count;
    fa_unlock();
    fa_end();
    if (counted != 0)
        fail_msg("%ld allocations in 5 steady-state training steps (expected 0)", counted);
    nb_graph_free(g);
    nb_optim_free(opt);
    nb_mlp_free(m);
    nb_tensor_free(x);
    nb_tensor_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_step),   cmocka_unit_test(test_npy),
        cmocka_unit_test(test_idx),          cmocka_unit_test(test_csv),
        cmocka_unit_test(test_safetensors),  cmocka_unit_test(test_datasets),
        cmocka_unit_test(test_xent_kernels), cmocka_unit_test(test_steady_step_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, setup_fixtures, teardown_fixtures);
}
