/* cmd_eval.c - `nabla eval`: options, data and files; the evaluation is the library's
 * (nb_evaluate). `nabla predict` is in cmd_predict.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval_show.h"
#include "tensor/fileio.h"
#include "nabla.h"

/* The loss sum and correct count of m over ds in batches of 1000, no gradient, in inference
 * mode: a thin wrapper over nb_evaluate (kept for cmd_train.c). The confusion matrix, when asked
 * for, is [K, K] with K the model's outputs (which may exceed the data's classes). */
nb_status nb_cli_evaluate(nb_graph *g, nb_mlp *m, const nb_dataset *ds, double *loss_sum,
                          int64_t *correct, int64_t *confusion)
{
    *loss_sum = 0;
    *correct = 0;
    int64_t K = m->sizes[m->n_layers];
    bool was = m->training;
    nb_mlp_set_training(m, false);
    nb_eval_result r;
    nb_status s = nb_evaluate(g, nb_forward_mlp, m, ds->X, ds->y, K, 1000, -100, &r);
    nb_mlp_set_training(m, was);
    if (s == NB_OK) {
        *loss_sum = r.loss_sum;
        *correct = r.correct;
        if (confusion)
            memcpy(confusion, r.confusion, sizeof *confusion * (size_t)(K * K));
    }
    nb_eval_result_free(&r);
    return s;
}

/* ---- eval ---- */

/* Which rows `nabla eval` scores. --data FILE: every row of FILE. --data SET (a built-in set):
 * its split, made with the model's recorded seed when the model was trained on SET. No --data:
 * the run's own data, from what the checkpoint records (data_spec, data_seed, data_test_frac):
 * for a file, exactly the rows the run held out (--split test) or trained on (--split train),
 * after checking the file still has the recorded row count and checksum. Returns an exit
 * status; on success *ds points into tr or te and desc says what was scored. */
static int eval_data(const char *model, const nb_model_info *info, const char *data,
                     const char *dir, const char *split, bool split_given, nb_dataset *tr,
                     nb_dataset *te, nb_dataset **ds, char *desc, size_t desc_len)
{
    char *rec = NULL;
    nb_cli_data_id id;
    int have = nb_cli_read_data_id("eval", model, &rec, &id), rc = 1;
    bool test = strcmp(split, "train") != 0;
    memset(tr, 0, sizeof *tr);
    memset(te, 0, sizeof *te);
    if (have < 0)
        return 1;
    if (data && nb_cli_data_is_file(data)) {
        if (split_given)
            fprintf(stderr,
                    "nabla eval: note: --split does not apply to --data %s; every row of "
                    "it is scored\n",
                    data);
        rc = nb_cli_load_data("eval", data, dir, 0, 0.5, tr, NULL, false, NULL);
        if (rc == 0) {
            *ds = tr;
            snprintf(desc, desc_len, "every row of %s", data);
        }
        goto out;
    }
    if (!data && have == 0 && nb_cli_data_is_file(rec)) {
        nb_cli_data_id now;
        rc = nb_cli_load_data("eval", rec, dir, id.seed, id.test_frac, tr, te, false, &now);
        if (rc == 0 && (now.rows != id.rows || now.checksum != id.checksum)) {
            fprintf(stderr,
                    "nabla eval: %s has changed since %s was trained on it (now %lld rows, "
                    "checksum %016llx; then %lld rows, checksum %016llx), so the run's held-out "
                    "rows cannot be rebuilt; score a whole file with --data FILE\n",
                    rec, model, (long long)now.rows, (unsigned long long)now.checksum,
                    (long long)id.rows, (unsigned long long)id.checksum);
            rc = 1;
        }
        if (rc == 0) {
            *ds = test ? te : tr;
            snprintf(desc, desc_len,
                     "the %s rows of %s (the run's split: seed %llu, held-out fraction %g)",
                     test ? "held-out" : "training", rec, (unsigned long long)id.seed,
                     id.test_frac);
        }
        goto out;
    }
    const char *spec = data ? data : have == 0 ? rec : info->dataset[0] ? info->dataset : "auto";
    if (!strcmp(spec, "fashion-mnist-train")) /* models saved before the spec was recorded */
        spec = "fashion-mnist";
    if (nb_cli_data_is_file(spec)) { /* an older checkpoint that recorded no split */
        fprintf(stderr,
                "nabla eval: %s records no data split (it was saved by an older nabla), so the "
                "held-out rows of %s cannot be rebuilt; score a whole file with --data FILE\n",
                model, spec);
        goto out;
    }
    /* a built-in set: the seed the run used when it is that set, else the default seed 1 */
    uint64_t seed = have == 0 && !strcmp(spec, rec) ? id.seed : 1;
    rc = nb_cli_load_data("eval", spec, dir, seed, 0.1, tr, te, false, NULL);
    if (rc == 0) {
        *ds = test ? te : tr;
        snprintf(desc, desc_len, "%s split of %s", split, (*ds)->name);
    }
out:
    if (rc) {
        nb_dataset_free(tr);
        nb_dataset_free(te);
    }
    free(rec);
    return rc;
}

/* Class names for the rows of r: the checkpoint's, else the data's, when they name every class
 * scored (a model may have more outputs than the data has classes); NULL otherwise. */
static const char *const *eval_names(const nb_model_info *info, const nb_dataset *ds,
                                     const nb_eval_result *r)
{
    if (info->class_names && info->n_classes >= r->n_classes)
        return (const char *const *)info->class_names;
    if (ds->class_names && ds->n_classes >= r->n_classes)
        return (const char *const *)ds->class_names;
    return NULL;
}

/* --plot can be written and is neither the model nor a data file: checked before any work. */
static int check_plot(const char *plot, const char *model, const char *data)
{
    if (nb_output_check(plot, "nabla eval --plot") != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", data ? data : "");
    const char *ins[3] = {model, buf, NULL};
    char *comma = strchr(buf, ',');
    if (comma) { /* X.npy,y.npy */
        *comma = 0;
        ins[2] = comma + 1;
    }
    for (int i = 0; i < 3; i++)
        if (ins[i] && ins[i][0] && nb_output_same_file(plot, ins[i])) {
            fprintf(stderr,
                    "nabla eval: --plot '%s' is the same file as '%s'; writing it would destroy "
                    "that input (choose another output file)\n",
                    plot, ins[i]);
            return 1;
        }
    return 0;
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: nabla eval --model MODEL.safetensors [--data SPEC] [--data-dir DIR] "
               "[--split test|train] [--header yes|no|auto]\n"
               "                  [--label-col N|NAME] [--skip-rows N] [--plot CONFUSION.png]\n"
               "  Loss, accuracy, per-class accuracy, precision, recall and F1, macro F1\n"
               "  (over the classes present) and the confusion matrix.\n"
               "  Without --data: the data the model was trained on; for a CSV or .npy run,\n"
               "  exactly the rows the run held out (--split train: the others, training and\n"
               "  validation rows),\n"
               "  rebuilt from the split the checkpoint records.\n"
               "  --data FILE.csv, csv:FILE, X.npy,y.npy or images:DIR: every row of it.\n"
               "  --header, --label-col, --skip-rows: how a CSV is read (default: as the\n"
               "  model's run read it, else auto, the last column, none skipped).\n"
               "  --data fashion-mnist, mnist, spirals or seq-toy: that set's --split.\n"
               "  Classes are shown by name when the checkpoint or the data has names.\n"
               "  --plot FILE.png: the confusion matrix drawn as a PNG ('-': stdout).\n");
}

int nb_cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *dir = NULL, *split = "test", *plot = NULL;
    bool split_given = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            eval_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla eval: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--model"))
            model = argv[++i];
        else if (!strcmp(argv[i], "--data"))
            data = argv[++i];
        else if (!strcmp(argv[i], "--plot"))
            plot = argv[++i];
        else if (!strcmp(argv[i], "--data-dir"))
            dir = argv[++i];
        else if (!strcmp(argv[i], "--header")) {
            if (!nb_cli_csv_header_option("eval", argv[++i]))
                return 2;
        } else if (!strcmp(argv[i], "--label-col")) {
            if (!nb_cli_csv_label_option("eval", argv[++i]))
                return 2;
        } else if (!strcmp(argv[i], "--skip-rows")) {
            if (!nb_cli_csv_skip_rows_option("eval", argv[++i]))
                return 2;
        } else if (!strcmp(argv[i], "--split")) {
            split = argv[++i];
            split_given = true;
            if (strcmp(split, "test") && strcmp(split, "train")) {
                fprintf(stderr, "nabla eval: --split '%s': expected test or train\n", split);
                return 2;
            }
        } else {
            nb_cli_unknown_option("eval", argv[i], eval_usage);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "nabla eval: --model is required\n");
        return 2;
    }
    if (plot && check_plot(plot, model, data) != 0)
        return 1;
    nb_model_info info;
    memset(&info, 0, sizeof info);
    nb_mlp *m = nb_model_load(model, &info, NULL);
    if (!m) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        return 1;
    }
    nb_dataset tr, te, *ds = NULL;
    char desc[1200];
    int rc =
        eval_data(model, &info, data, dir, split, split_given, &tr, &te, &ds, desc, sizeof desc);
    if (rc) {
        nb_mlp_free(m);
        nb_model_info_free(&info);
        return rc;
    }
    int64_t K = m->sizes[m->n_layers], N = ds->X->shape[0];
    nb_graph *g = nb_graph_new();
    nb_eval_result res;
    memset(&res, 0, sizeof res);
    rc = 1;
    if (ds->X->shape[1] != m->sizes[0]) {
        fprintf(stderr, "nabla eval: the data has %lld features but the model %s expects %lld\n",
                (long long)ds->X->shape[1], model, (long long)m->sizes[0]);
    } else if (info.input_mean &&
               nb_dataset_apply_standardize(ds, info.input_mean, info.input_std) != NB_OK) {
        fprintf(stderr, "nabla eval: standardising the data with %s's mean and std: %s\n", model,
                nb_last_error());
    } else if (ds->n_classes > K) {
        fprintf(stderr, "nabla eval: the data has %lld classes but the model has %lld outputs\n",
                (long long)ds->n_classes, (long long)K);
    } else if (!g) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
    } else {
        nb_mlp_set_training(m, false);
        int64_t n_classes = ds->n_classes >= 1 ? ds->n_classes : K;
        if (nb_evaluate(g, nb_forward_mlp, m, ds->X, ds->y, n_classes, 1000, -100, &res) != NB_OK) {
            fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        } else {
            printf("model %s (epoch %lld), %s: %lld samples\n", model, (long long)info.epoch, desc,
                   (long long)N);
            const char *const *names = eval_names(&info, ds, &res);
            nb_cli_print_eval(&res, names);
            rc = plot ? nb_cli_plot_confusion(plot, &res, names, desc) : 0;
        }
    }
    nb_eval_result_free(&res);
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_model_info_free(&info);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
    return rc;
}
