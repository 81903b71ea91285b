/* checkpoint_input.c - the per-feature standardisation a checkpoint records: tensors
 * "input.mean" and "input.std", f32 [D] with D the model's inputs. A model is fed
 * x' = (raw * input_scale + input_shift - mean) / std. A checkpoint without them has no
 * standardisation (as before they existed). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla/checkpoint.h"
#include "nabla/safetensors.h"
#include "../tensor/tensor_internal.h"
#include "checkpoint_internal.h"

void nb_model_info_free(nb_model_info *info)
{
    if (!info)
        return;
    nb_tensor_free(info->input_mean);
    nb_tensor_free(info->input_std);
    info->input_mean = info->input_std = NULL;
    nb_ckpt_names_free_(info->class_names, info->n_classes);
    info->class_names = NULL;
}

/* The first element of t (any float dtype) that is not a finite f32, or (is_std) not > 0 as an
 * f32; -1 when every element is good. */
static int64_t first_bad(const nb_tensor *t, bool is_std, double *value)
{
    for (int64_t k = 0; k < t->numel; k++) {
        double v = nb_tensor_get(t, k);
        float f = (float)v;
        if (!isfinite(v) || !isfinite(f) || (is_std && !(f > 0))) {
            *value = v;
            return k;
        }
    }
    return -1;
}

static const char *limit_of(bool is_std)
{
    return is_std ? "a std must be finite and > 0 (as an f32)" : "a mean must be a finite f32";
}

nb_status nb_ckpt_input_check_save_(const char *path, const nb_model_info *info, int64_t D)
{
    const nb_tensor *t[2] = {info->input_mean, info->input_std};
    const char *name[2] = {"input_mean", "input_std"};
    if (!t[0] && !t[1])
        return NB_OK;
    for (int k = 0; k < 2; k++) {
        char s[64];
        if (!t[k])
            return nb_error(NB_ERR_ARG,
                            "nb_model_save: %s: info %s is NULL but %s is set; give both or "
                            "neither",
                            path, name[k], name[1 - k]);
        if (nb_tensor_check_layout(t[k], NULL) != NB_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", nb_last_error());
            return nb_error(NB_ERR_ARG, "nb_model_save: %s: info %s: %s", path, name[k], msg);
        }
        if (t[k]->dtype != NB_F32 || t[k]->ndim != 1 || t[k]->shape[0] != D)
            return nb_error(NB_ERR_ARG,
                            "nb_model_save: %s: info %s is %s %s; the model's %lld inputs need "
                            "f32 [%lld]",
                            path, name[k], nb_dtype_name(t[k]->dtype),
                            nb_shape_str(t[k], s, sizeof s), (long long)D, (long long)D);
        double v;
        int64_t bad = first_bad(t[k], k == 1, &v);
        if (bad >= 0)
            return nb_error(NB_ERR_ARG, "nb_model_save: %s: info %s element %lld is %g; %s", path,
                            name[k], (long long)bad, v, limit_of(k == 1));
    }
    return NB_OK;
}

/* One of the two tensors, checked and converted to a new f32 [D]. */
static bool read_one(const nb_safetensors *st, const char *path, const char *name, bool is_std,
                     int64_t D, nb_tensor **out)
{
    const nb_tensor *t = nb_safetensors_get(st, name);
    char s[64];
    if (!t) {
        nb_error(NB_ERR_FORMAT,
                 "%s: tensor '%s' is missing but '%s' is there; a standardised "
                 "model needs both",
                 path, name, is_std ? NB_CKPT_INPUT_MEAN : NB_CKPT_INPUT_STD);
        return false;
    }
    if (!nb_dtype_is_float(t->dtype) || t->ndim != 1 || t->shape[0] != D) {
        nb_error(NB_ERR_FORMAT, "%s: tensor '%s' is %s %s; the model's %lld inputs need f32 [%lld]",
                 path, name, nb_dtype_name(t->dtype), nb_shape_str(t, s, sizeof s), (long long)D,
                 (long long)D);
        return false;
    }
    double v;
    int64_t bad = first_bad(t, is_std, &v);
    if (bad >= 0) {
        nb_error(NB_ERR_FORMAT, "%s: tensor '%s' element %lld is %g; %s", path, name,
                 (long long)bad, v, limit_of(is_std));
        return false;
    }
    *out = nb_tensor_to_dtype(t, NB_F32);
    return *out != NULL;
}

bool nb_ckpt_input_read_(const nb_safetensors *st, const char *path, int64_t D, nb_tensor **mean,
                         nb_tensor **std)
{
    *mean = *std = NULL;
    if (!nb_safetensors_get(st, NB_CKPT_INPUT_MEAN) && !nb_safetensors_get(st, NB_CKPT_INPUT_STD))
        return true;
    if (read_one(st, path, NB_CKPT_INPUT_MEAN, false, D, mean) &&
        read_one(st, path, NB_CKPT_INPUT_STD, true, D, std))
        return true;
    nb_tensor_free(*mean);
    *mean = NULL;
    return false;
}
