/* plot_png.c - the PNG machinery of `nabla plot` and `nabla study` (plot.h): PLplot draws into a
 * private temporary file through the caller's callback, the PNG is checked (signature, IEND
 * trailer) and only then written to the target by the one writer (tensor/fileio.h); plus the
 * window and text helpers both commands draw with.
 *
 * PLplot keeps global state: every plinit() is paired with a plend(), and an exit handler
 * removes the temporary file if PLplot decides to exit() the process on a fatal error.
 * Without PLplot (NABLA_HAVE_PLPLOT undefined) nb_cli_png_write reports that it is not built
 * in. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "tensor/fileio.h"
#include "tensor/fileread.h"

#ifndef NABLA_HAVE_PLPLOT

int nb_cli_png_write(const char *cmd, const char *png_path, int width, int height,
                     int (*draw)(void *ctx), void *ctx)
{
    (void)width, (void)height, (void)draw, (void)ctx;
    fprintf(stderr,
            "nabla %s: cannot write %s: this build has no PLplot support (install "
            "libplplot-dev)\n",
            cmd, png_path);
    return 1;
}

#else /* NABLA_HAVE_PLPLOT */

#include <math.h>
#include <unistd.h>

#include <plplot.h>

enum { COL_N = 16 }; /* cmap0 entries, set before plinit (0 is the page background) */

/* [lo, hi] of a and b together, widened by frac of the span on each side; a flat range (one
 * epoch, or a constant curve) is widened to at least +-min_half so PLplot gets a real window.
 * Returns -1 when the window is not finite (values near DBL_MAX). */
int nb_cli_plot_range(const double *a, const double *b, int n, double frac, double min_half,
                      double *lo, double *hi)
{
    double l = a[0], h = a[0];
    for (int i = 0; i < n; i++) {
        l = fmin(l, fmin(a[i], b ? b[i] : a[i]));
        h = fmax(h, fmax(a[i], b ? b[i] : a[i]));
    }
    double span = h - l;
    if (!(span > 1e-12 * fmax(1.0, fmax(fabs(l), fabs(h))))) {
        double half = fmax(0.1 * fabs(l), min_half);
        l -= half;
        h += half;
    } else {
        l -= frac * span;
        h += frac * span;
    }
    *lo = l;
    *hi = h;
    return isfinite(l) && isfinite(h) && h > l ? 0 : -1;
}

/* Copies s into out (cap bytes) for PLplot text: '#' is PLplot's escape character, so it is
 * doubled; bytes outside printable ASCII become '?' so a file name cannot upset the fonts. */
void nb_cli_plot_text(char *out, size_t cap, const char *s)
{
    size_t j = 0;
    for (; *s && j + 3 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '#')
            out[j++] = '#';
        out[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[j] = '\0';
}

/* ---- writing the PNG ---- */

static const char *plot_tmp_path;     /* the temporary file while PLplot is initialised */
static const char *plot_cmd = "plot"; /* the subcommand, for messages */

/* PLplot calls this from plexit() before it calls plend() and exit(): drop the half-written
 * temporary file so a fatal PLplot error never leaves a PNG behind. */
static int on_plplot_exit(const char *msg)
{
    fprintf(stderr, "nabla %s: PLplot failed: %s\n", plot_cmd, msg);
    if (plot_tmp_path)
        remove(plot_tmp_path);
    return 1;
}

static int have_pngcairo(void)
{
    enum { MAXDEV = 128 };
    const char *menus[MAXDEV], *names[MAXDEV];
    const char **pm = menus, **pn = names;
    int ndev = MAXDEV, found = 0;
    plgDevs(&pm, &pn, &ndev);
    for (int i = 0; i < ndev; i++)
        if (names[i] && !strcmp(names[i], "pngcairo"))
            found = 1;
    return found;
}

/* 1 if path holds a whole PNG: the 8-byte signature at the start, the IEND chunk at the end. */
static int png_complete(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    unsigned char head[8], tail[12];
    FILE *f = nb_open_regular(path, "nabla plot", NULL);
    if (!f)
        return 0;
    int ok = fread(head, 1, 8, f) == 8 && !memcmp(head, sig, 8) && fseek(f, -12, SEEK_END) == 0 &&
             fread(tail, 1, 12, f) == 12 && !memcmp(tail, iend, 12);
    fclose(f); /* read-only */
    return ok;
}

/* Colours, set before plinit so the page background is white: black text, then the series
 * colours of plot.h, light grey grid. */
static void set_palette(void)
{
    plscmap0n(COL_N);
    plscol0(NB_PLOT_COL_BG, 255, 255, 255);
    plscol0(NB_PLOT_COL_FG, 0, 0, 0);
    plscol0(NB_PLOT_COL_BLUE, 31, 119, 180);
    plscol0(NB_PLOT_COL_ORANGE, 230, 110, 0);
    plscol0(NB_PLOT_COL_GRID, 225, 225, 225);
    plscol0(NB_PLOT_COL_GREEN, 44, 160, 44);
    plscol0(NB_PLOT_COL_RED, 214, 39, 40);
    plscol0(NB_PLOT_COL_PURPLE, 148, 103, 189);
    plscol0(NB_PLOT_COL_GREY, 127, 127, 127);
}

/* A whole PNG in memory, from the temporary file to the target */
typedef struct png_bytes {
    unsigned char *data;
    size_t n;
} png_bytes;

static bool fill_png(FILE *f, void *ctx)
{
    const png_bytes *p = ctx;
    return fwrite(p->data, 1, p->n, f) == p->n;
}

/* Reads the rendered PNG (a page of 1000x450 is well under the 64 MB cap). 0 ok, -1 after a
 * message. */
static int read_png(const char *cmd, const char *path, png_bytes *p)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (!f || n < 0 || n > (64L << 20) || fseek(f, 0, SEEK_SET) != 0 ||
        !(p->data = malloc(n > 0 ? (size_t)n : 1)) ||
        fread(p->data, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "nabla %s: cannot read back the rendered PNG %s (%ld bytes): %s\n", cmd,
                path, n, errno ? strerror(errno) : "too large");
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f); /* read-only */
    p->n = (size_t)n;
    return 0;
}

int nb_cli_png_write(const char *cmd, const char *png_path, int width, int height,
                     int (*draw)(void *ctx), void *ctx)
{
    /* PLplot writes by file name: it draws into a private temporary file (mkstemp, in
     * $TMPDIR), which is checked and then handed to the one writer, so the PNG reaches any
     * kind of target (a file replaced atomically, a symlink's target, a device, "-"). */
    const char *tdir = getenv("TMPDIR");
    if (!tdir || !*tdir)
        tdir = "/tmp";
    size_t cap = strlen(tdir) + 64;
    char *tmp = malloc(cap);
    if (!tmp) {
        fprintf(stderr, "nabla %s: out of memory\n", cmd);
        return 1;
    }
    snprintf(tmp, cap, "%s/.nabla-plot.tmp.%ld.XXXXXX", tdir, (long)getpid());

    int rc = 1, fd = -1;
    png_bytes png = {NULL, 0};
    plot_cmd = cmd;
    /* Refuse before plinit what would make PLplot prompt on stdin (no such device) or retry
     * and exit() (an output file it cannot open). */
    plsexit(on_plplot_exit);
    int have_device = have_pngcairo();
    plend(); /* plgDevs loaded PLplot's driver table: release it */
    if (!have_device) {
        fprintf(stderr,
                "nabla %s: cannot write %s: PLplot has no pngcairo device (install "
                "plplot-driver-cairo)\n",
                cmd, png_path);
    } else if ((fd = mkstemp(tmp)) < 0) {
        fprintf(stderr, "nabla %s: cannot write %s: cannot create a temporary file in %s: %s\n",
                cmd, png_path, tdir, strerror(errno));
    } else if (close(fd) != 0) {
        fprintf(stderr, "nabla %s: cannot write %s (as %s): %s\n", cmd, png_path, tmp,
                strerror(errno));
        remove(tmp);
    } else {
        plot_tmp_path = tmp;
        plsdev("pngcairo");
        plsfnam(tmp);
        plspage(0.0, 0.0, width, height, 0, 0);
        set_palette();
        plinit();
        pladv(0);
        plschr(0.0, 0.85);
        int drawn = draw(ctx);
        plend(); /* writes the page to tmp and resets PLplot's global state */
        plot_tmp_path = NULL;
        if (drawn != 0) {
            remove(tmp);
        } else if (!png_complete(tmp)) {
            fprintf(stderr, "nabla %s: PLplot did not write a complete PNG to %s (disk full?)\n",
                    cmd, tmp);
            remove(tmp);
        } else if (read_png(cmd, tmp, &png) != 0) {
            remove(tmp);
        } else {
            remove(tmp);
            char who[64];
            snprintf(who, sizeof who, "nabla %s", cmd);
            if (nb_write_atomically(png_path, who, fill_png, &png) != NB_OK)
                fprintf(stderr, "%s\n", nb_last_error());
            else
                rc = 0;
        }
    }
    free(png.data);
    plsexit(NULL);
    plot_cmd = "plot";
    free(tmp);
    return rc;
}

#endif /* NABLA_HAVE_PLPLOT */
