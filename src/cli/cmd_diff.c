/* cmd_diff.c - `nabla diff A B`: compare the tensors of two safetensors files. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nabla.h"

int nb_cmd_diff(int argc, char **argv)
{
    const char *a = NULL, *b = NULL, *prefix = "";
    double tol = 0.0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf(
                "usage: nabla diff A.safetensors B.safetensors [--tol REL] [--only PREFIX] "
                "[--quiet]\n"
                "  Largest absolute and relative difference of each tensor both files hold\n"
                "  (relative to the tensor's largest magnitude). Exit 1 if any exceeds --tol\n"
                "  (default 0: bitwise equal), or if a tensor is in one file only or has another\n"
                "  dtype or shape in the other.\n");
            return 0;
        } else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
            if (!nb_cli_parse_double("diff", "--tol", argv[++i], &tol) || tol < 0)
                return 2;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            prefix = argv[++i];
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = true;
        } else if (argv[i][0] != '-' && !a) {
            a = argv[i];
        } else if (argv[i][0] != '-' && !b) {
            b = argv[i];
        } else {
            fprintf(stderr, "nabla diff: unknown option or extra argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!a || !b) {
        fprintf(stderr, "nabla diff: two files are needed\n");
        return 2;
    }
    nb_safetensors *A = nb_safetensors_load(a), *B = A ? nb_safetensors_load(b) : NULL;
    if (!A || !B) {
        fprintf(stderr, "nabla diff: %s\n", nb_last_error());
        nb_safetensors_free(A);
        return 1;
    }
    int rc = 0, compared = 0;
    double worst = 0;
    for (int i = 0; i < nb_safetensors_count(A); i++) {
        const char *name = nb_safetensors_name(A, i);
        if (strncmp(name, prefix, strlen(prefix)))
            continue;
        const nb_tensor *x = nb_safetensors_get(A, name), *y = nb_safetensors_get(B, name);
        if (!y) {
            fprintf(stderr, "nabla diff: tensor '%s' is in %s but not in %s\n", name, a, b);
            rc = 1;
            continue;
        }
        if (x->dtype != y->dtype || !nb_shape_equal(x, y)) {
            char sx[64], sy[64];
            fprintf(stderr, "nabla diff: tensor '%s' is %s %s in %s but %s %s in %s (%s differ)\n",
                    name, nb_dtype_name(x->dtype), nb_shape_str(x, sx, sizeof sx), a,
                    nb_dtype_name(y->dtype), nb_shape_str(y, sy, sizeof sy), b,
                    x->dtype != y->dtype && !nb_shape_equal(x, y) ? "dtypes and shapes"
                    : x->dtype != y->dtype                        ? "dtypes"
                                                                  : "shapes");
            rc = 1;
            continue;
        }
        double mx = 0, dmax = 0;
        for (int64_t k = 0; k < x->numel; k++) {
            double u = nb_tensor_get(x, k), v = nb_tensor_get(y, k);
            mx = fmax(mx, fabs(u));
            double d = fabs(u - v);
            dmax = isnan(d) && !(isnan(u) && isnan(v)) ? INFINITY : fmax(dmax, d);
        }
        double rel = mx > 0 ? dmax / mx : dmax;
        worst = fmax(worst, rel);
        compared++;
        if (!quiet)
            printf("%-32s max abs diff %.3e  rel %.3e%s\n", name, dmax, rel,
                   rel > tol ? "  <- exceeds --tol" : "");
        if (rel > tol)
            rc = 1;
    }
    /* a tensor only the second file has is a difference too */
    for (int i = 0; i < nb_safetensors_count(B); i++) {
        const char *name = nb_safetensors_name(B, i);
        if (!strncmp(name, prefix, strlen(prefix)) && !nb_safetensors_get(A, name)) {
            fprintf(stderr, "nabla diff: tensor '%s' is in %s but not in %s\n", name, b, a);
            rc = 1;
        }
    }
    if (!quiet)
        printf("%d tensor%s compared, largest relative difference %.3e (tol %.3g)\n", compared,
               compared == 1 ? "" : "s", worst, tol);
    nb_safetensors_free(A);
    nb_safetensors_free(B);
    return compared ? rc : 1;
}
