/* train_outputs.c - what `nabla train` writes and how it stops: the up-front check of every
 * output, the --metrics writer, and SIGINT/SIGTERM (see train_outputs.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tensor/fileread.h"
#include "train_outputs.h"

static const char *const metrics_who = "nabla train --metrics";

static bool metrics_append(metrics_out *mo, const char *text)
{
    size_t n = strlen(text);
    if (mo->len + n + 1 > mo->cap) {
        size_t cap = (mo->len + n + 1) * 2;
        char *b = realloc(mo->buf, cap);
        if (!b)
            return false;
        mo->buf = b;
        mo->cap = cap;
    }
    memcpy(mo->buf + mo->len, text, n + 1);
    mo->len += n;
    return true;
}

static bool fill_metrics(FILE *f, void *ctx)
{
    const metrics_out *mo = ctx;
    return fwrite(mo->buf, 1, mo->len, f) == mo->len;
}

/* Opens --metrics with its first line head; on resume (first > 1) keeps the epoch lines of epochs
 * before `first` of an existing file (a run killed after an epoch's line but before its
 * checkpoint would otherwise repeat it); its other lines (configuration, end) are replaced.
 * 0 ok, 1 after a message. */
int nb_train_metrics_open(metrics_out *mo, const char *path, long long first, const char *head,
                          const char *run_key)
{
    memset(mo, 0, sizeof *mo);
    mo->path = path;
    mo->stream = nb_output_is_stream(path);
    if (mo->stream) {
        if (nb_output_open(&mo->out, path, metrics_who) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
        if (nb_train_metrics_line(mo, head) != 0) { /* a full device: release it */
            nb_output_abort(&mo->out);
            return 1;
        }
        return 0;
    }
    if (!metrics_append(mo, head)) {
        fprintf(stderr, "nabla train: --metrics %s: out of memory\n", path);
        return 1;
    }
    struct stat sb;
    if (first <= 1 || (stat(path, &sb) != 0 && errno == ENOENT))
        return 0;                                       /* nothing to keep */
    FILE *f = nb_open_regular(path, metrics_who, NULL); /* never blocks on a FIFO put there */
    if (!f) {
        fprintf(stderr, "%s\n", nb_last_error());
        free(mo->buf);
        mo->buf = NULL;
        return 1;
    }
    char line[4096];
    int rc = 0;
    if (fgets(line, sizeof line, f) && !strncmp(line, "{\"config\": ", 11) && run_key &&
        !strstr(line, run_key)) {
        fprintf(stderr,
                "nabla train: --metrics %s holds another run's metrics (its first line is not "
                "this run's configuration, %s); give another file, or remove it\n",
                path, run_key);
        fclose(f);
        free(mo->buf);
        mo->buf = NULL;
        return 1;
    }
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        long long e;
        if (sscanf(line, "{\"epoch\": %lld", &e) == 1 && e < first && strchr(line, '\n') &&
            !metrics_append(mo, line)) {
            fprintf(stderr, "nabla train: --metrics %s: out of memory\n", path);
            rc = 1;
            break;
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "nabla train: --metrics %s: read error: %s\n", path, strerror(errno));
        rc = 1;
    }
    fclose(f); /* read-only */
    if (rc) {  /* the caller closes only what opened */
        free(mo->buf);
        mo->buf = NULL;
    }
    return rc;
}

/* Adds one line and writes it out. 0 ok, 1 after a message. */
int nb_train_metrics_line(metrics_out *mo, const char *line)
{
    if (mo->stream) {
        FILE *f = mo->out.f;
        if (fputs(line, f) < 0 || fflush(f) != 0) {
            fprintf(stderr, "%s: '%s': writing failed: %s\n", metrics_who, mo->path,
                    strerror(errno));
            return 1;
        }
        return 0;
    }
    if (!metrics_append(mo, line)) {
        fprintf(stderr, "nabla train: --metrics %s: out of memory\n", mo->path);
        return 1;
    }
    if (nb_write_atomically(mo->path, metrics_who, fill_metrics, mo) != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    mo->written = true;
    return 0;
}

/* Ends the run's metrics: a stream is flushed and closed; a file that no epoch wrote (a
 * finished run resumed) gets the lines it keeps. ok = false: just release. 0 ok, 1 after a
 * message. */
int nb_train_metrics_close(metrics_out *mo, bool ok)
{
    int rc = 0;
    if (mo->stream && mo->out.f) {
        if (!ok)
            nb_output_abort(&mo->out);
        else if (nb_output_finish(&mo->out, true) != NB_OK || nb_output_commit(&mo->out) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            rc = 1;
        }
    } else if (ok && !mo->stream && mo->path && !mo->written &&
               nb_write_atomically(mo->path, metrics_who, fill_metrics, mo) != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        rc = 1;
    }
    free(mo->buf);
    memset(mo, 0, sizeof *mo);
    return rc;
}

/* Every output can be written (a directory, a missing directory... fail here, before any
 * work), no two outputs are the same file, and none is an input it would destroy (--save may
 * be the --resume checkpoint: that is how a run continues in place). 0 ok, 1 after a message. */
int nb_train_check_outputs(const char *save, const char *metrics, const char *plot,
                           const char *resume, const char *data)
{
    const char *outs[3][2] = {{"--save", save}, {"--metrics", metrics}, {"--plot", plot}};
    if (save && !strcmp(save, "-")) {
        fprintf(stderr, "nabla train: --save -: a checkpoint cannot go to standard output\n");
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        if (!outs[i][1])
            continue;
        char who[32];
        snprintf(who, sizeof who, "nabla train %s", outs[i][0]);
        if (nb_output_check(outs[i][1], who) != NB_OK) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
        for (int j = 0; j < i; j++)
            if (outs[j][1] && nb_output_same_file(outs[j][1], outs[i][1])) {
                fprintf(stderr,
                        "nabla train: %s '%s' and %s '%s' name the same file; give each output "
                        "its own file\n",
                        outs[j][0], outs[j][1], outs[i][0], outs[i][1]);
                return 1;
            }
        if (i > 0 && resume && nb_output_same_file(outs[i][1], resume)) {
            fprintf(stderr,
                    "nabla train: %s '%s' is the same file as --resume '%s'; writing it would "
                    "destroy the checkpoint (choose another output file)\n",
                    outs[i][0], outs[i][1], resume);
            return 1;
        }
        /* the data files: FILE.csv or X.npy,y.npy */
        char spec[4096];
        snprintf(spec, sizeof spec, "%s", data);
        for (char *p = spec, *q; p; p = q) {
            q = strchr(p, ',');
            if (q)
                *q++ = '\0';
            struct stat sb;
            if (*p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode) &&
                nb_output_same_file(outs[i][1], p)) {
                fprintf(stderr,
                        "nabla train: %s '%s' is the same file as the --data file '%s'; writing "
                        "it would destroy the data (choose another output file)\n",
                        outs[i][0], outs[i][1], p);
                return 1;
            }
        }
    }
    return 0;
}

/* SIGINT/SIGTERM: the handler only records the signal; the loop stops at the next step
 * boundary (a checkpoint being written is finished first), says where the last checkpoint is
 * and exits 128 + the signal. */
volatile sig_atomic_t nb_train_stop_signal;

static void on_stop_signal(int sig)
{
    nb_train_stop_signal = sig;
}

void nb_train_signals_install(struct sigaction old[2])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* a write in progress completes */
    sigemptyset(&sa.sa_mask);
    nb_train_stop_signal = 0;
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
    /* a signal ignored by whoever started us (a background job of a script, nohup) stays so */
    if (old[0].sa_handler == SIG_IGN)
        sigaction(SIGINT, &old[0], NULL);
    if (old[1].sa_handler == SIG_IGN)
        sigaction(SIGTERM, &old[1], NULL);
}

void nb_train_signals_restore(const struct sigaction old[2])
{
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
}

/* s quoted for a POSIX shell when it needs it */
static void shell_word(char *buf, size_t cap, size_t *len, const char *s)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./,:=+-@%", *p))
            plain = false;
    size_t n = *len;
    n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, " %s", plain ? "" : "'");
    for (const char *p = s; *p; p++)
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, *p == '\'' ? "'\\''" : "%c", *p);
    if (!plain)
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "'");
    *len = n;
}

/* The message after SIGINT/SIGTERM: where the last good checkpoint is and the exact command
 * that continues from it. */
void nb_train_report_interrupted(int argc, char **argv, const char *save, int sig, long long epoch,
                                 long long step, const char *ck, long long ck_epoch,
                                 long long ck_step)
{
    fprintf(stderr, "\nnabla train: stopped by %s at epoch %lld, step %lld.\n",
            sig == SIGINT ? "SIGINT (Ctrl-C)" : "SIGTERM", epoch, step);
    if (!ck) {
        fprintf(stderr,
                save ? "nabla train: no checkpoint was written yet (--save %s is written at "
                       "the end of each epoch, and every N steps with --save-every N); "
                       "nothing to resume from.\n"
                     : "nabla train: no checkpoint%s: train with --save FILE (and "
                       "--save-every N) to be able to resume.\n",
                save ? save : "");
        return;
    }
    char cmd[8192];
    size_t len = (size_t)snprintf(cmd, sizeof cmd, "nabla train");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resume") && i + 1 < argc) {
            i++;
            continue;
        }
        shell_word(cmd, sizeof cmd, &len, argv[i]);
    }
    shell_word(cmd, sizeof cmd, &len, "--resume");
    shell_word(cmd, sizeof cmd, &len, ck);
    if (ck_step >= 0)
        fprintf(stderr, "nabla train: the last checkpoint is %s (epoch %lld, step %lld).\n", ck,
                ck_epoch, ck_step);
    else
        fprintf(stderr, "nabla train: the last checkpoint is %s (the one resumed from).\n", ck);
    fprintf(stderr, "nabla train: continue with:\n  %s\n", len < sizeof cmd ? cmd : "(too long)");
}
