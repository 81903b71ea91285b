/* dataset.c - labelled data sets: building one from tensors, the MNIST and .npy-pair loaders,
 * the seeded validation split and the batch iterator.
 *
 * Every data set is f32 X [N, D] and i32 y [N] with N, D >= 1 and 0 <= y < n_classes; whatever
 * scaling was applied to the raw inputs is recorded (x' = raw * input_scale + input_shift) so a
 * model can be fed new raw inputs the same way.
 *
 * Shuffling is Fisher-Yates driven by nb_rng (bit-reproducible everywhere): for i = N-1 down to
 * 1, swap perm[i] with perm[j], j uniform in [0, i]. The batch iterator keeps its rng at the state
 * the current epoch's permutation was drawn from and moves it on to seed(u64(rng)) when the epoch
 * ends, so (epoch, pos, rng) is a complete resume point.
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nabla/dataset.h"
#include "../tensor/tensor_internal.h"
#include "nabla/npy.h"
#include "nabla/status.h"
#include "nabla/tensor.h"
#include "data_internal.h"

#define MNIST_SIDE 28
#define MNIST_CLASSES 10

void nb_dataset_free(nb_dataset *ds)
{
    if (!ds)
        return;
    nb_tensor_free(ds->X);
    nb_tensor_free(ds->y);
    memset(ds, 0, sizeof *ds);
}

/* ------------------------------------------------------------------------------------------ */
/* Class count                                                                                  */

nb_status nb_labels_class_check(const int32_t *y, int64_t n, bool *sparse, int64_t *max_label,
                                int64_t *max_at, int64_t *distinct)
{
    *sparse = false;
    *max_label = -1;
    *max_at = -1;
    *distinct = 0;
    for (int64_t i = 0; i < n; i++)
        if (y[i] > *max_label) {
            *max_label = y[i];
            *max_at = i;
        }
    int64_t K = *max_label + 1;
    if (K <= NB_DATASET_SPARSE_CLASSES)
        return NB_OK;
    /* K < 2^24 (labels are below NB_DATASET_MAX_CLASSES): a table of at most 2 MB. */
    unsigned char *seen = calloc((size_t)K / 8 + 1, 1);
    if (!seen)
        return nb_error(NB_ERR_NOMEM, "out of memory for a %" PRId64 "-class label table", K);
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)y[i];
        unsigned char bit = (unsigned char)(1u << (v % 8));
        if (!(seen[v / 8] & bit)) {
            seen[v / 8] |= bit;
            (*distinct)++;
        }
    }
    free(seen);
    *sparse = 2 * *distinct < K;
    return NB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Building from tensors                                                                        */

/* Checks that numel matches the shape (a caller-built struct could say otherwise) and that the
 * data pointer is there. */
static nb_status check_tensor(const nb_tensor *t, const char *what)
{
    char s[96];
    if (!t)
        return nb_error(NB_ERR_ARG, "%s is NULL", what);
    if (t->ndim < 0 || t->ndim > NB_MAX_DIMS)
        return nb_error(NB_ERR_SHAPE, "%s has %d dimensions", what, t->ndim);
    if ((unsigned)t->dtype >= NB_DTYPE_COUNT)
        return nb_error(NB_ERR_DTYPE, "%s has an invalid dtype %d", what, (int)t->dtype);
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || (t->shape[i] > 0 && n > INT64_MAX / t->shape[i]))
            return nb_error(NB_ERR_SHAPE, "%s has an invalid shape %s", what,
                            nb_shape_str(t, s, sizeof s));
        n *= t->shape[i];
    }
    if (n != t->numel)
        return nb_error(NB_ERR_SHAPE, "%s has numel %" PRId64 " but shape %s", what, t->numel,
                        nb_shape_str(t, s, sizeof s));
    if (n > 0 && !t->data)
        return nb_error(NB_ERR_ARG, "%s has no data", what);
    return NB_OK;
}

/* Reads label i of an integer tensor (i32, i64 or u8). */
static int64_t label_at(const nb_tensor *y, int64_t i)
{
    switch (y->dtype) {
    case NB_I32: return ((const int32_t *)y->data)[i];
    case NB_I64: return ((const int64_t *)y->data)[i];
    default: return ((const unsigned char *)y->data)[i];
    }
}

/* Converts row-major features of any float dtype or u8 into f32, checking they are finite and
 * fit; `D` is the row length for messages. */
static nb_status convert_features(const nb_tensor *X, int64_t D, float *out, const char *xd)
{
    int64_t n = X->numel;
    if (X->dtype == NB_U8) {
        const unsigned char *s = X->data;
        for (int64_t i = 0; i < n; i++)
            out[i] = (float)((double)s[i] / 255.0);
        return NB_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        double v;
        switch (X->dtype) {
        case NB_F32: v = ((const float *)X->data)[i]; break;
        case NB_F64: v = ((const double *)X->data)[i]; break;
        case NB_F16: v = nb_f16_to_f32(((const uint16_t *)X->data)[i]); break;
        default: v = nb_bf16_to_f32(((const uint16_t *)X->data)[i]); break;
        }
        if (!isfinite(v) || fabs(v) > FLT_MAX)
            return nb_error(NB_ERR_RANGE,
                            "%s has %s value %g at row %" PRId64 ", column %" PRId64
                            " (features must be finite f32 numbers)",
                            xd, isfinite(v) ? "an out-of-f32-range" : "a non-finite", v, i / D,
                            i % D);
        out[i] = (float)v;
    }
    return NB_OK;
}

/* The shared builder. xd and yd describe X and y in messages ("X", "X 'a.npy'"). */
static nb_status build(const nb_tensor *X, const nb_tensor *y, int64_t n_classes, const char *xd,
                       const char *yd, nb_dataset *out)
{
    char sx[96], sy[96];
    nb_status st;
    if ((st = check_tensor(X, xd)) != NB_OK || (st = check_tensor(y, yd)) != NB_OK)
        return st;
    nb_dtype xt = X->dtype, yt = y->dtype;
    if (!(xt == NB_F32 || xt == NB_F64 || xt == NB_F16 || xt == NB_BF16 || xt == NB_U8))
        return nb_error(NB_ERR_DTYPE, "%s has dtype %s; expected f32, f64, f16, bf16 or u8", xd,
                        nb_dtype_name(xt));
    if (!(yt == NB_I32 || yt == NB_I64 || yt == NB_U8))
        return nb_error(NB_ERR_DTYPE, "%s has dtype %s; expected integer labels (i32, i64 or u8)",
                        yd, nb_dtype_name(yt));
    if (X->ndim < 2)
        return nb_error(NB_ERR_SHAPE, "%s has shape %s; expected [N, D], [N, H, W] or [N, C, H, W]",
                        xd, nb_shape_str(X, sx, sizeof sx));
    if (y->ndim != 1)
        return nb_error(NB_ERR_SHAPE, "%s has shape %s; expected [N]", yd,
                        nb_shape_str(y, sy, sizeof sy));
    int64_t N = X->shape[0];
    if (y->shape[0] != N)
        return nb_error(NB_ERR_SHAPE, "%s has shape %s but %s has shape %s: the row counts differ",
                        xd, nb_shape_str(X, sx, sizeof sx), yd, nb_shape_str(y, sy, sizeof sy));
    if (N == 0 || X->numel == 0)
        return nb_error(NB_ERR_SHAPE,
                        "%s has shape %s: a data set needs at least one row and one "
                        "feature",
                        xd, nb_shape_str(X, sx, sizeof sx));
    int64_t D = X->numel / N;
    if (n_classes < 0 || n_classes > NB_DATASET_MAX_CLASSES)
        return nb_error(NB_ERR_ARG,
                        "n_classes %" PRId64 " is out of range (0 = infer, at most %" PRId64 ")",
                        n_classes, NB_DATASET_MAX_CLASSES);

    int64_t max_label = -1;
    for (int64_t i = 0; i < N; i++) {
        int64_t v = label_at(y, i);
        if (v < 0)
            return nb_error(NB_ERR_RANGE, "%s: label %" PRId64 " at row %" PRId64 " is negative",
                            yd, v, i);
        if (n_classes > 0 && v >= n_classes)
            return nb_error(NB_ERR_RANGE,
                            "%s: label %" PRId64 " at row %" PRId64 " is out of range for %" PRId64
                            " classes",
                            yd, v, i, n_classes);
        if (v >= NB_DATASET_MAX_CLASSES)
            return nb_error(NB_ERR_RANGE,
                            "%s: label %" PRId64 " at row %" PRId64
                            " is not below the limit of %" PRId64 " classes",
                            yd, v, i, NB_DATASET_MAX_CLASSES);
        if (v > max_label)
            max_label = v;
    }

    int64_t shx[2] = {N, D}, shy[1] = {N};
    nb_tensor *Xo = nb_tensor_empty(NB_F32, 2, shx);
    nb_tensor *yo = Xo ? nb_tensor_empty(NB_I32, 1, shy) : NULL;
    if (!Xo || !yo) {
        nb_tensor_free(Xo);
        return nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
    }
    if ((st = convert_features(X, D, Xo->data, xd)) != NB_OK) {
        nb_tensor_free(Xo);
        nb_tensor_free(yo);
        return st;
    }
    int32_t *yv = yo->data;
    for (int64_t i = 0; i < N; i++)
        yv[i] = (int32_t)label_at(y, i);
    if (n_classes == 0) { /* inferred: only as many classes as the labels really describe */
        bool sparse;
        int64_t mx, at, distinct;
        st = nb_labels_class_check(yv, N, &sparse, &mx, &at, &distinct);
        if (st == NB_OK && sparse)
            st = nb_error(NB_ERR_RANGE,
                          "%s: label %" PRId64 " at row %" PRId64 " implies %" PRId64
                          " classes but only %" PRId64 " distinct labels occur (labels are class "
                          "ids 0..K-1; above %d classes at least half of them must occur)",
                          yd, mx, at, mx + 1, distinct, NB_DATASET_SPARSE_CLASSES);
        if (st != NB_OK) {
            nb_tensor_free(Xo);
            nb_tensor_free(yo);
            return st;
        }
    }
    out->X = Xo;
    out->y = yo;
    out->n_classes = n_classes > 0 ? n_classes : max_label + 1;
    out->input_scale = xt == NB_U8 ? 1.0 / 255.0 : 1.0;
    out->input_shift = 0.0;
    return NB_OK;
}

nb_status nb_dataset_from_tensors(const nb_tensor *X, const nb_tensor *y, int64_t n_classes,
                                  nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "nb_dataset_from_tensors: out is NULL");
    memset(out, 0, sizeof *out);
    nb_status st = build(X, y, n_classes, "X", "y", out);
    if (st == NB_OK)
        snprintf(out->name, sizeof out->name, "tensors");
    return nb_error_in("nb_dataset_from_tensors", st);
}

/* Base name of a path without its extension, into name[64]. */
static void name_from_path(char *name, size_t cap, const char *path, const char *suffix)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') /* "data/mnist/" -> "data/mnist" */
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    size_t n = 0;
    while (start + n < len && path[start + n] != '.')
        n++;
    if (n == 0)
        n = len - start;
    snprintf(name, cap, "%.*s%s", (int)(n < cap ? n : cap - 1), path + start, suffix);
}

nb_status nb_dataset_load_npy(const char *x_path, const char *y_path, nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "dataset: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!x_path || !y_path)
        return nb_error(NB_ERR_ARG, "dataset: %s path is NULL", !x_path ? "X" : "y");
    nb_tensor *X = nb_npy_load(x_path); /* its messages already name the file */
    if (!X)
        return nb_last_status();
    nb_tensor *y = nb_npy_load(y_path);
    if (!y) {
        nb_tensor_free(X);
        return nb_last_status();
    }
    size_t xl = strlen(x_path) + 8, yl = strlen(y_path) + 8;
    char *xd = malloc(xl), *yd = malloc(yl);
    nb_status st;
    if (!xd || !yd) {
        st = nb_error(NB_ERR_NOMEM, "dataset: out of memory for a file name");
    } else {
        snprintf(xd, xl, "X '%s'", x_path);
        snprintf(yd, yl, "y '%s'", y_path);
        st = build(X, y, 0, xd, yd, out);
    }
    free(xd);
    free(yd);
    nb_tensor_free(X);
    nb_tensor_free(y);
    if (st == NB_OK)
        name_from_path(out->name, sizeof out->name, x_path, "");
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* MNIST / Fashion-MNIST                                                                        */

/* Finds dir/base.gz or dir/base; *path is malloc'd. */
static nb_status find_file(const char *dir, const char *base, char **path)
{
    size_t n = strlen(dir) + strlen(base) + 5; /* '/', ".gz", NUL */
    char *gz = malloc(n), *plain = malloc(n);
    if (!gz || !plain) {
        free(gz);
        free(plain);
        return nb_error(NB_ERR_NOMEM, "mnist: out of memory for a file name");
    }
    snprintf(gz, n, "%s/%s.gz", dir, base);
    snprintf(plain, n, "%s/%s", dir, base);
    struct stat sb;
    if (stat(gz, &sb) == 0) {
        free(plain);
        *path = gz;
        return NB_OK;
    }
    if (stat(plain, &sb) == 0) {
        free(gz);
        *path = plain;
        return NB_OK;
    }
    nb_status st = nb_error(NB_ERR_IO, "mnist: cannot find '%s' or '%s'", gz, plain);
    free(gz);
    free(plain);
    return st;
}

/* The shapes of the images and labels, from the headers (before anything is loaded) or from the
 * loaded tensors: u8 [N, 28, 28] and u8 [N], the same N >= 1. */
static nb_status mnist_check_shapes(const nb_tensor *img, const nb_tensor *lab,
                                    const char *img_path, const char *lab_path)
{
    char s[96];
    if (img->dtype != NB_U8 || img->ndim != 3 || img->shape[1] != MNIST_SIDE ||
        img->shape[2] != MNIST_SIDE)
        return nb_error(NB_ERR_FORMAT, "mnist: '%s' holds %s %s; expected u8 [N, 28, 28] images",
                        img_path, nb_dtype_name(img->dtype), nb_shape_str(img, s, sizeof s));
    if (lab->dtype != NB_U8 || lab->ndim != 1)
        return nb_error(NB_ERR_FORMAT, "mnist: '%s' holds %s %s; expected u8 [N] labels", lab_path,
                        nb_dtype_name(lab->dtype), nb_shape_str(lab, s, sizeof s));
    if (img->shape[0] != lab->shape[0])
        return nb_error(NB_ERR_FORMAT,
                        "mnist: '%s' has %" PRId64 " images but '%s' has %" PRId64 " labels",
                        img_path, img->shape[0], lab_path, lab->shape[0]);
    if (img->shape[0] == 0)
        return nb_error(NB_ERR_FORMAT, "mnist: '%s' holds no images", img_path);
    return NB_OK;
}

/* The cheap check first: both headers (only their first bytes inflated), before a byte of image
 * data is inflated or allocated. A gzip bomb whose header claims millions of images against
 * 60000 labels is refused in microseconds. */
static nb_status mnist_check_headers(const char *img_path, const char *lab_path)
{
    nb_tensor hi, hl; /* shape-only views: no data */
    memset(&hi, 0, sizeof hi);
    memset(&hl, 0, sizeof hl);
    nb_status st = nb_idx_peek(img_path, &hi.dtype, &hi.ndim, hi.shape);
    if (st == NB_OK)
        st = nb_idx_peek(lab_path, &hl.dtype, &hl.ndim, hl.shape);
    if (st != NB_OK)
        return st;
    return mnist_check_shapes(&hi, &hl, img_path, lab_path);
}

static nb_status mnist_check(const nb_tensor *img, const nb_tensor *lab, const char *img_path,
                             const char *lab_path)
{
    nb_status st = mnist_check_shapes(img, lab, img_path, lab_path);
    if (st != NB_OK)
        return st;
    const unsigned char *l = lab->data;
    for (int64_t i = 0; i < lab->numel; i++)
        if (l[i] >= MNIST_CLASSES)
            return nb_error(NB_ERR_FORMAT,
                            "mnist: '%s': label %u at row %" PRId64 " is not below %d", lab_path,
                            l[i], i, MNIST_CLASSES);
    return NB_OK;
}

nb_status nb_dataset_load_mnist(const char *dir, const char *split, nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "mnist: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || !split)
        return nb_error(NB_ERR_ARG, "mnist: %s is NULL", !dir ? "dir" : "split");
    const char *prefix;
    if (strcmp(split, "train") == 0)
        prefix = "train";
    else if (strcmp(split, "test") == 0)
        prefix = "t10k";
    else
        return nb_error(NB_ERR_ARG, "mnist: split '%.32s' is neither 'train' nor 'test'", split);
    char img_base[40], lab_base[40];
    snprintf(img_base, sizeof img_base, "%s-images-idx3-ubyte", prefix);
    snprintf(lab_base, sizeof lab_base, "%s-labels-idx1-ubyte", prefix);

    char *img_path = NULL, *lab_path = NULL;
    nb_tensor *img = NULL, *lab = NULL;
    nb_status st = find_file(dir, img_base, &img_path);
    if (st == NB_OK)
        st = find_file(dir, lab_base, &lab_path);
    if (st == NB_OK)
        st = mnist_check_headers(img_path, lab_path);
    if (st == NB_OK && !(img = nb_idx_load(img_path))) /* idx messages name the file */
        st = nb_last_status();
    if (st == NB_OK && !(lab = nb_idx_load(lab_path)))
        st = nb_last_status();
    if (st == NB_OK)
        st = mnist_check(img, lab, img_path, lab_path);
    if (st == NB_OK) {
        st = build(img, lab, MNIST_CLASSES, "images", "labels", out);
        if (st != NB_OK) { /* out of memory: say which files */
            char msg[768];
            snprintf(msg, sizeof msg, "%s", nb_last_error());
            nb_error(st, "mnist: '%s': %s", img_path, msg);
        }
    }
    if (st == NB_OK)
        name_from_path(out->name, sizeof out->name, dir, split[1] == 'r' ? "-train" : "-test");
    nb_tensor_free(img);
    nb_tensor_free(lab);
    free(img_path);
    free(lab_path);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Split                                                                                        */

/* A data set as the split and the batcher need it: f32 X [N, D], i32 y [N], N >= 1. */
static nb_status check_dataset(const nb_dataset *ds, const char *who)
{
    char s[96];
    if (!ds)
        return nb_error(NB_ERR_ARG, "%s: data set is NULL", who);
    if (check_tensor(ds->X, "X") != NB_OK || check_tensor(ds->y, "y") != NB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        return nb_error(NB_ERR_ARG, "%s: %s", who, msg);
    }
    if (ds->X->dtype != NB_F32 || ds->X->ndim != 2 || ds->X->shape[0] < 1 || ds->X->shape[1] < 1)
        return nb_error(NB_ERR_SHAPE, "%s: X is %s %s; expected f32 [N, D] with N, D >= 1", who,
                        nb_dtype_name(ds->X->dtype), nb_shape_str(ds->X, s, sizeof s));
    if (ds->y->dtype != NB_I32 || ds->y->ndim != 1 || ds->y->shape[0] != ds->X->shape[0])
        return nb_error(NB_ERR_SHAPE, "%s: y is %s %s; expected i32 [%" PRId64 "]", who,
                        nb_dtype_name(ds->y->dtype), nb_shape_str(ds->y, s, sizeof s),
                        ds->X->shape[0]);
    return NB_OK;
}

/* perm = 0..N-1 shuffled by Fisher-Yates with r. */
static void shuffle(int64_t *perm, int64_t N, nb_rng *r)
{
    for (int64_t i = 0; i < N; i++)
        perm[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
        int64_t j = (int64_t)nb_rng_below(r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* out = the rows idx[0..n) of all, as fresh tensors with all's metadata. */
static nb_status gather(const nb_dataset *all, const int64_t *idx, int64_t n, nb_dataset *out)
{
    int64_t D = all->X->shape[1];
    int64_t sx[2] = {n, D}, sy[1] = {n};
    nb_tensor *X = nb_tensor_empty(NB_F32, 2, sx);
    nb_tensor *y = X ? nb_tensor_empty(NB_I32, 1, sy) : NULL;
    if (!X || !y) {
        nb_tensor_free(X);
        return nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
    }
    const float *xs = all->X->data;
    const int32_t *ys = all->y->data;
    float *xd = X->data;
    int32_t *yd = y->data;
    for (int64_t i = 0; i < n; i++) {
        memcpy(xd + i * D, xs + idx[i] * D, (size_t)D * sizeof(float));
        yd[i] = ys[idx[i]];
    }
    out->X = X;
    out->y = y;
    out->n_classes = all->n_classes;
    out->input_scale = all->input_scale;
    out->input_shift = all->input_shift;
    memcpy(out->name, all->name, sizeof out->name);
    out->name[sizeof out->name - 1] = '\0';
    return NB_OK;
}

nb_status nb_dataset_split(const nb_dataset *all, double val_fraction, uint64_t seed,
                           nb_dataset *train, nb_dataset *val)
{
    if (!train || !val || train == val || train == all || val == all)
        return nb_error(NB_ERR_ARG, "split: train and val must be two distinct data sets, "
                                    "neither of them the input");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    nb_status st = check_dataset(all, "split");
    if (st != NB_OK)
        return st;
    if (!(val_fraction > 0.0 && val_fraction < 1.0))
        return nb_error(NB_ERR_ARG, "split: val_fraction %g must be in (0, 1)", val_fraction);
    int64_t N = all->X->shape[0];
    int64_t n_val = (int64_t)floor((double)N * val_fraction + 0.5);
    if (n_val < 1 || n_val > N - 1)
        return nb_error(NB_ERR_ARG,
                        "split: val_fraction %g of %" PRId64 " rows gives %" PRId64
                        " validation and %" PRId64 " training rows; both need at least one",
                        val_fraction, N, n_val, N - n_val);
    int64_t *perm = malloc((size_t)N * sizeof *perm);
    if (!perm)
        return nb_error(NB_ERR_NOMEM, "split: out of memory for a %" PRId64 "-row permutation", N);
    nb_rng r;
    nb_rng_seed(&r, seed);
    shuffle(perm, N, &r);
    st = gather(all, perm, n_val, val);
    if (st == NB_OK)
        st = gather(all, perm + n_val, N - n_val, train);
    free(perm);
    if (st != NB_OK) {
        nb_dataset_free(val);
        nb_dataset_free(train);
    }
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Batch iterator                                                                               */

/* The current epoch's order: identity, or a permutation drawn from a copy of b->rng (b->rng
 * itself stays at the epoch's starting state, the resume point). */
static void make_perm(nb_batcher *b)
{
    int64_t N = b->ds->X->shape[0];
    nb_rng r = b->rng;
    if (b->shuffle) {
        shuffle(b->perm, N, &r);
    } else {
        for (int64_t i = 0; i < N; i++)
            b->perm[i] = i;
    }
}

nb_status nb_batcher_init(nb_batcher *b, const nb_dataset *ds, int64_t batch, bool shuffle_rows,
                          uint64_t seed)
{
    if (!b)
        return nb_error(NB_ERR_ARG, "batcher: iterator is NULL");
    memset(b, 0, sizeof *b);
    nb_status st = check_dataset(ds, "batcher");
    if (st != NB_OK)
        return st;
    if (batch < 1)
        return nb_error(NB_ERR_ARG, "batcher: batch size %" PRId64 " must be >= 1", batch);
    int64_t N = ds->X->shape[0];
    if ((uint64_t)N > SIZE_MAX / sizeof *b->perm)
        return nb_error(NB_ERR_NOMEM, "batcher: %" PRId64 " rows are too many", N);
    b->perm = malloc((size_t)N * sizeof *b->perm);
    if (!b->perm)
        return nb_error(NB_ERR_NOMEM, "batcher: out of memory for a %" PRId64 "-row permutation",
                        N);
    b->ds = ds;
    b->batch = batch;
    b->shuffle = shuffle_rows;
    nb_rng_seed(&b->rng, seed);
    make_perm(b);
    return NB_OK;
}

/* Checks xb / yb can take `take` rows. See dataset.h for the rule about shrunk tensors. */
static nb_status check_outputs(const nb_batcher *b, const nb_tensor *xb, const nb_tensor *yb,
                               int64_t take)
{
    char s[96];
    int64_t N = b->ds->X->shape[0], D = b->ds->X->shape[1];
    if (!xb || !yb)
        return nb_error(NB_ERR_ARG, "batcher: %s is NULL", !xb ? "xb" : "yb");
    if (xb->dtype != NB_F32 || xb->ndim != 2 || xb->shape[1] != D || !xb->data)
        return nb_error(NB_ERR_SHAPE,
                        "batcher: xb is %s %s; expected f32 [%" PRId64 ", %" PRId64 "] with data",
                        nb_dtype_name(xb->dtype), nb_shape_str(xb, s, sizeof s), b->batch, D);
    if (yb->dtype != NB_I32 || yb->ndim != 1 || !yb->data)
        return nb_error(NB_ERR_SHAPE, "batcher: yb is %s %s; expected i32 [%" PRId64 "] with data",
                        nb_dtype_name(yb->dtype), nb_shape_str(yb, s, sizeof s), b->batch);
    int64_t short_rows = N % b->batch;
    bool ours =
        b->pos == 0 && short_rows != 0 && xb->shape[0] == short_rows && yb->shape[0] == short_rows;
    if (!ours && (xb->shape[0] < take || yb->shape[0] < take))
        return nb_error(NB_ERR_SHAPE,
                        "batcher: xb has room for %" PRId64 " rows and yb for %" PRId64
                        ", the batch needs %" PRId64,
                        xb->shape[0], yb->shape[0], take);
    return NB_OK;
}

bool nb_batcher_next(nb_batcher *b, nb_tensor *xb, nb_tensor *yb)
{
    if (!b || !b->perm || check_dataset(b->ds, "batcher") != NB_OK) {
        if (!b || !b->perm)
            nb_error(NB_ERR_STATE, "batcher: iterator is NULL or not initialised");
        return false;
    }
    int64_t N = b->ds->X->shape[0], D = b->ds->X->shape[1];
    if (b->pos >= N) { /* end of the epoch: report it, and set up the next one */
        uint64_t next_seed = nb_rng_u64(&b->rng);
        nb_rng_seed(&b->rng, next_seed);
        b->epoch++;
        b->pos = 0;
        make_perm(b);
        return false;
    }
    int64_t take = N - b->pos < b->batch ? N - b->pos : b->batch;
    if (check_outputs(b, xb, yb, take) != NB_OK)
        return false;
    const float *xs = b->ds->X->data;
    const int32_t *ys = b->ds->y->data;
    float *xd = xb->data;
    int32_t *yd = yb->data;
    for (int64_t i = 0; i < take; i++) {
        int64_t r = b->perm[b->pos + i];
        memcpy(xd + i * D, xs + r * D, (size_t)D * sizeof(float));
        yd[i] = ys[r];
    }
    xb->shape[0] = take;
    xb->numel = take * D;
    yb->shape[0] = take;
    yb->numel = take;
    b->pos += take;
    return true;
}

nb_status nb_batcher_seek(nb_batcher *b, int64_t epoch, int64_t pos, const nb_rng *rng)
{
    if (!b || !b->perm || !rng)
        return nb_error(NB_ERR_ARG, "batcher: seek needs an initialised iterator and an rng");
    nb_status st = check_dataset(b->ds, "batcher");
    if (st != NB_OK)
        return st;
    int64_t N = b->ds->X->shape[0];
    if (epoch < 0 || pos < 0 || pos > N)
        return nb_error(NB_ERR_ARG,
                        "batcher: position epoch %" PRId64 ", pos %" PRId64
                        " is out of range (epoch >= 0, 0 <= pos <= %" PRId64 ")",
                        epoch, pos, N);
    b->epoch = epoch;
    b->pos = pos;
    b->rng = *rng;
    make_perm(b);
    return NB_OK;
}

void nb_batcher_free(nb_batcher *b)
{
    if (!b)
        return;
    free(b->perm);
    memset(b, 0, sizeof *b);
}
