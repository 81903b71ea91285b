/* plot.h - the PNG machinery of `nabla plot`, shared with `nabla study` (src/cli only;
 * implemented in plot_png.c).
 *
 * nb_cli_png_write does everything around the drawing: refuses before PLplot starts when PLplot
 * has no pngcairo device (`nabla plot` checks the output path first, with nb_output_check), draws
 * into a private temporary file ($TMPDIR/.nabla-plot.tmp.<pid>.XXXXXX, made with mkstemp) through
 * the caller's callback (called between plinit and plend, with the palette below set and one page
 * advanced), checks the PNG is complete and only then hands it to the one writer
 * (src/tensor/fileio.h), which puts it at PNG (a file replaced atomically, a symlink's target, a
 * device or "-"). Without PLplot in the build it says so and returns 1. */
#ifndef NABLA_CLI_PLOT_H
#define NABLA_CLI_PLOT_H

#include <stddef.h>

/* Colour indices (PLplot's cmap0) set by nb_cli_png_write. */
enum {
    NB_PLOT_COL_BG = 0,
    NB_PLOT_COL_FG = 1,
    NB_PLOT_COL_BLUE = 2,
    NB_PLOT_COL_ORANGE = 3,
    NB_PLOT_COL_GRID = 4,
    NB_PLOT_COL_GREEN = 5,
    NB_PLOT_COL_RED = 6,
    NB_PLOT_COL_PURPLE = 7,
    NB_PLOT_COL_GREY = 8
};

/* Writes a width x height PNG drawn by draw(ctx) (0 = drawn; non-zero = failed after a
 * message, nothing written). Messages start "nabla CMD:". Returns 0 ok, 1 after a message. */
int nb_cli_png_write(const char *cmd, const char *png_path, int width, int height,
                     int (*draw)(void *ctx), void *ctx);

#ifdef NABLA_HAVE_PLPLOT
/* [lo, hi] of a and b (b may be NULL) widened by frac of the span (a flat range by at least
 * +-min_half). -1 when the window is not finite. */
int nb_cli_plot_range(const double *a, const double *b, int n, double frac, double min_half,
                      double *lo, double *hi);
/* s made safe as PLplot text ('#' doubled, non-printable bytes as '?'). */
void nb_cli_plot_text(char *out, size_t cap, const char *s);
#endif

#endif
