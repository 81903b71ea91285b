/* checkpoint_internal.h - what checkpoint.c and checkpoint_input.c share. Not installed. */
#ifndef NABLA_CHECKPOINT_INTERNAL_H
#define NABLA_CHECKPOINT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/checkpoint.h"
#include "nabla/safetensors.h"

/* The tensors of the per-feature standardisation (nb_model_info input_mean, input_std). */
#define NB_CKPT_INPUT_MEAN "input.mean"
#define NB_CKPT_INPUT_STD "input.std"

/* info's input_mean and input_std for a model of D inputs: both NULL, or both f32 [D] with every
 * mean finite and every std finite and > 0. NB_ERR_ARG naming path, the field, the element, its
 * value and the limit. */
nb_status nb_ckpt_input_check_save_(const char *path, const nb_model_info *info, int64_t D);

/* The standardisation tensors of a checkpoint for a model of D inputs, checked: *mean and *std
 * are new f32 [D] tensors (the caller frees them), or both NULL when the file holds neither.
 * false with the error set (the message names path, the tensor, the element, the value and the
 * limit) when only one is there or one is not a float [D] of finite values with std > 0. */
bool nb_ckpt_input_read_(const nb_safetensors *st, const char *path, int64_t D, nb_tensor **mean,
                         nb_tensor **std);

/* info->class_names as the JSON text of metadata "class_names" (*out malloc'd, the caller
 * frees; NULL when there are none). NB_ERR_ARG naming path, the element and the limit. */
nb_status nb_ckpt_names_encode_(const char *path, const nb_model_info *info, char **out);
/* A checkpoint's class names for n_classes classes: *out a new array of n_classes strings
 * (nb_ckpt_names_free_), or NULL when the file holds none; false with the error set (naming path,
 * the key, the element, its value and the limit) when they are not n_classes printable strings. */
bool nb_ckpt_names_read_(const nb_safetensors *st, const char *path, int64_t n_classes,
                         char ***out);
void nb_ckpt_names_free_(char **names, int64_t n);

#endif
