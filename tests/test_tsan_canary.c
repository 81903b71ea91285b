/* test_tsan_canary.c - the ThreadSanitizer build must still see races (built only with
 * NABLA_TSAN; ctest passes it when the output holds a TSan data race report).
 *
 * The TSan build runs OpenMP with libarcher supplying the runtime's synchronisation to TSan and
 * with ignore_noninstrumented_modules=1; either could in principle hide too much. This program
 * makes one deliberate race in our own (instrumented) code, so the configuration is shown to
 * report it:
 *   omp      two OpenMP threads add to one plain int in a parallel region
 *   pthread  two pthreads add to one plain int
 * and a clean variant of each (an OpenMP team updating an array between the main thread's
 * writes and reads, and pthreads joined before the read) that must run without a report. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static int shared_sum;

static void *add_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        shared_sum += i; /* the race: both threads, no lock */
    return NULL;
}

static int pthread_case(int racy)
{
    pthread_t t[2];
    shared_sum = 0;
    if (racy) {
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, add_many, NULL) != 0)
                return 2;
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    for (int i = 0; i < 2; i++) { /* one after the other: join before the next starts */
        if (pthread_create(&t[i], NULL, add_many, NULL) != 0)
            return 2;
        pthread_join(t[i], NULL);
    }
    return shared_sum == 2 * 499500 ? 0 : 1;
}

/* The clean variant is the pattern of every row-parallel kernel: the main thread writes the
 * input, the team updates it in place, the main thread reads it after the join. Without
 * libarcher TSan cannot see the fork and the join barrier and reports this as a race
 * (OMP_TOOL=disabled shows it), so this variant also checks that the tool is loaded. */
static int omp_case(int racy)
{
#ifdef _OPENMP
    enum { n = 1 << 14 };
    static int a[n];
    if (racy) {
#pragma omp parallel num_threads(2)
        for (int i = 0; i < 1000; i++)
            shared_sum += i;
        return 0;
    }
    long sum = 0;
    for (int i = 0; i < n; i++)
        a[i] = i;
#pragma omp parallel for num_threads(2) schedule(static)
    for (int i = 0; i < n; i++)
        a[i] *= 2;
    for (int i = 0; i < n; i++)
        sum += a[i];
    return sum == (long)n * (n - 1) ? 0 : 1;
#else
    (void)racy;
    fprintf(stderr, "test_tsan_canary: built without OpenMP\n");
    return 2;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "omp") && strcmp(argv[1], "pthread")) ||
        (strcmp(argv[2], "racy") && strcmp(argv[2], "clean"))) {
        fprintf(stderr, "usage: test_tsan_canary omp|pthread racy|clean\n");
        return 2;
    }
    int racy = !strcmp(argv[2], "racy");
    int rc = !strcmp(argv[1], "omp") ? omp_case(racy) : pthread_case(racy);
    printf("test_tsan_canary %s %s: done (%d)\n", argv[1], argv[2], rc);
    return rc;
}
