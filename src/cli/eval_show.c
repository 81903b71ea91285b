/* eval_show.c - `nabla eval`'s report and confusion-matrix PNG (eval_show.h). Class names, when
 * the checkpoint or the data has them, label the per-class lines in full and the confusion
 * matrix's rows and columns abbreviated to the column width ("Pullov." for "Pullover"). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "eval_show.h"
#include "plot.h"

/* Column width of the named confusion matrix and the longest row label. */
enum { NAMED_COL = 8, ROW_NAME = 12 };

/* s cut to at most w bytes; a cut name ends in '.' so it reads as abbreviated. */
static const char *abbrev(char *out, size_t cap, const char *s, size_t w)
{
    size_t n = strlen(s);
    if (w >= cap)
        w = cap - 1;
    if (n <= w) {
        memcpy(out, s, n + 1);
        return out;
    }
    size_t k = w - 1;
    while (k > 1 && s[k - 1] == ' ')
        k--;
    memcpy(out, s, k);
    out[k] = '.';
    out[k + 1] = 0;
    return out;
}

static void print_confusion(const nb_eval_result *r, const char *const *names)
{
    int64_t K = r->n_classes;
    printf("confusion matrix (rows: true class, columns: predicted):\n");
    if (!names) {
        printf("      ");
        for (int64_t j = 0; j < K; j++)
            printf("%6lld", (long long)j);
        printf("\n");
        for (int64_t c = 0; c < K; c++) {
            printf("%6lld", (long long)c);
            for (int64_t j = 0; j < K; j++)
                printf("%6lld", (long long)r->confusion[c * K + j]);
            printf("\n");
        }
        return;
    }
    char a[NAMED_COL + 1];
    printf("%*s", 4 + ROW_NAME, "");
    for (int64_t j = 0; j < K; j++)
        printf(" %*s", NAMED_COL - 1, abbrev(a, sizeof a, names[j], NAMED_COL - 1));
    printf("\n");
    for (int64_t c = 0; c < K; c++) {
        char rn[ROW_NAME + 1];
        printf("%3lld %-*s", (long long)c, ROW_NAME, abbrev(rn, sizeof rn, names[c], ROW_NAME));
        for (int64_t j = 0; j < K; j++)
            printf(" %*lld", NAMED_COL - 1, (long long)r->confusion[c * K + j]);
        printf("\n");
    }
}

void nb_cli_print_eval(const nb_eval_result *r, const char *const *names)
{
    int64_t K = r->n_classes, present = 0;
    int w = 0; /* the longest name, to align the figures */
    for (int64_t c = 0; names && c < K; c++)
        w = (int)strlen(names[c]) > w ? (int)strlen(names[c]) : w;
    char label[96];
#define LABEL(c)                                                                                   \
    (names ? snprintf(label, sizeof label, "class %2lld %s:", (long long)(c), names[c])            \
           : snprintf(label, sizeof label, "class %2lld:", (long long)(c)),                        \
     label)
    int lw = names ? 10 + w : 9; /* "class  k NAME:" */
    printf("loss %.4f  accuracy %.4f\n", r->loss, r->accuracy);
    printf("per-class accuracy:\n");
    for (int64_t c = 0; c < K; c++) {
        int64_t support = 0;
        for (int64_t j = 0; j < K; j++)
            support += r->confusion[c * K + j];
        present += support > 0;
        printf("  %-*s %.4f (%lld)\n", lw, LABEL(c), r->recall[c], (long long)support);
    }
    printf("per-class precision, recall and F1:\n");
    for (int64_t c = 0; c < K; c++)
        printf("  %-*s precision %.4f  recall %.4f  F1 %.4f\n", lw, LABEL(c), r->precision[c],
               r->recall[c], r->f1[c]);
#undef LABEL
    printf("macro F1 %.4f (mean over the %lld classes present)\n", r->macro_f1, (long long)present);
    print_confusion(r, names);
}

/* ---- the PNG ---- */

#ifdef NABLA_HAVE_PLPLOT
#include <plplot.h>

typedef struct confusion_plot {
    const nb_eval_result *r;
    const char *const *names;
    const char *title;
} confusion_plot;

static int draw_confusion(void *vctx)
{
    const confusion_plot *p = vctx;
    int64_t K = p->r->n_classes;
    PLFLT pos[2] = {0, 1}, red[2] = {1, 0.12}, green[2] = {1, 0.47}, blue[2] = {1, 0.71};
    plscmap1l(1, 2, pos, red, green, blue, NULL); /* white to blue */
    plvpor(0.22, 0.95, 0.12, 0.85);
    plwind(0, (PLFLT)K, 0, (PLFLT)K);
    char t[128], a[24];
    plschr(0.0, K > 12 ? 0.5 : 0.8);
    for (int64_t c = 0; c < K; c++) {
        int64_t row = 0;
        for (int64_t j = 0; j < K; j++)
            row += p->r->confusion[c * K + j];
        PLFLT y0 = (PLFLT)(K - 1 - c);
        for (int64_t j = 0; j < K; j++) {
            int64_t n = p->r->confusion[c * K + j];
            double frac = row ? (double)n / (double)row : 0;
            PLFLT bx[4] = {j, j + 1, j + 1, j}, by[4] = {y0, y0, y0 + 1, y0 + 1};
            plcol1(frac);
            plfill(4, bx, by);
            plcol0(frac > 0.5 ? NB_PLOT_COL_BG : NB_PLOT_COL_FG);
            snprintf(t, sizeof t, "%lld", (long long)n);
            plptex(j + 0.5, y0 + 0.4, 1.0, 0.0, 0.5, t);
        }
        plcol0(NB_PLOT_COL_FG);
        snprintf(a, sizeof a, "%lld", (long long)c);
        nb_cli_plot_text(t, sizeof t, p->names ? abbrev(a, sizeof a, p->names[c], 14) : a);
        plmtex("lv", 0.6, (K - c - 0.5) / (PLFLT)K, 1.0, t); /* row label, right-aligned */
        nb_cli_plot_text(t, sizeof t, p->names ? abbrev(a, sizeof a, p->names[c], 8) : a);
        plschr(0.0, K > 12 ? 0.45 : 0.65);
        plmtex("t", 0.7, (c + 0.5) / (PLFLT)K, 0.5, t); /* column label */
        plschr(0.0, K > 12 ? 0.5 : 0.8);
    }
    plcol0(NB_PLOT_COL_FG);
    plschr(0.0, 1.0);
    plbox("bc", 0, 0, "bc", 0, 0);
    plmtex("b", 2.0, 0.5, 0.5, "predicted class");
    plmtex("l", 11.0, 0.5, 0.5, "true class");
    nb_cli_plot_text(t, sizeof t, p->title);
    plmtex("t", 3.0, 0.5, 0.5, t);
    return 0;
}

int nb_cli_plot_confusion(const char *png, const nb_eval_result *r, const char *const *names,
                          const char *title)
{
    confusion_plot p = {r, names, title};
    return nb_cli_png_write("eval", png, 900, 800, draw_confusion, &p);
}
#else
int nb_cli_plot_confusion(const char *png, const nb_eval_result *r, const char *const *names,
                          const char *title)
{
    (void)r, (void)names, (void)title;
    return nb_cli_png_write("eval", png, 0, 0, NULL, NULL);
}
#endif
