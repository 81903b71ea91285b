/* main.c - `nabla`: train, eval, predict, xent, gradcheck, bench. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nabla.h"

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
            "  plot        loss and accuracy curves from a --metrics file\n"
            "  gradcheck   check every op's gradient by central differences in float64\n"
            "  xent        fused cross-entropy on .npy logits/targets: loss, gradient, naive "
            "comparison\n"
            "  bench       speed of the fused loss, a training step and memory copy\n"
            "  demo        train a small MLP on generated spirals data\n"
            "  version     print the version\n",
            NABLA_VERSION);
}

bool nb_cli_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0.0;
    if (!s || end == s || *end != '\0' || errno == ERANGE) {
        fprintf(stderr, "nabla %s: bad value for %s: '%s' (expected a number)\n", cmd, opt,
                s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool nb_cli_parse_int(const char *cmd, const char *opt, const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end != '\0' || errno == ERANGE) {
        fprintf(stderr, "nabla %s: bad value for %s: '%s' (expected an integer)\n", cmd, opt,
                s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
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
    if (!strcmp(cmd, "predict"))
        return nb_cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return nb_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "plot"))
        return nb_cmd_plot(argc - 1, argv + 1);
    fprintf(stderr, "nabla: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
