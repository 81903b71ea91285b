/* predict_input.c - reading `nabla predict --input`: the kind of file is told by its first bytes
 * (.npy, PNG, PGM, IDX plain or gzip) or, for text, by the .csv extension; a directory is read as
 * its PNG and PGM files in name order. See predict_input.h. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "predict_input.h"
#include "tensor/fileread.h"

#define ERR(...)                                                                                   \
    (fprintf(stderr, "nabla predict: --input %s: ", path), fprintf(stderr, __VA_ARGS__),           \
     fputc('\n', stderr), 1)

static bool has_ext(const char *s, const char *ext)
{
    size_t n = strlen(s), e = strlen(ext);
    return n > e && !strcasecmp(s + n - e, ext);
}

void nb_cli_pred_input_free(nb_pred_input *in)
{
    if (!in)
        return;
    nb_tensor_free(in->x);
    for (int64_t i = 0; in->labels && i < in->n; i++)
        free(in->labels[i]);
    free(in->labels);
    memset(in, 0, sizeof *in);
}

/* A tensor [N, ...] whose rows have D values, or one sample of D values ([H, W] with H W = D,
 * or [D]): sets in->n. */
static int take_tensor(const char *path, int64_t D, nb_tensor *x, nb_pred_input *in)
{
    char s[64];
    in->x = x;
    in->pixels = x->dtype == NB_U8;
    bool numeric = x->dtype == NB_U8 || nb_dtype_is_float(x->dtype) || x->dtype == NB_I32 ||
                   x->dtype == NB_I64;
    int64_t row = x->ndim >= 2 && x->shape[0] > 0 ? x->numel / x->shape[0] : 0;
    if (numeric && x->ndim >= 2 && x->ndim <= 4 && row == D)
        in->n = x->shape[0];
    else if (numeric && x->ndim >= 1 && x->ndim <= 3 && x->numel == D)
        in->n = 1; /* one image [H, W] (or [C, H, W]) or one row [D] */
    else
        return ERR("%s %s does not fit the model's %lld inputs; expected [N, %lld], [N, H, W] "
                   "with H W = %lld, or one image [H, W] (numbers: uint8, int or float)",
                   nb_dtype_name(x->dtype), nb_shape_str(x, s, sizeof s), (long long)D,
                   (long long)D, (long long)D);
    if (in->n < 1)
        return ERR("no rows (%s)", nb_shape_str(x, s, sizeof s));
    return 0;
}

/* ---- CSV: features only, D per line, an optional header line of names ---- */

typedef struct csv_ctx {
    int64_t D, n;
    float *v; /* n * D when filled */
    unsigned char *buf;
    size_t len;
} csv_ctx;

static nb_status csv_read(FILE *f, size_t size, void *vctx)
{
    csv_ctx *c = vctx;
    c->len = size;
    return nb_read_rest(f, size, NULL, 0, "CSV", &c->buf);
}

/* Parses line [a, b) into out (D values); returns the field count, or -1 - (bad field index). */
static int64_t csv_line(const char *a, const char *b, int64_t D, float *out)
{
    int64_t k = 0;
    const char *p = a;
    for (;;) {
        const char *e = memchr(p, ',', (size_t)(b - p));
        if (!e)
            e = b;
        char tmp[64], *end;
        size_t n = (size_t)(e - p);
        if (n >= sizeof tmp)
            return -1 - k;
        memcpy(tmp, p, n);
        tmp[n] = 0;
        double v = strtod(tmp, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r')
            end++;
        if (end == tmp || *end)
            return -1 - k;
        if (out && k < D)
            out[k] = (float)v;
        k++;
        if (e == b)
            return k;
        p = e + 1;
    }
}

static int read_csv(const char *path, int64_t D, nb_pred_input *in)
{
    csv_ctx c = {D, 0, NULL, NULL, 0};
    if (nb_read_file(path, "nabla predict", true, csv_read, &c) != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    int64_t lines = 1;
    for (size_t i = 0; i < c.len; i++)
        lines += c.buf[i] == '\n';
    int64_t sx[2] = {lines, D};
    nb_tensor *x = nb_tensor_empty(NB_F32, 2, sx);
    int rc = x ? 0 : ERR("%s", nb_last_error());
    const char *p = (const char *)c.buf, *end = p + c.len;
    for (int64_t line = 1; rc == 0 && p < end; line++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        e = e ? e : end;
        const char *q = e;
        while (q > p && (q[-1] == '\r' || q[-1] == ' ' || q[-1] == '\t'))
            q--;
        if (q > p) {
            int64_t k = csv_line(p, q, D, (float *)x->data + c.n * D);
            if (k < 0 && line == 1 && csv_line(p, q, 0, NULL) == -1) {
                /* a header: its first field is not a number */
            } else if (k < 0)
                rc =
                    ERR("line %lld, column %lld is not a number", (long long)line, (long long)(-k));
            else if (k != D)
                rc = ERR("line %lld has %lld fields; the model takes %lld features%s",
                         (long long)line, (long long)k, (long long)D,
                         k == D + 1 ? " (drop the label column)" : "");
            else
                c.n++;
        }
        p = e + 1;
    }
    if (rc == 0 && c.n == 0)
        rc = ERR("no rows");
    free(c.buf);
    if (rc) {
        nb_tensor_free(x);
        return rc;
    }
    x->shape[0] = c.n;
    x->numel = c.n * D;
    return take_tensor(path, D, x, in);
}

/* ---- images ---- */

static int read_one_image(const char *path, const char *label, int64_t D, nb_tensor *x, int64_t row)
{
    unsigned char *px;
    int64_t w, h;
    if (nb_cli_read_image(path, &px, &w, &h) != NB_OK) {
        fprintf(stderr, "nabla predict: --input %s\n", nb_last_error());
        return 1;
    }
    int rc = 0;
    if (w * h != D)
        rc = ERR("%s is %lldx%lld = %lld pixels; the model takes %lld inputs", label, (long long)w,
                 (long long)h, (long long)(w * h), (long long)D);
    else
        memcpy((unsigned char *)x->data + row * D, px, (size_t)D);
    free(px);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The PNG and PGM files of a directory (not hidden ones), sorted by name: labels. */
static int list_dir(const char *path, char ***names, int64_t *n)
{
    DIR *d = opendir(path);
    if (!d)
        return ERR("cannot open the directory: %s", strerror(errno));
    int64_t cap = 0;
    int rc = 0;
    struct dirent *e;
    *names = NULL;
    *n = 0;
    while (rc == 0 && (e = readdir(d))) {
        const char *s = e->d_name;
        if (s[0] == '.' || !(has_ext(s, ".png") || has_ext(s, ".pgm") || has_ext(s, ".pnm")))
            continue;
        if (*n >= NB_IMAGE_DIR_MAX) {
            rc = ERR("more than %d images", NB_IMAGE_DIR_MAX);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(*names, (size_t)cap * sizeof *g);
            if (!g) {
                rc = ERR("out of memory");
                break;
            }
            *names = g;
        }
        if (!((*names)[*n] = strdup(s)))
            rc = ERR("out of memory");
        else
            (*n)++;
    }
    closedir(d);
    if (rc == 0 && *n == 0)
        rc = ERR("holds no .png, .pgm or .pnm files");
    if (rc == 0)
        qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return rc;
}

static int read_images(const char *path, int64_t D, bool dir, nb_pred_input *in)
{
    int64_t n = 1;
    char **names = NULL;
    if (dir) {
        int rc = list_dir(path, &names, &n);
        in->labels = names;
        in->n = n;
        if (rc)
            return rc;
    } else {
        in->labels = calloc(1, sizeof *in->labels);
        if (!in->labels || !(in->labels[0] = strdup(path)))
            return ERR("out of memory");
        in->n = 1;
    }
    int64_t sx[2] = {n, D};
    in->x = nb_tensor_empty(NB_U8, 2, sx);
    if (!in->x)
        return ERR("%s", nb_last_error());
    in->pixels = true;
    in->kind = dir ? "directory" : in->kind;
    for (int64_t i = 0; i < n; i++) {
        char full[4096];
        if (dir && snprintf(full, sizeof full, "%s/%s", path, names[i]) >= (int)sizeof full)
            return ERR("the path of %s is too long", names[i]);
        if (read_one_image(dir ? full : path, in->labels[i], D, in->x, i))
            return 1;
    }
    return 0;
}

int nb_cli_read_pred_input(const char *path, int64_t D, nb_pred_input *in)
{
    memset(in, 0, sizeof *in);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return read_images(path, D, true, in);
    size_t size = 0, got = 0;
    unsigned char head[8] = {0};
    FILE *f = nb_open_regular(path, "nabla predict", &size); /* a FIFO: refused, not blocking */
    if (!f || nb_read_head(f, size, head, sizeof head, &got, "the first bytes") != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    bool npy = got >= 6 && !memcmp(head, "\x93NUMPY", 6);
    bool png = got >= 8 && !memcmp(head, "\x89PNG\r\n\x1a\n", 8);
    bool pgm = got >= 2 && head[0] == 'P' && (head[1] == '5' || head[1] == '2');
    bool idx = (got >= 4 && head[0] == 0 && head[1] == 0 && head[2] >= 0x08 && head[2] <= 0x0E) ||
               (got >= 2 && head[0] == 0x1f && head[1] == 0x8b);
    if (png || pgm) {
        in->kind = png ? "PNG" : "PGM";
        return read_images(path, D, false, in);
    }
    if (npy || idx) {
        in->kind = npy ? "npy" : "IDX";
        nb_tensor *x = npy ? nb_npy_load(path) : nb_idx_load(path);
        if (!x)
            return ERR("%s", nb_last_error());
        return take_tensor(path, D, x, in);
    }
    if (has_ext(path, ".csv") || has_ext(path, ".txt")) {
        in->kind = "CSV";
        return read_csv(path, D, in);
    }
    return ERR("not a .npy, IDX, PNG or PGM file (by its first bytes) nor a .csv; nabla predict "
               "reads those, or a directory of PNG/PGM images");
}
