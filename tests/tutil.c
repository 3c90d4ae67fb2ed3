/* tutil: test helpers (see tutil.h). */
#include "tutil.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *k, const char *d) {
    const char *v = getenv(k);
    return v && *v ? v : d;
}
const char *tu_bin(void) { return env_or("PROBE_BIN", "build/probe"); }
const char *tu_shared(void) { return env_or("PROBE_SHARED", "../shared"); }
const char *tu_py(void) { return env_or("PROBE_PY", "/usr/bin/python3"); }

const char *tu_sharedp(const char *rel) {
    static _Thread_local char buf[8][4096];
    static _Thread_local int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tu_shared(), rel);
    return buf[i];
}

char *tu_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return b;
}

char *tu_tmpdir(void) {
    char tmpl[] = "/tmp/probe-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

int tu_run(const char *cmd, char **out, char **err) {
    char *dir = tu_tmpdir();
    if (!dir) return -1;
    size_t n = strlen(cmd) + 2 * strlen(dir) + 64;
    char *full = malloc(n);
    snprintf(full, n, "( %s ) >%s/out 2>%s/err </dev/null", cmd, dir, dir);
    int st = system(full);
    free(full);
    char p[4200];
    snprintf(p, sizeof p, "%s/out", dir);
    if (out) *out = tu_slurp(p, NULL);
    unlink(p);
    snprintf(p, sizeof p, "%s/err", dir);
    if (err) *err = tu_slurp(p, NULL);
    unlink(p);
    rmdir(dir);
    free(dir);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

int tu_runf(char **out, char **err, const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return tu_run(cmd, out, err);
}

int tu_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int tu_lines(const char *s) {
    int n = 0;
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++)
        n += *p == '\n';
    if (s[strlen(s) - 1] != '\n') n++;
    return n;
}

int tu_no_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.")) ok = 0;
    closedir(d);
    return ok;
}
