/* status.c - per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nabla/status.h"
#include "tensor_internal.h"

static _Thread_local char last_msg[1024];
static _Thread_local nb_status last_code = NB_OK;

const char *nb_last_error(void)
{
    return last_msg;
}

nb_status nb_last_status(void)
{
    return last_code;
}

void nb_clear_error(void)
{
    last_msg[0] = '\0';
    last_code = NB_OK;
}

nb_status nb_error(nb_status s, const char *fmt, ...)
{
    if (!fmt) {
        snprintf(last_msg, sizeof last_msg, "nb_error: fmt is NULL (status %d, %s)", (int)s,
                 nb_status_name(s));
        last_code = s;
        return s;
    }
    /* formatted into a copy first, so an argument may be nb_last_error() itself */
    char msg[sizeof last_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_msg, msg, sizeof msg);
    last_code = s;
    return s;
}

nb_status nb_error_in(const char *fn, nb_status s)
{
    if (s == NB_OK)
        return s;
    size_t n = strlen(fn);
    if (strncmp(last_msg, fn, n) == 0 && last_msg[n] == ':')
        return nb_error(s, "%s", last_msg); /* already named */
    const char *m = last_msg;
    if (strncmp(m, "nb_", 3) == 0) { /* a public helper's name: ours replaces it */
        size_t k = strspn(m, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (m[k] == ':' && m[k + 1] == ' ')
            m += k + 2;
    }
    return nb_error(s, "%s: %s", fn, m);
}

static nb_status error_null(const char *fn, const char *arg, bool keep_status)
{
    if (last_code == NB_OK || !keep_status)
        return nb_error(NB_ERR_ARG, "%s: %s is NULL", fn, arg);
    /* the first failure of a chain stays at the end of the message */
    const char *root = strstr(last_msg, NB_EARLIER_ERROR);
    root = root ? root + strlen(NB_EARLIER_ERROR) : last_msg;
    return nb_error(last_code, "%s: %s is NULL" NB_EARLIER_ERROR "%s", fn, arg, root);
}

nb_status nb_error_null(const char *fn, const char *arg)
{
    return error_null(fn, arg, false);
}

nb_status nb_error_null_input(const char *fn, const char *arg)
{
    return error_null(fn, arg, true);
}

const char *nb_status_name(nb_status s)
{
    switch (s) {
    case NB_OK: return "ok";
    case NB_ERR_ARG: return "invalid argument";
    case NB_ERR_SHAPE: return "shape mismatch";
    case NB_ERR_DTYPE: return "unsupported dtype";
    case NB_ERR_RANGE: return "value out of range";
    case NB_ERR_NOMEM: return "out of memory";
    case NB_ERR_IO: return "i/o error";
    case NB_ERR_FORMAT: return "bad file format";
    case NB_ERR_STALE: return "stale tensor";
    case NB_ERR_STATE: return "invalid state";
    case NB_ERR_ANOMALY: return "non-finite value";
    }
    return "unknown status";
}
