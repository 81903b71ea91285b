/* nabla/train.h - the trainer: the whole training loop of a classifier in one call, or driven
 * one step at a time.
 *
 *   nb_train_config c = nb_train_defaults();   // every field documented below
 *   c.epochs = 20;
 *   c.val = &val;                              // monitored every epoch
 *   c.patience = 3;                            // early stop on the validation loss
 *   nb_train_model model = nb_train_model_mlp(m);
 *   nb_train_result r;
 *   nb_status s = nb_train(&model, &train, &c, &r);
 *
 * One step: the next global batch of `batch` rows is split into `accum` micro-batches (and, with
 * world_size > 1, each rank takes its 1/world_size share of every global batch); every
 * micro-batch's loss is divided by the real-token count of the whole global batch, counted before
 * any backward (and summed over ranks through allreduce_sum), so the accumulated gradient is
 * exactly the gradient of the whole batch's mean loss. Then: gradients summed over ranks, a loss
 * that is not finite stops the run (NB_ERR_ANOMALY, naming epoch and step), the gradient's global
 * norm is measured (and clipped to clip_norm), the schedule sets the learning rate, the
 * optimiser steps.
 *
 * Checkpoints (nb_mlp models): every save_every_steps optimiser steps and after every epoch, the
 * weights, the optimiser state and the run's position (epoch, batch order, dropout generator,
 * the epoch's running sums) are written atomically to `checkpoint`; nb_trainer_resume continues
 * from one bit for bit: the weights at the end equal those of an uninterrupted run.
 *
 * Ownership: the trainer borrows the model (and its params array and every tensor in it), the
 * data sets and every pointer of the config: they must outlive it and not change while it runs;
 * the config struct itself is copied. It owns its optimiser, graph and batch buffers; nb_train
 * borrows for the call only. */
#ifndef NABLA_TRAIN_H
#define NABLA_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/checkpoint.h"
#include "nabla/dataset.h"
#include "nabla/eval.h"
#include "nabla/loss.h"
#include "nabla/nn.h"
#include "nabla/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The model: an nb_mlp (nb_train_model_mlp), or any forward function built from nabla ops with
 * its parameter list. set_training (may be NULL) switches dropout and the like; rng (may be
 * NULL) is a generator the forward draws from in training mode, saved in checkpoints. */
typedef struct nb_train_model {
    nb_mlp *mlp;           /* set: the rest is derived from it */
    nb_forward_fn forward; /* x [n, F] (or [n, T, F]) -> logits [n, K] (or [n, T, K]) */
    void *ctx;             /* forward's and set_training's argument */
    nb_tensor **params;    /* the trainable parameters (requires_grad, one dtype) */
    int n_params;
    void (*set_training)(void *ctx, bool training);
    nb_rng *rng;
} nb_train_model;

/* The model of an nb_mlp. */
nb_train_model nb_train_model_mlp(nb_mlp *m);

/* Sums n values of dtype (NB_F32 or NB_F64) in buf over all ranks, in place, so that every rank
 * holds the same sum (MPI_Allreduce with MPI_SUM). NB_OK or an error with its message. */
typedef nb_status (*nb_allreduce_fn)(void *buf, int64_t n, nb_dtype dtype, void *ctx);

/* What the callbacks see (read-only). */
typedef struct nb_train_progress {
    int64_t epoch;            /* 1-based, the epoch in progress (or just finished) */
    int64_t epochs;           /* of the run */
    int64_t batch;            /* global batches done in this epoch */
    int64_t batches;          /* global batches per epoch */
    int64_t step;             /* optimiser steps since the start of training */
    double loss;              /* the last step's mean loss */
    double train_loss;        /* the epoch's mean training loss so far (label smoothing included) */
    double train_acc;         /* the epoch's training accuracy so far */
    double grad_norm;         /* the last step's global gradient norm (before clipping) */
    double epoch_grad_norm;   /* per epoch: the mean over its steps of the global gradient norm */
    double lr;                /* the learning rate of the last step */
    bool has_val;             /* per epoch: val_loss and val_acc are set */
    double val_loss, val_acc; /* per epoch: plain cross-entropy and accuracy on config.val */
    bool improved;            /* per epoch: the validation loss is the best so far */
    int64_t bad_epochs;       /* per epoch: epochs since the best one */
    bool checkpointed;        /* a checkpoint was written after this step / epoch */
    double seconds;           /* per epoch: wall time of its training steps: from the start of
                                 its first step in this process to the end of its last, with the
                                 batches' assembly, the optimiser, the step's figures (loss,
                                 accuracy, gradient norm) and on_step; without the save_every
                                 checkpoints' writing, the validation and the end of the epoch
                                 (its checkpoint, on_epoch) */
} nb_train_progress;

/* Return false to stop the run (after this step or epoch; nb_train then returns NB_OK with
 * result->stopped set). */
typedef bool (*nb_train_callback)(const nb_train_progress *p, void *user);

typedef struct nb_train_config {
    int64_t epochs;               /* 10 */
    int64_t batch;                /* 128: rows per global batch (per optimiser step) */
    int64_t accum;                /* 1: micro-batches per batch (gradient accumulation) */
    uint64_t seed;                /* 1: the batch order */
    bool shuffle;                 /* true: a new seeded permutation every epoch */
    nb_optim_config optim;        /* AdamW, lr 2e-3, weight decay 1e-4 */
    nb_schedule schedule;         /* cosine, warmup 200 steps; lr 0 = optim.lr; total_steps 0 = the
                                     run's steps; step_size 0 = 3 epochs; gamma 0.5, min_lr 0 */
    double clip_norm;             /* 0: off; > 0 clips the global gradient norm to it */
    nb_xent_opts loss;            /* nb_xent_defaults() with label_smoothing 0.1; reduction and
                                     normaliser are the trainer's, stats is ignored */
    bool fused_head;              /* false. true (nb_mlp models only): the last Linear and the loss
                                     are one nb_linear_cross_entropy (nabla/lce.h, one pass) on the
                                     last hidden activation (nb_mlp_forward_hidden), so training
                                     never forms the logits; same gradients up to f32 rounding,
                                     same parameters and checkpoints. The training accuracy is
                                     then the argmax of h W^T + b recomputed without gradient in
                                     blocks of <= 4 MiB of logits after the backward (one more
                                     GEMM of the last layer); validation uses the model's logits */
    int64_t tokens_per_row;       /* 1. T > 1: sequences; rows of X are T tokens of F = D / T
                                     features, targets come from seq_targets */
    const nb_tensor *seq_targets; /* with T > 1: i32 [S, T], -100 (ignore_index) on padding;
                                     the label of a row of the training set is its sequence's
                                     index into it */
    bool detect_anomaly;          /* false: see nb_graph_set_anomaly_detection */
    /* data parallel: each of world_size ranks runs the same trainer on the same data */
    int rank, world_size;          /* 0, 1 */
    nb_allreduce_fn allreduce_sum; /* needed when world_size > 1 */
    void *allreduce_ctx;
    /* validation (may be NULL): plain cross-entropy and accuracy after every epoch; standardised
     * with the training set's statistics when that is (nb_dataset_standardize), else refused */
    const nb_dataset *val;
    int64_t val_batch; /* 1000 */
    int64_t patience;  /* 0: off; N: stop after N epochs without a better val_loss */
    /* checkpoints (nb_mlp models only; written by rank 0) */
    const char *checkpoint;      /* NULL: none; the path, replaced atomically */
    int64_t save_every_steps;    /* 0: only after each epoch */
    const char *best_checkpoint; /* NULL: none; the model of the best val_loss so far */
    nb_model_info info;          /* recorded in checkpoints: n_classes (0: the model's outputs),
                                    dataset; scale, shift and the standardisation's mean and std
                                    come from the training set */
    const char *run_config;      /* NULL or a string recorded as run_config; a resume refuses a
                                    checkpoint made with another one... */
    bool resume_any_config;      /* false; ...unless this is true (the caller has told the user
                                    what changed; the run is then no longer bit-exact) */
    const char *const *checkpoint_meta; /* NULL or extra metadata pairs (key, value, ..., NULL) */
    /* callbacks (may be NULL) */
    nb_train_callback on_step, on_epoch;
    void *user;
} nb_train_config;

/* The defaults above (those of `nabla train`). */
nb_train_config nb_train_defaults(void);

typedef struct nb_train_result {
    int64_t epochs_done; /* the last epoch finished */
    int64_t steps;       /* optimiser steps */
    bool stopped;        /* a callback or the patience stopped the run */
    bool early_stopped;  /* the patience did */
    int64_t best_epoch;  /* the epoch of the best val_loss (0: no validation) */
    double best_val_loss, best_val_acc;
    nb_train_progress last; /* the last epoch's figures */
} nb_train_result;

typedef struct nb_trainer nb_trainer;

/* A trainer over train (f32 X [N, D], labels [N]) for config c (copied). NULL with the message
 * when something does not fit (model, shapes, options). */
nb_trainer *nb_trainer_new(const nb_train_model *model, const nb_dataset *train,
                           const nb_train_config *c);
void nb_trainer_free(nb_trainer *t); /* NULL-safe */

/* Continues from a checkpoint written by a trainer with the same model, data and run_config:
 * weights, optimiser, batch order and the epoch's running sums. Every field is checked; on error
 * nothing is changed and the message names the file, the field, the value and the limit. */
nb_status nb_trainer_resume(nb_trainer *t, const char *path);

/* One optimiser step on the next global batch. *epoch_done (may be NULL) is set to true, and no
 * step is made, when the epoch has no batch left: call nb_trainer_end_epoch then. Calls on_step
 * (its false sets *stop, may be NULL) and writes the save_every_steps checkpoints. */
nb_status nb_trainer_step(nb_trainer *t, bool *epoch_done, bool *stop);

/* Ends the epoch: validation, best model, the epoch checkpoint, on_epoch and the patience;
 * *stop (may be NULL) says the run should stop. The next step starts the next epoch. */
nb_status nb_trainer_end_epoch(nb_trainer *t, bool *stop);

/* The run from where it is (1 or the resumed position) to the last epoch. */
nb_status nb_trainer_run(nb_trainer *t, nb_train_result *r);

/* What the trainer has done so far. */
void nb_trainer_result(const nb_trainer *t, nb_train_result *r);
/* The epoch in progress (1-based) and the optimiser, for reading (the trainer's own, valid
 * until nb_trainer_free). */
int64_t nb_trainer_epoch(const nb_trainer *t);
const nb_optim *nb_trainer_optim(const nb_trainer *t);
/* The last checkpoint written by this trainer: *epoch and *step (-1 when none). */
void nb_trainer_last_checkpoint(const nb_trainer *t, int64_t *epoch, int64_t *step);

/* nb_trainer_new + nb_trainer_run + nb_trainer_free. r may be NULL. */
nb_status nb_train(const nb_train_model *model, const nb_dataset *train, const nb_train_config *c,
                   nb_train_result *r);

#ifdef __cplusplus
}
#endif
#endif
