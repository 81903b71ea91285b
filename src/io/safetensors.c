/* safetensors.c - Hugging Face safetensors reader and writer.
 *
 * File layout (the format of the `safetensors` package, huggingface/safetensors):
 *
 *   offset 0     N                  u64, little-endian: the header length
 *   offset 8     header             N bytes of UTF-8 JSON, padded with spaces to a multiple of 8
 *   offset 8+N   data buffer        the tensors' bytes, little-endian, C order, back to back
 *
 * The header is one JSON object. Each key but "__metadata__" names a tensor:
 *
 *   {"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}
 *
 * data_offsets [begin, end) are relative to the start of the data buffer. Sorted by offset, the
 * ranges must tile the buffer exactly: the first begins at 0, each begins where the one before
 * ends, the last ends at the end of the file, and end - begin == numel * element size.
 *
 * Reading is written for hostile input (a fuzzer drives nb_safetensors_parse). Before cJSON sees
 * the header we bound its length (100,000,000 bytes, the reference implementation's limit, and
 * within the file), check it is UTF-8 without raw control bytes or \u0000 escapes, and that it
 * starts with '{'. Then every entry is checked (dtype, shape, byte count with overflow checks,
 * offsets inside the buffer), names must be unique (cJSON keeps duplicate keys, a JSON object
 * does not), and the ranges must tile the buffer. Only then is memory for the data allocated, so
 * a file can never make us allocate more than it holds.
 *
 * Numbers: cJSON reads every number as a double, which holds integers exactly only up to 2^53,
 * so shapes and offsets must be integers below 2^53 (a file that large cannot exist in memory).
 *
 * Writing builds the header with cJSON (integers go in as raw text, so they are printed exactly),
 * pads it with spaces to a multiple of 8 as the reference writer does, and goes through a
 * temporary file + fflush + fsync + rename, like nb_npy_save.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "nabla/safetensors.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#define ST_MAX_HEADER ((uint64_t)100000000) /* the reference implementation's MAX_HEADER_SIZE */
#define ST_EXACT_LIMIT 9007199254740992.0   /* 2^53: doubles are exact integers below this */
#define ST_SUPPORTED "F32 F64 F16 BF16 I32 I64 U8 BOOL"
#define ST_SHOWN 80 /* bytes of a name kept in an error message */
#define ST_SHOWN_DIMS 8

/* safetensors dtype names, indexed by nb_dtype. */
static const char *const st_dtype_names[NB_DTYPE_COUNT] = {"F32", "F64", "F16", "BF16",
                                                           "I32", "I64", "U8",  "BOOL"};

struct nb_safetensors {
    int count;
    nb_tensor **tensors; /* file order (by data offset) */
    char **names;        /* file order, into pool */
    int *by_name;        /* file indices sorted by name, for binary search */
    int meta_count;
    char **meta_keys; /* header order, into pool */
    char **meta_values;
    int *meta_by_key; /* meta indices sorted by key */
    char *pool;       /* every string above, one block */
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers.                                                                             */

/* Length of the valid UTF-8 sequence starting at s (n bytes available), 0 if invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF, as JSON text must. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
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

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Copies s into out (cap >= 8) for an error message: control bytes and bytes that are not valid
 * UTF-8 become '?', and a long s is cut at a character boundary and ends in "...". Names come
 * from files and callers: never print them raw. */
static const char *shown(char *out, size_t cap, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    size_t limit = n <= cap - 1 ? n : cap - 4; /* room for "..." when cut */
    while (i < limit) {
        size_t k = utf8_sequence(p + i, n - i);
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
static const char *shape_text(char *out, size_t cap, const uint64_t *dims, int n, int total)
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

static const char *json_kind(const cJSON *x)
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
static bool json_uint(const cJSON *x, uint64_t *out)
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
static const char *json_value_text(char *out, size_t cap, const cJSON *x)
{
    if (cJSON_IsNumber(x))
        snprintf(out, cap, "%.17g", x->valuedouble);
    else
        snprintf(out, cap, "%s", json_kind(x));
    return out;
}

/* Strings sorted with their original index, to find duplicates and to look names up. */
typedef struct st_key {
    const char *s;
    int i;
} st_key;

static int cmp_key(const void *a, const void *b)
{
    const st_key *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c != 0)
        return c;
    return (x->i > y->i) - (x->i < y->i);
}

/* Sorts keys by string; returns the position of the first of two equal strings, or -1. */
static int sort_find_duplicate(st_key *keys, int n)
{
    if (n < 2)
        return -1;
    qsort(keys, (size_t)n, sizeof *keys, cmp_key);
    for (int k = 1; k < n; k++)
        if (strcmp(keys[k - 1].s, keys[k].s) == 0)
            return k - 1;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading: the header.                                                                       */

/* One tensor as the header describes it. */
typedef struct st_entry {
    const char *name; /* the key, inside the cJSON tree */
    int order;        /* position in the header */
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

/* What the header holds, checked; the strings point into root. */
typedef struct st_header {
    cJSON *root;
    st_entry *entries; /* sorted by (begin, end, order) once checked */
    int n;
    const cJSON *meta; /* the "__metadata__" object, NULL if none */
    int meta_n;
    size_t string_bytes; /* names and metadata strings with their NULs */
} st_header;

/* The raw header text before cJSON sees it: valid UTF-8 (JSON text must be), no raw control
 * byte except the whitespace JSON allows between tokens (cJSON would skip any byte <= 0x20 as
 * blank, and keep them raw inside strings), and no \u0000 escape (a name holding NUL cannot be a
 * C string; two names differing after it would collide). */
static nb_status scan_header(const unsigned char *h, size_t n)
{
    if (n == 0)
        return nb_error(NB_ERR_FORMAT, "header is empty (expected a JSON object)");
    if (h[0] != '{')
        return nb_error(NB_ERR_FORMAT, "header does not start with '{' (first byte is 0x%02x)",
                        h[0]);
    bool in_string = false;
    for (size_t i = 0; i < n;) {
        unsigned char c = h[i];
        if (c >= 0x80) {
            size_t k = utf8_sequence(h + i, n - i);
            if (k == 0)
                return nb_error(NB_ERR_FORMAT,
                                "header is not valid UTF-8 at offset %zu (byte 0x%02x)", i, c);
            i += k;
            continue;
        }
        if (c < 0x20 && (in_string || !(c == '\t' || c == '\n' || c == '\r')))
            return nb_error(NB_ERR_FORMAT, "header has a raw control byte 0x%02x at offset %zu", c,
                            i);
        if (in_string && c == '\\') {
            if (n - i >= 6 && memcmp(h + i + 1, "u0000", 5) == 0)
                return nb_error(NB_ERR_FORMAT,
                                "header has a \\u0000 escape at offset %zu (names and metadata "
                                "cannot hold NUL)",
                                i);
            /* skip the escaped character, unless it is not ASCII (then invalid JSON anyway) */
            i += (i + 1 < n && h[i + 1] < 0x80) ? 2 : 1;
            continue;
        }
        if (c == '"')
            in_string = !in_string;
        i++;
    }
    return NB_OK;
}

/* Checks one tensor entry (item is the value, item->string its name) against a data buffer of
 * buf_len bytes. */
static nb_status parse_entry(const cJSON *item, uint64_t buf_len, st_entry *e)
{
    char nm[ST_SHOWN + 4], txt[128];
    shown(nm, sizeof nm, item->string);
    if (!cJSON_IsObject(item))
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': entry is %s, not an object with dtype, shape and "
                        "data_offsets",
                        nm, json_kind(item));
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = item->child; c; c = c->next) {
        const cJSON **slot;
        if (!c->string)
            continue;
        if (strcmp(c->string, "dtype") == 0)
            slot = &dtype;
        else if (strcmp(c->string, "shape") == 0)
            slot = &shape;
        else if (strcmp(c->string, "data_offsets") == 0)
            slot = &offs;
        else
            continue; /* other keys are ignored, as the reference implementation does */
        if (*slot)
            return nb_error(NB_ERR_FORMAT, "tensor '%s': key \"%s\" appears twice", nm, c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offs)
        return nb_error(NB_ERR_FORMAT, "tensor '%s' has no \"%s\"", nm,
                        !dtype   ? "dtype"
                        : !shape ? "shape"
                                 : "data_offsets");

    /* dtype */
    if (!cJSON_IsString(dtype))
        return nb_error(NB_ERR_FORMAT, "tensor '%s': dtype is %s, not a string", nm,
                        json_kind(dtype));
    int t = 0;
    while (t < NB_DTYPE_COUNT && strcmp(dtype->valuestring, st_dtype_names[t]) != 0)
        t++;
    if (t == NB_DTYPE_COUNT)
        return nb_error(NB_ERR_FORMAT, "tensor '%s': unsupported dtype '%s' (supported: %s)", nm,
                        shown(txt, 40, dtype->valuestring), ST_SUPPORTED);
    e->dtype = (nb_dtype)t;

    /* shape: non-negative integers, at most NB_MAX_DIMS of them */
    if (!cJSON_IsArray(shape))
        return nb_error(NB_ERR_FORMAT, "tensor '%s': shape is %s, not an array", nm,
                        json_kind(shape));
    uint64_t dims[ST_SHOWN_DIMS];
    int ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next, ndim++) {
        uint64_t v;
        if (!json_uint(d, &v))
            return nb_error(NB_ERR_FORMAT,
                            "tensor '%s': shape[%d] is %s, not a non-negative integer below 2^53",
                            nm, ndim, json_value_text(txt, sizeof txt, d));
        if (ndim < ST_SHOWN_DIMS)
            dims[ndim] = v;
    }
    int kept = ndim < ST_SHOWN_DIMS ? ndim : ST_SHOWN_DIMS;
    char sh[200];
    shape_text(sh, sizeof sh, dims, kept, ndim);
    if (ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_FORMAT, "tensor '%s' has %d dimensions %s, at most %d are supported",
                        nm, ndim, sh, NB_MAX_DIMS);
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = (int64_t)dims[i]; /* < 2^53 */

    /* data_offsets: [begin, end] */
    if (!cJSON_IsArray(offs))
        return nb_error(NB_ERR_FORMAT, "tensor '%s': data_offsets is %s, not [begin, end]", nm,
                        json_kind(offs));
    int n_offs = 0;
    for (const cJSON *o = offs->child; o && n_offs < 3; o = o->next)
        n_offs++;
    if (n_offs != 2)
        return nb_error(NB_ERR_FORMAT, "tensor '%s': data_offsets has %s, not 2 ([begin, end])", nm,
                        n_offs == 0   ? "no values"
                        : n_offs == 1 ? "1 value"
                                      : "more than 2 values");
    const cJSON *b = offs->child, *en = b->next;
    if (!json_uint(b, &e->begin) || !json_uint(en, &e->end)) {
        const cJSON *bad = json_uint(b, &e->begin) ? en : b;
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': data_offsets[%d] is %s, not a non-negative integer below "
                        "2^53",
                        nm, bad == b ? 0 : 1, json_value_text(txt, sizeof txt, bad));
    }
    if (e->end < e->begin)
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end "
                        "before they begin",
                        nm, e->begin, e->end);

    /* byte count: a zero dimension makes the tensor empty whatever the others are */
    size_t esize = nb_dtype_size(e->dtype);
    uint64_t bytes = esize;
    bool empty = false;
    for (int i = 0; i < ndim; i++)
        empty |= dims[i] == 0;
    if (empty)
        bytes = 0;
    for (int i = 0; i < ndim && !empty; i++) {
        if (bytes > UINT64_MAX / dims[i])
            return nb_error(NB_ERR_FORMAT,
                            "tensor '%s': shape %s of %s overflows a 64-bit byte count", nm, sh,
                            st_dtype_names[t]);
        bytes *= dims[i];
    }
    uint64_t span = e->end - e->begin;
    if (bytes != span)
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': shape %s needs %" PRIu64 " bytes, data_offsets span %" PRIu64
                        " (%s, %zu bytes per element)",
                        nm, sh, bytes, span, st_dtype_names[t], esize);
    if (e->end > buf_len)
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] go beyond the "
                        "%" PRIu64 "-byte data buffer",
                        nm, e->begin, e->end, buf_len);
    e->name = item->string;
    return NB_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* Sorted by offset, the ranges must tile [0, buf_len): no gap, no overlap, no tail. */
static nb_status check_tiling(const st_entry *e, int n, uint64_t buf_len)
{
    char a[ST_SHOWN + 4], b[ST_SHOWN + 4];
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].begin > at) {
            if (i == 0)
                return nb_error(NB_ERR_FORMAT,
                                "gap in the data buffer: bytes [0, %" PRIu64 ") belong to no "
                                "tensor (the first, '%s', begins at %" PRIu64 ")",
                                e[i].begin, shown(a, sizeof a, e[i].name), e[i].begin);
            return nb_error(NB_ERR_FORMAT,
                            "gap in the data buffer: bytes [%" PRIu64 ", %" PRIu64 ") between "
                            "tensors '%s' and '%s' belong to no tensor",
                            at, e[i].begin, shown(a, sizeof a, e[i - 1].name),
                            shown(b, sizeof b, e[i].name));
        }
        if (e[i].begin < at)
            return nb_error(NB_ERR_FORMAT,
                            "tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%" PRIu64
                            ", %" PRIu64 "] overlap",
                            shown(a, sizeof a, e[i - 1].name), e[i - 1].begin, e[i - 1].end,
                            shown(b, sizeof b, e[i].name), e[i].begin, e[i].end);
        at = e[i].end;
    }
    if (at != buf_len)
        return nb_error(NB_ERR_FORMAT,
                        "%" PRIu64 " bytes at the end of the %" PRIu64 "-byte data buffer belong "
                        "to no tensor (the tensors cover %" PRIu64 ")",
                        buf_len - at, buf_len, at);
    return NB_OK;
}

/* Parses and checks the header text (n bytes, need not be NUL-terminated) for a data buffer of
 * buf_len bytes. On success h holds the cJSON tree (free with cJSON_Delete) and the entries
 * sorted by offset (free). */
static nb_status parse_header(const char *text, size_t n, uint64_t buf_len, st_header *h)
{
    memset(h, 0, sizeof *h);
    nb_status st = scan_header((const unsigned char *)text, n);
    if (st != NB_OK)
        return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        /* cJSON also returns NULL when out of memory; it cannot tell us which. */
        size_t at = (end && end >= text && end <= text + n) ? (size_t)(end - text) : 0;
        char near[24];
        size_t left = n - at < 16 ? n - at : 16;
        memcpy(near, text + at, left);
        near[left] = '\0';
        char shown_near[32];
        return nb_error(
            NB_ERR_FORMAT,
            "header is not valid JSON, or memory ran out parsing it (parse error at offset %zu of "
            "%zu, near \"%s\")",
            at, n, shown(shown_near, sizeof shown_near, near));
    }
    h->root = root;
    for (size_t i = (size_t)(end - text); i < n; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return nb_error(NB_ERR_FORMAT,
                            "header has trailing bytes after the JSON object (offset %zu of %zu)",
                            i, n);

    /* count tensors; check the metadata */
    bool meta_seen = false;
    size_t strings = 0;
    int n_tensors = 0;
    char nm[ST_SHOWN + 4];
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") != 0) {
            if (n_tensors == INT_MAX)
                return nb_error(NB_ERR_FORMAT, "header has too many tensors");
            n_tensors++;
            strings += strlen(c->string) + 1;
            continue;
        }
        if (meta_seen)
            return nb_error(NB_ERR_FORMAT, "\"__metadata__\" appears twice in the header");
        meta_seen = true;
        if (cJSON_IsNull(c))
            continue; /* the reference implementation reads null as no metadata */
        if (!cJSON_IsObject(c))
            return nb_error(NB_ERR_FORMAT, "\"__metadata__\" is %s, not an object of strings",
                            json_kind(c));
        h->meta = c;
        for (const cJSON *m = c->child; m; m = m->next) {
            if (!cJSON_IsString(m))
                return nb_error(NB_ERR_FORMAT, "metadata '%s' is %s, not a string",
                                shown(nm, sizeof nm, m->string), json_kind(m));
            if (h->meta_n == INT_MAX)
                return nb_error(NB_ERR_FORMAT, "header has too many metadata entries");
            h->meta_n++;
            strings += strlen(m->string) + 1 + strlen(m->valuestring) + 1;
        }
    }
    h->string_bytes = strings;

    /* every tensor entry */
    h->entries = calloc(n_tensors > 0 ? (size_t)n_tensors : 1, sizeof *h->entries);
    st_key *keys = calloc(n_tensors > 0 ? (size_t)n_tensors : 1, sizeof *keys);
    if (!h->entries || !keys) {
        free(keys);
        return nb_error(NB_ERR_NOMEM, "out of memory for %d tensor entries", n_tensors);
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0)
            continue;
        st_entry *e = &h->entries[h->n];
        e->order = h->n;
        if ((st = parse_entry(c, buf_len, e)) != NB_OK) {
            free(keys);
            return st;
        }
        keys[h->n] = (st_key){e->name, h->n};
        h->n++;
    }

    /* duplicates: cJSON keeps every copy of a repeated key */
    int dup = sort_find_duplicate(keys, h->n);
    if (dup >= 0)
        st = nb_error(NB_ERR_FORMAT, "tensor '%s' appears twice in the header",
                      shown(nm, sizeof nm, keys[dup].s));
    free(keys);
    if (st != NB_OK)
        return st;
    if (h->meta_n > 0) {
        keys = calloc((size_t)h->meta_n, sizeof *keys);
        if (!keys)
            return nb_error(NB_ERR_NOMEM, "out of memory for %d metadata entries", h->meta_n);
        int k = 0;
        for (const cJSON *m = h->meta->child; m; m = m->next, k++)
            keys[k] = (st_key){m->string, k};
        dup = sort_find_duplicate(keys, h->meta_n);
        if (dup >= 0)
            st = nb_error(NB_ERR_FORMAT, "metadata key '%s' appears twice in the header",
                          shown(nm, sizeof nm, keys[dup].s));
        free(keys);
        if (st != NB_OK)
            return st;
    }

    if (h->n > 1)
        qsort(h->entries, (size_t)h->n, sizeof *h->entries, cmp_entry);
    return check_tiling(h->entries, h->n, buf_len);
}

static void header_free(st_header *h)
{
    cJSON_Delete(h->root);
    free(h->entries);
    memset(h, 0, sizeof *h);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading: the result.                                                                       */

void nb_safetensors_free(nb_safetensors *st)
{
    if (!st)
        return;
    if (st->tensors)
        for (int i = 0; i < st->count; i++)
            nb_tensor_free(st->tensors[i]);
    free(st->tensors);
    free(st->names);
    free(st->by_name);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->meta_by_key);
    free(st->pool);
    free(st);
}

/* Copies s into the pool at *at and returns the copy. */
static char *pool_put(char *pool, size_t *at, const char *s)
{
    size_t n = strlen(s) + 1;
    char *out = pool + *at;
    memcpy(out, s, n);
    *at += n;
    return out;
}

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

/* Fills order[0..n) with the indices of strs sorted by string (strs are known unique). */
static nb_status sort_index(char *const *strs, int n, int *order)
{
    if (n == 0)
        return NB_OK;
    st_key *keys = malloc((size_t)n * sizeof *keys);
    if (!keys)
        return nb_error(NB_ERR_NOMEM, "out of memory for a %d-entry index", n);
    for (int i = 0; i < n; i++)
        keys[i] = (st_key){strs[i], i};
    qsort(keys, (size_t)n, sizeof *keys, cmp_key);
    for (int i = 0; i < n; i++)
        order[i] = keys[i].i;
    free(keys);
    return NB_OK;
}

/* Where the data buffer comes from: memory, or a file read sequentially (the ranges are sorted
 * and contiguous, so reading them in file order reads the file front to back). */
typedef struct st_source {
    const unsigned char *mem;
    FILE *f;
} st_source;

static nb_status read_range(const st_source *src, const st_entry *e, void *dst)
{
    size_t n = (size_t)(e->end - e->begin); /* <= the buffer length, a size_t */
    if (n == 0)
        return NB_OK;
    if (src->mem) {
        memcpy(dst, src->mem + e->begin, n);
        return NB_OK;
    }
    size_t got = fread(dst, 1, n, src->f);
    if (got == n)
        return NB_OK;
    char nm[ST_SHOWN + 4];
    if (ferror(src->f))
        return nb_error(NB_ERR_IO, "read error in tensor '%s': %s", shown(nm, sizeof nm, e->name),
                        strerror(errno));
    return nb_error(NB_ERR_FORMAT,
                    "truncated: end of file inside tensor '%s' (%zu of %zu bytes; the file "
                    "shrank while it was read)",
                    shown(nm, sizeof nm, e->name), got, n);
}

/* Builds the result from a checked header, reading each tensor's bytes from src. */
static nb_status build_result(const st_header *h, const st_source *src, nb_safetensors **out)
{
    nb_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return nb_error(NB_ERR_NOMEM, "out of memory");
    size_t nt = h->n > 0 ? (size_t)h->n : 1, nm = h->meta_n > 0 ? (size_t)h->meta_n : 1;
    st->tensors = calloc(nt, sizeof *st->tensors);
    st->names = calloc(nt, sizeof *st->names);
    st->by_name = calloc(nt, sizeof *st->by_name);
    st->meta_keys = calloc(nm, sizeof *st->meta_keys);
    st->meta_values = calloc(nm, sizeof *st->meta_values);
    st->meta_by_key = calloc(nm, sizeof *st->meta_by_key);
    st->pool = malloc(h->string_bytes > 0 ? h->string_bytes : 1);
    nb_status s = NB_OK;
    if (!st->tensors || !st->names || !st->by_name || !st->meta_keys || !st->meta_values ||
        !st->meta_by_key || !st->pool) {
        s = nb_error(NB_ERR_NOMEM, "out of memory for %d tensors and %zu bytes of names", h->n,
                     h->string_bytes);
        goto fail;
    }
    size_t at = 0;
    for (int i = 0; i < h->n; i++)
        st->names[i] = pool_put(st->pool, &at, h->entries[i].name);
    int k = 0;
    for (const cJSON *m = h->meta ? h->meta->child : NULL; m; m = m->next, k++) {
        st->meta_keys[k] = pool_put(st->pool, &at, m->string);
        st->meta_values[k] = pool_put(st->pool, &at, m->valuestring);
    }
    st->meta_count = h->meta_n;
    if ((s = sort_index(st->names, h->n, st->by_name)) != NB_OK ||
        (s = sort_index(st->meta_keys, h->meta_n, st->meta_by_key)) != NB_OK)
        goto fail;

    for (int i = 0; i < h->n; i++) {
        const st_entry *e = &h->entries[i];
        nb_tensor *t = nb_tensor_empty(e->dtype, e->ndim, e->shape);
        if (!t) {
            char name[ST_SHOWN + 4];
            s = nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
            char why[512];
            snprintf(why, sizeof why, "%s", nb_last_error());
            nb_error(s, "tensor '%s': %s", shown(name, sizeof name, e->name), why);
            goto fail;
        }
        st->tensors[i] = t;
        st->count = i + 1;
        if ((s = read_range(src, e, t->data)) != NB_OK)
            goto fail;
        if (e->dtype == NB_BOOL) { /* any nonzero byte is true; store a clean 1 */
            unsigned char *p = t->data;
            for (int64_t j = 0; j < t->numel; j++)
                p[j] = p[j] != 0;
        }
        if (!nb_host_little_endian())
            nb_swap_elements(t->data, (size_t)t->numel, nb_dtype_size(t->dtype));
    }
    st->count = h->n;
    *out = st;
    return NB_OK;
fail:
    nb_safetensors_free(st);
    return s;
}

/* Reads the 8-byte header length of a file of `total` bytes and checks it. */
static nb_status check_length(const unsigned char *pre, size_t avail, uint64_t total,
                              uint64_t *hlen)
{
    if (avail < 8)
        return nb_error(NB_ERR_FORMAT,
                        "truncated: %zu bytes, but a safetensors file starts with an 8-byte "
                        "header length",
                        avail);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | pre[i];
    if (n > ST_MAX_HEADER)
        return nb_error(NB_ERR_FORMAT,
                        "header length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes", n,
                        ST_MAX_HEADER);
    if (n > total - 8)
        return nb_error(NB_ERR_FORMAT,
                        "header length %" PRIu64 " goes beyond the end of the file (%" PRIu64
                        " bytes after the 8-byte length)",
                        n, total - 8);
    *hlen = n;
    return NB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Public: reading.                                                                           */

static nb_status parse_image(const unsigned char *buf, size_t len, nb_safetensors **out)
{
    uint64_t hlen = 0;
    nb_status s = check_length(buf, len, len, &hlen);
    if (s != NB_OK)
        return s;
    st_header h;
    s = parse_header((const char *)buf + 8, (size_t)hlen, len - 8 - hlen, &h);
    if (s == NB_OK) {
        st_source src = {buf + 8 + hlen, NULL};
        s = build_result(&h, &src, out);
    }
    header_free(&h);
    return s;
}

nb_safetensors *nb_safetensors_parse(const void *buf, size_t len)
{
    if (!buf && len > 0) {
        nb_error(NB_ERR_ARG, "safetensors: buffer is NULL but length is %zu", len);
        return NULL;
    }
    static const unsigned char nothing[1] = {0};
    nb_safetensors *st = NULL;
    nb_status s = parse_image(buf ? buf : nothing, len, &st);
    if (s != NB_OK) {
        nb_error_prefix(s, "safetensors", NULL);
        return NULL;
    }
    return st;
}

static nb_status load_file(FILE *f, nb_safetensors **out)
{
    size_t size;
    nb_status fs = nb_regular_file_size(f, &size);
    if (fs != NB_OK)
        return fs;

    unsigned char pre[8];
    size_t npre = size < 8 ? size : 8;
    nb_status s = nb_read_exact(f, pre, npre, "header length");
    uint64_t hlen = 0;
    if (s == NB_OK)
        s = check_length(pre, npre, size, &hlen);
    if (s != NB_OK)
        return s;
    char *text = malloc(hlen > 0 ? (size_t)hlen : 1); /* <= 100 MB, checked */
    if (!text)
        return nb_error(NB_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte header", hlen);
    s = nb_read_exact(f, text, (size_t)hlen, "header");
    st_header h;
    memset(&h, 0, sizeof h);
    if (s == NB_OK)
        s = parse_header(text, (size_t)hlen, size - 8 - hlen, &h);
    if (s == NB_OK) {
        st_source src = {NULL, f};
        s = build_result(&h, &src, out);
    }
    header_free(&h);
    free(text);
    if (s == NB_OK && fgetc(f) != EOF) {
        nb_safetensors_free(*out);
        *out = NULL;
        s = nb_error(NB_ERR_FORMAT, "file grew while it was being read");
    }
    return s;
}

nb_safetensors *nb_safetensors_load(const char *path)
{
    if (!path) {
        nb_error(NB_ERR_ARG, "safetensors: load path is NULL");
        return NULL;
    }
    FILE *f = nb_open_regular(path, "safetensors", NULL); /* refuses FIFOs, devices, dirs */
    if (!f)
        return NULL;
    nb_safetensors *st = NULL;
    nb_status s = load_file(f, &st);
    if (fclose(f) != 0 && s == NB_OK) {
        int e = errno;
        nb_safetensors_free(st);
        st = NULL;
        s = nb_error(NB_ERR_IO, "cannot close: %s", strerror(e));
    }
    if (s != NB_OK) {
        nb_error_prefix(s, "safetensors", path);
        return NULL;
    }
    return st;
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
    char shown[96];
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
        shown_value(s, shown, sizeof shown);
        return nb_error(NB_ERR_FORMAT,
                        "metadata '%s' is %s; expected an integer in [%" PRId64 ", %" PRId64 "]",
                        key, shown, lo, hi);
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
    char range[96], shown[96];
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
        shown_value(s, shown, sizeof shown);
        return nb_error(NB_ERR_FORMAT, "metadata '%s' is %s; expected %s", key, shown, range);
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

/* ------------------------------------------------------------------------------------------ */
/* Writing.                                                                                   */

/* Checks a tensor can be written; *bytes is its data size. */
static nb_status check_tensor(const nb_tensor *x, size_t *bytes)
{
    if (!x)
        return nb_error(NB_ERR_ARG, "tensor is NULL");
    if ((unsigned)x->dtype >= NB_DTYPE_COUNT)
        return nb_error(NB_ERR_DTYPE, "invalid dtype %d", (int)x->dtype);
    if (x->ndim < 0 || x->ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_SHAPE, "tensor has %d dimensions, at most %d supported", x->ndim,
                        NB_MAX_DIMS);
    int64_t numel = 1;
    bool empty = false;
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] < 0)
            return nb_error(NB_ERR_SHAPE, "dimension %d has negative size %" PRId64, i,
                            x->shape[i]);
        empty |= x->shape[i] == 0;
    }
    for (int i = 0; i < x->ndim && !empty; i++) {
        if (numel > INT64_MAX / x->shape[i])
            return nb_error(NB_ERR_SHAPE, "shape overflows int64");
        numel *= x->shape[i];
    }
    if (empty)
        numel = 0;
    if (numel != x->numel)
        return nb_error(NB_ERR_SHAPE,
                        "tensor numel %" PRId64 " does not match its shape (%" PRId64 " elements)",
                        x->numel, numel);
    size_t esize = nb_dtype_size(x->dtype);
    if ((uint64_t)numel > SIZE_MAX / esize)
        return nb_error(NB_ERR_SHAPE, "tensor of %" PRId64 " elements is too large", numel);
    *bytes = (size_t)numel * esize;
    if (*bytes > 0 && !x->data)
        return nb_error(NB_ERR_ARG, "tensor data is NULL");
    return NB_OK;
}

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
    if (!obj || !cJSON_AddStringToObject(obj, "dtype", st_dtype_names[x->dtype]))
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

/* Checks the arguments and builds the 8-byte length + padded header into *out (malloc'd). */
static nb_status build_header(const nb_named_tensor *tensors, int n, const char *const *meta,
                              char **out, size_t *out_len)
{
    char nm[ST_SHOWN + 4];
    nb_status s = NB_OK;
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
        if (!utf8_valid(name))
            return nb_error(NB_ERR_ARG, "tensor %d: name '%s' is not valid UTF-8", i,
                            shown(nm, sizeof nm, name));
        size_t bytes;
        if ((s = check_tensor(tensors[i].tensor, &bytes)) != NB_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", nb_last_error());
            return nb_error(s, "tensor '%s': %s", shown(nm, sizeof nm, name), why);
        }
    }
    int n_meta = 0;
    while (meta && meta[2 * (size_t)n_meta]) {
        const char *k = meta[2 * (size_t)n_meta], *v = meta[2 * (size_t)n_meta + 1];
        if (!v)
            return nb_error(NB_ERR_ARG,
                            "metadata key '%s' has no value (meta holds key, value pairs and "
                            "ends with a NULL key)",
                            shown(nm, sizeof nm, k));
        if (!utf8_valid(k) || !utf8_valid(v))
            return nb_error(NB_ERR_ARG, "metadata '%s': %s is not valid UTF-8",
                            shown(nm, sizeof nm, k), utf8_valid(k) ? "the value" : "the key");
        if (n_meta == INT_MAX / 2)
            return nb_error(NB_ERR_ARG, "too many metadata pairs");
        n_meta++;
    }

    /* unique names and keys */
    int most = n > n_meta ? n : n_meta;
    st_key *keys = malloc((most > 0 ? (size_t)most : 1) * sizeof *keys);
    if (!keys)
        return nb_error(NB_ERR_NOMEM, "out of memory for %d names", most);
    for (int i = 0; i < n; i++)
        keys[i] = (st_key){tensors[i].name, i};
    int dup = sort_find_duplicate(keys, n);
    if (dup >= 0)
        s = nb_error(NB_ERR_ARG, "tensor name '%s' is given twice (tensors %d and %d)",
                     shown(nm, sizeof nm, keys[dup].s), keys[dup].i, keys[dup + 1].i);
    for (int i = 0; s == NB_OK && i < n_meta; i++)
        keys[i] = (st_key){meta[2 * (size_t)i], i};
    if (s == NB_OK && (dup = sort_find_duplicate(keys, n_meta)) >= 0)
        s = nb_error(NB_ERR_ARG, "metadata key '%s' is given twice",
                     shown(nm, sizeof nm, keys[dup].s));
    free(keys);
    if (s != NB_OK)
        return s;

    /* the JSON: "__metadata__" first, then the tensors in the order given */
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
        uint64_t bytes = (uint64_t)x->numel * nb_dtype_size(x->dtype); /* checked above */
        if (bytes > UINT64_MAX - offset) {
            cJSON_Delete(root);
            return nb_error(NB_ERR_SHAPE, "the tensors' total size overflows 64 bits");
        }
        ok = add_entry(root, tensors[i].name, x, offset, offset + bytes);
        offset += bytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return nb_error(NB_ERR_NOMEM, "out of memory building the JSON header");

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
