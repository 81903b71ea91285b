/* npy_write.h - writing a .npy into an output opened with nb_output_open, so that a command
 * can finish several outputs before putting any in place. Not installed. */
#ifndef NABLA_NPY_WRITE_H
#define NABLA_NPY_WRITE_H

#include "../tensor/fileio.h"

/* Writes x as .npy into out and finishes it (nb_output_finish); on any error out is abandoned
 * and the message reads "npy: '<path>': ...". Commit it with nb_output_commit. */
nb_status nb_npy_write_output(nb_output *out, const nb_tensor *x);

#endif
