/* train_data.h - the data of a `nabla train` run: training rows, the validation rows carved from
 * them (seeded, every data set), and the test set (the set's own, or rows held out of a file). */
#ifndef NABLA_TRAIN_DATA_H
#define NABLA_TRAIN_DATA_H

#include "cli.h"
#include "train_options.h"

typedef struct train_data {
    nb_dataset tr, va, te;           /* va is empty (X NULL) with --val-frac 0 */
    char spec[NB_MODEL_DATASET_MAX]; /* the --data spec, "auto" resolved */
    nb_cli_data_id id;               /* what identifies it in checkpoints */
    /* seq-toy: the rows of tr are whole sequences (features [T * F]) and a row's "label" is its
     * sequence's index into seqY (i32 [n_seq, T], -100 on padding); va and te are token rows */
    nb_tensor *seqY;
    int64_t T, F, V;
} train_data;

/* Loads c->data. 0, or the exit status after a message. */
int train_data_load(const train_cfg *c, bool quiet, train_data *d);
void train_data_free(train_data *d);

#endif
