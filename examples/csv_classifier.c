/* csv_classifier.c - a classifier for any CSV file, from loading to a test report.
 *
 * The file: one row per sample, numeric features, the label (a class index 0, 1, ...) in the
 * last column or in the 0-based column given; a header line of column names is detected. Each
 * feature is standardised with the mean and std of the training rows, which the checkpoint
 * keeps; 10 % of the rows validate every epoch (early stopping, best model saved), 10 % are
 * held out raw and scored at the end by the best model, which standardises them itself.
 *
 * Build: part of the CMake build (build/example_csv_classifier).
 * Run:   build/example_csv_classifier data.csv [LABEL_COLUMN [BEST.safetensors]]
 * Then:  nabla eval --model csv_best.safetensors --data data.csv   (raw rows, any file) */
#include <stdio.h>
#include <stdlib.h>

#include <nabla.h>

static int fail(const char *what)
{
    fprintf(stderr, "csv_classifier: %s: %s\n", what, nb_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4)
        return fprintf(stderr, "usage: %s DATA.csv [LABEL_COLUMN [BEST]]\n", argv[0]), 2;
    const char *best = argc > 3 ? argv[3] : "csv_best.safetensors";
    int label_col = argc > 2 ? atoi(argv[2]) : -1; /* -1: the last column */
    nb_dataset all, train, val, test;
    if (nb_dataset_load_csv(argv[1], label_col, NB_CSV_HEADER_AUTO, &all) ||
        nb_dataset_split3(&all, 0.1, 0.1, 42, &train, &val, &test) || /* seeded: val, test 10 % */
        nb_dataset_standardize(&train, &val, NULL)) /* mean and std of the training rows only */
        return fail(argv[1]);

    int64_t sizes[] = {train.X->shape[1], 64, 64, train.n_classes};
    nb_mlp *m = nb_mlp_new(sizes, 4, NB_ACT_RELU, NB_INIT_DEFAULT, 0.0, NB_F32, 1);
    nb_train_config c = nb_train_defaults(); /* AdamW, cosine schedule, label smoothing 0.1 */
    c.epochs = 200;
    c.batch = 32;
    c.val = &val;
    c.patience = 10;          /* stop after 10 epochs without a better validation loss */
    c.best_checkpoint = best; /* the best model so far, with the mean and std */
    nb_train_model model = nb_train_model_mlp(m);
    nb_train_result r;
    if (!m || nb_train(&model, &train, &c, &r))
        return fail("training");
    printf("%lld epochs, best validation loss %.4f (accuracy %.4f) at epoch %lld\n",
           (long long)r.epochs_done, r.best_val_loss, r.best_val_acc, (long long)r.best_epoch);

    nb_eval_result e; /* the raw test rows, standardised by the checkpoint's mean and std */
    if (nb_evaluate_checkpoint(best, &test, &e))
        return fail(best);
    printf("test accuracy %.4f on %lld rows, macro F1 %.4f\n", e.accuracy, (long long)e.count,
           e.macro_f1);
    for (int64_t k = 0; k < e.n_classes; k++)
        printf("class %lld: precision %.4f  recall %.4f  F1 %.4f\n", (long long)k, e.precision[k],
               e.recall[k], e.f1[k]);
    nb_eval_result_free(&e);
    nb_mlp_free(m);
    nb_dataset *sets[] = {&all, &train, &val, &test};
    for (int i = 0; i < 4; i++)
        nb_dataset_free(sets[i]);
    return 0;
}
