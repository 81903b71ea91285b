/* cmd_xent.c - written next */
#include "cli.h"
int nb_cmd_xent(int argc, char **argv) { (void)argc; (void)argv; return 2; }
