/* status.c - per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "nabla/status.h"

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
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    last_code = s;
    return s;
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
