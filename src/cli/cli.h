/* cli.h - the `nabla` command's subcommands. Each returns the process exit status:
 * 0 success, 1 failure of the work (a check failed, a file is bad), 2 bad usage. */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H

#include <stdbool.h>

#include "nabla.h"

int nb_cmd_gradcheck(int argc, char **argv);
int nb_cmd_xent(int argc, char **argv);
int nb_cmd_demo(int argc, char **argv);
int nb_cmd_train(int argc, char **argv);
int nb_cmd_eval(int argc, char **argv);
int nb_cmd_predict(int argc, char **argv);
int nb_cmd_plot(int argc, char **argv);
int nb_cmd_bench(int argc, char **argv);
int nb_cmd_diff(int argc, char **argv);

#include <stdint.h>
struct nb_dataset;
const char *nb_cli_default_data_dir(void);
bool nb_cli_mnist_present(const char *dir);
/* Loads --data SPEC into train and test (test may be NULL); returns an exit status (0 = ok). */
int nb_cli_load_data(const char *cmd, const char *spec, const char *dir, uint64_t seed,
                     double val_frac, struct nb_dataset *train, struct nb_dataset *test,
                     bool quiet);
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

#endif
