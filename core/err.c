/* err: thread-local last-error message (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char err_buf[1024];

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(const char *fmt, ...) {
    char pre[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    /* A message too long for the buffer keeps its beginning: the outermost
     * context (file name) comes first and matters most. */
    if (snprintf(err_buf, sizeof err_buf, "%s: %s", pre, old) >= (int)sizeof err_buf)
        memcpy(err_buf + sizeof err_buf - 4, "...", 4);
    return -1;
}

const char *err_msg(void) { return err_buf[0] ? err_buf : "unknown error"; }

void err_clear(void) { err_buf[0] = '\0'; }
