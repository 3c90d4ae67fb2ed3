/* tutil: helpers shared by the Criterion tests — locating the probe binary,
 * ../shared and python, running commands with captured output, temp dirs. */
#ifndef PROBE_TUTIL_H
#define PROBE_TUTIL_H

#include <stddef.h>

/* $PROBE_BIN (default build/probe), $PROBE_SHARED (default ../shared),
 * $PROBE_PY (default /usr/bin/python3). Borrowed strings. */
const char *tu_bin(void);
const char *tu_shared(void);
const char *tu_py(void);
/* "$PROBE_SHARED/REL" in a static rotating buffer. */
const char *tu_sharedp(const char *rel);

/* Runs a shell command; stdout and stderr captured into malloc'd strings
 * (caller frees; pass NULL to discard).  Returns the exit status (or -1). */
int tu_run(const char *cmd, char **out, char **err);
/* printf-style tu_run. */
int tu_runf(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A fresh temporary directory (malloc'd path). */
char *tu_tmpdir(void);
/* Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *tu_slurp(const char *path, size_t *len);
int tu_exists(const char *path);
/* Number of lines in S (counting a last line without newline). */
int tu_lines(const char *s);
/* True if no file in DIR starts with "." and contains ".tmp." (leftover temporaries). */
int tu_no_temp_files(const char *dir);

#endif
