/* main.c - `nabla`: train, eval, predict, xent, gradcheck, bench. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"
#include "nabla.h"

/* OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels from the CPU model when it loads. On
 * a CPU it does not recognise (virtual machines often report a generic "Xeon Processor") it
 * falls back to its SSE3 "Prescott" kernels, 2-3x slower than the AVX2/AVX-512 ones the CPU can
 * run. The choice can only be made through OPENBLAS_CORETYPE before the library loads, so when
 * that happens we set it from the CPU's actual features and start again (once). Set
 * OPENBLAS_CORETYPE yourself to override. */
static void choose_blas_kernels(char **argv)
{
    const char *core = nb_blas_core_name();
    if (getenv("OPENBLAS_CORETYPE") || getenv("NABLA_BLAS_REEXEC") || !core ||
        strcmp(core, "Prescott"))
        return;
    const char *want = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
#endif
    if (!want)
        return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0 || setenv("NABLA_BLAS_REEXEC", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels we have */
}

static void usage(FILE *f)
{
    fprintf(f,
            "nabla %s - a small training framework in C\n"
            "\n"
            "usage: nabla COMMAND [options]   (nabla COMMAND --help for its options)\n"
            "\n"
            "commands:\n"
            "  train       train an MLP classifier (Fashion-MNIST by default)\n"
            "  eval        loss, accuracy, per-class accuracy, confusion matrix of a model\n"
            "  predict     logits or probabilities of a model on raw inputs (.npy)\n"
            "  export      a model's weights for PyTorch (nn.Sequential names) or NumPy (.npz)\n"
            "  plot        loss and accuracy curves from a --metrics file\n"
            "  gradcheck   check every op's gradient by central differences in float64\n"
            "  xent        fused cross-entropy on .npy logits/targets: loss, gradient, naive "
            "comparison\n"
            "  bench       speed of the fused loss, a training step and memory copy\n"
            "  diff        compare the tensors of two checkpoints\n"
            "  study       measured cross-entropy pitfalls: precision sweep, bugs, gradient\n"
            "  demo        train a small MLP on generated spirals data\n"
            "  version     print the version\n",
            NABLA_VERSION);
}

int main(int argc, char **argv)
{
    choose_blas_kernels(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("nabla %s\n", NABLA_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "gradcheck"))
        return nb_cmd_gradcheck(argc - 1, argv + 1);
    if (!strcmp(cmd, "xent"))
        return nb_cmd_xent(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo"))
        return nb_cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "train"))
        return nb_cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return nb_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "export"))
        return nb_cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict"))
        return nb_cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "diff"))
        return nb_cmd_diff(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return nb_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "study"))
        return nb_cmd_study(argc - 1, argv + 1);
    if (!strcmp(cmd, "plot"))
        return nb_cmd_plot(argc - 1, argv + 1);
    fprintf(stderr, "nabla: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
