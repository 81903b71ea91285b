/* nabla/custom_op.h - ops with a user-written forward and backward, recorded on the tape.
 *
 * The C counterpart of PyTorch's torch.autograd.Function: you give a forward that fills the
 * output from the inputs and a backward that turns the output's gradient into the inputs'
 * gradients. The op is then recorded, differentiated, checked by anomaly detection and by
 * nb_gradcheck exactly like nabla's own ops, so nb_gradcheck checks YOUR derivation.
 *
 *     static nb_status softplus_fwd(nb_tensor *out, const nb_tensor *const *in, int n, void *ctx)
 *     {   // y = log(1 + e^x)
 *         for (int64_t i = 0; i < out->numel; i++)
 *             nb_tensor_set(out, i, log1p(exp(nb_tensor_get(in[0], i))));
 *         return NB_OK;
 *     }
 *     static nb_status softplus_bwd(nb_tensor *const *gin, const nb_tensor *gout,
 *                                   const nb_tensor *out, const nb_tensor *const *in, int n,
 *                                   void *ctx)
 *     {   // dx += dy * sigmoid(x)
 *         if (gin[0])
 *             for (int64_t i = 0; i < gout->numel; i++)
 *                 nb_tensor_set(gin[0], i, nb_tensor_get(gin[0], i) + nb_tensor_get(gout, i) /
 *                                   (1.0 + exp(-nb_tensor_get(in[0], i))));
 *         return NB_OK;
 *     }
 *     nb_tensor *y = nb_custom_op(g, "softplus", &x, 1, x->ndim, x->shape, softplus_fwd,
 *                                 softplus_bwd, NULL);
 *
 * dtypes: the inputs are all f32 or all f64 and the output has their dtype; gradients have the
 * same dtype (f32 for f32, f64 for f64). Under nb_gradcheck (or with promote_f32) the same
 * functions are called with f64 tensors, so write them for both (nb_tensor_get/set do), or
 * check `out->dtype` and return an error for the one you do not support.
 *
 * THE GRADIENT CONVENTION (the same rule nabla's own backward kernels follow): backward ADDS its
 * contribution into grad_in[i] (+=), it never overwrites. grad_in[i] may already hold the
 * gradient from another use of the same tensor (x used twice: y = f(x) + x), and overwriting
 * it silently drops that part; nb_gradcheck catches it. grad_in[i] is NULL when input i takes
 * no gradient (a constant, or an input nothing differentiable depends on): skip it.
 *
 * Ownership: the inputs are borrowed as by any op (nabla/ops.h: until nb_backward has run or the
 * graph is reset); the output belongs to the graph. The tensors handed to your forward and
 * backward (out, in, grad_out, grad_in) are views valid only during that call: do not keep
 * pointers to them or free them.
 */
#ifndef NABLA_CUSTOM_OP_H
#define NABLA_CUSTOM_OP_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most inputs a custom op takes, and longest name (bytes, without the NUL). */
#define NB_CUSTOM_OP_MAX_INPUTS 4
#define NB_CUSTOM_OP_MAX_NAME 63

/* Fills out (allocated by nabla with the requested shape, the inputs' dtype, zeroed) from the
 * inputs. Returns NB_OK, or an error status, after nb_error() for a message if you like. */
typedef nb_status (*nb_custom_forward_fn)(nb_tensor *out, const nb_tensor *const *in, int n_in,
                                          void *ctx);

/* grad_out = dL/dout (out's shape); grad_in[i] = dL/din[i] to ADD into (+=), or NULL when input
 * i takes no gradient. out and in are the forward's output and inputs, unchanged. An error
 * status stops nb_backward, which returns it with the message "custom op 'NAME' (node K)
 * backward failed: <your message>". */
typedef nb_status (*nb_custom_backward_fn)(nb_tensor *const *grad_in, const nb_tensor *grad_out,
                                           const nb_tensor *out, const nb_tensor *const *in,
                                           int n_in, void *ctx);

/* Applies a user op on g: out = forward(inputs), a new arena tensor of shape out_shape
 * (out_ndim dims, 0 = scalar) and the inputs' dtype. When grad is enabled and an input requires
 * grad, the op is recorded with its backward (which may be NULL only if no input requires grad:
 * an op without a backward cannot be differentiated). name (1..63 printable ASCII characters) is
 * copied into g's arena; it names the op in anomaly messages, in errors and in
 * nb_tensor_op_name. ctx is passed to
 * both functions untouched and must live until backward has run. Returns NULL on error
 * (message names the op and what is wrong). */
nb_tensor *nb_custom_op(nb_graph *g, const char *name, nb_tensor *const *inputs, int n_inputs,
                        int out_ndim, const int64_t *out_shape, nb_custom_forward_fn forward,
                        nb_custom_backward_fn backward, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
