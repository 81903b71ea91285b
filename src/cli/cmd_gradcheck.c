/* cmd_gradcheck.c - `nabla gradcheck [--op NAME] [--seed S]`: every registered op, every sample
 * case, central differences in float64; one line per case, exit 1 if any fails. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nabla.h"
#include "op_samples.h"

#define GC_BAR 1e-6

typedef struct gc_ctx {
    const nb_op_info *op;
    int k;
} gc_ctx;

static nb_tensor *apply(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    gc_ctx *c = ctx;
    return c->op->apply(c->op, g, in, n, c->op->cases[c->k].args);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nabla gradcheck [--op NAME] [--seed S] [--worst K] [--list]\n"
            "  Checks each op's analytic gradient against central differences in float64\n"
            "  (max relative error must be < 1e-6). Prints one line per op and case.\n"
            "  --worst K   also print, per case, each input's max errors and worst element\n"
            "              (coordinates, analytic, numeric) and the K worst elements (0..%d)\n",
            NB_GRADCHECK_MAX_WORST);
}

int nb_cmd_gradcheck(int argc, char **argv)
{
    const char *only = NULL;
    long long seed = 42;
    bool list = false;
    long long worst = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--op") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (!nb_cli_parse_int("gradcheck", "--seed", argv[++i], &seed))
                return 2;
        } else if (!strcmp(argv[i], "--worst") && i + 1 < argc) {
            if (!nb_cli_parse_int("gradcheck", "--worst", argv[++i], &worst))
                return 2;
            if (worst < 0 || worst > NB_GRADCHECK_MAX_WORST) {
                fprintf(stderr, "nabla gradcheck: --worst %lld outside [0, %d]\n", worst,
                        NB_GRADCHECK_MAX_WORST);
                return 2;
            }
        } else if (!strcmp(argv[i], "--list")) {
            list = true;
        } else {
            fprintf(stderr, "nabla gradcheck: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int count = nb_op_count();
    if (only && !nb_op_find(only)) {
        fprintf(stderr, "nabla gradcheck: no op named '%s'; ops are:", only);
        for (int i = 0; i < count; i++)
            fprintf(stderr, " %s", nb_op_at(i)->name);
        fprintf(stderr, "\n");
        return 2;
    }
    if (list) {
        for (int i = 0; i < count; i++) {
            const nb_op_info *op = nb_op_at(i);
            printf("%-20s %d case%s  %s\n", op->name, op->n_cases, op->n_cases == 1 ? " " : "s",
                   op->formula);
        }
        return 0;
    }
    nb_rng rng;
    int failed = 0, checked = 0;
    printf("%-20s %-40s %12s  %s\n", "op", "case", "max rel err", "result");
    for (int i = 0; i < count; i++) {
        const nb_op_info *op = nb_op_at(i);
        if (only && strcmp(only, op->name))
            continue;
        nb_sample_rng(&rng, (uint64_t)seed, op); /* an op's samples do not depend on the others */
        for (int k = 0; k < op->n_cases; k++) {
            nb_tensor *in[NB_OP_MAX_INPUTS] = {0};
            int n = 0;
            char desc[160];
            if (nb_sample_make(op, k, &rng, in, &n, desc, sizeof desc) != NB_OK) {
                printf("%-20s %-40s %12s  FAIL (%s)\n", op->name, "?", "-", nb_last_error());
                failed++;
                continue;
            }
            gc_ctx c = {op, k};
            nb_gradcheck_result r;
            nb_gradcheck_opts o = {0};
            o.k_worst = worst > 0 ? (int)worst : 0;
            nb_status s = nb_gradcheck(apply, in, n, &c, &o, &r);
            checked++;
            if (s != NB_OK) {
                printf("%-20s %-40s %12s  FAIL (%s)\n", op->name, desc, "-", nb_last_error());
                failed++;
            } else {
                bool ok = r.max_rel_err < GC_BAR;
                printf("%-20s %-40s %12.3e  %s", op->name, desc, r.max_rel_err, ok ? "ok" : "FAIL");
                if (!ok) {
                    nb_gradcheck_element e = {0};
                    e.ndim = r.worst_ndim;
                    memcpy(e.coords, r.worst_coords, sizeof e.coords);
                    char at[96];
                    printf(" (input %d at %s: analytic %.10g numeric %.10g)", r.worst_input,
                           nb_gradcheck_coords_str(&e, at, sizeof at), r.worst_analytic,
                           r.worst_numeric);
                }
                printf("\n");
                if (worst >= 0)
                    nb_gradcheck_print(stdout, &r, NULL, GC_BAR);
                failed += !ok;
            }
            for (int j = 0; j < NB_OP_MAX_INPUTS; j++)
                nb_tensor_free(in[j]);
        }
    }
    printf("%d case%s checked, %d failed (bar: max relative error < %.0e)\n", checked,
           checked == 1 ? "" : "s", failed, GC_BAR);
    return failed ? 1 : 0;
}
