/* cmd_predict.c - `nabla predict`: a trained model's predictions for new inputs, as lines people
 * read (the predicted class's name and index, its probability, the top K) or as a file of logits
 * or probabilities (.npy, CSV or JSON; "-" is standard output). The inputs are read by
 * predict_input.c; the units they are in are checked against the ones the model was trained in
 * (input_scale in the checkpoint) before anything is predicted. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "nabla.h"
#include "predict_input.h"
#include "tensor/fileio.h"

typedef enum { RANGE_AUTO, RANGE_255, RANGE_UNIT } input_range;

typedef struct predict_opts {
    const char *model, *input, *out, *format;
    bool probs;
    long long top;
    input_range range;
} predict_opts;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: nabla predict --model MODEL.safetensors --input INPUT [--top K]\n"
           "                     [--out FILE|-] [--format npy|csv|json] [--probs]\n"
           "                     [--input-range auto|0-255|0-1]\n"
           "  INPUT: a .npy ([N, D], [N, H, W] or one image [H, W] with H W = D; uint8, int or\n"
           "  float), an IDX file (plain or .gz), a .csv of D features per line (a header line\n"
           "  of names is skipped), a PNG or PGM (P5/P2) image, or a directory of them.\n"
           "  Without --out: one line per input, its predicted class (name and index) and\n"
           "  probability, and with --top K (default 1) the K most probable classes.\n"
           "  --out FILE|-: f32 logits [N, K] (probabilities with --probs) as CSV (FILE.csv),\n"
           "  JSON (FILE.json) or .npy (any other name), or as --format says; '-' is standard\n"
           "  output (CSV unless --format says otherwise).\n"
           "  Units: a model trained on raw pixels 0..255 (input_scale 1/255) given floats in\n"
           "  [0, 1] (PyTorch's ToTensor range) multiplies them by 255, with a note; values that\n"
           "  could be either are refused: say which with --input-range 0-255 or 0-1. The model's\n"
           "  recorded normalisation (and per-feature standardisation) is then applied. A NaN or\n"
           "  inf input is refused, naming its row and column.\n");
}

/* Returns -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, predict_opts *o)
{
    memset(o, 0, sizeof *o);
    o->top = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--probs")) {
            o->probs = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla predict: unknown option or missing value: '%s'\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--input"))
            o->input = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--format")) {
            o->format = v;
            if (strcmp(v, "npy") && strcmp(v, "csv") && strcmp(v, "json")) {
                fprintf(stderr, "nabla predict: --format '%s': expected npy, csv or json\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--top")) {
            if (!nb_cli_parse_int("predict", "--top", v, &o->top))
                return 2;
            if (o->top < 1) {
                fprintf(stderr, "nabla predict: --top %lld: expected K >= 1\n", o->top);
                return 2;
            }
        } else if (!strcmp(a, "--input-range")) {
            o->range = !strcmp(v, "auto")    ? RANGE_AUTO
                       : !strcmp(v, "0-255") ? RANGE_255
                       : !strcmp(v, "0-1")   ? RANGE_UNIT
                                             : -1;
            if ((int)o->range < 0) {
                fprintf(stderr, "nabla predict: --input-range '%s': expected auto, 0-255 or 0-1\n",
                        v);
                return 2;
            }
        } else {
            nb_cli_unknown_option("predict", a, usage);
            return 2;
        }
    }
    if (!o->model || !o->input) {
        fprintf(stderr, "nabla predict: --model and --input are required\n");
        return 2;
    }
    return -1;
}

/* The format of --out: --format, else .csv and .json by the extension, CSV for "-", and .npy
 * for any other name (as before CSV and JSON existed). */
static const char *out_format(const predict_opts *o)
{
    if (o->format)
        return o->format;
    size_t n = strlen(o->out);
    if (!strcmp(o->out, "-"))
        return "csv";
    if (n > 4 && !strcmp(o->out + n - 4, ".csv"))
        return "csv";
    if (n > 5 && !strcmp(o->out + n - 5, ".json"))
        return "json";
    return "npy";
}

/* The factor raw values are multiplied by before the model's scale and shift (1 or 255, or 1/255
 * for pixels given to a model of [0, 1] inputs): from --input-range, or told from the values.
 * 0 after a message when the units cannot be told or do not fit. */
static double input_factor(const predict_opts *o, const nb_model_info *info,
                           const nb_pred_input *in, int64_t D)
{
    bool model255 = fabs(info->input_scale * 255.0 - 1.0) < 1e-6;
    double lo = INFINITY, hi = -INFINITY;
    bool ints = true;
    for (int64_t i = 0; i < in->x->numel; i++) {
        double v = nb_tensor_get(in->x, i);
        if (!isfinite(v)) {
            fprintf(stderr,
                    "nabla predict: --input %s: row %lld, column %lld (from 0) is %g; the model "
                    "needs finite inputs\n",
                    o->input, (long long)(i / D), (long long)(i % D), v);
            return 0;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        ints = ints && v == floor(v);
    }
    const char *how = "say which units the input is in with --input-range 0-255 (pixels) or 0-1 "
                      "(pixels / 255)";
    if (o->range != RANGE_AUTO) {
        double top = o->range == RANGE_UNIT ? 1 : 255;
        if (lo < 0 || hi > top) {
            fprintf(stderr,
                    "nabla predict: --input %s holds values from %g to %g, outside the 0..%g of "
                    "--input-range %s\n",
                    o->input, lo, hi, top, o->range == RANGE_UNIT ? "0-1" : "0-255");
            return 0;
        }
        if (model255)
            return o->range == RANGE_UNIT ? 255 : 1;
        return o->range == RANGE_UNIT ? 1 : 1.0 / 255;
    }
    if (!model255) {
        if (!in->labels) /* features as the model was trained on them */
            return 1;
        fprintf(stderr,
                "nabla predict: --input %s: images are pixels 0..255, but %s was not trained on "
                "0..255 pixels (input_scale %g); if it was trained on pixels / 255 in [0, 1], add "
                "--input-range 0-255 to feed them divided by 255; otherwise give its inputs as "
                ".npy or CSV in the units it was trained on\n",
                o->input, o->model, info->input_scale);
        return 0;
    }
    if (in->pixels || (lo >= 0 && hi <= 255 && hi > 1))
        return 1; /* pixels 0..255 */
    if (lo >= 0 && hi <= 1 && !(ints && hi == 1)) {
        if (hi > 0)
            fprintf(stderr,
                    "nabla predict: note: --input %s holds values in [0, 1] and %s was trained on "
                    "pixels 0..255 (input_scale 1/255): they are multiplied by 255\n",
                    o->input, o->model);
        return 255;
    }
    if (lo >= 0 && hi <= 1)
        fprintf(stderr,
                "nabla predict: --input %s holds only the values 0 and 1, which could be [0, 1] "
                "floats or nearly black 0..255 pixels; %s\n",
                o->input, how);
    else
        fprintf(stderr,
                "nabla predict: --input %s holds values from %g to %g, neither pixels 0..255 "
                "nor [0, 1], and %s was trained on pixels 0..255 (input_scale 1/255); if they "
                "were normalised as (x - mean) / std, undo it (x * std + mean) and give pixels "
                "0..255 or [0, 1]\n",
                o->input, lo, hi, o->model);
    return 0;
}

/* Row i's label for messages and files: its file name, or "row i". */
static const char *row_label(const nb_pred_input *in, int64_t i, char *buf, size_t cap)
{
    if (in->labels)
        return in->labels[i];
    snprintf(buf, cap, "row %lld", (long long)i);
    return buf;
}

/* probs[k] = softmax(logits)[k] of one row of K, in double. */
static void softmax_row(const float *z, int64_t K, double *p)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t k = 0; k < K; k++)
        mx = z[k] > mx ? z[k] : mx;
    for (int64_t k = 0; k < K; k++)
        sum += (p[k] = exp((double)z[k] - mx));
    for (int64_t k = 0; k < K; k++)
        p[k] /= sum;
}

/* One line per row: "LABEL: NAME (k) 97.31%" and with --top K, " | NAME (k) 2.10%" for the next
 * most probable classes (ties: the lower index first). Without names: "class k". */
static int print_predictions(const predict_opts *o, const nb_model_info *info,
                             const nb_pred_input *in, const nb_tensor *logits)
{
    int64_t N = logits->shape[0], K = logits->shape[1], top = o->top < K ? o->top : K;
    double *p = malloc((size_t)K * sizeof *p);
    int64_t *order = malloc((size_t)top * sizeof *order);
    if (!p || !order) {
        free(p);
        free(order);
        fprintf(stderr, "nabla predict: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < N; i++) {
        char buf[32];
        softmax_row((const float *)logits->data + i * K, K, p);
        for (int64_t t = 0; t < top; t++) { /* selection: K is small, top smaller */
            int64_t best = -1;
            for (int64_t k = 0; k < K; k++) {
                bool taken = false;
                for (int64_t u = 0; u < t && !taken; u++)
                    taken = order[u] == k;
                if (!taken && (best < 0 || p[k] > p[best]))
                    best = k;
            }
            order[t] = best;
        }
        printf("%s:", row_label(in, i, buf, sizeof buf));
        for (int64_t t = 0; t < top; t++) {
            int64_t k = order[t];
            if (info->class_names && k < info->n_classes)
                printf("%s %s (%lld) %.2f%%", t ? " |" : "", info->class_names[k], (long long)k,
                       100.0 * p[k]);
            else
                printf("%s class %lld %.2f%%", t ? " |" : "", (long long)k, 100.0 * p[k]);
        }
        printf("\n");
    }
    free(p);
    free(order);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "nabla predict: writing standard output failed\n");
        return 1;
    }
    return 0;
}

/* ---- --out as CSV or JSON ---- */

typedef struct table {
    const predict_opts *o;
    const nb_model_info *info;
    const nb_pred_input *in;
    const nb_tensor *res; /* [N, K] logits or probabilities */
    const char *text;     /* JSON: the printed document */
} table;

/* A CSV field, quoted when it holds a comma, a quote or a line end (RFC 4180). */
static bool csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n"))
        return fputs(s, f) >= 0;
    if (fputc('"', f) == EOF)
        return false;
    for (; *s; s++)
        if ((*s == '"' && fputc('"', f) == EOF) || fputc(*s, f) == EOF)
            return false;
    return fputc('"', f) != EOF;
}

static int64_t argmax_row(const float *z, int64_t K)
{
    int64_t b = 0;
    for (int64_t k = 1; k < K; k++)
        if (z[k] > z[b])
            b = k;
    return b;
}

/* Header "input,predicted,<class names or class_k>...", then per row its label, the predicted
 * index and the K values (%.9g: f32 exactly). */
static bool fill_csv(FILE *f, void *vctx)
{
    const table *t = vctx;
    int64_t N = t->res->shape[0], K = t->res->shape[1];
    bool ok = fputs("input,predicted", f) >= 0;
    for (int64_t k = 0; ok && k < K; k++) {
        char name[32];
        snprintf(name, sizeof name, "class_%lld", (long long)k);
        ok = fputc(',', f) != EOF &&
             csv_field(f, t->info->class_names && k < t->info->n_classes ? t->info->class_names[k]
                                                                         : name);
    }
    ok = ok && fputc('\n', f) != EOF;
    for (int64_t i = 0; ok && i < N; i++) {
        char buf[32];
        const float *z = (const float *)t->res->data + i * K;
        ok = csv_field(f, row_label(t->in, i, buf, sizeof buf)) &&
             fprintf(f, ",%lld", (long long)argmax_row(z, K)) > 0;
        for (int64_t k = 0; ok && k < K; k++)
            ok = fprintf(f, ",%.9g", z[k]) > 0;
        ok = ok && fputc('\n', f) != EOF;
    }
    return ok;
}

static bool fill_text(FILE *f, void *vctx)
{
    const table *t = vctx;
    return fputs(t->text, f) >= 0 && fputc('\n', f) != EOF;
}

/* {"model": M, "values": "logits"|"probabilities", "classes": [names] or null,
 *  "rows": [{"input": label, "predicted": k, "name": name or null, "values": [K numbers]}]} */
static char *json_doc(const table *t)
{
    int64_t N = t->res->shape[0], K = t->res->shape[1];
    cJSON *d = cJSON_CreateObject(), *rows = cJSON_CreateArray();
    const char *const *names = (const char *const *)t->info->class_names;
    bool named = names && t->info->n_classes == K;
    bool ok = d && rows && cJSON_AddStringToObject(d, "model", t->o->model) &&
              cJSON_AddStringToObject(d, "values", t->o->probs ? "probabilities" : "logits") &&
              (named ? cJSON_AddItemToObject(d, "classes", cJSON_CreateStringArray(names, (int)K))
                     : cJSON_AddNullToObject(d, "classes") != NULL) &&
              cJSON_AddItemToObject(d, "rows", rows);
    if (!ok)
        cJSON_Delete(rows);
    for (int64_t i = 0; ok && i < N; i++) {
        char buf[32];
        const float *z = (const float *)t->res->data + i * K;
        int64_t b = argmax_row(z, K);
        cJSON *r = cJSON_CreateObject(), *v = cJSON_CreateFloatArray(z, (int)K);
        ok = r && v && cJSON_AddItemToArray(rows, r) && cJSON_AddItemToObject(r, "values", v);
        if (!ok) {
            cJSON_Delete(v);
            break;
        }
        ok = cJSON_AddStringToObject(r, "input", row_label(t->in, i, buf, sizeof buf)) &&
             cJSON_AddNumberToObject(r, "predicted", (double)b) &&
             (named ? cJSON_AddStringToObject(r, "name", names[b]) != NULL
                    : cJSON_AddNullToObject(r, "name") != NULL);
    }
    char *text = ok ? cJSON_Print(d) : NULL;
    cJSON_Delete(d);
    return text;
}

static int write_out(const predict_opts *o, const char *fmt, const nb_model_info *info,
                     const nb_pred_input *in, const nb_tensor *res)
{
    table t = {o, info, in, res, NULL};
    nb_status s;
    if (!strcmp(fmt, "npy")) {
        s = nb_npy_save(o->out, res);
    } else if (!strcmp(fmt, "csv")) {
        s = nb_write_atomically(o->out, "--out", fill_csv, &t);
    } else {
        char *text = json_doc(&t);
        t.text = text;
        s = text ? nb_write_atomically(o->out, "--out", fill_text, &t)
                 : nb_error(NB_ERR_NOMEM, "out of memory for the JSON document");
        free(text);
    }
    if (s != NB_OK) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        return 1;
    }
    return 0;
}

/* --out can be written and replaces neither input: checked before any work. */
static int check_out(const predict_opts *o, const char **fmt)
{
    if (!o->out)
        return 0;
    *fmt = out_format(o);
    if (nb_output_check(o->out, "nabla predict --out") != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    const char *ins[2][2] = {{"--model", o->model}, {"--input", o->input}};
    for (int i = 0; i < 2; i++)
        if (nb_output_same_file(o->out, ins[i][1])) {
            fprintf(stderr,
                    "nabla predict: --out '%s' is the same file as %s '%s'; writing it would "
                    "destroy the input (choose another output file)\n",
                    o->out, ins[i][0], ins[i][1]);
            return 1;
        }
    return 0;
}

/* x' = raw * factor * input_scale + input_shift as f32 [N, D], then the model's standardisation. */
static nb_tensor *model_inputs(const predict_opts *o, const nb_model_info *info,
                               const nb_pred_input *in, int64_t D, double factor)
{
    int64_t sx[2] = {in->n, D};
    nb_tensor *xf = nb_tensor_empty(NB_F32, 2, sx);
    if (!xf) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        return NULL;
    }
    for (int64_t i = 0; i < xf->numel; i++) {
        double v = nb_tensor_get(in->x, i);
        float f = (float)(v * factor * info->input_scale + info->input_shift);
        if (!isfinite(f)) {
            fprintf(stderr,
                    "nabla predict: --input %s: row %lld, column %lld (from 0) is %g, which "
                    "overflows f32 once scaled; the model needs finite inputs\n",
                    o->input, (long long)(i / D), (long long)(i % D), v);
            nb_tensor_free(xf);
            return NULL;
        }
        ((float *)xf->data)[i] = f;
    }
    if (info->input_mean &&
        nb_standardize_features(xf, info->input_mean, info->input_std) != NB_OK) {
        fprintf(stderr, "nabla predict: --input %s: %s\n", o->input, nb_last_error());
        nb_tensor_free(xf);
        return NULL;
    }
    return xf;
}

int nb_cmd_predict(int argc, char **argv)
{
    predict_opts o;
    const char *fmt = NULL;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if ((rc = check_out(&o, &fmt)) != 0)
        return rc;
    nb_model_info info;
    memset(&info, 0, sizeof info);
    nb_mlp *m = nb_model_load(o.model, &info, NULL);
    if (!m) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        return 1;
    }
    int64_t D = m->sizes[0];
    nb_pred_input in;
    nb_tensor *xf = NULL, *res = NULL;
    nb_graph *g = NULL;
    rc = nb_cli_read_pred_input(o.input, D, &in);
    double factor = rc ? 0 : input_factor(&o, &info, &in, D);
    if (factor != 0 && (xf = model_inputs(&o, &info, &in, D, factor)) != NULL) {
        nb_mlp_set_training(m, false);
        g = nb_graph_new();
        if (!g || nb_predict(g, nb_forward_mlp, m, xf, 1000, o.out && o.probs, &res) != NB_OK) {
            fprintf(stderr, "nabla predict: %s\n", nb_last_error());
            rc = 1;
        } else {
            rc = o.out ? write_out(&o, fmt, &info, &in, res)
                       : print_predictions(&o, &info, &in, res);
        }
    } else {
        rc = 1;
    }
    nb_graph_free(g);
    nb_tensor_free(xf);
    nb_tensor_free(res);
    nb_cli_pred_input_free(&in);
    nb_mlp_free(m);
    nb_model_info_free(&info);
    return rc;
}
