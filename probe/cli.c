/* cli: helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include "core/err.h"

#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int n); /* OpenBLAS extension (cblas.h) */

char cli_command_line[2048];

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("probe: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "probe %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'probe %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail_err(void) { return cli_fail("%s", err_msg()); }

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

int cli_opt(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "probe: %s needs a value\n", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_flag(char **argv, int i, const char *name) { return strcmp(argv[i], name) == 0; }

static char default_model[4096], default_tok[4096];

const char *cli_default_model(void) {
    const char *sh = getenv("PROBE_SHARED");
    snprintf(default_model, sizeof default_model, "%s/models/stories260K/stories260K.bin",
             sh && *sh ? sh : "../shared");
    return default_model;
}

const char *cli_default_tokenizer(void) {
    const char *sh = getenv("PROBE_SHARED");
    snprintf(default_tok, sizeof default_tok, "%s/models/stories260K/tok512.bin",
             sh && *sh ? sh : "../shared");
    return default_tok;
}

model_t *cli_open_model(const char *model, const char *tokenizer) {
    if (!model) {
        model = cli_default_model();
        if (!tokenizer) tokenizer = cli_default_tokenizer();
    }
    model_t *m = model_open(model, tokenizer);
    if (!m) cli_fail_err();
    return m;
}

void cli_set_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
