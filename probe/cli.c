/* cli: helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include "core/err.h"

#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void openblas_set_num_threads(int n); /* OpenBLAS extension (cblas.h) */

char cli_command_line[2048];

char cli_who[64] = "probe";

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_who);
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

int cli_parse_size(const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    int shift = 0;
    if (*end) {
        const char *units = "KMGT", *u = strchr(units, *end >= 'a' ? *end - 32 : *end);
        if (!u || !*u) return -1;
        shift = 10 * (int)(u - units + 1);
        end++;
        if (*end == 'B' || *end == 'b') end++;
        if (*end) return -1;
    }
    if (shift && v > (~0ull >> shift)) return -1;
    *out = v << shift;
    return 0;
}

int cli_global_opts(int *argc, char **argv) {
    int k = 0;
    for (int i = 0; i < *argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(*argc, argv, &i, "--max-tokens", &v))) {
            long n;
            if (r < 0) return EXIT_USAGE;
            if (cli_parse_int(v, 0, 1L << 30, &n)) {
                fprintf(stderr,
                        "probe: --max-tokens needs a number of tokens in 0..%ld (0 = no "
                        "limit), not '%s'\n",
                        1L << 30, v);
                return EXIT_USAGE;
            }
            tok_set_max_tokens((size_t)n);
        } else if ((r = cli_opt(*argc, argv, &i, "--max-memory", &v))) {
            unsigned long long b;
            if (r < 0) return EXIT_USAGE;
            if (cli_parse_size(v, &b) || b < (16ull << 20)) {
                fprintf(stderr,
                        "probe: --max-memory needs a size of at least 16M, such as 512M or "
                        "4G, not '%s'\n",
                        v);
                return EXIT_USAGE;
            }
            struct rlimit rl;
            if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && b > rl.rlim_max)
                b = rl.rlim_max; /* cannot raise a hard limit; lowering is what was asked */
            rl.rlim_cur = b;
            if (setrlimit(RLIMIT_DATA, &rl) != 0) {
                fprintf(stderr, "probe: --max-memory %s: %s\n", v, strerror(errno));
                return EXIT_USAGE;
            }
        } else {
            argv[k++] = argv[i];
        }
    }
    *argc = k;
    argv[k] = NULL;
    return 0;
}

int cli_finish_output(const char *out, FILE **csv, int csv_bad, hid_t *h5, ofile_t **of) {
    if (*csv) {
        int bad = csv_bad | (fclose(*csv) != 0);
        *csv = NULL;
        if (bad) return cli_fail("%s: write error", out), -1;
    }
    if (*h5 >= 0) {
        herr_t e = H5Fclose(*h5);
        *h5 = -1;
        if (e < 0) return cli_fail("%s: cannot finish the HDF5 file", out), -1;
    }
    if (*of) {
        int e = ofile_commit(*of);
        *of = NULL;
        if (e) return cli_fail_err(), -1;
    }
    return 0;
}

char *cli_swap_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash + 1)) n = (size_t)(dot - path);
    char *s = malloc(n + e + 1);
    if (s) {
        memcpy(s, path, n);
        memcpy(s + n, ext, e + 1);
    }
    return s;
}
