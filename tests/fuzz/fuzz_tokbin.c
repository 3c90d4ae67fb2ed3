/* fuzz_tokbin: llama2.c tokenizer.bin files (tok_load_llama2c in core/tok.c).
 * The file does not record its vocabulary size (the model's header does), so
 * the input's first two bytes give it (little-endian, 0 means 65536) and the
 * rest is the file. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    if (size < 2) return 0;
    int vocab = data[0] | data[1] << 8;
    if (!vocab) vocab = 65536;
    fz_write("tokenizer.bin", data + 2, size - 2, path, sizeof path);
    tok_t *t = tok_load_llama2c(path, vocab);
    fz_note("tok_load_llama2c", t);
    if (!t) return 0;
    if (t->n_vocab != vocab) FZ_FAIL("vocabulary of %d, asked for %d", t->n_vocab, vocab);
    fz_exercise_tok(t);
    tok_free(t);
    return 0;
}
