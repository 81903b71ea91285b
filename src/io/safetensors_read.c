/* safetensors_read.c - Hugging Face safetensors reader; the header checks are in
 * safetensors_header.c, the accessors in safetensors_meta.c, the writer in safetensors_write.c.
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
#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "safetensors_internal.h"

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
    qsort(keys, (size_t)n, sizeof *keys, nb_st_cmp_key);
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
    if (n > 0 && src->mem)
        memcpy(dst, src->mem + e->begin, n);
    if (n == 0 || src->mem)
        return NB_OK;
    char nm[ST_SHOWN + 4], what[ST_SHOWN + 16];
    snprintf(what, sizeof what, "tensor '%s'", nb_st_shown(nm, sizeof nm, e->name));
    return nb_read_exact(src->f, dst, n, what);
}

/* The result's names and metadata, copied from a checked header into one pool, and sorted. */
static nb_status build_index(const st_header *h, nb_safetensors *st)
{
    size_t nt = h->n > 0 ? (size_t)h->n : 1, nm = h->meta_n > 0 ? (size_t)h->meta_n : 1;
    st->tensors = calloc(nt, sizeof *st->tensors);
    st->names = calloc(nt, sizeof *st->names);
    st->by_name = calloc(nt, sizeof *st->by_name);
    st->meta_keys = calloc(nm, sizeof *st->meta_keys);
    st->meta_values = calloc(nm, sizeof *st->meta_values);
    st->meta_by_key = calloc(nm, sizeof *st->meta_by_key);
    st->pool = malloc(h->string_bytes > 0 ? h->string_bytes : 1);
    if (!st->tensors || !st->names || !st->by_name || !st->meta_keys || !st->meta_values ||
        !st->meta_by_key || !st->pool)
        return nb_error(NB_ERR_NOMEM, "out of memory for %d tensors and %zu bytes of names", h->n,
                        h->string_bytes);
    size_t at = 0;
    for (int i = 0; i < h->n; i++)
        st->names[i] = pool_put(st->pool, &at, h->entries[i].name);
    int k = 0;
    for (const cJSON *m = h->meta ? h->meta->child : NULL; m; m = m->next, k++) {
        st->meta_keys[k] = pool_put(st->pool, &at, m->string);
        st->meta_values[k] = pool_put(st->pool, &at, m->valuestring);
    }
    st->meta_count = h->meta_n;
    nb_status s = sort_index(st->names, h->n, st->by_name);
    return s != NB_OK ? s : sort_index(st->meta_keys, h->meta_n, st->meta_by_key);
}

/* Builds the result from a checked header, reading each tensor's bytes from src. */
static nb_status build_result(const st_header *h, const st_source *src, nb_safetensors **out)
{
    nb_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return nb_error(NB_ERR_NOMEM, "out of memory");
    nb_status s = build_index(h, st);
    for (int i = 0; s == NB_OK && i < h->n; i++) {
        const st_entry *e = &h->entries[i];
        nb_tensor *t;
        if ((s = nb_tensor_new(e->dtype, e->ndim, e->shape, &t)) != NB_OK) {
            char name[ST_SHOWN + 4], why[512];
            snprintf(why, sizeof why, "%s", nb_last_error());
            nb_error(s, "tensor '%s': %s", nb_st_shown(name, sizeof name, e->name), why);
            break;
        }
        st->tensors[i] = t;
        st->count = i + 1;
        if ((s = read_range(src, e, t->data)) == NB_OK)
            nb_tensor_from_le(t);
    }
    if (s != NB_OK) {
        nb_safetensors_free(st);
        return s;
    }
    st->count = h->n;
    *out = st;
    return NB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Public: reading.                                                                           */

static nb_status parse_image(const unsigned char *buf, size_t len, void *out)
{
    uint64_t hlen = 0;
    nb_status s = nb_st_check_length(buf, len, len, &hlen);
    if (s != NB_OK)
        return s;
    st_header h;
    s = nb_st_parse_header((const char *)buf + 8, (size_t)hlen, len - 8 - hlen, &h);
    if (s == NB_OK) {
        st_source src = {buf + 8 + hlen, NULL};
        s = build_result(&h, &src, out);
    }
    nb_st_header_free(&h);
    return s;
}

nb_safetensors *nb_safetensors_parse(const void *buf, size_t len)
{
    nb_safetensors *st = NULL;
    return nb_parse_buffer(buf, len, "safetensors", parse_image, &st) == NB_OK ? st : NULL;
}

static nb_status load_file(FILE *f, size_t size, void *out)
{
    unsigned char pre[8];
    size_t npre;
    uint64_t hlen = 0;
    nb_status s = nb_read_head(f, size, pre, sizeof pre, &npre, "header length");
    if (s != NB_OK || (s = nb_st_check_length(pre, npre, size, &hlen)) != NB_OK)
        return s;
    char *text = malloc(hlen > 0 ? (size_t)hlen : 1); /* <= 100 MB, checked */
    if (!text)
        return nb_error(NB_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte header", hlen);
    s = nb_read_exact(f, text, (size_t)hlen, "header");
    st_header h;
    memset(&h, 0, sizeof h);
    if (s == NB_OK)
        s = nb_st_parse_header(text, (size_t)hlen, size - 8 - hlen, &h);
    if (s == NB_OK) {
        st_source src = {NULL, f};
        s = build_result(&h, &src, out);
    }
    nb_st_header_free(&h);
    free(text);
    return s;
}

nb_safetensors *nb_safetensors_load(const char *path)
{
    nb_safetensors *st = NULL;
    if (nb_read_file(path, "safetensors", true, load_file, &st) == NB_OK)
        return st;
    nb_safetensors_free(st);
    return NULL;
}
