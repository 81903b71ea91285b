/* checkpoint.c - an MLP and its optimiser state in a safetensors file. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nn.h"
#include "nabla/optim.h"
#include "nabla/checkpoint.h"
#include "nabla/safetensors.h"
#include "../tensor/tensor_internal.h"
#include "checkpoint_internal.h"

#define MAX_T (2 * NB_MLP_MAX_LAYERS * 3 + 2) /* + input.mean, input.std */
#define NAME_LEN 160

/* Every element of a weight tensor must be finite, read as the f32 the model holds (an f64 of
 * 1e300 in a file is finite there but inf once loaded). */
static nb_status check_finite(const char *path, const char *who, const char *name,
                              const nb_tensor *t)
{
    for (int64_t k = 0; k < t->numel; k++) {
        double v = nb_tensor_get(t, k);
        if (!isfinite((float)v))
            return nb_error(
                NB_ERR_FORMAT, "%s%s: tensor '%s' element %lld is %g%s; weights must be finite",
                who, path, name, (long long)k, v, isfinite(v) ? " (beyond the f32 range)" : "");
    }
    return NB_OK;
}

nb_status nb_model_save(const char *path, const nb_mlp *m, const nb_model_info *info,
                        const nb_optim *optim)
{
    return nb_model_save_ex(path, m, info, optim, NULL);
}

/* Refuses what nb_model_load would reject, so a good checkpoint at path is never replaced by
 * one that cannot be read back. */
static nb_status check_saveable(const char *path, const nb_mlp *m, const nb_model_info *info,
                                const nb_optim *optim)
{
    if (m->n_layers < 1 || m->n_layers > NB_MLP_MAX_LAYERS)
        return nb_error(NB_ERR_ARG, "nb_model_save: %s: the model has %d layers (expected 1 to %d)",
                        path, m->n_layers, NB_MLP_MAX_LAYERS);
    if ((unsigned)m->act > NB_ACT_LEAKY_RELU)
        return nb_error(NB_ERR_ARG, "nb_model_save: %s: unknown activation %d", path, (int)m->act);
    for (int i = 0; i < m->n_layers; i++) {
        const nb_tensor *w = m->weight[i], *b = m->bias[i];
        if (!w || !b || w->ndim != 2 || b->ndim != 1 || w->shape[0] != m->sizes[i + 1] ||
            w->shape[1] != m->sizes[i] || b->shape[0] != m->sizes[i + 1])
            return nb_error(NB_ERR_ARG,
                            "nb_model_save: %s: layer %d's weight and bias do not match sizes "
                            "%lld -> %lld",
                            path, i, (long long)m->sizes[i], (long long)m->sizes[i + 1]);
    }
    if (!isfinite(info->input_scale) || !isfinite(info->input_shift) || info->n_classes < 1 ||
        info->n_classes > m->sizes[m->n_layers])
        return nb_error(NB_ERR_ARG,
                        "nb_model_save: %s: info input_scale %g and input_shift %g must be finite "
                        "and n_classes %lld in [1, %lld] (the model's outputs)",
                        path, info->input_scale, info->input_shift, (long long)info->n_classes,
                        (long long)m->sizes[m->n_layers]);
    if (info->epoch < 0 || info->epoch > NB_CHECKPOINT_MAX_COUNT)
        return nb_error(NB_ERR_ARG, "nb_model_save: %s: info epoch %lld outside [0, %lld]", path,
                        (long long)info->epoch, (long long)NB_CHECKPOINT_MAX_COUNT);
    if (!memchr(info->dataset, '\0', sizeof info->dataset))
        return nb_error(NB_ERR_ARG,
                        "nb_model_save: %s: info dataset is not a string of at most %d bytes", path,
                        NB_MODEL_DATASET_MAX - 1);
    if (!(m->dropout >= 0 && m->dropout < 1))
        return nb_error(NB_ERR_ARG, "nb_model_save: %s: dropout %g outside [0, 1)", path,
                        m->dropout);
    if (nb_ckpt_input_check_save_(path, info, m->sizes[0]) != NB_OK)
        return NB_ERR_ARG;
    for (int i = 0; i < nb_mlp_param_count(m); i++) {
        char name[NAME_LEN];
        const nb_tensor *p = nb_mlp_param(m, i, name, sizeof name);
        if (check_finite(path, "nb_model_save: ", name, p) != NB_OK)
            return NB_ERR_ARG;
    }
    if (optim) {
        if (nb_optim_step_count(optim) < 0 || nb_optim_step_count(optim) > NB_OPTIM_MAX_STEPS)
            return nb_error(NB_ERR_ARG, "nb_model_save: %s: optimiser step %lld outside [0, %lld]",
                            path, (long long)nb_optim_step_count(optim),
                            (long long)NB_OPTIM_MAX_STEPS);
        for (int i = 0; i < nb_optim_state_count(optim); i++)
            if (nb_optim_state_check(optim, i, nb_optim_state_tensor(optim, i, NULL)) != NB_OK) {
                char msg[768];
                snprintf(msg, sizeof msg, "%s", nb_last_error());
                return nb_error(NB_ERR_ARG, "nb_model_save: %s: %s", path, msg);
            }
    }
    return NB_OK;
}

/* The tensors a checkpoint holds: the model's parameters, then the optimiser's state as
 * "optim.<name>"; names[] holds the names. Returns the count. */
static int collect_tensors(const nb_mlp *m, const nb_optim *optim, char names[MAX_T][NAME_LEN],
                           nb_named_tensor ts[MAX_T])
{
    int n = 0, np = nb_mlp_param_count(m);
    for (int i = 0; i < np; i++) {
        ts[n].tensor = nb_mlp_param(m, i, names[n], NAME_LEN);
        ts[n].name = names[n];
        n++;
    }
    int ns = optim ? nb_optim_state_count(optim) : 0;
    for (int i = 0; i < ns && n < MAX_T - 2; i++) { /* 2: room for the standardisation */
        const char *buf;
        ts[n].tensor = nb_optim_state_tensor(optim, i, &buf);
        snprintf(names[n], NAME_LEN, "optim.%s", buf);
        ts[n].name = names[n];
        n++;
    }
    return n;
}

nb_status nb_model_save_ex(const char *path, const nb_mlp *m, const nb_model_info *info,
                           const nb_optim *optim, const char *const *extra)
{
    if (!path || !m || !info)
        return nb_error(NB_ERR_ARG, "%s: %s is NULL", extra ? "nb_model_save_ex" : "nb_model_save",
                        !path ? "path"
                        : !m  ? "m"
                              : "info");
    nb_status st = check_saveable(path, m, info, optim);
    if (st != NB_OK)
        return st;
    char names[MAX_T][NAME_LEN];
    nb_named_tensor ts[MAX_T];
    int n = collect_tensors(m, optim, names, ts);
    if (info->input_mean) { /* checked: both are there */
        ts[n++] = (nb_named_tensor){NB_CKPT_INPUT_MEAN, info->input_mean};
        ts[n++] = (nb_named_tensor){NB_CKPT_INPUT_STD, info->input_std};
    }
    char sizes[(NB_MLP_MAX_LAYERS + 1) * 21] = "", num[8][64]; /* 20 digits and a comma each */
    for (int i = 0; i <= m->n_layers; i++)
        snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%lld", i ? "," : "",
                 (long long)m->sizes[i]);
    snprintf(num[0], 64, "%.17g", info->input_scale);
    snprintf(num[1], 64, "%.17g", info->input_shift);
    snprintf(num[2], 64, "%lld", (long long)info->n_classes);
    snprintf(num[3], 64, "%lld", (long long)info->epoch);
    snprintf(num[4], 64, "%.17g", m->dropout);
    const char *meta[34 + 2 * NB_CHECKPOINT_MAX_EXTRA + 1] = {
        "format",      "nabla-mlp", "nabla_version", NABLA_VERSION,
        "sizes",       sizes,       "activation",    nb_activation_name(m->act),
        "dropout",     num[4],      "n_classes",     num[2],
        "input_scale", num[0],      "input_shift",   num[1],
        "epoch",       num[3],      "dataset",       info->dataset};
    int k = 20;
    if (optim) {
        snprintf(num[5], 64, "%lld", (long long)nb_optim_step_count(optim));
        snprintf(num[6], 64, "%.17g", nb_optim_lr(optim));
        meta[k++] = "optim";
        meta[k++] = nb_optim_kind_name(nb_optim_get_config(optim)->kind);
        meta[k++] = "optim_step";
        meta[k++] = num[5];
        meta[k++] = "lr";
        meta[k++] = num[6];
    }
    for (int e = 0; extra && extra[e] && extra[e + 1]; e += 2) {
        if (e >= 2 * NB_CHECKPOINT_MAX_EXTRA)
            return nb_error(NB_ERR_ARG, "nb_model_save: %s: more than %d extra metadata pairs",
                            path, NB_CHECKPOINT_MAX_EXTRA);
        meta[k++] = extra[e];
        meta[k++] = extra[e + 1];
    }
    char *names_json = NULL;
    if ((st = nb_ckpt_names_encode_(path, info, &names_json)) != NB_OK)
        return st;
    if (names_json) {
        meta[k++] = "class_names";
        meta[k++] = names_json;
    }
    meta[k] = NULL;
    st = nb_safetensors_save(path, ts, n, meta);
    free(names_json);
    return st;
}

/* Prefixes the message a nb_safetensors_meta_* call left with the file name. */
static bool meta_ok(nb_status st, const char *path)
{
    if (st == NB_OK)
        return true;
    char msg[768];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    nb_error(NB_ERR_FORMAT, "%s: %s", path, msg);
    return false;
}

/* What a checkpoint's metadata says, checked before anything is allocated or restored. */
typedef struct ckpt_meta {
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    int n_sizes;
    nb_activation act;
    double scale, shift, dropout;
    int64_t ncls, epoch, step;
    const char *dataset; /* inside the file's metadata, or NULL */
} ckpt_meta;

/* "format" and the layer sizes "784,256,10". */
static bool read_architecture(const nb_safetensors *st, const char *path, ckpt_meta *c)
{
    const char *fmt = nb_safetensors_meta(st, "format");
    if (!fmt || strcmp(fmt, "nabla-mlp")) {
        nb_error(NB_ERR_FORMAT, "%s: not a nabla model (metadata 'format' is %s%s%s)", path,
                 fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
        return false;
    }
    c->n_sizes = 0;
    const char *s = nb_safetensors_meta(st, "sizes");
    for (const char *p = s; p && *p;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 1 || (*end && *end != ',') ||
            c->n_sizes == NB_MLP_MAX_LAYERS + 1) { /* also: more layers than an MLP can have */
            c->n_sizes = -1;
            break;
        }
        c->sizes[c->n_sizes++] = v;
        p = *end ? end + 1 : end;
    }
    if (!s || c->n_sizes < 2) {
        nb_error(NB_ERR_FORMAT, "%s: metadata 'sizes' is %s; expected layer sizes like 784,256,10",
                 path, s ? s : "missing");
        return false;
    }
    const char *act = nb_safetensors_meta(st, "activation");
    if (!nb_activation_parse(act, &c->act)) {
        nb_error(NB_ERR_FORMAT, "%s: unknown activation '%s'", path, act ? act : "(missing)");
        return false;
    }
    return true;
}

/* Every scalar: input scaling, classes, epoch, dropout, dataset, and the optimiser's. */
static bool read_scalars(const nb_safetensors *st, const char *path, const nb_optim *optim,
                         ckpt_meta *c)
{
    c->dropout = 0;
    c->epoch = c->step = 0;
    if (!meta_ok(nb_safetensors_meta_number(st, "input_scale", -DBL_MAX, DBL_MAX, &c->scale),
                 path) ||
        !meta_ok(nb_safetensors_meta_number(st, "input_shift", -DBL_MAX, DBL_MAX, &c->shift),
                 path) ||
        !meta_ok(nb_safetensors_meta_int(st, "n_classes", 1, c->sizes[c->n_sizes - 1], &c->ncls),
                 path))
        return false;
    /* epoch and dropout are optional (files from before they were recorded) but checked if there */
    if (nb_safetensors_meta(st, "epoch") &&
        !meta_ok(nb_safetensors_meta_int(st, "epoch", 0, NB_CHECKPOINT_MAX_COUNT, &c->epoch), path))
        return false;
    if (nb_safetensors_meta(st, "dropout") &&
        !meta_ok(nb_safetensors_meta_number(st, "dropout", -DBL_MAX, DBL_MAX, &c->dropout), path))
        return false;
    if (!(c->dropout >= 0 && c->dropout < 1)) {
        nb_error(NB_ERR_FORMAT, "%s: metadata 'dropout' is '%s'; expected a number in [0, 1)", path,
                 nb_safetensors_meta(st, "dropout"));
        return false;
    }
    c->dataset = nb_safetensors_meta(st, "dataset");
    if (c->dataset && strlen(c->dataset) >= NB_MODEL_DATASET_MAX) {
        nb_error(NB_ERR_FORMAT,
                 "%s: metadata 'dataset' is %zu bytes; the limit is %d (two paths of PATH_MAX)",
                 path, strlen(c->dataset), NB_MODEL_DATASET_MAX - 1);
        return false;
    }
    if (!optim)
        return true;
    const char *kind = nb_safetensors_meta(st, "optim");
    const char *want = nb_optim_kind_name(nb_optim_get_config(optim)->kind);
    if (!kind || strcmp(kind, want) || !nb_safetensors_meta(st, "optim_step")) {
        nb_error(NB_ERR_FORMAT, "%s: holds no state for optimiser '%s'", path, want);
        return false;
    }
    double lr;
    return meta_ok(nb_safetensors_meta_int(st, "optim_step", 0, NB_OPTIM_MAX_STEPS, &c->step),
                   path) &&
           (!nb_safetensors_meta(st, "lr") ||
            meta_ok(nb_safetensors_meta_number(st, "lr", 0, DBL_MAX, &lr), path));
}

/* The tensors must have the shapes the sizes say, checked before the model is allocated (a
 * corrupt 'sizes' must not make us allocate more than the file holds), and finite values. */
static bool check_layer_tensors(const nb_safetensors *st, const char *path, const ckpt_meta *c)
{
    for (int i = 0; i + 1 < c->n_sizes; i++)
        for (int k = 0; k < 2; k++) {
            char name[NAME_LEN], a[64];
            snprintf(name, sizeof name, "layers.%d.%s", i, k ? "bias" : "weight");
            const nb_tensor *t = nb_safetensors_get(st, name);
            if (!t) {
                nb_error(NB_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
                return false;
            }
            long long out = (long long)c->sizes[i + 1], in = (long long)c->sizes[i];
            bool ok = k ? t->ndim == 1 && t->shape[0] == out
                        : t->ndim == 2 && t->shape[0] == out && t->shape[1] == in;
            if (!ok || !nb_dtype_is_float(t->dtype)) {
                if (k)
                    nb_error(NB_ERR_FORMAT,
                             "%s: tensor '%s' is %s %s; the architecture needs f32 [%lld]", path,
                             name, nb_dtype_name(t->dtype), nb_shape_str(t, a, sizeof a), out);
                else
                    nb_error(NB_ERR_FORMAT,
                             "%s: tensor '%s' is %s %s; the architecture needs f32 [%lld, %lld]",
                             path, name, nb_dtype_name(t->dtype), nb_shape_str(t, a, sizeof a), out,
                             in);
                return false;
            }
            if (check_finite(path, "", name, t) != NB_OK)
                return false;
        }
    return true;
}

/* Copies every parameter of m from the file (converted to m's dtype). */
static bool restore_params(const nb_safetensors *st, const char *path, nb_mlp *m)
{
    for (int i = 0; i < nb_mlp_param_count(m); i++) {
        char name[NAME_LEN];
        nb_tensor *p = nb_mlp_param(m, i, name, sizeof name);
        const nb_tensor *t = nb_safetensors_get(st, name);
        if (!t) {
            nb_error(NB_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
            return false;
        }
        if (!nb_shape_equal(t, p) || !nb_dtype_is_float(t->dtype)) {
            char a[64], b[64];
            nb_error(NB_ERR_FORMAT, "%s: tensor '%s' is %s %s; the architecture needs f32 %s", path,
                     name, nb_dtype_name(t->dtype), nb_shape_str(t, a, sizeof a),
                     nb_shape_str(p, b, sizeof b));
            return false;
        }
        for (int64_t k = 0; k < p->numel; k++)
            nb_tensor_set(p, k, nb_tensor_get(t, k));
    }
    return true;
}

/* Two passes: every state tensor is checked (presence, shape, dtype, values) before any is
 * overwritten, so a failed load leaves the caller's optimiser as it was. */
static bool restore_optim(const nb_safetensors *st, const char *path, nb_optim *optim, int64_t step)
{
    int ns = nb_optim_state_count(optim);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ns; i++) {
            const char *buf;
            nb_tensor *dst = nb_optim_state_tensor(optim, i, &buf);
            char name[NAME_LEN];
            snprintf(name, sizeof name, "optim.%s", buf);
            const nb_tensor *t = nb_safetensors_get(st, name);
            if (!t || !nb_shape_equal(t, dst) || t->dtype != dst->dtype) {
                nb_error(NB_ERR_FORMAT,
                         "%s: optimiser tensor '%s' is missing or has the wrong shape", path, name);
                return false;
            }
            if (pass == 0 && !meta_ok(nb_optim_state_check(optim, i, t), path))
                return false;
            if (pass == 1)
                memcpy(dst->data, t->data, (size_t)t->numel * nb_dtype_size(t->dtype));
        }
    nb_optim_set_step_count(optim, step);
    return true;
}

nb_mlp *nb_model_load(const char *path, nb_model_info *info, nb_optim *optim)
{
    if (!path || !info) {
        nb_error(NB_ERR_ARG, "nb_model_load: %s is NULL", !path ? "path" : "info");
        return NULL;
    }
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) {
        nb_error_in("nb_model_load", nb_last_status());
        return NULL;
    }
    nb_mlp *m = NULL;
    nb_tensor *mean = NULL, *std = NULL;
    char **names = NULL;
    ckpt_meta c;
    if (read_architecture(st, path, &c) && read_scalars(st, path, optim, &c) &&
        check_layer_tensors(st, path, &c) &&
        nb_ckpt_input_read_(st, path, c.sizes[0], &mean, &std) &&
        nb_ckpt_names_read_(st, path, c.ncls, &names))
        m = nb_mlp_new(c.sizes, c.n_sizes, c.act, NB_INIT_DEFAULT, c.dropout, NB_F32, 0);
    if (m && (!restore_params(st, path, m) || (optim && !restore_optim(st, path, optim, c.step)))) {
        nb_mlp_free(m);
        m = NULL;
    }
    if (m) {
        nb_mlp_set_training(m, false);
        info->input_scale = c.scale;
        info->input_shift = c.shift;
        info->n_classes = c.ncls;
        info->epoch = c.epoch;
        snprintf(info->dataset, sizeof info->dataset, "%s", c.dataset ? c.dataset : "");
        info->input_mean = mean;
        info->input_std = std;
        info->class_names = names;
    } else {
        nb_tensor_free(mean);
        nb_tensor_free(std);
        nb_ckpt_names_free_(names, c.ncls);
    }
    nb_safetensors_free(st);
    return m;
}

nb_status nb_model_load_into(const char *path, nb_mlp *m, nb_model_info *info, nb_optim *optim)
{
    if (!path || !m || !info)
        return nb_error(NB_ERR_ARG, "nb_model_load_into: %s is NULL",
                        !path ? "path"
                        : !m  ? "m"
                              : "info");
    nb_model_info tmp;
    nb_mlp *l = nb_model_load(path, &tmp, NULL); /* check the architecture before touching m */
    if (!l)
        return nb_error_in("nb_model_load_into", nb_last_status());
    bool same = l->n_layers == m->n_layers && l->act == m->act;
    for (int i = 0; same && i <= m->n_layers; i++)
        same = l->sizes[i] == m->sizes[i];
    if (!same || m->dtype != NB_F32) {
        nb_mlp_free(l);
        nb_model_info_free(&tmp);
        return nb_error(NB_ERR_FORMAT,
                        "%s: the checkpoint's architecture differs from the model "
                        "it is loaded into (sizes, activation or dtype)",
                        path);
    }
    if (optim) { /* restores the optimiser state only if all of it is there */
        nb_mlp_free(l);
        nb_model_info_free(&tmp);
        l = nb_model_load(path, &tmp, optim);
        if (!l)
            return nb_last_status();
    }
    for (int i = 0; i < nb_mlp_param_count(m); i++) {
        nb_tensor *dst = nb_mlp_param(m, i, NULL, 0), *src = nb_mlp_param(l, i, NULL, 0);
        memcpy(dst->data, src->data, (size_t)dst->numel * nb_dtype_size(dst->dtype));
    }
    nb_mlp_free(l);
    *info = tmp;
    return NB_OK;
}
