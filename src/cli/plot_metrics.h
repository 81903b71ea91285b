/* plot_metrics.h - reading a `nabla train --metrics` file for `nabla plot` (src/cli only).
 *
 * The file is JSON lines. Three record kinds are read, told apart by a key; an object with
 * none of those keys is another kind of record and is skipped, as are unknown keys:
 *   config (first line):  {"config": {"data": "..", "hidden": "..", ..}, "nabla": "0.3.0", ..}
 *   epoch (one a line):   {"epoch": 3, "train_loss": .., "train_acc": .., "val_loss": ..,
 *                          "val_acc": .., "grad_norm": .., "train_seconds": .., "lr": ..}
 *   end (last line):      {"end": true, "epochs_done": 10, "best_epoch": 8,
 *                          "test_loss": .., "test_acc": ..}
 * val_loss/val_acc are absent when the run had no validation set. Files written before the
 * validation split have no config or end record and per-epoch "test_loss"/"test_acc" instead:
 * they are read as they always were, their held-out curve labelled "test". */
#ifndef NABLA_CLI_PLOT_METRICS_H
#define NABLA_CLI_PLOT_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* Columns of the per-epoch table. HELD_* is the held-out curve: val_* (current files) or
 * test_* (old files); absent when held == NB_HELD_NONE. */
enum {
    NB_PM_EPOCH,
    NB_PM_TRAIN_LOSS,
    NB_PM_TRAIN_ACC,
    NB_PM_HELD_LOSS,
    NB_PM_HELD_ACC,
    NB_PM_NCOLS
};

/* What the per-epoch held-out keys were: none yet / no held-out set, val_*, old-style test_*. */
typedef enum { NB_HELD_UNSET, NB_HELD_NONE, NB_HELD_VAL, NB_HELD_TEST } nb_held_kind;

#define NB_PLOT_MAX_EPOCHS 10000000          /* far beyond any run; keeps counts inside PLINT */
#define NB_PLOT_MAX_LINE 65536               /* bytes per line; a real one is ~300 */
#define NB_PLOT_MAX_FILE ((size_t)256000000) /* bytes per metrics file (256 MB) */
#define NB_PLOT_MAX_NAME 64                  /* bytes kept of a config string (data, hidden) */

/* A metrics file in memory. col[c] has n rows (epochs, in file order). Owned by the struct:
 * free with nb_plot_metrics_free. */
typedef struct nb_plot_metrics {
    int n, cap;
    double *col[NB_PM_NCOLS];
    nb_held_kind held;
    long end_line;                  /* line of the end record, 0 when there is none */
    bool end_test;                  /* the end record has test_loss and test_acc */
    double test_loss, test_acc;     /* the end-of-run test figures (when end_test) */
    double best_epoch, epochs_done; /* from the end record; -1 when absent */
    char data[NB_PLOT_MAX_NAME];    /* config.data and config.hidden, "" when absent */
    char hidden[NB_PLOT_MAX_NAME];
} nb_plot_metrics;

/* Reads path into m (which need not be initialised; free it after either result). Bounded: a
 * regular file of at most NB_PLOT_MAX_FILE bytes (a FIFO or device is refused at open, without
 * blocking), lines of at most NB_PLOT_MAX_LINE bytes, NB_PLOT_MAX_EPOCHS epochs. A line that is not
 * one JSON object, a plotted value that is missing or not a finite number, epochs that do not
 * increase, held-out keys that change between epochs, or an epoch after the end record is an error
 * naming FILE:LINE, printed on stderr as "nabla plot: ...". 0 ok (at least one epoch), -1 after a
 * message. */
int nb_plot_metrics_read(const char *path, nb_plot_metrics *m);
void nb_plot_metrics_free(nb_plot_metrics *m);

/* The held-out curve's label: "val", "test", or NULL when the file has none. */
const char *nb_plot_metrics_held_name(const nb_plot_metrics *m);

#endif
