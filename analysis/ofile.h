/* ofile: output files that are either complete or absent.
 *
 * A result is written to a hidden temporary name in the target folder and
 * renamed over the target only when complete.  SIGINT/SIGTERM remove pending
 * temporaries before the process dies, so an interrupted run leaves neither a
 * half-written file nor a stray temporary. */
#ifndef PROBE_OFILE_H
#define PROBE_OFILE_H

typedef struct ofile ofile_t;

/* Reserves PATH: creates the temporary (so an unwritable folder fails now,
 * before any work) and installs the signal cleanup.  NULL with err set. */
ofile_t *ofile_begin(const char *path);
/* The temporary's path, to hand to the writer (borrowed). */
const char *ofile_tmp_path(const ofile_t *o);
/* Renames the temporary over the target; frees O.  -1 with err on failure
 * (the temporary is removed). */
int ofile_commit(ofile_t *o);
/* Removes the temporary; frees O.  NULL is a no-op. */
void ofile_abort(ofile_t *o);

#endif
