/* matmul.c - C = op(A) op(B) and Linear y = x W^T + b, on OpenBLAS.
 *
 * Shapes: op(A) [M,K], op(B) [K,N], C [M,N]. With C = A'B' (A' = op(A), B' = op(B)):
 *   dA' = dC B'^T,  dB' = A'^T dC,
 * and when A is stored transposed (ta) its gradient is (dA')^T = B' dC^T, likewise for B.
 * Every gradient product uses beta = 1, so it accumulates into the existing gradient. */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <stdatomic.h>
#include <string.h>

#include "ops_internal.h"

static const nb_opdef op_matmul, op_linear;

/* The process-wide count of nb_set_num_threads (0: never set). OpenMP's own setting
 * (omp_set_num_threads) is per calling thread, so the kernels read this instead. */
static _Atomic int threads_set;

void nb_set_num_threads(int n)
{
    if (n < 1) {
        nb_error(NB_ERR_ARG, "nb_set_num_threads: n = %d, needs n >= 1", n);
        return;
    }
    openblas_set_num_threads(n);
    atomic_store(&threads_set, n);
}

int nb_num_threads(void)
{
    return openblas_get_num_threads();
}

int nb_kernel_threads(void)
{
    int n = atomic_load(&threads_set);
#ifdef _OPENMP
    return n > 0 ? n : omp_get_max_threads();
#else
    return n > 0 ? n : 1;
#endif
}

const char *nb_blas_core_name(void)
{
    return openblas_get_corename();
}

/* out[M,N] (row-major, leading dim N) = op(A) op(B) + beta out (alpha is always 1), A/B given
 * as stored with their own leading dims. */
static void gemm(nb_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                 int64_t lda, const void *B, int64_t ldb, double beta, void *C)
{
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (M == 0 || N == 0)
        return;
    if (t == NB_F64)
        cblas_dgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K, 1.0, A, (blasint)lda,
                    B, (blasint)ldb, beta, C, (blasint)N);
    else
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K, 1.0f, A,
                    (blasint)lda, B, (blasint)ldb, (float)beta, C, (blasint)N);
}

void nb_gemm(nb_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
             int64_t lda, const void *B, int64_t ldb, double beta, void *C)
{
    gemm(t, ta, tb, M, N, K, A, lda, B, ldb, beta, C);
}

static bool dims_fit_blas(const char *name, const nb_tensor *x)
{
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] > 0x7fffffff) {
            nb_error(NB_ERR_SHAPE, "%s: dimension %lld too large for BLAS", name,
                     (long long)x->shape[i]);
            return false;
        }
    return true;
}

nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b, bool trans_a, bool trans_b)
{
    nb_tensor *in[2] = {a, b};
    if (!nb_op_inputs_ok(g, "matmul", in, 2) || nb_check_float_same("matmul", in, 2) != NB_OK)
        return NULL;
    if (a->ndim != 2 || b->ndim != 2) {
        nb_error(NB_ERR_SHAPE, "matmul: needs 2-D inputs, got %s and %s", nb_shp(a), nb_shp(b));
        return NULL;
    }
    if (!dims_fit_blas("matmul", a) || !dims_fit_blas("matmul", b))
        return NULL;
    int64_t M = trans_a ? a->shape[1] : a->shape[0], K = trans_a ? a->shape[0] : a->shape[1];
    int64_t K2 = trans_b ? b->shape[1] : b->shape[0], N = trans_b ? b->shape[0] : b->shape[1];
    if (K != K2) {
        nb_error(NB_ERR_SHAPE, "matmul: inner dimensions differ: %s%s x %s%s (%lld vs %lld)",
                 nb_shp(a), trans_a ? "^T" : "", nb_shp(b), trans_b ? "^T" : "", (long long)K,
                 (long long)K2);
        return NULL;
    }
    int64_t shape[2] = {M, N};
    nb_tensor *c = nb_graph_new_tensor(g, a->dtype, 2, shape);
    if (!c)
        return NULL;
    if (K == 0)
        memset(c->data, 0, (size_t)c->numel * nb_dtype_size(c->dtype));
    else
        gemm(a->dtype, trans_a, trans_b, M, N, K, a->data, a->shape[1], b->data, b->shape[1], 0.0,
             c->data);
    nb_node *n;
    if (nb_graph_record(g, &op_matmul, c, in, 2, &n) != NB_OK)
        return NULL;
    if (n) {
        n->ip[0] = trans_a;
        n->ip[1] = trans_b;
    }
    return c;
}

static nb_status matmul_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    bool ta = n->ip[0], tb = n->ip[1];
    int64_t M = c->shape[0], N = c->shape[1], K = ta ? a->shape[0] : a->shape[1];
    void *ga, *gb;
    nb_status s = nb_grad_buffer(g, a, &ga);
    if (s == NB_OK)
        s = nb_grad_buffer(g, b, &gb);
    if (s != NB_OK)
        return s;
    if (K == 0)
        return NB_OK;
    const void *dC = c->grad;
    if (ga) {
        if (!ta) /* dA [M,K] = dC [M,N] B'^T;  B'^T = tb ? B : B^T */
            gemm(a->dtype, false, !tb, M, K, N, dC, N, b->data, b->shape[1], 1.0, ga);
        else /* dA [K,M] = B' [K,N] dC^T */
            gemm(a->dtype, tb, true, K, M, N, b->data, b->shape[1], dC, N, 1.0, ga);
    }
    if (gb) {
        if (!tb) /* dB [K,N] = A'^T [K,M] dC [M,N];  A'^T = ta ? A : A^T */
            gemm(a->dtype, !ta, false, K, N, M, a->data, a->shape[1], dC, N, 1.0, gb);
        else /* dB [N,K] = dC^T [N,M] A' [M,K] */
            gemm(a->dtype, true, ta, N, K, M, dC, N, a->data, a->shape[1], 1.0, gb);
    }
    return NB_OK;
}

/* db[j] += sum_r dy[r, j], dy [N, D] */
static void add_rows(nb_dtype t, void *db, const void *dy, int64_t N, int64_t D)
{
    for (int64_t r = 0; r < N; r++) {
        if (t == NB_F64) {
            double *restrict d = db;
            const double *restrict s = (const double *)dy + r * D;
            for (int64_t j = 0; j < D; j++)
                d[j] += s[j];
        } else {
            float *restrict d = db;
            const float *restrict s = (const float *)dy + r * D;
            for (int64_t j = 0; j < D; j++)
                d[j] += s[j];
        }
    }
}

/* ---- Linear: y [N,out] = x [N,in] W^T + b, W [out,in], b [out] ---- */

nb_tensor *nb_linear(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    nb_tensor *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    if (!nb_op_inputs_ok(g, "linear", in, n_in) || nb_check_float_same("linear", in, n_in) != NB_OK)
        return NULL;
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1]) {
        nb_error(NB_ERR_SHAPE,
                 "linear: input %s does not match weight %s (need x [N,in], W [out,in])", nb_shp(x),
                 nb_shp(w));
        return NULL;
    }
    if (b && !(b->ndim == 1 && b->shape[0] == w->shape[0])) {
        nb_error(NB_ERR_SHAPE, "linear: bias %s does not match weight %s (need [out])", nb_shp(b),
                 nb_shp(w));
        return NULL;
    }
    if (!dims_fit_blas("linear", x) || !dims_fit_blas("linear", w))
        return NULL;
    int64_t N = x->shape[0], Din = x->shape[1], Dout = w->shape[0];
    int64_t shape[2] = {N, Dout};
    nb_tensor *y = nb_graph_new_tensor(g, x->dtype, 2, shape);
    if (!y)
        return NULL;
    /* preload the bias into every row, then gemm with beta = 1 adds x W^T onto it */
    size_t row_bytes = (size_t)Dout * nb_dtype_size(x->dtype);
    for (int64_t r = 0; r < N; r++) {
        char *yr = (char *)y->data + (size_t)r * row_bytes;
        if (b)
            memcpy(yr, b->data, row_bytes);
        else
            memset(yr, 0, row_bytes);
    }
    if (Din > 0)
        gemm(x->dtype, false, true, N, Dout, Din, x->data, Din, w->data, Din, 1.0, y->data);
    nb_node *n;
    if (nb_graph_record(g, &op_linear, y, in, n_in, &n) != NB_OK)
        return NULL;
    return y;
}

static nb_status linear_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL, *y = n->out;
    int64_t N = x->shape[0], Din = x->shape[1], Dout = w->shape[0];
    void *gx, *gw, *gbias = NULL;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s == NB_OK)
        s = nb_grad_buffer(g, w, &gw);
    if (s == NB_OK && b)
        s = nb_grad_buffer(g, b, &gbias);
    if (s != NB_OK)
        return s;
    if (gx && Dout > 0) /* dx [N,Din] += dy [N,Dout] W [Dout,Din] */
        gemm(x->dtype, false, false, N, Din, Dout, y->grad, Dout, w->data, Din, 1.0, gx);
    if (gw && N > 0) /* dW [Dout,Din] += dy^T [Dout,N] x [N,Din] */
        gemm(x->dtype, true, false, Dout, Din, N, y->grad, Dout, x->data, Din, 1.0, gw);
    if (gbias) /* db [Dout] += sum over rows of dy */
        add_rows(x->dtype, gbias, y->grad, N, Dout);
    return NB_OK;
}

/* ---- records: sample cases as data ---- */

static nb_tensor *matmul_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                               const double *args)
{
    (void)op, (void)n_in;
    return nb_matmul(g, in[0], in[1], args[0] != 0, args[1] != 0);
}
/* the four transpose combinations of [3,4] x [4,5] */
#define MM_CASE(TA, TB, NOTE)                                                                      \
    {                                                                                              \
        .note = NOTE, .n_inputs = 2,                                                               \
        .in = {NB_SAMPLE_PARAM2(-1, 1, 0, TA ? 4 : 3, TA ? 3 : 4),                                 \
               NB_SAMPLE_PARAM2(-1, 1, 0, TB ? 5 : 4, TB ? 4 : 5)},                                \
        .args = {                                                                                  \
            TA,                                                                                    \
            TB                                                                                     \
        }                                                                                          \
    }
static const nb_op_case matmul_cases[] = {MM_CASE(0, 0, "A B"), MM_CASE(1, 0, "A^T B"),
                                          MM_CASE(0, 1, "A B^T"), MM_CASE(1, 1, "A^T B^T")};
static const nb_opdef op_matmul = {
    {"matmul", "C = op(A) op(B)", 2, matmul_apply, NB_CASES(matmul_cases)},
    matmul_backward,
    0,
    NULL};

static nb_tensor *linear_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in, int n_in,
                               const double *args)
{
    (void)op, (void)args;
    return nb_linear(g, in[0], in[1], n_in > 2 ? in[2] : NULL);
}
static const nb_op_case linear_cases[] = {
    {.note = "x W^T + b",
     .n_inputs = 3,
     .in = {NB_SAMPLE_PARAM2(-1, 1, 0, 3, 4),
            NB_SAMPLE_PARAM2(-1, 1, 0, 5, 4),
            {.kind = NB_SAMPLE_PARAM, .ndim = 1, .shape = {5}, .lo = -1, .hi = 1}}},
    {.note = "x W^T",
     .n_inputs = 2,
     .in = {NB_SAMPLE_PARAM2(-1, 1, 0, 3, 4), NB_SAMPLE_PARAM2(-1, 1, 0, 5, 4)}},
};
static const nb_opdef op_linear = {
    {"linear", "y = x W^T + b", 3, linear_apply, NB_CASES(linear_cases)}, linear_backward, 0, NULL};

NB_OP_LIST(nb_matmul_ops, &op_matmul, &op_linear);
