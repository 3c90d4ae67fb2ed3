/* notebook: a Jupyter notebook (nbformat 4.5) that loads one probe result and
 * plots it.
 *
 * The cells come from templates in notebooks-export/templates/, compiled into
 * the binary (the Makefile turns them into a C array with embed.sh), so
 * `probe notebook` works from any directory and needs no data files.  A
 * template is a Python file in the "percent" cell format that Jupytext, VS
 * Code and Spyder read:
 *
 *     # %% [markdown]                  a markdown cell; lines lose their "# "
 *     # %% tags=["plot"]               a code cell tagged "plot" (it draws)
 *     # %% requires=h5,!intervened     kept only if the result has feature h5
 *                                      and not feature intervened (result.h)
 *
 * and {{name}} placeholders: result, result_abs (Python string literals of
 * the result's path relative to the notebook and absolute), trig_main,
 * trig_stats, trig_hist, trig_agree (literals or None), title and meta
 * (markdown).  A notebook is header.md + common.py + KIND.py.
 *
 * The notebook depends on numpy, pandas, h5py and matplotlib only. */
#ifndef PROBE_NOTEBOOK_H
#define PROBE_NOTEBOOK_H

#include "notebooks-export/result.h"

#include <jansson.h>
#include <stddef.h>

/* One embedded template (generated table; see embed.sh). */
typedef struct {
    const char *name;          /* file name, e.g. "activations.py" */
    const unsigned char *text; /* NUL-terminated */
    size_t len;
} nb_template_t;

extern const nb_template_t nb_templates[];
extern const int nb_n_templates;

/* The template named NAME (borrowed, static), or NULL. */
const nb_template_t *nb_template(const char *name);

/* Builds the notebook for R as it will be saved at OUT_PATH (relative paths
 * in it are from OUT_PATH's folder).  NULL with err set.  Caller json_decref()s. */
json_t *nb_build(const res_info_t *r, const char *out_path);

/* nb_build, then writes OUT_PATH (temporary + rename).  -1 with err set.
 * *N_CELLS, if given, receives the number of cells. */
int nb_write(const res_info_t *r, const char *out_path, int *n_cells);

#endif
