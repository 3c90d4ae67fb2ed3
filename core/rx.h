/* rx: the regular expressions of tokenizer pre-tokenizers, through PCRE2.
 *
 * Hugging Face tokenizers runs its patterns with Oniguruma, tiktoken with
 * fancy-regex; PCRE2 in UTF + UCP mode (\s, \w, \d and \p{..} by Unicode
 * properties) accepts the same syntax for the patterns models ship (GPT-2's,
 * Llama 3's, Qwen2's) and agrees on the reference strings.  JIT-compiled
 * when the platform has it.  A compiled rx_t may be shared by threads. */
#ifndef PROBE_RX_H
#define PROBE_RX_H

#include <stddef.h>

typedef struct rx rx_t;

/* A match [start, end) in bytes. */
typedef struct {
    size_t start, end;
} rx_span_t;

/* Compiles PATTERN (LEN bytes).  LITERAL: match the text as is, no regex
 * syntax.  NULL with err set ("regex error at offset N: ...") on failure.
 * Caller frees with rx_free(). */
rx_t *rx_compile(const char *pattern, size_t len, int literal);
void rx_free(rx_t *r);

/* Every non-empty, non-overlapping match in S (N bytes of valid UTF-8), left
 * to right, appended to *SPANS (a malloc'd array of *CAP entries, grown as
 * needed; caller frees).  *N_SPANS is set to the count.  0, or -1 with err. */
int rx_find_all(const rx_t *r, const char *s, size_t n, rx_span_t **spans, size_t *n_spans,
                size_t *cap);

#endif
