/* cli.h - the `nabla` command's subcommands. Each returns the process exit status:
 * 0 success, 1 failure of the work (a check failed, a file is bad), 2 bad usage. */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H

#include <stdbool.h>

int nb_cmd_gradcheck(int argc, char **argv);
int nb_cmd_xent(int argc, char **argv);
int nb_cmd_demo(int argc, char **argv);

/* Parsing helpers: print "nabla CMD: bad value for --OPT: 'x'" and return false on error. */
bool nb_cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);
bool nb_cli_parse_int(const char *cmd, const char *opt, const char *s, long long *out);

#endif
