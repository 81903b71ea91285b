/* nabla/optim.h - optimisers, learning-rate schedules, gradient clipping.
 *
 * Update rules are PyTorch's (torch.optim, 1.13), with g = the parameter's gradient:
 *   SGD:   g += wd p;  b = g (first step) or b = mu b + (1 - dampening) g;
 *          g = nesterov ? g + mu b : b  (when mu > 0);  p -= lr g
 *   Adam:  g += wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   AdamW: p *= 1 - lr wd  (decoupled), then Adam without the wd term.
 * State (momentum / exp_avg / exp_avg_sq, step count) is kept in the parameter's dtype and updated
 * in double arithmetic; it can be listed and restored for checkpoints.
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Plain SGD without state: p -= lr (grad + weight_decay p). params is borrowed for the call. */
nb_status nb_sgd_step(nb_tensor *const *params, int n_params, double lr, double weight_decay);

typedef enum nb_optim_kind { NB_OPTIM_SGD = 0, NB_OPTIM_ADAM, NB_OPTIM_ADAMW } nb_optim_kind;

typedef struct nb_optim_config {
    nb_optim_kind kind;
    double lr;
    double weight_decay;
    double momentum, dampening; /* SGD */
    bool nesterov;              /* SGD: needs momentum > 0 and dampening 0, as in PyTorch */
    double beta1, beta2, eps;   /* Adam / AdamW */
} nb_optim_config;

/* PyTorch's defaults: SGD lr 1e-2 (PyTorch has none), Adam lr 1e-3 betas (0.9, 0.999) eps 1e-8
 * wd 0, AdamW the same with wd 1e-2. An unknown kind sets NB_ERR_ARG (and nb_optim_new refuses
 * the config). */
nb_optim_config nb_optim_defaults(nb_optim_kind kind);
/* "sgd", "adam", "adamw" -> kind; false and NB_ERR_ARG if unknown or NULL. */
bool nb_optim_kind_parse(const char *s, nb_optim_kind *kind);
/* "invalid" and NB_ERR_ARG for an unknown kind. */
const char *nb_optim_kind_name(nb_optim_kind kind);

typedef struct nb_optim nb_optim;

/* An optimiser over n caller-owned parameters (f32 or f64, with requires_grad). cfg and the
 * params array are copied; the parameter tensors themselves are borrowed until nb_optim_free
 * (keep them alive that long: every step writes their data). It owns its state buffers
 * (allocated here, once) and is the caller's, released with nb_optim_free. NULL + error on bad
 * config. */
nb_optim *nb_optim_new(const nb_optim_config *cfg, nb_tensor *const *params, int n);
/* The accessors below given a NULL o set NB_ERR_ARG and return NaN (lr), -1 (step count), 0
 * (state count) or NULL, or do nothing. nb_optim_set_lr refuses a negative or non-finite lr,
 * nb_optim_set_step_count a negative t (NB_ERR_RANGE), nb_optim_state_tensor an i outside
 * [0, count) (NB_ERR_RANGE); nb_optim_free(NULL) is a silent no-op. nb_optim_get_config's
 * pointer is the optimiser's copy, valid until nb_optim_free. */
void nb_optim_free(nb_optim *o);
nb_status nb_optim_step(nb_optim *o);
void nb_optim_zero_grad(nb_optim *o);
/* nb_optim_step then nb_optim_zero_grad, in one pass over the parameters' memory, and, when
 * grad_norm is not NULL, *grad_norm = the global L2 norm of the gradients as they were before
 * the step (summed in double, in chunks added in a fixed order: the same value whatever the
 * thread count; it may differ in the last bits from nb_clip_grad_norm's, summed element by
 * element). The parameters, state and step count end bitwise as after the two calls.
 * NB_ERR_ARG for a NULL o. */
nb_status nb_optim_step_zero_grad(nb_optim *o, double *grad_norm);
void nb_optim_set_lr(nb_optim *o, double lr);
double nb_optim_lr(const nb_optim *o);
const nb_optim_config *nb_optim_get_config(const nb_optim *o);
int64_t nb_optim_step_count(const nb_optim *o);
/* Largest step count a restored optimiser accepts (2^53: step counts stay exact in the double
 * arithmetic of the bias corrections and schedules, and the count can never overflow). */
#define NB_OPTIM_MAX_STEPS ((int64_t)1 << 53)

/* t must be in [0, NB_OPTIM_MAX_STEPS]; otherwise the count is left as it was and the error
 * (NB_ERR_RANGE) is set. */
void nb_optim_set_step_count(nb_optim *o, int64_t t);

/* State for checkpoints: tensor i has a name like "exp_avg.3" (buffer kind . parameter index);
 * the caller may read or overwrite its data (same shape and dtype as the parameter). The tensor
 * and the *name string belong to the optimiser (valid until nb_optim_free; never free them). */
int nb_optim_state_count(const nb_optim *o);
nb_tensor *nb_optim_state_tensor(const nb_optim *o, int i, const char **name);

/* Checks that src can be restored as state tensor i (from a checkpoint, say) before anything is
 * copied: same shape and dtype as the buffer, every element finite, and for Adam's exp_avg_sq
 * every element >= 0 (it is a running mean of squares: a negative value would make sqrt(v) NaN).
 * NB_ERR_FORMAT with a message naming the buffer, the first bad element, its value and the rule;
 * src is not modified. */
nb_status nb_optim_state_check(const nb_optim *o, int i, const nb_tensor *src);

/* ---- learning-rate schedules ----
 * lr(t) for step t = 0, 1, ...: linear warm-up lr (t + 1) / warmup for t < warmup, then
 *   constant: lr;  step: lr gamma^floor((t - warmup) / step_size);
 *   cosine: min_lr + (lr - min_lr) (1 + cos(pi (t - warmup) / (total - warmup))) / 2. */
typedef enum nb_sched_kind { NB_SCHED_CONSTANT = 0, NB_SCHED_STEP, NB_SCHED_COSINE } nb_sched_kind;
typedef struct nb_schedule {
    nb_sched_kind kind;
    double lr;
    int64_t warmup;      /* steps of linear warm-up: lr (t + 1) / warmup */
    int64_t total_steps; /* cosine: length of the run */
    int64_t step_size;   /* step: decay every step_size steps */
    double gamma;        /* step: factor */
    double min_lr;       /* cosine: floor */
} nb_schedule;
/* 0 and the error for a NULL s, an unknown kind or a negative step. */
double nb_schedule_lr(const nb_schedule *s, int64_t step);
/* false and NB_ERR_ARG if unknown or NULL. */
bool nb_sched_kind_parse(const char *s, nb_sched_kind *kind);

/* Scales all gradients by max_norm / (total + 1e-6) when their global L2 norm exceeds max_norm
 * (torch.nn.utils.clip_grad_norm_). *total_norm (may be NULL) receives the norm before clipping.
 * Parameters without a gradient are skipped; a NULL parameter, n < 0 or max_norm not > 0 is
 * NB_ERR_ARG. params is borrowed for the call. */
nb_status nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double *total_norm);

#ifdef __cplusplus
}
#endif
#endif
