/* tensor_check.c - dtype checks and shape text shared by the op and loss layers. */
#include "tensor_check.h"

static _Thread_local char shp_buf[2][96];
static _Thread_local int shp_slot;

const char *nb_shp(const nb_tensor *x)
{
    shp_slot ^= 1;
    return nb_shape_str(x, shp_buf[shp_slot], sizeof shp_buf[shp_slot]);
}

nb_status nb_check_float_same(const char *opname, nb_tensor *const *in, int n)
{
    for (int i = 0; i < n; i++) {
        if (in[i]->dtype != NB_F32 && in[i]->dtype != NB_F64)
            return nb_error(NB_ERR_DTYPE,
                            "%s: input %d has dtype %s; only f32 and f64 are supported", opname, i,
                            nb_dtype_name(in[i]->dtype));
        if (in[i]->dtype != in[0]->dtype)
            return nb_error(NB_ERR_DTYPE, "%s: inputs have different dtypes (%s and %s)", opname,
                            nb_dtype_name(in[0]->dtype), nb_dtype_name(in[i]->dtype));
    }
    return NB_OK;
}
