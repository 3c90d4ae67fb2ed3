/* result: what a probe output file is, read back.
 *
 * `probe notebook` and `probe plot` take any result file and must first know
 * which analysis wrote it.  HDF5 files say so in their root attribute
 * probe_kind; CSV files carry no metadata, so they are recognised by their
 * header row (the leading columns documented in docs/FORMAT.md).  This module
 * identifies a file, collects the metadata a reader wants to see (model,
 * prompt, command) and the features that decide which notebook cells and plot
 * panels apply, and offers small readers: HDF5 datasets through the HDF5 C
 * API (shapes checked, sizes bounded), CSV rows streamed through libcsv's
 * csv_parse (memory bounded by one row).
 *
 * Limits: one file at a time (a triggers CSV brings its .stats/.hist/
 * .agreement siblings along); nothing here prints. */
#ifndef PROBE_RESULT_H
#define PROBE_RESULT_H

#include <hdf5.h>
#include <stdint.h>

typedef enum { RES_ACTIVATIONS = 0, RES_VALUES, RES_TRACE, RES_TRIGGERS } res_kind_t;

typedef struct {
    res_kind_t kind;
    const char *kind_name; /* "activations", "values", "trace", "triggers" (static) */
    int csv;               /* 1 for a CSV file, 0 for HDF5 */
    char *path;            /* as given */
    char *abs_path;        /* realpath() of it */
    /* Metadata, each NULL when the file does not record it (CSV records none). */
    char *model, *command, *corpus, *target;
    char **prompts; /* (n_prompts) prompt texts */
    int n_prompts;
    /* Space-separated feature words, for notebook cells' requires= and plot
     * choices: "h5" or "csv", and per kind e.g. "promotes", "intervened",
     * "agreement", "trig_main", "stats". */
    char features[512];
    /* Triggers CSV family (NULL when absent): the main table and its siblings. */
    char *csv_main, *csv_stats, *csv_hist, *csv_agree;
} res_info_t;

/* Identifies PATH and fills *R (caller frees with res_info_free; *R is
 * zeroed first).  -1 with err set when the file cannot be read or no probe
 * analysis produced it — the message says what was found and what was
 * expected. */
int res_identify(const char *path, res_info_t *r);
void res_info_free(res_info_t *r);

/* True if WORD is one of R's features. */
int res_has(const res_info_t *r, const char *word);

/* ---- HDF5 readers (all return 0, or -1 with err naming the object) ---------- */

/* Opens FILE read-only; -1 with err set. */
hid_t res_h5_open(const char *path);
/* True if PATH (e.g. "base/pos_3") exists below LOC. */
int res_h5_exists(hid_t loc, const char *path);
/* String attribute NAME of LOC (fixed or variable length): malloc'd, caller
 * frees; NULL if absent (err set only if present but unreadable). */
char *res_h5_attr_str(hid_t loc, const char *name);
/* Integer or float attribute NAME as a double; -1 with err if absent or not a number. */
int res_h5_attr_num(hid_t loc, const char *name, double *out);
/* Dataset PATH of rank 1 or 2 (DIMS[1] = 1 for rank 1) converted to float /
 * int32; RANK must be the dataset's rank.  *OUT is malloc'd (caller frees).
 * Refuses more than 2^28 elements. */
int res_h5_f32(hid_t loc, const char *path, int rank, int64_t dims[2], float **out);
int res_h5_i32(hid_t loc, const char *path, int rank, int64_t dims[2], int32_t **out);
/* 1-D string dataset: *OUT is an array of *N malloc'd strings (free with
 * res_strs_free). */
int res_h5_strs(hid_t loc, const char *path, char ***out, int64_t *n);
void res_strs_free(char **s, int64_t n);

/* ---- CSV ---------------------------------------------------------------------- */

/* Called for each row (ROW 0 is the header) with its N fields, each
 * NUL-terminated (borrowed, valid during the call).  Return 0 to go on, 1 to
 * stop early, -1 (with err set) to fail. */
typedef int (*res_row_fn)(void *user, int64_t row, char **fields, int n);
/* Streams PATH through libcsv.  -1 with err set on a read or parse error or
 * when FN fails. */
int res_csv_each(const char *path, res_row_fn fn, void *user);
/* Index of column NAME in a header row, or -1. */
int res_csv_col(char **header, int n, const char *name);

#endif
