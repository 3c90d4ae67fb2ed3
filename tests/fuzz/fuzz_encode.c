/* fuzz_encode: text -> ids (tok_encode) with the real tokenizers of
 * ../shared: tok512.bin (SentencePiece scores), GPT-2's vocab.json +
 * merges.txt (byte-level BPE), Llama 2's and Mistral's tokenizer.json
 * (SentencePiece-style BPE with byte fallback).
 *
 * Input: byte 0 picks the tokenizer (low 2 bits) and the flags (bits 2-3:
 * TOK_ADD_BOS, TOK_SPECIAL); the rest is the text, any bytes (invalid UTF-8
 * must be refused with an error).  Checks: ids inside the vocabulary; GPT-2's
 * byte-level BPE and tok512's byte fallback are lossless, so the decoded
 * pieces must give back the text (after the BOS and the dummy-prefix space). */
#include "fuzz.h"

static tok_t *toks[4];

static const char *shared(void) {
    const char *s = getenv("PROBE_SHARED");
    return s && *s ? s : "../shared";
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char p[4096];
    snprintf(p, sizeof p, "%s/models/stories260K/tok512.bin", shared());
    toks[0] = tok_load_llama2c(p, 512);
    snprintf(p, sizeof p, "%s/tokenizers/gpt2/vocab.json", shared());
    toks[1] = tok_load_hf(p);
    snprintf(p, sizeof p, "%s/tokenizers/llama2/tokenizer.json", shared());
    toks[2] = tok_load_hf(p);
    snprintf(p, sizeof p, "%s/tokenizers/mistral/tokenizer.json", shared());
    toks[3] = tok_load_hf(p);
    for (int i = 0; i < 4; i++)
        if (!toks[i]) FZ_FAIL("cannot load the tokenizers from %s: %s", shared(), err_msg());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const tok_t *t = toks[data[0] & 3];
    int flags = (data[0] >> 2) & 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int *ids = NULL, n = 0;
    int rc = tok_encode(t, text, len, flags, &ids, &n);
    int valid = utf8_valid(text, len);
    if (rc == 0 && !valid) FZ_FAIL("invalid UTF-8 was encoded");
    if (rc != 0) {
        free(ids);
        return 0;
    }
    fz_check_ids(t, ids, n);
    int lossless = t == toks[1] || t == toks[0];
    if (lossless) {
        char *dec = malloc(len * 2 + 64);
        size_t k = 0;
        int i = 0;
        if ((flags & TOK_ADD_BOS) && t->bos_id >= 0) {
            if (n < 1 || ids[0] != t->bos_id) FZ_FAIL("BOS missing");
            i = 1;
        }
        for (; i < n; i++) {
            int pl;
            const char *p = tok_piece(t, ids[i], &pl);
            if (k + (size_t)pl > len * 2 + 64) FZ_FAIL("decoded text is much longer than the input");
            memcpy(dec + k, p, (size_t)pl);
            k += (size_t)pl;
        }
        const char *want = text;
        size_t wl = len;
        const char *got = dec;
        if (t->add_dummy_prefix && len > 0) {
            if (k < 1 || dec[0] != ' ') FZ_FAIL("dummy-prefix space missing");
            got++, k--;
        }
        if (k != wl || memcmp(got, want, wl) != 0)
            FZ_FAIL("tokenizer %d: decode(encode(text)) differs from the text (%zu vs %zu bytes)",
                    data[0] & 3, k, wl);
        free(dec);
    }
    free(ids);
    return 0;
}
