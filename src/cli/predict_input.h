/* predict_input.h - what `nabla predict --input` reads: .npy (a batch [N, ...] or one image
 * [H, W]), IDX (plain or gzip), CSV (features only), PNG and PGM images, or a directory of
 * PNG/PGM files. Every file is opened with nb_open_regular (a FIFO or device is refused without
 * blocking), and sizes and counts are bounded before anything is allocated. */
#ifndef NABLA_PREDICT_INPUT_H
#define NABLA_PREDICT_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla.h"

/* Largest image file, image and directory this reader accepts. */
#define NB_IMAGE_FILE_MAX ((size_t)64 << 20)
#define NB_IMAGE_PIXELS_MAX ((int64_t)1 << 24)
#define NB_IMAGE_DIR_MAX 1000000

typedef struct nb_pred_input {
    nb_tensor *x;     /* the raw values, any dtype, numel = n * D (owned) */
    int64_t n;        /* rows */
    char **labels;    /* NULL (rows are named "row i"), or n names (owned): file names */
    bool pixels;      /* values are 0..255 pixels: image files or uint8 data */
    const char *kind; /* "npy", "IDX", "CSV", "PNG", "PGM", "directory" */
} nb_pred_input;

/* Reads path for a model of D inputs into *in; 0 or an exit status after a message on stderr
 * ("nabla predict: --input PATH: ..."). */
int nb_cli_read_pred_input(const char *path, int64_t D, nb_pred_input *in);
void nb_cli_pred_input_free(nb_pred_input *in);

/* One image file (PNG or PGM by its first bytes) as 8-bit gray pixels: *px (malloc'd, w * h
 * bytes, 0..255; the caller frees), *w, *h. PNG through libpng's simplified API (any colour type
 * or depth converted to gray), PGM P5 (maxval < 256 one byte, else two big-endian bytes) and P2,
 * scaled to 0..255 when maxval is not 255. NB_ERR_FORMAT naming the file and the fault. */
nb_status nb_cli_read_image(const char *path, unsigned char **px, int64_t *w, int64_t *h);

#endif
