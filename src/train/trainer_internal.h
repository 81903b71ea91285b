/* trainer_internal.h - the trainer's state, shared by trainer.c (the loop) and trainer_ckpt.c
 * (checkpoints and resume). */
#ifndef NABLA_TRAINER_INTERNAL_H
#define NABLA_TRAINER_INTERNAL_H

#include "nabla/graph.h"
#include "nabla/ops.h"
#include "nabla/safetensors.h"
#include "nabla/train.h"

struct nb_trainer {
    nb_train_config c;
    nb_train_model model;
    const nb_dataset *train;
    nb_tensor *mlp_params[2 * NB_MLP_MAX_LAYERS];
    nb_tensor **params;
    int np;
    int64_t numel; /* elements of all parameters */
    nb_dtype pdt;  /* the parameters' dtype */
    nb_optim *opt;
    nb_schedule sched;
    nb_graph *g;
    nb_graph *gacc; /* fused_head: the training accuracy's logits, one row block at a time */
    nb_batcher bt;
    nb_tensor *xb, *yb, *tb; /* batch features, labels, per-token targets [B, T] */
    void *flat;              /* world_size > 1: the gradients as one buffer */
    int64_t N, D, F, T, steps_per_epoch;
    /* the run's position: what a checkpoint holds beyond weights and optimiser */
    int64_t epoch;                        /* the epoch in progress, 1-based */
    double loss_sum, weight_sum, correct; /* the epoch's sums so far */
    double gnorm_sum;                     /* the epoch's gradient norms so far (figures only) */
    int64_t gnorm_n;
    int64_t batch_in_epoch;
    bool in_epoch;     /* a step of this epoch ran in this process (the timer is on) */
    double t0;         /* when that step started */
    double ck_seconds; /* of the time since: writing --save-every checkpoints */
    nb_train_progress p;
    int64_t ck_epoch, ck_step; /* the last checkpoint written (-1: none) */
    double best_val, best_acc;
    int64_t best_epoch, bad_epochs;
    bool stopped, early;
};

/* trainer_ckpt.c: the run checkpoint at path (rank 0 only; the caller checks). */
nb_status nb_trainer_save_(nb_trainer *t, const char *path);

#endif
