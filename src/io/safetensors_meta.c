/* safetensors_meta.c - looking up what a loaded safetensors file holds: tensors by index and
 * name, metadata by key, and metadata read as checked integers and numbers. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <float.h>
#include <math.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "nabla/safetensors.h"
#include "safetensors_internal.h"

/* Index (in keys' order) of s among sorted keys, via their file indices; -1 if absent. */
static int find_sorted(char *const *strs, const int *order, int n, const char *s)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(strs[order[mid]], s);
        if (c == 0)
            return order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Entry checks of the accessors. A NULL st, NULL name or an index out of range records an error
 * naming the function; a name or key that is simply absent returns NULL and records nothing (a
 * lookup that finds nothing is an answer, not a failure). */
static bool st_ok(const char *fn, const nb_safetensors *st, const void *arg, const char *arg_name)
{
    if (!st || !arg) {
        nb_error(NB_ERR_ARG, "%s: %s is NULL", fn, !st ? "st" : arg_name);
        return false;
    }
    return true;
}

static bool st_index_ok(const char *fn, const nb_safetensors *st, int i, int count)
{
    if (!st_ok(fn, st, st, "st"))
        return false;
    if (i < 0 || i >= count) {
        nb_error(NB_ERR_RANGE, "%s: index %d out of range [0, %d)", fn, i, count);
        return false;
    }
    return true;
}

int nb_safetensors_count(const nb_safetensors *st)
{
    return st_ok("nb_safetensors_count", st, st, "st") ? st->count : 0;
}

const char *nb_safetensors_name(const nb_safetensors *st, int i)
{
    return st_index_ok("nb_safetensors_name", st, i, st ? st->count : 0) ? st->names[i] : NULL;
}

const nb_tensor *nb_safetensors_get(const nb_safetensors *st, const char *name)
{
    if (!st_ok("nb_safetensors_get", st, name, "name"))
        return NULL;
    int i = find_sorted(st->names, st->by_name, st->count, name);
    return i >= 0 ? st->tensors[i] : NULL;
}

const char *nb_safetensors_meta(const nb_safetensors *st, const char *key)
{
    if (!st_ok("nb_safetensors_meta", st, key, "key"))
        return NULL;
    int i = find_sorted(st->meta_keys, st->meta_by_key, st->meta_count, key);
    return i >= 0 ? st->meta_values[i] : NULL;
}

/* Up to 40 bytes of a metadata value for a message, with "..." when it is longer. */
static void shown_value(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v);
    if (n <= 40)
        snprintf(out, cap, "'%s'", v);
    else
        snprintf(out, cap, "'%.40s...' (%zu bytes)", v, n);
}

nb_status nb_safetensors_meta_int(const nb_safetensors *st, const char *key, int64_t lo, int64_t hi,
                                  int64_t *out)
{
    if (!st || !key || !out)
        return nb_error(NB_ERR_ARG, "nb_safetensors_meta_int: %s is NULL",
                        !st    ? "st"
                        : !key ? "key"
                               : "out");
    const char *s = nb_safetensors_meta(st, key);
    char nb_st_shown[96];
    if (!s)
        return nb_error(NB_ERR_FORMAT,
                        "metadata '%s' is missing; expected an integer in [%" PRId64 ", %" PRId64
                        "]",
                        key, lo, hi);
    /* strictly what "%lld" writes: an optional '-' and decimal digits, nothing else */
    const char *d = s + (s[0] == '-');
    bool digits = *d != '\0';
    for (const char *p = d; *p; p++)
        digits = digits && *p >= '0' && *p <= '9';
    char *end = NULL;
    errno = 0;
    long long v = digits ? strtoll(s, &end, 10) : 0;
    if (!digits || errno == ERANGE || *end || v < lo || v > hi) {
        shown_value(s, nb_st_shown, sizeof nb_st_shown);
        return nb_error(NB_ERR_FORMAT,
                        "metadata '%s' is %s; expected an integer in [%" PRId64 ", %" PRId64 "]",
                        key, nb_st_shown, lo, hi);
    }
    *out = (int64_t)v;
    return NB_OK;
}

nb_status nb_safetensors_meta_number(const nb_safetensors *st, const char *key, double lo,
                                     double hi, double *out)
{
    if (!st || !key || !out)
        return nb_error(NB_ERR_ARG, "nb_safetensors_meta_number: %s is NULL",
                        !st    ? "st"
                        : !key ? "key"
                               : "out");
    const char *s = nb_safetensors_meta(st, key);
    char range[96], nb_st_shown[96];
    if (lo <= -DBL_MAX && hi >= DBL_MAX)
        snprintf(range, sizeof range, "a finite number");
    else if (hi >= DBL_MAX)
        snprintf(range, sizeof range, "a finite number >= %.17g", lo);
    else
        snprintf(range, sizeof range, "a finite number in [%.17g, %.17g]", lo, hi);
    if (!s)
        return nb_error(NB_ERR_FORMAT, "metadata '%s' is missing; expected %s", key, range);
    /* a decimal number as "%.17g" writes it: no leading space, no hex, no inf or nan */
    bool plain = *s != '\0';
    for (const char *p = s; *p; p++)
        plain = plain && strchr("0123456789+-.eE", *p) != NULL;
    char *end = NULL;
    errno = 0;
    double v = plain ? strtod(s, &end) : 0.0;
    if (!plain || *end || errno == ERANGE || !isfinite(v) || !(v >= lo && v <= hi)) {
        shown_value(s, nb_st_shown, sizeof nb_st_shown);
        return nb_error(NB_ERR_FORMAT, "metadata '%s' is %s; expected %s", key, nb_st_shown, range);
    }
    *out = v;
    return NB_OK;
}

int nb_safetensors_meta_count(const nb_safetensors *st)
{
    return st_ok("nb_safetensors_meta_count", st, st, "st") ? st->meta_count : 0;
}

const char *nb_safetensors_meta_key(const nb_safetensors *st, int i)
{
    return st_index_ok("nb_safetensors_meta_key", st, i, st ? st->meta_count : 0) ? st->meta_keys[i]
                                                                                  : NULL;
}
