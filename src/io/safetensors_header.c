/* safetensors_header.c - the safetensors header, checked for hostile input before anything is
 * allocated for the data: its length, its text (UTF-8, no raw control bytes, no \u0000), every
 * tensor entry (dtype, shape, byte count through the one shape validator, offsets inside the
 * buffer), unique names, and the ranges tiling the data buffer. See safetensors_read.c for the
 * layout. */
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
#include "../tensor/tensor_internal.h"
#include "safetensors_internal.h"

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
            size_t k = nb_st_utf8_sequence(h + i, n - i);
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

/* The three keys of a tensor entry; other keys are ignored, as the reference implementation
 * does, but none of the three may appear twice. */
static nb_status entry_keys(const cJSON *item, const char *nm, const cJSON *slots[3])
{
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    slots[0] = slots[1] = slots[2] = NULL;
    for (const cJSON *c = item->child; c; c = c->next)
        for (int k = 0; c->string && k < 3; k++)
            if (strcmp(c->string, keys[k]) == 0) {
                if (slots[k])
                    return nb_error(NB_ERR_FORMAT, "tensor '%s': key \"%s\" appears twice", nm,
                                    c->string);
                slots[k] = c;
            }
    for (int k = 0; k < 3; k++)
        if (!slots[k])
            return nb_error(NB_ERR_FORMAT, "tensor '%s' has no \"%s\"", nm, keys[k]);
    return NB_OK;
}

static nb_status entry_dtype(const cJSON *dtype, const char *nm, st_entry *e)
{
    char txt[40];
    if (!cJSON_IsString(dtype))
        return nb_error(NB_ERR_FORMAT, "tensor '%s': dtype is %s, not a string", nm,
                        nb_st_json_kind(dtype));
    int t = 0;
    while (t < NB_DTYPE_COUNT && strcmp(dtype->valuestring, nb_st_dtype_names[t]) != 0)
        t++;
    if (t == NB_DTYPE_COUNT)
        return nb_error(NB_ERR_FORMAT, "tensor '%s': unsupported dtype '%s' (supported: %s)", nm,
                        nb_st_shown(txt, sizeof txt, dtype->valuestring), ST_SUPPORTED);
    e->dtype = (nb_dtype)t;
    return NB_OK;
}

/* shape: non-negative integers below 2^53, at most NB_MAX_DIMS of them; sh[200] gets its text
 * for messages. */
static nb_status entry_shape(const cJSON *shape, const char *nm, st_entry *e, char *sh)
{
    char txt[128];
    if (!cJSON_IsArray(shape))
        return nb_error(NB_ERR_FORMAT, "tensor '%s': shape is %s, not an array", nm,
                        nb_st_json_kind(shape));
    uint64_t dims[ST_SHOWN_DIMS];
    int ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next, ndim++) {
        uint64_t v;
        if (!nb_st_json_uint(d, &v))
            return nb_error(NB_ERR_FORMAT,
                            "tensor '%s': shape[%d] is %s, not a non-negative integer below 2^53",
                            nm, ndim, nb_st_json_value_text(txt, sizeof txt, d));
        if (ndim < ST_SHOWN_DIMS)
            dims[ndim] = v;
    }
    int kept = ndim < ST_SHOWN_DIMS ? ndim : ST_SHOWN_DIMS;
    nb_st_shape_text(sh, 200, dims, kept, ndim);
    if (ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_FORMAT, "tensor '%s' has %d dimensions %s, at most %d are supported",
                        nm, ndim, sh, NB_MAX_DIMS);
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = (int64_t)dims[i]; /* < 2^53 */
    return NB_OK;
}

/* data_offsets: [begin, end], integers below 2^53, end >= begin. */
static nb_status entry_offsets(const cJSON *offs, const char *nm, st_entry *e)
{
    char txt[128];
    if (!cJSON_IsArray(offs))
        return nb_error(NB_ERR_FORMAT, "tensor '%s': data_offsets is %s, not [begin, end]", nm,
                        nb_st_json_kind(offs));
    int n_offs = 0;
    for (const cJSON *o = offs->child; o && n_offs < 3; o = o->next)
        n_offs++;
    if (n_offs != 2)
        return nb_error(NB_ERR_FORMAT, "tensor '%s': data_offsets has %s, not 2 ([begin, end])", nm,
                        n_offs == 0   ? "no values"
                        : n_offs == 1 ? "1 value"
                                      : "more than 2 values");
    const cJSON *b = offs->child, *en = b->next;
    if (!nb_st_json_uint(b, &e->begin) || !nb_st_json_uint(en, &e->end)) {
        const cJSON *bad = nb_st_json_uint(b, &e->begin) ? en : b;
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': data_offsets[%d] is %s, not a non-negative integer below "
                        "2^53",
                        nm, bad == b ? 0 : 1, nb_st_json_value_text(txt, sizeof txt, bad));
    }
    if (e->end < e->begin)
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end "
                        "before they begin",
                        nm, e->begin, e->end);
    return NB_OK;
}

/* Checks one tensor entry (item is the value, item->string its name) against a data buffer of
 * buf_len bytes. */
static nb_status parse_entry(const cJSON *item, uint64_t buf_len, st_entry *e)
{
    char nm[ST_SHOWN + 4], sh[200];
    nb_st_shown(nm, sizeof nm, item->string);
    if (!cJSON_IsObject(item))
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': entry is %s, not an object with dtype, shape and "
                        "data_offsets",
                        nm, nb_st_json_kind(item));
    const cJSON *slot[3];
    nb_status st;
    if ((st = entry_keys(item, nm, slot)) != NB_OK || (st = entry_dtype(slot[0], nm, e)) != NB_OK ||
        (st = entry_shape(slot[1], nm, e, sh)) != NB_OK ||
        (st = entry_offsets(slot[2], nm, e)) != NB_OK)
        return st;
    /* the byte count must be the span exactly, and the span inside the buffer */
    size_t esize = nb_dtype_size(e->dtype);
    uint64_t numel = 0;
    int at;
    if (nb_shape_count(e->ndim, e->shape, esize, UINT64_MAX, UINT64_MAX, &numel, &at) !=
        NB_SHAPE_OK)
        return nb_error(NB_ERR_FORMAT, "tensor '%s': shape %s of %s overflows a 64-bit byte count",
                        nm, sh, nb_st_dtype_names[e->dtype]);
    uint64_t bytes = numel * esize, span = e->end - e->begin;
    if (bytes != span)
        return nb_error(NB_ERR_FORMAT,
                        "tensor '%s': shape %s needs %" PRIu64 " bytes, data_offsets span %" PRIu64
                        " (%s, %zu bytes per element)",
                        nm, sh, bytes, span, nb_st_dtype_names[e->dtype], esize);
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
                                e[i].begin, nb_st_shown(a, sizeof a, e[i].name), e[i].begin);
            return nb_error(NB_ERR_FORMAT,
                            "gap in the data buffer: bytes [%" PRIu64 ", %" PRIu64 ") between "
                            "tensors '%s' and '%s' belong to no tensor",
                            at, e[i].begin, nb_st_shown(a, sizeof a, e[i - 1].name),
                            nb_st_shown(b, sizeof b, e[i].name));
        }
        if (e[i].begin < at)
            return nb_error(NB_ERR_FORMAT,
                            "tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%" PRIu64
                            ", %" PRIu64 "] overlap",
                            nb_st_shown(a, sizeof a, e[i - 1].name), e[i - 1].begin, e[i - 1].end,
                            nb_st_shown(b, sizeof b, e[i].name), e[i].begin, e[i].end);
        at = e[i].end;
    }
    if (at != buf_len)
        return nb_error(NB_ERR_FORMAT,
                        "%" PRIu64 " bytes at the end of the %" PRIu64 "-byte data buffer belong "
                        "to no tensor (the tensors cover %" PRIu64 ")",
                        buf_len - at, buf_len, at);
    return NB_OK;
}

/* The header text as a cJSON tree in h->root: checked by scan_header first, and nothing but
 * blanks after the object. */
static nb_status parse_json(const char *text, size_t n, st_header *h)
{
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
            at, n, nb_st_shown(shown_near, sizeof shown_near, near));
    }
    h->root = root;
    for (size_t i = (size_t)(end - text); i < n; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return nb_error(NB_ERR_FORMAT,
                            "header has trailing bytes after the JSON object (offset %zu of %zu)",
                            i, n);
    return NB_OK;
}

/* Counts the tensors (*n_tensors) and checks the metadata object (h->meta, h->meta_n), summing
 * the bytes of every string the result keeps (h->string_bytes). */
static nb_status count_entries(st_header *h, int *n_tensors)
{
    bool meta_seen = false;
    char nm[ST_SHOWN + 4];
    *n_tensors = 0;
    for (const cJSON *c = h->root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") != 0) {
            if (*n_tensors == INT_MAX)
                return nb_error(NB_ERR_FORMAT, "header has too many tensors");
            (*n_tensors)++;
            h->string_bytes += strlen(c->string) + 1;
            continue;
        }
        if (meta_seen)
            return nb_error(NB_ERR_FORMAT, "\"__metadata__\" appears twice in the header");
        meta_seen = true;
        if (cJSON_IsNull(c))
            continue; /* the reference implementation reads null as no metadata */
        if (!cJSON_IsObject(c))
            return nb_error(NB_ERR_FORMAT, "\"__metadata__\" is %s, not an object of strings",
                            nb_st_json_kind(c));
        h->meta = c;
        for (const cJSON *m = c->child; m; m = m->next) {
            if (!cJSON_IsString(m))
                return nb_error(NB_ERR_FORMAT, "metadata '%s' is %s, not a string",
                                nb_st_shown(nm, sizeof nm, m->string), nb_st_json_kind(m));
            if (h->meta_n == INT_MAX)
                return nb_error(NB_ERR_FORMAT, "header has too many metadata entries");
            h->meta_n++;
            h->string_bytes += strlen(m->string) + 1 + strlen(m->valuestring) + 1;
        }
    }
    return NB_OK;
}

/* Every tensor entry into h->entries, checked, and no name twice (cJSON keeps every copy of a
 * repeated key). */
static nb_status parse_entries(st_header *h, int n_tensors, uint64_t buf_len)
{
    char nm[ST_SHOWN + 4];
    h->entries = calloc(n_tensors > 0 ? (size_t)n_tensors : 1, sizeof *h->entries);
    st_key *keys = calloc(n_tensors > 0 ? (size_t)n_tensors : 1, sizeof *keys);
    if (!h->entries || !keys) {
        free(keys);
        return nb_error(NB_ERR_NOMEM, "out of memory for %d tensor entries", n_tensors);
    }
    nb_status st = NB_OK;
    for (const cJSON *c = h->root->child; c && st == NB_OK; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0)
            continue;
        st_entry *e = &h->entries[h->n];
        e->order = h->n;
        if ((st = parse_entry(c, buf_len, e)) == NB_OK) {
            keys[h->n] = (st_key){e->name, h->n};
            h->n++;
        }
    }
    int dup = st == NB_OK ? nb_st_sort_find_duplicate(keys, h->n) : -1;
    if (dup >= 0)
        st = nb_error(NB_ERR_FORMAT, "tensor '%s' appears twice in the header",
                      nb_st_shown(nm, sizeof nm, keys[dup].s));
    free(keys);
    return st;
}

/* No metadata key twice. */
static nb_status check_meta_keys(const st_header *h)
{
    if (h->meta_n == 0)
        return NB_OK;
    st_key *keys = calloc((size_t)h->meta_n, sizeof *keys);
    if (!keys)
        return nb_error(NB_ERR_NOMEM, "out of memory for %d metadata entries", h->meta_n);
    int k = 0;
    for (const cJSON *m = h->meta->child; m; m = m->next, k++)
        keys[k] = (st_key){m->string, k};
    int dup = nb_st_sort_find_duplicate(keys, h->meta_n);
    char nm[ST_SHOWN + 4];
    nb_status st = NB_OK;
    if (dup >= 0)
        st = nb_error(NB_ERR_FORMAT, "metadata key '%s' appears twice in the header",
                      nb_st_shown(nm, sizeof nm, keys[dup].s));
    free(keys);
    return st;
}

nb_status nb_st_parse_header(const char *text, size_t n, uint64_t buf_len, st_header *h)
{
    memset(h, 0, sizeof *h);
    int n_tensors;
    nb_status st;
    if ((st = parse_json(text, n, h)) != NB_OK || (st = count_entries(h, &n_tensors)) != NB_OK ||
        (st = parse_entries(h, n_tensors, buf_len)) != NB_OK || (st = check_meta_keys(h)) != NB_OK)
        return st;
    if (h->n > 1)
        qsort(h->entries, (size_t)h->n, sizeof *h->entries, cmp_entry);
    return check_tiling(h->entries, h->n, buf_len);
}

void nb_st_header_free(st_header *h)
{
    cJSON_Delete(h->root);
    free(h->entries);
    memset(h, 0, sizeof *h);
}

/* Reads the 8-byte header length of a file of `total` bytes and checks it. */
nb_status nb_st_check_length(const unsigned char *pre, size_t avail, uint64_t total, uint64_t *hlen)
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
