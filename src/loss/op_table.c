/* op_table.c - the table of every built-in op: the op lists of each file that defines records,
 * in a fixed order (`nabla gradcheck` prints in this order). It lives in the loss layer, the
 * highest layer that defines ops, so it may name the lists of ops/ and loss/.
 *
 * Adding an op to an existing file is its record plus a line in that file's NB_OP_LIST; a new
 * file adds its list here. */
#include <string.h>

#include "loss_ops.h"

static const nb_op_list *const files[] = {
    &nb_matmul_ops, &nb_elementwise_ops, &nb_reduce_ops,  &nb_softmax_ops,
    &nb_gather_ops, &nb_xent_ops,        &nb_dropout_ops, &nb_lce_ops,
};
#define N_FILES (int)(sizeof files / sizeof files[0])

int nb_op_count(void)
{
    int n = 0;
    for (int f = 0; f < N_FILES; f++)
        n += files[f]->count;
    return n;
}

const nb_op_info *nb_op_at(int index)
{
    int i = index;
    if (i >= 0)
        for (int f = 0; f < N_FILES; f++) {
            if (i < files[f]->count)
                return &files[f]->ops[i]->info;
            i -= files[f]->count;
        }
    nb_error(NB_ERR_ARG, "nb_op_at: index %d outside [0, %d)", index, nb_op_count());
    return NULL;
}

const nb_op_info *nb_op_find(const char *name)
{
    if (!name) {
        nb_error(NB_ERR_ARG, "nb_op_find: name is NULL");
        return NULL;
    }
    for (int f = 0; f < N_FILES; f++)
        for (int k = 0; k < files[f]->count; k++)
            if (strcmp(files[f]->ops[k]->info.name, name) == 0)
                return &files[f]->ops[k]->info;
    nb_error(NB_ERR_ARG, "nb_op_find: no op named '%s' in the op table", name);
    return NULL;
}
