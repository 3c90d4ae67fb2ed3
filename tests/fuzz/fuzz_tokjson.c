/* fuzz_tokjson: Hugging Face tokenizer.json (core/tok_hf.c): the model (BPE,
 * WordLevel), vocabulary, merges, added tokens, normalizers, pre-tokenizers,
 * post-processor and decoder.  The input is the whole tokenizer.json; the
 * loaded tokenizer then encodes fixed texts. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    fz_write("tokenizer.json", data, size, path, sizeof path);
    tok_t *t = tok_load_hf(path);
    fz_note("tok_load_hf", t);
    if (!t) return 0;
    fz_exercise_tok(t);
    tok_free(t);
    return 0;
}
