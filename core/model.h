/* model: a loaded transformer — its configuration, its weights bound by role,
 * and its tokenizer — whatever file format it came from.
 *
 * Architectures are rows of options (mcfg_t), not forks of the forward pass:
 * Llama is RMSNorm + RoPE + GQA + gated SiLU FFN; GPT-2 is LayerNorm +
 * learned positions + GELU FFN with Conv1D weights; and so on.  Loaders
 * (llama2c.c, gguf, hf.c) fill the config and bind tensors, checking each
 * tensor's shape against the config ("got [..], expected [..]"). */
#ifndef PROBE_MODEL_H
#define PROBE_MODEL_H

#include "mfile.h"
#include "tensor.h"
#include "tok.h"

typedef enum { ARCH_LLAMA = 0, ARCH_GPT2, ARCH_NEOX, ARCH_QWEN2, ARCH_COUNT } arch_t;
typedef enum { NORM_RMS = 0, NORM_LAYER } normkind_t;
typedef enum { ACT_SILU = 0, ACT_GELU_TANH, ACT_GELU_ERF, ACT_RELU } act_t;
/* RoPE layouts: llama2.c/GGUF rotate pairs (2i, 2i+1); Hugging Face's
 * rotate_half rotates (i, i + rot/2). */
typedef enum { ROPE_NONE = 0, ROPE_PAIRWISE, ROPE_HALF } rope_t;
/* Fused QKV layouts: GPT-2's c_attn is [Q | K | V] along the output; NeoX's
 * query_key_value is per head [q_h | k_h | v_h]. */
typedef enum { QKV_SEPARATE = 0, QKV_FUSED_BLOCKS, QKV_FUSED_HEADS } qkv_t;

typedef struct {
    arch_t arch;
    int n_layer, d_model, n_ff, n_head, n_kv_head, head_dim, vocab, max_seq;
    float norm_eps;
    normkind_t norm;
    act_t act;
    int gated;             /* FFN is down(act(gate x) * up x) */
    int parallel_residual; /* NeoX: x + attn(ln1 x) + mlp(ln2 x) */
    int learned_pos;       /* GPT-2 position embeddings */
    rope_t rope;
    float rope_theta;
    int rotary_dim; /* dimensions rotated per head (NeoX partial rotary), <= head_dim */
    /* Llama 3 rope_scaling (factor 0 = none). */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_ctx;
    qkv_t qkv;
} mcfg_t;

/* A linear map y = x W^T + b.  W is (out, in), or (in, out) when TRANSPOSED
 * (GPT-2 Conv1D).  B may be NULL. */
typedef struct {
    const tensor_t *w, *b;
    int transposed;
} lin_t;

typedef struct {
    const tensor_t *attn_norm_w, *attn_norm_b;
    lin_t q, k, v, qkv, o; /* qkv used when cfg.qkv != QKV_SEPARATE */
    const tensor_t *ffn_norm_w, *ffn_norm_b;
    /* Gated: down(act(gate x) * up x).  Classic: down(act(up x)) where up is
     * W1 (c_fc) and down is W2 (c_proj); gate.w is NULL. */
    lin_t gate, up, down;
} mlayer_t;

typedef struct model {
    mcfg_t cfg;
    const tensor_t *tok_embd; /* (vocab, d_model) */
    const tensor_t *pos_embd; /* (max_seq, d_model) or NULL */
    const tensor_t *out_norm_w, *out_norm_b;
    lin_t lm_head;    /* (vocab, d_model); may be the token embedding */
    int tied;         /* lm_head is the token embedding */
    mlayer_t *layers; /* (n_layer) owned */
    ttab_t tensors;   /* every tensor of the file(s); owned table, borrowed data */
    tok_t *tok;       /* owned; NULL if none was found */
    char *path;       /* owned */
    char format[48];  /* "llama2.c", "llama2.c v1", "GGUF v3", "safetensors", ... */
    mfile_t **files;  /* owned mappings */
    int n_files;
    void *owned; /* loader-owned buffers, freed by model_close */
    void *src;   /* loader handle (e.g. gguf_t*), closed by model_close */
    void (*src_close)(void *);
} model_t;

/* Opens a model: a llama2.c checkpoint, a GGUF file or a Hugging Face
 * folder.  TOKENIZER may be NULL (use the one inside or beside the model).
 * NULL with err set on failure.  Caller frees with model_close(). */
model_t *model_open(const char *path, const char *tokenizer);
void model_close(model_t *m);

const char *arch_name(arch_t a);

/* Format-specific loaders (used by model_open). */
int llama2c_load(model_t *m, const char *path);
int gguf_model_load(model_t *m, const char *path);
int hf_model_load(model_t *m, const char *dir);

/* Binds tensor NAME with the expected shape (rows, cols) — or (cols) for a
 * 1-D tensor when ROWS is 0 — into *OUT.  Missing tensors are an error unless
 * OPTIONAL.  Messages name the tensor, the shape found and the one expected. */
int model_bind(model_t *m, const tensor_t **out, const char *name, int64_t rows, int64_t cols,
               int optional);

/* Parameter counts by part, for `probe info`. */
typedef struct {
    int64_t embed, attn, ffn, norm, head, total;
} mparams_t;
void model_param_counts(const model_t *m, mparams_t *out);

/* Validates the config (positive sizes, heads dividing dims, ...). */
int model_check_cfg(const model_t *m);

#endif
