/* train_outputs.h - what `nabla train` writes and how it stops early. */
#ifndef NABLA_TRAIN_OUTPUTS_H
#define NABLA_TRAIN_OUTPUTS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "tensor/fileio.h"

/* Every output can be written (a directory, a missing directory... fail here, before any
 * work), no two outputs are the same file, and none is an input it would destroy (--save may
 * be the --resume checkpoint: that is how a run continues in place). NULL = not given.
 * 0 ok, 1 after a message. */
int nb_train_check_outputs(const char *save, const char *metrics, const char *plot,
                           const char *resume, const char *data);

/* --metrics: the run's configuration, one JSON object per epoch, the test figures. A file is kept
 * whole in memory and replaced atomically after every epoch, so what was there is never truncated
 * before its replacement is ready (on resume the lines of the epochs before the resumed one are
 * kept); "-", a device or a FIFO is streamed line by line. Every write is checked; a failure is
 * reported (file and errno text) and the caller fails the run. All return 0 ok, 1 after a message.
 */
typedef struct metrics_out {
    const char *path;
    char *buf;
    size_t len, cap;
    bool stream, written;
    nb_output out; /* stream: open for the run */
} metrics_out;
/* head: the first line (the run's configuration); first: the epoch the run starts at (lines of
 * earlier epochs of an existing file are kept after head) */
/* run_key: a string line 1 of a file being continued must hold when it is a configuration
 * record (another run's metrics are refused, not mixed in) */
int nb_train_metrics_open(metrics_out *mo, const char *path, long long first, const char *head,
                          const char *run_key);
int nb_train_metrics_line(metrics_out *mo, const char *line);
/* ok = false: release only (a failed run leaves the file as its last epoch wrote it) */
int nb_train_metrics_close(metrics_out *mo, bool ok);

/* SIGINT/SIGTERM: the handler only records the signal in nb_train_stop_signal (0 = none); the
 * loop stops at the next step boundary (a checkpoint being written is finished first). A
 * signal the parent ignored stays ignored. */
extern volatile sig_atomic_t nb_train_stop_signal;
void nb_train_signals_install(struct sigaction old[2]);
void nb_train_signals_restore(const struct sigaction old[2]);
/* The message after a stop: where the last good checkpoint ck is (NULL: none; ck_step < 0:
 * the one resumed from) and the exact command (argv of `train`, --resume replaced) that
 * continues from it. */
void nb_train_report_interrupted(int argc, char **argv, const char *save, int sig, long long epoch,
                                 long long step, const char *ck, long long ck_epoch,
                                 long long ck_step);

#endif
