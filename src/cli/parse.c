/* parse.c - the option-value parsers every subcommand shares (declared in cli.h). They live
 * apart from main.c so that the subcommands depend on this file, not on the program's entry
 * point (main.c calls the subcommands; nothing calls back into it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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
