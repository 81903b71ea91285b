/* safetensors_text.c - text and JSON helpers of the safetensors reader and writer: UTF-8
 * validation, names shown safely in messages, JSON value kinds, sorted keys. */
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
#include "safetensors_internal.h"

const char *const nb_st_dtype_names[NB_DTYPE_COUNT] = {"F32", "F64", "F16", "BF16",
                                                       "I32", "I64", "U8",  "BOOL"};

size_t nb_st_utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

bool nb_st_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = nb_st_utf8_sequence(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Copies s into out (cap >= 8) for an error message: control bytes and bytes that are not valid
 * UTF-8 become '?', and a long s is cut at a character boundary and ends in "...". Names come
 * from files and callers: never print them raw. */
const char *nb_st_shown(char *out, size_t cap, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    size_t limit = n <= cap - 1 ? n : cap - 4; /* room for "..." when cut */
    while (i < limit) {
        size_t k = nb_st_utf8_sequence(p + i, n - i);
        if (k > 1 && i + k > limit)
            break; /* do not split a character */
        if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, p + i, k);
        i += k;
    }
    if (i < n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

/* "[3, 4]" for the first min(n, ST_SHOWN_DIMS) of `total` dimensions. */
const char *nb_st_shape_text(char *out, size_t cap, const uint64_t *dims, int n, int total)
{
    size_t at = 0;
    int w = snprintf(out, cap, "[");
    at = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < n && at < cap; i++) {
        w = snprintf(out + at, cap - at, "%s%" PRIu64, i ? ", " : "", dims[i]);
        at += w > 0 ? (size_t)w : 0;
    }
    if (at < cap)
        snprintf(out + at, cap - at, "%s]", total > n ? ", ..." : "");
    return out;
}

const char *nb_st_json_kind(const cJSON *x)
{
    if (cJSON_IsString(x))
        return "a string";
    if (cJSON_IsNumber(x))
        return "a number";
    if (cJSON_IsArray(x))
        return "an array";
    if (cJSON_IsObject(x))
        return "an object";
    if (cJSON_IsBool(x))
        return "a boolean";
    if (cJSON_IsNull(x))
        return "null";
    return "an invalid value";
}

/* A JSON number that is an integer in [0, 2^53). */
bool nb_st_json_uint(const cJSON *x, uint64_t *out)
{
    if (!cJSON_IsNumber(x))
        return false;
    double v = x->valuedouble;
    if (!(v >= 0.0 && v < ST_EXACT_LIMIT)) /* also false for NaN */
        return false;
    uint64_t u = (uint64_t)v;
    if ((double)u != v)
        return false;
    *out = u;
    return true;
}

/* Describes a JSON value that should have been an integer: "2.5", "a string". */
const char *nb_st_json_value_text(char *out, size_t cap, const cJSON *x)
{
    if (cJSON_IsNumber(x))
        snprintf(out, cap, "%.17g", x->valuedouble);
    else
        snprintf(out, cap, "%s", nb_st_json_kind(x));
    return out;
}

/* Strings sorted with their original index, to find duplicates and to look names up. */

int nb_st_cmp_key(const void *a, const void *b)
{
    const st_key *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c != 0)
        return c;
    return (x->i > y->i) - (x->i < y->i);
}

/* Sorts keys by string; returns the position of the first of two equal strings, or -1. */
int nb_st_sort_find_duplicate(st_key *keys, int n)
{
    if (n < 2)
        return -1;
    qsort(keys, (size_t)n, sizeof *keys, nb_st_cmp_key);
    for (int k = 1; k < n; k++)
        if (strcmp(keys[k - 1].s, keys[k].s) == 0)
            return k - 1;
    return -1;
}
