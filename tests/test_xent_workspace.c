/* test_xent_workspace.c - nb_xent_forward_backward_ws in a caller workspace allocates nothing.
 *
 * Linked with -Wl,--wrap=malloc,calloc,realloc,aligned_alloc (tests/CMakeLists.txt): every
 * allocation nabla's own code makes is counted (atomically: the fused loss runs on 2 threads).
 * A loop of calls with one workspace must count 0; the allocating call must count more than 0
 * (so the counter works), and both must give the same loss and gradient bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
void *__wrap_aligned_alloc(size_t alignment, size_t size);

static atomic_long n_alloc;

void *__wrap_malloc(size_t size)
{
    atomic_fetch_add(&n_alloc, 1);
    return __real_malloc(size);
}
void *__wrap_calloc(size_t nmemb, size_t size)
{
    atomic_fetch_add(&n_alloc, 1);
    return __real_calloc(nmemb, size);
}
void *__wrap_realloc(void *ptr, size_t size)
{
    atomic_fetch_add(&n_alloc, 1);
    return __real_realloc(ptr, size);
}
void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
    atomic_fetch_add(&n_alloc, 1);
    return __real_aligned_alloc(alignment, size);
}

/* N x V logits (N V >= 65536: the rows run on 2 threads), targets with some padding */
static void check_dtype(nb_dtype dt, double smoothing)
{
    nb_set_num_threads(2);
    nb_rng r;
    nb_rng_seed(&r, 7);
    int64_t sz[2] = {64, 2048}, sy[1] = {64};
    nb_tensor *z = nb_tensor_randn(dt, 2, sz, &r, 0, 3), *y = nb_tensor_zeros(NB_I64, 1, sy);
    nb_tensor *dz1 = nb_tensor_zeros(dt, 2, sz), *dz2 = nb_tensor_zeros(dt, 2, sz);
    nb_tensor *L1 = nb_tensor_zeros(dt, 0, NULL), *L2 = nb_tensor_zeros(dt, 0, NULL);
    for (int i = 0; i < 64; i++)
        ((int64_t *)y->data)[i] = i % 9 == 0 ? -100 : (i * 37) % 2048;
    nb_xent_opts o = nb_xent_defaults();
    o.label_smoothing = smoothing;
    size_t bytes = nb_xent_workspace_size(z);
    assert_true(bytes > 2048 * sizeof(float));
    void *ws = malloc(bytes);
    assert_non_null(ws);

    atomic_store(&n_alloc, 0);
    assert_int_equal(nb_xent_forward_backward(z, y, &o, L1, dz1, NULL), NB_OK);
    long plain = atomic_load(&n_alloc);
    assert_true(plain > 0); /* the counter sees the library's allocations */

    atomic_store(&n_alloc, 0);
    for (int it = 0; it < 10; it++)
        assert_int_equal(nb_xent_forward_backward_ws(z, y, &o, L2, dz2, NULL, ws, bytes), NB_OK);
    long steady = atomic_load(&n_alloc);
    if (steady != 0)
        fail_msg("%s: %ld allocations in 10 calls with a workspace (expected 0)", nb_dtype_name(dt),
                 steady);
    assert_memory_equal(L1->data, L2->data, nb_dtype_size(dt));
    assert_memory_equal(dz1->data, dz2->data, (size_t)dz1->numel * nb_dtype_size(dt));

    /* a workspace for one thread only: same results, still no allocation */
    memset(dz2->data, 0, (size_t)dz2->numel * nb_dtype_size(dt));
    size_t one = bytes - 2048 * sizeof(float) * (size_t)(nb_num_threads() - 1);
    atomic_store(&n_alloc, 0);
    assert_int_equal(nb_xent_forward_backward_ws(z, y, &o, L2, dz2, NULL, ws, one), NB_OK);
    assert_int_equal(atomic_load(&n_alloc), 0);
    assert_memory_equal(dz1->data, dz2->data, (size_t)dz1->numel * nb_dtype_size(dt));

    /* too small for even one row: an error naming both sizes */
    assert_int_equal(nb_xent_forward_backward_ws(z, y, &o, L2, dz2, NULL, ws, 1000), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "workspace of 1000 bytes is too small"));
    free(ws);
    nb_tensor_free(z);
    nb_tensor_free(y);
    nb_tensor_free(dz1);
    nb_tensor_free(dz2);
    nb_tensor_free(L1);
    nb_tensor_free(L2);
}

static void test_f32_fused_path(void **state)
{
    (void)state;
    check_dtype(NB_F32, 0.1);
}

static void test_f64_general_path(void **state)
{
    (void)state;
    check_dtype(NB_F64, 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_fused_path),
        cmocka_unit_test(test_f64_general_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
