/* A downstream program: the stable cross-entropy of z = [1000, 1001, 1002] with target 2. */
#include <math.h>
#include <stdio.h>

#include <nabla.h>

int main(void)
{
    float z[3] = {1000, 1001, 1002};
    int32_t y[1] = {2};
    int64_t sz[2] = {1, 3}, sy[1] = {1};
    nb_tensor logits, targets, loss;
    float l = 0;
    nb_tensor_view(&logits, NB_F32, 2, sz, z);
    nb_tensor_view(&targets, NB_I32, 1, sy, y);
    nb_tensor_view(&loss, NB_F32, 0, NULL, &l);
    if (nb_xent_forward(&logits, &targets, NULL, &loss, NULL, NULL) != NB_OK) {
        fprintf(stderr, "consumer: %s\n", nb_last_error());
        return 1;
    }
    /* -log_softmax(z)[2] = log(1 + e^-1 + e^-2) = 0.40760596 */
    printf("nabla %s: loss %.8f\n", NABLA_VERSION, l);
    return fabsf(l - 0.40760596f) < 1e-6f ? 0 : 1;
}
