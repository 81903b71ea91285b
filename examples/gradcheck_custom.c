/* gradcheck_custom.c - checking the gradient of your own function with nb_gradcheck.
 *
 * f(W, b, x) = sum(softmax(tanh(x W^T + b)) * c): a small composite of nabla ops. nb_gradcheck
 * compares what backward computes with central differences in float64 and reports the worst
 * element. Exit status 0 when the maximum relative error is below 1e-6. */
#include <stdio.h>

#include <nabla.h>

/* the function under test: inputs[0] = W [4,3], [1] = b [4], [2] = x [5,3], [3] = c [5,4] */
static nb_tensor *f(nb_graph *g, nb_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    nb_tensor *h = nb_tanh(g, nb_linear(g, in[2], in[0], in[1]));
    return nb_sum(g, nb_mul(g, nb_softmax(g, h), in[3]));
}

int main(void)
{
    nb_rng r;
    nb_rng_seed(&r, 7);
    int64_t sw[2] = {4, 3}, sb[1] = {4}, sx[2] = {5, 3}, sc[2] = {5, 4};
    nb_tensor *in[4] = {
        nb_tensor_randn(NB_F64, 2, sw, &r, 0, 1), nb_tensor_randn(NB_F64, 1, sb, &r, 0, 1),
        nb_tensor_randn(NB_F64, 2, sx, &r, 0, 1), nb_tensor_randn(NB_F64, 2, sc, &r, 0, 1)};
    /* check W, b and x; c is a constant */
    for (int i = 0; i < 3; i++)
        nb_tensor_set_requires_grad(in[i], true);
    nb_gradcheck_result res;
    if (nb_gradcheck(f, in, 4, NULL, NULL, &res) != NB_OK)
        return fprintf(stderr, "gradcheck: %s\n", nb_last_error()), 1;
    printf("checked %lld elements: max abs error %.3g, max rel error %.3g\n",
           (long long)res.n_checked, res.max_abs_err, res.max_rel_err);
    printf("worst: input %d element %lld, analytic %.12g, numeric %.12g\n", res.worst_input,
           (long long)res.worst_index, res.worst_analytic, res.worst_numeric);
    for (int i = 0; i < 4; i++)
        nb_tensor_free(in[i]);
    return res.max_rel_err < 1e-6 ? 0 : 1;
}
