/* ofile: temporary-then-rename output files with signal cleanup (see ofile.h). */
#include "ofile.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFILE_MAX 16

struct ofile {
    char *path, *tmp;
    int slot;
};

/* Paths the signal handler must unlink; only async-signal-safe calls there. */
static char pending[OFILE_MAX][4096];
static volatile sig_atomic_t pending_used[OFILE_MAX];
static int handlers_installed;

static void on_signal(int sig) {
    for (int i = 0; i < OFILE_MAX; i++)
        if (pending_used[i]) unlink(pending[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

ofile_t *ofile_begin(const char *path) {
    ofile_t *o = calloc(1, sizeof *o);
    if (!o) return err_set("out of memory"), NULL;
    o->slot = -1;
    o->path = strdup(path);
    char *dcopy = strdup(path), *bcopy = strdup(path);
    if (!o->path || !dcopy || !bcopy) goto oom;
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    size_t n = strlen(dir) + strlen(base) + 64;
    o->tmp = malloc(n);
    if (!o->tmp) goto oom;
    snprintf(o->tmp, n, "%s/.%s.tmp.%ld", dir, base, (long)getpid());
    free(dcopy);
    free(bcopy);
    dcopy = bcopy = NULL;
    if (strlen(o->tmp) >= sizeof pending[0]) {
        err_set("%s: path too long", path);
        goto fail;
    }
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        err_set("%s: cannot write here: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    for (int i = 0; i < OFILE_MAX; i++)
        if (!pending_used[i]) {
            memcpy(pending[i], o->tmp, strlen(o->tmp) + 1);
            pending_used[i] = 1;
            o->slot = i;
            break;
        }
    if (!handlers_installed) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        handlers_installed = 1;
    }
    return o;
oom:
    err_set("out of memory");
fail:
    free(dcopy);
    free(bcopy);
    free(o->path);
    free(o->tmp);
    free(o);
    return NULL;
}

const char *ofile_tmp_path(const ofile_t *o) { return o->tmp; }

static void release(ofile_t *o) {
    if (o->slot >= 0) pending_used[o->slot] = 0;
    free(o->path);
    free(o->tmp);
    free(o);
}

int ofile_commit(ofile_t *o) {
    if (rename(o->tmp, o->path) != 0) {
        err_set("%s: cannot finish writing: %s", o->path, strerror(errno));
        unlink(o->tmp);
        release(o);
        return -1;
    }
    release(o);
    return 0;
}

void ofile_abort(ofile_t *o) {
    if (!o) return;
    unlink(o->tmp);
    release(o);
}
