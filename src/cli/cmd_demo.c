/* cmd_demo.c - `nabla demo`: `nabla train` on the built-in spirals, a quick look at the whole
 * loop without any data set installed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int nb_cmd_demo(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: nabla demo [train options]\n"
                   "  Trains an MLP on the built-in spirals: nabla train --data spirals --hidden "
                   "64,64\n"
                   "  --epochs 20 --lr 0.01 --warmup 20, followed by your options (see nabla train "
                   "--help).\n");
            return 0;
        }
    enum { MAX_ARGS = 64, DEMO_ARGS = 11 };
    char *args[DEMO_ARGS + MAX_ARGS + 1] = {"train", "--data",   "spirals", "--hidden",
                                            "64,64", "--epochs", "20",      "--lr",
                                            "0.01",  "--warmup", "20"};
    int n = DEMO_ARGS;
    if (argc - 1 > MAX_ARGS) {
        fprintf(stderr, "nabla demo: too many options (%d)\n", argc - 1);
        return 2;
    }
    for (int i = 1; i < argc; i++) /* later options override the demo's own */
        args[n++] = argv[i];
    args[n] = NULL;
    return nb_cmd_train(n, args);
}
