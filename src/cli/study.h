/* study.h - what `nabla study` measures, shared between cmd_study.c (the measurements and
 * tables) and study_plot.c (the PNGs, with PLplot). src/cli only. */
#ifndef NABLA_CLI_STUDY_H
#define NABLA_CLI_STUDY_H

#include <stdint.h>

#include "nabla.h"

/* ---- precision sweep ---- */
enum { ST_F16, ST_BF16, ST_F32, ST_F64, ST_NPREC };
enum { SM_NAIVE, SM_STABLE, SM_FUSED, SM_NMETH };
#define ST_NSCALES 39 /* 1e0 .. 1e38 */
/* the swept row: scale * study_sweep_base, target class ST_SWEEP_Y (not the largest logit) */
#define ST_SWEEP_V 8
#define ST_SWEEP_Y 3
extern const double study_sweep_base[ST_SWEEP_V];

typedef struct study_precision {
    double scale[ST_NSCALES];
    /* loss relative error and gradient max abs error against a long-double truth computed from
     * the logits as stored in that precision; INFINITY = the result is not finite; NAN = the
     * logits themselves do not fit the format (f16 above 65504) */
    double loss_err[ST_NPREC][SM_NMETH][ST_NSCALES];
    double grad_err[ST_NPREC][SM_NMETH][ST_NSCALES];
    double loss[ST_NPREC][SM_NMETH][ST_NSCALES];
    double truth[ST_NPREC][ST_NSCALES];
} study_precision;

extern const char *const study_prec_names[ST_NPREC];
extern const char *const study_method_names[SM_NMETH];

/* ---- pitfalls ---- */
typedef struct study_pitfall {
    const char *name;  /* short id, also the TSV key */
    const char *bug;   /* what the code does wrong */
    const char *input; /* the concrete input */
    const char *cure;
    double bug_value;   /* what the buggy computation gives */
    double nabla_value; /* nabla's result on the same input */
    double truth;       /* the right value, computed independently (long double / by hand) */
} study_pitfall;
#define ST_NPITFALLS 5

/* ---- gradient picture ---- */
#define ST_GV 10
typedef struct study_gradient {
    int V;
    int y;
    double smoothing;
    double z[ST_GV], p[ST_GV];
    double target[2][ST_GV]; /* [0]: no smoothing, [1]: with */
    double dz[2][ST_GV];
} study_gradient;

/* Measurements (study_measure.c): NB_OK, or an error from the kernels / out of memory. */
nb_status study_measure_precision(study_precision *d);
nb_status study_measure_pitfalls(study_pitfall *pf); /* ST_NPITFALLS entries */
nb_status study_measure_gradient(study_gradient *d);

/* PNGs (study_plot.c). Return 0 ok, 1 after a message. */
int nb_study_plot_precision(const char *png, const study_precision *d);
int nb_study_plot_pitfalls(const char *png, const study_pitfall *p, int n);
int nb_study_plot_gradient(const char *png, const study_gradient *d);

#endif
