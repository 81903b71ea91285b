/* nabla/dataset.h - labelled data sets for training a classifier: readers for IDX (MNIST, plain
 * or gzip), CSV and .npy feature/label pairs, a seeded validation split, and a batch iterator
 * with seeded shuffling.
 *
 * Every reader is written for hostile input: nothing in a file can make it abort, and no header
 * value is trusted for an allocation before it is checked against the bytes really there. Errors
 * come back as an nb_status with a message (nb_last_error()) naming the file, the line or row and
 * the values involved.
 *
 * Ownership: an nb_dataset filled by a loader owns its two tensors; release them with
 * nb_dataset_free. Loaders overwrite `out` without freeing what it held, and leave it zeroed on
 * failure.
 */
#ifndef NABLA_DATASET_H
#define NABLA_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest inflated IDX image nb_idx_parse accepts from gzip input (2 GiB). */
#define NB_IDX_MAX_INFLATED ((size_t)1 << 31)
/* Largest number of classes a loader accepts (labels are < this). */
#define NB_DATASET_MAX_CLASSES ((int64_t)1 << 24)

/* A labelled data set held in memory: features f32 [N, D] (already normalised:
 * x' = x * input_scale + input_shift applied at load), labels i32 [N] in [0, n_classes).
 * N >= 1 and D >= 1 for every data set a loader returns. Caller-owned; free with
 * nb_dataset_free. */
typedef struct nb_dataset {
    nb_tensor *X; /* f32 [N, D] */
    nb_tensor *y; /* i32 [N] */
    int64_t n_classes;
    double input_scale, input_shift; /* what was applied to raw inputs: raw * scale + shift */
    char name[64];
    /* NULL, or f32 [D] each: the per-feature standardisation applied after scale and shift,
     * x' = (x - mean) / std (nb_dataset_standardize). Owned by the data set. */
    nb_tensor *mean, *std;
    /* NULL, or n_classes names (class k is class_names[k]; each a malloc'd string): a CSV
     * header's, a built-in set's, or nb_dataset_set_class_names's. Owned by the data set. */
    char **class_names;
} nb_dataset;

/* Frees X, y, mean, std and class_names and leaves the struct zeroed. NULL-safe. */
void nb_dataset_free(nb_dataset *ds);

/* Copies n = ds->n_classes names (each non-empty, printable UTF-8, at most NB_CLASS_NAME_MAX - 1
 * bytes)
 * into ds->class_names, replacing any; names NULL removes them. On error nothing changes. */
#define NB_CLASS_NAME_MAX 64
nb_status nb_dataset_set_class_names(nb_dataset *ds, const char *const *names, int64_t n);

/* The ten class names of Fashion-MNIST (fashion true: "T-shirt/top", "Trouser", "Pullover",
 * "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot") or of MNIST ("0" to "9"): a
 * static array of 10 strings, never freed. The two sets share their file names, so the caller
 * says which one it loaded: nb_dataset_set_class_names(ds, nb_mnist_class_names(fashion), 10). */
const char *const *nb_mnist_class_names(bool fashion);

/* Reads class names from a text file, one per line (\n or \r\n; a final line end optional,
 * blank lines at the end ignored, spaces around a name kept out), exactly ds->n_classes of them,
 * each as nb_dataset_set_class_names checks, and sets them on ds. The file must be a regular
 * file (a FIFO is refused without blocking) of at most NB_CLASS_NAMES_FILE_MAX bytes. Errors name
 * the file, the line and the limit; on error ds is unchanged. */
#define NB_CLASS_NAMES_FILE_MAX ((size_t)1 << 24)
nb_status nb_dataset_load_class_names(nb_dataset *ds, const char *path);

/* ---- IDX, the MNIST format ----
 * Layout: magic 0x00 0x00 TYPE NDIM, NDIM big-endian u32 dimensions, then the big-endian data
 * (product of the dimensions elements), nothing after it. 1 to 4 dimensions. Types:
 *   0x08 u8 -> NB_U8    0x09 i8 -> NB_I32    0x0B i16 -> NB_I32    0x0C i32 -> NB_I32
 *   0x0D f32 -> NB_F32  0x0E f64 -> NB_F64
 * gzip input (magic 1f 8b, one or more members) is inflated through zlib. The inflated size is
 * capped at min(NB_IDX_MAX_INFLATED, what the header's dimensions imply plus the header), and the
 * output buffer grows only as real inflated bytes arrive, so neither a zip bomb nor a lying header
 * can exhaust memory. Returns a new caller-owned tensor, or NULL and nb_last_error(). */
nb_tensor *nb_idx_load(const char *path);
/* Parses plain or gzip bytes held in memory (copied: buf is borrowed for the call). */
nb_tensor *nb_idx_parse(const void *buf, size_t len);

/* ---- loaders ---- */

/* MNIST or Fashion-MNIST from `dir` holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each as .gz or plain (the .gz is tried
 * first). split: "train" or "test". X = pixels / 255 as f32 [N, 784] (input_scale 1/255,
 * shift 0), y i32 [N], n_classes 10. Checks that images are u8 [N, 28, 28], labels u8 [N] with the
 * same N, every label < 10; any error message names the file. */
nb_status nb_dataset_load_mnist(const char *dir, const char *split, nb_dataset *out);

/* Whether the first line of a CSV is a header. NO and YES keep the values of the bool this
 * parameter used to be (false, true). AUTO: line 1 is a header only when none of its fields
 * parses as a number (all of them are names); otherwise it is data, and a bad value in it is an
 * error like anywhere else (never silently dropped as if it were a header). */
typedef enum nb_csv_header {
    NB_CSV_HEADER_NO = 0,
    NB_CSV_HEADER_YES = 1,
    NB_CSV_HEADER_AUTO = 2
} nb_csv_header;

/* Above this many classes (max label + 1), at least half of the labels 0..K-1 must occur in the
 * data; a sparse huge label (a typo, an id column) would otherwise build a model with millions
 * of outputs. */
#define NB_DATASET_SPARSE_CLASSES 1024

/* CSV: one row per sample, the label in column label_col (0-based; -1 = the last column), the
 * other columns features (decimal floats as strtod reads them, finite and within f32 range).
 * header: see nb_csv_header. A UTF-8 byte-order mark at the start of the text is skipped.
 * Accepts \n, \r\n and (old Mac, when the text has no \n at all) \r-only line ends,
 * blank lines at the end, and spaces or tabs around fields; no quoting. Every row has the field
 * count of the first line. Labels must be non-negative integers (written "3" or "3.0") below
 * NB_DATASET_MAX_CLASSES; n_classes = max label + 1, and more than NB_DATASET_SPARSE_CLASSES
 * classes need at least half of them present. Errors name the line and column, both 1-based
 * ("line 7, column 3: 'abc' is not a number"; "line 9 has 4 fields, expected 5"), and for
 * nb_dataset_load_csv the file. No scaling (scale 1, shift 0). The file must be a regular file
 * (a FIFO or device is refused without blocking) no larger than the machine's memory. */
nb_status nb_dataset_load_csv(const char *path, int label_col, nb_csv_header header,
                              nb_dataset *out);
nb_status nb_dataset_parse_csv(const char *buf, size_t len, int label_col, nb_csv_header header,
                               nb_dataset *out);

/* The options of a CSV read (nb_dataset_load_csv_opts). Zero-initialised it means label in
 * column 0, header NO; NB_CSV_OPTIONS_DEFAULT is the usual start: label last, header AUTO.
 *   label_col   0-based column of the label, -1 = the last one; ignored when label_name is set.
 *   label_name  NULL, or the header name of the label column (trimmed, exact, case-sensitive):
 *               needs a header line (header YES, or AUTO finding one); a name absent from the
 *               header or present twice is an error. The header's names are not class names.
 *   header      see nb_csv_header.
 *   skip_rows   lines at the start (after a byte-order mark) ignored unread, >= 0. Line numbers
 *               in messages still count from the file's first line.
 * A count line: when header is NO or AUTO and the first line read is scikit-learn's form
 * "N,D,name_0,...,name_K-1" (two non-negative integers, then names that are not numbers, as in
 * its wine_data.csv "178,13,class_0,class_1,class_2"), it is not data: N and D must equal the rows
 * and features that follow (else an error naming the line and suggesting skip_rows), the names
 * become ds->class_names and n_classes = K (every label must be < K). */
typedef struct nb_csv_options {
    int label_col;
    const char *label_name;
    nb_csv_header header;
    int64_t skip_rows;
} nb_csv_options;
#define NB_CSV_OPTIONS_DEFAULT                                                                     \
    {                                                                                              \
        -1, NULL, NB_CSV_HEADER_AUTO, 0                                                            \
    }

/* nb_dataset_load_csv / nb_dataset_parse_csv with options (opt borrowed for the call; NULL is an
 * error). The plain calls are these with {label_col, NULL, header, 0}. */
nb_status nb_dataset_load_csv_opts(const char *path, const nb_csv_options *opt, nb_dataset *out);
nb_status nb_dataset_parse_csv_opts(const char *buf, size_t len, const nb_csv_options *opt,
                                    nb_dataset *out);

/* A .npy pair: X [N, D], [N, H, W] or [N, C, H, W] (f32, f64, f16, bf16 or u8; u8 is scaled by
 * 1/255 and that is recorded in input_scale), y [N] integer (i32, i64 or u8) with labels >= 0;
 * n_classes = max label + 1 (over NB_DATASET_SPARSE_CLASSES, at least half of the classes must
 * occur). Errors name the file and the shapes. */
nb_status nb_dataset_load_npy(const char *x_path, const char *y_path, nb_dataset *out);

/* A folder of images, one subfolder per class: DIR/<class>/<image>.png|.pgm. Classes are the
 * subfolders sorted by name (byte order), class_names their names; images are read with
 * nb_image_load (grayscale u8, see nabla/image.h) in name order and must all have one size.
 * X = pixels / 255 as f32 [N, H * W] (input_scale 1/255, shift 0, as MNIST), y i32 [N]. Dot-names
 * are skipped; anything else that is not a class folder or a .png/.pgm image in one (a stray
 * file, a nested folder, an empty class folder, a symlink loop) is refused with a message naming
 * it, as are more than NB_IMAGES_MAX_CLASSES classes or NB_IMAGES_MAX_FILES images. Errors read
 * "images: <message>" and name the file or folder. */
#define NB_IMAGES_MAX_CLASSES 65536
#define NB_IMAGES_MAX_FILES ((size_t)1 << 22)
nb_status nb_dataset_load_images(const char *dir, nb_dataset *out);

/* Builds a data set from raw tensors, copying them. X is float or u8 [N, ...] (2 to 4 dims,
 * flattened to [N, D]; u8 is divided by 255), y is i32, i64 or u8 [N]. n_classes > 0 is checked
 * against every label; n_classes == 0 means max label + 1 (over NB_DATASET_SPARSE_CLASSES, at
 * least half of the classes must occur). Non-finite features are rejected. */
nb_status nb_dataset_from_tensors(const nb_tensor *X, const nb_tensor *y, int64_t n_classes,
                                  nb_dataset *out);

/* ---- validation split ----
 * Seeded split: a permutation of the rows (nb_rng seeded with `seed`, Fisher-Yates); the first
 * round(N * val_fraction) rows of it go to val, the rest to train, both in permutation order and
 * as fresh copies with the same scale, shift, mean, std, n_classes and name. Needs
 * 0 < val_fraction < 1 and both parts non-empty, else NB_ERR_ARG. train and val are overwritten
 * (not freed first). */
nb_status nb_dataset_split(const nb_dataset *all, double val_fraction, uint64_t seed,
                           nb_dataset *train, nb_dataset *val);

/* Three parts from one seeded permutation (as nb_dataset_split): its first
 * round(N * test_fraction) rows go to test, the next round(N * val_fraction) to val, the rest to
 * train. Needs fractions > 0 with a sum < 1 and every part non-empty, else NB_ERR_ARG. train,
 * val and test are overwritten (not freed first) and are the caller's (nb_dataset_free); on
 * error all three are left zeroed. */
nb_status nb_dataset_split3(const nb_dataset *all, double val_fraction, double test_fraction,
                            uint64_t seed, nb_dataset *train, nb_dataset *val, nb_dataset *test);

/* ---- per-feature standardisation ----
 * x'[i, j] = (x[i, j] - mean[j]) / std[j], in place on X (after input_scale and input_shift),
 * computed in f64 and rounded once to f32. mean and std (f32 [D]) are measured on the training
 * rows only: f64 sums in two passes, std the population standard deviation (dividing by N, as
 * scikit-learn's StandardScaler). A constant feature (std 0, or below FLT_MIN) gets std 1, so it
 * becomes x - mean (0 on the training rows). Every data set standardised keeps copies of mean and
 * std (ds->mean, ds->std), so the trainer records them in its checkpoints (nb_model_info
 * input_mean, input_std) and a model can later be fed raw rows the same way. */

/* Measures mean and std on train and standardises train, val and test (val and test may be NULL)
 * with them. Refused: a data set already standardised (NB_ERR_STATE: twice would distort it),
 * val or test with another D than train (NB_ERR_SHAPE), the same data set passed twice, and a
 * standardised value beyond the f32 range (NB_ERR_RANGE, naming the set, row and column). On
 * error nothing is changed. */
nb_status nb_dataset_standardize(nb_dataset *train, nb_dataset *val, nb_dataset *test);

/* Standardises ds (raw, not standardised yet) with given statistics, such as a checkpoint's
 * input_mean and input_std: f32 [D] each, mean finite, std finite and > 0. ds keeps copies. Same
 * refusals as nb_dataset_standardize; on error nothing is changed. */
nb_status nb_dataset_apply_standardize(nb_dataset *ds, const nb_tensor *mean, const nb_tensor *std);

/* The same on a bare feature matrix X, f32 or f64 [N, D] (N may be 0), in place: for inputs given
 * to nb_predict or nb_evaluate. A non-finite input or result is refused naming its row and column
 * (nothing is changed). */
nb_status nb_standardize_features(nb_tensor *X, const nb_tensor *mean, const nb_tensor *std);

/* ---- batch iterator ----
 * Each epoch visits every row once: in a seeded random order when shuffle (a new permutation per
 * epoch, drawn from the iterator's own nb_rng), else in row order. The last batch of an epoch may
 * be short. The data set must outlive the iterator and not change while it is in use.
 *
 * Exact resume: the order from here on is fully determined by (epoch, pos, rng), where rng is the
 * state the current epoch's permutation was drawn from (b->rng is kept at that state; when an
 * epoch ends it moves on to rng' = seed(u64(rng))). Save the three fields, and restore them with
 * nb_batcher_seek on an iterator made with the same data set, batch size and shuffle flag. */
typedef struct nb_batcher {
    const nb_dataset *ds;
    int64_t batch, pos, epoch;
    bool shuffle;
    nb_rng rng;
    int64_t *perm; /* owned: the current epoch's order */
} nb_batcher;

/* Starts at epoch 0, position 0. batch >= 1 (a batch larger than N gives one short batch). */
nb_status nb_batcher_init(nb_batcher *b, const nb_dataset *ds, int64_t batch, bool shuffle,
                          uint64_t seed);

/* Fills xb (f32 [batch, D]) and yb (i32 [batch]), caller-owned and made once with room for
 * `batch` rows, with the next batch, and sets xb->shape[0], yb->shape[0] and both numel to the
 * rows taken. Returns false at the end of the epoch (nothing filled); the next call starts a new
 * epoch with a new permutation. Also returns false, with nb_last_error() set and the position
 * unchanged, if b, xb or yb are not usable: dtype, ndim, D, or a shape[0] smaller than the batch
 * (a tensor this iterator shrank for a short last batch is accepted again at the start of an
 * epoch: it must still be the buffer made with room for `batch` rows). xb and yb are borrowed
 * for the call. */
bool nb_batcher_next(nb_batcher *b, nb_tensor *xb, nb_tensor *yb);

/* Moves the iterator to a saved position (see "Exact resume" above): 0 <= pos <= N, epoch >= 0,
 * rng the saved b->rng. Rebuilds the permutation. */
nb_status nb_batcher_seek(nb_batcher *b, int64_t epoch, int64_t pos, const nb_rng *rng);

/* Frees the permutation and zeroes the struct. NULL-safe. */
void nb_batcher_free(nb_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
