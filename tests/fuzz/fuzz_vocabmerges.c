/* fuzz_vocabmerges: GPT-2's vocab.json + merges.txt (core/tok_hf.c).  The
 * input is vocab.json, a NUL byte, then merges.txt (no NUL: merges.txt is
 * empty). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char vp[600], mp[600];
    const uint8_t *nul = memchr(data, 0, size);
    size_t nv = nul ? (size_t)(nul - data) : size;
    fz_write("vocab.json", data, nv, vp, sizeof vp);
    fz_write("merges.txt", nul ? nul + 1 : data, nul ? size - nv - 1 : 0, mp, sizeof mp);
    tok_t *t = tok_load_hf(vp);
    fz_note("tok_load_hf", t);
    if (!t) return 0;
    fz_exercise_tok(t);
    tok_free(t);
    return 0;
}
