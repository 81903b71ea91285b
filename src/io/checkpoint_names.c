/* checkpoint_names.c - the class names a checkpoint records: metadata "class_names", a JSON array
 * of n_classes strings (["T-shirt/top","Trouser",...]). A checkpoint without it has no names (as
 * before they existed); one with it is checked like any other field of a possibly crafted file. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "nabla/checkpoint.h"
#include "nabla/dataset.h"
#include "nabla/safetensors.h"
#include "../tensor/fileread.h"
#include "checkpoint_internal.h"
#include "safetensors_internal.h"

/* 1 to NB_CLASS_NAME_MAX - 1 bytes, none of them a control byte. */
static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= NB_CLASS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return nb_st_utf8_valid(s); /* the safetensors header is JSON text */
}

nb_status nb_ckpt_names_encode_(const char *path, const nb_model_info *info, char **out)
{
    *out = NULL;
    if (!info->class_names)
        return NB_OK;
    if (info->n_classes > NB_CKPT_MAX_NAMED_CLASSES)
        return nb_error(NB_ERR_ARG,
                        "nb_model_save: %s: class names for %lld classes; the limit is %d", path,
                        (long long)info->n_classes, NB_CKPT_MAX_NAMED_CLASSES);
    for (int64_t k = 0; k < info->n_classes; k++)
        if (!name_ok(info->class_names[k]))
            return nb_error(NB_ERR_ARG,
                            "nb_model_save: %s: info class_names[%lld] is %s; expected 1 to %d "
                            "printable bytes of UTF-8",
                            path, (long long)k,
                            info->class_names[k] ? "empty, too long, not printable or not UTF-8"
                                                 : "NULL",
                            NB_CLASS_NAME_MAX - 1);
    cJSON *a =
        cJSON_CreateStringArray((const char *const *)info->class_names, (int)info->n_classes);
    *out = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    if (!*out)
        return nb_error(NB_ERR_NOMEM, "nb_model_save: %s: out of memory for the class names", path);
    return NB_OK;
}

/* Fills names[0..n) from the parsed array, checking each; false with the error set. */
static bool take_names(const cJSON *a, const char *path, int64_t n, char **names)
{
    int64_t k = 0;
    for (const cJSON *e = a->child; e && k < n; e = e->next, k++) {
        char shown[80];
        const char *v = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!name_ok(v)) {
            nb_error(NB_ERR_FORMAT,
                     "%s: metadata 'class_names' element %lld is %s; expected a string of 1 to "
                     "%d printable bytes of UTF-8",
                     path, (long long)k,
                     !v ? "not a string" : nb_printable(shown, sizeof shown, v, strlen(v)),
                     NB_CLASS_NAME_MAX - 1);
            return false;
        }
        if (!(names[k] = strdup(v))) {
            nb_error(NB_ERR_NOMEM, "%s: out of memory for the class names", path);
            return false;
        }
    }
    return true;
}

bool nb_ckpt_names_read_(const nb_safetensors *st, const char *path, int64_t n_classes, char ***out)
{
    *out = NULL;
    const char *text = nb_safetensors_meta(st, "class_names");
    if (!text)
        return true;
    size_t len = strlen(text);
    if (len > (size_t)NB_CKPT_MAX_NAMED_CLASSES * 6 * NB_CLASS_NAME_MAX) {
        nb_error(NB_ERR_FORMAT, "%s: metadata 'class_names' is %zu bytes; the limit is %zu", path,
                 len, (size_t)NB_CKPT_MAX_NAMED_CLASSES * 6 * NB_CLASS_NAME_MAX);
        return false;
    }
    cJSON *a = cJSON_ParseWithLength(text, len);
    int64_t count = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    char shown[64];
    if (count != n_classes || n_classes < 1) {
        if (count < 0)
            nb_error(NB_ERR_FORMAT,
                     "%s: metadata 'class_names' is '%s'; expected a JSON array of n_classes = "
                     "%lld strings",
                     path, nb_printable(shown, sizeof shown, text, len), (long long)n_classes);
        else
            nb_error(NB_ERR_FORMAT,
                     "%s: metadata 'class_names' holds %lld names; expected n_classes = %lld", path,
                     (long long)count, (long long)n_classes);
        cJSON_Delete(a);
        return false;
    }
    char **names = calloc((size_t)n_classes, sizeof *names);
    bool ok = names && take_names(a, path, n_classes, names);
    if (!names)
        nb_error(NB_ERR_NOMEM, "%s: out of memory for the class names", path);
    cJSON_Delete(a);
    if (!ok) {
        for (int64_t k = 0; names && k < n_classes; k++)
            free(names[k]);
        free(names);
        return false;
    }
    *out = names;
    return true;
}

void nb_ckpt_names_free_(char **names, int64_t n)
{
    for (int64_t k = 0; names && k < n; k++)
        free(names[k]);
    free(names);
}
