/* train_data.c - the data of a `nabla train` run (see train_data.h). */
#include <stdio.h>
#include <string.h>

#include "train_data.h"

/* Every real token of the n sequences ids[0..n) (NULL: 0..n-1) of X [*, T, F] / Y [*, T] as a
 * classification row: features [F], label the token's target. */
static nb_status flatten_tokens(const nb_tensor *X, const nb_tensor *Y, const int32_t *ids,
                                int64_t n, int64_t V, nb_dataset *out)
{
    int64_t T = Y->shape[1], F = X->numel / (X->shape[0] * T), ntok = 0;
    const int32_t *y = Y->data;
    for (int64_t r = 0; r < n; r++)
        for (int64_t t = 0; t < T; t++)
            ntok += y[(ids ? ids[r] : r) * T + t] >= 0;
    int64_t sf[2] = {ntok, F}, sl[1] = {ntok};
    nb_tensor *Xf = nb_tensor_empty(NB_F32, 2, sf), *yf = nb_tensor_empty(NB_I32, 1, sl);
    nb_status s = Xf && yf ? NB_OK : nb_last_status();
    for (int64_t r = 0, k = 0; s == NB_OK && r < n; r++)
        for (int64_t t = 0, i = (ids ? ids[r] : r) * T; t < T; t++, i++)
            if (y[i] >= 0) {
                memcpy((float *)Xf->data + k * F, (const float *)X->data + i * F,
                       sizeof(float) * (size_t)F);
                ((int32_t *)yf->data)[k++] = y[i];
            }
    if (s == NB_OK)
        s = nb_dataset_from_tensors(Xf, yf, V, out);
    if (s == NB_OK)
        snprintf(out->name, sizeof out->name, "seq-toy");
    nb_tensor_free(Xf);
    nb_tensor_free(yf);
    return s;
}

/* seq-toy: 6000 training sequences (val carved from them by sequence) and 1000 test ones. */
static nb_status load_seq_toy(const train_cfg *c, train_data *d)
{
    const int64_t T = 12, V = 8, n_train = 6000, n_test = 1000;
    uint64_t seed = (uint64_t)c->seed;
    nb_tensor *X = NULL, *Xt = NULL, *Yt = NULL, *ids = NULL;
    nb_dataset all, va_seq;
    memset(&all, 0, sizeof all);
    memset(&va_seq, 0, sizeof va_seq);
    nb_status s = nb_seq_toy(n_train, T, V, seed, &X, &d->seqY);
    if (s == NB_OK)
        s = nb_seq_toy(n_test, T, V, seed + 7919, &Xt, &Yt);
    int64_t si[1] = {n_train};
    if (s == NB_OK && !(ids = nb_tensor_empty(NB_I32, 1, si)))
        s = nb_last_status();
    for (int64_t i = 0; s == NB_OK && i < n_train; i++)
        ((int32_t *)ids->data)[i] = (int32_t)i;
    d->T = T;
    d->F = X ? X->shape[2] : 0;
    d->V = V;
    if (s == NB_OK) {
        int64_t sx[2] = {n_train, T * d->F};
        nb_tensor Xv;
        nb_tensor_view(&Xv, NB_F32, 2, sx, X->data);
        s = nb_dataset_from_tensors(&Xv, ids, n_train, c->val > 0 ? &all : &d->tr);
    }
    if (s == NB_OK && c->val > 0) {
        s = nb_dataset_split(&all, c->val, seed, &d->tr, &va_seq);
        if (s == NB_OK)
            s = flatten_tokens(X, d->seqY, va_seq.y->data, va_seq.y->shape[0], V, &d->va);
    }
    if (s == NB_OK)
        s = flatten_tokens(Xt, Yt, NULL, n_test, V, &d->te);
    if (s == NB_OK)
        snprintf(d->tr.name, sizeof d->tr.name, "seq-toy");
    nb_dataset_free(&all);
    nb_dataset_free(&va_seq);
    nb_tensor_free(X);
    nb_tensor_free(Xt);
    nb_tensor_free(Yt);
    nb_tensor_free(ids);
    return s;
}

/* The class names of the checkpoint being resumed, on every split (none: nothing). 0 or 1. */
static int resumed_names(const train_cfg *c, train_data *d)
{
    nb_model_info info;
    memset(&info, 0, sizeof info);
    nb_mlp *m = nb_model_load(c->resume, &info, NULL);
    int rc = 0;
    if (!m) {
        fprintf(stderr, "nabla train: --resume: %s\n", nb_last_error());
        return 1;
    }
    nb_dataset *parts[3] = {&d->tr, &d->va, &d->te};
    for (int i = 0; info.class_names && i < 3 && !rc; i++)
        if (parts[i]->X && parts[i]->n_classes == info.n_classes &&
            nb_dataset_set_class_names(parts[i], (const char *const *)info.class_names,
                                       info.n_classes) != NB_OK) {
            fprintf(stderr, "nabla train: --resume %s: %s\n", c->resume, nb_last_error());
            rc = 1;
        }
    nb_model_info_free(&info);
    nb_mlp_free(m);
    return rc;
}

int train_data_load(const train_cfg *c, bool quiet, train_data *d)
{
    memset(d, 0, sizeof *d);
    d->T = 1;
    const char *spec = c->data;
    const char *dir = c->dir ? c->dir : nb_cli_default_data_dir();
    if (!strcmp(spec, "auto") && c->dir && !nb_cli_mnist_present(dir)) {
        fprintf(stderr,
                "nabla train: --data-dir %s holds no train-images-idx3-ubyte[.gz]; give --data "
                "for another data set\n",
                c->dir);
        return 2;
    }
    if (!strcmp(spec, "auto"))
        spec = nb_cli_mnist_present(dir) ? "fashion-mnist" : "spirals";
    snprintf(d->spec, sizeof d->spec, "%s", spec);
    if (!strcmp(spec, "seq-toy")) {
        if (c->standardize) {
            fprintf(stderr, "nabla train: --standardize: seq-toy's token features are one-hot; "
                            "standardise a FILE.csv or .npy data set\n");
            return 2;
        }
        d->id = (nb_cli_data_id){(uint64_t)c->seed, c->test, 0, 0};
        if (load_seq_toy(c, d) == NB_OK)
            return 0;
        fprintf(stderr, "nabla train: seq-toy: %s\n", nb_last_error());
        train_data_free(d);
        return 1;
    }
    nb_dataset all;
    int rc = nb_cli_load_data("train", c->data, c->dir, (uint64_t)c->seed, c->test, &all, &d->te,
                              quiet, &d->id);
    if (rc)
        return rc;
    if (c->val > 0) {
        /* the validation rows: a seeded share of the training rows, never of the test set */
        if (nb_dataset_split(&all, c->val, (uint64_t)c->seed, &d->tr, &d->va) != NB_OK) {
            fprintf(stderr, "nabla train: --val-frac %g: %s\n", c->val, nb_last_error());
            rc = 1;
        }
        nb_dataset_free(&all);
    } else
        d->tr = all;
    /* --resume without --class-names: the names the checkpoint holds, not the file again */
    if (!rc && c->resume && !c->class_names && !d->tr.class_names && resumed_names(c, d) != 0)
        rc = 1;
    /* --class-names: on every split (the file's names replace a data set's own) */
    nb_dataset *parts[3] = {&d->tr, &d->va, &d->te};
    for (int i = 0; !rc && c->class_names && i < 3; i++)
        if (parts[i]->X && nb_dataset_load_class_names(parts[i], c->class_names) != NB_OK) {
            fprintf(stderr, "nabla train: --class-names: %s\n", nb_last_error());
            rc = 1;
        }
    /* statistics of the training rows only; the validation and test rows get the same map */
    if (!rc && c->standardize &&
        nb_dataset_standardize(&d->tr, d->va.X ? &d->va : NULL, &d->te) != NB_OK) {
        fprintf(stderr, "nabla train: --standardize: %s\n", nb_last_error());
        rc = 1;
    }
    if (rc)
        train_data_free(d);
    return rc;
}

void train_data_free(train_data *d)
{
    nb_dataset_free(&d->tr);
    nb_dataset_free(&d->va);
    nb_dataset_free(&d->te);
    nb_tensor_free(d->seqY);
    d->seqY = NULL;
}
