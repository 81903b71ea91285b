/* eval_checkpoint.c - a saved model evaluated on the raw rows of a data set: the checkpoint's
 * per-feature standardisation, when it records one, is applied to a copy of the rows first
 * (nabla/eval.h, nb_evaluate_checkpoint). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nabla/checkpoint.h"
#include "nabla/dataset.h"
#include "nabla/eval.h"
#include "../tensor/tensor_internal.h"

static bool same_values(const nb_tensor *a, const nb_tensor *b)
{
    return a->dtype == b->dtype && a->numel == b->numel &&
           !memcmp(a->data, b->data, (size_t)a->numel * nb_dtype_size(a->dtype));
}

/* The features to feed the model: data's own X, or (*copy, caller-freed) a copy standardised
 * with the checkpoint's statistics. Refuses data prepared otherwise than the model's training
 * set: another scale or shift, or another standardisation. */
static nb_status model_inputs(const char *path, const nb_model_info *info, const nb_dataset *data,
                              const nb_tensor **X, nb_tensor **copy)
{
    const char *fn = "nb_evaluate_checkpoint";
    *X = data->X;
    *copy = NULL;
    if (data->input_scale != info->input_scale || data->input_shift != info->input_shift)
        return nb_error(
            NB_ERR_ARG, "%s: data was scaled as raw * %g + %g but %s was trained on raw * %g + %g",
            fn, data->input_scale, data->input_shift, path, info->input_scale, info->input_shift);
    if (data->mean && data->std && info->input_mean && same_values(data->mean, info->input_mean) &&
        same_values(data->std, info->input_std))
        return NB_OK; /* already standardised as the model's training set */
    if (data->mean || data->std)
        return info->input_mean
                   ? nb_error(NB_ERR_ARG,
                              "%s: data is standardised with another mean and std than %s's "
                              "training set; pass the raw rows",
                              fn, path)
                   : nb_error(NB_ERR_ARG,
                              "%s: data is standardised but %s was trained on unstandardised "
                              "features; pass the raw rows",
                              fn, path);
    if (!info->input_mean)
        return NB_OK;
    if (!(*copy = nb_tensor_clone(data->X)))
        return nb_error_in(fn, nb_last_status());
    *X = *copy;
    return nb_error_in(fn, nb_standardize_features(*copy, info->input_mean, info->input_std));
}

nb_status nb_evaluate_checkpoint(const char *path, const nb_dataset *data, nb_eval_result *res)
{
    const char *fn = "nb_evaluate_checkpoint";
    if (res)
        memset(res, 0, sizeof *res);
    if (!path || !data || !res)
        return nb_error(NB_ERR_ARG, "%s: %s is NULL", fn, !path ? "path" : !data ? "data" : "res");
    if (!data->X || !data->y)
        return nb_error(NB_ERR_ARG, "%s: data %s is NULL", fn, !data->X ? "X" : "y");
    nb_model_info info;
    memset(&info, 0, sizeof info);
    nb_mlp *m = nb_model_load(path, &info, NULL);
    if (!m)
        return nb_error_in(fn, nb_last_status());
    const nb_tensor *X = NULL;
    nb_tensor *copy = NULL;
    nb_graph *g = NULL;
    nb_status s = NB_OK;
    if (data->X->ndim != 2 || data->X->shape[1] != m->sizes[0])
        s = nb_error(NB_ERR_SHAPE, "%s: %s takes %lld features but data X has %lld", fn, path,
                     (long long)m->sizes[0], data->X->ndim == 2 ? (long long)data->X->shape[1] : 0);
    else if (data->n_classes > info.n_classes)
        s = nb_error(NB_ERR_SHAPE, "%s: data has %lld classes but %s has %lld", fn,
                     (long long)data->n_classes, path, (long long)info.n_classes);
    if (s == NB_OK)
        s = model_inputs(path, &info, data, &X, &copy);
    if (s == NB_OK && !(g = nb_graph_new()))
        s = nb_error_in(fn, nb_last_status());
    if (s == NB_OK)
        s = nb_evaluate(g, nb_forward_mlp, m, X, data->y, info.n_classes, 1000, -100, res);
    nb_graph_free(g);
    nb_tensor_free(copy);
    nb_mlp_free(m);
    nb_model_info_free(&info);
    return s;
}
