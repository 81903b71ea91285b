/* cli_data.c - turning a --data spec into train and test sets for train/eval. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "nabla.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

const char *nb_cli_default_data_dir(void)
{
    return DEFAULT_DATA_DIR;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* How a FILE.csv spec is read: --header, --label-col, --skip-rows (process-wide CLI settings;
 * label last, header auto, nothing skipped unless a command's option said otherwise). `given`
 * marks those set by this command line, which a checkpoint's recorded ones do not override. */
static struct {
    nb_csv_header header;
    int label_col;
    char label_name[128];
    long long skip_rows;
    bool given[3];
} csv_cli = {NB_CSV_HEADER_AUTO, -1, "", 0, {false, false, false}};

static bool set_header(const char *cmd, const char *value)
{
    if (!strcmp(value, "yes"))
        csv_cli.header = NB_CSV_HEADER_YES;
    else if (!strcmp(value, "no"))
        csv_cli.header = NB_CSV_HEADER_NO;
    else if (!strcmp(value, "auto"))
        csv_cli.header = NB_CSV_HEADER_AUTO;
    else {
        fprintf(stderr, "nabla %s: --header '%s': expected yes, no or auto\n", cmd, value);
        return false;
    }
    return true;
}

static bool set_label(const char *cmd, const char *value)
{
    size_t n = strlen(value);
    if (!strcmp(value, "last") || !strcmp(value, "-1")) {
        csv_cli.label_col = -1;
        csv_cli.label_name[0] = '\0';
    } else if (n > 0 && strspn(value, "0123456789") == n) {
        if (n > 9) {
            fprintf(stderr, "nabla %s: --label-col %s: a column index above 999999999\n", cmd,
                    value);
            return false;
        }
        csv_cli.label_col = atoi(value);
        csv_cli.label_name[0] = '\0';
    } else if (n == 0 || n >= sizeof csv_cli.label_name) {
        fprintf(stderr,
                "nabla %s: --label-col '%s': expected a column index (0-based), last, or a "
                "header name of 1 to %zu characters\n",
                cmd, value, sizeof csv_cli.label_name - 1);
        return false;
    } else {
        memcpy(csv_cli.label_name, value, n + 1);
    }
    return true;
}

static bool set_skip(const char *cmd, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n > 9 || strspn(value, "0123456789") != n) {
        fprintf(stderr, "nabla %s: --skip-rows '%s': expected a line count 0..999999999\n", cmd,
                value);
        return false;
    }
    csv_cli.skip_rows = atoll(value);
    return true;
}

bool nb_cli_csv_header_option(const char *cmd, const char *value)
{
    return (csv_cli.given[0] = set_header(cmd, value));
}

bool nb_cli_csv_label_option(const char *cmd, const char *value)
{
    return (csv_cli.given[1] = set_label(cmd, value));
}

bool nb_cli_csv_skip_rows_option(const char *cmd, const char *value)
{
    return (csv_cli.given[2] = set_skip(cmd, value));
}

/* A checkpoint's recorded train.header, train.label-col and train.skip-rows, for each not
 * given on this command line. False after a message when a recorded value is bad. */
static bool apply_recorded_csv(const char *cmd, const char *path, const nb_safetensors *st)
{
    static const char *const keys[3] = {"train.header", "train.label-col", "train.skip-rows"};
    bool (*const set[3])(const char *, const char *) = {set_header, set_label, set_skip};
    for (int i = 0; i < 3; i++) {
        const char *v = nb_safetensors_meta(st, keys[i]);
        if (v && !csv_cli.given[i] && !set[i](cmd, v)) {
            fprintf(stderr, "nabla %s: %s: metadata '%s' is not a value of that option\n", cmd,
                    path, keys[i]);
            return false;
        }
    }
    return true;
}

/* The CSV options as the command line (or a recorded run) set them. */
static nb_csv_options csv_options(void)
{
    nb_csv_options o = {csv_cli.label_col, csv_cli.label_name[0] ? csv_cli.label_name : NULL,
                        csv_cli.header, (int64_t)csv_cli.skip_rows};
    return o;
}

bool nb_cli_mnist_present(const char *dir)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    if (stat(p, &st) == 0)
        return true;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    return stat(p, &st) == 0;
}

/* realpath of the n bytes at p appended to out (len so far); false when it does not resolve or
 * does not fit */
static bool append_real(const char *p, size_t n, char *out, size_t cap, size_t *len)
{
    char part[PATH_MAX], real[PATH_MAX];
    if (n >= sizeof part)
        return false;
    memcpy(part, p, n);
    part[n] = '\0';
    if (!realpath(part, real))
        return false;
    size_t k = strlen(real);
    if (*len + k + 1 > cap)
        return false;
    memcpy(out + *len, real, k + 1);
    *len += k;
    return true;
}

bool nb_cli_canonical_spec(const char *spec, char *out, size_t cap)
{
    const char *prefix = !strncmp(spec, "csv:", 4)      ? "csv:"
                         : !strncmp(spec, "images:", 7) ? "images:"
                                                        : "";
    if (!nb_cli_data_is_file(spec) || strlen(prefix) >= cap)
        return false;
    size_t len = strlen(prefix);
    memcpy(out, prefix, len + 1);
    const char *p = spec + len, *comma = *prefix ? NULL : strchr(p, ',');
    if (!append_real(p, comma ? (size_t)(comma - p) : strlen(p), out, cap, &len))
        return false;
    if (comma) {
        if (len + 2 > cap)
            return false;
        out[len++] = ',';
        out[len] = '\0';
        if (!append_real(comma + 1, strlen(comma + 1), out, cap, &len))
            return false;
    }
    return true;
}

bool nb_cli_data_is_file(const char *spec)
{
    return strchr(spec, ',') || ends_with(spec, ".csv") || !strncmp(spec, "csv:", 4) ||
           !strncmp(spec, "images:", 7);
}

/* FNV-1a, 64 bits, continued from h over n bytes */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The checksum of a data set as loaded: its shape, class count, features (f32) and labels
 * (i32), so a file whose rows changed is told apart from the one a run was trained on. */
static uint64_t data_checksum(const nb_dataset *d)
{
    int64_t head[3] = {d->X->shape[0], d->X->shape[1], d->n_classes};
    uint64_t h = fnv1a(0xcbf29ce484222325ull, head, sizeof head);
    h = fnv1a(h, d->X->data, sizeof(float) * (size_t)d->X->numel);
    return fnv1a(h, d->y->data, sizeof(int32_t) * (size_t)d->y->numel);
}

/* spec: fashion-mnist | mnist | spirals | auto | FILE.csv | csv:FILE | X.npy,y.npy | images:DIR.
 * For sets
 * without a test split (files), a seeded share test_frac of the rows is held out as the test set.
 * test may be NULL (eval of train; for a file, every row of it goes to train). id (may be NULL)
 * receives what identifies the data. */
int nb_cli_load_data(const char *cmd, const char *spec, const char *dir, uint64_t seed,
                     double test_frac, nb_dataset *train, nb_dataset *test, bool quiet,
                     nb_cli_data_id *id)
{
    if (id)
        *id = (nb_cli_data_id){seed, test_frac, 0, 0};
    memset(train, 0, sizeof *train);
    if (test)
        memset(test, 0, sizeof *test);
    if (!dir)
        dir = DEFAULT_DATA_DIR;
    if (!strcmp(spec, "auto")) {
        if (nb_cli_mnist_present(dir))
            spec = "fashion-mnist";
        else {
            if (!quiet)
                fprintf(stderr,
                        "nabla %s: Fashion-MNIST not found in %s (Debian package "
                        "dataset-fashion-mnist); using the built-in spirals set instead\n",
                        cmd, dir);
            spec = "spirals";
        }
    }
    nb_status s = NB_OK;
    if (!strcmp(spec, "seq-toy")) { /* every real token as a classification row */
        for (int part = 0; part < (test ? 2 : 1) && s == NB_OK; part++) {
            nb_tensor *X = NULL, *Y = NULL, *Xf = NULL, *yf = NULL;
            s = nb_seq_toy(part ? 1000 : 6000, 12, 8, part ? seed + 7919 : seed, &X, &Y);
            int64_t ntok = 0, F = X ? X->shape[2] : 0;
            for (int64_t i = 0; s == NB_OK && i < Y->numel; i++)
                ntok += ((int32_t *)Y->data)[i] >= 0;
            int64_t sf[2] = {ntok, F}, sl[1] = {ntok};
            if (s == NB_OK) {
                Xf = nb_tensor_empty(NB_F32, 2, sf);
                yf = nb_tensor_empty(NB_I32, 1, sl);
                s = Xf && yf ? NB_OK : nb_last_status();
            }
            for (int64_t i = 0, k = 0; s == NB_OK && i < Y->numel; i++)
                if (((int32_t *)Y->data)[i] >= 0) {
                    memcpy((float *)Xf->data + k * F, (float *)X->data + i * F,
                           sizeof(float) * (size_t)F);
                    ((int32_t *)yf->data)[k++] = ((int32_t *)Y->data)[i];
                }
            nb_dataset *d = part ? test : train;
            if (s == NB_OK)
                s = nb_dataset_from_tensors(Xf, yf, 8, d);
            if (s == NB_OK)
                snprintf(d->name, sizeof d->name, "seq-toy");
            nb_tensor_free(X);
            nb_tensor_free(Y);
            nb_tensor_free(Xf);
            nb_tensor_free(yf);
        }
    } else if (!strcmp(spec, "fashion-mnist") || !strcmp(spec, "mnist")) {
        if (!strcmp(spec, "mnist") && !strcmp(dir, DEFAULT_DATA_DIR)) {
            /* same file names, other images: never train one believing it is the other */
            fprintf(stderr,
                    "nabla %s: --data mnist needs --data-dir DIR, the folder of MNIST's IDX files "
                    "(train-images-idx3-ubyte[.gz], ...); the default %s holds Fashion-MNIST\n",
                    cmd, DEFAULT_DATA_DIR);
            return 2;
        }
        /* the two sets share their file names: the spec says which names apply */
        const char *const *names = nb_mnist_class_names(!strcmp(spec, "fashion-mnist"));
        s = nb_dataset_load_mnist(dir, "train", train);
        if (s == NB_OK)
            s = nb_dataset_set_class_names(train, names, 10);
        if (s == NB_OK && test)
            s = nb_dataset_load_mnist(dir, "test", test);
        if (s == NB_OK && test)
            s = nb_dataset_set_class_names(test, names, 10);
    } else if (!strcmp(spec, "spirals")) {
        nb_tensor *X = NULL, *y = NULL;
        s = nb_spirals(1000, 3, 0.2, seed, &X, &y);
        if (s == NB_OK)
            s = nb_dataset_from_tensors(X, y, 3, train);
        nb_tensor_free(X);
        nb_tensor_free(y);
        if (s == NB_OK && test) {
            s = nb_spirals(300, 3, 0.2, seed + 1000003, &X, &y);
            if (s == NB_OK)
                s = nb_dataset_from_tensors(X, y, 3, test);
            nb_tensor_free(X);
            nb_tensor_free(y);
        }
        if (s == NB_OK) {
            snprintf(train->name, sizeof train->name, "spirals");
            if (test)
                snprintf(test->name, sizeof test->name, "spirals");
        }
    } else {
        nb_dataset all;
        memset(&all, 0, sizeof all);
        const char *comma = strchr(spec, ',');
        if (!strncmp(spec, "images:", 7)) {
            s = nb_dataset_load_images(spec + 7, &all);
        } else if (comma) {
            char xp[1024];
            size_t n = (size_t)(comma - spec);
            if (n >= sizeof xp) {
                fprintf(stderr, "nabla %s: --data path too long\n", cmd);
                return 2;
            }
            memcpy(xp, spec, n);
            xp[n] = '\0';
            s = nb_dataset_load_npy(xp, comma + 1, &all);
        } else if (ends_with(spec, ".csv") || !strncmp(spec, "csv:", 4)) {
            nb_csv_options o = csv_options();
            s = nb_dataset_load_csv_opts(strncmp(spec, "csv:", 4) ? spec : spec + 4, &o, &all);
        } else {
            fprintf(
                stderr,
                "nabla %s: --data '%s': expected fashion-mnist, mnist, spirals, seq-toy, FILE.csv, "
                "csv:FILE, X.npy,y.npy or images:DIR\n",
                cmd, spec);
            return 2;
        }
        if (s == NB_OK && id) {
            id->rows = all.X->shape[0];
            id->checksum = data_checksum(&all);
        }
        if (s == NB_OK) {
            if (test) {
                s = nb_dataset_split(&all, test_frac, seed, train, test);
                nb_dataset_free(&all);
                if (s != NB_OK) { /* the split's words are "validation" and "training" */
                    fprintf(stderr, "nabla %s: the held-out test share %g of %s: %s\n", cmd,
                            test_frac, spec, nb_last_error());
                    return 1;
                }
            } else {
                *train = all;
            }
        }
    }
    if (s != NB_OK) {
        fprintf(stderr, "nabla %s: %s\n", cmd, nb_last_error());
        nb_dataset_free(train);
        if (test)
            nb_dataset_free(test);
        return 1;
    }
    return 0;
}

/* ---- the data of a run, in its checkpoints ---- */

void nb_cli_data_meta(const char *spec, const nb_cli_data_id *id, char num[4][32],
                      const char *pairs[2 * NB_CLI_DATA_KEYS])
{
    snprintf(num[0], 32, "%" PRIu64, id->seed);
    snprintf(num[1], 32, "%.17g", id->test_frac);
    snprintf(num[2], 32, "%" PRId64, id->rows);
    snprintf(num[3], 32, "%016" PRIx64, id->checksum);
    const char *p[2 * NB_CLI_DATA_KEYS] = {"data_spec",      spec,   "data_seed", num[0],
                                           "data_test_frac", num[1], "data_rows", num[2],
                                           "data_checksum",  num[3]};
    memcpy(pairs, p, sizeof p);
}

int nb_cli_read_data_id(const char *cmd, const char *path, char **spec, nb_cli_data_id *id)
{
    *spec = NULL;
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) {
        fprintf(stderr, "nabla %s: %s\n", cmd, nb_last_error());
        return -1;
    }
    const char *sp = nb_safetensors_meta(st, "data_spec"), *v[4];
    const char *keys[4] = {"data_seed", "data_test_frac", "data_rows", "data_checksum"};
    for (int i = 0; i < 4; i++)
        v[i] = nb_safetensors_meta(st, keys[i]);
    if (!v[1]) /* nabla 0.1 before the validation split recorded the held-out share so */
        v[1] = nb_safetensors_meta(st, "data_val_frac");
    int rc = 1;
    if (!sp && !v[0] && !v[1] && !v[2] && !v[3]) /* saved before the data was recorded */
        goto out;
    rc = -1;
    int bad = -1;
    char *end;
    errno = 0;
    if (!sp || !*sp) {
        fprintf(stderr,
                "nabla %s: %s: metadata 'data_spec' is %s; expected the --data it was "
                "trained on\n",
                cmd, path, sp ? "empty" : "missing");
        goto out;
    }
    for (int i = 0; i < 4 && bad < 0; i++) {
        if (!v[i] || !*v[i] || v[i][0] == '-' || v[i][0] == '+' || v[i][0] == ' ') {
            bad = i;
            break;
        }
        errno = 0;
        switch (i) {
        case 0: id->seed = strtoull(v[i], &end, 10); break;
        case 1: id->test_frac = strtod(v[i], &end); break;
        case 2: id->rows = (int64_t)strtoll(v[i], &end, 10); break;
        default: id->checksum = strtoull(v[i], &end, 16); break;
        }
        if (*end || errno || (i == 1 && !(id->test_frac > 0 && id->test_frac < 1)) ||
            (i == 3 && (strlen(v[i]) != 16 || strspn(v[i], "0123456789abcdefABCDEF") != 16)))
            bad = i;
    }
    if (bad >= 0) {
        static const char *const want[4] = {
            "a seed (an unsigned integer)", "a held-out fraction in (0, 1)",
            "a row count (an integer >= 0)", "a checksum of 16 hex digits"};
        fprintf(stderr, "nabla %s: %s: metadata '%s' is %s%s%s; expected %s\n", cmd, path,
                keys[bad], v[bad] ? "'" : "", v[bad] ? v[bad] : "missing", v[bad] ? "'" : "",
                want[bad]);
        goto out;
    }
    if (!apply_recorded_csv(cmd, path, st))
        goto out;
    if (!(*spec = strdup(sp))) {
        fprintf(stderr, "nabla %s: out of memory\n", cmd);
        goto out;
    }
    rc = 0;
out:
    nb_safetensors_free(st);
    return rc;
}
