/* dataset.c - labelled data sets: building one from tensors, the MNIST and .npy-pair loaders.
 * The seeded validation split and the batch iterator are in batcher.c.
 *
 * Every data set is f32 X [N, D] and i32 y [N] with N, D >= 1 and 0 <= y < n_classes; whatever
 * scaling was applied to the raw inputs is recorded (x' = raw * input_scale + input_shift) so a
 * model can be fed new raw inputs the same way.
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
#include "../tensor/fileio.h"
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
    nb_tensor_free(ds->mean);
    nb_tensor_free(ds->std);
    nb_dataset_free_names_(ds->class_names, ds->n_classes);
    memset(ds, 0, sizeof *ds);
}

void nb_dataset_free_names_(char **names, int64_t n)
{
    for (int64_t k = 0; names && k < n; k++)
        free(names[k]);
    free(names);
}

nb_status nb_dataset_copy_names_(const char *const *names, int64_t n, char ***out)
{
    *out = NULL;
    if (!names)
        return NB_OK;
    char **c = calloc((size_t)n, sizeof *c);
    if (!c)
        return nb_error(NB_ERR_NOMEM, "out of memory for %lld class names", (long long)n);
    for (int64_t k = 0; k < n; k++) {
        size_t len = names[k] ? strlen(names[k]) : 0;
        bool ok = len > 0 && len < NB_CLASS_NAME_MAX;
        for (size_t i = 0; ok && i < len; i++)
            ok = (unsigned char)names[k][i] >= 0x20 && names[k][i] != 0x7f;
        ok = ok && nb_utf8_valid_(names[k], len); /* checkpoints keep names in JSON text */
        if (!ok) {
            nb_dataset_free_names_(c, n);
            return nb_error(
                NB_ERR_ARG, "class name %lld is %s; expected 1 to %d printable bytes of UTF-8",
                (long long)k, names[k] ? "empty, too long, not printable or not UTF-8" : "NULL",
                NB_CLASS_NAME_MAX - 1);
        }
        if (!(c[k] = strdup(names[k]))) {
            nb_dataset_free_names_(c, n);
            return nb_error(NB_ERR_NOMEM, "out of memory for class name %lld", (long long)k);
        }
    }
    *out = c;
    return NB_OK;
}

nb_status nb_dataset_set_class_names(nb_dataset *ds, const char *const *names, int64_t n)
{
    if (!ds)
        return nb_error(NB_ERR_ARG, "nb_dataset_set_class_names: ds is NULL");
    if (names && n != ds->n_classes)
        return nb_error(NB_ERR_ARG,
                        "nb_dataset_set_class_names: %lld names for a data set of %lld classes",
                        (long long)n, (long long)ds->n_classes);
    char **c;
    nb_status s = nb_dataset_copy_names_(names, n, &c);
    if (s != NB_OK)
        return s;
    nb_dataset_free_names_(ds->class_names, ds->n_classes);
    ds->class_names = c;
    return NB_OK;
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

nb_status nb_dataset_check_tensor(const nb_tensor *t, const char *what)
{
    if (!t)
        return nb_error(NB_ERR_ARG, "%s is NULL", what);
    nb_status st = nb_tensor_check_layout(t, NULL);
    if (st != NB_OK)
        nb_error_prefix(st, what, NULL);
    return st;
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

/* Every label in [0, n_classes) (n_classes 0: below NB_DATASET_MAX_CLASSES); *max_label is the
 * largest. */
static nb_status check_labels(const nb_tensor *y, int64_t N, int64_t n_classes, const char *yd,
                              int64_t *max_label_out)
{
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
    *max_label_out = max_label;
    return NB_OK;
}

/* The shared builder. xd and yd describe X and y in messages ("X", "X 'a.npy'"). */
static nb_status build(const nb_tensor *X, const nb_tensor *y, int64_t n_classes, const char *xd,
                       const char *yd, nb_dataset *out)
{
    char sx[96], sy[96];
    nb_status st;
    if ((st = nb_dataset_check_tensor(X, xd)) != NB_OK ||
        (st = nb_dataset_check_tensor(y, yd)) != NB_OK)
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
    if ((st = check_labels(y, N, n_classes, yd, &max_label)) != NB_OK)
        return st;

    int64_t shx[2] = {N, D}, shy[1] = {N};
    nb_tensor *Xo, *yo = NULL;
    if ((st = nb_tensor_new(NB_F32, 2, shx, &Xo)) != NB_OK ||
        (st = nb_tensor_new(NB_I32, 1, shy, &yo)) != NB_OK) {
        nb_tensor_free(Xo);
        return st;
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
