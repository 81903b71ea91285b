/* lce_ref.c - the slow, obvious linear + cross-entropy, in double, to test the fused op against.
 *
 * It does what the fused op avoids: materialises the N x V logits u = x W^T + b (then
 * z = cap tanh(u / cap)), runs the cross-entropy reference (xent_ref.c) on them for the loss and
 * dL/dz, and applies the chain rule with plain loops:
 *   du = dz (1 - (z / cap)^2),  dx_nd = sum_v du_nv W_vd,  dW_vd = sum_n du_nv x_nd,
 *   db_v = sum_n du_nv.
 * It allocates 2 N V doubles. */
#include <math.h>
#include <stdlib.h>

#include "../ops/ops_internal.h"
#include "lce_internal.h"
#include "lce_ref.h"
#include "xent_ref.h"

static nb_status check_grad_out(const char *what, const nb_tensor *g, const nb_tensor *like)
{
    if (!g)
        return NB_OK;
    nb_status s = nb_check_tensor("nb_lce_reference", what, g);
    if (s == NB_OK && (!like || !nb_dtype_is_float(g->dtype) || g->numel != like->numel))
        s = nb_error(NB_ERR_SHAPE, "nb_lce_reference: %s %s %s must be a float tensor of %s", what,
                     nb_dtype_name(g->dtype), nb_shp(g), like ? nb_shp(like) : "nothing (b NULL)");
    return s;
}

/* z [N,V] (f64) = cap(x W^T + b), in double */
static void ref_logits(const lce_ctx *c, nb_tensor *z)
{
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t v = 0; v < c->V; v++) {
            double u = c->b ? nb_tensor_get(c->b, v) : 0.0;
            for (int64_t d = 0; d < c->D; d++)
                u += nb_tensor_get(c->x, n * c->D + d) * nb_tensor_get(c->w, v * c->D + d);
            ((double *)z->data)[n * c->V + v] = c->cap > 0.0 ? c->cap * tanh(u / c->cap) : u;
        }
}

/* the chain rule from dL/dz (overwritten by du) into dx, dw, db */
static void ref_chain(const lce_ctx *c, const nb_tensor *z, nb_tensor *dz, nb_tensor *dx,
                      nb_tensor *dw, nb_tensor *db)
{
    double *du = dz->data;
    const double *zz = z->data;
    for (int64_t i = 0; i < c->N * c->V; i++)
        if (c->cap > 0.0)
            du[i] *= 1.0 - (zz[i] / c->cap) * (zz[i] / c->cap);
    for (int64_t n = 0; dx && n < c->N; n++)
        for (int64_t d = 0; d < c->D; d++) {
            double acc = 0.0;
            for (int64_t v = 0; v < c->V; v++)
                acc += du[n * c->V + v] * nb_tensor_get(c->w, v * c->D + d);
            nb_tensor_set(dx, n * c->D + d, acc);
        }
    for (int64_t v = 0; (dw || db) && v < c->V; v++) {
        for (int64_t d = 0; dw && d < c->D; d++) {
            double acc = 0.0;
            for (int64_t n = 0; n < c->N; n++)
                acc += du[n * c->V + v] * nb_tensor_get(c->x, n * c->D + d);
            nb_tensor_set(dw, v * c->D + d, acc);
        }
        double acc = 0.0;
        for (int64_t n = 0; db && n < c->N; n++)
            acc += du[n * c->V + v];
        if (db)
            nb_tensor_set(db, v, acc);
    }
}

nb_status nb_lce_reference(const nb_tensor *x, const nb_tensor *w, const nb_tensor *b,
                           const nb_tensor *targets, const nb_lce_opts *opts, nb_tensor *loss,
                           nb_tensor *dx, nb_tensor *dw, nb_tensor *db)
{
    nb_lce_opts d = nb_lce_defaults();
    const nb_lce_opts *o = opts ? opts : &d;
    lce_ctx c;
    if (o->classes_total != 0)
        return nb_error(NB_ERR_ARG,
                        "nb_lce_reference: classes_total %lld: the reference holds every class "
                        "(0)",
                        (long long)o->classes_total);
    nb_status s = nb_lce_setup(&c, x, w, b, targets, o);
    if (s == NB_OK)
        s = nb_check_tensor("nb_lce_reference", "loss", loss);
    if (s == NB_OK)
        s = check_grad_out("dx", dx, x);
    if (s == NB_OK)
        s = check_grad_out("dw", dw, w);
    if (s == NB_OK)
        s = check_grad_out("db", db, b);
    if (s != NB_OK)
        return nb_error_in("nb_lce_reference", s);
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 1] = c.V;
    nb_tensor *z = nb_tensor_empty(NB_F64, x->ndim, shape);
    nb_tensor *dz = nb_tensor_empty(NB_F64, x->ndim, shape);
    if (!z || !dz) {
        nb_tensor_free(z);
        nb_tensor_free(dz);
        return nb_error_in("nb_lce_reference", nb_last_status());
    }
    ref_logits(&c, z);
    s = nb_xent_reference(z, targets, &o->xent, loss, dz);
    if (s == NB_OK)
        ref_chain(&c, z, dz, dx, dw, db);
    nb_tensor_free(z);
    nb_tensor_free(dz);
    return s == NB_OK ? NB_OK : nb_error_in("nb_lce_reference", s);
}
