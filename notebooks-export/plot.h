/* plot: the main figure of a probe result as PNG or SVG, without Python.
 *
 * probe reads the result (HDF5 or CSV, see result.h), writes a gnuplot script
 * with the data inline (datablocks), and runs Debian's gnuplot (gnuplot-nox:
 * terminals pngcairo and svg) on it.  The figures:
 *   activations  tokens x top neurons heatmap, one panel per layer (at most 6:
 *                the layers with the largest |activation|)
 *   values       top (green) and bottom (red) tokens of up to 4 neurons;
 *                with --promotes files: the neurons that promote the token most
 *   trace        logit lens: the target's probability and rank across layers,
 *                before and after each FFN (and in the intervened run) — HDF5
 *                only; a trace CSV gives the listed contributions per layer
 *   triggers     per-layer key-value agreement against chance, and where the
 *                next token ranks
 * Text goes through gnuplot's noenhanced mode, so token texts show verbatim.
 *
 * Limits: gnuplot must be installed (`make deps`); one figure per call. */
#ifndef PROBE_PLOT_H
#define PROBE_PLOT_H

#include "notebooks-export/result.h"

#define PLOT_MAX_NEURONS 8

typedef struct {
    int width, height; /* pixels (SVG: user units); 0 = a size that fits the panels */
    int prompt_id;     /* activations: the prompt to draw (default 0) */
    int position;      /* trace: the traced position; -1 = the last one */
    int layer;         /* activations: a single layer; -1 = the stored layers (at most 6) */
    int top;       /* neurons per panel (activations) or tokens per list (values); 0 = default */
    int n_neurons; /* values: chosen neurons (0 = the 4 with the highest max_logit) */
    int neuron_layer[PLOT_MAX_NEURONS], neuron_idx[PLOT_MAX_NEURONS];
    const char *gnuplot; /* program to run; NULL = "gnuplot" from PATH */
} plot_opts_t;

void plot_opts_default(plot_opts_t *o);

/* Draws R's main figure into OUT (.png or .svg by its extension), written to
 * a temporary and renamed when complete.  -1 with err set (bad option for
 * this file, missing data, gnuplot missing or failing — its message quoted). */
int plot_write(const res_info_t *r, const plot_opts_t *o, const char *out);

/* The gnuplot script plot_write would run, without running it (for tests
 * and --script).  Caller frees.  NULL with err set. */
char *plot_script(const res_info_t *r, const plot_opts_t *o, const char *out);

#endif
