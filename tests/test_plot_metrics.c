/* test_plot_metrics.c - the --metrics reader of `nabla plot` (src/cli/plot_metrics.c), without
 * PLplot: the current format (config, epochs with val_*, end record with the test figures),
 * the old one (per-epoch test_*), runs without a validation set, skipped unknown keys and
 * record kinds, and every refusal with the FILE:LINE its message names. Expected values are
 * the ones written in the files below. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/plot_metrics.h"

#define NB_TEST_TMP_TEMPLATE "/tmp/nabla_test_plot_metrics_XXXXXX"
#include "test_files.h"

static char err[4096]; /* what the last read printed on stderr */

/* Writes text to tmp_dir/name and reads it into m, stderr captured into err. */
static int read_text(const char *name, const char *text, size_t len, nb_plot_metrics *m)
{
    char path[256], errpath[256];
    tmp_path(path, sizeof path, name);
    tmp_path(errpath, sizeof errpath, "stderr.txt");
    write_all(path, text, len);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
    int rc = nb_plot_metrics_read(path, m);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    size_t n;
    unsigned char *b = read_all(errpath, &n);
    snprintf(err, sizeof err, "%.*s", (int)n, (const char *)b);
    free(b);
    return rc;
}

static const char new_format[] =
    "{\"config\": {\"data\": \"fashion-mnist\", \"hidden\": \"256,128\", \"lr\": \"0.002\"}, "
    "\"nabla\": \"0.3.0\", \"openblas_core\": \"Haswell\", \"threads\": 2, \"world_size\": 1}\n"
    "{\"epoch\": 1, \"train_loss\": 0.61, \"train_acc\": 0.78, \"val_loss\": 0.5, \"val_acc\": "
    "0.82, \"grad_norm\": 1.5, \"train_seconds\": 0.8, \"lr\": 0.002}\n"
    "\n"
    "{\"checkpoint\": \"model.st\", \"note\": [1, 2, {\"x\": null}]}\r\n"
    "{\"epoch\": 2, \"train_loss\": 0.45, \"train_acc\": 0.84, \"val_loss\": 0.44, \"val_acc\": "
    "0.845, \"grad_norm\": 1.3, \"train_seconds\": 0.8, \"lr\": 0.0018, \"future_key\": \"x\"}\r\n"
    "{\"epoch\": 3, \"train_loss\": 0.40, \"train_acc\": 0.86, \"val_loss\": 0.41, \"val_acc\": "
    "0.855, \"grad_norm\": 1.2, \"train_seconds\": 0.8, \"lr\": 0.0015}\n"
    "{\"end\": true, \"epochs_done\": 3, \"best_epoch\": 2, \"test_loss\": 0.42, \"test_acc\": "
    "0.851}\n";

static void test_new_format(void **state)
{
    (void)state;
    nb_plot_metrics m;
    assert_int_equal(read_text("new.jsonl", new_format, strlen(new_format), &m), 0);
    assert_string_equal(err, "");
    assert_int_equal(m.n, 3);
    assert_int_equal(m.held, NB_HELD_VAL);
    assert_string_equal(nb_plot_metrics_held_name(&m), "val");
    const double epoch[3] = {1, 2, 3}, tl[3] = {0.61, 0.45, 0.40}, ta[3] = {0.78, 0.84, 0.86};
    const double vl[3] = {0.5, 0.44, 0.41}, va[3] = {0.82, 0.845, 0.855};
    for (int i = 0; i < 3; i++) {
        assert_true(m.col[NB_PM_EPOCH][i] == epoch[i]);
        assert_true(m.col[NB_PM_TRAIN_LOSS][i] == tl[i]);
        assert_true(m.col[NB_PM_TRAIN_ACC][i] == ta[i]);
        assert_true(m.col[NB_PM_HELD_LOSS][i] == vl[i]);
        assert_true(m.col[NB_PM_HELD_ACC][i] == va[i]);
    }
    assert_int_equal(m.end_line, 7); /* config, epoch, blank, other record, epoch, epoch, end */
    assert_true(m.end_test);
    assert_true(m.test_loss == 0.42 && m.test_acc == 0.851);
    assert_true(m.best_epoch == 2 && m.epochs_done == 3);
    assert_string_equal(m.data, "fashion-mnist");
    assert_string_equal(m.hidden, "256,128");
    nb_plot_metrics_free(&m);
    assert_null(m.col[0]);
}

/* Before the validation split: no config, no end record, per-epoch test_loss/test_acc. */
static void test_old_format(void **state)
{
    (void)state;
    static const char old[] =
        "{\"epoch\": 1, \"train_loss\": 0.612345, \"train_acc\": 0.7812, \"test_loss\": 0.498765, "
        "\"test_acc\": 0.8221, \"train_seconds\": 1.2345, \"lr\": 0.002}\n"
        "{\"epoch\": 2, \"train_loss\": 0.421, \"train_acc\": 0.851, \"test_loss\": 0.431, "
        "\"test_acc\": 0.8455, \"train_seconds\": 1.199, \"lr\": 0.00146}\n";
    nb_plot_metrics m;
    assert_int_equal(read_text("old.jsonl", old, strlen(old), &m), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.held, NB_HELD_TEST);
    assert_string_equal(nb_plot_metrics_held_name(&m), "test");
    assert_true(m.col[NB_PM_HELD_LOSS][0] == 0.498765 && m.col[NB_PM_HELD_ACC][1] == 0.8455);
    assert_int_equal(m.end_line, 0);
    assert_false(m.end_test);
    assert_true(m.best_epoch == -1 && m.epochs_done == -1);
    assert_string_equal(m.data, "");
    nb_plot_metrics_free(&m);
}

/* A run without a validation set: train curves only; with and without a test set. */
static void test_train_only(void **state)
{
    (void)state;
    static const char with_test[] =
        "{\"epoch\": 1, \"train_loss\": 0.7, \"train_acc\": 0.7, \"lr\": 0.01}\n"
        "{\"epoch\": 2, \"train_loss\": 0.5, \"train_acc\": 0.8, \"lr\": 0.01}\n"
        "{\"end\": true, \"epochs_done\": 2, \"test_loss\": 0.55, \"test_acc\": 0.79}\n";
    static const char no_test[] = "{\"epoch\": 1, \"train_loss\": 0.7, \"train_acc\": 0.7}\n"
                                  "{\"end\": true, \"epochs_done\": 1}\n";
    nb_plot_metrics m;
    assert_int_equal(read_text("t.jsonl", with_test, strlen(with_test), &m), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.held, NB_HELD_NONE);
    assert_null(nb_plot_metrics_held_name(&m));
    assert_true(m.end_test && m.test_acc == 0.79 && m.test_loss == 0.55);
    assert_true(m.best_epoch == -1 && m.epochs_done == 2);
    nb_plot_metrics_free(&m);
    assert_int_equal(read_text("n.jsonl", no_test, strlen(no_test), &m), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.end_line, 2);
    assert_false(m.end_test);
    nb_plot_metrics_free(&m);
}

#define E1                                                                                         \
    "{\"epoch\": 1, \"train_loss\": 0.6, \"train_acc\": 0.8, \"val_loss\": 0.5, \"val_acc\": "     \
    "0.8}\n"
#define E2                                                                                         \
    "{\"epoch\": 2, \"train_loss\": 0.5, \"train_acc\": 0.8, \"val_loss\": 0.4, \"val_acc\": "     \
    "0.9}\n"
#define END "{\"end\": true, \"test_loss\": 0.4, \"test_acc\": 0.9}\n"

/* Each file is refused with a message holding "bad.jsonl:LINE: " and the needle. */
static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *needle;
        int line;
    } cases[] = {
        {E1 "not json\n", "not valid JSON", 2},
        {E1 E2 "{\"epoch\": 3, \"train_loss\": 0.42, \"train_acc\": oops}\n", "not valid JSON", 3},
        {E1 "{\"epoch\": 2} {\"epoch\": 3}\n", "unexpected text after the JSON object", 2},
        {E1 "[1, 2]\n", "expected a JSON object", 2},
        {E1 "3\n", "expected a JSON object", 2},
        {"{\"epoch\": 1, \"train_loss\": 0.6, \"train_acc\": 0.8, \"val_loss\": 0.5}\n",
         "missing key \"val_acc\"", 1},
        {E1 "{\"epoch\": 2, \"train_loss\": 0.5, \"train_acc\": 0.8}\n",
         "has no held-out keys (val_loss, val_acc), but the first epoch (line 1) has val_loss and "
         "val_acc",
         2},
        {E1 "{\"epoch\": 2, \"train_loss\": 0.5, \"train_acc\": 0.8, \"test_loss\": 0.4, "
            "\"test_acc\": 0.9}\n",
         "has test_loss and test_acc, but the first epoch (line 1) has val_loss and val_acc", 2},
        {"{\"epoch\": 1, \"train_loss\": 0.6, \"train_acc\": 0.8, \"val_loss\": 0.5, \"val_acc\": "
         "0.8, \"test_loss\": 0.5, \"test_acc\": 0.8}\n",
         "has both val_loss/val_acc and test_loss/test_acc", 1},
        {E1 END E2, "epoch 2 after the end record of line 2", 3},
        {E2 E1, "epoch 1 after epoch 2: epochs must increase", 2},
        {E1 E1, "epoch 1 after epoch 1: epochs must increase", 2},
        {E1 END END, "a second end record (the first is on line 2)", 3},
        {E1 "{\"end\": false}\n", "\"end\" is not true", 2},
        {E1 "{\"end\": true, \"test_loss\": 0.4, \"test_acc\": \"0.9\"}\n",
         "\"test_acc\" is not a number", 2},
        {E1 "{\"end\": true, \"test_loss\": 0.4}\n", "missing key \"test_acc\"", 2},
        {E1 "{\"epoch\": 2, \"train_loss\": 1e999, \"train_acc\": 0.8, \"val_loss\": 0.4, "
            "\"val_acc\": 0.9}\n",
         "\"train_loss\" is not finite", 2},
        {E1 "{\"train_loss\": 0.5, \"train_acc\": 0.8}\n", "missing key \"epoch\"", 2},
        {"{\"epoch\": 1, \"train_loss\": 0.6}\n", "missing key \"train_acc\"", 1},
        {"{\"epoch\": \"1\", \"train_loss\": 0.6, \"train_acc\": 0.8}\n",
         "\"epoch\" is not a number", 1},
        {"{\"config\": 3}\n" E1, "\"config\" is not an object", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_plot_metrics m;
        int rc = read_text("bad.jsonl", cases[i].text, strlen(cases[i].text), &m);
        char where[64];
        snprintf(where, sizeof where, "bad.jsonl:%d: ", cases[i].line);
        if (rc != -1 || !strstr(err, where) || !strstr(err, cases[i].needle))
            fail_msg("case %zu: rc %d, stderr '%s'; expected -1 and '%s' '%s'", i, rc, err, where,
                     cases[i].needle);
        nb_plot_metrics_free(&m);
    }
}

/* Files without a single epoch: empty, blank, only other records. */
static void test_no_epochs(void **state)
{
    (void)state;
    const char *texts[] = {"", "\n  \n", "{\"config\": {}}\n{\"end\": true}\n", "{\"x\": 1}\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        nb_plot_metrics m;
        assert_int_equal(read_text("none.jsonl", texts[i], strlen(texts[i]), &m), -1);
        if (!strstr(err, "none.jsonl: no epochs"))
            fail_msg("case %zu: stderr '%s'", i, err);
        nb_plot_metrics_free(&m);
    }
}

/* A line over NB_PLOT_MAX_LINE bytes and a NUL inside a line are refused with their line. */
static void test_long_line_and_nul(void **state)
{
    (void)state;
    size_t n = NB_PLOT_MAX_LINE + 100;
    char *text = malloc(n + 200);
    assert_non_null(text);
    int k = snprintf(text, 200, "%s{\"epoch\": 2, \"pad\": \"", E1);
    memset(text + k, 'x', n);
    strcpy(text + k + n, "\"}\n");
    nb_plot_metrics m;
    assert_int_equal(read_text("long.jsonl", text, strlen(text), &m), -1);
    assert_non_null(strstr(err, "long.jsonl:2: line 2 longer than 65536 bytes"));
    nb_plot_metrics_free(&m);
    free(text);

    static const char nul[] = E1 "{\"epoch\": 2,\0 \"train_loss\": 1}\n";
    assert_int_equal(read_text("nul.jsonl", nul, sizeof nul - 1, &m), -1);
    assert_non_null(strstr(err, "nul.jsonl:2: "));
    nb_plot_metrics_free(&m);
}

/* A FIFO is refused at open, without blocking (the alarm ends a reader that waits). */
static void test_fifo_refused(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof path, "fifo.jsonl");
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(20);
    nb_plot_metrics m;
    assert_int_equal(nb_plot_metrics_read(path, &m), -1);
    alarm(0);
    nb_plot_metrics_free(&m);
    tmp_path(path, sizeof path, "missing.jsonl");
    assert_int_equal(nb_plot_metrics_read(path, &m), -1);
    nb_plot_metrics_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_new_format, clean_each),
        cmocka_unit_test_teardown(test_old_format, clean_each),
        cmocka_unit_test_teardown(test_train_only, clean_each),
        cmocka_unit_test_teardown(test_refused, clean_each),
        cmocka_unit_test_teardown(test_no_epochs, clean_each),
        cmocka_unit_test_teardown(test_long_line_and_nul, clean_each),
        cmocka_unit_test_teardown(test_fifo_refused, clean_each),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
