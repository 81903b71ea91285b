/* nabla/checkpoint.h - saving and loading a trained MLP (and its optimiser) as safetensors.
 *
 * Tensors are named like a PyTorch state_dict: layers.0.weight [out, in], layers.0.bias, ...
 * Optimiser state, when saved, is named optim.<buffer>.<parameter index> (for example
 * optim.exp_avg.0 for layers.0.weight, optim.exp_avg.1 for layers.0.bias). `__metadata__` holds
 * strings: format "nabla-mlp", nabla_version, sizes "784,256,128,10", activation, dropout,
 * n_classes, input_scale and input_shift (inputs are fed as x * input_scale + input_shift), epoch,
 * and with an optimiser: optim, optim_step, lr. A model trained on standardised features also
 * holds input.mean and input.std, f32 [inputs] (inputs are then fed as (x * input_scale +
 * input_shift - input.mean) / input.std). Loading in Python:
 * safetensors.torch.load_file(path)["layers.0.weight"].
 */
#ifndef NABLA_CHECKPOINT_H
#define NABLA_CHECKPOINT_H

#include "nn.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of nb_model_info.dataset with its NUL: room for two PATH_MAX paths and a comma (the
 * longest --data spec, "X.npy,y.npy"). A longer spec is refused, never cut. */
#define NB_MODEL_DATASET_MAX 8192

typedef struct nb_model_info {
    double input_scale, input_shift;
    int64_t n_classes; /* 1 <= n_classes <= the model's outputs */
    int64_t epoch;     /* 0 <= epoch <= NB_CHECKPOINT_MAX_COUNT */
    char dataset[NB_MODEL_DATASET_MAX];
    /* Per-feature standardisation, applied after scale and shift: x' = (x - mean) / std. NULL and
     * NULL (none), or f32 [inputs] each, saved as tensors "input.mean" and "input.std". Saving
     * borrows them; nb_model_load sets them to new tensors (NULL when the file holds none) that
     * the caller frees with nb_model_info_free. Apply them to raw rows with
     * nb_dataset_apply_standardize or nb_standardize_features (nabla/dataset.h). */
    nb_tensor *input_mean, *input_std;
    /* NULL, or n_classes class names (class k is class_names[k]), saved as metadata
     * "class_names", a JSON array of strings. Saving borrows them (each 1 to
     * NB_CLASS_NAME_MAX - 1 printable bytes, at most NB_CKPT_MAX_NAMED_CLASSES classes);
     * nb_model_load sets a new array (NULL when the file holds none) that nb_model_info_free
     * frees. Copy them onto a data set with nb_dataset_set_class_names. */
    char **class_names;
} nb_model_info;

/* Most classes a checkpoint records names for. */
#define NB_CKPT_MAX_NAMED_CLASSES 65536

/* Frees info's input_mean, input_std and class_names (n_classes of them) and sets them to NULL.
 * NULL-safe. */
void nb_model_info_free(nb_model_info *info);

/* Largest epoch or step count a checkpoint may hold (2^53: exact as a double). */
#define NB_CHECKPOINT_MAX_COUNT NB_OPTIM_MAX_STEPS

/* Atomic for a regular file (a temporary file beside it, fsync of file and directory, rename):
 * a crash never leaves a half-written checkpoint at path; a symlink's target is replaced, and a
 * device, a FIFO or "-" is written in place. On failure an existing file is kept. optim may be
 * NULL; m, info and optim are borrowed for the call. */
nb_status nb_model_save(const char *path, const nb_mlp *m, const nb_model_info *info,
                        const nb_optim *optim);

/* As nb_model_save, plus up to NB_CHECKPOINT_MAX_EXTRA extra metadata pairs (key, value, ...,
 * NULL) such as a training run's position for exact resume. */
#define NB_CHECKPOINT_MAX_EXTRA 64
nb_status nb_model_save_ex(const char *path, const nb_mlp *m, const nb_model_info *info,
                           const nb_optim *optim, const char *const *extra);

/* Loads weights into an existing model of the same architecture (and, if optim is non-NULL,
 * the optimiser state and step count). Nothing is changed unless everything fits. *info is
 * overwritten as by nb_model_load (free it with nb_model_info_free). */
nb_status nb_model_load_into(const char *path, nb_mlp *m, nb_model_info *info, nb_optim *optim);

/* Loads the model (a new nb_mlp in eval mode, f32, the caller's: nb_mlp_free) and fills *info in
 * place (on success only; free it with nb_model_info_free when the model is standardised). If optim
 * is non-NULL and the file holds optimiser state of the same kind and shapes, it is restored into
 * it. The file is treated as possibly crafted: every value read is checked before it is used, and a
 * load fails (NB_ERR_FORMAT, nothing changed) with a message naming the file, the field, the value
 * and the limit when a weight or optimiser tensor holds a NaN or infinity (also after conversion
 * to f32), an exp_avg_sq element is negative, epoch or optim_step is not an integer in
 * [0, NB_CHECKPOINT_MAX_COUNT], n_classes is not an integer in [1, outputs], input_scale,
 * input_shift or lr is not finite (lr >= 0), dropout is outside [0, 1), the dataset spec is
 * longer than NB_MODEL_DATASET_MAX - 1 bytes, or only one of input.mean and input.std is there,
 * or one is not a float [inputs] with every mean a finite f32 and every std a finite f32 > 0, or
 * class_names is not a JSON array of n_classes strings of 1 to NB_CLASS_NAME_MAX - 1 printable
 * bytes each. */
nb_mlp *nb_model_load(const char *path, nb_model_info *info, nb_optim *optim);

#ifdef __cplusplus
}
#endif
#endif
