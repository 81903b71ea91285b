/* eval_show.h - what `nabla eval` shows of an evaluation: the text report (per-class table and
 * confusion matrix, labelled with class names when known, abbreviated to fit) and the confusion
 * matrix as a PNG (--plot, PLplot). src/cli only; implemented in eval_show.c. */
#ifndef NABLA_CLI_EVAL_SHOW_H
#define NABLA_CLI_EVAL_SHOW_H

#include "nabla.h"

/* The report on stdout. names: NULL (rows and columns are class indices, the format of older
 * versions), or r->n_classes names. */
void nb_cli_print_eval(const nb_eval_result *r, const char *const *names);

/* The confusion matrix of r (rows: true class, columns: predicted; cells shaded by the share of
 * the row, counts written in) as a PNG at png through nb_cli_png_write; title on top. 0 ok, 1
 * after a message. */
int nb_cli_plot_confusion(const char *png, const nb_eval_result *r, const char *const *names,
                          const char *title);

#endif
