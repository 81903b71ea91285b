/* matmul.c - C = op(A) op(B), Linear y = x W^T + b and Linear + ReLU h = max(x W^T + b, 0),
 * on OpenBLAS.
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

static const nb_opdef op_matmul, op_linear, op_linear_relu;

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

/* Column sums: db [D] += sum over r of dy [N, D], row by row (the inner loop streams a row of
 * dy and the whole of db, which stays in L1), so each db[j] adds its rows in order 0..N-1. */
NB_VECTOR_CLONES static void colsum_f32(float *restrict db, const float *restrict dy, int64_t N,
                                        int64_t D)
{
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < D; j++)
            db[j] += dy[r * D + j];
}
static void colsum_f64(double *restrict db, const double *restrict dy, int64_t N, int64_t D)
{
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < D; j++)
            db[j] += dy[r * D + j];
}
static void add_rows(nb_dtype t, void *db, const void *dy, int64_t N, int64_t D)
{
    if (t == NB_F64)
        colsum_f64(db, dy, N, D);
    else
        colsum_f32(db, dy, N, D);
}

/* ---- Linear: y [N,out] = x [N,in] W^T + b, W [out,in], b [out] ---- */

/* The checked forward of linear (name: "linear" or "linear_relu"): y = x W^T + b, not recorded. */
static nb_tensor *linear_forward(nb_graph *g, const char *name, nb_tensor *const *in, int n_in)
{
    nb_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    if (!nb_op_inputs_ok(g, name, in, n_in) || nb_check_float_same(name, in, n_in) != NB_OK)
        return NULL;
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1]) {
        nb_error(NB_ERR_SHAPE, "%s: input %s does not match weight %s (need x [N,in], W [out,in])",
                 name, nb_shp(x), nb_shp(w));
        return NULL;
    }
    if (b && !(b->ndim == 1 && b->shape[0] == w->shape[0])) {
        nb_error(NB_ERR_SHAPE, "%s: bias %s does not match weight %s (need [out])", name, nb_shp(b),
                 nb_shp(w));
        return NULL;
    }
    if (!dims_fit_blas(name, x) || !dims_fit_blas(name, w))
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
    return y;
}

nb_tensor *nb_linear(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    nb_tensor *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    nb_tensor *y = linear_forward(g, "linear", in, n_in);
    nb_node *n;
    if (!y || nb_graph_record(g, &op_linear, y, in, n_in, &n) != NB_OK)
        return NULL;
    return y;
}

/* dx += dz W, dW += dz^T x for linear's node n given dz [N,out], the gradient of x W^T + b;
 * and db += the column sums of dz when with_bias. */
static nb_status linear_grads(nb_graph *g, nb_node *n, const void *dz, bool with_bias)
{
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    int64_t N = x->shape[0], Din = x->shape[1], Dout = w->shape[0];
    void *gx, *gw, *gbias = NULL;
    nb_status s = nb_grad_buffer(g, x, &gx);
    if (s == NB_OK)
        s = nb_grad_buffer(g, w, &gw);
    if (s == NB_OK && b && with_bias)
        s = nb_grad_buffer(g, b, &gbias);
    if (s != NB_OK)
        return s;
    if (gx && Dout > 0) /* dx [N,Din] += dz [N,Dout] W [Dout,Din] */
        gemm(x->dtype, false, false, N, Din, Dout, dz, Dout, w->data, Din, 1.0, gx);
    if (gw && N > 0) /* dW [Dout,Din] += dz^T [Dout,N] x [N,Din] */
        gemm(x->dtype, true, false, Dout, Din, N, dz, Dout, x->data, Din, 1.0, gw);
    if (gbias) /* db [Dout] += sum over rows of dz */
        add_rows(x->dtype, gbias, dz, N, Dout);
    return NB_OK;
}

static nb_status linear_backward(nb_graph *g, nb_node *n)
{
    return linear_grads(g, n, n->out->grad, true);
}

/* ---- Linear + ReLU: h [N,out] = max(x W^T + b, 0), one op ----
 * Forward: linear's output pass, then ReLU in place (no second [N,out] tensor). Backward: one
 * pass over h and dh writes dz = 0 + (h <= 0 ? 0 : dh) (what relu's backward adds into a zeroed
 * buffer: the same bits, signed zeros included; h <= 0 exactly where x W^T + b <= 0, and a NaN
 * passes dh in both) and adds dz's rows into db in the same pass; then linear's two products.
 * The gradients are bitwise those of nb_relu(nb_linear(...)), without zeroing a buffer for dz
 * and without the separate bias pass. */
NB_VECTOR_CLONES static void relu_inplace_f32(float *restrict h, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        h[i] = h[i] <= 0.0f ? 0.0f : h[i];
}
static void relu_inplace_f64(double *restrict h, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        h[i] = h[i] <= 0.0 ? 0.0 : h[i];
}

nb_tensor *nb_linear_relu(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    nb_tensor *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    nb_tensor *h = linear_forward(g, "linear_relu", in, n_in);
    if (!h)
        return NULL;
    if (h->dtype == NB_F64)
        relu_inplace_f64(h->data, h->numel);
    else
        relu_inplace_f32(h->data, h->numel);
    nb_node *n;
    if (nb_graph_record(g, &op_linear_relu, h, in, n_in, &n) != NB_OK)
        return NULL;
    return h;
}

/* dz [N,D] = 0 + (h <= 0 ? 0 : dh), and db [D] += the column sums of dz (rows in order). f64
 * multiplies by the 0/1 derivative as relu's f64 backward does (a NaN or inf dh where h <= 0
 * gives NaN there, not 0), so each dtype has its unfused op's bits. */
NB_VECTOR_CLONES static void relu_grad_f32(float *restrict dz, float *restrict db,
                                           const float *restrict dh, const float *restrict h,
                                           int64_t N, int64_t D)
{
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < D; j++) {
            float d = 0.0f + (h[r * D + j] <= 0.0f ? 0.0f : dh[r * D + j]);
            dz[r * D + j] = d;
            if (db)
                db[j] += d;
        }
}
static void relu_grad_f64(double *restrict dz, double *restrict db, const double *restrict dh,
                          const double *restrict h, int64_t N, int64_t D)
{
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < D; j++) {
            double d = 0.0 + dh[r * D + j] * (h[r * D + j] <= 0.0 ? 0.0 : 1.0);
            dz[r * D + j] = d;
            if (db)
                db[j] += d;
        }
}

static nb_status linear_relu_backward(nb_graph *g, nb_node *n)
{
    nb_tensor *h = n->out, *b = n->n_in > 2 ? n->in[2] : NULL;
    int64_t N = h->shape[0], D = h->shape[1];
    void *dz = nb_arena_alloc(g, (size_t)h->numel * nb_dtype_size(h->dtype)), *gbias = NULL;
    if (!dz)
        return nb_last_status();
    nb_status s = b ? nb_grad_buffer(g, b, &gbias) : NB_OK;
    if (s != NB_OK)
        return s;
    if (h->dtype == NB_F64)
        relu_grad_f64(dz, gbias, h->grad, h->data, N, D);
    else
        relu_grad_f32(dz, gbias, h->grad, h->data, N, D);
    return linear_grads(g, n, dz, false);
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

static nb_tensor *linear_relu_apply(const nb_op_info *op, nb_graph *g, nb_tensor *const *in,
                                    int n_in, const double *args)
{
    (void)op, (void)args;
    return nb_linear_relu(g, in[0], in[1], n_in > 2 ? in[2] : NULL);
}
/* a bias of -0.5 .. 0.5 against x W^T in about -1.3 .. 1.3: some outputs clipped, some not */
static const nb_op_case linear_relu_cases[] = {
    {.note = "max(x W^T + b, 0)",
     .n_inputs = 3,
     .in = {NB_SAMPLE_PARAM2(-1, 1, 0, 4, 3),
            NB_SAMPLE_PARAM2(-1, 1, 0, 5, 3),
            {.kind = NB_SAMPLE_PARAM, .ndim = 1, .shape = {5}, .lo = -0.5, .hi = 0.5}}},
    {.note = "max(x W^T, 0)",
     .n_inputs = 2,
     .in = {NB_SAMPLE_PARAM2(-1, 1, 0, 4, 3), NB_SAMPLE_PARAM2(-1, 1, 0, 5, 3)}},
};
static const nb_opdef op_linear_relu = {
    {"linear_relu", "h = max(x W^T + b, 0)", 3, linear_relu_apply, NB_CASES(linear_relu_cases)},
    linear_relu_backward,
    0,
    NULL};

NB_OP_LIST(nb_matmul_ops, &op_matmul, &op_linear, &op_linear_relu);
