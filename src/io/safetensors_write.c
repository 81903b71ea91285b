/* safetensors_write.c - the safetensors writer: builds the header with cJSON (integers go in as
 * raw text, so they are printed exactly), pads it with spaces to a multiple of 8 as the reference
 * writer does, and writes through the one writer (tensor/fileio.h: temporary file, fsync, rename,
 * directory fsync). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "nabla/safetensors.h"
#include "../tensor/fileio.h"
#include "../tensor/tensor_internal.h"
#include "safetensors_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Writing.                                                                                   */

/* Appends the integer v to a cJSON array as raw text, so it prints exactly (cJSON's own numbers
 * are doubles). */
static bool add_uint(cJSON *array, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    cJSON *item = cJSON_CreateRaw(num);
    if (!item)
        return false;
    if (!cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Adds {"dtype": ..., "shape": [...], "data_offsets": [begin, end]} under name. */
static bool add_entry(cJSON *root, const char *name, const nb_tensor *x, uint64_t begin,
                      uint64_t end)
{
    cJSON *obj = cJSON_AddObjectToObject(root, name);
    if (!obj || !cJSON_AddStringToObject(obj, "dtype", nb_st_dtype_names[x->dtype]))
        return false;
    cJSON *shape = cJSON_AddArrayToObject(obj, "shape");
    if (!shape)
        return false;
    for (int i = 0; i < x->ndim; i++)
        if (!add_uint(shape, (uint64_t)x->shape[i]))
            return false;
    cJSON *offs = cJSON_AddArrayToObject(obj, "data_offsets");
    return offs && add_uint(offs, begin) && add_uint(offs, end);
}

/* Checks the tensors (names and headers) and the metadata pairs; *n_meta is their count. */
static nb_status check_args(const nb_named_tensor *tensors, int n, const char *const *meta,
                            int *n_meta)
{
    char nm[ST_SHOWN + 4];
    if (n < 0)
        return nb_error(NB_ERR_ARG, "tensor count %d is negative", n);
    if (n > 0 && !tensors)
        return nb_error(NB_ERR_ARG, "tensors is NULL but the count is %d", n);
    for (int i = 0; i < n; i++) {
        const char *name = tensors[i].name;
        if (!name)
            return nb_error(NB_ERR_ARG, "tensor %d has a NULL name", i);
        if (!name[0])
            return nb_error(NB_ERR_ARG, "tensor %d has an empty name", i);
        if (strcmp(name, "__metadata__") == 0)
            return nb_error(NB_ERR_ARG,
                            "tensor %d is named \"__metadata__\", which is reserved for metadata",
                            i);
        if (!nb_st_utf8_valid(name))
            return nb_error(NB_ERR_ARG, "tensor %d: name '%s' is not valid UTF-8", i,
                            nb_st_shown(nm, sizeof nm, name));
        nb_status s = nb_tensor_check_layout(tensors[i].tensor, NULL);
        if (s != NB_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", nb_last_error());
            return nb_error(s, "tensor '%s': %s", nb_st_shown(nm, sizeof nm, name), why);
        }
    }
    *n_meta = 0;
    while (meta && meta[2 * (size_t)*n_meta]) {
        const char *k = meta[2 * (size_t)*n_meta], *v = meta[2 * (size_t)*n_meta + 1];
        if (!v)
            return nb_error(NB_ERR_ARG,
                            "metadata key '%s' has no value (meta holds key, value pairs and "
                            "ends with a NULL key)",
                            nb_st_shown(nm, sizeof nm, k));
        if (!nb_st_utf8_valid(k) || !nb_st_utf8_valid(v))
            return nb_error(NB_ERR_ARG, "metadata '%s': %s is not valid UTF-8",
                            nb_st_shown(nm, sizeof nm, k),
                            nb_st_utf8_valid(k) ? "the value" : "the key");
        if (*n_meta == INT_MAX / 2)
            return nb_error(NB_ERR_ARG, "too many metadata pairs");
        (*n_meta)++;
    }
    return NB_OK;
}

/* Tensor names and metadata keys must each be unique. */
static nb_status check_unique(const nb_named_tensor *tensors, int n, const char *const *meta,
                              int n_meta)
{
    char nm[ST_SHOWN + 4];
    nb_status s = NB_OK;
    int most = n > n_meta ? n : n_meta;
    st_key *keys = malloc((most > 0 ? (size_t)most : 1) * sizeof *keys);
    if (!keys)
        return nb_error(NB_ERR_NOMEM, "out of memory for %d names", most);
    for (int i = 0; i < n; i++)
        keys[i] = (st_key){tensors[i].name, i};
    int dup = nb_st_sort_find_duplicate(keys, n);
    if (dup >= 0)
        s = nb_error(NB_ERR_ARG, "tensor name '%s' is given twice (tensors %d and %d)",
                     nb_st_shown(nm, sizeof nm, keys[dup].s), keys[dup].i, keys[dup + 1].i);
    for (int i = 0; s == NB_OK && i < n_meta; i++)
        keys[i] = (st_key){meta[2 * (size_t)i], i};
    if (s == NB_OK && (dup = nb_st_sort_find_duplicate(keys, n_meta)) >= 0)
        s = nb_error(NB_ERR_ARG, "metadata key '%s' is given twice",
                     nb_st_shown(nm, sizeof nm, keys[dup].s));
    free(keys);
    return s;
}

/* The JSON header text (cJSON_free it): "__metadata__" first, then the tensors in the order
 * given, their data back to back. */
static nb_status make_json(const nb_named_tensor *tensors, int n, const char *const *meta,
                           int n_meta, char **json)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[2 * (size_t)i], meta[2 * (size_t)i + 1]) != NULL;
    }
    uint64_t offset = 0;
    for (int i = 0; ok && i < n; i++) {
        const nb_tensor *x = tensors[i].tensor;
        uint64_t bytes = (uint64_t)x->numel * nb_dtype_size(x->dtype); /* checked */
        if (bytes > UINT64_MAX - offset) {
            cJSON_Delete(root);
            return nb_error(NB_ERR_SHAPE, "the tensors' total size overflows 64 bits");
        }
        ok = add_entry(root, tensors[i].name, x, offset, offset + bytes);
        offset += bytes;
    }
    *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return *json ? NB_OK : nb_error(NB_ERR_NOMEM, "out of memory building the JSON header");
}

/* Checks the arguments and builds the 8-byte length + padded header into *out (malloc'd). */
static nb_status build_header(const nb_named_tensor *tensors, int n, const char *const *meta,
                              char **out, size_t *out_len)
{
    int n_meta;
    char *json;
    nb_status s;
    if ((s = check_args(tensors, n, meta, &n_meta)) != NB_OK ||
        (s = check_unique(tensors, n, meta, n_meta)) != NB_OK ||
        (s = make_json(tensors, n, meta, n_meta, &json)) != NB_OK)
        return s;
    /* pad with spaces so the data buffer starts at a multiple of 8 */
    size_t jlen = strlen(json);
    size_t padded = jlen + (8 - jlen % 8) % 8;
    if (padded > ST_MAX_HEADER) {
        cJSON_free(json);
        return nb_error(NB_ERR_ARG,
                        "the header would be %zu bytes, over the %" PRIu64 "-byte limit readers "
                        "accept",
                        padded, ST_MAX_HEADER);
    }
    char *buf = malloc(8 + padded);
    if (!buf) {
        cJSON_free(json);
        return nb_error(NB_ERR_NOMEM, "out of memory for a %zu-byte header", padded);
    }
    for (int i = 0; i < 8; i++)
        buf[i] = (char)(unsigned char)(((uint64_t)padded >> (8 * i)) & 0xff);
    memcpy(buf + 8, json, jlen);
    memset(buf + 8 + jlen, ' ', padded - jlen);
    cJSON_free(json);
    *out = buf;
    *out_len = 8 + padded;
    return NB_OK;
}

typedef struct st_out {
    const char *header;
    size_t hbytes;
    const nb_named_tensor *tensors;
    int n;
} st_out;

static bool fill_safetensors(FILE *f, void *ctx)
{
    const st_out *o = ctx;
    if (fwrite(o->header, 1, o->hbytes, f) != o->hbytes)
        return false;
    for (int i = 0; i < o->n; i++)
        if (!nb_write_tensor_le(f, o->tensors[i].tensor))
            return false;
    return true;
}

nb_status nb_safetensors_save(const char *path, const nb_named_tensor *tensors, int n,
                              const char *const *meta)
{
    if (!path)
        return nb_error(NB_ERR_ARG, "safetensors: save path is NULL");
    char *header = NULL;
    size_t hbytes = 0;
    nb_status s = build_header(tensors, n, meta, &header, &hbytes);
    if (s != NB_OK) {
        nb_error_prefix(s, "safetensors", path);
        return s;
    }

    st_out o = {header, hbytes, tensors, n};
    s = nb_write_atomically(path, "safetensors", fill_safetensors, &o);
    free(header);
    return s;
}
