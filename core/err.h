/* err: the one error convention of probe's libraries.
 *
 * Library code (core/, analysis/) never prints and never exits.  A failing
 * function records a one-line message with err_set() and returns -1 (or NULL);
 * the caller either adds context with err_prefix() or, in probe/, prints
 * err_msg() and picks the exit code.  The message is thread-local so OpenMP
 * workers cannot clobber each other's errors. */
#ifndef PROBE_ERR_H
#define PROBE_ERR_H

#include <stdio.h>
#include <stdlib.h>

/* Records a printf-style message (replacing any previous one); returns -1 so
 * callers can write `return err_set(...)`. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepends "PREFIX: " to the current message (e.g. the file name); returns -1. */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The current message; borrowed, valid until the next err_set() on this thread. */
const char *err_msg(void);

/* Clears the message. */
void err_clear(void);

/* Bugs (never bad input): abort with file:line. */
#define PRB_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "probe: internal error at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Overflow-safe size arithmetic for sizes read from files: return 0 on overflow. */
static inline int err_mul_u64(unsigned long long a, unsigned long long b, unsigned long long *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int err_add_u64(unsigned long long a, unsigned long long b, unsigned long long *out) {
    return !__builtin_add_overflow(a, b, out);
}

#endif
