/* cli_data.c - turning a --data spec into train and test sets for train/eval. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "nabla.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

const char *nb_cli_default_data_dir(void)
{
    return DEFAULT_DATA_DIR;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* --header; auto unless a command's option said otherwise */
static nb_csv_header csv_header = NB_CSV_HEADER_AUTO;

bool nb_cli_csv_header_option(const char *cmd, const char *value)
{
    if (!strcmp(value, "yes"))
        csv_header = NB_CSV_HEADER_YES;
    else if (!strcmp(value, "no"))
        csv_header = NB_CSV_HEADER_NO;
    else if (!strcmp(value, "auto"))
        csv_header = NB_CSV_HEADER_AUTO;
    else {
        fprintf(stderr, "nabla %s: --header '%s': expected yes, no or auto\n", cmd, value);
        return false;
    }
    return true;
}

bool nb_cli_mnist_present(const char *dir)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    if (stat(p, &st) == 0)
        return true;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    return stat(p, &st) == 0;
}

/* spec: fashion-mnist | mnist | spirals | auto | FILE.csv | X.npy,y.npy. For sets without a test
 * split, a seeded validation split of val_frac is held out. test may be NULL (eval of train). */
int nb_cli_load_data(const char *cmd, const char *spec, const char *dir, uint64_t seed,
                     double val_frac, nb_dataset *train, nb_dataset *test, bool quiet)
{
    memset(train, 0, sizeof *train);
    if (test)
        memset(test, 0, sizeof *test);
    if (!dir)
        dir = DEFAULT_DATA_DIR;
    if (!strcmp(spec, "auto")) {
        if (nb_cli_mnist_present(dir))
            spec = "fashion-mnist";
        else {
            if (!quiet)
                fprintf(stderr,
                        "nabla %s: Fashion-MNIST not found in %s (Debian package "
                        "dataset-fashion-mnist); using the built-in spirals set instead\n",
                        cmd, dir);
            spec = "spirals";
        }
    }
    nb_status s = NB_OK;
    if (!strcmp(spec, "seq-toy")) { /* every real token as a classification row */
        for (int part = 0; part < (test ? 2 : 1) && s == NB_OK; part++) {
            nb_tensor *X = NULL, *Y = NULL, *Xf = NULL, *yf = NULL;
            s = nb_seq_toy(part ? 1000 : 6000, 12, 8, part ? seed + 7919 : seed, &X, &Y);
            int64_t ntok = 0, F = X ? X->shape[2] : 0;
            for (int64_t i = 0; s == NB_OK && i < Y->numel; i++)
                ntok += ((int32_t *)Y->data)[i] >= 0;
            int64_t sf[2] = {ntok, F}, sl[1] = {ntok};
            if (s == NB_OK) {
                Xf = nb_tensor_empty(NB_F32, 2, sf);
                yf = nb_tensor_empty(NB_I32, 1, sl);
                s = Xf && yf ? NB_OK : nb_last_status();
            }
            for (int64_t i = 0, k = 0; s == NB_OK && i < Y->numel; i++)
                if (((int32_t *)Y->data)[i] >= 0) {
                    memcpy((float *)Xf->data + k * F, (float *)X->data + i * F,
                           sizeof(float) * (size_t)F);
                    ((int32_t *)yf->data)[k++] = ((int32_t *)Y->data)[i];
                }
            nb_dataset *d = part ? test : train;
            if (s == NB_OK)
                s = nb_dataset_from_tensors(Xf, yf, 8, d);
            if (s == NB_OK)
                snprintf(d->name, sizeof d->name, "seq-toy");
            nb_tensor_free(X);
            nb_tensor_free(Y);
            nb_tensor_free(Xf);
            nb_tensor_free(yf);
        }
    } else if (!strcmp(spec, "fashion-mnist") || !strcmp(spec, "mnist")) {
        s = nb_dataset_load_mnist(dir, "train", train);
        if (s == NB_OK && test)
            s = nb_dataset_load_mnist(dir, "test", test);
    } else if (!strcmp(spec, "spirals")) {
        nb_tensor *X = NULL, *y = NULL;
        s = nb_spirals(1000, 3, 0.2, seed, &X, &y);
        if (s == NB_OK)
            s = nb_dataset_from_tensors(X, y, 3, train);
        nb_tensor_free(X);
        nb_tensor_free(y);
        if (s == NB_OK && test) {
            s = nb_spirals(300, 3, 0.2, seed + 1000003, &X, &y);
            if (s == NB_OK)
                s = nb_dataset_from_tensors(X, y, 3, test);
            nb_tensor_free(X);
            nb_tensor_free(y);
        }
        if (s == NB_OK) {
            snprintf(train->name, sizeof train->name, "spirals");
            if (test)
                snprintf(test->name, sizeof test->name, "spirals");
        }
    } else {
        nb_dataset all;
        memset(&all, 0, sizeof all);
        const char *comma = strchr(spec, ',');
        if (comma) {
            char xp[1024];
            size_t n = (size_t)(comma - spec);
            if (n >= sizeof xp) {
                fprintf(stderr, "nabla %s: --data path too long\n", cmd);
                return 2;
            }
            memcpy(xp, spec, n);
            xp[n] = '\0';
            s = nb_dataset_load_npy(xp, comma + 1, &all);
        } else if (ends_with(spec, ".csv")) {
            s = nb_dataset_load_csv(spec, -1, csv_header, &all);
        } else {
            fprintf(
                stderr,
                "nabla %s: --data '%s': expected fashion-mnist, mnist, spirals, seq-toy, FILE.csv "
                "or X.npy,y.npy\n",
                cmd, spec);
            return 2;
        }
        if (s == NB_OK) {
            if (test) {
                s = nb_dataset_split(&all, val_frac, seed, train, test);
                nb_dataset_free(&all);
            } else {
                *train = all;
            }
        }
    }
    if (s != NB_OK) {
        fprintf(stderr, "nabla %s: %s\n", cmd, nb_last_error());
        nb_dataset_free(train);
        if (test)
            nb_dataset_free(test);
        return 1;
    }
    return 0;
}
