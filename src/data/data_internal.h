/* data_internal.h - what the readers in src/data share. Not installed. */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/status.h"
#include "nabla/tensor.h"

/* Checks the class count labels y[0..n) imply (K = max label + 1, labels already checked to be
 * in [0, NB_DATASET_MAX_CLASSES)) against what the data supports: above NB_DATASET_SPARSE_CLASSES
 * classes, at least half of 0..K-1 must occur. *sparse says whether that failed; *max_label,
 * *max_at (the first index holding it) and *distinct are for the caller's message. Fails only
 * for lack of memory (a K-bit table). */
nb_status nb_labels_class_check(const int32_t *y, int64_t n, bool *sparse, int64_t *max_label,
                                int64_t *max_at, int64_t *distinct);

/* What an IDX file's header says, read without loading (or inflating) the data: the dtype it
 * would load as, and its shape. For gzip input only the first bytes are inflated. Checks the
 * header and, cheaply, that the file can hold what it claims (a plain file's size; for gzip the
 * most deflate can expand the compressed bytes to). Errors as nb_idx_load ("idx: '<path>': ...").
 */
nb_status nb_idx_peek(const char *path, nb_dtype *dtype, int *ndim, int64_t shape[NB_MAX_DIMS]);

/* A caller-built tensor header checked by the one validator (nb_tensor_check_layout): errors
 * read "<what> is NULL" or "<what>: <problem>" ("X: tensor numel 4 does not match its shape (3
 * elements)"). */
nb_status nb_dataset_check_tensor(const nb_tensor *t, const char *what);

/* Class names: frees n names (NULL-safe); copies n checked names into a new array (*out NULL
 * when names is NULL). */
void nb_dataset_free_names_(char **names, int64_t n);
nb_status nb_dataset_copy_names_(const char *const *names, int64_t n, char ***out);
/* Is s[0..n) valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)? */
bool nb_utf8_valid_(const char *s, size_t n);

#endif
