/* parse.c - the option-value parsers every subcommand shares (declared in cli.h). They live
 * apart from main.c so that the subcommands depend on this file, not on the program's entry
 * point (main.c calls the subcommands; nothing calls back into it). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

bool nb_cli_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0.0;
    if (!s || end == s || *end != '\0' || errno == ERANGE) {
        fprintf(stderr, "nabla %s: bad value for %s: '%s' (expected a number)\n", cmd, opt,
                s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool nb_cli_parse_int(const char *cmd, const char *opt, const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end != '\0' || errno == ERANGE) {
        fprintf(stderr, "nabla %s: bad value for %s: '%s' (expected an integer)\n", cmd, opt,
                s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* Levenshtein distance of a and b (both at most 63 bytes; longer: 99). */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b), row[64];
    if (la > 63 || lb > 63)
        return 99;
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

const char *nb_cli_nearest_option(const char *opt, const char *text, char *buf, size_t cap)
{
    const char *want = strncmp(opt, "--", 2) ? opt : opt + 2;
    int best = 3; /* at most 2 edits away */
    buf[0] = '\0';
    for (const char *p = text; (p = strstr(p, "--")) != NULL;) {
        p += 2;
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
        if (n == 0 || n >= 64 || n + 1 > cap)
            continue;
        char name[64];
        memcpy(name, p, n);
        name[n] = '\0';
        int d = edit_distance(want, name);
        if (d < best && d > 0) {
            best = d;
            memcpy(buf, name, n + 1);
        }
        p += n;
    }
    return buf[0] ? buf : NULL;
}

void nb_cli_unknown_option(const char *cmd, const char *opt, void (*usage)(FILE *))
{
    char *text = NULL, near[64];
    size_t len = 0;
    FILE *m = usage ? open_memstream(&text, &len) : NULL;
    if (m) {
        usage(m);
        fclose(m);
    }
    if (text && nb_cli_nearest_option(opt, text, near, sizeof near))
        fprintf(stderr, "nabla %s: unknown option '%s'; did you mean --%s?\n", cmd, opt, near);
    else
        fprintf(stderr, "nabla %s: unknown option '%s' (see nabla %s --help)\n", cmd, opt, cmd);
    free(text);
}

double nb_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nb_cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

nb_cli_timing nb_cli_summarise(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, nb_cli_cmp_double);
    nb_cli_timing r = {t[0] * 1e3, (n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2])) * 1e3,
                       t[n - 1] * 1e3};
    return r;
}
