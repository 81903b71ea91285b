/* cmd_eval.c - `nabla eval` and `nabla predict`, and the evaluation loop train shares. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nabla.h"

/* Loss sum and correct count of m over ds, in batches, no gradient. The confusion matrix, when
 * asked for, is [K, K] with K the model's outputs (which may exceed the data's classes). */
nb_status nb_cli_evaluate(nb_graph *g, nb_mlp *m, const nb_dataset *ds, double *loss_sum,
                          int64_t *correct, int64_t *confusion)
{
    int64_t N = ds->X->shape[0], D = ds->X->shape[1], B = 1000;
    *loss_sum = 0;
    *correct = 0;
    int64_t *pred = malloc(sizeof *pred * (size_t)(N < B ? (N > 0 ? N : 1) : B));
    if (!pred)
        return nb_error(NB_ERR_NOMEM, "eval: cannot allocate %lld predictions",
                        (long long)(N < B ? N : B));
    bool was = m->training;
    nb_mlp_set_training(m, false);
    bool prev = nb_graph_set_grad_enabled(g, false);
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
        if (!L || (s = nb_argmax_rows(logits, pred, n)) != NB_OK) {
            s = nb_last_status();
            break;
        }
        *loss_sum += nb_tensor_get(L, 0);
        int64_t K = logits->shape[1]; /* the model's outputs: the row stride of the logits */
        for (int64_t i = 0; i < n; i++) {
            int32_t y = ((int32_t *)yv.data)[i];
            *correct += pred[i] == y;
            if (confusion)
                confusion[y * K + pred[i]]++;
        }
    }
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, prev);
    nb_mlp_set_training(m, was);
    free(pred);
    return s;
}

/* ---- eval ---- */

/* Which rows `nabla eval` scores. --data FILE: every row of FILE. --data SET (a built-in set):
 * its split, made with the model's recorded seed when the model was trained on SET. No --data:
 * the run's own data, from what the checkpoint records (data_spec, data_seed, data_val_frac):
 * for a file, exactly the rows the run held out (--split test) or trained on (--split train),
 * after checking the file still has the recorded row count and checksum. Returns an exit
 * status; on success *ds points into tr or te and desc says what was scored. */
static int eval_data(const char *model, const nb_model_info *info, const char *data,
                     const char *dir, const char *split, bool split_given, nb_dataset *tr,
                     nb_dataset *te, nb_dataset **ds, char *desc, size_t desc_len)
{
    char *rec = NULL;
    nb_cli_data_id id;
    int have = nb_cli_read_data_id("eval", model, &rec, &id), rc = 1;
    bool test = strcmp(split, "train") != 0;
    memset(tr, 0, sizeof *tr);
    memset(te, 0, sizeof *te);
    if (have < 0)
        return 1;
    if (data && nb_cli_data_is_file(data)) {
        if (split_given)
            fprintf(stderr,
                    "nabla eval: note: --split does not apply to --data %s; every row of "
                    "it is scored\n",
                    data);
        rc = nb_cli_load_data("eval", data, dir, 0, 0.5, tr, NULL, false, NULL);
        if (rc == 0) {
            *ds = tr;
            snprintf(desc, desc_len, "every row of %s", data);
        }
        goto out;
    }
    if (!data && have == 0 && nb_cli_data_is_file(rec)) {
        nb_cli_data_id now;
        rc = nb_cli_load_data("eval", rec, dir, id.seed, id.val_frac, tr, te, false, &now);
        if (rc == 0 && (now.rows != id.rows || now.checksum != id.checksum)) {
            fprintf(stderr,
                    "nabla eval: %s has changed since %s was trained on it (now %lld rows, "
                    "checksum %016llx; then %lld rows, checksum %016llx), so the run's held-out "
                    "rows cannot be rebuilt; score a whole file with --data FILE\n",
                    rec, model, (long long)now.rows, (unsigned long long)now.checksum,
                    (long long)id.rows, (unsigned long long)id.checksum);
            rc = 1;
        }
        if (rc == 0) {
            *ds = test ? te : tr;
            snprintf(desc, desc_len,
                     "the %s rows of %s (the run's split: seed %llu, held-out fraction %g)",
                     test ? "held-out" : "training", rec, (unsigned long long)id.seed, id.val_frac);
        }
        goto out;
    }
    const char *spec = data ? data : have == 0 ? rec : info->dataset[0] ? info->dataset : "auto";
    if (!strcmp(spec, "fashion-mnist-train")) /* models saved before the spec was recorded */
        spec = "fashion-mnist";
    if (nb_cli_data_is_file(spec)) { /* an older checkpoint that recorded no split */
        fprintf(stderr,
                "nabla eval: %s records no data split (it was saved by an older nabla), so the "
                "held-out rows of %s cannot be rebuilt; score a whole file with --data FILE\n",
                model, spec);
        goto out;
    }
    /* a built-in set: the seed the run used when it is that set, else the default seed 1 */
    uint64_t seed = have == 0 && !strcmp(spec, rec) ? id.seed : 1;
    rc = nb_cli_load_data("eval", spec, dir, seed, 0.1, tr, te, false, NULL);
    if (rc == 0) {
        *ds = test ? te : tr;
        snprintf(desc, desc_len, "%s split of %s", split, (*ds)->name);
    }
out:
    if (rc) {
        nb_dataset_free(tr);
        nb_dataset_free(te);
    }
    free(rec);
    return rc;
}

int nb_cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *dir = NULL, *split = "test";
    bool split_given = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: nabla eval --model MODEL.safetensors [--data SPEC] [--data-dir DIR] "
                   "[--split test|train]\n"
                   "  Loss, accuracy, per-class accuracy and the confusion matrix.\n"
                   "  Without --data: the data the model was trained on; for a CSV or .npy run,\n"
                   "  exactly the rows the run held out (--split train: the rows it trained on),\n"
                   "  rebuilt from the split the checkpoint records.\n"
                   "  --data FILE.csv or X.npy,y.npy: every row of the file.\n"
                   "  --data fashion-mnist, mnist, spirals or seq-toy: that set's --split.\n");
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
            split_given = true;
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
    nb_dataset tr, te, *ds = NULL;
    char desc[1200];
    int rc =
        eval_data(model, &info, data, dir, split, split_given, &tr, &te, &ds, desc, sizeof desc);
    if (rc) {
        nb_mlp_free(m);
        return rc;
    }
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
        printf("model %s (epoch %lld), %s: %lld samples\n", model, (long long)info.epoch, desc,
               (long long)N);
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
                   "  [N,K], or probabilities with --probs. Inputs must be finite: a NaN or\n"
                   "  inf is refused, naming its row and column.\n");
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
    /* a NaN or inf input has no prediction: refuse it, naming where it is (relu and the other
     * activations would carry it through to NaN logits, as PyTorch does) */
    for (int64_t i = 0; i < x->numel; i++) {
        double v = nb_tensor_get(x, i);
        float f = (float)(v * info.input_scale + info.input_shift);
        if (!isfinite(v) || !isfinite(f)) {
            fprintf(stderr,
                    "nabla predict: --input %s: row %lld, column %lld (from 0) is %g%s; the model "
                    "needs finite inputs\n",
                    input, (long long)(i / D), (long long)(i % D), v,
                    isfinite(v) ? ", which overflows f32 once scaled" : "");
            goto done;
        }
        ((float *)xf->data)[i] = f;
    }
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
