/* nabla/image.h - reading one grayscale image: PNG (through libpng) or PGM (P5 binary, P2 text).
 *
 * The result is what a classifier trained on MNIST-like data takes: u8 [H, W], 0 black .. 255
 * white, row-major, top row first. Colour is turned into gray with the ITU-R BT.601 luma weights
 * on the stored (gamma-encoded) values, rounded to nearest:
 *     gray = (299 R + 587 G + 114 B + 500) / 1000        (integer division)
 * so a gray pixel (R = G = B = v) stays v. An alpha channel is removed by compositing onto black
 * (a fully transparent pixel reads 0), as libpng's simplified API does for 8-bit output; 16-bit
 * PNG samples are reduced to 8 bits by libpng. A PGM with maxval M != 255 is rescaled to 0..255:
 * v' = (v * 255 + M / 2) / M.
 *
 * The format is told by the file's first bytes (\x89PNG or P5/P2), not by its name. Like every
 * nabla reader it refuses what it cannot trust before allocating: a FIFO or device (without
 * blocking), a file over NB_IMAGE_MAX_FILE bytes, a side over NB_IMAGE_MAX_SIDE or more than
 * NB_IMAGE_MAX_PIXELS pixels, a PGM with missing or extra data. Errors come back as an nb_status
 * with nb_last_error() reading "image: '<path>': <what>" ("image: 'a.pgm': width 0 is not in
 * 1..16384").
 */
#ifndef NABLA_IMAGE_H
#define NABLA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest image file read (256 MiB), largest width or height, largest W * H. */
#define NB_IMAGE_MAX_FILE ((size_t)1 << 28)
#define NB_IMAGE_MAX_SIDE 16384
#define NB_IMAGE_MAX_PIXELS ((int64_t)1 << 26)

/* Reads the PNG or PGM file at path into a new caller-owned u8 [H, W] tensor *out (free with
 * nb_tensor_free). *out is NULL on failure. */
nb_status nb_image_load(const char *path, nb_tensor **out);

/* The same from bytes in memory (borrowed for the call); errors read "image: <what>". */
nb_status nb_image_parse(const void *buf, size_t len, nb_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
