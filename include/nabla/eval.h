/* nabla/eval.h - evaluation and prediction of a classifier: one argmax (nb_argmax_rows), loss,
 * accuracy, the confusion matrix, per-class precision, recall and F1, batched logits or
 * probabilities. `nabla eval`, `nabla predict` and the trainer's epoch metrics all go through it.
 *
 * A model is anything with a forward function: an nb_mlp (nb_forward_mlp), or the user's own
 * function built from nabla ops. Evaluation runs the forward under no-grad in batches on the
 * caller's graph (reset before each batch: tensors of that graph do not survive the call); the
 * caller puts the model in inference mode first (nb_mlp_set_training(m, false) for dropout).
 * Every pointer argument (g, ctx, X, y, path, data) is borrowed for the call only; what a
 * result holds is the caller's (nb_eval_result_free). */
#ifndef NABLA_EVAL_H
#define NABLA_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/dataset.h"
#include "nabla/graph.h"
#include "nabla/status.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Maps a batch x ([B, F] or [B, T, F]) to logits ([B, K] or [B, T, K]) on g. NULL on error
 * (with the message set). ctx is the caller's model. The logits belong to g (valid until its
 * next reset); x is borrowed for the call. */
typedef nb_tensor *(*nb_forward_fn)(nb_graph *g, nb_tensor *x, void *ctx);

/* The forward of an nb_mlp, for nb_forward_fn (ctx is the nb_mlp *). */
nb_tensor *nb_forward_mlp(nb_graph *g, nb_tensor *x, void *mlp);

/* What an evaluation measured. Per-class arrays have n_classes entries, confusion has
 * n_classes * n_classes (row = true class, column = predicted class); all owned by the result,
 * released by nb_eval_result_free. A class that never occurs and is never predicted has
 * precision = recall = f1 = 0 (as scikit-learn's zero_division=0); macro_f1 averages over the
 * classes that occur in the targets. */
typedef struct nb_eval_result {
    int64_t count;      /* real (non-padding) targets scored */
    int64_t correct;    /* of them, argmax == target */
    double loss_sum;    /* plain cross-entropy summed over the real targets (no smoothing) */
    double loss;        /* loss_sum / count (0 when count is 0) */
    double accuracy;    /* correct / count (0 when count is 0) */
    int64_t n_classes;  /* K */
    int64_t *confusion; /* [K, K] */
    double *precision;  /* [K] */
    double *recall;     /* [K] */
    double *f1;         /* [K] */
    double macro_f1;
} nb_eval_result;

/* Evaluates forward on X ([N, F] or [N, T, F], f32 or f64) against targets y (i32/i64, [N] or
 * [N, T]; a target equal to ignore_index is padding and not scored) in batches of `batch` rows,
 * with n_classes classes (the model's outputs K must be >= n_classes; argmax is over all K
 * outputs and a prediction >= n_classes counts as wrong). res is filled (and must be freed with
 * nb_eval_result_free even on error). */
nb_status nb_evaluate(nb_graph *g, nb_forward_fn forward, void *ctx, const nb_tensor *X,
                      const nb_tensor *y, int64_t n_classes, int64_t batch, int64_t ignore_index,
                      nb_eval_result *res);

/* Fills res's precision, recall, f1 and macro_f1 (and count, correct, accuracy) from
 * res->confusion and res->n_classes (already set): for people who build the counts themselves. */
nb_status nb_eval_metrics_from_confusion(nb_eval_result *res);

/* Releases the arrays of res and zeroes it. NULL-safe. */
void nb_eval_result_free(nb_eval_result *res);

/* A model saved by nb_model_save or the trainer (an nb_mlp checkpoint at path) evaluated on the
 * rows of data as a loader returns them: when the checkpoint records a per-feature
 * standardisation (its training set was standardised), a copy of data's X is standardised with
 * it first, so raw test rows are scored as the model was trained. data may also be standardised
 * already with the same statistics. Refused (NB_ERR_ARG) when data was scaled or standardised
 * otherwise than the model's training set, NB_ERR_SHAPE when its features or classes do not fit
 * the model. n_classes is the checkpoint's; batches of 1000 rows. res is filled (free it with
 * nb_eval_result_free, also on error). */
nb_status nb_evaluate_checkpoint(const char *path, const nb_dataset *data, nb_eval_result *res);

/* Logits (probs = false) or softmax probabilities (probs = true) of forward on X in batches:
 * *out is a new caller-owned f32 (f64 for f64 X) tensor [N, K] (or [N, T, K]). */
nb_status nb_predict(nb_graph *g, nb_forward_fn forward, void *ctx, const nb_tensor *X,
                     int64_t batch, bool probs, nb_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
