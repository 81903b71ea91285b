/* image_read.c - one image file for `nabla predict`, read by the library's nb_image_load
 * (nabla/image.h): the reader `--data images:DIR` trains with, so a PNG or PGM becomes the same
 * gray pixels for training and for prediction (colour by the BT.601 weights, alpha onto black,
 * PGM maxval rescaled; regular files only, sizes bounded before anything is allocated). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "predict_input.h"

nb_status nb_cli_read_image(const char *path, unsigned char **px, int64_t *w, int64_t *h)
{
    nb_tensor *t = NULL;
    *px = NULL;
    nb_status st = nb_image_load(path, &t); /* u8 [H, W]; errors name the file */
    if (st != NB_OK)
        return st;
    if (t->numel > NB_IMAGE_PIXELS_MAX) {
        st = nb_error(NB_ERR_RANGE, "image '%s' is %lldx%lld; the limit is %lld pixels", path,
                      (long long)t->shape[1], (long long)t->shape[0],
                      (long long)NB_IMAGE_PIXELS_MAX);
    } else if (!(*px = malloc((size_t)t->numel))) {
        st = nb_error(NB_ERR_NOMEM, "out of memory for image '%s'", path);
    } else {
        memcpy(*px, t->data, (size_t)t->numel);
        *w = t->shape[1];
        *h = t->shape[0];
    }
    nb_tensor_free(t);
    return st;
}
