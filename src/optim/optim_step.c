/* optim_step.c - the optimiser's step: SGD (momentum, dampening, Nesterov, weight decay), Adam
 * and AdamW with PyTorch's update rules, as one pass over all the parameters.
 *
 * The parameters are cut in chunks of NB_OPTIM_CHUNK elements (optim_internal.h). For f32
 * parameters each chunk is one pass of three steps while it sits in L1: the sum of its squared
 * gradients (when the caller wants the gradient's norm), the update (a vectorised loop), and the
 * gradient zeroed (when the caller asks); chunks are split between the threads when the
 * parameters are large enough. The update is the same arithmetic, in the same order, as the
 * plain per-element loops of step_param_ref below (the reference; tests/test_optim_step.c
 * compares the two bitwise): Adam in f32 with its per-step scalars computed once in double, SGD
 * in double per element (rounded to f32 once, as PyTorch's f32 SGD is not: keeping nabla's own
 * results unchanged). f64 parameters take the reference loops. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "optim_internal.h"
#include "../ops/ops_internal.h"
#include "../tensor/tensor_internal.h"

/* Parameters below this many elements are stepped on one thread (nb_optim_set_parallel_min
 * changes it, for the tests). An OpenMP region in the step costs more than it saves next to
 * OpenBLAS's own (pthread) pool: after the region libgomp's worker spins (active wait) on the
 * core OpenBLAS's worker needs for the next product. Measured on the 2-core machine with the
 * default MLP (235K parameters) at 2 threads: 4.4 ms a step with the step on one thread, 31 ms
 * with it split above 64K elements (8.2 ms with OMP_WAIT_POLICY=passive). So only parameters of
 * 4M+ elements, whose step takes milliseconds, are split. */
static _Atomic int64_t parallel_min = (int64_t)1 << 22;

void nb_optim_set_parallel_min(int64_t n)
{
    atomic_store(&parallel_min, n < 1 ? 1 : n);
}

/* The per-step scalars of Adam/AdamW in f32 (ss = lr / bc1, rs = 1 / sqrt(bc2)) and of SGD. */
typedef struct step_k {
    float b1, b2, ob1, ob2, eps, ss, rs, decay, l2;
    double lr, wd, mom, damp1;
    bool adam, has_buf, started, nesterov;
} step_k;

static step_k step_constants(const nb_optim *o)
{
    const nb_optim_config *c = &o->cfg;
    double lr = c->lr, wd = c->weight_decay;
    double bc1 = 1.0 - pow(c->beta1, (double)o->t), bc2 = 1.0 - pow(c->beta2, (double)o->t);
    step_k k;
    memset(&k, 0, sizeof k);
    k.adam = c->kind != NB_OPTIM_SGD;
    k.b1 = (float)c->beta1, k.b2 = (float)c->beta2, k.ob1 = (float)(1.0 - c->beta1);
    k.ob2 = (float)(1.0 - c->beta2), k.eps = (float)c->eps;
    k.ss = (float)(lr / bc1), k.rs = (float)(1.0 / sqrt(bc2));
    k.decay = c->kind == NB_OPTIM_ADAMW ? (float)(1.0 - lr * wd) : 1.0f;
    k.l2 = c->kind == NB_OPTIM_ADAMW ? 0.0f : (float)wd;
    k.lr = lr, k.wd = wd, k.mom = c->momentum, k.damp1 = 1.0 - c->dampening;
    k.has_buf = o->n_bufs > 0, k.started = o->momentum_started, k.nesterov = c->nesterov;
    return k;
}

/* ---- the reference: one parameter, element by element ---- */

/* Parameter i of o, one step: p [n], its gradient, its state buffers [n]. */
static void step_param_ref(nb_optim *o, int i, const step_k *k)
{
    const nb_optim_config *c = &o->cfg;
    double lr = c->lr, wd = c->weight_decay;
    double bc1 = 1.0 - pow(c->beta1, (double)o->t), bc2 = 1.0 - pow(c->beta2, (double)o->t);
    nb_tensor *p = o->params[i];
    void *w = p->data;
    const void *gr = p->grad;
    if (c->kind == NB_OPTIM_SGD) {
        nb_tensor *buf = o->n_bufs ? o->state[i * NB_OPTIM_MAX_BUFS] : NULL;
        for (int64_t j = 0; j < p->numel; j++) {
            double pk = nb_optim_get(p, w, j), g = nb_optim_get(p, gr, j) + wd * pk;
            if (buf) {
                double b = o->momentum_started ? c->momentum * nb_optim_get(p, buf->data, j) +
                                                     (1.0 - c->dampening) * g
                                               : g;
                nb_optim_put(p, buf->data, j, b);
                g = c->nesterov ? g + c->momentum * b : b;
            }
            nb_optim_put(p, w, j, pk - lr * g);
        }
    } else if (p->dtype == NB_F32) { /* in f32 arithmetic, as PyTorch does for f32 tensors */
        float *w32 = w, *m32 = o->state[i * NB_OPTIM_MAX_BUFS]->data;
        float *v32 = o->state[i * NB_OPTIM_MAX_BUFS + 1]->data;
        const float *g32 = gr;
        for (int64_t j = 0; j < p->numel; j++) {
            float pk = w32[j] * k->decay, g = g32[j] + k->l2 * pk;
            float mk = k->b1 * m32[j] + k->ob1 * g, vk = k->b2 * v32[j] + k->ob2 * g * g;
            m32[j] = mk;
            v32[j] = vk;
            w32[j] = pk - k->ss * mk / (sqrtf(vk) * k->rs + k->eps);
        }
    } else {
        nb_tensor *m = o->state[i * NB_OPTIM_MAX_BUFS], *v = o->state[i * NB_OPTIM_MAX_BUFS + 1];
        double step_size = lr / bc1, sbc2 = sqrt(bc2);
        for (int64_t j = 0; j < p->numel; j++) {
            double pk = nb_optim_get(p, w, j), g = nb_optim_get(p, gr, j);
            if (c->kind == NB_OPTIM_ADAMW)
                pk *= 1.0 - lr * wd;
            else
                g += wd * pk;
            double mk = c->beta1 * nb_optim_get(p, m->data, j) + (1.0 - c->beta1) * g;
            double vk = c->beta2 * nb_optim_get(p, v->data, j) + (1.0 - c->beta2) * g * g;
            nb_optim_put(p, m->data, j, mk);
            nb_optim_put(p, v->data, j, vk);
            nb_optim_put(p, w, j, pk - step_size * mk / (sqrt(vk) / sbc2 + c->eps));
        }
    }
}

/* Every parameter by the reference loops; the squares summed in element order first. */
static void step_all_ref(nb_optim *o, const step_k *k, double *grad_sq, bool zero_grad)
{
    double sq = 0.0;
    for (int i = 0; grad_sq && i < o->n; i++)
        for (int64_t j = 0; j < o->params[i]->numel; j++) {
            double g = nb_optim_get(o->params[i], o->params[i]->grad, j);
            sq += g * g;
        }
    for (int i = 0; i < o->n; i++)
        step_param_ref(o, i, k);
    for (int i = 0; zero_grad && i < o->n; i++)
        nb_tensor_zero_grad(o->params[i]);
    if (grad_sq)
        *grad_sq = sq;
}

/* ---- the fast step: f32 chunks ---- */

/* Adam/AdamW on w, g, m, v [n], f32: step_param_ref's f32 formula, vectorised. */
NB_VECTOR_CLONES static void adam_f32(const step_k *k, float *restrict w, const float *restrict g,
                                      float *restrict m, float *restrict v, int64_t n)
{
    const float b1 = k->b1, b2 = k->b2, ob1 = k->ob1, ob2 = k->ob2, eps = k->eps;
    const float ss = k->ss, rs = k->rs, decay = k->decay, l2 = k->l2;
    for (int64_t j = 0; j < n; j++) {
        float pk = w[j] * decay, gk = g[j] + l2 * pk;
        float mk = b1 * m[j] + ob1 * gk, vk = b2 * v[j] + ob2 * gk * gk;
        m[j] = mk;
        v[j] = vk;
        w[j] = pk - ss * mk / (sqrtf(vk) * rs + eps);
    }
}

/* SGD on w, g, b [n], f32 storage, double arithmetic: step_param_ref's SGD formula. The flags
 * are constants at every call, so each inlined copy is a loop without branches. */
static inline void sgd_loop(const step_k *k, float *restrict w, const float *restrict g,
                            float *restrict buf, int64_t n, bool has_buf, bool started,
                            bool nesterov)
{
    const double lr = k->lr, wd = k->wd, mom = k->mom, damp1 = k->damp1;
    for (int64_t j = 0; j < n; j++) {
        double pk = w[j], gk = (double)g[j] + wd * pk;
        if (has_buf) {
            double b = started ? mom * (double)buf[j] + damp1 * gk : gk;
            buf[j] = (float)b;
            gk = nesterov ? gk + mom * b : b;
        }
        w[j] = (float)(pk - lr * gk);
    }
}
NB_VECTOR_CLONES static void sgd_f32(const step_k *k, float *restrict w, const float *restrict g,
                                     float *restrict buf, int64_t n)
{
    if (!k->has_buf)
        sgd_loop(k, w, g, buf, n, false, false, false);
    else if (!k->started)
        k->nesterov ? sgd_loop(k, w, g, buf, n, true, false, true)
                    : sgd_loop(k, w, g, buf, n, true, false, false);
    else
        k->nesterov ? sgd_loop(k, w, g, buf, n, true, true, true)
                    : sgd_loop(k, w, g, buf, n, true, true, false);
}

/* sum of g[j]^2 in double, g [n]: sixteen partial sums (lane l takes j = l mod 16, so the
 * compiler keeps them in vector registers as independent chains), then added in lane order. */
NB_VECTOR_CLONES static double sum_sq_f32(const float *restrict g, int64_t n)
{
    double acc[16] = {0};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) {
            double x = g[j + l];
            acc[l] += x * x;
        }
    for (; j < n; j++) {
        double x = g[j];
        acc[j & 15] += x * x;
    }
    for (int h = 8; h >= 1; h /= 2) /* pairwise: lane l += lane l + h */
        for (int l = 0; l < h; l++)
            acc[l] += acc[l + h];
    return acc[0];
}

/* Chunks [c0, c1) of o: squares (into chunk_sq), update, zeroing. */
static void run_chunks(nb_optim *o, const step_k *k, int64_t c0, int64_t c1, bool sq, bool zero)
{
    for (int64_t c = c0; c < c1; c++) {
        const nb_optim_chunk *ch = &o->chunks[c];
        nb_tensor *p = o->params[ch->p];
        float *w = (float *)p->data + ch->off, *g = (float *)p->grad + ch->off;
        nb_tensor *const *st = o->state + ch->p * NB_OPTIM_MAX_BUFS;
        float *s0 = st[0] ? (float *)st[0]->data + ch->off : NULL;
        if (sq)
            o->chunk_sq[c] = sum_sq_f32(g, ch->len);
        if (k->adam)
            adam_f32(k, w, g, s0, (float *)st[1]->data + ch->off, ch->len);
        else
            sgd_f32(k, w, g, s0, ch->len);
        if (zero)
            memset(g, 0, sizeof(float) * (size_t)ch->len);
    }
}

void nb_optim_step_run(nb_optim *o, double *grad_sq, bool zero_grad)
{
    o->t++;
    step_k k = step_constants(o);
    if (!o->all_f32 || o->shared_grad)
        step_all_ref(o, &k, grad_sq, zero_grad);
    else {
        int nt = nb_kernel_threads();
        int64_t C = o->n_chunks;
        bool sq = grad_sq != NULL;
        if (nt > 1 && o->numel >= atomic_load(&parallel_min)) {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
            {
                int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
                run_chunks(o, &k, C * t / T, C * (t + 1) / T, sq, zero_grad);
            }
#else
            run_chunks(o, &k, 0, C, sq, zero_grad);
#endif
        } else
            run_chunks(o, &k, 0, C, sq, zero_grad);
        if (grad_sq) {
            double s = 0.0;
            for (int64_t c = 0; c < C; c++)
                s += o->chunk_sq[c];
            *grad_sq = s;
        }
    }
    o->momentum_started = true;
}

nb_status nb_optim_step_reference(nb_optim *o)
{
    if (!o)
        return nb_error(NB_ERR_ARG, "nb_optim_step_reference: o is NULL");
    o->t++;
    step_k k = step_constants(o);
    step_all_ref(o, &k, NULL, false);
    o->momentum_started = true;
    return NB_OK;
}

/* a parameter's gradient as a byte range [lo, hi) */
typedef struct grad_range {
    uintptr_t lo, hi;
} grad_range;

static int range_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const grad_range *)a)->lo, y = ((const grad_range *)b)->lo;
    return x < y ? -1 : x > y;
}

/* Whether two of o's parameters share gradient memory (the same tensor listed twice, say). The
 * chunked pass zeroes a parameter's gradient right after its update, so a second parameter on
 * that memory would be updated with zeros, not the gradient nb_optim_step reads: such sets take
 * the reference step (every update, then every zeroing). */
static nb_status find_shared_grads(nb_optim *o)
{
    o->shared_grad = false;
    if (o->n < 2)
        return NB_OK;
    grad_range *r = malloc(sizeof *r * (size_t)o->n);
    if (!r)
        return nb_error(NB_ERR_NOMEM, "out of memory for the optimiser's %d gradient ranges", o->n);
    int m = 0;
    for (int i = 0; i < o->n; i++) {
        const nb_tensor *p = o->params[i];
        size_t bytes = (size_t)p->numel * nb_dtype_size(p->dtype);
        if (bytes)
            r[m++] = (grad_range){(uintptr_t)p->grad, (uintptr_t)p->grad + bytes};
    }
    qsort(r, (size_t)m, sizeof *r, range_cmp);
    uintptr_t hi = m ? r[0].hi : 0; /* the furthest end so far */
    for (int i = 1; i < m; i++) {
        o->shared_grad = o->shared_grad || r[i].lo < hi;
        hi = r[i].hi > hi ? r[i].hi : hi;
    }
    free(r);
    return NB_OK;
}

nb_status nb_optim_chunks_init(nb_optim *o)
{
    int64_t C = 0, total = 0;
    o->all_f32 = true;
    for (int i = 0; i < o->n; i++) {
        C += (o->params[i]->numel + NB_OPTIM_CHUNK - 1) / NB_OPTIM_CHUNK;
        total += o->params[i]->numel;
        o->all_f32 = o->all_f32 && o->params[i]->dtype == NB_F32;
    }
    o->chunks = malloc(sizeof *o->chunks * (size_t)(C ? C : 1));
    o->chunk_sq = malloc(sizeof *o->chunk_sq * (size_t)(C ? C : 1));
    if (!o->chunks || !o->chunk_sq)
        return nb_error(NB_ERR_NOMEM, "out of memory for the optimiser's %lld chunks",
                        (long long)C);
    int64_t c = 0;
    for (int i = 0; i < o->n; i++)
        for (int64_t off = 0; off < o->params[i]->numel; off += NB_OPTIM_CHUNK) {
            int64_t left = o->params[i]->numel - off;
            o->chunks[c++] =
                (nb_optim_chunk){i, (int32_t)(left < NB_OPTIM_CHUNK ? left : NB_OPTIM_CHUNK), off};
        }
    o->n_chunks = C;
    o->numel = total;
    return find_shared_grads(o);
}
