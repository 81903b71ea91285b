/* fileio.c - byte order of tensor data in files, and the message helpers every reader and
 * writer shares (see fileio.h). Writing outputs is in output.c and output_check.c; opening and
 * reading input files in fileread.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fileio.h"

bool nb_host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void nb_swap_elements(unsigned char *buf, size_t count, size_t size)
{
    if (size < 2)
        return;
    for (size_t i = 0; i < count; i++) {
        unsigned char *e = buf + i * size;
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = e[a];
            e[a] = e[b];
            e[b] = t;
        }
    }
}

bool nb_write_tensor_le(FILE *f, const nb_tensor *x)
{
    size_t esize = nb_dtype_size(x->dtype);
    size_t bytes = (size_t)x->numel * esize;
    if (bytes == 0)
        return true;
    if (x->dtype != NB_BOOL && (nb_host_little_endian() || esize == 1))
        return fwrite(x->data, 1, bytes, f) == bytes;
    unsigned char chunk[4096];
    const unsigned char *src = x->data;
    for (size_t off = 0; off < bytes;) {
        size_t n = bytes - off < sizeof chunk ? bytes - off : sizeof chunk;
        memcpy(chunk, src + off, n);
        if (x->dtype == NB_BOOL)
            for (size_t i = 0; i < n; i++)
                chunk[i] = chunk[i] != 0;
        else
            nb_swap_elements(chunk, n / esize, esize);
        if (fwrite(chunk, 1, n, f) != n)
            return false;
        off += n;
    }
    return true;
}

void nb_tensor_from_le(nb_tensor *t)
{
    size_t n = (size_t)t->numel;
    if (t->dtype == NB_BOOL) {
        unsigned char *b = t->data;
        for (size_t i = 0; i < n; i++)
            b[i] = b[i] != 0;
    }
    if (!nb_host_little_endian())
        nb_swap_elements(t->data, n, nb_dtype_size(t->dtype));
}

const char *nb_json_number(char *buf, size_t n, const char *fmt, double v)
{
    if (!isfinite(v))
        return "null";
    snprintf(buf, n, fmt, v);
    return buf;
}

void nb_error_prefix(nb_status st, const char *who, const char *path)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    if (path)
        nb_error(st, "%s: '%s': %s", who, path, msg);
    else
        nb_error(st, "%s: %s", who, msg);
}
