/* image_folder.c - a labelled data set from a folder of images, one subfolder per class.
 *
 *   DIR/<class>/<image>.png|.pgm
 *
 * The subfolders, sorted by name (byte order, as `LC_ALL=C ls`), are the classes 0..K-1 and
 * their names the class names; the images in each are read in name order. Names starting with
 * '.' are skipped (hidden files, editors' droppings). Anything else is refused with a message
 * naming it rather than silently left out: a file beside the class folders, a folder inside a
 * class folder, a file whose name does not end in .png or .pgm (any case), an empty class folder,
 * a symlink that loops or dangles, a FIFO or device (refused by the reader without blocking).
 * Every image must have the size of the first one read; the message names the first that
 * differs and both sizes.
 *
 * Bounds, checked before the pixels are allocated: at most NB_IMAGES_MAX_CLASSES classes and
 * NB_IMAGES_MAX_FILES images, each image within nabla/image.h's limits, and the whole f32 matrix
 * within the machine's memory.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "nabla/dataset.h"
#include "nabla/image.h"
#include "../tensor/fileio.h"
#include "../tensor/fileread.h"
#include "../tensor/tensor_internal.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

/* A growing list of malloc'd names. */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void list_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static nb_status list_add(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return nb_error(NB_ERR_NOMEM, "out of memory for a list of %zu names", cap);
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return nb_error(NB_ERR_NOMEM, "out of memory for a name");
    l->n++;
    return NB_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* dir/name into buf[cap], or an error when it does not fit. */
static nb_status join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return nb_error(NB_ERR_ARG, "'%s/%s': path longer than %zu bytes", dir, name, cap - 1);
    return NB_OK;
}

/* What path names, following symlinks: a loop or a dangling link is an error naming it. */
static nb_status kind_of(const char *path, mode_t *mode)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        *mode = sb.st_mode;
        return NB_OK;
    }
    int e = errno;
    if (e == ELOOP)
        return nb_error(NB_ERR_IO, "'%s': a loop of symbolic links", path);
    if (e == ENOENT && lstat(path, &sb) == 0)
        return nb_error(NB_ERR_IO, "'%s': a symbolic link to nothing", path);
    return nb_error(NB_ERR_IO, "'%s': %s", path, strerror(e));
}

/* The visible (not dot-) entries of dir, sorted. More than `limit` of them, counting `already`
 * found elsewhere, is an error. */
static nb_status list_dir(const char *dir, size_t limit, size_t already, const char *what,
                          name_list *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return nb_error(NB_ERR_IO, "cannot open the folder '%s': %s", dir, strerror(errno));
    nb_status st = NB_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                st = nb_error(NB_ERR_IO, "reading the folder '%s': %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.')
            continue;
        if (already + out->n >= limit) {
            st = nb_error(NB_ERR_RANGE, "'%s': more than the limit of %zu %s", dir, limit, what);
            break;
        }
        if ((st = list_add(out, e->d_name)) != NB_OK)
            break;
    }
    (void)closedir(d);
    if (st == NB_OK && out->n > 1) /* (qsort's base may not be NULL, even for 0 items) */
        qsort(out->v, out->n, sizeof *out->v, cmp_names);
    return st;
}

static bool is_image_name(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && (!strcasecmp(name + n - 4, ".png") || !strcasecmp(name + n - 4, ".pgm"));
}

/* The class folders of dir (sorted) and, in `files`, every image path with its class in cls. */
static nb_status find_images(const char *dir, name_list *classes, name_list *files, int32_t **cls)
{
    char path[4096];
    mode_t mode;
    nb_status st = list_dir(dir, NB_IMAGES_MAX_CLASSES, 0, "class folders", classes);
    for (size_t c = 0; st == NB_OK && c < classes->n; c++)
        if ((st = join(path, sizeof path, dir, classes->v[c])) == NB_OK &&
            (st = kind_of(path, &mode)) == NB_OK && !S_ISDIR(mode))
            st = nb_error(NB_ERR_FORMAT,
                          "'%s' is %s; '%s' must hold only class folders (one per class, holding "
                          "its .png or .pgm images)",
                          path, nb_file_kind((unsigned)mode), dir);
    if (st == NB_OK && classes->n == 0)
        st = nb_error(NB_ERR_FORMAT,
                      "'%s' has no class folders (one per class, holding its .png "
                      "or .pgm images)",
                      dir);
    for (size_t c = 0; st == NB_OK && c < classes->n; c++) {
        name_list in = {0};
        char cdir[4096];
        size_t before = files->n;
        st = join(cdir, sizeof cdir, dir, classes->v[c]);
        if (st == NB_OK)
            st = list_dir(cdir, NB_IMAGES_MAX_FILES, files->n, "images in all", &in);
        for (size_t i = 0; st == NB_OK && i < in.n; i++) {
            if ((st = join(path, sizeof path, cdir, in.v[i])) != NB_OK ||
                (st = kind_of(path, &mode)) != NB_OK)
                break;
            if (S_ISDIR(mode))
                st = nb_error(NB_ERR_FORMAT,
                              "'%s' is a folder inside the class folder '%s' "
                              "(classes are not nested)",
                              path, cdir);
            else if (!is_image_name(in.v[i]))
                st = nb_error(NB_ERR_FORMAT, "'%s': not a .png or .pgm file name", path);
            else
                st = list_add(files, path);
        }
        list_free(&in);
        if (st == NB_OK && files->n == before)
            st = nb_error(NB_ERR_FORMAT, "the class folder '%s' has no images", cdir);
        int32_t *grown = st == NB_OK ? realloc(*cls, files->n * sizeof **cls) : NULL;
        if (st == NB_OK && !grown)
            st = nb_error(NB_ERR_NOMEM, "out of memory for %zu labels", files->n);
        if (st == NB_OK) {
            *cls = grown;
            for (size_t i = before; i < files->n; i++)
                (*cls)[i] = (int32_t)c;
        }
    }
    return st;
}

/* X f32 [N, H * W] for N images of H x W, refused beyond the machine's memory. */
static nb_status make_matrix(size_t n, const nb_tensor *first, nb_tensor **X, nb_tensor **y)
{
    int64_t D = first->shape[0] * first->shape[1];
    uint64_t bytes = (uint64_t)n * (uint64_t)D * sizeof(float), mem = nb_physical_memory();
    if (bytes > mem) {
        char a[32], b[32];
        return nb_error(NB_ERR_NOMEM,
                        "%zu images of %lld x %lld need %s as f32, more than this "
                        "machine's %s of memory",
                        n, (long long)first->shape[0], (long long)first->shape[1],
                        nb_bytes_str(a, sizeof a, bytes), nb_bytes_str(b, sizeof b, mem));
    }
    int64_t sx[2] = {(int64_t)n, D}, sy[1] = {(int64_t)n};
    nb_status st = nb_tensor_new(NB_F32, 2, sx, X);
    if (st == NB_OK)
        st = nb_tensor_new(NB_I32, 1, sy, y);
    return st;
}

/* Reads every image into X (pixel / 255), checking each has the first one's size. */
static nb_status read_images(const name_list *files, const int32_t *cls, nb_dataset *out)
{
    nb_tensor *img = NULL, *first = NULL;
    nb_status st = nb_image_load(files->v[0], &first);
    if (st == NB_OK)
        st = make_matrix(files->n, first, &out->X, &out->y);
    int64_t D = first ? first->numel : 0;
    for (size_t i = 0; st == NB_OK && i < files->n; i++) {
        if (i > 0 && (st = nb_image_load(files->v[i], &img)) != NB_OK)
            break;
        const nb_tensor *t = i > 0 ? img : first;
        if (t->shape[0] != first->shape[0] || t->shape[1] != first->shape[1]) {
            st = nb_error(NB_ERR_SHAPE,
                          "'%s' is %lld x %lld (width x height) but '%s', the first image, is "
                          "%lld x %lld; every image must have the same size",
                          files->v[i], (long long)t->shape[1], (long long)t->shape[0], files->v[0],
                          (long long)first->shape[1], (long long)first->shape[0]);
            break;
        }
        const uint8_t *px = t->data;
        float *row = (float *)out->X->data + (size_t)i * (size_t)D;
        for (int64_t j = 0; j < D; j++)
            row[j] = (float)px[j] / 255.0f;
        ((int32_t *)out->y->data)[i] = cls[i];
        nb_tensor_free(img);
        img = NULL;
    }
    nb_tensor_free(img);
    nb_tensor_free(first);
    return st;
}

nb_status nb_dataset_load_images(const char *dir, nb_dataset *out)
{
    if (!out)
        return nb_error(NB_ERR_ARG, "images: output data set is NULL");
    memset(out, 0, sizeof *out);
    if (!dir)
        return nb_error(NB_ERR_ARG, "images: folder path is NULL");
    name_list classes = {0}, files = {0};
    int32_t *cls = NULL;
    nb_status st = find_images(dir, &classes, &files, &cls);
    if (st == NB_OK)
        st = read_images(&files, cls, out);
    if (st == NB_OK) {
        out->n_classes = (int64_t)classes.n;
        out->input_scale = 1.0 / 255.0;
        out->input_shift = 0.0;
        st = nb_dataset_set_class_names(out, (const char *const *)classes.v, (int64_t)classes.n);
    }
    if (st == NB_OK) { /* the folder's last path component: "a/b/" -> "b" */
        size_t end = strlen(dir), start;
        while (end > 1 && dir[end - 1] == '/')
            end--;
        for (start = end; start > 0 && dir[start - 1] != '/';)
            start--;
        size_t n = end - start < sizeof out->name ? end - start : sizeof out->name - 1;
        memcpy(out->name, dir + start, n);
        out->name[n] = '\0';
    }
    list_free(&classes);
    list_free(&files);
    free(cls);
    if (st != NB_OK) {
        nb_error_prefix(st, "images", NULL);
        nb_dataset_free(out);
    }
    return st;
}
