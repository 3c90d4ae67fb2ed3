/* tok: tokenizers, byte-exact with the models' own.
 *
 * Kinds:
 *   TOK_SPM_SCORE  llama2.c tokenizer.bin and GGUF "llama" vocabularies:
 *                  SentencePiece-style BPE that merges the adjacent pair whose
 *                  joined piece has the highest score (leftmost on ties), a
 *                  dummy-prefix space, and <0xNN> byte fallback.
 *   TOK_BPE_BYTES  GPT-2-style byte-level BPE by merge rank after a regex
 *                  pre-tokenizer (vocab.json + merges.txt, tokenizer.json).
 *   TOK_BPE_SPM    Hugging Face tokenizer.json BPE over "▁"-joined text with
 *                  byte fallback (Llama 2, Mistral), merges by rank.
 *   TOK_WORDLEVEL  a whole-word vocabulary (tokenizer.json "WordLevel"); its
 *                  pieces are " word" (add_dummy_prefix drops the first space),
 *                  so concatenating them joins words with spaces.
 *
 * Pieces are kept as the decoded bytes each token stands for (GPT-2's byte
 * alphabet mapped back, "▁" turned into a space, <0xNN> into its byte), so
 * decoding is concatenation and display is uniform across kinds. */
#ifndef PROBE_TOK_H
#define PROBE_TOK_H

#include "strmap.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { TOK_SPM_SCORE = 0, TOK_BPE_BYTES, TOK_BPE_SPM, TOK_WORDLEVEL } tok_kind_t;

enum { TOK_ADD_BOS = 1, TOK_SPECIAL = 2 /* match special-token texts in the input */ };

typedef struct tok {
    tok_kind_t kind;
    int n_vocab;
    char **piece;     /* (n_vocab) decoded bytes of each token, NUL-terminated; owned */
    int *piece_len;   /* (n_vocab) */
    char **raw;       /* (n_vocab) the token's string as stored in the file (merge keys); owned */
    float *score;     /* (n_vocab) SPM merge scores, or NULL */
    uint8_t *special; /* (n_vocab) 1 for control/added special tokens (never produced by merges) */
    int bos_id, eos_id, unk_id; /* -1 when absent */
    int add_bos;                /* the model's own default for prompts */
    int add_dummy_prefix;       /* SPM: prepend a space to non-empty text */
    int byte_id[256];           /* id of <0xNN> tokens (byte fallback), or -1 */
    strmap_t raw_to_id;         /* raw string -> id */
    /* Merge-rank BPE (TOK_BPE_*): "a b" pair of raw strings -> rank. */
    strmap_t merge_rank;
    void *ext; /* kind-specific state (regex, ...); freed by tok_free */
    void (*ext_free)(void *);
    char *source; /* file it came from, for messages; owned */
} tok_t;

/* llama2.c tokenizer.bin (int32 max length, then per token f32 score, int32
 * length, bytes).  VOCAB is the model's vocab size (the file does not store it). */
tok_t *tok_load_llama2c(const char *path, int vocab);

struct gguf_t_;
/* Builds the tokenizer embedded in an open GGUF file (tokenizer.ggml.*). */
tok_t *tok_from_gguf(const void *gguf /* const gguf_t* */);

/* Hugging Face tokenizer files: a folder (tokenizer.json, or vocab.json +
 * merges.txt) or a tokenizer.json path.  Implemented in tok_hf.c. */
tok_t *tok_load_hf(const char *path);

/* Loads whatever PATH is: tokenizer.bin, tokenizer.json, or a folder. */
tok_t *tok_load(const char *path, int vocab_hint);

void tok_free(tok_t *t);

/* An empty tokenizer of N_VOCAB tokens for loaders (tok.c, tok_hf.c):
 * arrays allocated and zeroed, ids -1.  NULL when out of memory. */
tok_t *tok_alloc(int n_vocab, const char *source);

/* Longest token text a tokenizer file may hold, in bytes.  Real vocabularies
 * stay under a few hundred; a longer one marks a broken or hostile file. */
#define TOK_PIECE_MAX 65536

/* The limit on one text (a prompt, a corpus document, a JSONL line) that
 * makes a giant input fail with a message instead of exhausting memory:
 * tok_encode refuses a text longer than TOK_BYTES_PER_TOKEN x MAX_TOKENS bytes
 * before encoding it (no real text averages that many bytes a token), and a
 * text that encodes to more than MAX_TOKENS tokens.  0 = no limit (texts are
 * still capped at 1 GiB, where token counts would overflow an int).
 * Process-wide; set it at start-up (probe's --max-tokens), before threads
 * encode.  Default TOK_DEFAULT_MAX_TOKENS. */
#define TOK_DEFAULT_MAX_TOKENS 1000000
#define TOK_BYTES_PER_TOKEN 64
void tok_set_max_tokens(size_t max_tokens);
size_t tok_max_tokens(void);

/* Encodes TEXT (LEN bytes; must be valid UTF-8, else -1 with err).  *IDS is
 * malloc'd, caller frees. */
int tok_encode(const tok_t *t, const char *text, size_t len, int flags, int **ids, int *n);

/* Decoded bytes of token ID (borrowed).  For streaming generated text the
 * caller applies tok_decode_next() which drops the SPM dummy-prefix space
 * after BOS as SentencePiece and llama2.c do. */
const char *tok_piece(const tok_t *t, int id, int *len);
const char *tok_decode_next(const tok_t *t, int prev_id, int id, int *len);

/* Readable, unambiguous text of token ID for tables: printable UTF-8 as is
 * (leading spaces kept), control and invalid bytes as <0xNN>, newlines as
 * "\n", tabs as "\t".  Writes at most CAP bytes (NUL-terminated); returns BUF. */
char *tok_display(const tok_t *t, int id, char *buf, size_t cap);

/* Id whose decoded text is exactly TEXT, or -1. */
int tok_lookup_text(const tok_t *t, const char *text);

/* 1 if [s, s+len) is valid UTF-8 (no overlongs, no surrogates). */
int utf8_valid(const char *s, size_t len);
/* Length of the UTF-8 sequence starting with byte C (1 for invalid bytes). */
int utf8_len(unsigned char c);

const char *tok_kind_name(tok_kind_t k);

#endif
