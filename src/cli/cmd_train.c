/* cmd_train.c - `nabla train`: an MLP classifier from the command line. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nabla.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nabla train [options]\n"
            "  --data SPEC          fashion-mnist | mnist | spirals | FILE.csv | X.npy,y.npy\n"
            "                       (default: Fashion-MNIST, or spirals when it is not installed)\n"
            "  --data-dir DIR       where the IDX files are (default %s)\n"
            "  --val-frac F         validation fraction for CSV/.npy data (default 0.1)\n"
            "  --hidden 256,128     hidden layer sizes (default 256,128)\n"
            "  --activation A       relu | tanh | gelu | sigmoid | leaky_relu (default relu)\n"
            "  --init I             default (PyTorch) | xavier | he\n"
            "  --dropout P          dropout after each hidden layer (default 0)\n"
            "  --epochs E           (default 10)\n"
            "  --batch B            (default 128)\n"
            "  --optim O            adam | adamw | sgd (default adamw)\n"
            "  --lr LR              peak learning rate (default 2e-3)\n"
            "  --weight-decay W     (default 1e-4 for adamw, 0 otherwise)\n"
            "  --momentum M         SGD momentum (default 0.9 for sgd)\n"
            "  --nesterov           SGD Nesterov momentum\n"
            "  --schedule S         constant | step | cosine (default cosine)\n"
            "  --warmup STEPS       linear warm-up steps (default 200)\n"
            "  --label-smoothing A  (default 0.1)\n"
            "  --clip-norm C        clip the global gradient norm to C (default off)\n"
            "  --seed S             (default 1)\n"
            "  --threads T          OpenBLAS threads (default 1)\n"
            "  --save MODEL.safetensors   checkpoint after every epoch (atomic)\n"
            "  --metrics FILE.jsonl one JSON object per epoch\n"
            "  --plot FILE.png      loss and accuracy curves (needs --metrics or writes its own)\n"
            "  --quiet              no per-epoch output\n",
            nb_cli_default_data_dir());
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_sizes(const char *s, int64_t *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > (1 << 20) || (*end && *end != ',') || n >= max)
            return -1;
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* Loss sum and correct count of m over ds, in batches, no gradient. */
static nb_status evaluate(nb_graph *g, nb_mlp *m, const nb_dataset *ds, double *loss_sum,
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

static void progress(int epoch, int epochs, int64_t b, int64_t nb, double t0, double loss)
{
    double el = now() - t0, rate = el > 0 ? (double)b / el : 0;
    double eta = rate > 0 ? (double)(nb - b) / rate : 0;
    int w = 30, fill = (int)(w * b / (nb ? nb : 1));
    char bar[64];
    for (int i = 0; i < w; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[w] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld  %.0f batch/s  loss %.4f  ETA %.0fs ", epoch,
            epochs, bar, (long long)b, (long long)nb, rate, loss, eta);
    fflush(stderr);
}

int nb_cmd_train(int argc, char **argv)
{
    const char *data = "auto", *dir = NULL, *save = NULL, *metrics = NULL, *plot = NULL;
    const char *hidden = "256,128";
    nb_activation act = NB_ACT_RELU;
    nb_init init = NB_INIT_DEFAULT;
    nb_optim_kind okind = NB_OPTIM_ADAMW;
    nb_sched_kind skind = NB_SCHED_COSINE;
    long long epochs = 10, batch = 128, warmup = 200, seed = 1, threads = 1;
    double lr = -1, wd = -1, momentum = -1, smoothing = 0.1, clip = 0, dropout = 0, val = 0.1;
    bool nesterov = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(k, "--nesterov")) {
            nesterov = true;
            continue;
        }
        if (!strcmp(k, "--quiet")) {
            quiet = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla train: unknown option or missing value: '%s'\n", k);
            return 2;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(k, "--data"))
            data = v;
        else if (!strcmp(k, "--data-dir"))
            dir = v;
        else if (!strcmp(k, "--save"))
            save = v;
        else if (!strcmp(k, "--metrics"))
            metrics = v;
        else if (!strcmp(k, "--plot"))
            plot = v;
        else if (!strcmp(k, "--hidden"))
            hidden = v;
        else if (!strcmp(k, "--activation"))
            ok = nb_activation_parse(v, &act);
        else if (!strcmp(k, "--init"))
            ok = nb_init_parse(v, &init);
        else if (!strcmp(k, "--optim"))
            ok = nb_optim_kind_parse(v, &okind);
        else if (!strcmp(k, "--schedule"))
            ok = nb_sched_kind_parse(v, &skind);
        else if (!strcmp(k, "--epochs"))
            ok = nb_cli_parse_int("train", k, v, &epochs) && epochs >= 1 && epochs <= 100000;
        else if (!strcmp(k, "--batch"))
            ok = nb_cli_parse_int("train", k, v, &batch) && batch >= 1 && batch <= 1000000;
        else if (!strcmp(k, "--warmup"))
            ok = nb_cli_parse_int("train", k, v, &warmup) && warmup >= 0;
        else if (!strcmp(k, "--seed"))
            ok = nb_cli_parse_int("train", k, v, &seed);
        else if (!strcmp(k, "--threads"))
            ok = nb_cli_parse_int("train", k, v, &threads) && threads >= 1 && threads <= 256;
        else if (!strcmp(k, "--lr"))
            ok = nb_cli_parse_double("train", k, v, &lr) && lr > 0 && isfinite(lr);
        else if (!strcmp(k, "--weight-decay"))
            ok = nb_cli_parse_double("train", k, v, &wd) && wd >= 0 && isfinite(wd);
        else if (!strcmp(k, "--momentum"))
            ok = nb_cli_parse_double("train", k, v, &momentum) && momentum >= 0 && momentum < 1;
        else if (!strcmp(k, "--label-smoothing"))
            ok = nb_cli_parse_double("train", k, v, &smoothing) && smoothing >= 0 && smoothing < 1;
        else if (!strcmp(k, "--clip-norm"))
            ok = nb_cli_parse_double("train", k, v, &clip) && clip > 0 && isfinite(clip);
        else if (!strcmp(k, "--dropout"))
            ok = nb_cli_parse_double("train", k, v, &dropout) && dropout >= 0 && dropout < 1;
        else if (!strcmp(k, "--val-frac"))
            ok = nb_cli_parse_double("train", k, v, &val) && val > 0 && val < 1;
        else {
            fprintf(stderr, "nabla train: unknown option '%s'\n", k);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "nabla train: bad value for %s: '%s' (see nabla train --help)\n", k, v);
            return 2;
        }
    }
    int64_t sizes[NB_MLP_MAX_LAYERS + 1];
    int nh = parse_sizes(hidden, sizes + 1, NB_MLP_MAX_LAYERS - 1);
    if (nh < 0) {
        fprintf(stderr, "nabla train: --hidden '%s': expected sizes like 256,128\n", hidden);
        return 2;
    }
    nb_set_num_threads((int)threads);

    nb_dataset tr, te;
    int rc = nb_cli_load_data("train", data, dir, (uint64_t)seed, val, &tr, &te, quiet);
    if (rc)
        return rc;
    sizes[0] = tr.X->shape[1];
    sizes[nh + 1] = tr.n_classes > te.n_classes ? tr.n_classes : te.n_classes;
    nb_mlp *m = nb_mlp_new(sizes, nh + 2, act, init, dropout, NB_F32, (uint64_t)seed);
    nb_tensor *params[2 * NB_MLP_MAX_LAYERS];
    int np = nb_mlp_param_count(m);
    for (int i = 0; i < np; i++)
        params[i] = nb_mlp_param(m, i, NULL, 0);
    nb_optim_config oc = nb_optim_defaults(okind);
    if (okind == NB_OPTIM_ADAMW)
        oc.weight_decay = 1e-4;
    if (okind == NB_OPTIM_SGD)
        oc.momentum = 0.9, oc.lr = 0.05;
    if (okind != NB_OPTIM_SGD)
        oc.lr = 2e-3;
    if (lr > 0)
        oc.lr = lr;
    if (wd >= 0)
        oc.weight_decay = wd;
    if (momentum >= 0)
        oc.momentum = momentum;
    oc.nesterov = nesterov;
    nb_optim *opt = m ? nb_optim_new(&oc, params, np) : NULL;
    int64_t N = tr.X->shape[0], D = tr.X->shape[1];
    int64_t steps_per_epoch = (N + batch - 1) / batch;
    nb_schedule sched = {skind, oc.lr, warmup, steps_per_epoch * epochs, steps_per_epoch * 3, 0.5,
                         0.0};
    int64_t sx[2] = {batch, D}, sy[1] = {batch};
    nb_tensor *xb = nb_tensor_zeros(NB_F32, 2, sx), *yb = nb_tensor_zeros(NB_I32, 1, sy);
    nb_graph *g = nb_graph_new();
    nb_batcher bt;
    memset(&bt, 0, sizeof bt);
    FILE *mf = NULL;
    char tmp_metrics[1100] = "";
    if (!m || !opt || !xb || !yb || !g ||
        nb_batcher_init(&bt, &tr, batch, true, (uint64_t)seed) != NB_OK) {
        fprintf(stderr, "nabla train: %s\n", nb_last_error());
        rc = 1;
        goto out;
    }
    if (plot && !metrics) {
        snprintf(tmp_metrics, sizeof tmp_metrics, "%s.metrics.jsonl", plot);
        metrics = tmp_metrics;
    }
    if (metrics && !(mf = fopen(metrics, "w"))) {
        fprintf(stderr, "nabla train: cannot write --metrics %s\n", metrics);
        rc = 1;
        goto out;
    }
    bool tty = !quiet && isatty(fileno(stderr));
    if (!quiet)
        printf("nabla train: %s, %lld train / %lld test, MLP %s (%lld parameters), %s lr %g, "
               "%s schedule, batch %lld, smoothing %g, %lld thread%s\n",
               tr.name, (long long)N, (long long)te.X->shape[0], hidden,
               (long long)nb_mlp_numel(m), nb_optim_kind_name(okind), oc.lr,
               skind == NB_SCHED_COSINE ? "cosine" : skind == NB_SCHED_STEP ? "step" : "constant",
               batch, smoothing, threads, threads == 1 ? "" : "s");
    nb_xent_opts xo = nb_xent_defaults();
    xo.label_smoothing = smoothing;
    xo.reduction = NB_REDUCTION_MEAN;
    nb_xent_stats stats;
    xo.stats = &stats;
    int64_t step = 0;
    for (long long e = 1; e <= epochs; e++) {
        double t0 = now(), loss_sum = 0;
        int64_t correct = 0, seen = 0, b = 0;
        nb_mlp_set_training(m, true);
        while (nb_batcher_next(&bt, xb, yb)) {
            nb_optim_set_lr(opt, nb_schedule_lr(&sched, step));
            nb_graph_reset(g);
            nb_tensor *logits = nb_mlp_forward(g, m, xb);
            nb_tensor *L = nb_cross_entropy(g, logits, yb, &xo);
            if (!L || nb_backward(g, L, NULL) != NB_OK) {
                fprintf(stderr, "\nnabla train: %s\n", nb_last_error());
                rc = 1;
                goto out;
            }
            double lv = nb_tensor_get(L, 0);
            if (!isfinite(lv)) {
                fprintf(stderr, "\nnabla train: loss became %g at epoch %lld step %lld; stopping "
                                "(the last checkpoint, if any, is kept). Try a lower --lr or "
                                "--clip-norm.\n",
                        lv, e, (long long)step);
                rc = 1;
                goto out;
            }
            if (clip > 0)
                nb_clip_grad_norm(params, np, clip, NULL);
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            step++;
            b++;
            int64_t n = xb->shape[0], K = logits->shape[1];
            loss_sum += lv * (double)n;
            const float *lg = logits->data;
            for (int64_t i = 0; i < n; i++) {
                int64_t best = 0;
                for (int64_t c = 1; c < K; c++)
                    if (lg[i * K + c] > lg[i * K + best])
                        best = c;
                correct += best == ((int32_t *)yb->data)[i];
            }
            seen += n;
            if (tty && (b % 20 == 0 || b == steps_per_epoch))
                progress((int)e, (int)epochs, b, steps_per_epoch, t0, loss_sum / (double)seen);
        }
        double train_s = now() - t0;
        if (tty)
            fprintf(stderr, "\r%*s\r", 100, "");
        double test_loss;
        int64_t test_correct;
        if (evaluate(g, m, &te, &test_loss, &test_correct, NULL) != NB_OK) {
            fprintf(stderr, "nabla train: %s\n", nb_last_error());
            rc = 1;
            goto out;
        }
        int64_t NT = te.X->shape[0];
        double tr_loss = loss_sum / (double)seen, tr_acc = (double)correct / (double)seen;
        double te_loss = test_loss / (double)NT, te_acc = (double)test_correct / (double)NT;
        if (!quiet)
            printf("epoch %3lld  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.2fs  lr %.3g\n",
                   e, tr_loss, tr_acc, te_loss, te_acc, train_s, nb_optim_lr(opt));
        fflush(stdout);
        if (mf) {
            fprintf(mf,
                    "{\"epoch\": %lld, \"train_loss\": %.6f, \"train_acc\": %.6f, \"test_loss\": "
                    "%.6f, \"test_acc\": %.6f, \"train_seconds\": %.4f, \"lr\": %.6g}\n",
                    e, tr_loss, tr_acc, te_loss, te_acc, train_s, nb_optim_lr(opt));
            fflush(mf);
        }
        if (save) {
            nb_model_info info = {tr.input_scale, tr.input_shift, sizes[nh + 1], e, ""};
            snprintf(info.dataset, sizeof info.dataset, "%s", tr.name);
            if (nb_model_save(save, m, &info, opt) != NB_OK) {
                fprintf(stderr, "nabla train: --save %s: %s\n", save, nb_last_error());
                rc = 1;
                goto out;
            }
        }
    }
    if (save && !quiet)
        printf("saved %s\n", save);
    if (mf) {
        if (fclose(mf) != 0) {
            mf = NULL;
            fprintf(stderr, "nabla train: error writing %s\n", metrics);
            rc = 1;
            goto out;
        }
        mf = NULL;
    }
    if (plot) {
        rc = nb_cli_plot_metrics(metrics, plot);
        if (rc == 0 && !quiet)
            printf("plotted %s\n", plot);
    }
out:
    if (mf)
        fclose(mf);
    nb_batcher_free(&bt);
    nb_graph_free(g);
    nb_tensor_free(xb);
    nb_tensor_free(yb);
    nb_optim_free(opt);
    nb_mlp_free(m);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
    return rc;
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
    if (!strcmp(data, "fashion-mnist-train"))
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
    } else if (!conf || !g || evaluate(g, m, ds, &loss, &correct, conf) != NB_OK) {
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
        fprintf(stderr, "nabla predict: --input %s is %s %s; the model expects uint8 or float "
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
        ((float *)xf->data)[i] =
            (float)(nb_tensor_get(x, i) * info.input_scale + info.input_shift);
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
