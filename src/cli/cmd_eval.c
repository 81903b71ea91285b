/* cmd_eval.c - `nabla eval` and `nabla predict`, and the evaluation loop train shares. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tensor/fileio.h"
#include "nabla.h"

/* Loss sum and correct count of m over ds, in batches, no gradient. */
nb_status nb_cli_evaluate(nb_graph *g, nb_mlp *m, const nb_dataset *ds, double *loss_sum,
                          int64_t *correct, int64_t *confusion)
{
    int64_t N = ds->X->shape[0], D = ds->X->shape[1], K = ds->n_classes, B = 1000;
    bool was = m->training;
    nb_mlp_set_training(m, false);
    bool prev = nb_graph_set_grad_enabled(g, false);
    *loss_sum = 0;
    *correct = 0;
    nb_status s = NB_OK;
    nb_xent_opts o = nb_xent_defaults();
    o.reduction = NB_REDUCTION_SUM;
    for (int64_t r0 = 0; r0 < N && s == NB_OK; r0 += B) {
        int64_t n = N - r0 < B ? N - r0 : B, sx[2] = {n, D}, sy[1] = {n};
        nb_tensor xv, yv;
        nb_tensor_view(&xv, NB_F32, 2, sx, (float *)ds->X->data + r0 * D);
        nb_tensor_view(&yv, NB_I32, 1, sy, (int32_t *)ds->y->data + r0);
        nb_graph_reset(g);
        nb_tensor *logits = nb_mlp_forward(g, m, &xv);
        nb_tensor *L = nb_cross_entropy(g, logits, &yv, &o);
        if (!L) {
            s = nb_last_status();
            break;
        }
        *loss_sum += nb_tensor_get(L, 0);
        const float *lv = logits->data;
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            for (int64_t c = 1; c < K; c++)
                if (lv[i * K + c] > lv[i * K + best])
                    best = c;
            int32_t y = ((int32_t *)yv.data)[i];
            *correct += best == y;
            if (confusion)
                confusion[y * K + best]++;
        }
    }
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, prev);
    nb_mlp_set_training(m, was);
    return s;
}

/* ---- eval ---- */

int nb_cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *dir = NULL, *split = "test";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: nabla eval --model MODEL.safetensors [--data SPEC] [--data-dir DIR] "
                   "[--split test|train]\n"
                   "  Loss, accuracy, per-class accuracy and the confusion matrix.\n"
                   "  --data defaults to the data set the model was trained on.\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla eval: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--model"))
            model = argv[++i];
        else if (!strcmp(argv[i], "--data"))
            data = argv[++i];
        else if (!strcmp(argv[i], "--data-dir"))
            dir = argv[++i];
        else if (!strcmp(argv[i], "--split")) {
            split = argv[++i];
            if (strcmp(split, "test") && strcmp(split, "train")) {
                fprintf(stderr, "nabla eval: --split '%s': expected test or train\n", split);
                return 2;
            }
        } else {
            fprintf(stderr, "nabla eval: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "nabla eval: --model is required\n");
        return 2;
    }
    nb_model_info info;
    nb_mlp *m = nb_model_load(model, &info, NULL);
    if (!m) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        return 1;
    }
    if (!data)
        data = info.dataset[0] ? info.dataset : "auto";
    if (!strcmp(data, "fashion-mnist-train")) /* models saved before the spec was recorded */
        data = "fashion-mnist";
    nb_dataset tr, te;
    int rc = nb_cli_load_data("eval", data, dir, 1, 0.1, &tr, &te, false);
    if (rc) {
        nb_mlp_free(m);
        return rc;
    }
    nb_dataset *ds = !strcmp(split, "train") ? &tr : &te;
    int64_t K = m->sizes[m->n_layers], N = ds->X->shape[0];
    int64_t *conf = calloc((size_t)(K * K), sizeof *conf);
    nb_graph *g = nb_graph_new();
    double loss;
    int64_t correct;
    rc = 1;
    if (ds->X->shape[1] != m->sizes[0]) {
        fprintf(stderr, "nabla eval: the data has %lld features but the model %s expects %lld\n",
                (long long)ds->X->shape[1], model, (long long)m->sizes[0]);
    } else if (ds->n_classes > K) {
        fprintf(stderr, "nabla eval: the data has %lld classes but the model has %lld outputs\n",
                (long long)ds->n_classes, (long long)K);
    } else if (!conf || !g || nb_cli_evaluate(g, m, ds, &loss, &correct, conf) != NB_OK) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
    } else {
        printf("model %s (epoch %lld), %s split of %s: %lld samples\n", model,
               (long long)info.epoch, split, ds->name, (long long)N);
        printf("loss %.4f  accuracy %.4f\n", loss / (double)N, (double)correct / (double)N);
        printf("per-class accuracy:\n");
        for (int64_t c = 0; c < K; c++) {
            int64_t tot = 0;
            for (int64_t j = 0; j < K; j++)
                tot += conf[c * K + j];
            printf("  class %2lld: %.4f (%lld)\n", (long long)c,
                   tot ? (double)conf[c * K + c] / (double)tot : 0.0, (long long)tot);
        }
        printf("confusion matrix (rows: true class, columns: predicted):\n      ");
        for (int64_t j = 0; j < K; j++)
            printf("%6lld", (long long)j);
        printf("\n");
        for (int64_t c = 0; c < K; c++) {
            printf("%6lld", (long long)c);
            for (int64_t j = 0; j < K; j++)
                printf("%6lld", (long long)conf[c * K + j]);
            printf("\n");
        }
        rc = 0;
    }
    free(conf);
    nb_graph_free(g);
    nb_mlp_free(m);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
    return rc;
}

/* ---- predict ---- */

int nb_cmd_predict(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *out = NULL;
    bool probs = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: nabla predict --model MODEL.safetensors --input X.npy --out OUT.npy "
                   "[--probs]\n"
                   "  X: raw inputs as the model was trained on (uint8 [N,784] or [N,28,28], or\n"
                   "  float); the model's recorded normalisation is applied. Writes f32 logits\n"
                   "  [N,K], or probabilities with --probs.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--probs")) {
            probs = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla predict: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--model"))
            model = argv[++i];
        else if (!strcmp(argv[i], "--input"))
            input = argv[++i];
        else if (!strcmp(argv[i], "--out"))
            out = argv[++i];
        else {
            fprintf(stderr, "nabla predict: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model || !input || !out) {
        fprintf(stderr, "nabla predict: --model, --input and --out are required\n");
        return 2;
    }
    /* --out can be written and replaces neither input: checked before any work */
    if (nb_output_check(out, "nabla predict --out") != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    const char *ins[2][2] = {{"--model", model}, {"--input", input}};
    for (int i = 0; i < 2; i++)
        if (nb_output_same_file(out, ins[i][1])) {
            fprintf(stderr,
                    "nabla predict: --out '%s' is the same file as %s '%s'; writing it would "
                    "destroy the input (choose another output file)\n",
                    out, ins[i][0], ins[i][1]);
            return 1;
        }
    nb_model_info info;
    nb_mlp *m = nb_model_load(model, &info, NULL);
    if (!m) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        return 1;
    }
    int rc = 1;
    nb_tensor *x = nb_npy_load(input), *xf = NULL, *res = NULL;
    nb_graph *g = NULL;
    if (!x) {
        fprintf(stderr, "nabla predict: --input %s: %s\n", input, nb_last_error());
        goto done;
    }
    int64_t N = x->ndim ? x->shape[0] : 0, D = N ? x->numel / N : 0;
    if (x->ndim < 1 || x->ndim > 3 || D != m->sizes[0] ||
        (x->dtype != NB_U8 && !nb_dtype_is_float(x->dtype))) {
        char s[64];
        fprintf(stderr,
                "nabla predict: --input %s is %s %s; the model expects uint8 or float "
                "[N, %lld] (or [N, H, W] with H W = %lld)\n",
                input, nb_dtype_name(x->dtype), nb_shape_str(x, s, sizeof s),
                (long long)m->sizes[0], (long long)m->sizes[0]);
        goto done;
    }
    int64_t sx[2] = {N, D};
    xf = nb_tensor_empty(NB_F32, 2, sx);
    g = nb_graph_new();
    if (!xf || !g)
        goto fail;
    for (int64_t i = 0; i < x->numel; i++)
        ((float *)xf->data)[i] = (float)(nb_tensor_get(x, i) * info.input_scale + info.input_shift);
    nb_graph_set_grad_enabled(g, false);
    nb_tensor *logits = nb_mlp_forward(g, m, xf);
    if (!logits)
        goto fail;
    res = probs ? nb_tensor_empty(NB_F32, 2, logits->shape) : NULL;
    if (probs && (!res || nb_softmax_rows(logits, res) != NB_OK))
        goto fail;
    if (nb_npy_save(out, probs ? res : logits) != NB_OK) {
        fprintf(stderr, "nabla predict: --out %s: %s\n", out, nb_last_error());
        goto done;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "nabla predict: %s\n", nb_last_error());
done:
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(xf);
    nb_tensor_free(res);
    nb_mlp_free(m);
    return rc;
}
