/* safetensors_internal.h - what the safetensors files share: the reader (safetensors_read.c),
 * its header checks (safetensors_header.c), the accessors (safetensors_meta.c), the writer
 * (safetensors_write.c) and their text helpers (safetensors_text.c). Not installed. */
#ifndef NABLA_SAFETENSORS_INTERNAL_H
#define NABLA_SAFETENSORS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "nabla/safetensors.h"

#define ST_MAX_HEADER ((uint64_t)100000000) /* the reference implementation's MAX_HEADER_SIZE */
#define ST_EXACT_LIMIT 9007199254740992.0   /* 2^53: doubles are exact integers below this */
#define ST_SUPPORTED "F32 F64 F16 BF16 I32 I64 U8 BOOL"
#define ST_SHOWN 80 /* bytes of a name kept in an error message */
#define ST_SHOWN_DIMS 8

/* safetensors dtype names, indexed by nb_dtype. */

/* safetensors dtype names, indexed by nb_dtype. */
extern const char *const nb_st_dtype_names[NB_DTYPE_COUNT];

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

/* Strings sorted with their original index, to find duplicates and to look names up. */
typedef struct st_key {
    const char *s;
    int i;
} st_key;

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

/* ---- text and JSON helpers (safetensors_text.c) ---- */

/* Length of the valid UTF-8 sequence starting at s (n bytes available), 0 if invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF, as JSON text must. */
size_t nb_st_utf8_sequence(const unsigned char *s, size_t n);
bool nb_st_utf8_valid(const char *s);
/* Copies s into out (cap >= 8) for an error message: control bytes and bytes that are not valid
 * UTF-8 become '?', and a long s is cut at a character boundary and ends in "...". Names come
 * from files and callers: never print them raw. */
const char *nb_st_shown(char *out, size_t cap, const char *s);
/* "[3, 4]" for the first min(n, ST_SHOWN_DIMS) of `total` dimensions. */
const char *nb_st_shape_text(char *out, size_t cap, const uint64_t *dims, int n, int total);
/* "a string", "a number", ... */
const char *nb_st_json_kind(const cJSON *x);
/* A JSON number that is an integer in [0, 2^53). */
bool nb_st_json_uint(const cJSON *x, uint64_t *out);
/* Describes a JSON value that should have been an integer: "2.5", "a string". */
const char *nb_st_json_value_text(char *out, size_t cap, const cJSON *x);
/* qsort order of st_key: by string, then by index. */
int nb_st_cmp_key(const void *a, const void *b);
/* Sorts keys by string; returns the position of the first of two equal strings, or -1. */
int nb_st_sort_find_duplicate(st_key *keys, int n);

/* ---- the header (safetensors_header.c) ---- */

/* Parses and checks the header text (n bytes, need not be NUL-terminated) for a data buffer of
 * buf_len bytes. On success h holds the cJSON tree and the entries sorted by offset; release
 * it with nb_st_header_free (also after a failure). */
nb_status nb_st_parse_header(const char *text, size_t n, uint64_t buf_len, st_header *h);
void nb_st_header_free(st_header *h);
/* Reads the 8-byte header length of a file of `total` bytes and checks it. */
nb_status nb_st_check_length(const unsigned char *pre, size_t avail, uint64_t total,
                             uint64_t *hlen);

#endif
