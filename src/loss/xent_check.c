/* xent_check.c - the cross-entropy's options and the checks every entry point runs first:
 * tensors, dtypes, shapes, option ranges and every real target's class index. Also the pieces
 * the forward paths share after their rows are done (the mean's normaliser, the reduction). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops/ops_internal.h"
#include "xent_internal.h"

nb_xent_opts nb_xent_defaults(void)
{
    nb_xent_opts o;
    memset(&o, 0, sizeof o);
    o.ignore_index = -100;
    o.reduction = NB_REDUCTION_MEAN;
    return o;
}

static bool mask_at(const nb_tensor *m, int64_t n)
{
    switch (m->dtype) {
    case NB_U8:
    case NB_BOOL: return ((const uint8_t *)m->data)[n] != 0;
    case NB_F32: return ((const float *)m->data)[n] != 0.0f;
    case NB_F64: return ((const double *)m->data)[n] != 0.0;
    default: return false;
    }
}

bool nb_xent_keep(const nb_xent_opts *o, const nb_tensor *targets, int64_t n)
{
    if (o->mask && !mask_at(o->mask, n))
        return false;
    return !targets || nb_xent_target_at(targets, n) != o->ignore_index;
}

double nb_xent_class_weight_sum(const nb_xent_opts *o, int64_t V)
{
    double Wc = 0.0;
    for (int64_t c = 0; c < V; c++)
        Wc += nb_xent_weight_at(o, c);
    return Wc;
}

/* ---- validation ---- */

/* t's shape is logits' without the last dim */
static bool shaped_like_rows(const nb_tensor *t, const nb_tensor *logits)
{
    return t->ndim == logits->ndim - 1 &&
           memcmp(t->shape, logits->shape, sizeof(int64_t) * (size_t)t->ndim) == 0;
}

static nb_status check_logits_targets(const nb_tensor *logits, const nb_tensor *tgt, bool soft)
{
    if (!nb_dtype_is_float(logits->dtype))
        return nb_error(NB_ERR_DTYPE, "cross_entropy: logits must be f16, bf16, f32 or f64, got %s",
                        nb_dtype_name(logits->dtype));
    if (logits->ndim < 1)
        return nb_error(NB_ERR_SHAPE, "cross_entropy: logits must be [N,V] or [B,T,V], got a 0-d "
                                      "tensor");
    if (logits->shape[logits->ndim - 1] < 1)
        return nb_error(NB_ERR_SHAPE, "cross_entropy: logits %s have no classes (V = 0)",
                        nb_shp(logits));
    if (soft) {
        if (!nb_dtype_is_float(tgt->dtype))
            return nb_error(NB_ERR_DTYPE,
                            "cross_entropy: probability targets must be float, got %s",
                            nb_dtype_name(tgt->dtype));
        if (!nb_shape_equal(tgt, logits))
            return nb_error(NB_ERR_SHAPE,
                            "cross_entropy: probability targets %s must have the logits' shape %s",
                            nb_shp(tgt), nb_shp(logits));
        return NB_OK;
    }
    if (tgt->dtype != NB_I32 && tgt->dtype != NB_I64)
        return nb_error(NB_ERR_DTYPE, "cross_entropy: targets must be i32 or i64, got %s",
                        nb_dtype_name(tgt->dtype));
    if (!shaped_like_rows(tgt, logits))
        return nb_error(NB_ERR_SHAPE,
                        "cross_entropy: targets %s must be shaped like logits %s without the "
                        "last dim",
                        nb_shp(tgt), nb_shp(logits));
    return NB_OK;
}

static nb_status check_mask_weight(const nb_tensor *logits, const nb_xent_opts *o)
{
    int64_t V = logits->shape[logits->ndim - 1];
    const nb_tensor *m = o->mask, *w = o->weight;
    if (m && m->dtype != NB_U8 && m->dtype != NB_BOOL && m->dtype != NB_F32 && m->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE, "cross_entropy: mask must be u8, bool, f32 or f64, got %s",
                        nb_dtype_name(m->dtype));
    if (m && !shaped_like_rows(m, logits))
        return nb_error(NB_ERR_SHAPE,
                        "cross_entropy: mask %s must be shaped like logits %s without the last "
                        "dim",
                        nb_shp(m), nb_shp(logits));
    if (w && w->dtype != NB_F32 && w->dtype != NB_F64)
        return nb_error(NB_ERR_DTYPE, "cross_entropy: class weights must be f32 or f64, got %s",
                        nb_dtype_name(w->dtype));
    if (w && (w->ndim != 1 || w->shape[0] != V))
        return nb_error(NB_ERR_SHAPE,
                        "cross_entropy: class weights %s must be [V] = [%lld] for logits %s",
                        nb_shp(w), (long long)V, nb_shp(logits));
    return NB_OK;
}

static nb_status check_scalars(const nb_xent_opts *o)
{
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing < 1.0))
        return nb_error(NB_ERR_ARG, "cross_entropy: label_smoothing %g outside [0, 1)",
                        o->label_smoothing);
    if (o->reduction != NB_REDUCTION_MEAN && o->reduction != NB_REDUCTION_SUM &&
        o->reduction != NB_REDUCTION_NONE)
        return nb_error(NB_ERR_ARG, "cross_entropy: unknown reduction %d", (int)o->reduction);
    if (!(o->normaliser >= 0.0) || isinf(o->normaliser))
        return nb_error(NB_ERR_ARG,
                        "cross_entropy: normaliser %g must be finite and >= 0 (0 = "
                        "use the count of real tokens)",
                        o->normaliser);
    if (!(o->z_loss >= 0.0) || isinf(o->z_loss))
        return nb_error(NB_ERR_ARG, "cross_entropy: z_loss coefficient %g must be finite and >= 0",
                        o->z_loss);
    return NB_OK;
}

/* every real row's target in [0, V) */
static nb_status check_target_range(const nb_tensor *logits, const nb_tensor *tgt,
                                    const nb_xent_opts *o)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    for (int64_t n = 0; n < N; n++) {
        if (!nb_xent_keep(o, tgt, n))
            continue;
        int64_t y = nb_xent_target_at(tgt, n);
        if (y >= 0 && y < V)
            continue;
        char where[96] = "";
        if (tgt->ndim == 2)
            snprintf(where, sizeof where, " (batch %lld, position %lld)",
                     (long long)(n / tgt->shape[1]), (long long)(n % tgt->shape[1]));
        return nb_error(NB_ERR_RANGE,
                        "cross_entropy: target %lld out of range [0, %lld) at row %lld%s "
                        "(ignore_index is %lld)",
                        (long long)y, (long long)V, (long long)n, where,
                        (long long)o->ignore_index);
    }
    return NB_OK;
}

nb_status nb_xent_check(const nb_tensor *logits, const nb_tensor *tgt, bool soft,
                        const nb_xent_opts *o)
{
    nb_status s = nb_check_tensor("cross_entropy", "logits", logits);
    if (s == NB_OK)
        s = nb_check_tensor("cross_entropy", soft ? "probs" : "targets", tgt);
    if (s == NB_OK && o->mask)
        s = nb_check_tensor("cross_entropy", "opts->mask", o->mask);
    if (s == NB_OK && o->weight)
        s = nb_check_tensor("cross_entropy", "opts->weight", o->weight);
    if (s == NB_OK)
        s = check_logits_targets(logits, tgt, soft);
    if (s == NB_OK)
        s = check_mask_weight(logits, o);
    if (s == NB_OK)
        s = check_scalars(o);
    if (s == NB_OK && !soft)
        s = check_target_range(logits, tgt, o);
    return s;
}

nb_status nb_xent_validate(const nb_tensor *logits, const nb_tensor *targets,
                           const nb_xent_opts *opts)
{
    nb_xent_opts d = nb_xent_defaults();
    return nb_error_in("nb_xent_validate", nb_xent_check(logits, targets, false, opts ? opts : &d));
}

nb_status nb_xent_validate_soft(const nb_tensor *logits, const nb_tensor *probs,
                                const nb_xent_opts *opts)
{
    nb_xent_opts d = nb_xent_defaults();
    return nb_xent_check(logits, probs, true, opts ? opts : &d);
}

nb_status nb_xent_check_out(const char *what, const nb_tensor *t, nb_dtype dt, int64_t numel,
                            const nb_tensor *like)
{
    nb_status s = nb_check_tensor("cross_entropy", what, t);
    if (s != NB_OK)
        return s;
    if (t->dtype != dt)
        return nb_error(NB_ERR_DTYPE, "cross_entropy: %s must be %s, got %s", what,
                        nb_dtype_name(dt), nb_dtype_name(t->dtype));
    if (t->numel != numel)
        return nb_error(NB_ERR_SHAPE, "cross_entropy: %s %s has %lld elements, expected %lld (%s)",
                        what, nb_shp(t), (long long)t->numel, (long long)numel, nb_shp(like));
    return NB_OK;
}

/* ---- after the rows ---- */

double nb_xent_normaliser(const nb_tensor *z, const nb_tensor *tgt, const nb_tensor *probs,
                          const nb_xent_opts *o)
{
    if (o->normaliser > 0.0)
        return o->normaliser;
    int64_t V = z->shape[z->ndim - 1], N = z->numel / V;
    double W = 0.0;
    for (int64_t n = 0; n < N; n++)
        if (nb_xent_keep(o, probs ? NULL : tgt, n))
            W += probs ? 1.0 : nb_xent_weight_at(o, nb_xent_target_at(tgt, n));
    return W;
}

void nb_xent_finish(const nb_xent_opts *o, const nb_tensor *tgt, bool soft, int64_t N,
                    const double *rowL, const double *rowZ, nb_tensor *loss, nb_xent_stats *st_out)
{
    nb_xent_stats st = {0, 0, 0, 0};
    for (int64_t n = 0; n < N; n++) {
        if (o->reduction == NB_REDUCTION_NONE)
            nb_xent_store(loss, n, rowL[n]);
        if (!nb_xent_keep(o, soft ? NULL : tgt, n))
            continue;
        st.loss_sum += rowL[n];
        st.z_loss_sum += rowZ[n];
        st.weight_sum += soft ? 1.0 : nb_xent_weight_at(o, nb_xent_target_at(tgt, n));
        st.n_tokens++;
    }
    if (o->reduction != NB_REDUCTION_NONE) {
        double W = o->normaliser > 0.0 ? o->normaliser : st.weight_sum;
        double total = o->reduction == NB_REDUCTION_SUM ? st.loss_sum
                       : W != 0.0                       ? st.loss_sum / W
                                                        : 0.0; /* all padding: 0, not NaN */
        nb_xent_store(loss, 0, total);
    }
    if (st_out)
        *st_out = st;
    if (o->stats)
        *o->stats = st;
}
