/* cli.h - the `nabla` command's subcommands. Each returns the process exit status:
 * 0 success, 1 failure of the work (a check failed, a file is bad), 2 bad usage. */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "nabla.h"

int nb_cmd_gradcheck(int argc, char **argv);
int nb_cmd_xent(int argc, char **argv);
int nb_cmd_demo(int argc, char **argv);
int nb_cmd_train(int argc, char **argv);
int nb_cmd_eval(int argc, char **argv);
int nb_cmd_predict(int argc, char **argv);
int nb_cmd_export(int argc, char **argv);
int nb_cmd_plot(int argc, char **argv);
int nb_cmd_bench(int argc, char **argv);
int nb_cmd_diff(int argc, char **argv);
int nb_cmd_study(int argc, char **argv);

#include <stdint.h>
struct nb_dataset;
const char *nb_cli_default_data_dir(void);
bool nb_cli_mnist_present(const char *dir);
/* --header yes|no|auto: how nb_cli_load_data reads line 1 of a FILE.csv spec (default auto, see
 * nb_csv_header); a process-wide CLI setting. False, after "nabla CMD: ..." on stderr, for any
 * other value. */
bool nb_cli_csv_header_option(const char *cmd, const char *value);
/* --label-col N|NAME: the label column of a CSV, a 0-based index, "last" (or -1, the default),
 * or a header name (needs a header line). --skip-rows N: lines at the start of a CSV ignored
 * unread (default 0). Process-wide CLI settings like --header; false after a message for a bad
 * value. Options not given on the command line are taken from the checkpoint's recorded
 * train.header, train.label-col and train.skip-rows when nb_cli_read_data_id reads one. */
bool nb_cli_csv_label_option(const char *cmd, const char *value);
bool nb_cli_csv_skip_rows_option(const char *cmd, const char *value);
/* What identifies a run's data, recorded in its checkpoints so that `nabla eval --model`
 * rebuilds exactly the run's held-out rows (and notices when the file changed since). */
typedef struct nb_cli_data_id {
    uint64_t seed;     /* the split's seed (files), the generator's (spirals, seq-toy) */
    double test_frac;  /* the held-out fraction (files) */
    int64_t rows;      /* rows of the whole file before the split; 0 for built-in sets */
    uint64_t checksum; /* FNV-1a 64 of the file's rows as loaded; 0 for built-in sets */
} nb_cli_data_id;
/* A file spec (FILE.csv, csv:FILE, X.npy,y.npy, images:DIR) with every path made absolute and
 * free of symlinks into out, so that a run recorded with it resumes from any directory; false
 * (out unspecified) for a built-in set, a path that does not resolve, or one too long. */
bool nb_cli_canonical_spec(const char *spec, char *out, size_t cap);
/* True for the specs that name files (FILE.csv, csv:FILE, X.npy,y.npy, images:DIR), false for
 * built-in sets. */
bool nb_cli_data_is_file(const char *spec);
/* Loads --data SPEC into train and test; returns an exit status (0 = ok). With test NULL, a
 * file's every row goes to train. id (may be NULL) receives seed, test_frac and, for files, the
 * row count and checksum of the whole file. */
int nb_cli_load_data(const char *cmd, const char *spec, const char *dir, uint64_t seed,
                     double test_frac, struct nb_dataset *train, struct nb_dataset *test,
                     bool quiet, nb_cli_data_id *id);
/* The checkpoint metadata pairs (key, value, ...) recording spec and id: data_spec, data_seed,
 * data_test_frac, data_rows, data_checksum. Values point into spec and num. */
#define NB_CLI_DATA_KEYS 5
void nb_cli_data_meta(const char *spec, const nb_cli_data_id *id, char num[4][32],
                      const char *pairs[2 * NB_CLI_DATA_KEYS]);
/* Reads them back from the checkpoint at path: 0 with *spec (malloc'd, caller frees) and id
 * filled; 1 when the checkpoint records none (saved by an older nabla); -1 after printing a
 * message naming the file and the bad field. */
int nb_cli_read_data_id(const char *cmd, const char *path, char **spec, nb_cli_data_id *id);
/* Loss sum (sum reduction) and correct count of m over ds in batches of 1000, no gradient;
 * confusion (K x K, may be NULL) counts [true][predicted]. */
nb_status nb_cli_evaluate(nb_graph *g, nb_mlp *m, const nb_dataset *ds, double *loss_sum,
                          int64_t *correct, int64_t *confusion);
/* Writes a PNG of loss and accuracy curves from a metrics .jsonl file; 0 = ok. */
int nb_cli_plot_metrics(const char *metrics_path, const char *png_path);
/* The up-front check of a PNG output: writable, not the metrics file. 0 ok, 1 after a message. */
int nb_cli_check_plot_output(const char *metrics_path, const char *png_path);

/* Parsing helpers: print "nabla CMD: bad value for --OPT: 'x'" and return false on error. */
bool nb_cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);
bool nb_cli_parse_int(const char *cmd, const char *opt, const char *s, long long *out);

/* Unknown options: the option of the usage text (every "--name" in it) nearest to opt (at most
 * two edits; opt with or without its dashes), into buf, or NULL. nb_cli_unknown_option prints
 * "nabla CMD: unknown option 'X'; did you mean --Y?" (or where to look) on stderr. Options are
 * matched whole: a prefix is not accepted, it gets the suggestion. */
const char *nb_cli_nearest_option(const char *opt, const char *text, char *buf, size_t cap);
void nb_cli_unknown_option(const char *cmd, const char *opt, void (*usage)(FILE *));

/* Timing for the benchmarks and progress: a monotonic clock in seconds; the qsort order of
 * doubles; min, median and max of n > 0 timings in seconds, as milliseconds (t is sorted). */
double nb_cli_now(void);
int nb_cli_cmp_double(const void *a, const void *b);
typedef struct nb_cli_timing {
    double min, median, max;
} nb_cli_timing;
nb_cli_timing nb_cli_summarise(double *t, int n);

#endif
