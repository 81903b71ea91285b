/* class_names.c - built-in class names (MNIST, Fashion-MNIST) and the class-names file reader
 * (one name per line) behind `--class-names FILE`. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/dataset.h"
#include "../tensor/fileread.h"
#include "nabla/status.h"
#include "data_internal.h"

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

const char *const *nb_mnist_class_names(bool fashion)
{
    return fashion ? fashion_names : digit_names;
}

bool nb_utf8_valid_(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len == 0 || i + len > n)
            return false;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += len;
    }
    return true;
}

typedef struct names_ctx {
    const nb_dataset *ds;
    char **names; /* ds->n_classes slots, each a malloc'd name or NULL */
} names_ctx;

/* Splits the whole file into lines and keeps each trimmed line as a name. */
static nb_status read_names(FILE *f, size_t size, void *vctx)
{
    names_ctx *c = vctx;
    if (size > NB_CLASS_NAMES_FILE_MAX)
        return nb_error(NB_ERR_RANGE, "file is %zu bytes; the limit is %zu", size,
                        NB_CLASS_NAMES_FILE_MAX);
    unsigned char *buf = NULL;
    nb_status st = nb_read_rest(f, size, NULL, 0, "class names", &buf);
    if (st != NB_OK)
        return st;
    int64_t K = c->ds->n_classes, line = 0, blank_from = -1;
    size_t i = 0;
    while (st == NB_OK && i < size) {
        size_t e = i;
        while (e < size && buf[e] != '\n')
            e++;
        size_t a = i, b = e;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t'))
            a++;
        while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r'))
            b--;
        line++;
        i = e + 1;
        if (a == b) { /* blank: allowed only at the end */
            if (blank_from < 0)
                blank_from = line;
            continue;
        }
        char shown[48];
        if (blank_from >= 0)
            st = nb_error(NB_ERR_FORMAT, "line %lld is blank; every class needs a name",
                          (long long)blank_from);
        else if (line > K)
            st = nb_error(NB_ERR_FORMAT, "line %lld: more names than the %lld classes",
                          (long long)line, (long long)K);
        else if (b - a >= NB_CLASS_NAME_MAX)
            st = nb_error(NB_ERR_FORMAT, "line %lld: the name is %zu bytes; the limit is %d",
                          (long long)line, b - a, NB_CLASS_NAME_MAX - 1);
        else {
            for (size_t k = a; st == NB_OK && k < b; k++)
                if (buf[k] < 0x20 || buf[k] == 0x7f)
                    st = nb_error(NB_ERR_FORMAT, "line %lld: '%s' holds a control byte",
                                  (long long)line,
                                  nb_printable(shown, sizeof shown, (const char *)buf + a, b - a));
            if (st == NB_OK && !nb_utf8_valid_((const char *)buf + a, b - a))
                st = nb_error(NB_ERR_FORMAT, "line %lld: '%s' is not UTF-8", (long long)line,
                              nb_printable(shown, sizeof shown, (const char *)buf + a, b - a));
            if (st == NB_OK && !(c->names[line - 1] = strndup((const char *)buf + a, b - a)))
                st = nb_error(NB_ERR_NOMEM, "out of memory for class name %lld", (long long)line);
        }
    }
    int64_t got = blank_from >= 0 ? blank_from - 1 : line;
    if (st == NB_OK && got != K)
        st = nb_error(NB_ERR_FORMAT, "%lld names for %lld classes (one name per line)",
                      (long long)got, (long long)K);
    free(buf);
    return st;
}

nb_status nb_dataset_load_class_names(nb_dataset *ds, const char *path)
{
    const char *who = "nb_dataset_load_class_names";
    if (!ds || !path)
        return nb_error(NB_ERR_ARG, "%s: %s is NULL", who, !ds ? "ds" : "path");
    if (ds->n_classes < 1 || ds->n_classes > 1000000)
        return nb_error(NB_ERR_ARG,
                        "%s: the data set has %lld classes; names are kept for 1 to "
                        "1000000",
                        who, (long long)ds->n_classes);
    names_ctx c = {ds, calloc((size_t)ds->n_classes, sizeof(char *))};
    if (!c.names)
        return nb_error(NB_ERR_NOMEM, "%s: out of memory", who);
    nb_status st = nb_read_file(path, who, true, read_names, &c);
    if (st == NB_OK)
        st = nb_dataset_set_class_names(ds, (const char *const *)c.names, ds->n_classes);
    for (int64_t k = 0; k < ds->n_classes; k++)
        free(c.names[k]);
    free(c.names);
    return st;
}
