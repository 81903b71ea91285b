/* standardize.c - per-feature standardisation of a data set's features.
 *
 * For features X [N, D] and statistics mean [D], std [D] (f32):
 *
 *   x'[i, j] = (x[i, j] - mean[j]) / std[j]
 *
 * computed in f64 from the f32 values of x, mean and std and rounded once to f32, so that the
 * same raw row standardised here during training and later with the statistics read back from
 * a checkpoint gives bit-identical features.
 *
 * The statistics are measured on the training rows only, in two passes with f64 sums:
 *   mean[j] = sum_i x[i, j] / N
 *   std[j]  = sqrt(sum_i (x[i, j] - mean[j])^2 / N)      (population std, as scikit-learn)
 * both rounded to f32. A std that rounds below FLT_MIN (a constant feature: the two-pass sum is
 * exactly 0 when every value is equal) is replaced by 1, so that feature becomes x - mean.
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/dataset.h"
#include "../tensor/tensor_internal.h"
#include "nabla/status.h"
#include "nabla/tensor.h"
#include "data_internal.h"

/* mean and std: f32 [D] each, every mean finite, every std finite and > 0. */
static nb_status check_stats(const nb_tensor *mean, const nb_tensor *std, int64_t D,
                             const char *who)
{
    const nb_tensor *t[2] = {mean, std};
    const char *name[2] = {"mean", "std"};
    for (int k = 0; k < 2; k++) {
        char s[64];
        if (nb_dataset_check_tensor(t[k], name[k]) != NB_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", nb_last_error());
            return nb_error(NB_ERR_ARG, "%s: %s", who, msg);
        }
        if (t[k]->dtype != NB_F32 || t[k]->ndim != 1 || t[k]->shape[0] != D)
            return nb_error(NB_ERR_SHAPE, "%s: %s is %s %s; expected f32 [%" PRId64 "]", who,
                            name[k], nb_dtype_name(t[k]->dtype), nb_shape_str(t[k], s, sizeof s),
                            D);
        const float *v = t[k]->data;
        for (int64_t j = 0; j < D; j++)
            if (!isfinite(v[j]) || (k == 1 && !(v[j] > 0)))
                return nb_error(NB_ERR_RANGE, "%s: %s element %" PRId64 " is %g; expected %s", who,
                                name[k], j, (double)v[j],
                                k ? "a finite number > 0" : "a finite number");
    }
    return NB_OK;
}

/* X: f32 or f64 [N, D], D >= 1 (N >= 1 when need_rows). */
static nb_status check_features(const nb_tensor *X, const char *who, bool need_rows)
{
    char s[64];
    if (nb_dataset_check_tensor(X, "X") != NB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        return nb_error(NB_ERR_ARG, "%s: %s", who, msg);
    }
    bool f32_only = need_rows; /* a data set's features are f32 */
    if ((X->dtype != NB_F32 && (f32_only || X->dtype != NB_F64)) || X->ndim != 2 ||
        X->shape[1] < 1 || X->shape[0] < (need_rows ? 1 : 0))
        return nb_error(NB_ERR_SHAPE, "%s: X is %s %s; expected %s [N, D] with %sD >= 1", who,
                        nb_dtype_name(X->dtype), nb_shape_str(X, s, sizeof s),
                        f32_only ? "f32" : "f32 or f64", need_rows ? "N >= 1 and " : "");
    return NB_OK;
}

static double element(const nb_tensor *X, int64_t k)
{
    return X->dtype == NB_F32 ? (double)((const float *)X->data)[k] : ((const double *)X->data)[k];
}

/* Every standardised element must be finite in X's dtype: checked before anything is written. */
static nb_status check_result(const nb_tensor *X, const nb_tensor *mean, const nb_tensor *std,
                              const char *who, const char *what)
{
    int64_t N = X->shape[0], D = X->shape[1];
    const float *m = mean->data, *sd = std->data;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++) {
            double x = element(X, i * D + j), v = (x - (double)m[j]) / (double)sd[j];
            if (!isfinite(X->dtype == NB_F32 ? (double)(float)v : v))
                return nb_error(NB_ERR_RANGE,
                                "%s: %s row %" PRId64 ", column %" PRId64 " is %g; standardised "
                                "with mean %g and std %g it is %g, beyond the %s range",
                                who, what, i, j, x, (double)m[j], (double)sd[j], v,
                                nb_dtype_name(X->dtype));
        }
    return NB_OK;
}

/* X [N, D] <- (X - mean) / std, in place (checked first by check_result). */
static void apply(nb_tensor *X, const nb_tensor *mean, const nb_tensor *std)
{
    int64_t N = X->shape[0], D = X->shape[1];
    const float *m = mean->data, *sd = std->data;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++) {
            int64_t k = i * D + j;
            double v = (element(X, k) - (double)m[j]) / (double)sd[j];
            if (X->dtype == NB_F32)
                ((float *)X->data)[k] = (float)v;
            else
                ((double *)X->data)[k] = v;
        }
}

nb_status nb_standardize_features(nb_tensor *X, const nb_tensor *mean, const nb_tensor *std)
{
    const char *who = "nb_standardize_features";
    nb_status s = check_features(X, who, false);
    if (s == NB_OK)
        s = check_stats(mean, std, X->shape[1], who);
    if (s == NB_OK)
        s = check_result(X, mean, std, who, "X");
    if (s == NB_OK)
        apply(X, mean, std);
    return s;
}

/* A data set that can be standardised: f32 X [N, D] and not standardised yet. */
static nb_status check_dataset(const nb_dataset *ds, const char *who, const char *what)
{
    if (!ds)
        return nb_error(NB_ERR_ARG, "%s: %s is NULL", who, what);
    if (ds->mean || ds->std)
        return nb_error(NB_ERR_STATE,
                        "%s: %s is already standardised (its mean and std are set); "
                        "standardising twice would distort it",
                        who, what);
    char w[96];
    snprintf(w, sizeof w, "%s: %s", who, what);
    return check_features(ds->X, w, true);
}

/* Copies of mean and std for a data set (both or neither). */
static nb_status copy_stats(const nb_tensor *mean, const nb_tensor *std, nb_tensor **m,
                            nb_tensor **s)
{
    *m = nb_tensor_clone(mean);
    *s = *m ? nb_tensor_clone(std) : NULL;
    if (*m && *s)
        return NB_OK;
    nb_tensor_free(*m);
    *m = NULL;
    return nb_last_status();
}

nb_status nb_dataset_apply_standardize(nb_dataset *ds, const nb_tensor *mean, const nb_tensor *std)
{
    const char *who = "nb_dataset_apply_standardize";
    nb_status s = check_dataset(ds, who, "ds");
    if (s == NB_OK)
        s = check_stats(mean, std, ds->X->shape[1], who);
    if (s == NB_OK)
        s = check_result(ds->X, mean, std, who, "X");
    nb_tensor *m = NULL, *sd = NULL;
    if (s == NB_OK)
        s = copy_stats(mean, std, &m, &sd);
    if (s != NB_OK)
        return s;
    apply(ds->X, mean, std);
    ds->mean = m;
    ds->std = sd;
    return NB_OK;
}

/* mean and std (new f32 [D]) of the columns of X f32 [N, D], N >= 1: see the top of the file. */
static nb_status measure(const nb_tensor *X, nb_tensor **mean, nb_tensor **std)
{
    int64_t N = X->shape[0], D = X->shape[1], sd[1] = {D};
    const float *x = X->data;
    double *acc = calloc((size_t)D, 2 * sizeof *acc); /* sums [D], then squared deviations [D] */
    nb_status s = NB_OK;
    *mean = *std = NULL;
    if (!acc)
        return nb_error(NB_ERR_NOMEM,
                        "nb_dataset_standardize: out of memory for %" PRId64 " feature sums", D);
    if ((s = nb_tensor_new(NB_F32, 1, sd, mean)) != NB_OK ||
        (s = nb_tensor_new(NB_F32, 1, sd, std)) != NB_OK) {
        nb_tensor_free(*mean);
        *mean = NULL;
        free(acc);
        return s;
    }
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++)
            acc[j] += x[i * D + j];
    for (int64_t j = 0; j < D; j++)
        acc[j] /= (double)N;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++) {
            double d = x[i * D + j] - acc[j];
            acc[D + j] += d * d;
        }
    float *m = (*mean)->data, *sdv = (*std)->data;
    for (int64_t j = 0; j < D; j++) {
        m[j] = (float)acc[j];
        sdv[j] = (float)sqrt(acc[D + j] / (double)N);
        if (!(sdv[j] >= FLT_MIN)) /* a constant feature */
            sdv[j] = 1.0f;
    }
    free(acc);
    return NB_OK;
}

nb_status nb_dataset_standardize(nb_dataset *train, nb_dataset *val, nb_dataset *test)
{
    const char *who = "nb_dataset_standardize";
    nb_dataset *ds[3] = {train, val, test};
    const char *name[3] = {"train", "val", "test"};
    nb_status s = check_dataset(train, who, "train");
    for (int k = 1; k < 3 && s == NB_OK; k++) {
        if (!ds[k])
            continue;
        if (ds[k] == train || (k == 2 && ds[k] == val))
            return nb_error(NB_ERR_ARG, "%s: %s is the same data set as %s", who, name[k],
                            ds[k] == train ? "train" : "val");
        if ((s = check_dataset(ds[k], who, name[k])) == NB_OK &&
            ds[k]->X->shape[1] != train->X->shape[1])
            return nb_error(NB_ERR_SHAPE, "%s: %s has %" PRId64 " features but train has %" PRId64,
                            who, name[k], ds[k]->X->shape[1], train->X->shape[1]);
    }
    nb_tensor *mean = NULL, *std = NULL, *copies[3][2] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    if (s == NB_OK)
        s = measure(train->X, &mean, &std);
    for (int k = 0; k < 3 && s == NB_OK; k++)
        if (ds[k])
            s = check_result(ds[k]->X, mean, std, who, name[k]);
    for (int k = 1; k < 3 && s == NB_OK; k++)
        if (ds[k])
            s = copy_stats(mean, std, &copies[k][0], &copies[k][1]);
    if (s != NB_OK) {
        for (int k = 1; k < 3; k++) {
            nb_tensor_free(copies[k][0]);
            nb_tensor_free(copies[k][1]);
        }
        nb_tensor_free(mean);
        nb_tensor_free(std);
        return s;
    }
    copies[0][0] = mean;
    copies[0][1] = std;
    for (int k = 0; k < 3; k++)
        if (ds[k]) {
            apply(ds[k]->X, mean, std);
            ds[k]->mean = copies[k][0];
            ds[k]->std = copies[k][1];
        }
    return NB_OK;
}
