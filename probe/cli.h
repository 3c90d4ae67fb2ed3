/* cli: what the subcommands of the probe tool share — option parsing
 * helpers, error printing and exit codes.  Only probe/ prints or exits. */
#ifndef PROBE_CLI_H
#define PROBE_CLI_H

#include "analysis/ofile.h"
#include "core/model.h"

#include <hdf5.h>
#include <stdio.h>

/* Exit codes: 0 ok, 1 bad input or runtime failure, 2 usage error. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Subcommands: each gets argv after the subcommand name (argv[0] = name). */
int cmd_info(int argc, char **argv);
int cmd_activations(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_values(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_triggers(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_notebook(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* Who cli_fail names: "probe", or "probe: rank R of P" in an MPI job. */
extern char cli_who[64];
/* Prints "probe: MESSAGE" on stderr; returns EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "probe CMD: MESSAGE (see probe CMD --help)"; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the current err_msg() as "probe: ..."; returns EXIT_FAIL. */
int cli_fail_err(void);

/* Strict number parsing: the whole string must be a number in [lo, hi]. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *s, double *out);

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past the
 * value.  Returns 1 if matched (VALUE in *val), 0 if not, -1 if the value is
 * missing (message printed). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
/* True if argv[i] is exactly --name (a flag without value). */
int cli_flag(char **argv, int i, const char *name);

/* Opens the model named by --model/--tokenizer, printing the error on failure. */
model_t *cli_open_model(const char *model, const char *tokenizer);

/* Default model path from PROBE_SHARED (../shared) when --model is omitted. */
const char *cli_default_model(void);
const char *cli_default_tokenizer(void);

/* The command line, for metadata in output files. */
extern char cli_command_line[2048];

/* Global limits, accepted anywhere on the command line and removed from
 * ARGV before the subcommand parses it (so every command has them):
 *   --max-tokens N    most tokens one text (prompt, corpus document, JSONL
 *                     line) may encode to; texts over 64 N bytes are refused
 *                     before encoding (tok_set_max_tokens; default 1000000;
 *                     0 = no limit)
 *   --max-memory SIZE cap on the process's heap (setrlimit RLIMIT_DATA; the
 *                     read-only model mapping does not count): allocations
 *                     past it fail and the command stops with "out of memory"
 *                     (SIZE in bytes, or with K, M, G, T; default none)
 * Returns 0, or EXIT_USAGE after printing the problem. */
int cli_global_opts(int *argc, char **argv);
/* Parses "512M", "4G", "1048576" (binary units) into bytes; -1 if invalid. */
int cli_parse_size(const char *s, unsigned long long *out);

/* PATH with its extension (if its last component has one) replaced by EXT,
 * e.g. ".png"; malloc'd, NULL when out of memory. */
char *cli_swap_ext(const char *path, const char *ext);

/* Finishes an output file OUT written through OF: closes *CSV if open
 * (CSV_BAD: an earlier write failed) and *H5 if open, then renames the
 * temporary file into place.  Each is reset (NULL, -1, NULL) as it goes, so
 * the caller's cleanup leaves it alone.  Returns 0, or prints the failure and
 * returns -1 (the temporary file is the caller's to abort). */
int cli_finish_output(const char *out, FILE **csv, int csv_bad, hid_t *h5, ofile_t **of);

/* Threads: --threads N (0 = all cores) sets OpenMP and OpenBLAS. */
void cli_set_threads(int n);

#endif
