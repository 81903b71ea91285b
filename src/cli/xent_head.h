/* xent_head.h - `nabla xent --input X.npy --classifier W.npy [--bias b.npy]` (xent_head.c): the
 * cross-entropy of x W^T + b through the fused linear + cross-entropy head. */
#ifndef NABLA_XENT_HEAD_H
#define NABLA_XENT_HEAD_H

#include "nabla.h"

typedef struct nb_xent_head_args {
    const char *input, *classifier, *bias;                     /* .npy files */
    const char *loss_out, *grad_out, *grad_w_out, *grad_b_out; /* outputs, NULL = none */
    nb_xent_opts o; /* the cross-entropy's options (mask and weight are passed apart) */
    double softcap; /* > 0: z = c tanh(z / c) */
} nb_xent_head_args;

/* Loads x, W and b (f32, or f64 when x is f64), runs the op, writes the outputs (all or none)
 * and prints the summary when there is no --loss-out. targets, mask and weight are loaded by
 * the caller (mask and weight may be NULL). Returns the exit status: 0, or 1 after a message. */
int nb_xent_head_run(const nb_xent_head_args *a, const nb_tensor *targets, const nb_tensor *mask,
                     const nb_tensor *weight);

#endif
