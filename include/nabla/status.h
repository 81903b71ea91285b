/* nabla/status.h - error reporting.
 *
 * Every public function that can fail returns an nb_status (or NULL for functions that return a
 * pointer). On failure a human-readable message naming the problem and the values involved is kept
 * per thread and can be read with nb_last_error(). Nothing a caller passes in ever aborts.
 *
 * Bad arguments. Every public function checks its arguments at entry: NULL pointers, counts,
 * indices, dims, enum values and the header of every tensor it is given (dtype, ndim, a shape
 * whose product is numel, data present, not stale). A bad argument fails with NB_ERR_ARG (a NULL
 * or malformed argument), NB_ERR_RANGE (an index or value out of range), NB_ERR_SHAPE or
 * NB_ERR_DTYPE, and a message that names the function, the argument and the value, e.g.
 * "nb_tensor_get: index 100 out of range [0, 6) for tensor [2, 3]". Functions that return a value
 * rather than a status return what their header documents (NULL, NaN, 0, false, -1) and set the
 * error; void functions do nothing and set the error. The *_free functions accept NULL silently,
 * as free() does. (The op names in ops.h messages are the op's: "relu: ...", "matmul: ...".)
 *
 * The message is never sticky. A failing call ALWAYS sets its own message (and status); a
 * successful call leaves both alone, like errno, so read them only after a failure, or clear
 * them with nb_clear_error() first.
 *
 * Chains. A NULL data input of a graph op (ops.h, nn.h's nb_dropout, loss.h's nb_cross_entropy
 * and nb_cross_entropy_soft logits) or a NULL root given to nb_backward is taken to be the result
 * of an earlier failed op, as in nb_relu(g, nb_matmul(g, a, bad, false, false)). The call fails
 * with the status of the thread's last error (the root cause; NB_ERR_ARG if nothing failed
 * since nb_clear_error) and a message that names this op and keeps the first failure at its end:
 *     "relu: input 0 is NULL; earlier error: matmul: inner dimensions differ: ..."
 * Further links of the chain replace the front and keep the same end, so a chain is checked
 * once, at its last call. Every other NULL argument is plain NB_ERR_ARG, "fn: arg is NULL".
 *
 * Ownership: the strings returned here belong to the library; never free them. nb_last_error's
 * text lives in a per-thread buffer that the next failing call on the same thread overwrites
 * (copy it to keep it); nb_status_name's are static.
 */
#ifndef NABLA_STATUS_H
#define NABLA_STATUS_H

/* The library's version (nabla.h includes this header; lower layers read it from here). */
#define NABLA_VERSION_MAJOR 0
#define NABLA_VERSION_MINOR 1
#define NABLA_VERSION_PATCH 0
#define NABLA_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_status {
    NB_OK = 0,
    NB_ERR_ARG,    /* an argument is invalid (NULL, out of range option, ...) */
    NB_ERR_SHAPE,  /* shapes do not match or are not supported */
    NB_ERR_DTYPE,  /* a dtype is not supported by the operation */
    NB_ERR_RANGE,  /* a value (target, index) is out of range */
    NB_ERR_NOMEM,  /* an allocation failed */
    NB_ERR_IO,     /* a file could not be opened, read or written */
    NB_ERR_FORMAT, /* a file is corrupt, truncated or of an unsupported kind */
    NB_ERR_STALE,  /* a tensor was used after its graph was reset */
    NB_ERR_STATE,  /* the call is not valid in the current state (e.g. backward twice) */
    NB_ERR_ANOMALY /* anomaly detection found a NaN or infinity (nb_graph_set_anomaly_detection) */
} nb_status;

/* The message of the last error on this thread ("" if none). Valid until the next failing call. */
const char *nb_last_error(void);

/* A short name for a status code ("shape mismatch", ...). */
const char *nb_status_name(nb_status s);

/* Record an error message (printf-style) and return `s`, so a failing function can say
 * `return nb_error(NB_ERR_SHAPE, "...", ...);`. */
nb_status nb_error(nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The status of the last error on this thread (NB_OK if none since nb_clear_error). */
nb_status nb_last_status(void);

/* Forget the last error. */
void nb_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
