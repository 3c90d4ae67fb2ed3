/* rx: PCRE2 wrapper for pre-tokenizer patterns (see rx.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rx.h"

#include "err.h"

#include <pcre2.h>
#include <stdlib.h>

struct rx {
    pcre2_code *code;
    int jit; /* JIT compilation succeeded */
};

rx_t *rx_compile(const char *pattern, size_t len, int literal) {
    rx_t *r = calloc(1, sizeof *r);
    if (!r) {
        err_set("out of memory");
        return NULL;
    }
    int ec;
    PCRE2_SIZE eo;
    /* PCRE2_LITERAL refuses UCP, which a literal does not need anyway. */
    uint32_t opt = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    r->code = pcre2_compile((PCRE2_SPTR)pattern, len, opt, &ec, &eo, NULL);
    if (!r->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        err_set("regex error at offset %zu: %s", (size_t)eo, (char *)msg);
        free(r);
        return NULL;
    }
    /* No JIT on this platform is fine: the interpreter gives the same matches. */
    r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
    return r;
}

void rx_free(rx_t *r) {
    if (!r) return;
    pcre2_code_free(r->code);
    free(r);
}

int rx_find_all(const rx_t *r, const char *s, size_t n, rx_span_t **spans, size_t *n_spans,
                size_t *cap) {
    *n_spans = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (!md) return err_set("out of memory");
    int rc = 0;
    size_t pos = 0;
    while (pos <= n) {
        /* The caller validated the UTF-8 once for the whole text. */
        uint32_t opt = PCRE2_NO_UTF_CHECK;
        int m = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos, opt, md, NULL);
        if (m == PCRE2_ERROR_JIT_STACKLIMIT) /* very long runs: the interpreter has no such limit */
            m = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos, opt | PCRE2_NO_JIT, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = err_set("regex match failed: %s", (char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b <= a) {
            /* Empty match: it splits nothing; step one character on, as
             * find_iter does. */
            if (a >= n) break;
            pos = a + 1;
            while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        if (*n_spans == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            rx_span_t *p = realloc(*spans, nc * sizeof *p);
            if (!p) {
                rc = err_set("out of memory");
                break;
            }
            *spans = p;
            *cap = nc;
        }
        (*spans)[(*n_spans)++] = (rx_span_t){a, b};
        pos = b;
    }
    pcre2_match_data_free(md);
    return rc;
}
